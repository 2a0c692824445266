//! What the hub mirrors into Workers KV: typed keys and the stored record. KV is the durable,
//! globally readable copy of each built-in channel's latest value; `/api/snapshot` falls back to
//! it when the hub cannot be reached.

use crate::wire::protocol::{Channel, Seq};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The KV namespace binding (wrangler.toml).
pub const KV_BINDING: &str = "TICKWIRE_KV";

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
    #[serde(default)]
    pub seq: Seq,
    /// When the value was first observed, ms since the Unix epoch.
    pub fetched_at: u64,
    /// When a fetch last confirmed it (at the time of this write).
    #[serde(default)]
    pub confirmed_at: u64,
    pub data: Value,
}

/// Whether a channel's KV copy should be rewritten now: it changed since the last write, and
/// the last write is at least `min_interval_ms` old. KV's free plan allows 1,000 writes a day;
/// a change that comes too soon is written by a later round, so the copy never stays behind.
pub fn kv_write_due(dirty: bool, last_write: Option<u64>, now: u64, min_interval_ms: u64) -> bool {
    dirty && last_write.is_none_or(|t| now.saturating_sub(t) >= min_interval_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_typed() {
        assert_eq!(KvKey::Latest(Channel::btc()).to_string(), "latest:btc");
    }

    #[test]
    fn write_policy() {
        assert!(kv_write_due(true, None, 0, 300_000), "first value is written at once");
        assert!(!kv_write_due(false, Some(0), 900_000, 300_000), "unchanged: nothing to write");
        assert!(!kv_write_due(true, Some(0), 299_999, 300_000), "changed, but too soon");
        assert!(kv_write_due(true, Some(0), 300_000, 300_000));
        assert!(kv_write_due(true, Some(5), 5, 0), "0 disables the throttle");
    }

    #[test]
    fn old_records_still_read() {
        let v: StoredValue = serde_json::from_str(r#"{"channel":"btc","fetched_at":5,"data":1}"#).unwrap();
        assert_eq!((v.seq, v.confirmed_at), (Seq(0), 0));
    }
}
