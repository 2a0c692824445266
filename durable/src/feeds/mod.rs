//! Upstream feeds: how each public API's response becomes a typed, validated channel value.
//!
//! Parsers are pure functions of the response body; the HTTP call lives in `upstream.rs`, and
//! the hub decides when to call (rate limit, breaker) in `guard.rs` and `feed_round.rs`.

pub mod alternative_me;
pub mod coingecko;

use crate::upstream_status::Outcome;
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
