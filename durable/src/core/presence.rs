//! Presence on one shard (wasm-free core): who is here on this shard (its sockets per member,
//! rebuilt from their attachments after hibernation), the reports of its changes to shard 0,
//! and what shard 0 sends back. Shard 0's global table is `presence_table.rs`; a shard's copy
//! of the list, from which its frames are built, `presence_mirror.rs`.
//!
//! A member is a distinct token `sub` subscribed to a `presence-` channel, however many sockets
//! it has on however many shards. A shard reports only its own transitions (a sub's first
//! socket here arrived, its last one went) to shard 0, which decides what is a global join or
//! leave, numbers those events and sends them to every shard in order (`Batch`); a shard
//! applies them to its mirror in that order, so its sockets never see a member who has left or
//! miss one who is there. A shard whose mirror misses a batch (or has just woken up) fetches the
//! whole table again and sends its sockets fresh lists.

use crate::auth::Capability;
use crate::core::socket::SocketMeta;
use crate::wire::presence::{is_presence, Member, PresenceFrame};
use crate::wire::protocol::Channel;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A presence frame of a channel.
pub type Frame = PresenceFrame<Channel>;

/// A member's `info` (from its token, bounded by `auth::MAX_INFO_BYTES`).
pub type Info = Option<serde_json::Map<String, serde_json::Value>>;

/// A presence socket silent (no client frame, no `ping` answered by the runtime) for longer
/// than this (`PRESENCE_SILENT_SECONDS`) is closed and leaves: the client library pings every
/// 25 s, so the default is two missed pings and some slack.
pub const SILENT_MS: u64 = 60_000;

/// How often a shard with presence members looks for silent sockets (the alarm), given the
/// silence limit: a quarter of it. A socket that vanishes without a close leaves at most
/// `silent + silent / 4` after its last sign of life (75 s by default).
pub fn check_ms(silent_ms: u64) -> u64 {
    silent_ms / 4
}

/// What one socket contributes to presence: its token's sub and info, its presence channels,
/// and the last second its grant is honoured in.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    pub sub: String,
    pub info: Info,
    pub channels: Vec<Channel>,
    pub until: u64,
}

impl Presence {
    /// A socket's presence, from its attachment: none for a closing socket, one without a
    /// grant, or one holding no presence channel.
    pub fn of(meta: &SocketMeta) -> Option<Presence> {
        let grant = meta.grant.as_ref().filter(|_| !meta.closing)?;
        let channels: Vec<Channel> = meta.channels.iter().filter(|c| is_presence(c.as_str())).cloned().collect();
        (!channels.is_empty()).then(|| Presence {
            sub: grant.sub.clone(),
            info: grant.info.clone(),
            channels,
            until: grant.valid_until(),
        })
    }
}

/// Whether a socket's attachment holds a presence channel under a grant (closing or not).
pub fn holds_presence(meta: &SocketMeta) -> bool {
    meta.grant.is_some() && meta.channels.iter().any(|c| is_presence(c.as_str()))
}

/// Whether a socket may see `channel`'s member list: its grant has `presence` on it (expiry is
/// the send loop's to enforce, as for every private frame).
pub fn may_see(meta: &SocketMeta, channel: &Channel) -> bool {
    meta.grant.as_ref().is_some_and(|g| g.caps.allows(channel.as_str(), Capability::Presence))
}

/// A member arrived on (`present`) or left a shard, or (in a full report) is there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub channel: Channel,
    pub sub: String,
    pub present: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Info,
}

/// What the alarm does with a presence socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Its token expired: its private channels end (and it leaves).
    Expired,
    /// Silent past the limit ([`SILENT_MS`] by default): closed (and it leaves).
    Silent,
}

/// This shard's members: per presence channel, each sub's info and how many sockets it has
/// here; per socket, what it contributes and when this object first saw it.
#[derive(Debug)]
pub struct LocalPresence {
    sockets: HashMap<String, (Presence, u64)>,
    members: BTreeMap<Channel, BTreeMap<String, (Info, usize)>>,
    /// The silence limit (ms).
    silent_ms: u64,
}

impl Default for LocalPresence {
    fn default() -> Self {
        LocalPresence::new(SILENT_MS)
    }
}

impl LocalPresence {
    pub fn new(silent_ms: u64) -> LocalPresence {
        LocalPresence { sockets: HashMap::new(), members: BTreeMap::new(), silent_ms }
    }

    /// How often the alarm looks at this shard's presence sockets.
    pub fn check_ms(&self) -> u64 {
        check_ms(self.silent_ms)
    }

    /// Socket `conn` now contributes `now` (None: nothing, it closed or left every presence
    /// channel). Returns this shard's transitions, each (channel, sub) at most once: a socket
    /// that keeps its channels changes nothing.
    pub fn set(&mut self, conn: &str, now: Option<Presence>, now_ms: u64) -> Vec<Change> {
        let old = self.sockets.remove(conn);
        let seen = old.as_ref().map_or(now_ms, |(_, seen)| *seen);
        let mut net: BTreeMap<(Channel, String), Change> = BTreeMap::new();
        let mut note = |change: Change| {
            let key = (change.channel.clone(), change.sub.clone());
            match net.get(&key) {
                Some(before) if before.present != change.present => {
                    net.remove(&key);
                }
                _ => {
                    net.insert(key, change);
                }
            }
        };
        if let Some((p, _)) = &old {
            for channel in &p.channels {
                let Some(subs) = self.members.get_mut(channel) else { continue };
                let Some(entry) = subs.get_mut(&p.sub) else { continue };
                entry.1 = entry.1.saturating_sub(1);
                if entry.1 == 0 {
                    subs.remove(&p.sub);
                    if subs.is_empty() {
                        self.members.remove(channel);
                    }
                    note(Change { channel: channel.clone(), sub: p.sub.clone(), present: false, info: None });
                }
            }
        }
        if let Some(p) = &now {
            for channel in &p.channels {
                let entry = self.members.entry(channel.clone()).or_default().entry(p.sub.clone()).or_insert((None, 0));
                entry.1 += 1;
                if entry.1 == 1 {
                    entry.0 = p.info.clone();
                    note(Change { channel: channel.clone(), sub: p.sub.clone(), present: true, info: p.info.clone() });
                }
            }
        }
        if let Some(p) = now {
            self.sockets.insert(conn.to_owned(), (p, seen));
        }
        net.into_values().collect()
    }

    /// Every member here, as a full report lists them.
    pub fn snapshot(&self) -> Vec<Change> {
        let mut all = Vec::new();
        for (channel, subs) in &self.members {
            for (sub, (info, _)) in subs {
                all.push(Change { channel: channel.clone(), sub: sub.clone(), present: true, info: info.clone() });
            }
        }
        all
    }

    /// The presence channels with members here.
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.members.keys()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    pub fn has(&self, conn: &str) -> bool {
        self.sockets.contains_key(conn)
    }

    /// The connection ids of this shard's presence sockets.
    pub fn conns(&self) -> std::collections::BTreeSet<String> {
        self.sockets.keys().cloned().collect()
    }

    /// When the alarm should next look at this shard's presence sockets (ms): a check period
    /// after the last look, or just after the first grant here runs out if that is sooner.
    /// None when there is no presence socket.
    pub fn next_check(&self, last_check_ms: u64) -> Option<u64> {
        let expiry = self.sockets.values().map(|(p, _)| p.until.saturating_add(1).saturating_mul(1000)).min()?;
        Some(last_check_ms.saturating_add(self.check_ms()).min(expiry))
    }

    /// What the alarm does with socket `conn` at `now_ms`, given when the runtime last
    /// answered its `ping` and when its last rate window (a client frame) began.
    pub fn verdict(&self, conn: &str, pinged_ms: Option<u64>, last_frame_ms: u64, now_ms: u64) -> Verdict {
        let Some((p, seen)) = self.sockets.get(conn) else { return Verdict::Keep };
        if now_ms / 1000 > p.until {
            return Verdict::Expired;
        }
        let alive = pinged_ms.unwrap_or(0).max(last_frame_ms).max(*seen);
        if now_ms.saturating_sub(alive) > self.silent_ms {
            Verdict::Silent
        } else {
            Verdict::Keep
        }
    }
}

/// A shard's report of its changes to shard 0 (`POST /presence-report`). A replica numbers its
/// reports within its run (its object's lifetime) and sends one at a time, so shard 0 sees
/// from the numbers whether it missed one; `full` replaces everything it knew of the shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub shard: u32,
    pub run: String,
    pub rev: u64,
    pub full: bool,
    pub changes: Vec<Change>,
}

/// A replica's reports: the changes not sent yet, coalesced per (channel, sub) to the latest.
#[derive(Debug)]
pub struct Reporter {
    run: String,
    rev: u64,
    pending: BTreeMap<(Channel, String), Change>,
    /// The next report is a full one: after any report that may not have been applied (the
    /// first of a run is refused by shard 0, which does not know the run, and followed by one).
    need_full: bool,
    /// A report is on its way (one at a time, so they arrive in order).
    pub sending: bool,
}

impl Reporter {
    pub fn new(run: String) -> Reporter {
        Reporter { run, rev: 0, pending: BTreeMap::new(), need_full: false, sending: false }
    }

    pub fn changed(&mut self, changes: Vec<Change>) {
        for c in changes {
            self.pending.insert((c.channel.clone(), c.sub.clone()), c);
        }
    }

    /// Whether a report is owed (`next` would return one).
    pub fn owed(&self) -> bool {
        !self.pending.is_empty() || self.need_full
    }

    /// The next report to send, if anything is owed.
    pub fn next(&mut self, local: &LocalPresence, shard: u32) -> Option<Report> {
        if !self.owed() {
            return None;
        }
        self.rev += 1;
        let full = std::mem::take(&mut self.need_full);
        let pending = std::mem::take(&mut self.pending);
        let changes = if full { local.snapshot() } else { pending.into_values().collect() };
        Some(Report { shard, run: self.run.clone(), rev: self.rev, full, changes })
    }

    /// A report failed or was refused: shard 0 may or may not have it, so the next is full.
    pub fn failed(&mut self) {
        self.need_full = true;
    }

    /// This shard's full state as an answer to shard 0's pull (`GET /presence-local`): the
    /// current rev, so shard 0 can tell it from reports sent before or after it.
    pub fn full(&self, local: &LocalPresence, shard: u32) -> Report {
        Report { shard, run: self.run.clone(), rev: self.rev, full: true, changes: local.snapshot() }
    }
}

/// A global join or leave, decided by shard 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Join { channel: Channel, member: Member },
    Leave { channel: Channel, sub: String },
}

/// Events numbered by shard 0 within its run (`POST /presence-events`), applied in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub run: String,
    pub n: u64,
    pub events: Vec<Event>,
}

/// Shard 0's whole table at a point of its numbering (`GET /presence-table`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableView {
    pub run: String,
    pub n: u64,
    pub channels: Vec<(Channel, Vec<Member>)>,
}
