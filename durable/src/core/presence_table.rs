//! Shard 0's global presence table (wasm-free core): per presence channel, each member's
//! `info` and which shards have it, from every shard's reports (`presence.rs`). A member
//! joins when its first shard reports it and leaves when its last one does; those events are
//! numbered here, in one sequence for every channel, and applied by every shard in that order.
//!
//! The table is memory only: no storage write per join or leave. After shard 0 wakes (or
//! restarts) it knows only its own sockets, so it is incomplete, and serves nothing, until
//! every other shard has sent its full state (shard 0 pulls it, `GET /presence-local`). A
//! complete table then starts a new run of numbers, which makes every shard fetch it whole.

use crate::core::presence::{Batch, Change, Event, Info, Report, TableView};
use crate::wire::presence::Member;
use crate::wire::protocol::Channel;
use std::collections::BTreeMap;

/// Shard 0's own number in the table.
const SELF: u32 = 0;

/// What shard 0 makes of a replica's report.
#[derive(Debug, Clone, PartialEq)]
pub enum Reported {
    /// Applied, or already covered by a later full state: these events (if any) follow.
    Applied(Vec<Event>),
    /// A report is missing between the last one applied and this one (or the replica's run is
    /// new to shard 0): the replica must send its full state.
    NeedFull,
}

/// The global table.
#[derive(Debug)]
pub struct Table {
    shards: u32,
    members: BTreeMap<Channel, BTreeMap<String, BTreeMap<u32, Info>>>,
    /// Per shard, the run and rev of the last report applied (shard 0's own is always known).
    known: BTreeMap<u32, (String, u64)>,
    run: String,
    n: u64,
}

impl Table {
    pub fn new(shards: u32, run: String) -> Table {
        let known = BTreeMap::from([(SELF, (run.clone(), 0))]);
        Table { shards: shards.max(1), members: BTreeMap::new(), known, run, n: 0 }
    }

    /// Every shard's state is known: the table may be served and its events sent.
    pub fn is_complete(&self) -> bool {
        (0..self.shards).all(|k| self.known.contains_key(&k))
    }

    /// The shards whose state is not known yet (to pull).
    pub fn missing(&self) -> Vec<u32> {
        (0..self.shards).filter(|k| !self.known.contains_key(k)).collect()
    }

    /// The shards that have members here (checked by the alarm, so a shard that lost its
    /// sockets without telling does not keep them forever).
    pub fn holders(&self) -> Vec<u32> {
        let mut shards: Vec<u32> =
            self.members.values().flat_map(|subs| subs.values().flat_map(|by| by.keys().copied())).collect();
        shards.sort_unstable();
        shards.dedup();
        shards.retain(|&k| k != SELF);
        shards
    }

    /// Whether any shard but shard 0 has members here (stops at the first).
    pub fn has_holders(&self) -> bool {
        self.members.values().any(|subs| subs.values().any(|by| by.keys().any(|&k| k != SELF)))
    }

    /// Shard 0's own transitions.
    pub fn local(&mut self, changes: &[Change]) -> Vec<Event> {
        self.apply(SELF, changes, false)
    }

    /// A replica's report (or its full state, pulled). The report that completes the table
    /// makes no event: every shard then reloads the whole table, which includes it.
    pub fn report(&mut self, r: &Report) -> Reported {
        if r.shard == SELF || r.shard >= self.shards {
            return Reported::Applied(Vec::new());
        }
        let was = self.is_complete();
        match self.report_to(r) {
            Reported::Applied(_) if !was => Reported::Applied(Vec::new()),
            other => other,
        }
    }

    fn report_to(&mut self, r: &Report) -> Reported {
        let known = self.known.get(&r.shard).filter(|(run, _)| *run == r.run).map(|(_, rev)| *rev);
        match (r.full, known) {
            // Older than what is applied: a later report or full state already covers it.
            (_, Some(rev)) if r.rev < rev || (!r.full && r.rev == rev) => Reported::Applied(Vec::new()),
            (false, Some(rev)) if r.rev == rev + 1 => {
                self.known.insert(r.shard, (r.run.clone(), r.rev));
                Reported::Applied(self.apply(r.shard, &r.changes, false))
            }
            (false, _) => Reported::NeedFull,
            (true, _) => {
                self.known.insert(r.shard, (r.run.clone(), r.rev));
                Reported::Applied(self.apply(r.shard, &r.changes, true))
            }
        }
    }

    /// Applies one shard's changes (replacing all it had if `replace`); the global joins and
    /// leaves they make, none while the table is incomplete.
    fn apply(&mut self, shard: u32, changes: &[Change], replace: bool) -> Vec<Event> {
        let mut touched: BTreeMap<(Channel, String), bool> = BTreeMap::new();
        if replace {
            for (channel, subs) in &self.members {
                for (sub, by) in subs {
                    if by.contains_key(&shard) {
                        touched.insert((channel.clone(), sub.clone()), true);
                    }
                }
            }
            for (channel, sub) in touched.keys() {
                self.remove(shard, channel, sub);
            }
        }
        for c in changes {
            let key = (c.channel.clone(), c.sub.clone());
            let was = self.members.get(&c.channel).is_some_and(|s| s.contains_key(&c.sub));
            touched.entry(key).or_insert(was);
            if c.present {
                let by = self.members.entry(c.channel.clone()).or_default().entry(c.sub.clone()).or_default();
                by.insert(shard, c.info.clone());
            } else {
                self.remove(shard, &c.channel, &c.sub);
            }
        }
        if !self.is_complete() {
            return Vec::new();
        }
        let mut events = Vec::new();
        for ((channel, sub), was) in touched {
            let shown = self.members.get(&channel).and_then(|s| s.get(&sub)).and_then(|by| by.values().next());
            match (was, shown) {
                (false, Some(info)) => events.push(Event::Join { channel, member: Member { sub, info: info.clone() } }),
                (true, None) => events.push(Event::Leave { channel, sub }),
                _ => {}
            }
        }
        events
    }

    fn remove(&mut self, shard: u32, channel: &Channel, sub: &str) {
        let Some(subs) = self.members.get_mut(channel) else { return };
        if let Some(by) = subs.get_mut(sub) {
            by.remove(&shard);
            if by.is_empty() {
                subs.remove(sub);
            }
        }
        if subs.is_empty() {
            self.members.remove(channel);
        }
    }

    /// Numbers events (none: a heartbeat, which makes a shard that missed a batch notice).
    pub fn batch(&mut self, events: Vec<Event>) -> Batch {
        self.n += 1;
        Batch { run: self.run.clone(), n: self.n, events }
    }

    /// The whole table at the current number (None while incomplete).
    pub fn view(&self) -> Option<TableView> {
        if !self.is_complete() {
            return None;
        }
        let channels = self.members.keys().map(|c| (c.clone(), self.list(c))).collect();
        Some(TableView { run: self.run.clone(), n: self.n, channels })
    }

    /// A channel's members, by sub, each with the info of the lowest shard that has it.
    pub fn list(&self, channel: &Channel) -> Vec<Member> {
        let Some(subs) = self.members.get(channel) else { return Vec::new() };
        subs.iter()
            .filter_map(|(sub, by)| by.values().next().map(|info| Member { sub: sub.clone(), info: info.clone() }))
            .collect()
    }

    /// Members summed over presence channels (`tickwire_presence_members`); None while
    /// incomplete.
    pub fn total(&self) -> Option<u64> {
        self.is_complete().then(|| self.members.values().map(|s| s.len() as u64).sum())
    }
}

/// The body of `GET /api/presence`: the members (left out past `max`) and the count.
pub fn answer(channel: &Channel, members: Vec<Member>, max: usize) -> serde_json::Value {
    let count = members.len();
    let mut body = serde_json::json!({ "channel": channel, "count": count });
    if count <= max {
        body["members"] = serde_json::json!(members);
    }
    body
}
