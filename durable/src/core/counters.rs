//! The core's counters: frames, rejections, closes, deliveries, KV writes and overloads, when
//! they are due to be written, and the stats `/metrics` and `/health` read.

use super::HubCore;
use crate::core::close::CloseReason;
use crate::core::socket::Action;
use crate::core::stats::{ChannelStats, HubStats, Internal};
use crate::core::storage_key::StorageKey;
use crate::wire::protocol::{Channel, ServerFrame};
use std::collections::BTreeMap;

impl HubCore {
    /// Counts a frame that was refused before it was parsed (binary frames).
    pub fn counted_invalid(&mut self, actions: &[Action]) {
        *self.counters.frames.entry(crate::core::socket::FrameKind::Invalid).or_insert(0) += 1;
        self.count_rejections(actions);
    }

    pub(super) fn count_rejections(&mut self, actions: &[Action]) {
        for a in actions {
            if let Action::Send(ServerFrame::Error { code, .. }) = a {
                *self.counters.rejected.entry(*code).or_insert(0) += 1;
            }
        }
    }

    /// A token refused, by `TokenError::reason`.
    pub fn count_token_refused(&mut self, reason: &str) {
        *self.counters.auth_failures.entry(reason.to_owned()).or_insert(0) += 1;
    }

    /// A socket's publish sequenced.
    pub fn count_socket_publish(&mut self) {
        self.counters.socket_publishes += 1;
    }

    /// How long one broadcast took, start to stored and fanned out (the runtime's clock only
    /// moves across I/O, so this is what the storage writes and fan-out cost, not the CPU).
    pub fn record_broadcast(&mut self, ms: u64) {
        self.counters.broadcast_durations.observe(ms);
    }

    /// Counts KV writes; failed channels are due again (returned: the keys to persist).
    pub fn kv_writes_done(&mut self, ok: u64, failed: &[Channel]) -> Vec<StorageKey> {
        self.counters.kv_writes += ok;
        self.counters.kv_write_failures += failed.len() as u64;
        let mut dirty = vec![StorageKey::Counters];
        for c in failed {
            if let Some(m) = self.channels.get_mut(c) {
                m.kv_dirty = true;
                dirty.push(StorageKey::Meta(c.clone()));
            }
        }
        dirty
    }

    pub fn closed(&mut self, reason: CloseReason) {
        *self.counters.connections_closed.entry(reason).or_insert(0) += 1;
    }

    /// Counts a broadcast's sends. Called before the channel's meta is persisted, so the
    /// counts ride along with that write.
    pub fn record_delivery(&mut self, channel: &Channel, delivered: u64, failed: u64) {
        if let Some(m) = self.channels.get_mut(channel) {
            m.deliveries += delivered;
            m.failed_sends += failed;
            self.deliveries_unsaved.insert(channel.clone());
        }
    }

    /// Something changed counters (a connect, close, client frame, delivery): they are written
    /// within `COUNTERS_FLUSH_SECONDS`, by the alarm or with the next write that happens anyway.
    /// Returns whether they just became due (the alarm may need moving).
    pub fn counters_changed(&mut self, now: u64) -> bool {
        let flush_ms = self.limits.counters_flush_seconds * 1000;
        self.upkeep.counters_changed(now, flush_ms)
    }

    /// The keys that carry counters not yet written, for the alarm (empty when nothing is due):
    /// the counters and the metas of channels whose delivery counts moved.
    pub fn take_unsaved_counters(&mut self) -> Vec<StorageKey> {
        if !self.upkeep.take_flush() {
            return Vec::new();
        }
        self.unsaved_counter_keys()
    }

    /// The same, to ride along with a write that happens anyway, once they are due by `now`.
    pub fn take_due_counters(&mut self, now: u64) -> Vec<StorageKey> {
        if !self.upkeep.take_flush_if_due(now) {
            return Vec::new();
        }
        self.unsaved_counter_keys()
    }

    fn unsaved_counter_keys(&mut self) -> Vec<StorageKey> {
        let mut keys = vec![StorageKey::Counters];
        keys.extend(std::mem::take(&mut self.deliveries_unsaved).into_iter().map(StorageKey::Meta));
        keys
    }

    /// A publish refused with 503 `overloaded`.
    pub fn count_overloaded(&mut self) {
        self.counters.publishes_overloaded += 1;
    }

    /// A request between the Worker and the shards worth watching: a `/watch` report (shard 0),
    /// a fan-out applied (a replica), or an `/api/snapshot` or `/api/history` read answered.
    pub fn count_internal(&mut self, what: Internal) {
        let c = &mut self.counters;
        match what {
            Internal::WatchReport => c.watch_reports += 1,
            Internal::FanoutApplied => c.fanouts_applied += 1,
            Internal::ApiRead => c.api_reads += 1,
        }
    }

    /// This object's report; `subscribers` says how many of its sockets hold a channel. Every
    /// built-in channel is reported, published to yet or not (its subscribers count from the
    /// start); app channels once they exist, so names nobody publishes to are never reported.
    pub fn stats(&self, shard: u32, sockets: u64, subscribers: impl Fn(&Channel) -> u64) -> HubStats {
        let mut channels: BTreeMap<Channel, ChannelStats> = self
            .channels
            .iter()
            .map(|(c, m)| {
                let stats = ChannelStats {
                    seq: m.seq,
                    latest_ts: m.latest.as_ref().map(|l| l.ts),
                    published: m.published,
                    deliveries: m.deliveries,
                    failed_sends: m.failed_sends,
                    subscribers: subscribers(c),
                };
                (c.clone(), stats)
            })
            .collect();
        for c in Channel::built_in() {
            channels
                .entry(c)
                .or_insert_with_key(|c| ChannelStats { subscribers: subscribers(c), ..ChannelStats::default() });
        }
        HubStats {
            sockets: BTreeMap::from([(shard, sockets)]),
            reads: BTreeMap::from([(shard, self.counters.api_reads)]),
            wasm_memory_bytes: BTreeMap::new(), // the glue knows it
            counters: self.counters.clone(),
            channels,
            upstreams: self.upstreams.clone(),
            providers: self.providers.clone(),
            presence_members: 0, // the glue knows it (shard 0's table)
        }
    }
}
