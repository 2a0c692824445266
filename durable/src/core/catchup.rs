//! A subscriber's catch-up as the socket path sends it: decided within the socket's budget
//! (`history_budget::CatchupBudget`), framed from stored text without decoding the values
//! (`StoredUpdate::frame`), and shared between sockets that resume alike (`catchup_cache`).
//!
//! The shell asks [`HubCore::catchup`]; when that needs history it reads the range strictly
//! within the allowance given and hands what it read to [`HubCore::replayed`].

use super::HubCore;
use crate::core::catchup_cache::{Cached, CatchupKey};
use crate::core::channel::Catchup;
use crate::core::history_budget::{CatchupBudget, CatchupOutcome};
use crate::core::storage_key::StoredUpdate;
use crate::wire::protocol::{Channel, Epoch, Seq, ServerFrame, Since, Update};
use std::rc::Rc;

/// What the shell does next for a catch-up.
#[derive(Debug, Clone, PartialEq)]
pub enum CatchupStep {
    Done(CatchupFrames),
    /// Read `from..=to` with `HistoryRead::strict(from, to, budget)`, then [`HubCore::replayed`].
    Read(ReplayRead),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayRead {
    pub from: Seq,
    pub to: Seq,
    pub budget: usize,
}

/// What a [`ReplayRead`] found: the entries kept, and whether the budget ran out first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEntries {
    pub updates: Vec<StoredUpdate>,
    pub full: bool,
}

/// A channel's catch-up: its `update` frames (JSON text joined by commas, a piece of a `batch`,
/// possibly shared with other sockets) and the `subscribed` frame that ends it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatchupFrames {
    pub updates: Option<Rc<str>>,
    pub count: usize,
    pub subscribed: ServerFrame,
}

impl HubCore {
    /// Starts the catch-up of `channel` from `since` within `budget`.
    pub fn catchup(
        &mut self,
        channel: &Channel,
        since: Option<&Since>,
        budget: &mut CatchupBudget,
        now: u64,
    ) -> CatchupStep {
        let (from, to) = match self.plan(channel, since) {
            Catchup::Replay { from, to } => (from, to),
            Catchup::UpToDate => {
                self.count_catchup(CatchupOutcome::UpToDate);
                return CatchupStep::Done(self.subscribed_only(channel, true));
            }
            Catchup::Latest => return CatchupStep::Done(self.latest(channel, budget, now, false)),
        };
        let Some(key) = self.key(channel, from, to, now) else {
            return CatchupStep::Done(self.latest(channel, budget, now, false));
        };
        let allowance = budget.replay_allowance();
        let fits = match self.catchups.get(&key) {
            Some(Cached::Built { frames, count, stored_bytes }) if *stored_bytes <= allowance => {
                let (frames, count, bytes) = (Rc::clone(frames), *count, *stored_bytes);
                budget.replayed(bytes);
                self.count_catchup(CatchupOutcome::Shared);
                let subscribed = self.subscribed_only(channel, true).subscribed;
                return CatchupStep::Done(CatchupFrames { updates: Some(frames), count, subscribed });
            }
            Some(Cached::Built { .. }) => false,
            Some(Cached::TooLarge { over }) => allowance > *over,
            None => allowance > 0,
        };
        if !fits {
            // Known not to fit without reading anything (the cache remembers the gap, or nothing
            // is left): it costs the socket nothing beyond the latest value, so a socket that
            // follows several channels still gets the replays that do fit.
            return CatchupStep::Done(self.latest(channel, budget, now, true));
        }
        CatchupStep::Read(ReplayRead { from, to, budget: allowance })
    }

    /// Finishes a catch-up with what storage returned for `read` (None: the read failed). The
    /// replay goes only if it is exactly `from..=to`, in order, readable, and the channel is
    /// still at `to` (it may have moved while storage was read); otherwise the latest value and
    /// `recovered: false`, never a partial replay called recovered.
    pub fn replayed(
        &mut self,
        channel: &Channel,
        read: ReplayRead,
        fetched: Option<ReplayEntries>,
        budget: &mut CatchupBudget,
        now: u64,
    ) -> CatchupFrames {
        let Some(ReplayEntries { updates, full }) = fetched else { return self.latest(channel, budget, now, false) };
        let key = self.key(channel, read.from, read.to, now);
        if full {
            budget.refused();
            if let Some(key) = key {
                let max = self.catchup_cache_bytes();
                self.catchups.insert(key, Cached::TooLarge { over: read.budget }, max);
            }
            return self.latest(channel, budget, now, true);
        }
        let bytes: usize = updates.iter().map(|u| u.json.len()).sum();
        let complete = updates.len() as u64 == read.to.0 + 1 - read.from.0
            && updates.iter().zip(read.from.0..).all(|(u, want)| u.seq == Seq(want));
        let frames = match key.as_ref().filter(|_| complete) {
            Some(key) => {
                let last = updates.len() - 1;
                let frames: Option<Vec<String>> =
                    updates.iter().enumerate().map(|(i, u)| u.frame(channel, key.stale && i == last)).collect();
                frames
            }
            None => None,
        };
        let (Some(key), Some(frames)) = (key, frames) else {
            budget.read_unused(bytes);
            return self.latest(channel, budget, now, false);
        };
        let count = frames.len();
        let text: Rc<str> = frames.join(",").into();
        budget.replayed(bytes);
        self.count_catchup(CatchupOutcome::Replayed);
        let max = self.catchup_cache_bytes();
        self.catchups.insert(key, Cached::Built { frames: Rc::clone(&text), count, stored_bytes: bytes }, max);
        CatchupFrames { updates: Some(text), count, subscribed: self.subscribed_only(channel, true).subscribed }
    }

    /// The latest value (if the budget lets it go) and `subscribed` with `recovered: false`;
    /// counted as `too_large` when it stands in for a replay that did not fit.
    fn latest(&mut self, channel: &Channel, budget: &mut CatchupBudget, now: u64, too_large: bool) -> CatchupFrames {
        let frames = self.latest_frames(channel, budget, now);
        let withheld = frames.count == 0 && self.channels.get(channel).is_some_and(|m| m.latest.is_some());
        self.count_catchup(match (too_large, withheld) {
            (true, _) => CatchupOutcome::TooLarge,
            (false, true) => CatchupOutcome::Withheld,
            (false, false) => CatchupOutcome::Latest,
        });
        frames
    }

    fn latest_frames(&mut self, channel: &Channel, budget: &mut CatchupBudget, now: u64) -> CatchupFrames {
        let mut out = self.subscribed_only(channel, false);
        let Some(m) = self.channels.get(channel) else { return out };
        let Some(latest) = m.latest.as_ref() else { return out };
        let stale = self.is_stale(channel, m, now);
        let key =
            CatchupKey { channel: channel.clone(), epoch: m.epoch.clone(), from: latest.seq, to: latest.seq, stale };
        let frame: Rc<str> = match self.catchups.get(&key) {
            Some(Cached::Built { frames, .. }) => Rc::clone(frames),
            _ => {
                let text: Rc<str> = ServerFrame::Update(Update { stale, ..latest.clone() }).to_json().into();
                let value = Cached::Built { frames: Rc::clone(&text), count: 1, stored_bytes: text.len() };
                let max = self.catchup_cache_bytes();
                self.catchups.insert(key, value, max);
                text
            }
        };
        if budget.latest(frame.len()) {
            out.updates = Some(frame);
            out.count = 1;
        }
        out
    }

    /// Just the `subscribed` frame: at the channel's current seq, or seq 0 for a channel nothing
    /// was published to yet (its first update then comes as seq 1).
    fn subscribed_only(&self, channel: &Channel, recovered: bool) -> CatchupFrames {
        let subscribed = match self.channels.get(channel) {
            Some(m) => {
                ServerFrame::Subscribed { channel: channel.clone(), seq: m.seq, epoch: m.epoch.clone(), recovered }
            }
            None => ServerFrame::Subscribed {
                channel: channel.clone(),
                seq: Seq(0),
                epoch: Epoch::default(),
                recovered: false,
            },
        };
        CatchupFrames { updates: None, count: 0, subscribed }
    }

    fn count_catchup(&mut self, outcome: CatchupOutcome) {
        *self.counters.catchups.entry(outcome).or_insert(0) += 1;
    }

    /// The cache key of a replay of `from..=to`, while the channel is at `to`.
    fn key(&self, channel: &Channel, from: Seq, to: Seq, now: u64) -> Option<CatchupKey> {
        let m = self.channels.get(channel).filter(|m| m.seq == to)?;
        let stale = self.is_stale(channel, m, now);
        Some(CatchupKey { channel: channel.clone(), epoch: m.epoch.clone(), from, to, stale })
    }

    /// Catch-ups the cache holds at most, in bytes of frames: two pages.
    fn catchup_cache_bytes(&self) -> usize {
        self.limits.history_page_bytes.saturating_mul(2)
    }

    /// Entries and bytes the catch-up cache holds (for tests and stats).
    pub fn catchup_cache_size(&self) -> (usize, usize) {
        (self.catchups.len(), self.catchups.bytes())
    }
}
