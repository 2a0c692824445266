//! How much one history answer may carry: a count (`limit`) and a byte budget
//! (`HISTORY_PAGE_BYTES`) over the stored JSON of its updates. Pure: the hub feeds it the
//! entries it reads, in seq order, and stops reading when it says so. A socket's catch-ups are
//! bounded the same way, per request and per 10-second window ([`ReplayWindow`]).

use crate::wire::protocol::Seq;
use serde::{Deserialize, Serialize};

/// Counts what a page has taken so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBudget {
    budget: usize,
    bytes: usize,
    taken: usize,
    /// Whether the first entry fits whatever its size (a page), or only within the budget
    /// like the others (a catch-up, which is all or nothing).
    first_free: bool,
}

impl PageBudget {
    /// A page of at most `budget` bytes; `usize::MAX` for no byte bound.
    pub fn new(budget: usize) -> Self {
        PageBudget { budget, bytes: 0, taken: 0, first_free: true }
    }

    /// Whether an entry of `len` bytes still fits, counting it if so. The first entry of a
    /// page always fits (an update is at most `MAX_PUBLISH_BYTES`), so every page makes progress.
    pub fn admit(&mut self, len: usize) -> bool {
        if (self.taken > 0 || !self.first_free) && self.bytes.saturating_add(len) > self.budget {
            return false;
        }
        self.bytes = self.bytes.saturating_add(len);
        self.taken += 1;
        true
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The `since` of the page after one that ended at `last` (its last update's seq), when the
/// channel (now at `current`) has more; `None` when this page reached the end.
pub fn next_since(last: Option<u64>, current: u64) -> Option<u64> {
    last.filter(|&l| l < current)
}

/// Reading `from..=to` of a channel's history from storage, in batches when the page has a
/// byte budget, so no more than one batch past the budget is ever held; without one in one
/// listing. A socket's catch-up reads [`HistoryRead::strict`]ly. The hub lists keys from
/// [`HistoryRead::start`], offers each entry it gets, and lists again while
/// [`HistoryRead::batch_done`] says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRead {
    page: PageBudget,
    bounded: bool,
    next: Seq,
    to: Seq,
    /// Where the current batch started, and how many entries it has had.
    batch_start: Seq,
    read: usize,
    full: bool,
}

impl HistoryRead {
    /// Entries per listing when the page is bounded.
    pub const BATCH: usize = 16;

    pub fn new(from: Seq, to: Seq, budget: usize) -> Self {
        let bounded = budget != usize::MAX;
        HistoryRead { page: PageBudget::new(budget), bounded, next: from, to, batch_start: from, read: 0, full: false }
    }

    /// A catch-up's read: in batches, and every entry must fit `budget`, the first too (a
    /// replay that does not fit whole is not sent at all, so nothing past it is worth reading).
    pub fn strict(from: Seq, to: Seq, budget: usize) -> Self {
        let mut read = HistoryRead::new(from, to, budget);
        read.bounded = true;
        read.page.first_free = false;
        read
    }

    /// The first seq after the range (the listing's exclusive end).
    pub fn end(&self) -> Seq {
        self.to.next()
    }

    /// Whether the budget ran out before the range did.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The seq to list the next batch from, and at most how many entries (None: all up to `to`).
    pub fn batch(&mut self) -> (Seq, Option<usize>) {
        self.batch_start = self.next;
        self.read = 0;
        (self.next, self.bounded.then_some(Self::BATCH))
    }

    /// An entry the listing returned: its key's seq (None: a key that did not parse) and its
    /// stored size. True when the caller should decode and keep it; once the page is full,
    /// nothing more is.
    pub fn offer(&mut self, seq: Option<Seq>, len: Option<usize>) -> bool {
        self.read += 1;
        if self.full {
            return false;
        }
        if let Some(seq) = seq {
            self.next = seq.next();
        }
        let Some(len) = len else { return false };
        if !self.page.admit(len) {
            self.full = true;
            return false;
        }
        true
    }

    /// After a batch: whether to list another. Not when the page is full, the listing was not
    /// bounded or came back short, the range is done, or the batch made no progress (its keys
    /// all failed to parse, so the next one would start in the same place).
    pub fn batch_done(&self) -> bool {
        !(self.full || !self.bounded || self.read < Self::BATCH || self.next > self.to || self.next == self.batch_start)
    }
}

/// How a socket's catch-up of one channel went (a bounded set, for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchupOutcome {
    /// The gap was replayed, read from storage for this socket.
    Replayed,
    /// The gap was replayed from a catch-up built for another socket.
    Shared,
    /// Nothing was missed: `subscribed` alone.
    UpToDate,
    /// The gap did not fit the socket's budget: the latest value (if it went) instead.
    TooLarge,
    /// The latest value, as asked (no `since`, or a position the history cannot serve).
    Latest,
    /// The latest value was held back: the request or the socket's window was spent.
    Withheld,
}

impl CatchupOutcome {
    pub const ALL: [CatchupOutcome; 6] = [
        CatchupOutcome::Replayed,
        CatchupOutcome::Shared,
        CatchupOutcome::UpToDate,
        CatchupOutcome::TooLarge,
        CatchupOutcome::Latest,
        CatchupOutcome::Withheld,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CatchupOutcome::Replayed => "replayed",
            CatchupOutcome::Shared => "shared",
            CatchupOutcome::UpToDate => "up_to_date",
            CatchupOutcome::TooLarge => "too_large",
            CatchupOutcome::Latest => "latest",
            CatchupOutcome::Withheld => "withheld",
        }
    }
}

/// Length of a socket's catch-up window: `REPLAY_BYTES_PER_10S` per window.
pub const REPLAY_WINDOW_MS: u64 = 10_000;

/// What a socket's catch-ups have cost in its current window (kept in its attachment, so it
/// survives hibernation): stored bytes replays read, and bytes of latest values sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayWindow {
    pub start: u64,
    pub spent: u64,
}

impl ReplayWindow {
    /// Opens the allowance of one request (a connect, or one client frame) at `now`: it may
    /// send `per_request` bytes of updates (`HISTORY_PAGE_BYTES`), and replay only what the
    /// window (`per_window`, `REPLAY_BYTES_PER_10S`) has left. A new window starts 10 s after
    /// the first catch-up of the last one.
    pub fn begin(&mut self, now: u64, per_window: usize, per_request: usize) -> CatchupBudget {
        if self.spent == 0 || now.saturating_sub(self.start) >= REPLAY_WINDOW_MS {
            self.start = now;
            self.spent = 0;
        }
        let window_left = (per_window as u64).saturating_sub(self.spent) as usize;
        CatchupBudget { send_left: per_request, window_left, open: window_left > 0, sent_any: false, spent: 0 }
    }

    /// Closes a request's allowance: what it spent counts against the window.
    pub fn end(&mut self, budget: &CatchupBudget) {
        self.spent = self.spent.saturating_add(budget.spent as u64);
    }
}

/// One request's catch-up allowance (see [`ReplayWindow::begin`]). Replays are all or nothing:
/// one is sent only if its stored bytes fit [`CatchupBudget::replay_allowance`]; otherwise the
/// channel gets its latest value. A latest value goes while the request has room to send it
/// and the window had room when the request began; past that, only as the request's first
/// update, so a subscribe always gets a value and a spent socket gets one per frame at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchupBudget {
    send_left: usize,
    window_left: usize,
    open: bool,
    sent_any: bool,
    spent: usize,
}

impl CatchupBudget {
    /// Stored bytes a replay may read and send now.
    pub fn replay_allowance(&self) -> usize {
        self.send_left.min(self.window_left)
    }

    /// A replay of `bytes` stored bytes that fit and is sent.
    pub fn replayed(&mut self, bytes: usize) {
        self.send_left = self.send_left.saturating_sub(bytes);
        self.window_left = self.window_left.saturating_sub(bytes);
        self.spent = self.spent.saturating_add(bytes);
        self.sent_any = true;
    }

    /// A replay that did not fit: it uses up the allowance it had (a read that finds a gap too
    /// large has read about that much), so a socket that keeps asking for one is cut off by its
    /// window, not served a read per frame.
    pub fn refused(&mut self) {
        let allowance = self.replay_allowance();
        self.window_left -= allowance;
        self.spent = self.spent.saturating_add(allowance);
    }

    /// A replay read that was not used for another reason (the channel moved on meanwhile):
    /// it costs what it read.
    pub fn read_unused(&mut self, bytes: usize) {
        self.window_left = self.window_left.saturating_sub(bytes);
        self.spent = self.spent.saturating_add(bytes);
    }

    /// Whether a latest value of `bytes` goes out, counting it if so.
    pub fn latest(&mut self, bytes: usize) -> bool {
        let fits = self.open && bytes <= self.send_left;
        if !fits && self.sent_any {
            return false;
        }
        self.send_left = self.send_left.saturating_sub(bytes);
        self.window_left = self.window_left.saturating_sub(bytes);
        self.spent = self.spent.saturating_add(bytes);
        self.sent_any = true;
        true
    }

    /// What this request cost the window so far.
    pub fn spent(&self) -> usize {
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_entries_until_the_budget_and_always_one() {
        let mut b = PageBudget::new(100);
        assert!(b.admit(40));
        assert!(b.admit(60), "exactly at the budget fits");
        assert!(!b.admit(1));
        assert_eq!(b.bytes(), 100);

        let mut b = PageBudget::new(10);
        assert!(b.admit(1000), "the first entry fits whatever its size");
        assert!(!b.admit(1));

        let mut b = PageBudget::new(usize::MAX);
        assert!((0..1000).all(|_| b.admit(usize::MAX / 2)), "no byte bound never refuses (saturates)");
    }

    #[test]
    fn next_page_starts_after_the_last_update_while_there_is_more() {
        assert_eq!(next_since(Some(7), 10), Some(7));
        assert_eq!(next_since(Some(10), 10), None);
        assert_eq!(next_since(None, 10), None, "an empty page has nothing to continue from");
    }

    /// Feeds `HistoryRead` a store holding `stored` (seq, size) and returns the seqs kept and
    /// the number of listings.
    fn read(stored: &[(u64, usize)], from: u64, to: u64, budget: usize) -> (Vec<u64>, usize) {
        let mut r = HistoryRead::new(Seq(from), Seq(to), budget);
        let (mut kept, mut listings) = (Vec::new(), 0);
        loop {
            listings += 1;
            let (start, limit) = r.batch();
            let batch = stored.iter().filter(|(s, _)| *s >= start.0 && *s <= to).take(limit.unwrap_or(usize::MAX));
            for &(seq, len) in batch {
                if r.offer(Some(Seq(seq)), Some(len)) {
                    kept.push(seq);
                }
            }
            if !r.batch_done() {
                return (kept, listings);
            }
        }
    }

    #[test]
    fn reads_in_batches_until_the_budget_or_the_end() {
        let store: Vec<(u64, usize)> = (1..=40).map(|s| (s, 10)).collect();
        assert_eq!(read(&store, 1, 40, usize::MAX), ((1..=40).collect(), 1), "unbounded: one listing");
        assert_eq!(read(&store, 1, 40, 1_000), ((1..=40).collect(), 3), "16 + 16 + 8 (short: done)");
        assert_eq!(read(&store, 1, 32, 1_000), ((1..=32).collect(), 2), "stops once past `to`");
        let (kept, listings) = read(&store, 1, 40, 200);
        assert_eq!((kept, listings), ((1..=20).collect(), 2), "stops at the budget, one batch past");
        let (kept, _) = read(&store, 5, 40, 0);
        assert_eq!(kept, [5], "the first entry always fits");
    }

    #[test]
    fn a_batch_without_progress_ends_the_read() {
        let mut r = HistoryRead::new(Seq(1), Seq(100), 1_000);
        r.batch();
        for _ in 0..HistoryRead::BATCH {
            r.offer(None, Some(10));
        }
        assert!(!r.batch_done(), "keys that never parse would list the same batch forever");
        let mut r = HistoryRead::new(Seq(1), Seq(100), 1_000);
        r.batch();
        for s in 1..=HistoryRead::BATCH as u64 {
            assert!(!r.offer(Some(Seq(s)), None), "a value that is not text is skipped");
        }
        assert!(r.batch_done(), "but its key still moves the read on");
    }

    #[test]
    fn a_strict_read_keeps_nothing_that_does_not_fit() {
        let store: Vec<(u64, usize)> = (1..=40).map(|s| (s, 10)).collect();
        let strict = |from, to, budget| {
            let mut r = HistoryRead::strict(Seq(from), Seq(to), budget);
            let mut kept = Vec::new();
            loop {
                let (start, limit) = r.batch();
                assert_eq!(limit, Some(HistoryRead::BATCH), "always in batches");
                for &(seq, len) in store.iter().filter(|(s, _)| *s >= start.0 && *s <= to).take(HistoryRead::BATCH) {
                    if r.offer(Some(Seq(seq)), Some(len)) {
                        kept.push(seq);
                    }
                }
                if !r.batch_done() {
                    return (kept, r.is_full());
                }
            }
        };
        assert_eq!(strict(1, 40, 400), ((1..=40).collect(), false), "exactly the budget fits");
        assert!(strict(1, 40, 399).1, "one byte short: full, so the replay is refused");
        assert_eq!(strict(1, 40, 5), (vec![], true), "not even the first entry is free");
    }

    #[test]
    fn a_window_bounds_replays_and_a_request_bounds_sends() {
        let mut w = ReplayWindow::default();
        let mut b = w.begin(1_000, 100, 60);
        assert_eq!(b.replay_allowance(), 60, "a request sends at most its page");
        b.replayed(50);
        assert_eq!(b.replay_allowance(), 10);
        assert!(b.latest(10), "fits what the request may still send");
        assert!(!b.latest(1), "the request is full: not its first update");
        w.end(&b);
        assert_eq!(w.spent, 60);
        let mut b = w.begin(2_000, 100, 60);
        assert_eq!(b.replay_allowance(), 40, "the window has 40 left");
        b.refused();
        assert_eq!(b.replay_allowance(), 0, "a refused replay uses up its allowance");
        assert!(b.latest(30), "the window had room when the request began");
        w.end(&b);
        assert_eq!(w.spent, 130);
        // Spent: replays get nothing, and one latest value per request, the first.
        let mut b = w.begin(5_000, 100, 60);
        assert_eq!(b.replay_allowance(), 0);
        assert!(b.latest(30) && !b.latest(1), "a spent window: the first latest value only");
        w.end(&b);
        // 10 s after the window's first catch-up, a new one.
        let b = w.begin(11_000, 100, 60);
        assert_eq!((b.replay_allowance(), w.start, w.spent), (60, 11_000, 0));
    }

    #[test]
    fn a_large_latest_value_still_goes_first() {
        let mut w = ReplayWindow::default();
        let mut b = w.begin(0, 100, 10);
        assert!(b.latest(1_000), "a subscribe always gets a value");
        assert!(!b.latest(1), "but nothing more in that request");
        b.read_unused(5);
        w.end(&b);
        assert_eq!(w.spent, 1_005, "the window may be overspent by that one value; it saturates");
        assert_eq!(w.begin(1, 100, 10).replay_allowance(), 0);
    }
}
