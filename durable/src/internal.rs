//! The hub's internal HTTP API between the Worker and the hub object: what the cron job reports
//! (`POST /ingest`) and what `/health` and `/metrics` read back (`GET /stats`).
//!
//! These types are not part of the public wire protocol; both ends are compiled from this crate,
//! so they can change together.

use crate::protocol::{Channel, Seq};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// An upstream endpoint tickwire polls. Bounded set, so it is safe as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// CoinGecko `/api/v3/simple/price`.
    CoingeckoPrice,
}

impl Source {
    pub const ALL: [Source; 1] = [Source::CoingeckoPrice];

    pub fn label(self) -> &'static str {
        match self {
            Source::CoingeckoPrice => "coingecko_price",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// How one upstream request ended. Bounded set, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    HttpError,
    Timeout,
    NetworkError,
    ParseError,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::HttpError,
        Outcome::Timeout,
        Outcome::NetworkError,
        Outcome::ParseError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::NetworkError => "network_error",
            Outcome::ParseError => "parse_error",
        }
    }
}

/// A value the cron job wants published on a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publish {
    pub channel: Channel,
    /// When the value was fetched, ms since the Unix epoch.
    pub ts: u64,
    pub data: Value,
}

/// One upstream request's result, reported by the cron job (`POST /ingest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ingest {
    pub source: Source,
    /// When the request finished, ms since the Unix epoch.
    pub at: u64,
    pub outcome: Outcome,
    /// What went wrong, for operators (`/health`); never contains secrets or full URLs with keys.
    #[serde(default)]
    pub detail: Option<String>,
    /// Values to publish (empty on failure).
    #[serde(default)]
    pub publish: Vec<Publish>,
}

/// The hub's answer to `/ingest`: the seq assigned to each value that changed and was broadcast.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestResult {
    pub published: Vec<(Channel, Seq)>,
}

/// The last failure of an upstream, as shown by `/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastError {
    pub at: u64,
    pub outcome: Outcome,
    pub detail: String,
}

/// Bookkeeping of one upstream: request counts by outcome and its recent history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamStatus {
    pub requests: BTreeMap<Outcome, u64>,
    pub last_success: Option<u64>,
    pub last_error: Option<LastError>,
    pub consecutive_failures: u32,
}

impl UpstreamStatus {
    pub fn record(&mut self, at: u64, outcome: Outcome, detail: Option<&str>) {
        *self.requests.entry(outcome).or_insert(0) += 1;
        if outcome == Outcome::Ok {
            self.last_success = Some(at);
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.last_error = Some(LastError {
                at,
                outcome,
                detail: detail.unwrap_or(outcome.label()).to_owned(),
            });
        }
    }

    /// Failing means the most recent request did not succeed.
    pub fn is_failing(&self) -> bool {
        self.consecutive_failures > 0
    }
}

/// Per-channel numbers for `/metrics` and `/health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    pub seq: Seq,
    /// Timestamp of the latest value, ms since the Unix epoch.
    pub latest_ts: Option<u64>,
    pub published: u64,
}

/// Everything `/health` and `/metrics` need from the hub, read in one call (`GET /stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HubStats {
    pub sockets: u64,
    pub connections_opened: u64,
    pub connections_closed: u64,
    pub channels: BTreeMap<Channel, ChannelStats>,
    pub upstreams: BTreeMap<Source, UpstreamStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_status_tracks_failures_and_recovery() {
        let mut s = UpstreamStatus::default();
        assert!(!s.is_failing());
        s.record(1, Outcome::Ok, None);
        s.record(2, Outcome::HttpError, Some("HTTP 500"));
        s.record(3, Outcome::ParseError, Some("missing field"));
        assert!(s.is_failing());
        assert_eq!(s.consecutive_failures, 2);
        assert_eq!(s.last_success, Some(1));
        let e = s.last_error.clone().unwrap();
        assert_eq!(
            (e.at, e.outcome, e.detail.as_str()),
            (3, Outcome::ParseError, "missing field")
        );
        s.record(4, Outcome::Ok, None);
        assert!(!s.is_failing());
        assert_eq!(s.requests[&Outcome::Ok], 2);
        assert_eq!(s.requests[&Outcome::HttpError], 1);
        assert_eq!(s.requests[&Outcome::ParseError], 1);
        // The last error stays visible after recovery, for operators.
        assert_eq!(s.last_error.unwrap().at, 3);
    }

    #[test]
    fn labels_match_serde_names() {
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.label());
        }
        for s in Source::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.label());
        }
    }

    #[test]
    fn stats_round_trip_with_map_keys() {
        let mut stats = HubStats::default();
        stats
            .upstreams
            .entry(Source::CoingeckoPrice)
            .or_default()
            .record(5, Outcome::Timeout, None);
        stats.channels.insert(
            Channel::btc(),
            ChannelStats {
                seq: Seq(3),
                latest_ts: Some(9),
                published: 3,
            },
        );
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(serde_json::from_str::<HubStats>(&json).unwrap(), stats);
    }
}
