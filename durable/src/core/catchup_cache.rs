//! Catch-ups built once: sockets that resume a channel from the same position at the same
//! moment (a reconnect storm: every client of a channel holds the same last seq) share one
//! catch-up, read from storage and framed once, as a broadcast's frames are shared. Also
//! remembered: a gap found too large for a catch-up, so a storm of them reads it once.
//!
//! An entry is keyed by the channel, its epoch and the range `from..=to`, where `to` is the
//! channel's seq when the entry was built: a catch-up always runs to the current seq, so an
//! entry is only ever found while the channel has not moved. Entries of a channel that moved
//! are dropped when the next one of that channel is kept, and the cache is bounded in entries
//! and bytes (memory only: a woken object starts empty).

use crate::wire::protocol::{Channel, Epoch, Seq};
use std::collections::VecDeque;
use std::rc::Rc;

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchupKey {
    pub channel: Channel,
    pub epoch: Epoch,
    pub from: Seq,
    pub to: Seq,
    /// Whether the last update is marked stale (a built-in channel whose upstream is failing).
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The `update` frames of the range, JSON text joined by commas (a piece of a `batch`), how
    /// many, and the stored bytes they were built from (what a replay of them costs a socket).
    Built { frames: Rc<str>, count: usize, stored_bytes: usize },
    /// The range is larger than `over` stored bytes: a replay allowed no more is refused unread.
    TooLarge { over: usize },
}

impl Cached {
    fn bytes(&self) -> usize {
        match self {
            Cached::Built { frames, .. } => frames.len(),
            Cached::TooLarge { .. } => 0,
        }
    }
}

/// The cache; oldest entries go first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatchupCache {
    entries: VecDeque<(CatchupKey, Cached)>,
    bytes: usize,
}

impl CatchupCache {
    pub fn get(&self, key: &CatchupKey) -> Option<&Cached> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Keeps `value` under `key`, within [`MAX_ENTRIES`] and `max_bytes` of frames (a value
    /// larger than that is not kept). Entries of the key's channel at another position go:
    /// the channel has moved, so they can never be found again.
    pub fn insert(&mut self, key: CatchupKey, value: Cached, max_bytes: usize) {
        let dead = |k: &CatchupKey| k.channel == key.channel && (k.epoch != key.epoch || k.to != key.to || *k == key);
        let bytes = &mut self.bytes;
        self.entries.retain(|(k, v)| {
            let keep = !dead(k);
            if !keep {
                *bytes -= v.bytes();
            }
            keep
        });
        if value.bytes() > max_bytes {
            return;
        }
        self.bytes += value.bytes();
        self.entries.push_back((key, value));
        while self.entries.len() > MAX_ENTRIES || self.bytes > max_bytes {
            if let Some((_, v)) = self.entries.pop_front() {
                self.bytes -= v.bytes();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of frames held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(channel: &str, from: u64, to: u64) -> CatchupKey {
        CatchupKey {
            channel: Channel::parse(channel).unwrap(),
            epoch: Epoch("e".into()),
            from: Seq(from),
            to: Seq(to),
            stale: false,
        }
    }

    fn built(text: &str) -> Cached {
        Cached::Built { frames: text.into(), count: 1, stored_bytes: text.len() }
    }

    #[test]
    fn found_only_at_the_same_position_epoch_and_staleness() {
        let mut c = CatchupCache::default();
        c.insert(key("news", 5, 9), built("abc"), 100);
        assert_eq!(c.get(&key("news", 5, 9)), Some(&built("abc")));
        assert_eq!(c.get(&key("news", 6, 9)), None);
        assert_eq!(c.get(&CatchupKey { stale: true, ..key("news", 5, 9) }), None);
        assert_eq!(c.get(&CatchupKey { epoch: Epoch("f".into()), ..key("news", 5, 9) }), None);
        // Other starting points at the same seq live side by side.
        c.insert(key("news", 7, 9), Cached::TooLarge { over: 10 }, 100);
        assert_eq!((c.len(), c.bytes()), (2, 3));
    }

    #[test]
    fn a_channel_that_moved_drops_its_old_entries() {
        let mut c = CatchupCache::default();
        c.insert(key("news", 5, 9), built("abc"), 100);
        c.insert(key("news", 7, 9), built("de"), 100);
        c.insert(key("btc", 1, 9), built("f"), 100);
        c.insert(key("news", 5, 10), built("ghij"), 100);
        assert_eq!(c.get(&key("news", 5, 9)), None);
        assert_eq!(c.get(&key("news", 7, 9)), None);
        assert_eq!(c.get(&key("btc", 1, 9)), Some(&built("f")), "other channels stay");
        assert_eq!((c.len(), c.bytes()), (2, 5));
        c.insert(key("news", 5, 10), built("k"), 100);
        assert_eq!((c.len(), c.bytes()), (2, 2), "the same key is replaced, not doubled");
    }

    #[test]
    fn bounded_in_entries_and_bytes() {
        let mut c = CatchupCache::default();
        for i in 0..100 {
            c.insert(key(&format!("c{i}"), 1, 2), built("xy"), 1_000);
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        assert!(c.get(&key("c99", 1, 2)).is_some() && c.get(&key("c0", 1, 2)).is_none(), "oldest go first");
        c.insert(key("big", 1, 2), built(&"z".repeat(990)), 1_000);
        assert!(c.bytes() <= 1_000, "{}", c.bytes());
        assert!(c.get(&key("big", 1, 2)).is_some());
        c.insert(key("huge", 1, 2), built(&"z".repeat(1_001)), 1_000);
        assert!(c.get(&key("huge", 1, 2)).is_none(), "larger than the whole cache: not kept");
        assert!(c.bytes() <= 1_000);
    }
}
