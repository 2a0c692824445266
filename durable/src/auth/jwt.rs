//! The compact JWS layer of a token (RFC 7515 §7.1, HS256 only): its size and three parts,
//! unpadded base64url, the header's `alg`, and the HMAC-SHA-256 signature over
//! `header.payload`, compared in constant time. What the payload says is `claims`' concern.

use super::limits::MAX_TOKEN_BYTES;
use super::token_error::{Malformed, TokenError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The one header [`sign`] writes.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The payload of `token` as a JSON object, once its shape, header and signature are checked
/// against each key in turn. Checks, in order: size, parts, base64url of all three parts, the
/// header (a JSON object with `"alg":"HS256"` and no `crit`), the signature, then the payload
/// (a JSON object). Nothing is decoded before the size check.
pub(super) fn verified_payload<'k>(
    token: &str,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Result<Map<String, Value>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed(Malformed::TooLong));
    }
    let mut parts = token.split('.');
    let (Some(header64), Some(payload64), Some(signature64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(Malformed::Parts));
    };
    let header = decode(header64)?;
    let payload = decode(payload64)?;
    let signature = decode(signature64)?;
    check_header(&object(&header)?)?;
    // The signing input is the token's own text up to the second dot (RFC 7515 §5.2 step 8).
    let signed = &token.as_bytes()[..header64.len() + 1 + payload64.len()];
    let mut matched = false;
    for key in keys {
        // Every key is tried (no early exit): which key matched is no secret, but this keeps
        // the time taken independent of the token.
        matched |= keyed(key).is_some_and(|mut mac| {
            mac.update(signed);
            mac.verify_slice(&signature).is_ok()
        });
    }
    if !matched {
        return Err(TokenError::Signature);
    }
    object(&payload)
}

/// A compact JWS of `payload` (a JSON object's text) with the header `{"alg":"HS256","typ":"JWT"}`.
/// HMAC takes a key of any length, so the empty string returned for a key it refused cannot
/// happen; it would verify as malformed, never as a token.
pub(super) fn sign(payload: &str, key: &[u8]) -> String {
    let Some(mut mac) = keyed(key) else {
        return String::new();
    };
    let mut token = URL_SAFE_NO_PAD.encode(HEADER);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    mac.update(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    token
}

fn keyed(key: &[u8]) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(key).ok()
}

/// Unpadded base64url only: `=`, `+`, `/`, whitespace and non-canonical trailing bits are refused.
fn decode(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed(Malformed::Base64))
}

fn object(json: &[u8]) -> Result<Map<String, Value>, TokenError> {
    match serde_json::from_slice(json) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed(Malformed::Json)),
    }
}

/// `alg` must be exactly the string "HS256" (RFC 7515 §4.1.1 names are case-sensitive, so
/// "hs256" is another algorithm). A `crit` header lists extensions the verifier must understand
/// (RFC 7515 §4.1.11, such as RFC 7797's unencoded payload); tickwire understands none.
/// Other header fields (`typ`, `kid`, ...) are ignored.
fn check_header(header: &Map<String, Value>) -> Result<(), TokenError> {
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" && !header.contains_key("crit") => Ok(()),
        _ => Err(TokenError::Algorithm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a secret of at least thirty-two bytes";

    fn token(header: &str, payload: &str, key: &[u8]) -> String {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let mut mac = keyed(key).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn check(t: &str) -> Result<Map<String, Value>, TokenError> {
        verified_payload(t, [KEY])
    }

    #[test]
    fn rfc_7515_appendix_a1_verifies() {
        // RFC 7515 A.1: the HS256 example, its key given as a JWK ("k", base64url).
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
            .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
            .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let payload = verified_payload(token, [key.as_slice()]).unwrap();
        assert_eq!(payload["iss"], "joe");
        assert_eq!(payload["exp"], 1300819380);
        assert_eq!(verified_payload(token, [KEY]), Err(TokenError::Signature), "another key");
    }

    #[test]
    fn jwt_io_example_verifies() {
        // jwt.io's default HS256 example with its secret "your-256-bit-secret".
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9\
            .eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ\
            .SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let payload = verified_payload(token, [b"your-256-bit-secret".as_slice()]).unwrap();
        assert_eq!(payload["name"], "John Doe");
    }

    #[test]
    fn sign_then_verify() {
        let t = sign(r#"{"sub":"u"}"#, KEY);
        assert!(t.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."), "{t}");
        assert_eq!(check(&t).unwrap()["sub"], "u");
        assert_eq!(t, token(HEADER, r#"{"sub":"u"}"#, KEY));
    }

    #[test]
    fn any_key_of_the_set_verifies() {
        let t = sign("{}", b"previous key, thirty-two bytes or more");
        assert!(verified_payload(&t, [KEY, b"previous key, thirty-two bytes or more".as_slice()]).is_ok());
        assert_eq!(verified_payload(&t, [KEY]), Err(TokenError::Signature));
        assert_eq!(verified_payload(&t, []), Err(TokenError::Signature), "no key");
    }

    #[test]
    fn only_hs256_without_crit() {
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS384"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":" HS256"}"#,
            r#"{"alg":["HS256"]}"#,
            r#"{"typ":"JWT"}"#,
            r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
            r#"{"alg":"HS256","crit":[]}"#,
        ] {
            // Correctly signed with the right key: the header alone refuses it.
            assert_eq!(check(&token(header, "{}", KEY)), Err(TokenError::Algorithm), "{header}");
        }
        assert!(check(&token(r#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#, "{}", KEY)).is_ok());
        assert!(check(&token(r#"{"alg":"HS256"}"#, "{}", KEY)).is_ok(), "typ is optional");
    }

    #[test]
    fn alg_none_with_an_empty_signature_is_refused() {
        let t = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode("{}"));
        assert_eq!(check(&t), Err(TokenError::Algorithm));
        let t = format!("{}.{}.", URL_SAFE_NO_PAD.encode(HEADER), URL_SAFE_NO_PAD.encode("{}"));
        assert_eq!(check(&t), Err(TokenError::Signature), "HS256 with no signature");
    }

    #[test]
    fn a_changed_signature_or_payload_is_refused() {
        let t = sign(r#"{"sub":"u"}"#, KEY);
        let (input, sig) = t.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bytes[0] ^= 1;
        assert_eq!(check(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes))), Err(TokenError::Signature));
        bytes[0] ^= 1;
        bytes.pop();
        assert_eq!(check(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes))), Err(TokenError::Signature), "short");
        let other = sign(r#"{"sub":"v"}"#, KEY);
        let forged = format!("{}.{}", other.rsplit_once('.').unwrap().0, sig);
        assert_eq!(check(&forged), Err(TokenError::Signature), "payload swapped");
    }

    #[test]
    fn malformed_tokens() {
        let t = sign("{}", KEY);
        let malformed = |m| Err(TokenError::Malformed(m));
        assert_eq!(check(""), malformed(Malformed::Parts));
        assert_eq!(check("a.b"), malformed(Malformed::Parts));
        assert_eq!(check(&format!("{t}.x")), malformed(Malformed::Parts));
        assert_eq!(check(&format!("{t}=")), malformed(Malformed::Base64), "padding");
        assert_eq!(check(&t.replace('.', "=.")), malformed(Malformed::Base64), "padded parts");
        assert_eq!(check(&format!(" {t}")), malformed(Malformed::Base64), "whitespace");
        let json = |h: &str, p: &str| format!("{}.{}.", URL_SAFE_NO_PAD.encode(h), URL_SAFE_NO_PAD.encode(p));
        assert_eq!(check(&json("nope", "{}")), malformed(Malformed::Json));
        assert_eq!(check(&json("[]", "{}")), malformed(Malformed::Json));
        // The payload is judged after the signature: a bad payload signed correctly is malformed.
        for payload in ["nope", "[1]", "\"s\"", "{\"a\":1} x"] {
            assert_eq!(check(&token(HEADER, payload, KEY)), malformed(Malformed::Json), "{payload}");
        }
    }

    #[test]
    fn standard_alphabet_is_refused() {
        // A header whose base64url holds '-' or '_' is refused when spelt with '+' or '/'.
        let header = r#"{"alg":"HS256","x":"~~~>>>???"}"#;
        let t = token(header, "{}", KEY);
        let (h, rest) = t.split_once('.').unwrap();
        assert!(h.contains(['-', '_']), "{h}");
        assert!(check(&t).is_ok());
        let std = h.replace('-', "+").replace('_', "/");
        assert_eq!(check(&format!("{std}.{rest}")), Err(TokenError::Malformed(Malformed::Base64)));
    }

    #[test]
    fn size_is_checked_first() {
        let pad = "x".repeat(MAX_TOKEN_BYTES);
        let long = token(HEADER, &format!(r#"{{"p":"{pad}"}}"#), KEY);
        assert_eq!(check(&long), Err(TokenError::Malformed(Malformed::TooLong)));
        assert_eq!(check(&"!".repeat(MAX_TOKEN_BYTES + 1)), Err(TokenError::Malformed(Malformed::TooLong)));
        // A token of exactly the limit is judged on its merits (a header field's length tunes it).
        let exact = (0..3)
            .flat_map(|m| (3000..3100).map(move |n| (m, n)))
            .map(|(m, n)| token(&format!(r#"{{"alg":"HS256","k":"{}"}}"#, "k".repeat(m)), &"1".repeat(n), KEY))
            .find(|t| t.len() == MAX_TOKEN_BYTES)
            .unwrap();
        assert_eq!(check(&exact), Err(TokenError::Malformed(Malformed::Json)), "past the size check");
    }
}
