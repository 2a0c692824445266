//! How `/api/snapshot` presents a channel's latest value: from the hub (live), or from its KV
//! copy when the hub cannot be reached; with its age and whether it is stale.

use serde::Serialize;
use serde_json::Value;
use tickwire_hub::feeds::kv::StoredValue;
use tickwire_hub::wire::bodies::ChannelSnapshot;
use tickwire_hub::wire::protocol::{Channel, Seq};

/// Where a snapshot entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotSource {
    Hub,
    /// KV's copy: written at most every `KV_MIN_WRITE_SECONDS`, so it may lag the hub.
    Kv,
}

/// One channel in `/api/snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotEntry {
    pub channel: Channel,
    pub seq: Seq,
    pub data: Value,
    /// RFC 3339 time the value was first observed.
    pub fetched_at: String,
    /// RFC 3339 time a fetch last confirmed it.
    pub confirmed_at: String,
    /// Seconds since it was last confirmed.
    pub age_seconds: u64,
    pub stale: bool,
    pub source: SnapshotSource,
}

impl SnapshotEntry {
    pub fn new(s: ChannelSnapshot, source: SnapshotSource, now_ms: u64, stale_after_seconds: u64) -> SnapshotEntry {
        // Records from before confirmations were kept count from when the value was fetched.
        let confirmed_at = s.confirmed_at.max(s.fetched_at);
        let age_seconds = now_ms.saturating_sub(confirmed_at) / 1000;
        SnapshotEntry {
            channel: s.channel,
            seq: s.seq,
            data: s.data,
            fetched_at: rfc3339(s.fetched_at),
            confirmed_at: rfc3339(confirmed_at),
            age_seconds,
            stale: age_seconds > stale_after_seconds,
            source,
        }
    }

    pub fn from_hub(stale_after_seconds: u64, s: ChannelSnapshot, now_ms: u64) -> SnapshotEntry {
        SnapshotEntry::new(s, SnapshotSource::Hub, now_ms, stale_after_seconds)
    }

    pub fn from_kv(stale_after_seconds: u64, v: StoredValue, now_ms: u64) -> SnapshotEntry {
        let s = ChannelSnapshot {
            channel: v.channel,
            seq: v.seq,
            data: v.data,
            fetched_at: v.fetched_at,
            confirmed_at: v.confirmed_at,
        };
        SnapshotEntry::new(s, SnapshotSource::Kv, now_ms, stale_after_seconds)
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

    #[test]
    fn age_counts_from_the_last_confirmation() {
        let hub = ChannelSnapshot {
            channel: Channel::btc(),
            seq: Seq(3),
            data: json!(1),
            fetched_at: 1_700_000_000_000,
            confirmed_at: 1_700_000_100_000,
        };
        let e = SnapshotEntry::from_hub(180, hub, 1_700_000_281_500);
        assert_eq!((e.age_seconds, e.stale, e.source), (181, true, SnapshotSource::Hub));
        assert_eq!(e.fetched_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(e.confirmed_at, "2023-11-14T22:15:00.000Z");
    }

    #[test]
    fn kv_records_and_clock_skew() {
        let v =
            StoredValue { channel: Channel::btc(), seq: Seq(1), fetched_at: 5_000, confirmed_at: 0, data: json!(1) };
        let e = SnapshotEntry::from_kv(180, v, 3_000);
        assert_eq!((e.age_seconds, e.stale, e.source), (0, false, SnapshotSource::Kv), "never a negative age");
        assert_eq!(e.confirmed_at, e.fetched_at, "old records count from the fetch");
    }
}
