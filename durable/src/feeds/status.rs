//! What tickwire knows about its upstreams: which endpoints it polls (`Source`), who runs them
//! (`Provider`), how each request ended (`Outcome`), and each source's bookkeeping (counts,
//! last success and error, request durations, breaker) as `/health` and `/metrics` show it.

use crate::feeds::guard::Breaker;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// An upstream endpoint tickwire polls. Bounded set, so it is safe as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// CoinGecko `/api/v3/simple/price` → `btc` and the coins of `market`.
    CoingeckoPrice,
    /// CoinGecko `/api/v3/global` → the totals of `market`.
    CoingeckoGlobal,
    /// Alternative.me `/fng/` → `sentiment`.
    Fng,
    /// CoinGecko `/api/v3/coins/bitcoin/market_chart` → `indicators` (RSI-14).
    CoingeckoChart,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::CoingeckoPrice, Source::CoingeckoGlobal, Source::Fng, Source::CoingeckoChart];

    pub fn label(self) -> &'static str {
        match self {
            Source::CoingeckoPrice => "coingecko_price",
            Source::CoingeckoGlobal => "coingecko_global",
            Source::Fng => "fng",
            Source::CoingeckoChart => "coingecko_chart",
        }
    }

    pub fn provider(self) -> Provider {
        match self {
            Source::Fng => Provider::AlternativeMe,
            _ => Provider::Coingecko,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Who runs an upstream; rate limits are per provider (CoinGecko counts all its endpoints together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Coingecko,
    AlternativeMe,
}

/// How one upstream request ended, or why it was not sent. Bounded set, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    HttpError,
    Timeout,
    NetworkError,
    ParseError,
    /// A 429 answer, or not sent because of the rate limit or a `Retry-After`.
    RateLimited,
    /// Not sent: the source's circuit breaker is open.
    BreakerOpen,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::HttpError,
        Outcome::Timeout,
        Outcome::NetworkError,
        Outcome::ParseError,
        Outcome::RateLimited,
        Outcome::BreakerOpen,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::NetworkError => "network_error",
            Outcome::ParseError => "parse_error",
            Outcome::RateLimited => "rate_limited",
            Outcome::BreakerOpen => "breaker_open",
        }
    }

    /// Failures that count toward opening the breaker (a 429 is throttling, not a fault).
    pub fn is_fault(self) -> bool {
        matches!(self, Outcome::HttpError | Outcome::Timeout | Outcome::NetworkError | Outcome::ParseError)
    }
}
/// The last failure of an upstream, as shown by `/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastError {
    pub at: u64,
    pub outcome: Outcome,
    pub detail: String,
}

/// Upper bounds (seconds) of the request-duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 8] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Request durations of one upstream: counts per bucket (not cumulative), sum and count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub buckets: Vec<u64>,
    pub sum_ms: u64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, ms: u64) {
        self.buckets.resize(DURATION_BUCKETS.len() + 1, 0);
        let i = DURATION_BUCKETS.iter().position(|b| ms as f64 / 1000.0 <= *b).unwrap_or(DURATION_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum_ms += ms;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        self.buckets.resize(DURATION_BUCKETS.len() + 1, 0);
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.sum_ms += other.sum_ms;
        self.count += other.count;
    }

    /// Cumulative counts per bucket bound, then +Inf: what Prometheus' `_bucket` series want.
    pub fn cumulative(&self) -> Vec<u64> {
        let mut total = 0;
        (0..=DURATION_BUCKETS.len())
            .map(|i| {
                total += self.buckets.get(i).copied().unwrap_or(0);
                total
            })
            .collect()
    }
}

/// Bookkeeping and protection of one upstream source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpstreamStatus {
    pub requests: BTreeMap<Outcome, u64>,
    pub last_success: Option<u64>,
    pub last_error: Option<LastError>,
    pub consecutive_failures: u32,
    /// When a request to it was last sent (for sources fetched less often than every tick).
    pub last_attempt: Option<u64>,
    pub breaker: Breaker,
    pub durations: Histogram,
    /// The price source only: each tracked coin, by CoinGecko id.
    pub coins: BTreeMap<String, CoinStatus>,
}

/// One tracked coin in the price answers, as `/health` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoinStatus {
    /// When an answer last had a usable quote for it (ms); `None`: never yet.
    pub quoted_at: Option<u64>,
    /// Why the latest answer had none (`None`: it had one). While set, `market` shows the coin's
    /// last good quote marked stale.
    pub problem: Option<String>,
}

impl UpstreamStatus {
    /// A request that was sent, and how it ended.
    pub fn record(&mut self, at: u64, outcome: Outcome, detail: Option<&str>) {
        *self.requests.entry(outcome).or_insert(0) += 1;
        if outcome == Outcome::Ok {
            // Answers can finish out of order (overlapping rounds): keep the newest.
            self.last_success = self.last_success.max(Some(at));
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.last_error = Some(LastError { at, outcome, detail: detail.unwrap_or(outcome.label()).to_owned() });
        }
    }

    /// A request that was not sent (breaker open, rate limited): counted, but not a failure.
    pub fn record_skip(&mut self, outcome: Outcome) {
        *self.requests.entry(outcome).or_insert(0) += 1;
    }

    /// Records which tracked coins an answer at `at` quoted (`problems` holds the others, with
    /// why). Coins no longer tracked are forgotten.
    pub fn record_coins(&mut self, at: u64, tracked: &[String], problems: &BTreeMap<String, String>) {
        self.coins.retain(|id, _| tracked.contains(id));
        for id in tracked {
            let coin = self.coins.entry(id.clone()).or_default();
            coin.problem = problems.get(id).cloned();
            if coin.problem.is_none() {
                coin.quoted_at = coin.quoted_at.max(Some(at));
            }
        }
    }

    /// Failing means the most recent request did not succeed.
    pub fn is_failing(&self) -> bool {
        self.consecutive_failures > 0
    }
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
        assert_eq!((e.at, e.outcome, e.detail.as_str()), (3, Outcome::ParseError, "missing field"));
        s.record(4, Outcome::Ok, None);
        assert!(!s.is_failing());
        assert_eq!(s.requests[&Outcome::Ok], 2);
        assert_eq!(s.requests[&Outcome::HttpError], 1);
        assert_eq!(s.requests[&Outcome::ParseError], 1);
        // The last error stays visible after recovery, for operators.
        assert_eq!(s.last_error.unwrap().at, 3);
    }

    #[test]
    fn each_coin_keeps_when_it_was_last_quoted() {
        let tracked: Vec<String> = vec!["bitcoin".into(), "ethereum".into()];
        let mut s = UpstreamStatus::default();
        s.record_coins(1_000, &tracked, &BTreeMap::new());
        let gone = BTreeMap::from([("ethereum".to_owned(), "no \"ethereum\" object".to_owned())]);
        s.record_coins(2_000, &tracked, &gone);
        assert_eq!(s.coins["bitcoin"], CoinStatus { quoted_at: Some(2_000), problem: None });
        assert_eq!(s.coins["ethereum"], CoinStatus { quoted_at: Some(1_000), problem: gone.get("ethereum").cloned() });
        s.record_coins(3_000, &tracked[..1], &BTreeMap::new());
        assert_eq!(s.coins.keys().collect::<Vec<_>>(), ["bitcoin"], "no longer tracked: forgotten");
        let old: UpstreamStatus = serde_json::from_str(r#"{"consecutive_failures":1}"#).unwrap();
        assert!(old.coins.is_empty(), "records from before coins still read");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        for ms in [10, 60, 60, 700, 30_000] {
            h.observe(ms);
        }
        assert_eq!(h.cumulative(), [1, 3, 3, 3, 4, 4, 4, 4, 5]);
        assert_eq!((h.sum_ms, h.count), (30_830, 5));
        let mut total = Histogram::default();
        total.merge(&h);
        total.merge(&h);
        assert_eq!(total.cumulative(), [2, 6, 6, 6, 8, 8, 8, 8, 10]);
        assert_eq!((total.sum_ms, total.count), (61_660, 10));
    }

    #[test]
    fn skips_are_counted_but_are_not_failures() {
        let mut s = UpstreamStatus::default();
        s.record_skip(Outcome::BreakerOpen);
        assert!(!s.is_failing());
        assert_eq!(s.requests[&Outcome::BreakerOpen], 1);
        assert!(Outcome::Timeout.is_fault() && !Outcome::RateLimited.is_fault());
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
}
