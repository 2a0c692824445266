//! One channel's sequence, latest value and history bookkeeping, and the resume decision.
//!
//! The hub stores a channel as a small meta record plus one storage key per retained update,
//! so a publish writes two small keys (and deletes the one that fell out of history) instead of
//! rewriting the whole history, and a resume reads only the range it needs.

use crate::wire::protocol::{Channel, Epoch, Seq, ServerFrame, Since, Update};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ops::Range;

/// The `ch:<channel>` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMeta {
    pub epoch: Epoch,
    pub seq: Seq,
    /// Oldest seq still in history; history is always the contiguous range `first_retained..=seq`.
    pub first_retained: Seq,
    pub latest: Option<Update>,
    /// Updates this object sequenced (the sequencer only; replicas count 0, so sums stay true).
    pub published: u64,
    /// Frames of this channel sent to sockets by this object.
    #[serde(default)]
    pub deliveries: u64,
    /// Sends that failed (the socket was then closed).
    #[serde(default)]
    pub failed_sends: u64,
    /// When a fetch (or publish) last confirmed the latest value, ms; staleness counts from here,
    /// so a value that holds steady (the daily Fear & Greed index) is not called stale.
    #[serde(default)]
    pub confirmed_at: u64,
    /// When the KV copy was last written, and whether the value changed since.
    #[serde(default)]
    pub kv_written_at: Option<u64>,
    #[serde(default)]
    pub kv_dirty: bool,
}

/// What a change to the channel means for storage: put one history entry, delete the seqs that
/// fell out of history, and with `reset` (a replica that saw a gap, or another epoch) also the
/// whole history it had before, `clear`. The ranges come from the meta, so no storage listing
/// (which would read every old value) is needed to find the keys.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryWrite {
    pub put: Update,
    /// The value `put` replaces as the channel's latest (what a `delta` frame patches).
    pub previous: Option<Update>,
    pub delete: Range<u64>,
    pub reset: bool,
    pub clear: Range<u64>,
}

impl HistoryWrite {
    /// Every history seq this write removes, never the one it puts (after a new epoch the new
    /// seq may fall inside the old range).
    pub fn deleted_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.delete.clone().chain(self.clear.clone()).filter(|s| *s != self.put.seq.0)
    }
}

/// How to bring a subscribing socket up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Catchup {
    /// Replay `from..=to` from history, then `subscribed` with `recovered: true`.
    Replay { from: Seq, to: Seq },
    /// The client has everything: just `subscribed` with `recovered: true`.
    UpToDate,
    /// Send the latest value (if any), then `subscribed` with `recovered: false`.
    Latest,
}

impl ChannelMeta {
    pub fn new(epoch: Epoch) -> ChannelMeta {
        ChannelMeta {
            epoch,
            seq: Seq(0),
            first_retained: Seq(0),
            latest: None,
            published: 0,
            deliveries: 0,
            failed_sends: 0,
            confirmed_at: 0,
            kv_written_at: None,
            kv_dirty: false,
        }
    }

    /// Sequences `data` as the next update. With `dedupe`, a value equal to the latest is not
    /// news (feeds poll the same value over and over) and gets no seq.
    pub fn publish(
        &mut self,
        channel: &Channel,
        ts: u64,
        data: Value,
        dedupe: bool,
        history_len: u64,
    ) -> Option<HistoryWrite> {
        if dedupe && self.latest.as_ref().is_some_and(|l| l.data == data) {
            return None;
        }
        let update = Update { channel: channel.clone(), seq: self.seq.next(), ts, stale: false, data };
        self.published += 1;
        Some(self.append(update, history_len, false))
    }

    /// Applies an update sequenced by another object (a replica shard). A duplicate or older
    /// update is ignored; a gap or another epoch restarts history at this update, so a resume
    /// can never be answered from a history with a hole in it.
    pub fn apply(&mut self, update: Update, epoch: &Epoch, history_len: u64) -> Option<HistoryWrite> {
        let same_epoch = &self.epoch == epoch;
        if same_epoch && update.seq <= self.seq {
            return None;
        }
        let reset = !same_epoch || update.seq != self.seq.next();
        let mut clear = 0..0;
        if reset {
            clear = self.retained();
            self.epoch = epoch.clone();
            self.first_retained = update.seq;
        }
        let mut write = self.append(update, history_len, reset);
        write.clear = clear;
        Some(write)
    }

    /// The seqs whose history entries are stored: `first_retained..=seq`, empty before the
    /// first update.
    pub fn retained(&self) -> Range<u64> {
        if self.first_retained.0 == 0 {
            0..0
        } else {
            self.first_retained.0..self.seq.0 + 1
        }
    }

    fn append(&mut self, update: Update, history_len: u64, reset: bool) -> HistoryWrite {
        self.seq = update.seq;
        if self.first_retained == Seq(0) {
            self.first_retained = update.seq;
        }
        let keep_from = self.seq.0.saturating_sub(history_len.saturating_sub(1)).max(self.first_retained.0);
        let delete = self.first_retained.0..keep_from;
        self.first_retained = Seq(keep_from);
        self.confirmed_at = self.confirmed_at.max(update.ts);
        self.kv_dirty = true;
        let previous = self.latest.replace(update.clone());
        HistoryWrite { put: update, previous, delete, reset, clear: 0..0 }
    }

    /// Decides how to answer a subscription that resumes from `since` (or starts fresh).
    pub fn catchup(&self, since: Option<&Since>) -> Catchup {
        let Some(since) = since else { return Catchup::Latest };
        let s = since.seq();
        let epoch_ok = since.epoch().is_none_or(|e| e == &self.epoch);
        if !epoch_ok || s > self.seq {
            Catchup::Latest
        } else if s == self.seq {
            Catchup::UpToDate
        } else if self.first_retained.0 >= 1 && s.0 + 1 >= self.first_retained.0 {
            Catchup::Replay { from: s.next(), to: self.seq }
        } else {
            Catchup::Latest
        }
    }

    /// The frames for a catch-up. For `Replay`, `fetched` is what storage returned for the
    /// range; unless it is exactly that range in order, the client gets the latest value and
    /// `recovered: false`: a partial recovery is never presented as complete.
    /// `stale` marks the latest value (the caller knows the clock and the threshold).
    pub fn catchup_frames(
        &self,
        channel: &Channel,
        plan: &Catchup,
        fetched: Vec<Update>,
        stale: bool,
    ) -> Vec<ServerFrame> {
        let subscribed = |recovered| ServerFrame::Subscribed {
            channel: channel.clone(),
            seq: self.seq,
            epoch: self.epoch.clone(),
            recovered,
        };
        match plan {
            Catchup::UpToDate => vec![subscribed(true)],
            Catchup::Replay { from, to } => {
                let complete = fetched.len() as u64 == to.0 + 1 - from.0
                    && fetched.iter().zip(from.0..).all(|(u, want)| u.seq == Seq(want))
                    && *to == self.seq;
                if complete {
                    let last = fetched.len() - 1;
                    let mut frames: Vec<_> = fetched
                        .into_iter()
                        .enumerate()
                        .map(|(i, u)| ServerFrame::Update(Update { stale: stale && i == last, ..u }))
                        .collect();
                    frames.push(subscribed(true));
                    frames
                } else {
                    self.catchup_frames(channel, &Catchup::Latest, Vec::new(), stale)
                }
            }
            Catchup::Latest => {
                let latest = self.latest.iter().cloned().map(|u| ServerFrame::Update(Update { stale, ..u }));
                let mut frames: Vec<_> = latest.collect();
                frames.push(subscribed(false));
                frames
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chan() -> Channel {
        Channel::parse("news").unwrap()
    }

    fn filled(n: u64, history_len: u64) -> (ChannelMeta, Vec<HistoryWrite>) {
        let mut m = ChannelMeta::new(Epoch("e1".into()));
        let writes = (1..=n).filter_map(|i| m.publish(&chan(), i, json!(i), false, history_len)).collect();
        (m, writes)
    }

    fn seqs(frames: &[ServerFrame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f {
                ServerFrame::Update(u) => u.seq.to_string(),
                ServerFrame::Subscribed { recovered, seq, .. } => format!("sub{seq}:{recovered}"),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn history(from: u64, to: u64) -> Vec<Update> {
        (from..=to).map(|i| Update { channel: chan(), seq: Seq(i), ts: i, stale: false, data: json!(i) }).collect()
    }

    #[test]
    fn seq_is_contiguous_and_history_trimmed() {
        let (m, writes) = filled(7, 3);
        assert_eq!(writes.iter().map(|w| w.put.seq.0).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
        // Each write deletes exactly the entry that fell out; together they delete 1..=4.
        let deleted: Vec<u64> = writes.iter().flat_map(|w| w.delete.clone()).collect();
        assert_eq!(deleted, vec![1, 2, 3, 4]);
        assert_eq!((m.seq, m.first_retained, m.published), (Seq(7), Seq(5), 7));
    }

    #[test]
    fn dedupe_skips_unchanged_values_only_when_asked() {
        let mut m = ChannelMeta::new(Epoch("e".into()));
        assert!(m.publish(&chan(), 1, json!(1), true, 10).is_some());
        assert!(m.publish(&chan(), 2, json!(1), true, 10).is_none());
        assert_eq!(m.publish(&chan(), 3, json!(1), false, 10).map(|w| w.put.seq), Some(Seq(2)));
    }

    #[test]
    fn shrinking_history_len_trims_the_excess() {
        let (mut m, _) = filled(10, 10);
        let w = m.publish(&chan(), 11, json!(11), false, 3).unwrap();
        assert_eq!(w.delete, 1..9);
        assert_eq!(m.first_retained, Seq(9));
    }

    #[test]
    fn every_resume_case() {
        let (m, _) = filled(20, 5); // history holds 16..=20
        let at = |seq, epoch: Option<&str>| Since::At { seq, epoch: epoch.map(|e| Epoch(e.into())) };
        assert_eq!(m.catchup(None), Catchup::Latest);
        assert_eq!(m.catchup(Some(&Since::Seq(20))), Catchup::UpToDate);
        assert_eq!(m.catchup(Some(&Since::Seq(17))), Catchup::Replay { from: Seq(18), to: Seq(20) });
        assert_eq!(m.catchup(Some(&Since::Seq(15))), Catchup::Replay { from: Seq(16), to: Seq(20) });
        assert_eq!(m.catchup(Some(&Since::Seq(14))), Catchup::Latest, "15 is gone");
        assert_eq!(m.catchup(Some(&Since::Seq(0))), Catchup::Latest);
        assert_eq!(m.catchup(Some(&Since::Seq(21))), Catchup::Latest, "ahead of the channel");
        assert_eq!(m.catchup(Some(&at(17, Some("other")))), Catchup::Latest, "another epoch");
        assert_eq!(m.catchup(Some(&at(17, Some("e1")))), Catchup::Replay { from: Seq(18), to: Seq(20) });
        assert_eq!(m.catchup(Some(&at(17, None))), Catchup::Replay { from: Seq(18), to: Seq(20) });
        // A fresh channel with everything retained can replay from 0.
        let (m, _) = filled(3, 300);
        assert_eq!(m.catchup(Some(&Since::Seq(0))), Catchup::Replay { from: Seq(1), to: Seq(3) });
    }

    #[test]
    fn catchup_frames_order_and_honesty() {
        let (m, _) = filled(20, 5);
        let plan = m.catchup(Some(&Since::Seq(17)));
        assert_eq!(seqs(&m.catchup_frames(&chan(), &plan, history(18, 20), false)), ["18", "19", "20", "sub20:true"]);
        // Storage returned a hole: never claim recovery.
        let mut holey = history(18, 20);
        holey.remove(1);
        assert_eq!(seqs(&m.catchup_frames(&chan(), &plan, holey, false)), ["20", "sub20:false"]);
        assert_eq!(seqs(&m.catchup_frames(&chan(), &plan, history(18, 19), false)), ["20", "sub20:false"]);
        assert_eq!(seqs(&m.catchup_frames(&chan(), &Catchup::UpToDate, vec![], false)), ["sub20:true"]);
        assert_eq!(seqs(&m.catchup_frames(&chan(), &Catchup::Latest, vec![], false)), ["20", "sub20:false"]);
        let stale = m.catchup_frames(&chan(), &Catchup::Latest, vec![], true);
        assert!(matches!(&stale[0], ServerFrame::Update(u) if u.stale), "the latest value carries the flag");
        let replay = m.catchup_frames(&chan(), &plan, history(18, 20), true);
        let flags: Vec<bool> =
            replay.iter().filter_map(|f| if let ServerFrame::Update(u) = f { Some(u.stale) } else { None }).collect();
        assert_eq!(flags, [false, false, true], "only the latest of a replay is the current value");
        let empty = ChannelMeta::new(Epoch("e".into()));
        assert_eq!(seqs(&empty.catchup_frames(&chan(), &Catchup::Latest, vec![], false)), ["sub0:false"]);
    }

    #[test]
    fn replicas_follow_and_reset_on_gaps() {
        let e1 = Epoch("e1".into());
        let mut r = ChannelMeta::new(Epoch("mine".into()));
        let u = |s| history(s, s).remove(0);
        // First update from the sequencer: adopt its epoch, history starts here.
        let w = r.apply(u(5), &e1, 10).unwrap();
        assert!(w.reset);
        assert_eq!((r.epoch.clone(), r.seq, r.first_retained), (e1.clone(), Seq(5), Seq(5)));
        assert!(!r.apply(u(6), &e1, 10).unwrap().reset);
        assert!(r.apply(u(6), &e1, 10).is_none(), "duplicate");
        assert!(r.apply(u(3), &e1, 10).is_none(), "old");
        assert_eq!(r.catchup(Some(&Since::Seq(4))), Catchup::Replay { from: Seq(5), to: Seq(6) });
        assert_eq!(r.catchup(Some(&Since::Seq(3))), Catchup::Latest, "before the replica's history");
        // A gap (7 missed): history restarts at 8, and the old entries 5..=6 go.
        let w = r.apply(u(8), &e1, 10).unwrap();
        assert!(w.reset);
        assert_eq!(w.deleted_seqs().collect::<Vec<_>>(), [5, 6]);
        assert_eq!(r.catchup(Some(&Since::Seq(6))), Catchup::Latest);
        assert_eq!(r.catchup(Some(&Since::Seq(7))), Catchup::Replay { from: Seq(8), to: Seq(8) });
        assert_eq!(r.published, 0, "replicas do not count publishes");
        // Another epoch whose seq falls inside the old range: everything old goes but the new entry.
        r.apply(u(9), &e1, 10);
        r.apply(u(10), &e1, 10);
        assert_eq!(r.retained(), 8..11);
        let w = r.apply(u(9), &Epoch("e2".into()), 10).unwrap();
        assert!(w.reset);
        assert_eq!(w.deleted_seqs().collect::<Vec<_>>(), [8, 10], "9 is the new epoch's entry");
        assert_eq!(r.retained(), 9..10);
    }
}
