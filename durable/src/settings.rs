//! Typed settings from wrangler vars, shared by the Worker and the hub: one parser for numbers
//! with defaults and ranges, and the hub's limits.

use std::fmt;

/// A var that is set but unusable; names the var so an operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub var: &'static str,
    pub problem: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wrangler var {}: {}", self.var, self.problem)
    }
}

impl std::error::Error for SettingError {}

/// Reads vars through a lookup function; unset or blank vars take their defaults.
pub struct Vars<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn text(&self, var: &str) -> Option<String> {
        (self.0)(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A whole number in `min..=max`, or `default` when unset.
    pub fn number(&self, var: &'static str, default: u64, min: u64, max: u64) -> Result<u64, SettingError> {
        let Some(raw) = self.text(var) else { return Ok(default) };
        let n: u64 =
            raw.parse().map_err(|_| SettingError { var, problem: format!("{raw:?} is not a whole number") })?;
        if !(min..=max).contains(&n) {
            return Err(SettingError { var, problem: format!("{n} is outside {min}..={max}") });
        }
        Ok(n)
    }
}

/// Bounds of the group-commit queue (`core/commit.rs`) (`MAX_PENDING_UPDATES`, `MAX_PENDING_BYTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitLimits {
    pub max_updates: usize,
    pub max_bytes: usize,
}

impl Default for CommitLimits {
    fn default() -> Self {
        CommitLimits { max_updates: 1000, max_bytes: 1 << 20 }
    }
}

/// The largest `MAX_SUBSCRIPTIONS`. A socket's subscriptions travel in its hibernation
/// attachment, which the runtime caps at 16 KiB (16,384 serialized bytes on workerd 1.20261117;
/// it was 2 KiB, and the ceiling 40): 400 names of 32 characters are about 14 KB with the
/// attachment's other fields, which leaves 2 KiB of room (a host test below checks it, and
/// `tests/e2e/frames.rs` a socket holding 400 such names on the pinned runtime).
pub const MAX_SUBSCRIPTIONS_CEILING: usize = 400;

/// The largest `MAX_PRESENCE_MEMBERS`: a full list of members of 64-byte subs and 512-byte
/// infos is then about 600 KB, within the runtime's 1 MiB WebSocket message.
pub const MAX_PRESENCE_MEMBERS_CEILING: usize = 1000;

/// The hub's limits (README documents each var).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubLimits {
    /// `HISTORY_LEN`: updates kept per channel for resume.
    pub history_len: u64,
    /// `MAX_CLIENT_FRAME_BYTES`: a larger client frame closes the socket with 1009.
    pub max_client_frame_bytes: usize,
    /// `MAX_SUBSCRIPTIONS`: channels one socket may subscribe to.
    pub max_subscriptions: usize,
    /// `CLIENT_MSGS_PER_10S`: client messages allowed per 10 s window before the socket is closed.
    pub client_msgs_per_10s: u32,
    /// `HUB_SHARDS`: objects the sockets are spread over.
    pub shards: u32,
    /// `MAX_PENDING_UPDATES`, `MAX_PENDING_BYTES`: updates waiting to be sent (or fanned out)
    /// past which publishes are refused with 503 `overloaded`.
    pub commit: CommitLimits,
    /// `GROUP_COMMIT_LINGER_MS`: how long a flush waits for more updates to join it (0: only
    /// those already waiting to run).
    pub linger_ms: u64,
    /// `COUNTERS_FLUSH_SECONDS`: counters changed by connects, closes and client frames are
    /// written at most this long after the first change.
    pub counters_flush_seconds: u64,
    /// `MAX_PUBLISH_BYTES`: largest accepted publish body.
    pub max_publish_bytes: usize,
    /// `HISTORY_PAGE_BYTES`: stored JSON one `/api/history` answer carries at most (beyond one
    /// update, which always fits).
    pub history_page_bytes: usize,
    /// `REPLAY_BYTES_PER_10S`: what one socket's catch-ups may read and send per 10 s window
    /// (`history_budget::ReplayWindow`); one request sends at most `history_page_bytes`.
    pub replay_bytes_per_10s: usize,
    /// `FANOUT_TIMEOUT_MS`: how long the sequencer waits for one shard's `/apply`.
    pub fanout_timeout_ms: u64,
    /// `MAX_APP_CHANNELS`: app channels that may exist at once; a publish that would create one
    /// more is refused with 409 `too_many_channels` until one is deleted.
    pub max_app_channels: usize,
    /// `MAX_PRESENCE_MEMBERS`: members a presence channel's lists show; past it, presence
    /// frames and `/api/presence` carry the count only.
    pub max_presence_members: usize,
    /// `PRESENCE_SILENT_SECONDS`: a socket on a presence channel with no frame and no `ping`
    /// answered for this long is closed (4008) and leaves.
    pub presence_silent_seconds: u64,
    /// `TEST_APPLY_DELAY_MS` (test only, the faults suite): how long the last shard waits
    /// before applying a fan-out; 0 in production.
    pub test_apply_delay_ms: u64,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            history_len: 300,
            max_client_frame_bytes: 4096,
            max_subscriptions: 32,
            client_msgs_per_10s: 50,
            shards: 1,
            commit: CommitLimits::default(),
            linger_ms: 0,
            counters_flush_seconds: 5,
            max_publish_bytes: 64 * 1024,
            history_page_bytes: 1 << 20,
            replay_bytes_per_10s: 1 << 20,
            fanout_timeout_ms: 2000,
            max_app_channels: 1000,
            max_presence_members: 100,
            presence_silent_seconds: 60,
            test_apply_delay_ms: 0,
        }
    }
}

impl HubLimits {
    /// How long shard `shard` waits before it applies a fan-out: `test_apply_delay_ms` on the
    /// last shard only (the faults suite's slow shard), nothing anywhere else.
    pub fn test_apply_delay(&self, shard: u32) -> u64 {
        if self.shards > 1 && shard + 1 == self.shards {
            self.test_apply_delay_ms
        } else {
            0
        }
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<HubLimits, SettingError> {
        let d = HubLimits::default();
        Ok(HubLimits {
            history_len: vars.number("HISTORY_LEN", d.history_len, 1, 10_000)?,
            max_client_frame_bytes: vars.number(
                "MAX_CLIENT_FRAME_BYTES",
                d.max_client_frame_bytes as u64,
                64,
                1 << 20,
            )? as usize,
            max_subscriptions: vars.number(
                "MAX_SUBSCRIPTIONS",
                d.max_subscriptions as u64,
                1,
                MAX_SUBSCRIPTIONS_CEILING as u64,
            )? as usize,
            client_msgs_per_10s: vars.number("CLIENT_MSGS_PER_10S", d.client_msgs_per_10s as u64, 1, 100_000)? as u32,
            shards: vars.number("HUB_SHARDS", d.shards as u64, 1, 64)? as u32,
            commit: CommitLimits {
                max_updates: vars.number("MAX_PENDING_UPDATES", d.commit.max_updates as u64, 1, 100_000)? as usize,
                max_bytes: vars.number("MAX_PENDING_BYTES", d.commit.max_bytes as u64, 1024, 64 << 20)? as usize,
            },
            linger_ms: vars.number("GROUP_COMMIT_LINGER_MS", d.linger_ms, 0, 1000)?,
            counters_flush_seconds: vars.number("COUNTERS_FLUSH_SECONDS", d.counters_flush_seconds, 1, 3600)?,
            max_publish_bytes: vars.number("MAX_PUBLISH_BYTES", d.max_publish_bytes as u64, 16, 1 << 20)? as usize,
            history_page_bytes: vars.number("HISTORY_PAGE_BYTES", d.history_page_bytes as u64, 1024, 16 << 20)?
                as usize,
            replay_bytes_per_10s: vars.number("REPLAY_BYTES_PER_10S", d.replay_bytes_per_10s as u64, 1024, 64 << 20)?
                as usize,
            fanout_timeout_ms: vars.number("FANOUT_TIMEOUT_MS", d.fanout_timeout_ms, 50, 60_000)?,
            max_app_channels: vars.number("MAX_APP_CHANNELS", d.max_app_channels as u64, 1, 100_000)? as usize,
            max_presence_members: vars.number(
                "MAX_PRESENCE_MEMBERS",
                d.max_presence_members as u64,
                0,
                MAX_PRESENCE_MEMBERS_CEILING as u64,
            )? as usize,
            presence_silent_seconds: vars.number("PRESENCE_SILENT_SECONDS", d.presence_silent_seconds, 4, 3600)?,
            test_apply_delay_ms: vars.number("TEST_APPLY_DELAY_MS", d.test_apply_delay_ms, 0, 600_000)?,
        })
    }
}

/// A secret setting: never shown by `Debug` (or anything else that prints the config).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this secret, compared in time independent of where they differ,
    /// so response timing does not leak how much of a guess was right.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (presented.as_bytes(), self.0.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
        }
        diff == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_of_several_shards_is_slowed_for_tests() {
        let limits = HubLimits { shards: 3, test_apply_delay_ms: 300, ..HubLimits::default() };
        assert_eq!([0, 1, 2].map(|k| limits.test_apply_delay(k)), [0, 0, 300]);
        let single = HubLimits { shards: 1, test_apply_delay_ms: 300, ..HubLimits::default() };
        assert_eq!(single.test_apply_delay(0), 0);
    }
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Vars(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn numbers_default_parse_and_range_check() {
        let v = vars(&[("A", "12"), ("B", " "), ("C", "x"), ("D", "99")]);
        assert_eq!(v.number("A", 1, 0, 100), Ok(12));
        assert_eq!(v.number("B", 7, 0, 100), Ok(7));
        assert_eq!(v.number("UNSET", 7, 0, 100), Ok(7));
        assert!(v.number("C", 1, 0, 100).unwrap_err().to_string().contains("C: \"x\" is not a whole number"));
        assert!(v.number("D", 1, 0, 50).unwrap_err().problem.contains("outside 0..=50"));
    }

    /// The attachment of a socket at the ceiling, with the longest names, the widest numbers,
    /// every subscription conflated and the largest grant (its presence `info` included), leaves
    /// 512 bytes of the runtime's 16 KiB (as JSON, which is a little larger than the runtime's
    /// serialization of the same record: a name costs 35 bytes here, 34 there).
    #[test]
    fn the_largest_attachment_fits_the_runtime_cap_with_room() {
        let mut meta = crate::core::socket::SocketMeta::new("f".repeat(16));
        for i in 0..MAX_SUBSCRIPTIONS_CEILING {
            let name = format!("{i:0>32}");
            meta.channels.push(crate::wire::protocol::Channel::parse(&name).unwrap());
        }
        (meta.window_start, meta.window_msgs, meta.closing, meta.delta) = (u64::MAX, u32::MAX, true, true);
        // Every subscription conflated (`every`: two channels' intervals per character).
        meta.every = "y".repeat(MAX_SUBSCRIPTIONS_CEILING / 2);
        // And the largest grant a token can carry: the longest sub, MAX_CAPS of the longest keys.
        let caps: serde_json::Map<String, serde_json::Value> = (0..crate::auth::MAX_CAPS)
            .map(|i| (format!("{i:x>32}*"), serde_json::json!(["subscribe", "history", "publish", "presence"])))
            .collect();
        let caps = crate::auth::Caps::from_claim(&serde_json::Value::Object(caps)).unwrap();
        let sub = "s".repeat(crate::auth::MAX_SUB_BYTES);
        // `info` at its bound: a one-field object whose compact JSON is MAX_INFO_BYTES.
        let text = "i".repeat(crate::auth::MAX_INFO_BYTES - 8);
        let info = serde_json::json!({ "n": text }).as_object().cloned();
        meta.grant = Some(crate::auth::access::Grant { sub, exp: u64::MAX, caps, info });
        let bytes = serde_json::to_string(&meta).unwrap().len();
        assert!(bytes <= 16 * 1024 - 512, "{bytes} bytes");
    }

    #[test]
    fn hub_limits() {
        assert_eq!(HubLimits::from_vars(&vars(&[])).unwrap(), HubLimits::default());
        let l = HubLimits::from_vars(&vars(&[("HISTORY_LEN", "5"), ("HUB_SHARDS", "4")])).unwrap();
        assert_eq!((l.history_len, l.shards), (5, 4));
        assert_eq!(HubLimits::from_vars(&vars(&[("HISTORY_LEN", "0")])).unwrap_err().var, "HISTORY_LEN");
        let l = HubLimits::from_vars(&vars(&[("REPLAY_BYTES_PER_10S", "4096")])).unwrap();
        assert_eq!(l.replay_bytes_per_10s, 4096);
        let e = HubLimits::from_vars(&vars(&[("REPLAY_BYTES_PER_10S", "1023")])).unwrap_err();
        assert_eq!(e.var, "REPLAY_BYTES_PER_10S");
        assert_eq!(HubLimits::default().max_presence_members, 100);
        let l = HubLimits::from_vars(&vars(&[("MAX_PRESENCE_MEMBERS", "2")])).unwrap();
        assert_eq!(l.max_presence_members, 2);
        let e = HubLimits::from_vars(&vars(&[("MAX_PRESENCE_MEMBERS", "1001")])).unwrap_err();
        assert_eq!(e.var, "MAX_PRESENCE_MEMBERS");
        let e = HubLimits::from_vars(&vars(&[("PRESENCE_SILENT_SECONDS", "3")])).unwrap_err();
        assert_eq!(e.var, "PRESENCE_SILENT_SECONDS");
    }
}
