//! How much one history answer may carry: a count (`limit`) and a byte budget
//! (`HISTORY_PAGE_BYTES`) over the stored JSON of its updates. Pure: the hub feeds it the
//! entries it reads, in seq order, and stops reading when it says so.

use crate::protocol::Seq;

/// Counts what a page has taken so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBudget {
    budget: usize,
    bytes: usize,
    taken: usize,
}

impl PageBudget {
    /// A page of at most `budget` bytes; `usize::MAX` for no byte bound.
    pub fn new(budget: usize) -> Self {
        PageBudget { budget, bytes: 0, taken: 0 }
    }

    /// Whether an entry of `len` bytes still fits, counting it if so. The first entry always
    /// fits (an update is at most `MAX_PUBLISH_BYTES`), so every page makes progress.
    pub fn admit(&mut self, len: usize) -> bool {
        if self.taken > 0 && self.bytes.saturating_add(len) > self.budget {
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
/// byte budget, so no more than one batch past the budget is ever held; without one (a
/// socket's catch-up: at most `HISTORY_LEN` entries) in one listing. The hub lists keys from
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
}
