//! What one hub object counts and reports (`GET /stats`), and how the Worker merges the shards'
//! reports for `/health` and `/metrics`.

use crate::core::close::CloseReason;
use crate::core::history_budget::CatchupOutcome;
use crate::core::socket::FrameKind;
use crate::feeds::guard::ProviderLimit;
use crate::feeds::status::{Histogram, Provider, Source, UpstreamStatus};
use crate::wire::protocol::{Channel, ErrorCode, Seq};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-channel numbers for `/metrics` and `/health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    pub seq: Seq,
    /// Timestamp of the latest value, ms since the Unix epoch.
    pub latest_ts: Option<u64>,
    pub published: u64,
    pub deliveries: u64,
    pub failed_sends: u64,
    /// Sockets subscribed to the channel (on one shard; summed by [`HubStats::merge`]).
    #[serde(default)]
    pub subscribers: u64,
}

/// One row of `GET /api/channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelListing {
    pub channel: Channel,
    /// The latest seq (0: nothing published yet).
    pub seq: Seq,
    /// Timestamp of the latest value, ms since the Unix epoch (null before the first).
    pub updated_at: Option<u64>,
    /// Sockets subscribed, summed over every shard.
    pub subscribers: u64,
    pub built_in: bool,
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
    /// `/watch` reports received (shard 0): a shard starting or stopping to watch btc,
    /// debounced by the shard (`btc_watch.rs`).
    pub watch_reports: u64,
    /// Fan-outs applied (replicas).
    pub fanouts_applied: u64,
    /// `/api/snapshot` and `/api/history` reads answered by this object.
    pub api_reads: u64,
    /// Sockets' catch-ups of a channel, by how they went.
    pub catchups: BTreeMap<CatchupOutcome, u64>,
    /// Tokens refused (connect `?token=`, the `auth` op, a publish's bearer token), by
    /// `auth::TokenError::reason` (a bounded set).
    #[serde(default)]
    pub auth_failures: BTreeMap<String, u64>,
    /// Socket publishes sequenced (counted by the shard the socket is on).
    #[serde(default)]
    pub socket_publishes: u64,
    /// Conflated classes' ticks (`core/conflation.rs`), and the messages they built: one or
    /// two per class that changed (full, delta), plus one per distinct base of fresh sockets.
    #[serde(default)]
    pub conflation_ticks: u64,
    #[serde(default)]
    pub conflation_frames_built: u64,
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
    /// Each shard object's wasm linear memory in bytes (it grows and never shrinks).
    #[serde(default)]
    pub wasm_memory_bytes: BTreeMap<u32, u64>,
    pub counters: Counters,
    pub channels: BTreeMap<Channel, ChannelStats>,
    /// Kept by the sequencer (shard 0) only.
    pub upstreams: BTreeMap<Source, UpstreamStatus>,
    #[serde(default)]
    pub providers: BTreeMap<Provider, ProviderLimit>,
    /// Presence members summed over presence channels (shard 0's global table; 0 from the
    /// other shards, so the merge's sum is the global count).
    #[serde(default)]
    pub presence_members: u64,
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
        self.presence_members += other.presence_members;
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
        add(&mut self.counters.catchups, &other.counters.catchups);
        add(&mut self.counters.auth_failures, &other.counters.auth_failures);
        self.counters.socket_publishes += other.counters.socket_publishes;
        self.counters.conflation_ticks += other.counters.conflation_ticks;
        self.counters.conflation_frames_built += other.counters.conflation_frames_built;
        add(&mut self.reads, &other.reads);
        add(&mut self.wasm_memory_bytes, &other.wasm_memory_bytes);
        for (c, s) in other.channels {
            let mine = self.channels.entry(c).or_default();
            mine.seq = mine.seq.max(s.seq);
            mine.latest_ts = mine.latest_ts.max(s.latest_ts);
            mine.published += s.published;
            mine.deliveries += s.deliveries;
            mine.failed_sends += s.failed_sends;
            mine.subscribers += s.subscribers;
        }
        for (source, status) in other.upstreams {
            self.upstreams.entry(source).or_insert(status);
        }
        for (provider, limit) in other.providers {
            self.providers.entry(provider).or_insert(limit);
        }
    }
}

impl HubStats {
    /// `GET /api/channels`: every built-in channel (published to yet or not) and every app
    /// channel that exists, by name. Subscriptions to names nobody has published to are not
    /// listed, so the list stays within `MAX_APP_CHANNELS` whatever clients subscribe to.
    /// Private channels are not listed: their names are their users' business.
    pub fn channel_list(&self) -> Vec<ChannelListing> {
        let mut names: Vec<Channel> = self.channels.keys().filter(|c| !c.is_private()).cloned().collect();
        names.extend(Channel::built_in().into_iter().filter(|c| !self.channels.contains_key(c)));
        names.sort();
        names
            .into_iter()
            .map(|channel| {
                let st = self.channels.get(&channel).cloned().unwrap_or_default();
                let built_in = channel.is_built_in();
                ChannelListing { channel, seq: st.seq, updated_at: st.latest_ts, subscribers: st.subscribers, built_in }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::status::Outcome;

    fn sample(shard: u32, sockets: u64, seq: u64, published: u64, deliveries: u64) -> HubStats {
        let mut s = HubStats::default();
        s.sockets.insert(shard, sockets);
        s.counters.connections_opened = sockets;
        s.counters.connections_closed.insert(CloseReason::Client, 1);
        s.counters.rejected.insert(ErrorCode::BadJson, 2);
        let c = ChannelStats {
            seq: Seq(seq),
            latest_ts: Some(seq * 10),
            published,
            deliveries,
            failed_sends: 1,
            subscribers: sockets,
        };
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
        assert_eq!(btc.subscribers, 5, "summed over shards");
    }

    #[test]
    fn the_channel_list_has_every_built_in_and_each_app_channel_once() {
        let mut total = sample(0, 3, 5, 5, 15);
        let news = Channel::parse("news").unwrap();
        let app = ChannelStats { seq: Seq(2), latest_ts: Some(7), subscribers: 1, ..ChannelStats::default() };
        total.channels.insert(Channel::parse("private-a").unwrap(), app.clone());
        total.channels.insert(news.clone(), app.clone());
        let mut replica = sample(1, 2, 4, 0, 8);
        replica.channels.insert(news, ChannelStats { published: 0, ..app });
        total.merge(replica);
        let list = total.channel_list();
        let names: Vec<&str> = list.iter().map(|l| l.channel.as_str()).collect();
        assert_eq!(names, ["btc", "indicators", "market", "news", "sentiment"], "private-a is not listed");
        assert_eq!(
            (list[0].seq, list[0].updated_at, list[0].subscribers, list[0].built_in),
            (Seq(5), Some(50), 5, true)
        );
        assert_eq!((list[1].seq, list[1].updated_at, list[1].subscribers), (Seq(0), None, 0), "not published yet");
        assert_eq!(
            (list[3].seq, list[3].updated_at, list[3].subscribers, list[3].built_in),
            (Seq(2), Some(7), 2, false)
        );
    }
}
