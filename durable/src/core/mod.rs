//! The hub's state machine, free of any Workers API: channels (sequence, latest value, history
//! bookkeeping), counters and upstream bookkeeping, and what each event sends and stores.
//!
//! The Durable Object shell (`hub/`) loads this from storage, feeds it events, writes back what
//! an event dirtied, and sends the frames it returns. The decisions about channels, sockets and
//! rounds live here so they are tested on the host; the shell keeps the ones about I/O (when to
//! flush, how to batch storage calls, when to give up on a shard), each next to its call.

use crate::auth::access::{grant_of, Grant};
use crate::auth::{Keys, TokenError};
use crate::core::catchup_cache::CatchupCache;
use crate::core::channel::{Catchup, ChannelMeta, HistoryWrite};
use crate::core::classes::Classes;
use crate::core::commit::Broadcast;
use crate::core::publish::AppPublish;
use crate::core::publish::PublishRefusal;
use crate::core::socket::{Action, ConnectParams, SocketMeta};
use crate::core::stats::Counters;
use crate::core::storage_key::{StorageKey, Stored};
use crate::core::upkeep::Upkeep;
use crate::feeds::guard::ProviderLimit;
use crate::feeds::kv::StoredValue;
use crate::feeds::settings::FeedSettings;
use crate::feeds::status::{Provider, Source, UpstreamStatus};
use crate::settings::{HubLimits, Secret};
use crate::wire::bodies::Published;
use crate::wire::bodies::{Apply, Confirmed, Sequenced};
use crate::wire::protocol::{Channel, Epoch, Seq, ServerFrame, Since, Update, PROTOCOL_VERSION};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub mod btc_watch;
pub mod catchup;
pub mod catchup_cache;
pub mod channel;
pub mod classes;
pub mod close;
pub mod commit;
pub mod conflation;
mod counters;
mod feeds;
pub mod grant;
pub mod history_budget;
pub mod presence;
pub mod presence_mirror;
pub mod presence_state;
pub mod presence_table;
pub mod publish;
mod read;
pub mod replica_backoff;
pub mod replica_sync;
pub mod socket;
pub mod stats;
pub mod storage_key;
mod sync;
pub mod upkeep;

/// What an event asks the shell to do besides replying: broadcast frames, persist keys,
/// write history, fan out to the other shards.
#[derive(Debug, Default)]
pub struct Effects {
    pub published: Vec<(Channel, Seq)>,
    /// Frames serialised once, sent as they are to every subscriber (delta sockets get a
    /// broadcast's `delta` where it has one).
    pub broadcasts: Vec<Broadcast>,
    /// Keys whose value is taken from [`HubCore::entry`].
    pub dirty: Vec<StorageKey>,
    pub history: Vec<HistoryWrite>,
    pub fanout: Vec<Sequenced>,
    /// Channels a refresh round confirmed, for the other shards.
    pub confirmed: Vec<Confirmed>,
    /// Channel copies to write to KV (already throttled by `KV_MIN_WRITE_SECONDS`).
    pub kv_writes: Vec<StoredValue>,
    /// Channels this event deleted: their subscribers are told, their keys removed.
    pub removed: Vec<RemovedChannel>,
    /// Deletions to fan out to the other shards (the sequencer's own).
    pub fanout_deleted: Vec<Channel>,
}

/// A deleted channel: its meta key and the history seqs it had stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RemovedChannel {
    pub channel: Channel,
    pub history: std::ops::Range<u64>,
}

/// Why an app channel cannot be deleted (`DELETE /api/channels/<name>` on the sequencer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undeletable {
    BuiltIn,
    Unknown,
}

/// A stored value that could not be read back; the shell logs it and starts that key afresh.
#[derive(Debug)]
pub struct CorruptEntry {
    pub key: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HubCore {
    channels: BTreeMap<Channel, ChannelMeta>,
    upstreams: BTreeMap<Source, UpstreamStatus>,
    providers: BTreeMap<Provider, ProviderLimit>,
    counters: Counters,
    watchers: BTreeSet<u32>,
    /// Channels whose delivery counts changed since their meta was last written.
    deliveries_unsaved: BTreeSet<Channel>,
    /// Catch-ups built for sockets, shared while their channel has not moved (memory only).
    catchups: CatchupCache,
    /// Conflated delivery's classes (memory only; `classes.rs`, `conflation.rs`).
    classes: Classes,
    /// When counters must be written and when the fast poll last ran (memory only).
    pub upkeep: Upkeep,
    pub limits: HubLimits,
    pub feeds: FeedSettings,
    /// What tokens are verified with (`TOKEN_SECRET`, `TOKEN_SECRET_PREVIOUS`); none by default.
    pub keys: Keys,
    /// The server's `PUBLISH_TOKEN`, which may publish to any app channel over HTTP.
    pub publish_token: Option<Secret>,
}

impl HubCore {
    pub fn new(limits: HubLimits, feeds: FeedSettings) -> HubCore {
        HubCore {
            channels: BTreeMap::new(),
            upstreams: BTreeMap::new(),
            providers: BTreeMap::new(),
            counters: Counters::default(),
            watchers: BTreeSet::new(),
            deliveries_unsaved: BTreeSet::new(),
            catchups: CatchupCache::default(),
            classes: Classes::default(),
            upkeep: Upkeep::default(),
            limits,
            feeds,
            keys: Keys::default(),
            publish_token: None,
        }
    }

    /// Rebuilds the state from stored entries (key, JSON text): channel metas, counters and
    /// upstreams (history stays in storage until a resume reads it). Undecodable entries are
    /// reported rather than failing the whole object.
    pub fn load(&mut self, entries: impl IntoIterator<Item = (String, String)>) -> Vec<CorruptEntry> {
        let mut corrupt = Vec::new();
        for (key, text) in entries {
            let Some(parsed) = StorageKey::parse(&key) else { continue };
            match parsed.decode(&text) {
                Ok(value) => self.restore(parsed, value),
                Err(e) => corrupt.push(CorruptEntry { key, error: e.to_string() }),
            }
        }
        self.note_loaded_seqs();
        corrupt
    }

    fn restore(&mut self, key: StorageKey, value: Stored) {
        match (key, value) {
            (StorageKey::Meta(c), Stored::Meta(m)) => {
                self.channels.insert(c, m);
            }
            (_, Stored::Upstreams(u)) => self.upstreams = u,
            (_, Stored::Providers(p)) => self.providers = p,
            (_, Stored::Counters(c)) => self.counters = c,
            (_, Stored::Watchers(w)) => self.watchers = w,
            // History stays in storage; a key decodes only to its own type, so nothing else occurs.
            _ => {}
        }
    }

    /// The value to store under `key` (None for history keys, which the shell writes from
    /// [`HistoryWrite`]s, and for a channel that no longer exists).
    pub fn entry(&self, key: &StorageKey) -> Option<Stored> {
        Some(match key {
            StorageKey::Meta(c) => Stored::Meta(self.channels.get(c)?.clone()),
            StorageKey::Upstreams => Stored::Upstreams(self.upstreams.clone()),
            StorageKey::Providers => Stored::Providers(self.providers.clone()),
            StorageKey::Counters => Stored::Counters(self.counters.clone()),
            StorageKey::Watchers => Stored::Watchers(self.watchers.clone()),
            StorageKey::History(..) => return None,
        })
    }

    pub fn is_known(&self, c: &Channel) -> bool {
        c.is_built_in() || self.channels.contains_key(c)
    }

    /// How many app channels exist (every channel but the built-ins).
    pub fn app_channels(&self) -> usize {
        self.channels.len() - Channel::built_in().iter().filter(|c| self.channels.contains_key(*c)).count()
    }

    /// A new socket: its attachment, and the actions for it (welcome first, then a catch-up per
    /// channel the URL asks for).
    pub fn connect(
        &mut self,
        conn: String,
        params: ConnectParams<'_>,
        grant: Option<Grant>,
        now_ms: u64,
    ) -> (SocketMeta, Vec<Action>) {
        self.counters.connections_opened += 1;
        let mut meta = SocketMeta::new(conn.clone());
        let authed = grant.as_ref().map(|g| Action::Send(ServerFrame::Authed { sub: g.sub.clone(), exp: g.exp }));
        meta.grant = grant;
        // The built-in channels only: app channels are the publishing app's to announce, and
        // listing them (up to MAX_APP_CHANNELS) would make every connect pay for them.
        let welcome = ServerFrame::Welcome {
            conn,
            protocol: PROTOCOL_VERSION,
            channels: Channel::built_in(),
            stale_after_seconds: self.feeds.stale_after_seconds,
        };
        let mut actions = vec![Action::Send(welcome)];
        actions.extend(authed);
        let limits = self.limits;
        actions.extend(meta.on_connect(params, &limits, now_ms / 1000));
        self.count_rejections(&actions);
        (meta, actions)
    }

    /// A token presented with a connect (`?token=`) or a publish: its grant, or the refusal
    /// (counted by reason).
    pub fn check_token(&mut self, token: &str, now_ms: u64) -> Result<Grant, TokenError> {
        grant_of(token, &self.keys, now_ms / 1000).inspect_err(|e| self.count_token_refused(e.reason()))
    }

    /// A client text frame.
    pub fn message(&mut self, meta: &mut SocketMeta, text: &str, now_ms: u64) -> Vec<Action> {
        let limits = self.limits;
        let (kind, mut actions) = meta.on_text(text, now_ms, &limits, &self.keys);
        *self.counters.frames.entry(kind).or_insert(0) += 1;
        self.count_rejections(&actions);
        actions.retain(|a| match a {
            Action::TokenRefused(reason) => {
                self.count_token_refused(reason);
                false
            }
            _ => true,
        });
        actions
    }

    /// How to catch a subscriber up on `channel`.
    pub fn plan(&self, channel: &Channel, since: Option<&Since>) -> Catchup {
        self.channels.get(channel).map_or(Catchup::Latest, |m| m.catchup(since))
    }

    /// The catch-up frames, given what storage returned for a `Replay` plan.
    pub fn catchup_frames(
        &self,
        channel: &Channel,
        plan: &Catchup,
        fetched: Vec<Update>,
        now: u64,
    ) -> Vec<ServerFrame> {
        match self.channels.get(channel) {
            Some(m) => m.catchup_frames(channel, plan, fetched, self.is_stale(channel, m, now)),
            // A channel nothing was published to yet (a built-in one before its first fetch, an
            // app channel before its first publish): the subscription stands, and its first
            // update comes as seq 1.
            None => vec![ServerFrame::Subscribed {
                channel: channel.clone(),
                seq: Seq(0),
                epoch: Epoch::default(),
                recovered: false,
            }],
        }
    }

    /// Built-in channels go stale when their upstream has not confirmed the value for
    /// `STALE_AFTER_SECONDS`; app channels are as fresh as their publisher makes them.
    fn is_stale(&self, channel: &Channel, meta: &ChannelMeta, now: u64) -> bool {
        channel.is_built_in()
            && now.saturating_sub(meta.confirmed_at) > self.feeds.channel_stale_after_seconds(channel) * 1000
    }

    /// An application's publish to an app channel (sequencer); every publish gets a seq.
    pub fn publish(
        &mut self,
        p: AppPublish,
        mut new_epoch: impl FnMut() -> Epoch,
    ) -> Result<(Published, Effects), PublishRefusal> {
        if p.channel.is_built_in() {
            return Err(PublishRefusal::Reserved);
        }
        let limit = self.limits.max_app_channels;
        if !self.channels.contains_key(&p.channel) && self.app_channels() >= limit {
            return Err(PublishRefusal::TooManyChannels { limit });
        }
        let mut fx = Effects::default();
        let channel = p.channel.clone();
        self.sequence(p.channel, p.ts, p.data, false, &mut new_epoch, &mut fx);
        let seq = self.channels.get(&channel).map_or(Seq(0), |m| m.seq);
        Ok((Published { channel, seq }, fx))
    }

    fn sequence(
        &mut self,
        channel: Channel,
        ts: u64,
        data: Value,
        dedupe: bool,
        new_epoch: &mut impl FnMut() -> Epoch,
        fx: &mut Effects,
    ) {
        let history_len = self.limits.history_len;
        let meta = self.channels.entry(channel.clone()).or_insert_with(|| ChannelMeta::new(new_epoch()));
        if let Some(write) = meta.publish(&channel, ts, data, dedupe, history_len) {
            fx.published.push((channel.clone(), write.put.seq));
            fx.fanout.push(Sequenced { epoch: meta.epoch.clone(), update: write.put.clone() });
            Self::record_write(channel, write, fx);
        }
    }

    /// Deletes an app channel (sequencer): its meta, history and counts go, its subscribers are
    /// unsubscribed, and the other shards do the same. A later publish to the name starts a new
    /// channel with a new epoch, so no resume can mistake it for the old one.
    /// Answers the channel's last seq and the effects.
    pub fn delete_app(&mut self, channel: &Channel) -> Result<(Seq, Effects), Undeletable> {
        if channel.is_built_in() {
            return Err(Undeletable::BuiltIn);
        }
        let mut fx = Effects::default();
        let seq = self.remove(channel, &mut fx).ok_or(Undeletable::Unknown)?;
        fx.fanout_deleted.push(channel.clone());
        Ok((seq, fx))
    }

    fn remove(&mut self, channel: &Channel, fx: &mut Effects) -> Option<Seq> {
        let meta = self.channels.remove(channel)?;
        self.deliveries_unsaved.remove(channel);
        self.classes.forget(channel);
        fx.removed.push(RemovedChannel { channel: channel.clone(), history: meta.retained() });
        Some(meta.seq)
    }

    /// Updates sequenced by shard 0, applied by another shard.
    pub fn apply(&mut self, apply: Apply) -> Effects {
        let mut fx = Effects::default();
        for channel in &apply.deleted {
            self.remove(channel, &mut fx);
        }
        let history_len = self.limits.history_len;
        let confirmed_at: Vec<(Channel, u64)> =
            apply.confirmed.iter().map(|c| (c.latest.update.channel.clone(), c.confirmed_at)).collect();
        let latest = apply.confirmed.into_iter().map(|c| c.latest);
        // New updates first; then the confirmed latest values, which are duplicates unless this
        // replica missed something (then it restarts its history at the latest value).
        for Sequenced { epoch, update } in apply.updates.into_iter().chain(latest) {
            let channel = update.channel.clone();
            let meta = self.channels.entry(channel.clone()).or_insert_with(|| ChannelMeta::new(epoch.clone()));
            if let Some(write) = meta.apply(update, &epoch, history_len) {
                // A replica that missed updates restarts its history here (`ChannelMeta::apply`).
                // Its sockets get this update as the channel's latest value, followed by the
                // marker a fresh subscription ends with: continuity was lost before it.
                let gap = write.reset.then(|| ServerFrame::Subscribed {
                    channel: channel.clone(),
                    seq: write.put.seq,
                    epoch: meta.epoch.clone(),
                    recovered: false,
                });
                Self::record_write(channel.clone(), write, &mut fx);
                fx.broadcasts.extend(gap.map(|frame| Broadcast::frame(channel, frame.to_json())));
            }
        }
        for (channel, at) in confirmed_at {
            if let Some(m) = self.channels.get_mut(&channel) {
                m.confirmed_at = m.confirmed_at.max(at);
                if !fx.dirty.contains(&StorageKey::Meta(channel.clone())) {
                    fx.dirty.push(StorageKey::Meta(channel));
                }
            }
        }
        fx
    }

    fn record_write(channel: Channel, write: HistoryWrite, fx: &mut Effects) {
        fx.broadcasts.push(Broadcast::update(&write.put, write.previous.as_ref(), write.reset));
        if !fx.dirty.contains(&StorageKey::Meta(channel.clone())) {
            fx.dirty.push(StorageKey::Meta(channel));
        }
        fx.history.push(write);
    }
}

#[cfg(test)]
mod tests;
