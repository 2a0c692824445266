//! The hub's state machine, free of any Workers API: channels with their sequence numbers and
//! latest values, connection counters and upstream bookkeeping, and the frames each event sends.
//!
//! The Durable Object shell (`hub.rs`) loads this from storage, feeds it events, writes back the
//! keys an event dirtied, and sends the frames it returns. Keeping the decisions here is what lets
//! them be tested on the host.

use crate::internal::{ChannelStats, HubStats, Ingest, IngestResult, Source, UpstreamStatus};
use crate::protocol::{Channel, Seq, ServerFrame, Update, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A Durable Object storage key of the hub. One key per channel keeps each write small.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StorageKey {
    Channel(Channel),
    Upstreams,
    Counters,
}

impl StorageKey {
    const CHANNEL_PREFIX: &'static str = "ch:";

    pub fn as_string(&self) -> String {
        match self {
            StorageKey::Channel(c) => format!("{}{c}", Self::CHANNEL_PREFIX),
            StorageKey::Upstreams => "upstreams".to_owned(),
            StorageKey::Counters => "counters".to_owned(),
        }
    }

    pub fn parse(key: &str) -> Option<StorageKey> {
        match key {
            "upstreams" => Some(StorageKey::Upstreams),
            "counters" => Some(StorageKey::Counters),
            _ => key
                .strip_prefix(Self::CHANNEL_PREFIX)
                .and_then(|c| Channel::parse(c).ok())
                .map(StorageKey::Channel),
        }
    }
}

/// What the hub keeps per channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelState {
    pub seq: Seq,
    pub latest: Option<Update>,
    pub published: u64,
}

impl ChannelState {
    /// Sequences `data` as the channel's next update, unless it equals the latest value:
    /// an unchanged value is not news, so it gets no seq and is not broadcast.
    pub fn publish(&mut self, channel: &Channel, ts: u64, data: Value) -> Option<Update> {
        if self.latest.as_ref().is_some_and(|l| l.data == data) {
            return None;
        }
        self.seq = self.seq.next();
        self.published += 1;
        let update = Update {
            channel: channel.clone(),
            seq: self.seq,
            ts,
            stale: false,
            data,
        };
        self.latest = Some(update.clone());
        Some(update)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub connections_opened: u64,
    pub connections_closed: u64,
}

/// What a socket carries across hibernation (its WebSocket attachment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketMeta {
    pub conn: String,
    pub channels: Vec<Channel>,
}

/// The effect of an ingest: frames to broadcast (serialised once each) and keys to persist.
#[derive(Debug, Default)]
pub struct IngestEffects {
    pub result: IngestResult,
    /// (channel, frame JSON) in publish order.
    pub broadcasts: Vec<(Channel, String)>,
    pub dirty: Vec<StorageKey>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct HubCore {
    channels: BTreeMap<Channel, ChannelState>,
    upstreams: BTreeMap<Source, UpstreamStatus>,
    counters: Counters,
}

/// A stored value that could not be read back; the shell logs it and starts that key afresh.
#[derive(Debug)]
pub struct CorruptEntry {
    pub key: String,
    pub error: String,
}

impl HubCore {
    /// Rebuilds the state from storage entries (key, JSON value). Unknown keys are ignored;
    /// undecodable ones are reported rather than failing the whole object.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (String, Value)>,
    ) -> (Self, Vec<CorruptEntry>) {
        let mut core = HubCore::default();
        let mut corrupt = Vec::new();
        for (key, value) in entries {
            let res = match StorageKey::parse(&key) {
                Some(StorageKey::Channel(c)) => serde_json::from_value(value).map(|s| {
                    core.channels.insert(c, s);
                }),
                Some(StorageKey::Upstreams) => {
                    serde_json::from_value(value).map(|u| core.upstreams = u)
                }
                Some(StorageKey::Counters) => {
                    serde_json::from_value(value).map(|c| core.counters = c)
                }
                None => Ok(()),
            };
            if let Err(e) = res {
                corrupt.push(CorruptEntry {
                    key,
                    error: e.to_string(),
                });
            }
        }
        (core, corrupt)
    }

    /// The JSON value to store under `key`, from the current state.
    pub fn entry(&self, key: &StorageKey) -> Value {
        let v = match key {
            StorageKey::Channel(c) => {
                serde_json::to_value(self.channels.get(c).cloned().unwrap_or_default())
            }
            StorageKey::Upstreams => serde_json::to_value(&self.upstreams),
            StorageKey::Counters => serde_json::to_value(self.counters),
        };
        // These types are plain data with string map keys, which always serialise.
        v.unwrap_or(Value::Null)
    }

    /// A new socket: its attachment and the frames it is sent at once (welcome, then the latest
    /// value of every channel it listens to).
    pub fn connect(&mut self, conn: String) -> (SocketMeta, Vec<String>, StorageKey) {
        self.counters.connections_opened += 1;
        let channels = Channel::built_in();
        let mut frames = vec![ServerFrame::Welcome {
            conn: conn.clone(),
            protocol: PROTOCOL_VERSION,
            channels: channels.clone(),
        }
        .to_json()];
        for c in &channels {
            if let Some(latest) = self.channels.get(c).and_then(|s| s.latest.clone()) {
                frames.push(ServerFrame::Update(latest).to_json());
            }
        }
        (SocketMeta { conn, channels }, frames, StorageKey::Counters)
    }

    pub fn disconnect(&mut self) -> StorageKey {
        self.counters.connections_closed += 1;
        StorageKey::Counters
    }

    /// Records an upstream result and sequences the values it carries.
    pub fn ingest(&mut self, ingest: Ingest) -> IngestEffects {
        let mut fx = IngestEffects::default();
        self.upstreams.entry(ingest.source).or_default().record(
            ingest.at,
            ingest.outcome,
            ingest.detail.as_deref(),
        );
        fx.dirty.push(StorageKey::Upstreams);
        for p in ingest.publish {
            let state = self.channels.entry(p.channel.clone()).or_default();
            if let Some(update) = state.publish(&p.channel, p.ts, p.data) {
                fx.result.published.push((p.channel.clone(), update.seq));
                fx.broadcasts
                    .push((p.channel.clone(), ServerFrame::Update(update).to_json()));
                fx.dirty.push(StorageKey::Channel(p.channel));
            }
        }
        fx
    }

    pub fn stats(&self, sockets: u64) -> HubStats {
        HubStats {
            sockets,
            connections_opened: self.counters.connections_opened,
            connections_closed: self.counters.connections_closed,
            channels: self
                .channels
                .iter()
                .map(|(c, s)| {
                    let stats = ChannelStats {
                        seq: s.seq,
                        latest_ts: s.latest.as_ref().map(|l| l.ts),
                        published: s.published,
                    };
                    (c.clone(), stats)
                })
                .collect(),
            upstreams: self.upstreams.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal::{Outcome, Publish};
    use serde_json::json;

    fn ingest_btc(at: u64, price: f64) -> Ingest {
        Ingest {
            source: Source::CoingeckoPrice,
            at,
            outcome: Outcome::Ok,
            detail: None,
            publish: vec![Publish {
                channel: Channel::btc(),
                ts: at,
                data: json!({"price_usd": price}),
            }],
        }
    }

    fn frame(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn storage_keys_round_trip() {
        for k in [
            StorageKey::Channel(Channel::btc()),
            StorageKey::Upstreams,
            StorageKey::Counters,
        ] {
            assert_eq!(StorageKey::parse(&k.as_string()), Some(k));
        }
        assert_eq!(StorageKey::parse("ch:NOPE"), None);
        assert_eq!(StorageKey::parse("other"), None);
    }

    #[test]
    fn seq_increments_only_on_change() {
        let mut core = HubCore::default();
        let fx = core.ingest(ingest_btc(1, 100.0));
        assert_eq!(fx.result.published, vec![(Channel::btc(), Seq(1))]);
        let f = frame(&fx.broadcasts[0].1);
        assert_eq!(
            (
                f["type"].clone(),
                f["seq"].clone(),
                f["data"]["price_usd"].clone()
            ),
            (json!("update"), json!(1), json!(100.0))
        );
        // Same value again: recorded as a successful request, but nothing is broadcast.
        let fx = core.ingest(ingest_btc(2, 100.0));
        assert!(fx.broadcasts.is_empty());
        assert_eq!(fx.dirty, vec![StorageKey::Upstreams]);
        let fx = core.ingest(ingest_btc(3, 101.0));
        assert_eq!(fx.result.published, vec![(Channel::btc(), Seq(2))]);
        let stats = core.stats(0);
        assert_eq!(
            stats.channels[&Channel::btc()],
            ChannelStats {
                seq: Seq(2),
                latest_ts: Some(3),
                published: 2
            }
        );
        assert_eq!(
            stats.upstreams[&Source::CoingeckoPrice].requests[&Outcome::Ok],
            3
        );
    }

    #[test]
    fn failure_keeps_latest_value() {
        let mut core = HubCore::default();
        core.ingest(ingest_btc(1, 100.0));
        let fx = core.ingest(Ingest {
            source: Source::CoingeckoPrice,
            at: 2,
            outcome: Outcome::HttpError,
            detail: Some("HTTP 500".into()),
            publish: vec![],
        });
        assert!(fx.broadcasts.is_empty());
        let (_, frames, _) = core.connect("c1".into());
        assert_eq!(frame(&frames[1])["data"]["price_usd"], json!(100.0));
        assert!(core.stats(1).upstreams[&Source::CoingeckoPrice].is_failing());
    }

    #[test]
    fn connect_sends_welcome_then_latest_values() {
        let mut core = HubCore::default();
        let (meta, frames, _) = core.connect("a".into());
        assert_eq!(frames.len(), 1, "nothing published yet: welcome only");
        assert_eq!(frame(&frames[0])["type"], "welcome");
        assert_eq!(meta.channels, Channel::built_in());
        core.ingest(ingest_btc(5, 64123.45));
        let (_, frames, key) = core.connect("b".into());
        assert_eq!(key, StorageKey::Counters);
        assert_eq!(frames.len(), 2);
        let f = frame(&frames[1]);
        assert_eq!(
            (f["channel"].clone(), f["seq"].clone(), f["ts"].clone()),
            (json!("btc"), json!(1), json!(5))
        );
        core.disconnect();
        let s = core.stats(1);
        assert_eq!(
            (s.connections_opened, s.connections_closed, s.sockets),
            (2, 1, 1)
        );
    }

    #[test]
    fn state_survives_a_storage_round_trip() {
        let mut core = HubCore::default();
        core.ingest(ingest_btc(1, 100.0));
        core.connect("a".into());
        let keys = [
            StorageKey::Channel(Channel::btc()),
            StorageKey::Upstreams,
            StorageKey::Counters,
        ];
        let entries: Vec<_> = keys
            .iter()
            .map(|k| (k.as_string(), core.entry(k)))
            .collect();
        let (mut restored, corrupt) = HubCore::from_entries(entries);
        assert!(corrupt.is_empty());
        assert_eq!(restored, core);
        // The sequence continues after a restart instead of starting over.
        assert_eq!(
            restored.ingest(ingest_btc(2, 102.0)).result.published,
            vec![(Channel::btc(), Seq(2))]
        );
    }

    #[test]
    fn corrupt_entries_are_reported_not_fatal() {
        let (core, corrupt) = HubCore::from_entries(vec![
            ("ch:btc".to_owned(), json!("garbage")),
            (
                "counters".to_owned(),
                json!({"connections_opened": 4, "connections_closed": 1}),
            ),
        ]);
        assert_eq!(corrupt.len(), 1);
        assert_eq!(corrupt[0].key, "ch:btc");
        assert_eq!(core.stats(0).connections_opened, 4);
    }
}
