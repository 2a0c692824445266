//! What a token grants: its `caps` claim, channel names and name prefixes mapped to sets of
//! capabilities, and the one question asked of it, [`Caps::allows`].
//!
//! In a token, `caps` is `{"private-u42": ["subscribe", "history"], "private-room-*": [..]}`:
//! a key is a channel name (that channel only) or a prefix ending in `*` (every channel whose
//! name starts with what comes before the `*`; `*` alone is every channel). Kept in a socket's
//! attachment it is compact: each set is a number (bit flags, [`Capability::bit`]).

use super::limits::MAX_CAPS;
use crate::wire::protocol::Channel;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// One thing a token can allow on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Receive the channel's updates (connect `?channels=`, the `subscribe` op).
    Subscribe,
    /// Read its past updates (`/api/history`, `since` replays).
    History,
    /// Publish to it (the `publish` op, `POST /api/publish` with a token).
    Publish,
    /// Reserved for presence: accepted in tokens, grants nothing yet.
    Presence,
}

impl Capability {
    pub const ALL: [Capability; 4] =
        [Capability::Subscribe, Capability::History, Capability::Publish, Capability::Presence];

    /// Its name in a token's `caps`.
    pub fn label(self) -> &'static str {
        match self {
            Capability::Subscribe => "subscribe",
            Capability::History => "history",
            Capability::Publish => "publish",
            Capability::Presence => "presence",
        }
    }

    pub fn parse(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.label() == name)
    }

    /// Its flag in the compact form (`subscribe` 1, `history` 2, `publish` 4, `presence` 8).
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The flags of every capability: a compact set above this is not one we wrote.
const ALL_BITS: u8 = 0b1111;

/// Which channels an entry covers: one name, or every name starting with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Pattern {
    Exact(String),
    /// The key without its `*`; empty for `*`.
    Prefix(String),
}

impl Pattern {
    /// A key is a valid channel name, or `*`, or a valid channel name followed by `*`.
    fn parse(key: &str) -> Option<Pattern> {
        match key.strip_suffix('*') {
            Some("") => Some(Pattern::Prefix(String::new())),
            Some(prefix) => Channel::parse(prefix).ok().map(|_| Pattern::Prefix(prefix.to_owned())),
            None => Channel::parse(key).ok().map(|_| Pattern::Exact(key.to_owned())),
        }
    }

    fn matches(&self, channel: &str) -> bool {
        match self {
            Pattern::Exact(name) => name == channel,
            Pattern::Prefix(prefix) => channel.starts_with(prefix.as_str()),
        }
    }

    fn key(&self) -> String {
        match self {
            Pattern::Exact(name) => name.clone(),
            Pattern::Prefix(prefix) => format!("{prefix}*"),
        }
    }
}

/// A token's capabilities: at most [`MAX_CAPS`] entries, each a pattern and its set (bit
/// flags). Empty grants nothing (public channels need no capability to read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps(Vec<(Pattern, u8)>);

/// Why a `caps` claim was refused. `Display` names no key or value from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapsError {
    /// `caps` is not a JSON object.
    NotAnObject,
    /// More than [`MAX_CAPS`] entries.
    TooMany,
    /// A key that is neither a channel name nor a channel name (or nothing) followed by `*`.
    Key,
    /// A value that is not an array of strings.
    NotAList,
    /// A capability other than subscribe, history, publish, presence.
    UnknownCapability,
}

impl fmt::Display for CapsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapsError::NotAnObject => "\"caps\" must be an object",
            CapsError::TooMany => "\"caps\" has too many entries",
            CapsError::Key => "a \"caps\" key must be a channel name, a channel name followed by '*', or '*'",
            CapsError::NotAList => "a \"caps\" value must be an array of capability names",
            CapsError::UnknownCapability => "unknown capability in \"caps\": use subscribe, history, publish, presence",
        })
    }
}

impl Caps {
    /// The `caps` claim of a token's payload.
    pub fn from_claim(value: &Value) -> Result<Caps, CapsError> {
        let Value::Object(map) = value else {
            return Err(CapsError::NotAnObject);
        };
        if map.len() > MAX_CAPS {
            return Err(CapsError::TooMany);
        }
        let mut entries = Vec::with_capacity(map.len());
        for (key, list) in map {
            let pattern = Pattern::parse(key).ok_or(CapsError::Key)?;
            let Value::Array(names) = list else {
                return Err(CapsError::NotAList);
            };
            let mut bits = 0;
            for name in names {
                let name = name.as_str().ok_or(CapsError::NotAList)?;
                bits |= Capability::parse(name).ok_or(CapsError::UnknownCapability)?.bit();
            }
            entries.push((pattern, bits));
        }
        Ok(Caps::sorted(entries))
    }

    /// The `caps` claim a token carries for these (as [`Caps::from_claim`] reads it).
    pub fn to_claim(&self) -> Value {
        let map = self.0.iter().map(|(p, bits)| {
            let names = Capability::ALL.into_iter().filter(|c| bits & c.bit() != 0).map(|c| c.label().into());
            (p.key(), Value::Array(names.collect()))
        });
        Value::Object(map.collect::<Map<String, Value>>())
    }

    /// Builds caps from `(key, capabilities)` entries, as the CLI's `--cap` gives them: the same
    /// rules as a token's claim.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, Vec<Capability>)>) -> Result<Caps, CapsError> {
        let mut merged: BTreeMap<Pattern, u8> = BTreeMap::new();
        for (key, caps) in entries {
            let pattern = Pattern::parse(key).ok_or(CapsError::Key)?;
            *merged.entry(pattern).or_default() |= caps.iter().fold(0, |bits, c| bits | c.bit());
        }
        if merged.len() > MAX_CAPS {
            return Err(CapsError::TooMany);
        }
        Ok(Caps::sorted(merged.into_iter().collect()))
    }

    /// Entries in the order of their keys, so that equal grants are equal values.
    fn sorted(mut entries: Vec<(Pattern, u8)>) -> Caps {
        entries.sort_by_cached_key(|(p, _)| p.key());
        Caps(entries)
    }

    /// Whether any entry covering `channel` grants `cap`.
    pub fn allows(&self, channel: &str, cap: Capability) -> bool {
        self.0.iter().any(|(pattern, bits)| bits & cap.bit() != 0 && pattern.matches(channel))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Compact: `{"private-room-*":1,"private-u42":3}`.
impl Serialize for Caps {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(p, bits)| (p.key(), *bits)))
    }
}

impl<'de> Deserialize<'de> for Caps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Caps, D::Error> {
        let map = BTreeMap::<String, u8>::deserialize(d)?;
        if map.len() > MAX_CAPS {
            return Err(D::Error::custom(CapsError::TooMany));
        }
        map.into_iter()
            .map(|(key, bits)| match Pattern::parse(&key) {
                Some(p) if bits & !ALL_BITS == 0 => Ok((p, bits)),
                Some(_) => Err(D::Error::custom(CapsError::UnknownCapability)),
                None => Err(D::Error::custom(CapsError::Key)),
            })
            .collect::<Result<_, _>>()
            .map(Caps::sorted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use Capability::*;

    fn caps(v: Value) -> Caps {
        Caps::from_claim(&v).unwrap()
    }

    #[test]
    fn exact_names() {
        let c = caps(json!({"private-a": ["subscribe", "history"]}));
        assert!(c.allows("private-a", Subscribe));
        assert!(c.allows("private-a", History));
        assert!(!c.allows("private-a", Publish));
        assert!(!c.allows("private-b", Subscribe));
        assert!(!c.allows("private-ab", Subscribe), "an exact name is not a prefix");
        assert!(!c.allows("private-", Subscribe));
    }

    #[test]
    fn prefixes() {
        let c = caps(json!({"private-room-*": ["subscribe"]}));
        assert!(c.allows("private-room-7", Subscribe));
        assert!(c.allows("private-room-", Subscribe), "the prefix itself is a channel it starts");
        assert!(!c.allows("private-roomx", Subscribe), "private-room-* is the prefix private-room-");
        assert!(!c.allows("private-room", Subscribe));
        assert!(!c.allows("xprivate-room-7", Subscribe));
        assert!(!c.allows("private-room-7", History));
    }

    #[test]
    fn star_alone_is_every_channel() {
        let c = caps(json!({"*": ["publish"]}));
        for channel in ["a", "private-x", "btc"] {
            assert!(c.allows(channel, Publish), "{channel}");
            assert!(!c.allows(channel, Subscribe), "{channel}");
        }
    }

    #[test]
    fn entries_add_up() {
        let c = caps(json!({"private-a": ["subscribe"], "private-*": ["history"], "room-1": []}));
        assert!(c.allows("private-a", Subscribe));
        assert!(c.allows("private-a", History));
        assert!(c.allows("private-b", History));
        assert!(!c.allows("private-b", Subscribe));
        assert!(!c.allows("room-1", Subscribe), "an empty list grants nothing");
        assert!(caps(json!({})).is_empty());
        assert!(!caps(json!({})).allows("a", Subscribe));
    }

    #[test]
    fn at_most_max_entries() {
        let entries =
            |n: usize| Value::Object((0..n).map(|i| (format!("private-{i}"), json!(["subscribe"]))).collect());
        let c = caps(entries(MAX_CAPS));
        assert_eq!(c.len(), MAX_CAPS);
        assert!(c.allows(&format!("private-{}", MAX_CAPS - 1), Subscribe));
        assert_eq!(Caps::from_claim(&entries(MAX_CAPS + 1)), Err(CapsError::TooMany));
    }

    #[test]
    fn keys_are_channel_names_or_prefixes() {
        for ok in ["a", "private-u42", "private-room-*", "*", "a*", &"a".repeat(32), &format!("{}*", "a".repeat(32))] {
            assert!(Caps::from_claim(&json!({ ok: ["subscribe"] })).is_ok(), "{ok}");
        }
        for bad in
            ["", "**", "a*b", "*a", "A", "-x*", "a b", "a/*", "ü*", &"a".repeat(33), &format!("{}*", "a".repeat(33))]
        {
            assert_eq!(Caps::from_claim(&json!({ bad: ["subscribe"] })), Err(CapsError::Key), "{bad}");
        }
    }

    #[test]
    fn values_are_known_capability_lists() {
        assert_eq!(Caps::from_claim(&json!([])), Err(CapsError::NotAnObject));
        assert_eq!(Caps::from_claim(&json!("*")), Err(CapsError::NotAnObject));
        assert_eq!(Caps::from_claim(&json!({"a": "subscribe"})), Err(CapsError::NotAList));
        assert_eq!(Caps::from_claim(&json!({"a": [1]})), Err(CapsError::NotAList));
        assert_eq!(Caps::from_claim(&json!({"a": ["subscribe", "admin"]})), Err(CapsError::UnknownCapability));
        assert_eq!(Caps::from_claim(&json!({"a": ["Subscribe"]})), Err(CapsError::UnknownCapability));
        let c = caps(json!({"a": ["presence", "presence"]}));
        assert!(c.allows("a", Presence));
    }

    #[test]
    fn compact_form_round_trips() {
        let c =
            caps(json!({"private-u42": ["subscribe", "history"], "private-room-*": ["publish"], "*": ["presence"]}));
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(text, r#"{"*":8,"private-room-*":4,"private-u42":3}"#);
        let back: Caps = serde_json::from_str(&text).unwrap();
        for channel in ["private-u42", "private-room-1", "x"] {
            for cap in Capability::ALL {
                assert_eq!(back.allows(channel, cap), c.allows(channel, cap), "{channel} {cap}");
            }
        }
        assert!(serde_json::from_str::<Caps>(r#"{"a":16}"#).is_err(), "unknown flag");
        assert!(serde_json::from_str::<Caps>(r#"{"a b":1}"#).is_err(), "bad key");
        assert_eq!(caps(c.to_claim()), c, "the claim form round-trips");
    }

    #[test]
    fn from_entries_merges_keys() {
        let c = Caps::from_entries([("private-a", vec![Subscribe]), ("private-a", vec![History])]).unwrap();
        assert_eq!(c.len(), 1);
        assert!(c.allows("private-a", Subscribe) && c.allows("private-a", History));
        let two = [("private-u42", vec![Subscribe]), ("private-room-*", vec![Publish])];
        assert_eq!(
            Caps::from_entries(two).unwrap(),
            caps(json!({"private-room-*": ["publish"], "private-u42": ["subscribe"]}))
        );
        assert_eq!(Caps::from_entries([("a b", vec![Subscribe])]), Err(CapsError::Key));
    }
}
