//! Group commit: update frames whose storage write has been issued wait here until the next
//! flush, which sends each socket one message however many updates arrived meanwhile; past a
//! bound, new publishes are refused at once (503 `overloaded`) instead of queueing without end.
//!
//! The shell (`hub/write.rs`) queues an event's frames in the same synchronous step that issues its
//! storage write, and sends only what it takes from here: no frame is sent before its write was
//! issued, so the runtime's output gate holds it until the write is durable.
//!
//! Sockets that asked for deltas (`/ws?delta=merge`) sit in the subscriber index under their
//! own key per channel and get their own copy of each channel's frames, built once per flush.

use crate::core::publish::PublishRefusal;
use crate::settings::CommitLimits;
use crate::wire::batch::batch_json;
use crate::wire::merge_patch;
use crate::wire::protocol::{Channel, ServerFrame, Update};

/// Frames sequenced and written but not yet sent, and whether an event has claimed the flush.
#[derive(Debug, Default)]
pub struct CommitQueue {
    pending: Vec<Broadcast>,
    bytes: usize,
    claimed: bool,
    /// The last flush: when it was sent (ms) and how many messages it sent.
    last_flush: Option<(u64, u64)>,
    /// Flushes left during which spacing applies: set by a flush that carried several updates,
    /// counted down by flushes of one (at 50 updates/s they interleave).
    busy: u32,
    /// Updates and bytes of the fan-outs to other shards not yet done (shard 0 only): a slow
    /// shard is waited on at most `FANOUT_TIMEOUT_MS` per fan-out, but fan-outs go one after
    /// another, so without a bound the line behind it would grow as fast as publishes come.
    fanout_updates: usize,
    fanout_bytes: usize,
}

/// What one send costs the runtime, in microseconds: measured with scripts/bench (workerd sends
/// 25,000 to 35,000 messages a second on one core of the 2-core benchmark machine, fewer as
/// batches grow; the slower end is used, so flushes never outrun the writes). A flush is paced
/// by it: see [`CommitQueue::wait_before_flush`].
pub const SEND_COST_US: u64 = 40;

/// How many flushes spacing outlasts the last flush that carried several updates.
pub const BUSY_FLUSHES: u32 = 4;

/// The longest a flush waits for the previous one's sends, whatever it reached (ms).
pub const MAX_FLUSH_SPACING_MS: u64 = 250;

/// What a claimed flush waits for before it sends (see [`CommitQueue::wait_before_flush`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushWait {
    /// The queued writes' commit (a storage sync).
    UntilDurable,
    /// This many milliseconds.
    For(u64),
}

/// One channel's share of a flush: its frames (JSON text, in seq order) as the message for a
/// socket that listens to no other flushed channel (`alone`: the frame itself, or a `batch`),
/// and as the comma-joined frames (`parts`) a `batch` for a socket of several is built from
/// (a comma-joined list of frames is itself what [`batch_json`] wraps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelFrames {
    pub channel: Channel,
    /// For the channel's delta sockets (`/ws?delta=merge`) rather than its others.
    pub delta: bool,
    pub frames: u64,
    pub alone: String,
    pub parts: String,
}

impl CommitQueue {
    /// Whether one more publish may be accepted: refused once the frames waiting for sockets,
    /// or the updates waiting to be fanned out to other shards, reach either bound. Checked
    /// before the publish is sequenced, so a refusal costs no seq.
    pub fn admit(&self, limits: &CommitLimits) -> Result<(), PublishRefusal> {
        let over = |updates: usize, bytes: usize| updates >= limits.max_updates || bytes >= limits.max_bytes;
        if over(self.pending.len(), self.bytes) || over(self.fanout_updates, self.fanout_bytes) {
            // A flush takes well under a second, and a fan-out line drains as fast as the
            // shards answer (a failing shard is left out after one timeout): a second is the
            // usual wait, and a publisher that retries sooner is simply refused again.
            return Err(PublishRefusal::Overloaded { retry_after_secs: 1 });
        }
        Ok(())
    }

    /// A fan-out of `updates` updates in a `bytes`-byte body joined the line to other shards.
    pub fn fanout_queued(&mut self, updates: usize, bytes: usize) {
        self.fanout_updates += updates;
        self.fanout_bytes += bytes;
    }

    /// That fan-out is done (applied, failed or timed out on every shard).
    pub fn fanout_done(&mut self, updates: usize, bytes: usize) {
        self.fanout_updates = self.fanout_updates.saturating_sub(updates);
        self.fanout_bytes = self.fanout_bytes.saturating_sub(bytes);
    }

    pub fn push(&mut self, broadcast: Broadcast) {
        self.bytes += broadcast.frame.len() + broadcast.delta.as_ref().map_or(0, String::len);
        self.pending.push(broadcast);
    }

    pub fn extend(&mut self, broadcasts: impl IntoIterator<Item = Broadcast>) {
        for b in broadcasts {
            self.push(b);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Claims the next flush for the calling event: true when nobody had, and the caller must
    /// flush and then [`CommitQueue::release`]. Events that find it claimed just queue.
    pub fn claim(&mut self) -> bool {
        !std::mem::replace(&mut self.claimed, true)
    }

    pub fn release(&mut self) {
        self.claimed = false;
    }

    /// How long a flush claimed at `now` waits before sending: at least `linger_ms`, and until
    /// the previous flush's sends have had their time (sockets reached × [`SEND_COST_US`]).
    /// The runtime writes a flush's messages out after the send loop returns; a flush sent
    /// sooner would queue another message behind each of them and cost a full round of sends
    /// for one or two updates. Waiting instead lets the updates that arrive meanwhile go out
    /// together, so the number of sends per second stays within what the runtime can write.
    /// Spacing applies only while updates arrive faster than flushes go out, which a recent
    /// flush shows by having carried several: one publish at a time (a lone publish, a
    /// publisher that waits for delivery) never waits for it.
    ///
    /// With nothing to wait for, the flush waits for the queued writes to be durable instead
    /// ([`FlushWait::UntilDurable`]): that wait is the yield in which events arriving meanwhile
    /// queue their frames, and the frames then leave after the commit rather than each send
    /// waiting on the output gate.
    pub fn wait_before_flush(&self, now: u64, linger_ms: u64) -> FlushWait {
        let spacing = match self.last_flush {
            Some((at, messages)) if self.busy > 0 => {
                let cost_ms = (messages * SEND_COST_US / 1000).min(MAX_FLUSH_SPACING_MS);
                (at + cost_ms).saturating_sub(now)
            }
            _ => 0,
        };
        match linger_ms.max(spacing) {
            0 => FlushWait::UntilDurable,
            ms => FlushWait::For(ms),
        }
    }

    /// A flush of `updates` went out at `now` as `messages` sends.
    pub fn flushed(&mut self, now: u64, messages: u64, updates: usize) {
        self.last_flush = Some((now, messages));
        self.busy = if updates > 1 { BUSY_FLUSHES } else { self.busy.saturating_sub(1) };
    }

    /// Everything pending, grouped by channel (first appearance order, frames in queue order);
    /// `deltas` says which channels have sockets that asked for delta frames.
    pub fn take(&mut self, deltas: impl Fn(&Channel) -> bool) -> Vec<ChannelFrames> {
        self.bytes = 0;
        plan(std::mem::take(&mut self.pending), deltas)
    }
}

/// Groups frames by channel and builds each channel's messages once: the full frames, and for
/// a channel in `deltas` also the frames delta sockets get (a `delta` where one was built).
pub fn plan(pending: Vec<Broadcast>, deltas: impl Fn(&Channel) -> bool) -> Vec<ChannelFrames> {
    let mut grouped: Vec<(Channel, Vec<Broadcast>)> = Vec::new();
    for b in pending {
        match grouped.iter_mut().find(|(c, _)| *c == b.channel) {
            Some((_, frames)) => frames.push(b),
            None => grouped.push((b.channel.clone(), vec![b])),
        }
    }
    let mut out = Vec::with_capacity(grouped.len());
    for (channel, broadcasts) in grouped {
        if deltas(&channel) {
            let frames = broadcasts.iter().map(|b| b.delta.as_ref().unwrap_or(&b.frame).clone()).collect();
            out.push(ChannelFrames::new(channel.clone(), true, frames));
        }
        out.push(ChannelFrames::new(channel, false, broadcasts.into_iter().map(|b| b.frame).collect()));
    }
    out
}

/// A frame for a channel's subscribers (JSON text), and the smaller `delta` frame that sockets
/// which asked for deltas get instead (None: they get `frame` too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub channel: Channel,
    pub frame: String,
    pub delta: Option<String>,
}

impl Broadcast {
    /// A frame every subscriber gets as is.
    pub fn frame(channel: Channel, frame: String) -> Broadcast {
        Broadcast { channel, frame, delta: None }
    }

    /// A new update, serialised once for every socket: the `update` frame, and a `delta`
    /// frame against `previous` when that is the update right before it (seq - 1, so every
    /// socket in step holds it) and the delta is the smaller frame. After a reset (a replica
    /// that missed updates) the sockets are not in step, so they get the full value.
    pub fn update(update: &Update, previous: Option<&Update>, reset: bool) -> Broadcast {
        let full = ServerFrame::Update(update.clone()).to_json();
        let delta = previous
            .filter(|p| !reset && p.seq.next() == update.seq)
            .and_then(|p| merge_patch::diff(&p.data, &update.data))
            .map(|patch| {
                ServerFrame::Delta {
                    channel: update.channel.clone(),
                    seq: update.seq,
                    ts: update.ts,
                    stale: update.stale,
                    patch,
                }
                .to_json()
            })
            .filter(|delta| delta.len() < full.len());
        Broadcast { channel: update.channel.clone(), frame: full, delta }
    }
}

impl ChannelFrames {
    fn new(channel: Channel, delta: bool, mut frames: Vec<String>) -> ChannelFrames {
        let parts = frames.join(",");
        let count = frames.len().max(1) as u64;
        let alone = if frames.len() == 1 { frames.swap_remove(0) } else { batch_json(&[&parts]) };
        ChannelFrames { channel, delta, frames: count, alone, parts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::batch::{BATCH_PREFIX, BATCH_SUFFIX};

    fn ch(name: &str) -> Channel {
        Channel::parse(name).unwrap()
    }

    #[test]
    fn one_channel_one_frame_is_sent_as_itself() {
        let p = plan(vec![Broadcast::frame(ch("news"), r#"{"n":1}"#.into())], |_| false);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].alone.as_str(), p[0].frames), (r#"{"n":1}"#, 1));
    }

    #[test]
    fn updates_that_arrived_together_become_one_batch_per_channel() {
        let pending = vec![
            Broadcast::frame(ch("news"), r#"{"n":1}"#.to_owned()),
            Broadcast::frame(ch("btc"), r#"{"b":1}"#.to_owned()),
            Broadcast::frame(ch("news"), r#"{"n":2}"#.to_owned()),
            Broadcast::frame(ch("news"), r#"{"n":3}"#.to_owned()),
        ];
        let p = plan(pending, |_| false);
        assert_eq!(p.iter().map(|c| c.channel.as_str()).collect::<Vec<_>>(), ["news", "btc"]);
        assert_eq!(p[0].alone, batch_json(&[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]));
        assert_eq!(p[0].frames, 3);
        assert_eq!(p[1].alone, r#"{"b":1}"#);
        // What the JS loop builds for a socket of both channels (BATCH_PREFIX, the parts joined
        // by commas, BATCH_SUFFIX) is a batch of all their frames, each channel's in seq order.
        let both = format!("{BATCH_PREFIX}{},{}{BATCH_SUFFIX}", p[0].parts, p[1].parts);
        let parsed: serde_json::Value = serde_json::from_str(&both).unwrap_or_else(|e| panic!("{both}: {e}"));
        assert_eq!(parsed["type"], "batch");
        assert_eq!(parsed["frames"].as_array().map(Vec::len), Some(4), "{both}");
        assert_eq!(both, batch_json(&[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#, r#"{"b":1}"#]));
    }

    #[test]
    fn delta_sockets_get_their_own_frames_only_where_some_listen() {
        let delta =
            |n: u32| Broadcast { delta: Some(format!("d{n}")), ..Broadcast::frame(ch("news"), format!("f{n}")) };
        let pending = vec![delta(1), Broadcast::frame(ch("news"), "gap".into()), delta(2), delta(3)];
        let p = plan(pending.clone(), |c| c.as_str() == "news");
        let got: Vec<(bool, &str)> = p.iter().map(|c| (c.delta, c.parts.as_str())).collect();
        assert_eq!(got, [(true, "d1,gap,d2,d3"), (false, "f1,gap,f2,f3")], "in seq order, full where no delta");
        assert!(p.iter().all(|c| c.frames == 4));
        let p = plan(pending, |_| false);
        assert_eq!(p.iter().map(|c| (c.delta, c.parts.as_str())).collect::<Vec<_>>(), [(false, "f1,gap,f2,f3")]);
    }

    #[test]
    fn one_flush_at_a_time_and_take_empties() {
        let mut q = CommitQueue::default();
        assert!(q.claim(), "first claim wins");
        assert!(!q.claim(), "others just queue");
        q.push(Broadcast::frame(ch("news"), "{}".into()));
        q.push(Broadcast::frame(ch("news"), "{}".into()));
        assert_eq!(q.take(|_| false).len(), 1);
        assert!(q.is_empty());
        assert!(q.take(|_| false).is_empty());
        q.release();
        assert!(q.claim());
    }

    #[test]
    fn flushes_are_spaced_by_what_the_last_one_cost() {
        let mut q = CommitQueue::default();
        assert_eq!(q.wait_before_flush(1_000, 0), FlushWait::UntilDurable, "the first flush goes at once");
        assert_eq!(q.wait_before_flush(1_000, 40), FlushWait::For(40), "linger is a floor");
        q.flushed(1_000, 5_000, 1);
        assert_eq!(q.wait_before_flush(1_020, 0), FlushWait::UntilDurable, "one update at a time never waits");
        q.flushed(1_000, 5_000, 3); // 5,000 sends of a batch: 200 ms of the runtime's time
        assert_eq!(q.wait_before_flush(1_020, 0), FlushWait::For(180));
        for _ in 0..BUSY_FLUSHES - 1 {
            q.flushed(1_000, 5_000, 1);
            assert_eq!(
                q.wait_before_flush(1_020, 0),
                FlushWait::For(180),
                "single flushes in between keep the spacing"
            );
        }
        q.flushed(1_000, 5_000, 1);
        assert_eq!(
            q.wait_before_flush(1_020, 0),
            FlushWait::UntilDurable,
            "until the updates come one at a time again"
        );
        q.flushed(1_000, 5_000, 3);
        assert_eq!(
            q.wait_before_flush(1_200, 0),
            FlushWait::UntilDurable,
            "a publish after the sends went out waits for nothing"
        );
        q.flushed(2_000, 1_000_000, 2);
        assert_eq!(q.wait_before_flush(2_000, 0), FlushWait::For(MAX_FLUSH_SPACING_MS), "capped");
        q.flushed(3_000, 10, 9);
        assert_eq!(q.wait_before_flush(3_000, 0), FlushWait::UntilDurable, "ten sockets cost well under a millisecond");
    }

    #[test]
    fn publishes_are_refused_past_either_bound() {
        let limits = CommitLimits { max_updates: 2, max_bytes: 10 };
        let mut q = CommitQueue::default();
        assert_eq!(q.admit(&limits), Ok(()));
        q.push(Broadcast::frame(ch("a"), "1234".into()));
        q.push(Broadcast::frame(ch("a"), "1234".into()));
        assert_eq!(q.admit(&limits), Err(PublishRefusal::Overloaded { retry_after_secs: 1 }), "count");
        q.take(|_| false);
        assert_eq!(q.admit(&limits), Ok(()), "a flush makes room");
        q.push(Broadcast::frame(ch("a"), "x".repeat(10)));
        assert!(q.admit(&limits).is_err(), "bytes");
    }

    #[test]
    fn publishes_are_refused_while_the_fan_out_line_is_full() {
        let limits = CommitLimits { max_updates: 3, max_bytes: 100 };
        let mut q = CommitQueue::default();
        q.fanout_queued(2, 40);
        assert_eq!(q.admit(&limits), Ok(()));
        q.fanout_queued(1, 20);
        assert!(q.admit(&limits).is_err(), "three updates wait for other shards");
        q.fanout_done(2, 40);
        assert_eq!(q.admit(&limits), Ok(()), "a finished fan-out makes room");
        q.fanout_queued(0, 80);
        assert!(q.admit(&limits).is_err(), "bytes of a confirmations-only fan-out count too");
        q.fanout_done(1, 20);
        q.fanout_done(0, 80);
        assert_eq!((q.fanout_updates, q.fanout_bytes), (0, 0));
    }
}
