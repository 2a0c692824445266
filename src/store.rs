//! What tickwire keeps in Workers KV: typed keys, the stored record, when to rewrite it, and
//! how `/api/snapshot` presents it (age and staleness).

use durable::protocol::Channel;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// A KV key. Only this type builds key strings, so readers and writers cannot drift apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvKey {
    /// The latest value of a channel: `latest:<channel>`.
    Latest(Channel),
}

impl fmt::Display for KvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvKey::Latest(c) => write!(f, "latest:{c}"),
        }
    }
}

/// The record stored under [`KvKey::Latest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredValue {
    pub channel: Channel,
    /// When the value was fetched upstream, ms since the Unix epoch.
    pub fetched_at: u64,
    pub data: Value,
}

/// Whether a freshly fetched value should be written over `previous`.
///
/// KV's free plan allows 1,000 writes a day, so a value is written when it is the first, or when
/// it differs from the stored one and the stored one is at least `min_interval_ms` old.
/// An unchanged value is never rewritten: the stored record's `fetched_at` then tells how long
/// the value has held, which is what its age means.
pub fn should_write(previous: Option<&StoredValue>, next: &StoredValue, min_interval_ms: u64) -> bool {
    match previous {
        None => true,
        Some(prev) => prev.data != next.data && next.fetched_at.saturating_sub(prev.fetched_at) >= min_interval_ms,
    }
}

/// One channel in `/api/snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotEntry {
    pub channel: Channel,
    pub data: Value,
    /// RFC 3339 time the value was fetched.
    pub fetched_at: String,
    pub age_seconds: u64,
    pub stale: bool,
}

impl SnapshotEntry {
    pub fn from_stored(v: StoredValue, now_ms: u64, stale_after_seconds: u64) -> SnapshotEntry {
        let age_seconds = now_ms.saturating_sub(v.fetched_at) / 1000;
        SnapshotEntry {
            channel: v.channel,
            data: v.data,
            fetched_at: rfc3339(v.fetched_at),
            age_seconds,
            stale: age_seconds > stale_after_seconds,
        }
    }
}

/// Formats ms since the epoch as RFC 3339 UTC, e.g. `2026-11-23T01:23:45.678Z`.
pub fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(at: u64, price: f64) -> StoredValue {
        StoredValue { channel: Channel::btc(), fetched_at: at, data: json!({ "price_usd": price }) }
    }

    #[test]
    fn keys_are_typed() {
        assert_eq!(KvKey::Latest(Channel::btc()).to_string(), "latest:btc");
    }

    #[test]
    fn write_policy() {
        assert!(should_write(None, &v(0, 1.0), 90_000), "first value is always written");
        assert!(!should_write(Some(&v(0, 1.0)), &v(500_000, 1.0), 90_000), "unchanged value is not rewritten");
        assert!(!should_write(Some(&v(0, 1.0)), &v(60_000, 2.0), 90_000), "changed, but too soon");
        assert!(should_write(Some(&v(0, 1.0)), &v(90_000, 2.0), 90_000));
        assert!(should_write(Some(&v(0, 1.0)), &v(0, 2.0), 0), "0 disables the throttle");
    }

    #[test]
    fn snapshot_age_and_staleness() {
        let e = SnapshotEntry::from_stored(v(1_700_000_000_000, 5.0), 1_700_000_181_500, 180);
        assert_eq!(e.age_seconds, 181);
        assert!(e.stale);
        assert_eq!(e.fetched_at, "2023-11-14T22:13:20.000Z");
        let e = SnapshotEntry::from_stored(v(1_000, 5.0), 500, 180);
        assert_eq!((e.age_seconds, e.stale), (0, false), "clock skew never gives a negative age");
    }
}
