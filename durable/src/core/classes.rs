//! Conflated delivery's classes (wasm-free): the sockets of one channel at one `every` interval
//! share a class, and a class's tick sends the channel's latest value if it changed since the
//! class's last frame, as a full `update` and, for delta sockets, a merge patch against that last
//! frame, each with the count of updates skipped, built once for every socket of the class.
//!
//! A class's sockets are "in step" (they hold the value of its last tick) or "fresh": they joined
//! since, holding their catch-up's value (their base). Fresh sockets get the tick's full update
//! with their own skipped count, never a patch against a value they do not hold, and are in step
//! from then on. The hub (`hub/conflation.rs`) arms one timer per class when a flush changes the
//! channel, so a channel that does not change costs nothing and an idle hub can hibernate.
//!
//! After hibernation a class starts from the seq storage held when the object loaded: no tick is
//! pending when an object hibernates (a pending timer keeps it awake), so each conflated socket
//! then holds its channel's latest value, which is the stored one.

use crate::wire::every::{skipped_parts, with_skipped, Every};
use crate::wire::merge_patch;
use crate::wire::protocol::{Channel, Seq, ServerFrame, Update};
use std::collections::BTreeMap;

/// A class's name in the subscriber index: `channel@ms` (no channel name holds an `@`).
pub fn class_key(channel: &Channel, every: Every) -> String {
    format!("{channel}@{}", every.ms())
}

/// The class a [`class_key`] names.
pub fn parse_class_key(key: &str) -> Option<(Channel, Every)> {
    let (name, ms) = key.split_once('@')?;
    Some((Channel::parse(name).ok()?, Every::from_ms(ms.parse().ok()?)?))
}

/// Where a subscribing socket goes in its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// It holds the value of the class's last frame: it gets the class's frames.
    InStep,
    /// It holds another value, at this seq: its next frame is a full update.
    Fresh(Seq),
}

/// What one class's tick sends. `seq` is the channel's latest: fresh sockets whose base is
/// older get the full update with their own skipped count (`fresh_head` + count + `fresh_tail`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub seq: Seq,
    /// The in-step sockets' frames; None when the channel has not moved since the last tick.
    pub frames: Option<TickFrames>,
    pub fresh_head: String,
    pub fresh_tail: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickFrames {
    pub full: String,
    /// For in-step delta sockets, where a patch is possible and smaller (else they get `full`).
    pub delta: Option<String>,
}

impl TickFrames {
    /// Messages built for the in-step sockets.
    pub fn built(&self) -> u64 {
        1 + u64::from(self.delta.is_some())
    }
}

/// One class: the value its in-step sockets hold, and whether a tick is armed.
#[derive(Debug, Clone, PartialEq)]
struct Class {
    sent: Seq,
    /// That value, when known (it is not after a wake): the base of its patches.
    value: Option<Update>,
    armed: bool,
}

/// Every class of this object (memory only).
#[derive(Debug, Clone, Default)]
pub struct Classes {
    classes: BTreeMap<(Channel, Every), Class>,
    /// Each channel's seq when the object loaded: what a socket rebuilt after a wake holds.
    loaded: BTreeMap<Channel, Seq>,
}

/// Two hubs are alike when their classes are: `loaded` is a copy of stored seqs, taken once.
impl PartialEq for Classes {
    fn eq(&self, other: &Classes) -> bool {
        self.classes == other.classes
    }
}

impl Classes {
    /// Remembers each channel's seq as loaded from storage (see the module doc).
    pub fn loaded(&mut self, seqs: impl IntoIterator<Item = (Channel, Seq)>) {
        self.loaded = seqs.into_iter().collect();
    }

    /// The class, created from what a socket rebuilt after a wake holds.
    fn class(&mut self, channel: &Channel, every: Every, latest: Option<&Update>) -> &mut Class {
        let sent = self.loaded.get(channel).copied().unwrap_or_default();
        self.classes.entry((channel.clone(), every)).or_insert_with(|| Class {
            sent,
            value: latest.filter(|u| u.seq == sent).cloned(),
            armed: false,
        })
    }

    /// A socket subscribes to `channel` at `every`, holding the value at `held` (its catch-up's).
    /// A class with no socket in the index (`empty`) takes the joiner's value as its own.
    pub fn join(
        &mut self,
        channel: &Channel,
        every: Every,
        held: Seq,
        empty: bool,
        latest: Option<&Update>,
    ) -> Placement {
        let class = self.class(channel, every, latest);
        if empty {
            class.sent = held;
            class.value = latest.filter(|u| u.seq == held).cloned();
        }
        if class.sent == held {
            Placement::InStep
        } else {
            Placement::Fresh(held)
        }
    }

    /// A flush changed `channel`: arms its class at `every`; true when it was not armed yet
    /// (the caller then starts the class's one timer).
    pub fn arm(&mut self, channel: &Channel, every: Every, latest: Option<&Update>) -> bool {
        !std::mem::replace(&mut self.class(channel, every, latest).armed, true)
    }

    /// A class's tick: what it sends (see [`Tick`]); the class then holds the latest value.
    /// The patch is built only for a class with delta sockets in step (`deltas`).
    pub fn tick(&mut self, channel: &Channel, every: Every, latest: Option<Update>, deltas: bool) -> Tick {
        let class = self.class(channel, every, latest.as_ref());
        class.armed = false;
        let Some(latest) = latest else {
            return Tick { seq: class.sent, frames: None, fresh_head: String::new(), fresh_tail: "" };
        };
        let full = ServerFrame::Update(latest.clone()).to_json();
        let (fresh_head, fresh_tail) = skipped_parts(&full);
        let mut tick = Tick { seq: latest.seq, frames: None, fresh_head, fresh_tail };
        if latest.seq != class.sent {
            let skipped = latest.seq.0.saturating_sub(class.sent.0 + 1);
            let full = with_skipped(&full, skipped);
            let held = class.value.as_ref().filter(|_| deltas);
            let delta = held.and_then(|held| delta_frame(held, &latest, skipped));
            tick.frames = Some(TickFrames { delta: delta.filter(|d| d.len() < full.len()), full });
            class.sent = latest.seq;
            class.value = Some(latest);
        }
        tick
    }

    /// A class the index says has no socket left (kept while a tick is armed).
    pub fn drop_class(&mut self, channel: &Channel, every: Every) {
        if self.classes.get(&(channel.clone(), every)).is_some_and(|c| !c.armed) {
            self.classes.remove(&(channel.clone(), every));
        }
    }

    /// A deleted channel: its classes go, and a channel of the same name starts from nothing.
    pub fn forget(&mut self, channel: &Channel) {
        self.classes.retain(|(c, _), _| c != channel);
        self.loaded.remove(channel);
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }
}

/// `latest` as a merge patch against `held`, with the skipped count.
fn delta_frame(held: &Update, latest: &Update, skipped: u64) -> Option<String> {
    let patch = merge_patch::diff(&held.data, &latest.data)?;
    let frame = ServerFrame::Delta {
        channel: latest.channel.clone(),
        seq: latest.seq,
        ts: latest.ts,
        stale: latest.stale,
        patch,
    };
    Some(with_skipped(&frame.to_json(), skipped))
}
