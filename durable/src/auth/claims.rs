//! A token's claims: who (`sub`), when (`exp`, `nbf`, `iat`, with the leeway), what it grants
//! (`caps`) and what a presence list may show (`info`). Claims other than these (`iss`, `aud`,
//! `jti`, an app's own) are ignored.

use super::caps::{Caps, CapsError};
use super::limits::{LEEWAY_SECONDS, MAX_INFO_BYTES, MAX_SUB_BYTES};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// A token's `sub`: the app's user id, 1..=[`MAX_SUB_BYTES`] bytes of any text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subject(String);

impl Subject {
    pub fn parse(s: &str) -> Result<Subject, ClaimsError> {
        if s.is_empty() || s.len() > MAX_SUB_BYTES {
            return Err(ClaimsError::Subject);
        }
        Ok(Subject(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Subject {
    type Error = ClaimsError;
    fn try_from(s: String) -> Result<Subject, ClaimsError> {
        Subject::parse(&s)
    }
}

impl From<Subject> for String {
    fn from(s: Subject) -> String {
        s.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a verified token says. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub sub: Subject,
    pub exp: u64,
    pub nbf: Option<u64>,
    pub iat: Option<u64>,
    pub caps: Caps,
    /// At most [`MAX_INFO_BYTES`] as compact JSON.
    pub info: Option<Map<String, Value>>,
}

/// Which claim was refused. `Display` quotes nothing from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimsError {
    /// `sub` missing, not a string, empty or over [`MAX_SUB_BYTES`] bytes.
    Subject,
    /// `exp` missing or not a whole number of seconds (non-negative integer).
    Expiry,
    /// `nbf` present but not a non-negative integer.
    NotBefore,
    /// `iat` present but not a non-negative integer.
    IssuedAt,
    Caps(CapsError),
    /// `info` present but not an object, or over [`MAX_INFO_BYTES`] as compact JSON.
    Info,
}

impl fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimsError::Subject => write!(f, "\"sub\" must be a string of 1 to {MAX_SUB_BYTES} bytes"),
            ClaimsError::Expiry => f.write_str("\"exp\" is required, as whole seconds since the Unix epoch"),
            ClaimsError::NotBefore => f.write_str("\"nbf\" must be whole seconds since the Unix epoch"),
            ClaimsError::IssuedAt => f.write_str("\"iat\" must be whole seconds since the Unix epoch"),
            ClaimsError::Caps(e) => e.fmt(f),
            ClaimsError::Info => write!(f, "\"info\" must be an object of at most {MAX_INFO_BYTES} bytes of JSON"),
        }
    }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional (as `time.time()`
/// gives them), floored; negative, infinite or non-numeric values are refused.
fn numeric_date(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0 && *f < 1.8e19).map(|f| f as u64))
}

impl Claims {
    /// Claims with no `nbf`, `iat`, `caps` or `info`.
    pub fn new(sub: Subject, exp: u64) -> Claims {
        Claims { sub, exp, nbf: None, iat: None, caps: Caps::default(), info: None }
    }

    /// The claims of a token's payload (already a JSON object). A missing `caps` grants nothing.
    pub fn from_payload(payload: &Map<String, Value>) -> Result<Claims, ClaimsError> {
        let sub = match payload.get("sub") {
            Some(Value::String(s)) => Subject::parse(s)?,
            _ => return Err(ClaimsError::Subject),
        };
        let exp = payload.get("exp").and_then(numeric_date).ok_or(ClaimsError::Expiry)?;
        let seconds = |name: &str, err: ClaimsError| match payload.get(name) {
            None => Ok(None),
            Some(v) => numeric_date(v).map(Some).ok_or(err),
        };
        let nbf = seconds("nbf", ClaimsError::NotBefore)?;
        let iat = seconds("iat", ClaimsError::IssuedAt)?;
        let caps = match payload.get("caps") {
            None => Caps::default(),
            Some(v) => Caps::from_claim(v).map_err(ClaimsError::Caps)?,
        };
        let info = match payload.get("info") {
            None => None,
            Some(Value::Object(map)) if info_bytes(map) <= MAX_INFO_BYTES => Some(map.clone()),
            Some(_) => return Err(ClaimsError::Info),
        };
        Ok(Claims { sub, exp, nbf, iat, caps, info })
    }

    /// The payload a token carrying these claims has (compact JSON, as [`Claims::from_payload`] reads it).
    pub fn to_payload(&self) -> String {
        let mut map = Map::new();
        map.insert("sub".into(), self.sub.as_str().into());
        map.insert("exp".into(), self.exp.into());
        if let Some(nbf) = self.nbf {
            map.insert("nbf".into(), nbf.into());
        }
        if let Some(iat) = self.iat {
            map.insert("iat".into(), iat.into());
        }
        if !self.caps.is_empty() {
            map.insert("caps".into(), self.caps.to_claim());
        }
        if let Some(info) = &self.info {
            map.insert("info".into(), Value::Object(info.clone()));
        }
        Value::Object(map).to_string()
    }

    /// The last second the token is valid: `exp` plus the leeway.
    pub fn valid_until(&self) -> u64 {
        self.exp.saturating_add(LEEWAY_SECONDS)
    }

    /// Whether the token has expired at `now` (Unix seconds): `now > exp + LEEWAY_SECONDS`.
    pub fn expired(&self, now: u64) -> bool {
        now > self.valid_until()
    }

    /// Whether the token is not yet valid at `now`: `now + LEEWAY_SECONDS < nbf`. `iat` is
    /// informational only (a token "issued in the future" by a skewed clock still works).
    pub fn not_yet_valid(&self, now: u64) -> bool {
        self.nbf.is_some_and(|nbf| now.saturating_add(LEEWAY_SECONDS) < nbf)
    }
}

/// An `info` object's size as compact JSON.
fn info_bytes(map: &Map<String, Value>) -> usize {
    serde_json::to_string(map).map_or(usize::MAX, |s| s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Claims, ClaimsError> {
        match v {
            Value::Object(map) => Claims::from_payload(&map),
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn minimal_and_full_claims() {
        let c = parse(json!({"sub": "u42", "exp": 100})).unwrap();
        assert_eq!(c, Claims::new(Subject::parse("u42").unwrap(), 100));
        let c = parse(json!({"sub": "u42", "exp": 100, "nbf": 50, "iat": 40, "caps": {"private-u42": ["subscribe"]},
            "info": {"name": "Ann"}, "iss": "app", "aud": ["x"], "custom": [1, 2]}))
        .unwrap();
        assert_eq!((c.nbf, c.iat), (Some(50), Some(40)));
        assert!(c.caps.allows("private-u42", crate::auth::Capability::Subscribe));
        assert_eq!(c.info.unwrap()["name"], "Ann");
    }

    #[test]
    fn subject_bounds() {
        assert_eq!(parse(json!({"exp": 1})), Err(ClaimsError::Subject));
        assert_eq!(parse(json!({"sub": "", "exp": 1})), Err(ClaimsError::Subject));
        assert_eq!(parse(json!({"sub": 42, "exp": 1})), Err(ClaimsError::Subject));
        assert!(parse(json!({"sub": "a".repeat(MAX_SUB_BYTES), "exp": 1})).is_ok());
        assert_eq!(parse(json!({"sub": "a".repeat(MAX_SUB_BYTES + 1), "exp": 1})), Err(ClaimsError::Subject));
        // Bytes, not characters: 22 three-byte characters are 66 bytes.
        assert_eq!(parse(json!({"sub": "€".repeat(22), "exp": 1})), Err(ClaimsError::Subject));
        assert!(serde_json::from_str::<Subject>(r#""""#).is_err());
    }

    #[test]
    fn times_are_numeric_dates() {
        // RFC 7519 §2: seconds, possibly fractional (floored here).
        assert_eq!(parse(json!({"sub": "u", "exp": 1.5, "nbf": 1e3})).map(|c| (c.exp, c.nbf)), Ok((1, Some(1000))));
        for exp in [json!(null), json!("100"), json!(-1), json!(-0.5), json!(18446744073709551616.0)] {
            assert_eq!(parse(json!({"sub": "u", "exp": exp})), Err(ClaimsError::Expiry), "{exp}");
            assert_eq!(parse(json!({"sub": "u", "exp": 1, "nbf": exp})), Err(ClaimsError::NotBefore), "{exp}");
            assert_eq!(parse(json!({"sub": "u", "exp": 1, "iat": exp})), Err(ClaimsError::IssuedAt), "{exp}");
        }
        assert!(parse(json!({"sub": "u", "exp": u64::MAX})).is_ok());
    }

    #[test]
    fn caps_and_info_are_checked() {
        assert_eq!(parse(json!({"sub": "u", "exp": 1, "caps": []})), Err(ClaimsError::Caps(CapsError::NotAnObject)));
        assert_eq!(
            parse(json!({"sub": "u", "exp": 1, "caps": {"a": ["root"]}})),
            Err(ClaimsError::Caps(CapsError::UnknownCapability))
        );
        assert_eq!(parse(json!({"sub": "u", "exp": 1, "info": "Ann"})), Err(ClaimsError::Info));
        // {"n":"xx..."} is 8 bytes plus the string.
        let info = |n: usize| json!({"sub": "u", "exp": 1, "info": {"n": "x".repeat(n)}});
        assert!(parse(info(MAX_INFO_BYTES - 8)).is_ok());
        assert_eq!(parse(info(MAX_INFO_BYTES - 7)), Err(ClaimsError::Info));
    }

    #[test]
    fn leeway_edges() {
        let mut c = Claims::new(Subject::parse("u").unwrap(), 1000);
        assert!(!c.expired(1000 + LEEWAY_SECONDS), "the last second of the leeway");
        assert!(c.expired(1001 + LEEWAY_SECONDS));
        assert_eq!(c.valid_until(), 1030);
        assert!(!c.not_yet_valid(0), "no nbf");
        c.nbf = Some(500);
        assert!(!c.not_yet_valid(500 - LEEWAY_SECONDS), "the first second of the leeway");
        assert!(c.not_yet_valid(499 - LEEWAY_SECONDS));
        assert!(c.not_yet_valid(0));
        c.exp = u64::MAX;
        c.nbf = Some(u64::MAX);
        assert!(!c.expired(u64::MAX) && !c.not_yet_valid(u64::MAX), "no overflow at the top");
    }

    #[test]
    fn payload_round_trips() {
        let c =
            parse(json!({"sub": "u", "exp": 9, "nbf": 1, "iat": 2, "caps": {"*": ["history"]}, "info": {"a": [1]}}))
                .unwrap();
        let back: Value = serde_json::from_str(&c.to_payload()).unwrap();
        assert_eq!(parse(back), Ok(c));
    }
}
