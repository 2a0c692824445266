//! `tickwire token`: a token minted for operators and tests, with the secret the server verifies
//! with (`TOKEN_SECRET`, read from `TICKWIRE_TOKEN_SECRET`). The claims are checked by the hub's
//! own rules (`auth`) before anything is signed, so a token this prints is one the hub accepts
//! until it expires.

use serde_json::{Map, Value};
use tickwire_hub::auth::{self, Capability, Caps, Claims, Subject, MIN_SECRET_BYTES};

/// The variable the secret is read from (never an argument, where `ps` would show it).
pub const SECRET_VAR: &str = "TICKWIRE_TOKEN_SECRET";
/// The longest `--ttl`: a year.
pub const MAX_TTL_SECONDS: u64 = 365 * 86_400;

/// A `--cap` argument: `KEY:CAP[,CAP...]`, a channel name or prefix (`private-room-*`, `*`) and
/// its capabilities, e.g. `private-u42:subscribe,history`.
pub fn parse_cap(spec: &str) -> Result<(&str, Vec<Capability>), String> {
    let bad = |why: &str| format!("--cap {spec:?}: {why}");
    let (key, list) =
        spec.split_once(':').ok_or_else(|| bad("use CHANNEL:CAP[,CAP...], e.g. private-u42:subscribe"))?;
    let caps = list
        .split(',')
        .map(|name| {
            Capability::parse(name.trim())
                .ok_or_else(|| bad(&format!("unknown capability {name:?}: use subscribe, history, publish, presence")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((key, caps))
}

/// A `--ttl`: a whole number and a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `1h`, `7d`), from
/// one second to [`MAX_TTL_SECONDS`].
pub fn parse_ttl(s: &str) -> Result<u64, String> {
    let bad = || format!("--ttl {s:?}: use a whole number and s, m, h or d (e.g. 90s, 15m, 1h, 7d), at most 365d");
    let unit = match s.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => return Err(bad()),
    };
    let digits = &s[..s.len() - 1];
    let n: u64 = tickwire_hub::wire::protocol::parse_digits(digits).ok_or_else(bad)?;
    match n.checked_mul(unit) {
        Some(secs) if (1..=MAX_TTL_SECONDS).contains(&secs) => Ok(secs),
        _ => Err(bad()),
    }
}

/// The claims of a new token: `sub`, `caps` from `--cap` arguments, `iat` now and `exp` after
/// `ttl_seconds`, and `info` (a JSON object) if given; refused by the same rules as the hub's.
pub fn claims(sub: &str, caps: &[String], ttl_seconds: u64, info: Option<&str>, now: u64) -> Result<Claims, String> {
    let subject = Subject::parse(sub).map_err(|e| format!("--sub: {e}"))?;
    let entries = caps.iter().map(|c| parse_cap(c)).collect::<Result<Vec<_>, _>>()?;
    let caps = Caps::from_entries(entries).map_err(|e| format!("--cap: {e} (at most {} entries)", auth::MAX_CAPS))?;
    let info = match info {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Some(map),
            _ => return Err("--info must be a JSON object, e.g. '{\"name\":\"Ann\"}'".to_owned()),
        },
    };
    let claims = Claims { sub: subject, exp: now + ttl_seconds, nbf: None, iat: Some(now), caps, info };
    // The hub's own reading of the payload: what it would refuse is refused here.
    let payload: Map<String, Value> = serde_json::from_str(&claims.to_payload()).unwrap_or_default();
    Claims::from_payload(&payload).map_err(|e| format!("the token would be refused: {e}"))?;
    Ok(claims)
}

/// The signed token, with the secret from [`SECRET_VAR`] (`secret`: its value, if set). Errors
/// name the variable, never its value.
pub fn mint(claims: &Claims, secret: Option<&str>) -> Result<String, String> {
    let secret = secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        format!("set {SECRET_VAR} to the server's TOKEN_SECRET (it is read from the environment only)")
    })?;
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "{SECRET_VAR} is shorter than {MIN_SECRET_BYTES} bytes: the server ignores such a TOKEN_SECRET"
        ));
    }
    Ok(auth::mint(claims, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_hub::auth::{verify, Keys, TokenError, LEEWAY_SECONDS};

    const SECRET: &str = "cli-test-secret-0123456789abcdefghij";
    const NOW: u64 = 1_765_000_000;

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("7d"), Ok(7 * 86_400));
        assert_eq!(parse_ttl("365d"), Ok(MAX_TTL_SECONDS));
        for bad in ["", "1", "h", "0s", "1.5h", "-1h", "+1h", "1 h", "1H", "366d", "1w", "99999999999999999999d", "1é"]
        {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn caps_specs() {
        assert_eq!(
            parse_cap("private-u42:subscribe,history"),
            Ok(("private-u42", vec![Capability::Subscribe, Capability::History]))
        );
        assert_eq!(parse_cap("*:publish"), Ok(("*", vec![Capability::Publish])));
        for bad in ["private-u42", "private-u42:", "private-u42:read", "x:subscribe,,history"] {
            assert!(parse_cap(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_minted_token_verifies_with_its_caps() {
        let caps = ["private-u42:subscribe,history".to_owned(), "private-room-*:publish".to_owned()];
        let c = claims("u42", &caps, 3600, Some(r#"{"name":"Ann"}"#), NOW).unwrap();
        let token = mint(&c, Some(SECRET)).unwrap();
        let got = verify(&token, &Keys::new(Some(SECRET), None), NOW).unwrap();
        assert_eq!(got, c);
        assert_eq!((got.sub.as_str(), got.exp, got.iat), ("u42", NOW + 3600, Some(NOW)));
        assert!(got.caps.allows("private-u42", Capability::History));
        assert!(got.caps.allows("private-room-7", Capability::Publish));
        assert!(!got.caps.allows("private-roomx", Capability::Publish));
        assert!(!got.caps.allows("private-u42", Capability::Publish));
        assert_eq!(got.info.unwrap()["name"], "Ann");
        assert_eq!(
            verify(&token, &Keys::new(Some(SECRET), None), NOW + 3601 + LEEWAY_SECONDS),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn bad_claims_are_refused_before_signing() {
        assert!(claims("", &[], 60, None, NOW).unwrap_err().starts_with("--sub"));
        assert!(claims(&"a".repeat(65), &[], 60, None, NOW).is_err());
        assert!(claims("u", &["A B:subscribe".into()], 60, None, NOW).unwrap_err().contains("--cap"));
        let many: Vec<String> = (0..17).map(|i| format!("private-{i}:subscribe")).collect();
        assert!(claims("u", &many, 60, None, NOW).unwrap_err().contains("at most 16"));
        assert!(claims("u", &["private-a:subscribe".into(), "private-a:history".into()], 60, None, NOW).is_ok());
        assert!(claims("u", &[], 60, Some("[1]"), NOW).unwrap_err().starts_with("--info"));
        let big = format!(r#"{{"n":"{}"}}"#, "x".repeat(600));
        assert!(claims("u", &[], 60, Some(&big), NOW).unwrap_err().contains("refused"));
    }

    #[test]
    fn the_secret_is_required_and_never_shown() {
        let c = claims("u", &[], 60, None, NOW).unwrap();
        for secret in [None, Some("")] {
            assert!(mint(&c, secret).unwrap_err().contains(SECRET_VAR));
        }
        let short = "short-secret";
        let e = mint(&c, Some(short)).unwrap_err();
        assert!(e.contains("shorter than 32 bytes") && !e.contains(short), "{e}");
    }
}
