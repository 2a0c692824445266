//! Conflated delivery on a socket and in the core (wasm-free): which interval each of a socket's
//! subscriptions asked for (`every` at connect, `every_ms` in `subscribe`), kept in its
//! attachment, and the core's side of the classes (`classes.rs`), which it feeds with each
//! channel's latest value.

use crate::core::classes::{Placement, Tick};
use crate::core::socket::{Action, SocketMeta};
use crate::core::HubCore;
use crate::wire::every::{parse_every_param, Every};
use crate::wire::protocol::{truncate, Channel, ErrorCode, Seq, ServerFrame};
use std::collections::{HashMap, HashSet};

/// The attachment's code of a subscription delivered unconflated.
const UNCONFLATED: u8 = 0;
/// Codes (0 to 4) travel two to a character, `'a'` + 5 × first + second: 400 subscriptions,
/// all conflated, cost the attachment 200 bytes (`settings.rs` tests the largest attachment).
const PAIR_BASE: u8 = 5;

impl SocketMeta {
    /// The interval the socket asked for on `channel`, if it is conflated.
    pub fn every_of(&self, channel: &Channel) -> Option<Every> {
        if self.every.is_empty() {
            return None;
        }
        let i = self.channels.iter().position(|c| c == channel)?;
        self.every_codes().get(i).copied().and_then(Every::from_code)
    }

    /// The socket's conflated channels and their intervals (empty when none is).
    pub fn conflated(&self) -> std::collections::HashMap<&Channel, Every> {
        let codes = if self.every.is_empty() { Vec::new() } else { self.every_codes() };
        self.channels.iter().zip(codes).filter_map(|(c, code)| Some((c, Every::from_code(code)?))).collect()
    }

    /// One code per entry of `channels` (0 where it is not conflated).
    fn every_codes(&self) -> Vec<u8> {
        let mut codes = Vec::with_capacity(self.every.len() * 2);
        for b in self.every.bytes() {
            let v = b.saturating_sub(b'a');
            codes.extend([v / PAIR_BASE, v % PAIR_BASE]);
        }
        codes.resize(self.channels.len(), UNCONFLATED);
        codes
    }

    /// Stores `codes` (one per channel); nothing at all while none is conflated.
    fn set_every_codes(&mut self, codes: &[u8]) {
        self.every.clear();
        if codes.iter().all(|c| *c == UNCONFLATED) {
            return;
        }
        for pair in codes.chunks(2) {
            let second = pair.get(1).copied().unwrap_or(UNCONFLATED);
            self.every.push(char::from(b'a' + pair[0] * PAIR_BASE + second));
        }
    }

    /// Records the interval of the channel just pushed onto `channels`.
    pub(crate) fn note_every(&mut self, every: Option<Every>) {
        if every.is_none() && self.every.is_empty() {
            return;
        }
        let mut codes = self.every_codes();
        if let Some(last) = codes.last_mut() {
            *last = every.map_or(UNCONFLATED, Every::code);
        }
        self.set_every_codes(&codes);
    }

    /// Keeps the channels `keep` says to keep, and their intervals with them; answers the others.
    pub(crate) fn retain_channels(&mut self, keep: impl Fn(&Channel) -> bool) -> Vec<Channel> {
        let codes = self.every_codes();
        let (mut kept, mut kept_codes, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for (channel, code) in std::mem::take(&mut self.channels).into_iter().zip(codes) {
            if keep(&channel) {
                kept.push(channel);
                kept_codes.push(code);
            } else {
                gone.push(channel);
            }
        }
        self.channels = kept;
        self.set_every_codes(&kept_codes);
        gone
    }

    /// The intervals a connect URL's `every` asks for, by name, and the `error` frames of its
    /// entries that are not `name:ms` with `ms` in the set or name no channel of the connect.
    pub(crate) fn connect_intervals(param: Option<&str>, channels: &[String]) -> (HashMap<String, Every>, Vec<Action>) {
        let (pairs, errors) = param.map(parse_every_param).unwrap_or_default();
        let mut actions: Vec<Action> = errors.into_iter().map(Action::Send).collect();
        let wanted: HashSet<&str> = channels.iter().map(String::as_str).collect();
        let mut intervals = HashMap::new();
        for (name, every) in pairs {
            if wanted.contains(name.as_str()) {
                intervals.entry(name).or_insert(every);
            } else {
                let msg = format!("every names {:?}, which this connect does not subscribe to", truncate(&name, 60));
                actions.push(Action::Send(ServerFrame::error(ErrorCode::InvalidEvery, msg)));
            }
        }
        (intervals, actions)
    }

    /// A `subscribe` op's interval; one outside the set is answered with its `error` frame.
    pub(crate) fn op_interval(every: Option<Result<Every, ServerFrame>>, actions: &mut Vec<Action>) -> Option<Every> {
        match every? {
            Ok(every) => Some(every),
            Err(frame) => {
                actions.push(Action::Send(frame));
                None
            }
        }
    }
}

impl HubCore {
    /// Remembers each channel's seq as loaded from storage (`classes.rs` says why).
    pub(crate) fn note_loaded_seqs(&mut self) {
        let seqs: Vec<(Channel, Seq)> = self.channels.iter().map(|(c, m)| (c.clone(), m.seq)).collect();
        self.classes.loaded(seqs);
    }

    /// A socket subscribes to `channel` at `every`, caught up to `held`; `empty`: its class has
    /// no socket in the index.
    pub fn join_class(&mut self, channel: &Channel, every: Every, held: Seq, empty: bool) -> Placement {
        let latest = self.channels.get(channel).and_then(|m| m.latest.as_ref());
        self.classes.join(channel, every, held, empty, latest)
    }

    /// A flush changed these classes' channels: those whose tick must be armed now (the others'
    /// is armed already).
    pub fn arm_classes(&mut self, classes: impl IntoIterator<Item = (Channel, Every)>) -> Vec<(Channel, Every)> {
        let mut armed = Vec::new();
        for (channel, every) in classes {
            let latest = self.channels.get(&channel).and_then(|m| m.latest.as_ref());
            if self.classes.arm(&channel, every, latest) {
                armed.push((channel, every));
            }
        }
        armed
    }

    /// A class's tick: what it sends (a patch only if `deltas`: it has delta sockets in step);
    /// the class then holds the channel's latest value.
    pub fn tick_class(&mut self, channel: &Channel, every: Every, deltas: bool) -> Tick {
        let latest = self.channels.get(channel).and_then(|m| m.latest.clone());
        self.classes.tick(channel, every, latest, deltas)
    }

    /// A tick ran, building `built` messages.
    pub fn count_tick(&mut self, built: u64) {
        self.counters.conflation_ticks += 1;
        self.counters.conflation_frames_built += built;
    }

    /// A class the index says has no socket left.
    pub fn drop_class(&mut self, channel: &Channel, every: Every) {
        self.classes.drop_class(channel, every);
    }
}

#[cfg(test)]
mod tests;
