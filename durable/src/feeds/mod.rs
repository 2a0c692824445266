//! Upstream feeds: how each public API's response becomes a typed, validated channel value.
//!
//! Parsers are pure functions of the response body; the HTTP call lives in `upstream.rs`, and
//! the hub decides when to call (rate limit, breaker) in `guard.rs` and `round.rs`. Text
//! an upstream sends reaches channel values only through [`printable`].

pub mod alternative_me;
pub mod coingecko;
pub mod guard;
pub mod kv;
pub mod round;
pub mod rsi;
pub mod settings;
pub mod status;
#[cfg(target_arch = "wasm32")]
pub(crate) mod upstream;

use crate::feeds::status::Outcome;
use serde_json::Value;
use std::fmt;

/// Why an upstream request produced no value. Each maps to one metric outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedError {
    /// The upstream answered with a non-2xx status other than 429.
    Http(u16),
    /// 429 Too Many Requests, with the `Retry-After` seconds if given.
    TooManyRequests(Option<u64>),
    /// No answer within the configured timeout.
    Timeout,
    /// The request failed before any answer (DNS, connection refused, reset).
    Network(String),
    /// The answer was not the JSON shape we expect, or a value was implausible.
    Parse(String),
}

impl FeedError {
    pub fn outcome(&self) -> Outcome {
        match self {
            FeedError::Http(_) => Outcome::HttpError,
            FeedError::TooManyRequests(_) => Outcome::RateLimited,
            FeedError::Timeout => Outcome::Timeout,
            FeedError::Network(_) => Outcome::NetworkError,
            FeedError::Parse(_) => Outcome::ParseError,
        }
    }
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedError::Http(status) => write!(f, "upstream answered HTTP {status}"),
            FeedError::TooManyRequests(Some(s)) => write!(f, "upstream answered 429; retry after {s} s"),
            FeedError::TooManyRequests(None) => f.write_str("upstream answered 429"),
            FeedError::Timeout => f.write_str("upstream did not answer in time"),
            FeedError::Network(e) => write!(f, "request failed: {e}"),
            FeedError::Parse(e) => write!(f, "unexpected response: {e}"),
        }
    }
}

pub(crate) fn parse_json(body: &str) -> Result<Value, FeedError> {
    serde_json::from_str(body).map_err(|e| FeedError::Parse(format!("not JSON: {e}")))
}

/// Requires a finite number, positive when `positive` is set: upstream JSON can hold null,
/// strings or zeros where a price should be, and none of those may reach a client.
pub(crate) fn finite(name: &str, v: Option<&Value>, positive: bool) -> Result<f64, FeedError> {
    match v.and_then(Value::as_f64) {
        None => Err(FeedError::Parse(format!("{name} is missing or not a number"))),
        Some(x) if !x.is_finite() => Err(FeedError::Parse(format!("{name} is not finite"))),
        Some(x) if positive && x <= 0.0 => Err(FeedError::Parse(format!("{name} must be positive, got {x}"))),
        Some(x) => Ok(x),
    }
}

/// Like [`finite`], for values that may be zero but never negative (volumes, caps).
pub(crate) fn non_negative(name: &str, v: Option<&Value>) -> Result<f64, FeedError> {
    let x = finite(name, v, false)?;
    if x < 0.0 {
        return Err(FeedError::Parse(format!("{name} must not be negative, got {x}")));
    }
    Ok(x)
}

/// Like [`finite`], for a number the upstream may leave out: `null` or absent is `None`
/// (unknown, never 0); anything else must be a finite number.
pub(crate) fn optional(name: &str, v: Option<&Value>) -> Result<Option<f64>, FeedError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(_) => finite(name, v, false).map(Some),
    }
}

/// Like [`optional`], for values that may be zero but never negative (volumes, caps).
pub(crate) fn optional_non_negative(name: &str, v: Option<&Value>) -> Result<Option<f64>, FeedError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(_) => non_negative(name, v).map(Some),
    }
}

/// What a terminal or a page shows in place of a character that could steer it.
pub const REPLACEMENT: char = '\u{FFFD}';

/// `text` from an upstream, kept to printable text: every control character (C0, DEL, C1)
/// and every bidi control (embeddings, overrides, isolates, marks) and line or paragraph
/// separator becomes U+FFFD. A label like the Fear & Greed classification reaches every client
/// of the hub; raw, an ESC or OSC in it could retitle a terminal or write its clipboard, and a
/// bidi override could make `Fear` read as something else. Replaced rather than dropped, so a
/// tampered label shows that it was.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if steers_display(c) { REPLACEMENT } else { c }).collect()
}

/// Control characters (C0, DEL, C1), bidi controls and the Unicode line/paragraph separators.
fn steers_display(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_keeps_text_and_replaces_what_steers_a_display() {
        assert_eq!(printable("Extreme Greed"), "Extreme Greed");
        assert_eq!(printable("Gier · 恐惧 · خوف"), "Gier · 恐惧 · خوف", "any script is text");
        // C0 (ESC, BEL, NUL, TAB, LF), DEL and C1 (CSI U+009B, OSC U+009D).
        assert_eq!(printable("G\u{1b}]0;x\u{7}r\u{0}e\te\nd"), "G\u{FFFD}]0;x\u{FFFD}r\u{FFFD}e\u{FFFD}e\u{FFFD}d");
        assert_eq!(printable("a\u{7f}b\u{9b}31mc\u{9d}d"), "a\u{FFFD}b\u{FFFD}31mc\u{FFFD}d");
        // Bidi: overrides, embeddings, isolates, marks; and the Unicode line separators.
        for c in ['\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}', '\u{2028}', '\u{2029}'] {
            assert_eq!(printable(&format!("x{c}y")), "x\u{FFFD}y", "U+{:04X}", c as u32);
        }
        assert!(!printable("\u{202E}deerG\u{1b}[2J").chars().any(steers_display));
    }

    #[test]
    fn optional_numbers_are_unknown_never_zero() {
        let v = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(optional("x", None), Ok(None));
        assert_eq!(optional("x", Some(&Value::Null)), Ok(None));
        assert_eq!(optional("x", Some(&v("-2.5"))), Ok(Some(-2.5)));
        assert!(matches!(optional("x", Some(&v("\"1\""))), Err(FeedError::Parse(m)) if m.contains("not a number")));
        assert_eq!(optional_non_negative("x", Some(&v("0"))), Ok(Some(0.0)));
        assert!(optional_non_negative("x", Some(&v("-1"))).is_err());
    }
}
