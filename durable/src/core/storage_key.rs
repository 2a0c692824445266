//! The hub's storage schema: every key a hub object writes, how it is spelt, and which type of
//! value it holds ([`Stored`]: keys decode and encode their values only through it).

use crate::core::channel::ChannelMeta;
use crate::core::stats::Counters;
use crate::feeds::guard::ProviderLimit;
use crate::feeds::status::{Provider, Source, UpstreamStatus};
use crate::wire::protocol::{Channel, Seq, Update};
use std::collections::{BTreeMap, BTreeSet};

/// A stored value, typed by the key that holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// Under [`StorageKey::Meta`].
    Meta(ChannelMeta),
    /// Under [`StorageKey::History`].
    History(Update),
    Upstreams(BTreeMap<Source, UpstreamStatus>),
    Providers(BTreeMap<Provider, ProviderLimit>),
    Counters(Counters),
    Watchers(BTreeSet<u32>),
}

impl Stored {
    /// What `Stored::History(update).encode()` writes, without taking the update: the
    /// publish path stores each update it also keeps for its frames and fan-out.
    pub fn encode_history(update: &Update) -> serde_json::Result<String> {
        serde_json::to_string(update)
    }

    /// The JSON text stored.
    pub fn encode(&self) -> serde_json::Result<String> {
        match self {
            Stored::Meta(v) => serde_json::to_string(v),
            Stored::History(v) => Self::encode_history(v),
            Stored::Upstreams(v) => serde_json::to_string(v),
            Stored::Providers(v) => serde_json::to_string(v),
            Stored::Counters(v) => serde_json::to_string(v),
            Stored::Watchers(v) => serde_json::to_string(v),
        }
    }
}

/// A history entry as read from storage: its seq (from its key) and the JSON text its update
/// was stored as, kept as text so a catch-up copies it into its frame instead of decoding the
/// value and encoding it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUpdate {
    pub seq: Seq,
    pub json: String,
}

impl StoredUpdate {
    /// The entry's `update` frame with its `stale` flag set to `stale`. [`Stored::encode_history`]
    /// writes `{"channel":..,"seq":..,"ts":..,"stale":..,"data":..}` and the frame is that object
    /// with `"type":"update"` first, so the frame is spliced from the text around the value,
    /// which is copied as it is. Text of another shape (an older writer) is decoded and encoded
    /// instead. None when the entry is unreadable or is not `channel`'s update at this seq.
    /// (The value's own fields cannot be mistaken for these: they come after `"data":`.)
    pub fn frame(&self, channel: &Channel, stale: bool) -> Option<String> {
        if let Some(frame) = self.splice(channel, stale) {
            return Some(frame);
        }
        let update: Update = serde_json::from_str(&self.json).ok()?;
        (update.channel == *channel && update.seq == self.seq)
            .then(|| crate::wire::protocol::ServerFrame::Update(Update { stale, ..update }).to_json())
    }

    fn splice(&self, channel: &Channel, stale: bool) -> Option<String> {
        // Checked to be one whole JSON value (a scan that builds nothing), so a damaged entry
        // can never make a frame that is not JSON.
        serde_json::from_str::<serde::de::IgnoredAny>(&self.json).ok()?;
        let head = format!(r#"{{"channel":"{channel}","seq":{},"ts":"#, self.seq.0);
        let rest = self.json.strip_prefix(&head)?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (ts, rest) = rest.split_at(digits);
        let value = [r#","stale":false,"data":"#, r#","stale":true,"data":"#]
            .iter()
            .find_map(|flag| rest.strip_prefix(flag))?;
        if ts.is_empty() || !value.ends_with('}') {
            return None;
        }
        let mut frame = String::with_capacity(self.json.len() + 24);
        frame.push_str(r#"{"type":"update","#);
        frame.push_str(&head[1..]);
        frame.push_str(ts);
        frame.push_str(if stale { r#","stale":true,"data":"# } else { r#","stale":false,"data":"# });
        frame.push_str(value);
        Some(frame)
    }
}

/// A Durable Object storage key of the hub.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StorageKey {
    /// `ch:<channel>`: the channel's [`ChannelMeta`].
    Meta(Channel),
    /// `h:<channel>:<seq, 20 digits>`: one retained update; zero-padded so keys sort by seq.
    History(Channel, Seq),
    Upstreams,
    Providers,
    Counters,
    /// Shards other than 0 that have `btc` watchers (the fast poll runs while any do).
    Watchers,
}

impl StorageKey {
    /// The singleton keys, loaded at wake-up together with the channel metas.
    pub const SINGLETONS: [&'static str; 4] = ["upstreams", "providers", "counters", "watchers"];

    pub const META_PREFIX: &'static str = "ch:";

    pub fn as_string(&self) -> String {
        match self {
            StorageKey::Meta(c) => format!("{}{c}", Self::META_PREFIX),
            StorageKey::History(c, s) => format!("{}{:020}", Self::history_prefix(c), s.0),
            StorageKey::Upstreams => "upstreams".to_owned(),
            StorageKey::Providers => "providers".to_owned(),
            StorageKey::Counters => "counters".to_owned(),
            StorageKey::Watchers => "watchers".to_owned(),
        }
    }

    /// All history keys of a channel start with this.
    pub fn history_prefix(c: &Channel) -> String {
        format!("h:{c}:")
    }

    /// Decodes `json` stored under this key as the type the key holds.
    pub fn decode(&self, json: &str) -> serde_json::Result<Stored> {
        Ok(match self {
            StorageKey::Meta(_) => Stored::Meta(serde_json::from_str(json)?),
            StorageKey::History(..) => Stored::History(serde_json::from_str(json)?),
            StorageKey::Upstreams => Stored::Upstreams(serde_json::from_str(json)?),
            StorageKey::Providers => Stored::Providers(serde_json::from_str(json)?),
            StorageKey::Counters => Stored::Counters(serde_json::from_str(json)?),
            StorageKey::Watchers => Stored::Watchers(serde_json::from_str(json)?),
        })
    }

    pub fn parse(key: &str) -> Option<StorageKey> {
        match key {
            "upstreams" => Some(StorageKey::Upstreams),
            "providers" => Some(StorageKey::Providers),
            "counters" => Some(StorageKey::Counters),
            "watchers" => Some(StorageKey::Watchers),
            _ => {
                if let Some(c) = key.strip_prefix(Self::META_PREFIX) {
                    return Channel::parse(c).ok().map(StorageKey::Meta);
                }
                let (c, seq) = key.strip_prefix("h:")?.rsplit_once(':')?;
                Some(StorageKey::History(Channel::parse(c).ok()?, Seq(crate::wire::protocol::parse_digits(seq)?)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::protocol::ServerFrame;
    use serde_json::json;

    fn stored(channel: &str, seq: u64, data: serde_json::Value, stale: bool) -> (Update, StoredUpdate) {
        let u = Update { channel: Channel::parse(channel).unwrap(), seq: Seq(seq), ts: 1_700_000_000_123, stale, data };
        let json = Stored::encode_history(&u).unwrap();
        (u, StoredUpdate { seq: Seq(seq), json })
    }

    #[test]
    fn a_stored_update_becomes_the_frame_encoding_would_build() {
        let values = [
            json!({"i": 1, "filler": "x".repeat(100)}),
            json!({"nested": {"a": [1, 2.5, null, "q\"uote"]}, "stale": true, "data": "}"}),
            json!("a string"),
            json!(42),
            json!([]),
        ];
        for data in values {
            for (stored_stale, want_stale) in [(false, false), (false, true), (true, false)] {
                let (u, s) = stored("news", 7, data.clone(), stored_stale);
                assert!(s.splice(&u.channel, want_stale).is_some(), "spliced, not decoded: {data}");
                let want = ServerFrame::Update(Update { stale: want_stale, ..u.clone() }).to_json();
                assert_eq!(s.frame(&u.channel, want_stale).as_deref(), Some(want.as_str()), "{data}");
            }
        }
    }

    #[test]
    fn other_shapes_are_decoded_and_wrong_entries_refused() {
        let (u, _) = stored("news", 3, json!({"v": 1}), false);
        let reordered =
            StoredUpdate { seq: Seq(3), json: r#"{"seq":3,"channel":"news","ts":5,"data":{"v":1}}"#.into() };
        let want = ServerFrame::Update(Update { ts: 5, ..u.clone() }).to_json();
        assert_eq!(reordered.frame(&u.channel, false), Some(want), "decoded when the shape differs");
        let (_, s) = stored("news", 3, json!({"v": 1}), false);
        assert_eq!(StoredUpdate { seq: Seq(4), ..s.clone() }.frame(&u.channel, false), None, "not the key's seq");
        assert_eq!(s.frame(&Channel::parse("other").unwrap(), false), None, "not the channel's");
        let cut = StoredUpdate { seq: Seq(3), json: s.json[..s.json.len() - 1].to_owned() };
        assert_eq!(cut.frame(&u.channel, false), None, "a cut entry is unreadable, never spliced");
    }
}
