//! Upstream feeds: how each public API's response becomes a typed, validated value.
//!
//! Parsers are pure functions of the response body; the HTTP call lives in `upstream.rs`.

pub mod coingecko;

use durable::internal::Outcome;
use std::fmt;

/// Why an upstream request produced no value. Each maps to one metric outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedError {
    /// The upstream answered with a non-2xx status.
    Http(u16),
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
            FeedError::Timeout => f.write_str("upstream did not answer in time"),
            FeedError::Network(e) => write!(f, "request failed: {e}"),
            FeedError::Parse(e) => write!(f, "unexpected response: {e}"),
        }
    }
}

/// Requires a finite number, positive when `positive` is set: upstream JSON can hold null,
/// strings or zeros where a price should be, and none of those may reach a client.
pub(crate) fn finite(name: &str, v: Option<f64>, positive: bool) -> Result<f64, FeedError> {
    match v {
        None => Err(FeedError::Parse(format!("{name} is missing or not a number"))),
        Some(x) if !x.is_finite() => Err(FeedError::Parse(format!("{name} is not finite"))),
        Some(x) if positive && x <= 0.0 => Err(FeedError::Parse(format!("{name} must be positive, got {x}"))),
        Some(x) => Ok(x),
    }
}
