//! Wire protocol v1: the JSON frames a client and the hub exchange over `/ws`.
//!
//! Every frame is a serde enum with a `type` (server → client) or `op` (client → server) tag,
//! so a new frame kind is a compile error everywhere it is not handled, not a silent string typo.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The protocol version announced in `welcome`; bumped only for incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// The keep-alive a client sends as a text message, which the runtime answers with [`PONG`]
/// without waking the hub (a hibernating object stays asleep).
pub const PING: &str = "ping";
/// The runtime's answer to [`PING`].
pub const PONG: &str = "pong";

/// Longest channel name accepted (bytes). Short names keep frames, storage keys and metric labels small.
pub const MAX_CHANNEL_LEN: usize = 32;

/// A validated channel name: 1..=32 bytes of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Channel(String);

/// Why a channel name was refused; the message is shown to clients as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidChannel(pub String);

impl fmt::Display for InvalidChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Channel {
    /// The channels tickwire fills from its own upstream feeds.
    pub const BUILT_IN: [&'static str; 4] = ["btc", "market", "sentiment", "indicators"];
    /// The prefixes of private channels' names: `presence-` channels (who is here) follow the
    /// same token rules as `private-` ones.
    pub const PRIVATE_PREFIXES: [&'static str; 2] = ["private-", "presence-"];

    pub fn parse(name: &str) -> Result<Self, InvalidChannel> {
        let first_ok = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if name.is_empty() || name.len() > MAX_CHANNEL_LEN || !first_ok || !rest_ok {
            return Err(InvalidChannel(format!(
                "invalid channel name {:?}: use 1-{MAX_CHANNEL_LEN} characters of a-z, 0-9, '-', '_', starting with a letter or digit",
                truncate(name, 40)
            )));
        }
        Ok(Channel(name.to_owned()))
    }

    /// A built-in channel by its constant name (names in [`Channel::BUILT_IN`] are valid by construction).
    pub fn btc() -> Self {
        Channel("btc".to_owned())
    }

    pub fn built_in() -> Vec<Channel> {
        Self::BUILT_IN.iter().map(|c| Channel((*c).to_owned())).collect()
    }

    /// A `private-` or `presence-` channel: every use needs a token's capability (`auth`).
    pub fn is_private(&self) -> bool {
        Self::PRIVATE_PREFIXES.iter().any(|p| self.0.starts_with(p))
    }

    pub fn is_built_in(&self) -> bool {
        Self::BUILT_IN.contains(&self.0.as_str())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's text, quoted back in an error, cut to `max` characters.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl TryFrom<String> for Channel {
    type Error = InvalidChannel;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Channel::parse(&s)
    }
}

impl From<Channel> for String {
    fn from(c: Channel) -> String {
        c.0
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A per-channel sequence number: 1 for the first update, then +1 with no gaps. 0 means "nothing yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A channel's storage generation: random, set when the channel's state is created. A resume
/// position from another epoch (storage was reset) cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub String);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One published value of a channel, as sent to clients and kept as the channel's latest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub channel: Channel,
    pub seq: Seq,
    /// When the value was observed (fetched upstream or published), milliseconds since the Unix epoch.
    pub ts: u64,
    /// True when the value is older than the staleness threshold (its source is failing).
    #[serde(default)]
    pub stale: bool,
    pub data: Value,
}

/// Error codes carried by `error` frames; stable strings clients may switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownOp,
    InvalidChannel,
    TooManySubscriptions,
    InvalidSince,
    InvalidDelta,
    InvalidEvery,
    RateLimited,
    /// No token, or one that does not verify (bad signature, malformed, not yet valid, ...).
    Unauthorized,
    /// A valid token without the capability the request needs.
    Forbidden,
    /// The token verified but its `exp` (plus the leeway) has passed.
    TokenExpired,
    /// A `publish` whose data is over the publish size limit.
    PayloadTooLarge,
    /// A `publish` to a built-in channel: those are filled by tickwire's feeds only.
    ChannelReserved,
    /// A `publish` that would create an app channel past `MAX_APP_CHANNELS`.
    TooManyChannels,
    /// A `publish` refused because too many updates wait to be sent or fanned out: retry later.
    Overloaded,
    /// A `publish` whose outcome is unknown: the sequencer could not be reached or did not
    /// answer in time, and it may have been sequenced (check the channel before retrying).
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::BadJson,
        ErrorCode::UnknownOp,
        ErrorCode::InvalidChannel,
        ErrorCode::TooManySubscriptions,
        ErrorCode::InvalidSince,
        ErrorCode::InvalidDelta,
        ErrorCode::InvalidEvery,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::TokenExpired,
        ErrorCode::PayloadTooLarge,
        ErrorCode::ChannelReserved,
        ErrorCode::TooManyChannels,
        ErrorCode::Overloaded,
        ErrorCode::Unavailable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::InvalidChannel => "invalid_channel",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::InvalidSince => "invalid_since",
            ErrorCode::InvalidDelta => "invalid_delta",
            ErrorCode::InvalidEvery => "invalid_every",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::ChannelReserved => "channel_reserved",
            ErrorCode::TooManyChannels => "too_many_channels",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

/// Why the hub ended a subscription the client did not end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The socket's token expired: `auth` with a fresh one, then `subscribe` with `since`.
    TokenExpired,
    /// A new token (`auth`) no longer grants the channel.
    Forbidden,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        conn: String,
        protocol: u32,
        channels: Vec<Channel>,
        /// A built-in channel's value not confirmed by its upstream for this long is stale.
        stale_after_seconds: u64,
    },
    Update(Update),
    /// An update as an RFC 7386 merge patch against the channel's value at `seq - 1`, sent
    /// instead of `update` to sockets that asked for deltas (`/ws?delta=merge`) when it is the
    /// smaller frame. `ts` and `stale` are the new update's own.
    Delta {
        channel: Channel,
        seq: Seq,
        ts: u64,
        stale: bool,
        patch: Value,
    },
    /// Ends a channel's catch-up: what came before it is all the client missed (`recovered`)
    /// or just the latest value (`!recovered`).
    Subscribed {
        channel: Channel,
        seq: Seq,
        epoch: Epoch,
        recovered: bool,
    },
    /// A subscription ended: the client asked (no `reason`), or the hub ended it (`reason`).
    Unsubscribed {
        channel: Channel,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<EndReason>,
    },
    /// A token was accepted (connect `?token=` or the `auth` op): whose, and until when (Unix
    /// seconds; the hub allows `auth::LEEWAY_SECONDS` past it).
    Authed {
        sub: String,
        exp: u64,
    },
    /// A socket's `publish` was sequenced: the channel's new seq, and the client's `id` if it sent one.
    Published {
        channel: Channel,
        seq: Seq,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// A refusal. `id` is a refused `publish`'s own; `channel` names the channel a refused
    /// `subscribe` or `publish` was for, where one was named.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<Channel>,
    },
    /// Several frames in one message, to be handled in order as if sent one by one.
    Batch {
        frames: Vec<ServerFrame>,
    },
    #[serde(untagged)] // a presence channel's `presence`, `join` and `leave` (`presence.rs`)
    Presence(super::presence::PresenceFrame<Channel>),
}

impl ServerFrame {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerFrame {
        ServerFrame::Error { code, message: message.into(), id: None, channel: None }
    }

    /// An `error` frame about `channel`.
    pub fn refusal(code: ErrorCode, message: impl Into<String>, channel: &Channel) -> ServerFrame {
        ServerFrame::Error { code, message: message.into(), id: None, channel: Some(channel.clone()) }
    }

    /// The same frame answering the client's `publish` with this `id` (an `error` only).
    pub fn with_id(self, id: Option<String>) -> ServerFrame {
        match self {
            ServerFrame::Error { code, message, channel, .. } => ServerFrame::Error { code, message, id, channel },
            other => other,
        }
    }

    /// Serialises a frame. Frames hold only strings, numbers and JSON values, which always
    /// serialise, so the fallback is unreachable in practice but keeps socket paths panic-free.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"bad_json","message":"frame could not be encoded"}"#.to_owned()
        })
    }
}

/// Where a client wants to resume a channel from: the last seq it saw, and optionally the epoch
/// that seq belongs to. JSON: `41` or `{"seq": 41, "epoch": "..."}`; URL: `41` or `41@epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Since {
    Seq(u64),
    At { seq: u64, epoch: Option<Epoch> },
}

impl Since {
    pub fn seq(&self) -> Seq {
        match self {
            Since::Seq(s) | Since::At { seq: s, .. } => Seq(*s),
        }
    }

    pub fn epoch(&self) -> Option<&Epoch> {
        match self {
            Since::Seq(_) => None,
            Since::At { epoch, .. } => epoch.as_ref(),
        }
    }
}

/// Parses the URL form `btc:41,market:7@9f2c...` into (channel name, since) pairs.
pub fn parse_since_param(param: &str) -> Result<Vec<(String, Since)>, ServerFrame> {
    param
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let bad = || {
                ServerFrame::error(
                    ErrorCode::InvalidSince,
                    format!("since entry {:?} must look like channel:seq or channel:seq@epoch", truncate(part, 60)),
                )
            };
            let (channel, pos) = part.split_once(':').ok_or_else(bad)?;
            let (seq, epoch) = match pos.split_once('@') {
                Some((s, e)) if !e.is_empty() => (s, Some(Epoch(e.to_owned()))),
                Some(_) => return Err(bad()),
                None => (pos, None),
            };
            let seq = parse_digits(seq).ok_or_else(bad)?;
            let since = match epoch {
                None => Since::Seq(seq),
                Some(e) => Since::At { seq, epoch: Some(e) },
            };
            Ok((channel.to_owned(), since))
        })
        .collect()
}

/// A decimal number written with digits only: `u64::from_str` also takes a leading `+`, which
/// would make `btc:+5` and `btc:5` two spellings of one position.
pub fn parse_digits(s: &str) -> Option<u64> {
    s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_digits_only() {
        assert_eq!(parse_digits("42"), Some(42));
        assert_eq!(parse_digits("+5"), None);
        assert_eq!(parse_digits(""), None);
        assert_eq!(parse_digits("18446744073709551616"), None, "past u64");
        assert!(parse_since_param("btc:+5").is_err());
    }

    #[test]
    fn channel_names_are_validated() {
        for ok in ["btc", "a", "eth-usd", "x_1", "9lives", &"a".repeat(32)] {
            assert!(Channel::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "BTC", "-x", "_x", "a b", "a/b", "ü", &"a".repeat(33)] {
            assert!(Channel::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_deserialisation_validates() {
        assert!(serde_json::from_str::<Channel>(r#""btc""#).is_ok());
        assert!(serde_json::from_str::<Channel>(r#""B T C""#).is_err());
    }

    #[test]
    fn built_in_channels_are_valid_names() {
        for c in Channel::built_in() {
            assert_eq!(Channel::parse(c.as_str()), Ok(c.clone()));
            assert!(c.is_built_in());
        }
        assert!(!Channel::parse("eth").unwrap().is_built_in());
    }

    #[test]
    fn update_frame_shape() {
        let frame = ServerFrame::Update(Update {
            channel: Channel::btc(),
            seq: Seq(7),
            ts: 1_700_000_000_000,
            stale: false,
            data: json!({"price_usd": 64123.45}),
        });
        let v: Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"type":"update","channel":"btc","seq":7,"ts":1_700_000_000_000u64,"stale":false,"data":{"price_usd":64123.45}})
        );
        assert_eq!(serde_json::from_value::<ServerFrame>(v).unwrap(), frame);
    }

    #[test]
    fn welcome_and_error_frames_carry_type() {
        let w = ServerFrame::Welcome {
            conn: "ab12".into(),
            protocol: PROTOCOL_VERSION,
            channels: Channel::built_in(),
            stale_after_seconds: 180,
        };
        let v: Value = serde_json::from_str(&w.to_json()).unwrap();
        assert_eq!(v["type"], "welcome");
        assert_eq!(v["protocol"], 1);
        assert_eq!(v["channels"], json!(["btc", "market", "sentiment", "indicators"]));
        let e = ServerFrame::error(ErrorCode::UnknownOp, "nope");
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v, json!({"type":"error","code":"unknown_op","message":"nope"}));
    }

    #[test]
    fn since_param_decodes() {
        assert_eq!(
            parse_since_param("btc:41,market:7@e1"),
            Ok(vec![
                ("btc".into(), Since::Seq(41)),
                ("market".into(), Since::At { seq: 7, epoch: Some(Epoch("e1".into())) })
            ])
        );
        assert_eq!(parse_since_param(""), Ok(vec![]));
        for bad in ["btc", "btc:x", "btc:-1", "btc:4@", ":"] {
            assert!(parse_since_param(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subscribed_frame_shape() {
        let f =
            ServerFrame::Subscribed { channel: Channel::btc(), seq: Seq(3), epoch: Epoch("e".into()), recovered: true };
        assert_eq!(
            serde_json::from_str::<Value>(&f.to_json()).unwrap(),
            json!({"type":"subscribed","channel":"btc","seq":3,"epoch":"e","recovered":true})
        );
    }
}
