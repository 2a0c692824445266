//! `verify` end to end: a third party's token, every refusal with its reason and code,
//! rotation, the leeway, and errors that never repeat a token or a secret.

use super::*;
use crate::wire::protocol::ErrorCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde_json::json;

const SECRET: &str = "tickwire-test-secret-0123456789abcdef";
const PREVIOUS: &str = "the-previous-secret-0123456789abcdef";
const NOW: u64 = 1_765_000_000;

fn keys() -> Keys {
    Keys::new(Some(SECRET), None)
}

fn claims(exp: u64) -> Claims {
    let mut c = Claims::new(Subject::parse("u42").unwrap(), exp);
    c.caps =
        Caps::from_claim(&json!({"private-u42": ["subscribe", "history"], "private-room-*": ["publish"]})).unwrap();
    c
}

/// A token with any header and payload, signed with `secret` (what a careless or hostile
/// minter could send).
fn raw(header: &str, payload: &str, secret: &str) -> String {
    let body = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[test]
fn a_token_minted_by_pyjwt_verifies() {
    // Minted by PyJWT 2.15.1 (not our code), exp 2100-01-01:
    // jwt.encode({"sub": "u42", "exp": 4102444800, "iat": 1765000000, "caps": {"private-u42":
    //   ["subscribe", "history"], "private-room-*": ["publish"]}, "info": {"name": "Ann"}},
    //   "tickwire-test-secret-0123456789abcdef", algorithm="HS256")
    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1NDIiLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTc2NTAwMDAwMCwiY2Fwc\
        yI6eyJwcml2YXRlLXU0MiI6WyJzdWJzY3JpYmUiLCJoaXN0b3J5Il0sInByaXZhdGUtcm9vbS0qIjpbInB1Ymxpc2giXX0sImluZm8iOnsibmFtZS\
        I6IkFubiJ9fQ.n7y2ibie68bRNwC9pI7p5Vsio57QcgoMzIv7Bsomtho";
    let c = verify(token, &keys(), NOW).unwrap();
    assert_eq!(c.sub.as_str(), "u42");
    assert_eq!((c.exp, c.iat, c.nbf), (4_102_444_800, Some(1_765_000_000), None));
    assert!(c.caps.allows("private-u42", Capability::History));
    assert!(c.caps.allows("private-room-7", Capability::Publish));
    assert!(!c.caps.allows("private-roomx", Capability::Publish));
    assert!(!c.caps.allows("private-u43", Capability::Subscribe));
    assert_eq!(c.info.unwrap()["name"], "Ann");
    // And PyJWT's {"sub": "u42", "exp": 1765000000}: expired 31 s later, not 30.
    let short = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1NDIiLCJleHAiOjE3NjUwMDAwMDB9\
        .zOs3tjMzlFe229i0q8UDhAk5-NAFsli7d1zBDO-BegA";
    assert!(verify(short, &keys(), NOW + LEEWAY_SECONDS).is_ok());
    assert_eq!(verify(short, &keys(), NOW + LEEWAY_SECONDS + 1), Err(TokenError::Expired));
}

#[test]
fn mint_then_verify() {
    let c = claims(NOW + 3600);
    assert_eq!(verify(&mint(&c, SECRET), &keys(), NOW), Ok(c));
}

#[test]
fn every_refusal_has_its_reason_and_code() {
    let ok_payload = json!({"sub": "u", "exp": NOW + 60}).to_string();
    let cases: Vec<(String, TokenError)> = vec![
        ("x".repeat(MAX_TOKEN_BYTES + 1), TokenError::Malformed(Malformed::TooLong)),
        ("a.b".into(), TokenError::Malformed(Malformed::Parts)),
        ("a.b.c=".into(), TokenError::Malformed(Malformed::Base64)),
        (raw(r#"{"alg":"none"}"#, &ok_payload, SECRET), TokenError::Algorithm),
        (raw(r#"{"alg":"HS384"}"#, &ok_payload, SECRET), TokenError::Algorithm),
        (raw(r#"{"alg":"hs256"}"#, &ok_payload, SECRET), TokenError::Algorithm),
        (raw(r#"{"typ":"JWT"}"#, &ok_payload, SECRET), TokenError::Algorithm),
        (raw(r#"{"alg":"HS256","crit":["exp"]}"#, &ok_payload, SECRET), TokenError::Algorithm),
        (raw(r#"{"alg":"HS256"}"#, &ok_payload, "another-secret-of-at-least-32-bytes"), TokenError::Signature),
        (raw(r#"{"alg":"HS256"}"#, "[]", SECRET), TokenError::Malformed(Malformed::Json)),
        (raw(r#"{"alg":"HS256"}"#, r#"{"exp":99999999999}"#, SECRET), TokenError::Claims(ClaimsError::Subject)),
        (mint(&claims(NOW - LEEWAY_SECONDS - 1), SECRET), TokenError::Expired),
        (mint(&Claims { nbf: Some(NOW + LEEWAY_SECONDS + 1), ..claims(NOW + 999) }, SECRET), TokenError::NotYetValid),
    ];
    for (token, want) in cases {
        let got = verify(&token, &keys(), NOW);
        assert_eq!(got, Err(want.clone()), "{token}");
        let code = if want == TokenError::Expired { ErrorCode::TokenExpired } else { ErrorCode::Unauthorized };
        assert_eq!(want.code(), code);
        assert!(TokenError::REASONS.contains(&want.reason()), "{}", want.reason());
        let text = want.to_string();
        assert!(!text.contains(SECRET) && (token.len() < 8 || !text.contains(&token[..8])), "{text}");
    }
}

#[test]
fn a_flipped_signature_byte_is_refused() {
    let token = mint(&claims(NOW + 60), SECRET);
    let (input, sig) = token.rsplit_once('.').unwrap();
    for i in 0..32 {
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bytes[i] ^= 0x80;
        let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(verify(&flipped, &keys(), NOW), Err(TokenError::Signature), "byte {i}");
    }
}

#[test]
fn rotation_accepts_both_secrets() {
    let both = Keys::new(Some(SECRET), Some(PREVIOUS));
    let old = mint(&claims(NOW + 60), PREVIOUS);
    let new = mint(&claims(NOW + 60), SECRET);
    assert!(verify(&old, &both, NOW).is_ok());
    assert!(verify(&new, &both, NOW).is_ok());
    assert_eq!(verify(&old, &keys(), NOW), Err(TokenError::Signature), "once the previous secret is removed");
    let previous_only = Keys::new(None, Some(PREVIOUS));
    assert!(verify(&old, &previous_only, NOW).is_ok());
    assert_eq!(verify(&new, &previous_only, NOW), Err(TokenError::Signature));
}

#[test]
fn unset_empty_and_short_secrets() {
    let token = mint(&claims(NOW + 60), SECRET);
    for keys in [Keys::new(None, None), Keys::new(Some(""), Some("")), Keys::default()] {
        assert!(!keys.configured() && !keys.ignored_short());
        assert_eq!(verify(&token, &keys, NOW), Err(TokenError::NotConfigured));
    }
    let short = &SECRET[..MIN_SECRET_BYTES - 1];
    let keys = Keys::new(Some(short), None);
    assert!(!keys.configured() && keys.ignored_short());
    assert_eq!(verify(&mint(&claims(NOW + 60), short), &keys, NOW), Err(TokenError::NotConfigured));
    let keys = Keys::new(Some(&SECRET[..MIN_SECRET_BYTES]), Some(short));
    assert!(keys.configured() && keys.ignored_short());
    assert!(verify(&mint(&claims(NOW + 60), &SECRET[..MIN_SECRET_BYTES]), &keys, NOW).is_ok());
    assert_eq!(TokenError::NotConfigured.code(), ErrorCode::Unauthorized);
}

#[test]
fn debug_never_shows_secrets() {
    let text = format!("{:?}", Keys::new(Some(SECRET), Some(PREVIOUS)));
    assert!(!text.contains(SECRET) && !text.contains(PREVIOUS), "{text}");
}

#[test]
fn leeway_both_ways() {
    let exp = NOW;
    let token = mint(&claims(exp), SECRET);
    assert!(verify(&token, &keys(), exp + LEEWAY_SECONDS).is_ok());
    assert_eq!(verify(&token, &keys(), exp + LEEWAY_SECONDS + 1), Err(TokenError::Expired));
    let nbf = NOW + 100;
    let token = mint(&Claims { nbf: Some(nbf), ..claims(NOW + 1000) }, SECRET);
    assert!(verify(&token, &keys(), nbf - LEEWAY_SECONDS).is_ok());
    assert_eq!(verify(&token, &keys(), nbf - LEEWAY_SECONDS - 1), Err(TokenError::NotYetValid));
}

#[test]
fn reasons_are_the_listed_labels() {
    let all = [
        TokenError::NotConfigured,
        TokenError::Malformed(Malformed::Json),
        TokenError::Algorithm,
        TokenError::Signature,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::Claims(ClaimsError::Info),
    ];
    assert_eq!(all.map(|e| e.reason()), TokenError::REASONS);
}

#[test]
fn fractional_times_are_numeric_dates_floored() {
    let h = r#"{"alg":"HS256","typ":"JWT"}"#;
    let exp = NOW as f64 + 60.75;
    let token = raw(h, &format!(r#"{{"sub":"u","exp":{exp},"iat":{}.5}}"#, NOW), SECRET);
    let c = verify(&token, &keys(), NOW).unwrap();
    assert_eq!((c.exp, c.iat), (NOW + 60, Some(NOW)));
    for bad in ["-1.5", "1e300", "\"soon\"", "null"] {
        let token = raw(h, &format!(r#"{{"sub":"u","exp":{bad}}}"#), SECRET);
        assert!(matches!(verify(&token, &keys(), NOW), Err(TokenError::Claims(_))), "exp {bad}");
    }
}
