//! The reconnect storm's per-socket bookkeeping, kept pure: a socket's position on the channel
//! (last seq and epoch) from the frames it gets before the drop, and the check that its resume
//! brought exactly the updates it missed, in order, with the data published at each seq, then
//! `subscribed` with `recovered: true`.
use serde::Deserialize;
use std::collections::HashMap;

/// The fields of a server frame this run reads; everything else (a value's padding) is skipped.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    channel: Option<String>,
    seq: Option<u64>,
    epoch: Option<String>,
    recovered: Option<bool>,
    data: Option<Data>,
    frames: Option<Vec<Frame>>,
}

/// An update's value as the run publishes it: `{"bench":"NONCE:K","pad":"..."}`.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Data {
    bench: Option<String>,
}

/// The frames of one message in order, a `batch` flattened; None when it is not a frame.
fn frames(text: &str) -> Option<Vec<Frame>> {
    fn flatten(f: Frame, out: &mut Vec<Frame>) {
        if f.kind == "batch" {
            for inner in f.frames.into_iter().flatten() {
                flatten(inner, out);
            }
        } else {
            out.push(f);
        }
    }
    let mut out = Vec::new();
    flatten(serde_json::from_str(text).ok()?, &mut out);
    Some(out)
}

/// Where a socket stands on one channel: the seq it last got and the channel's epoch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    /// From the last `subscribed` (updates do not carry it); empty until one arrived.
    pub epoch: String,
}

impl Position {
    /// Follows `channel` through one message.
    pub fn observe(&mut self, text: &str, channel: &str) {
        for f in frames(text).unwrap_or_default() {
            if f.channel.as_deref() != Some(channel) {
                continue;
            }
            match (f.kind.as_str(), f.seq) {
                ("update", Some(seq)) => self.seq = self.seq.max(seq),
                ("subscribed", Some(seq)) => {
                    self.seq = seq;
                    self.epoch = f.epoch.unwrap_or_default();
                }
                _ => {}
            }
        }
    }

    /// The `since` query value that resumes from here: `channel:seq@epoch` (no epoch when none
    /// is known).
    pub fn since(&self, channel: &str) -> String {
        match self.epoch.as_str() {
            "" => format!("{channel}:{}", self.seq),
            e => format!("{channel}:{}@{e}", self.seq),
        }
    }
}

/// How a socket's resume ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every missed update once, in order, with its data, then `recovered: true` at the last seq.
    Exact,
    /// `subscribed` said `recovered: false` (the hub chose the latest value instead of a replay).
    NotRecovered,
    /// `recovered: true`, but what came before it was not exactly what was missed.
    Inexact,
    /// No `subscribed` for the channel arrived.
    Incomplete,
}

/// Checks one socket's resume of `channel` from `since` to `to`. `marks` maps each seq the run
/// published to the marker its data carries (`NONCE:K`).
#[derive(Debug)]
pub struct Resume {
    channel: String,
    since: u64,
    to: u64,
    epoch: String,
    /// The seq the next update must have.
    next: u64,
    /// Missed updates received in order with the right data.
    pub updates: u64,
    /// Updates received again, or ones the socket had before it dropped.
    pub duplicates: u64,
    /// Updates out of order, skipping a seq, or whose data is not what was published at that
    /// seq; and a `subscribed` at the wrong seq or epoch.
    pub mismatches: u64,
    /// Missed updates that never came before `subscribed`.
    pub missing: u64,
    /// Updates after `subscribed` (nothing is published then: each is unexpected).
    pub after: u64,
    /// `error` or `unsubscribed` frames for the channel, and messages that are not frames.
    pub errors: u64,
    pub recovered: Option<bool>,
}

impl Resume {
    pub fn new(channel: &str, since: &Position, to: u64) -> Resume {
        Resume {
            channel: channel.to_string(),
            since: since.seq,
            to,
            epoch: since.epoch.clone(),
            next: since.seq + 1,
            updates: 0,
            duplicates: 0,
            mismatches: 0,
            missing: 0,
            after: 0,
            errors: 0,
            recovered: None,
        }
    }

    pub fn done(&self) -> bool {
        self.recovered.is_some()
    }

    /// Checks one message; true when it completed the resume (its `subscribed` arrived).
    pub fn on_text(&mut self, text: &str, marks: &HashMap<u64, String>) -> bool {
        let Some(frames) = frames(text) else {
            self.errors += 1;
            return false;
        };
        let was_done = self.done();
        for f in frames {
            if f.kind == "error" {
                self.errors += 1; // an `error` frame names no channel
                continue;
            }
            if f.channel.as_deref() != Some(self.channel.as_str()) {
                continue; // `welcome`, or another channel
            }
            match f.kind.as_str() {
                "update" => self.update(f.seq.unwrap_or(0), f.data.and_then(|d| d.bench), marks),
                "subscribed" if self.done() => self.mismatches += 1,
                "subscribed" => {
                    self.recovered = Some(f.recovered.unwrap_or(false));
                    if f.seq != Some(self.to) || (!self.epoch.is_empty() && f.epoch.as_deref() != Some(&self.epoch)) {
                        self.mismatches += 1;
                    }
                    self.missing = (self.to + 1).saturating_sub(self.next);
                }
                _ => self.errors += 1,
            }
        }
        !was_done && self.done()
    }

    fn update(&mut self, seq: u64, mark: Option<String>, marks: &HashMap<u64, String>) {
        if self.done() {
            if seq <= self.to {
                self.duplicates += 1;
            } else {
                self.after += 1;
            }
        } else if seq < self.next {
            self.duplicates += 1;
        } else if seq == self.next && seq <= self.to && mark.is_some() && mark.as_ref() == marks.get(&seq) {
            self.updates += 1;
            self.next += 1;
        } else {
            // A gap, a seq past the end, or the wrong data: counted once, and the check goes on
            // from there so one hole is not counted again for every update after it.
            self.mismatches += 1;
            self.next = seq.max(self.next) + 1;
        }
    }

    pub fn verdict(&self) -> Verdict {
        match self.recovered {
            None => Verdict::Incomplete,
            Some(false) => Verdict::NotRecovered,
            Some(true)
                if self.mismatches == 0
                    && self.duplicates == 0
                    && self.missing == 0
                    && self.after == 0
                    && self.errors == 0
                    && self.updates == self.to - self.since.min(self.to) =>
            {
                Verdict::Exact
            }
            Some(true) => Verdict::Inexact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(from: u64, to: u64) -> HashMap<u64, String> {
        (from..=to).map(|s| (s, format!("n:{}", s + 100))).collect()
    }

    fn update(seq: u64, k: u64) -> String {
        format!(
            r#"{{"type":"update","channel":"bench","seq":{seq},"ts":1,"stale":false,"data":{{"bench":"n:{k}","pad":"xx"}}}}"#
        )
    }

    fn subscribed(seq: u64, epoch: &str, recovered: bool) -> String {
        format!(r#"{{"type":"subscribed","channel":"bench","seq":{seq},"epoch":"{epoch}","recovered":{recovered}}}"#)
    }

    fn batch(frames: &[String]) -> String {
        format!(r#"{{"type":"batch","frames":[{}]}}"#, frames.join(","))
    }

    fn at(seq: u64) -> Position {
        Position { seq, epoch: "e1".into() }
    }

    #[test]
    fn follows_the_position_through_batches() {
        let mut p = Position::default();
        let welcome = r#"{"type":"welcome","conn":"00","protocol":1,"channels":["btc"],"stale_after_seconds":60}"#;
        p.observe(&batch(&[welcome.into(), update(1, 0), subscribed(1, "e1", false)]), "bench");
        assert_eq!(p, at(1));
        p.observe(&update(2, 1), "bench");
        p.observe(&batch(&[update(3, 2), update(4, 3)]), "bench");
        p.observe(r#"{"type":"update","channel":"other","seq":99}"#, "bench");
        assert_eq!(p, at(4));
        assert_eq!(p.since("bench"), "bench:4@e1");
        assert_eq!(Position::default().since("bench"), "bench:0");
    }

    #[test]
    fn an_exact_catch_up_over_several_messages() {
        let m = marks(5, 7);
        let mut r = Resume::new("bench", &at(4), 7);
        let welcome = r#"{"type":"batch","frames":[{"type":"welcome","conn":"ab","protocol":1}]}"#;
        assert!(!r.on_text(welcome, &m));
        assert!(!r.on_text(&batch(&[update(5, 105), update(6, 106)]), &m));
        assert!(r.on_text(&batch(&[update(7, 107), subscribed(7, "e1", true)]), &m));
        assert_eq!((r.verdict(), r.updates), (Verdict::Exact, 3));
        assert!(!r.on_text(&update(8, 108), &m), "already done");
        assert_eq!((r.after, r.verdict()), (1, Verdict::Inexact));
    }

    #[test]
    fn nothing_missed_is_exact_with_no_updates() {
        let mut r = Resume::new("bench", &at(7), 7);
        assert!(r.on_text(&subscribed(7, "e1", true), &HashMap::new()));
        assert_eq!(r.verdict(), Verdict::Exact);
    }

    #[test]
    fn recovered_true_over_a_wrong_replay_is_inexact() {
        let m = marks(5, 7);
        let end = subscribed(7, "e1", true);
        // A gap: 6 never came.
        let mut r = Resume::new("bench", &at(4), 7);
        r.on_text(&batch(&[update(5, 105), update(7, 107), end.clone()]), &m);
        assert_eq!((r.mismatches, r.missing, r.verdict()), (1, 0, Verdict::Inexact));
        // Out of order.
        let mut r = Resume::new("bench", &at(4), 7);
        r.on_text(&batch(&[update(6, 106), update(5, 105), update(7, 107), end.clone()]), &m);
        assert_eq!(r.verdict(), Verdict::Inexact);
        assert!(r.mismatches + r.duplicates >= 2);
        // A duplicate, and an update the socket had before it dropped.
        let mut r = Resume::new("bench", &at(4), 7);
        r.on_text(
            &batch(&[update(4, 104), update(5, 105), update(5, 105), update(6, 106), update(7, 107), end.clone()]),
            &m,
        );
        assert_eq!((r.duplicates, r.mismatches, r.verdict()), (2, 0, Verdict::Inexact));
        // The right seqs with the wrong data.
        let mut r = Resume::new("bench", &at(4), 7);
        r.on_text(&batch(&[update(5, 105), update(6, 999), update(7, 107), end.clone()]), &m);
        assert_eq!((r.mismatches, r.verdict()), (1, Verdict::Inexact));
        // Cut short: 7 missing.
        let mut r = Resume::new("bench", &at(4), 7);
        r.on_text(&batch(&[update(5, 105), update(6, 106), subscribed(6, "e1", true)]), &m);
        assert_eq!((r.missing, r.mismatches, r.verdict()), (1, 1, Verdict::Inexact));
        // Another epoch.
        let mut r = Resume::new("bench", &at(4), 7);
        r.on_text(&batch(&[update(5, 105), update(6, 106), update(7, 107), subscribed(7, "e2", true)]), &m);
        assert_eq!(r.verdict(), Verdict::Inexact);
    }

    #[test]
    fn not_recovered_and_incomplete_are_their_own_verdicts() {
        let m = marks(5, 7);
        let mut r = Resume::new("bench", &at(4), 7);
        assert!(r.on_text(&batch(&[update(7, 107), subscribed(7, "e1", false)]), &m));
        assert_eq!(r.verdict(), Verdict::NotRecovered);
        let mut r = Resume::new("bench", &at(4), 7);
        r.on_text(&update(5, 105), &m);
        assert_eq!(r.verdict(), Verdict::Incomplete);
        r.on_text("not json", &m);
        r.on_text(r#"{"type":"error","code":"invalid_since","message":"x"}"#, &m);
        r.on_text(r#"{"type":"unsubscribed","channel":"bench"}"#, &m);
        assert_eq!(r.errors, 3);
    }
}
