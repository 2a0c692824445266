//! The hub's internal HTTP API between the Worker and the hub objects: what a refresh round
//! reports (`POST /refresh`), history pages, publishes, fan-outs between shards (`POST /apply`)
//! and what `/health` and `/metrics` read back (`GET /stats`). The upstream bookkeeping those
//! carry is in `upstream_status.rs`, re-exported here.
//!
//! These types are not part of the public wire protocol; both ends are compiled from this crate,
//! so they can change together.

use crate::guard::ProviderLimit;
use crate::protocol::{Channel, Epoch, ErrorCode, Seq, Update};
use crate::session::FrameKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use crate::upstream_status::{Histogram, LastError, Outcome, Provider, Source, UpstreamStatus, DURATION_BUCKETS};

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
    /// Publishes refused with 503 `overloaded` (too many updates waiting to be sent or fanned out).
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
