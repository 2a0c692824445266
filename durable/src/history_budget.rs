//! How much one history answer may carry: a count (`limit`) and a byte budget
//! (`HISTORY_PAGE_BYTES`) over the stored JSON of its updates. Pure: the hub feeds it the
//! entries it reads, in seq order, and stops reading when it says so.

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
}
