//! The hub's internal HTTP API between the Worker and the hub object: what the cron job reports
//! (`POST /ingest`) and what `/health` and `/metrics` read back (`GET /stats`).
//!
//! These types are not part of the public wire protocol; both ends are compiled from this crate,
//! so they can change together.

use crate::guard::{Breaker, ProviderLimit};
use crate::protocol::{Channel, Epoch, ErrorCode, Seq, Update};
use crate::session::FrameKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// The hub's report of a refresh round (`POST /refresh`): what it fetched, what it skipped and
/// why, and the seq of each value that changed and was broadcast.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    pub fetched: Vec<Source>,
    pub skipped: Vec<(Source, Outcome)>,
    pub published: Vec<(Channel, Seq)>,
}

/// A page of a channel's history (`GET /history` on the sequencer, `/api/history` outside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub channel: Channel,
    pub epoch: Epoch,
    /// The channel's current seq.
    pub seq: Seq,
    /// The oldest seq still retained.
    pub first_retained: Seq,
    /// True when updates right after `since` are no longer retained (the page starts later).
    pub truncated: bool,
    pub updates: Vec<Update>,
    /// The `since` of the next page when the channel has updates after this page's last (the
    /// page ended at its `limit` or its byte budget); `null` at the end.
    pub next: Option<Seq>,
}

/// An application's message for an app channel (`POST /api/publish` on the sequencer). Unlike feed
/// values, every publish is news: it always gets the next seq.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppPublish {
    pub channel: Channel,
    pub ts: u64,
    pub data: Value,
}

/// The answer to an app publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub channel: Channel,
    pub seq: Seq,
}

/// An update as the sequencer fans it out to the other shards (`POST /apply`), with the epoch
/// its seq belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequenced {
    pub epoch: Epoch,
    pub update: Update,
}

/// What shard 0 sends the other shards (`POST /apply`): new updates, in seq order, and the
/// latest value of each channel a refresh round confirmed. The latter keeps replicas' staleness
/// in step (confirmations are not updates) and brings a new or lagging replica up to date.
/// `deleted` names app channels deleted on the sequencer; a replica removes them before it
/// applies the updates (a deletion travels alone, in its own fan-out, in order with the rest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Apply {
    pub updates: Vec<Sequenced>,
    #[serde(default)]
    pub confirmed: Vec<Confirmed>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<Channel>,
}

/// A shard's answer to `POST /apply`: how many `btc` subscribers it has, so a lost or overtaken
/// `/watch` report is corrected by the next fan-out (every cron round sends one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub btc_watchers: u64,
}

/// A channel's latest value and when a fetch last confirmed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirmed {
    pub latest: Sequenced,
    pub confirmed_at: u64,
}

/// The Durable Object name of hub shard `k`. Shard 0 is also the sequencer, and keeps the name
/// the single hub always had, so raising `HUB_SHARDS` never resets anyone's sequence numbers.
pub fn shard_name(k: u32) -> String {
    if k == 0 {
        "hub".to_owned()
    } else {
        format!("hub-shard-{k}")
    }
}

/// Why a connection ended (bounded, for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The client closed it.
    Client,
    /// The socket errored.
    Error,
    /// The hub closed it: frame over the size limit.
    TooBig,
    /// The hub closed it: too many messages.
    RateLimited,
    /// The hub closed it: a send to it failed.
    SendFailed,
}

impl CloseReason {
    pub const ALL: [CloseReason; 5] = [
        CloseReason::Client,
        CloseReason::Error,
        CloseReason::TooBig,
        CloseReason::RateLimited,
        CloseReason::SendFailed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Error => "error",
            CloseReason::TooBig => "too_big",
            CloseReason::RateLimited => "rate_limited",
            CloseReason::SendFailed => "send_failed",
        }
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
    pub deliveries: u64,
    pub failed_sends: u64,
}

/// Connection and client-frame counters of one object. Missing fields read as zero, so counters
/// added later load from older stored records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub connections_opened: u64,
    pub connections_closed: BTreeMap<CloseReason, u64>,
    pub frames: BTreeMap<FrameKind, u64>,
    pub rejected: BTreeMap<ErrorCode, u64>,
    pub kv_writes: u64,
    pub kv_write_failures: u64,
    /// Time from a publish reaching the object to its frames sent, stored and fanned out.
    pub broadcast_durations: Histogram,
    /// Publishes refused with 503 `overloaded` (too many updates waiting to be sent).
    pub publishes_overloaded: u64,
    /// `/watch` reports received (shard 0): one per zero crossing of a shard's btc subscribers.
    pub watch_reports: u64,
    /// Fan-outs applied (replicas).
    pub fanouts_applied: u64,
    /// `/api/snapshot` and `/api/history` reads answered by this object.
    pub api_reads: u64,
}

/// Internal requests counted in [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    WatchReport,
    FanoutApplied,
    ApiRead,
}

/// Everything `/health` and `/metrics` need from the hub (`GET /stats` on each shard, merged by
/// the Worker with [`HubStats::merge`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HubStats {
    /// Sockets per shard.
    pub sockets: BTreeMap<u32, u64>,
    /// API reads answered per shard (`Counters::api_reads`), to see reads spread.
    #[serde(default)]
    pub reads: BTreeMap<u32, u64>,
    pub counters: Counters,
    pub channels: BTreeMap<Channel, ChannelStats>,
    /// Kept by the sequencer (shard 0) only.
    pub upstreams: BTreeMap<Source, UpstreamStatus>,
    #[serde(default)]
    pub providers: BTreeMap<Provider, ProviderLimit>,
}

fn add<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

impl HubStats {
    pub fn total_sockets(&self) -> u64 {
        self.sockets.values().sum()
    }

    /// Folds another shard's stats in: counts add up, sequence positions take the furthest.
    pub fn merge(&mut self, other: HubStats) {
        add(&mut self.sockets, &other.sockets);
        self.counters.connections_opened += other.counters.connections_opened;
        add(&mut self.counters.connections_closed, &other.counters.connections_closed);
        add(&mut self.counters.frames, &other.counters.frames);
        add(&mut self.counters.rejected, &other.counters.rejected);
        self.counters.kv_writes += other.counters.kv_writes;
        self.counters.broadcast_durations.merge(&other.counters.broadcast_durations);
        self.counters.kv_write_failures += other.counters.kv_write_failures;
        self.counters.publishes_overloaded += other.counters.publishes_overloaded;
        self.counters.watch_reports += other.counters.watch_reports;
        self.counters.fanouts_applied += other.counters.fanouts_applied;
        self.counters.api_reads += other.counters.api_reads;
        add(&mut self.reads, &other.reads);
        for (c, s) in other.channels {
            let mine = self.channels.entry(c).or_default();
            mine.seq = mine.seq.max(s.seq);
            mine.latest_ts = mine.latest_ts.max(s.latest_ts);
            mine.published += s.published;
            mine.deliveries += s.deliveries;
            mine.failed_sends += s.failed_sends;
        }
        for (source, status) in other.upstreams {
            self.upstreams.entry(source).or_insert(status);
        }
        for (provider, limit) in other.providers {
            self.providers.entry(provider).or_insert(limit);
        }
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

    fn sample(shard: u32, sockets: u64, seq: u64, published: u64, deliveries: u64) -> HubStats {
        let mut s = HubStats::default();
        s.sockets.insert(shard, sockets);
        s.counters.connections_opened = sockets;
        s.counters.connections_closed.insert(CloseReason::Client, 1);
        s.counters.rejected.insert(ErrorCode::BadJson, 2);
        let c = ChannelStats { seq: Seq(seq), latest_ts: Some(seq * 10), published, deliveries, failed_sends: 1 };
        s.channels.insert(Channel::btc(), c);
        s
    }

    #[test]
    fn stats_round_trip_with_map_keys() {
        let mut stats = sample(0, 3, 3, 3, 9);
        stats.upstreams.entry(Source::CoingeckoPrice).or_default().record(5, Outcome::Timeout, None);
        stats.counters.frames.insert(FrameKind::Subscribe, 4);
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(serde_json::from_str::<HubStats>(&json).unwrap(), stats);
    }

    #[test]
    fn shard_stats_merge() {
        let mut total = sample(0, 3, 5, 5, 15);
        total.upstreams.entry(Source::CoingeckoPrice).or_default().record(1, Outcome::Ok, None);
        total.merge(sample(1, 2, 4, 0, 8));
        assert_eq!(total.total_sockets(), 5);
        assert_eq!(total.sockets.len(), 2);
        assert_eq!(total.counters.connections_opened, 5);
        assert_eq!(total.counters.connections_closed[&CloseReason::Client], 2);
        assert_eq!(total.counters.rejected[&ErrorCode::BadJson], 4);
        let btc = &total.channels[&Channel::btc()];
        assert_eq!(
            (btc.seq, btc.latest_ts, btc.published, btc.deliveries, btc.failed_sends),
            (Seq(5), Some(50), 5, 23, 2)
        );
        assert_eq!(total.upstreams.len(), 1);
    }

    #[test]
    fn shard_names_keep_the_single_hub_name_for_shard_0() {
        assert_eq!(shard_name(0), "hub");
        assert_eq!(shard_name(3), "hub-shard-3");
    }
}
