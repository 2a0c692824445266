//! The hub's storage schema: every key a hub object writes, and how it is spelt. Which value
//! type each key holds is decided by `HubCore::load` and `HubCore::entry`.

use crate::protocol::{Channel, Seq};

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
