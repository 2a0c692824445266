//! The hub's storage schema: every key a hub object writes, how it is spelt, and which type of
//! value it holds ([`Stored`]: keys decode and encode their values only through it).

use crate::channel::ChannelMeta;
use crate::guard::ProviderLimit;
use crate::protocol::{Channel, Seq, Update};
use crate::stats::Counters;
use crate::upstream_status::{Provider, Source, UpstreamStatus};
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
                Some(StorageKey::History(Channel::parse(c).ok()?, Seq(crate::protocol::parse_digits(seq)?)))
            }
        }
    }
}
