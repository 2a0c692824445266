//! A shard's copy of the global member list (wasm-free core), kept in step with shard 0's
//! numbered batches of joins and leaves (`presence.rs`), and the `presence`, `join` and `leave`
//! frames each batch makes, within the `MAX_PRESENCE_MEMBERS` bound. A mirror that misses a
//! batch, or has just woken up, serves nothing until it has loaded the whole table again.

use crate::core::presence::{Batch, Event, Frame, Info, TableView};
use crate::wire::presence::{Member, PresenceFrame};
use crate::wire::protocol::Channel;
use std::collections::BTreeMap;

/// What a shard makes of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Applied: these frames go to the channels' presence subscribers, in order.
    Frames(Vec<Frame>),
    /// Already applied (or covered by a table it loaded): nothing to do.
    Old,
    /// Kept until the table being fetched is loaded.
    Held,
    /// Out of order: fetch the table (the mirror serves nothing until then).
    Gap,
}

/// A shard's copy of the global list, in step with shard 0's numbering (`at`), or not to be
/// served (`at` None: just woken up, or a batch was missed).
#[derive(Debug, Default)]
pub struct Mirror {
    at: Option<(String, u64)>,
    members: BTreeMap<Channel, BTreeMap<String, Info>>,
    held: Vec<Batch>,
    /// The table is being fetched.
    pub syncing: bool,
}

impl Mirror {
    pub fn in_step(&self) -> bool {
        self.at.is_some()
    }

    /// Applies a batch from shard 0.
    pub fn apply(&mut self, batch: Batch, max: usize) -> Step {
        if self.syncing {
            self.held.push(batch);
            return Step::Held;
        }
        match &self.at {
            Some((run, n)) if *run == batch.run && batch.n <= *n => Step::Old,
            Some((run, n)) if *run == batch.run && batch.n == n + 1 => {
                self.at = Some((batch.run, batch.n));
                Step::Frames(batch.events.into_iter().map(|e| self.event(e, max)).collect())
            }
            _ => {
                self.at = None;
                Step::Gap
            }
        }
    }

    fn event(&mut self, event: Event, max: usize) -> Frame {
        match event {
            Event::Join { channel, member } => {
                let subs = self.members.entry(channel.clone()).or_default();
                subs.insert(member.sub.clone(), member.info.clone());
                let count = subs.len() as u64;
                let (sub, info) = if subs.len() > max { (None, None) } else { (Some(member.sub), member.info) };
                PresenceFrame::Join { channel, sub, info, count }
            }
            Event::Leave { channel, sub } => {
                let subs = self.members.entry(channel.clone()).or_default();
                let before = subs.len();
                subs.remove(&sub);
                let count = subs.len() as u64;
                if before > max && subs.len() <= max {
                    // Back within the bound: the client had counts only, so it gets the list.
                    let frame = list_frame(&channel, subs, max);
                    self.forget_if_empty(&channel);
                    return frame;
                }
                let sub = (subs.len() <= max).then_some(sub);
                self.forget_if_empty(&channel);
                PresenceFrame::Leave { channel, sub, count }
            }
        }
    }

    fn forget_if_empty(&mut self, channel: &Channel) {
        if self.members.get(channel).is_some_and(BTreeMap::is_empty) {
            self.members.remove(channel);
        }
    }

    /// Replaces the mirror with shard 0's table, then applies the batches held meanwhile that
    /// follow it. Returns false when one of those is out of order (fetch again).
    pub fn load(&mut self, view: TableView) -> bool {
        self.syncing = false;
        self.members = view
            .channels
            .into_iter()
            .map(|(c, members)| (c, members.into_iter().map(|m| (m.sub, m.info)).collect()))
            .collect();
        self.at = Some((view.run, view.n));
        let mut held = std::mem::take(&mut self.held);
        held.sort_by_key(|b| b.n);
        // Frames of held batches are not sent: the fresh lists sent after a load include them.
        held.into_iter().all(|b| !matches!(self.apply(b, usize::MAX), Step::Gap))
    }

    /// A fetch failed: serve nothing until the next one succeeds.
    pub fn fetch_failed(&mut self) {
        self.syncing = false;
        self.at = None;
        self.held.clear();
    }

    /// The `presence` frame of `channel` (None while not in step).
    pub fn list(&self, channel: &Channel, max: usize) -> Option<Frame> {
        self.at.as_ref()?;
        let empty = BTreeMap::new();
        Some(list_frame(channel, self.members.get(channel).unwrap_or(&empty), max))
    }
}

/// A `presence` frame: the members, or past `max` the count only.
pub fn list_frame(channel: &Channel, subs: &BTreeMap<String, Info>, max: usize) -> Frame {
    let members = (subs.len() <= max)
        .then(|| subs.iter().map(|(sub, info)| Member { sub: sub.clone(), info: info.clone() }).collect());
    PresenceFrame::Presence { channel: channel.clone(), members, count: subs.len() as u64 }
}
