//! The hub's one alarm serves its jobs: writing counters that changed since the last write (so
//! connects, closes and client frames never write storage themselves), on the sequencer the
//! fast BTC poll and retrying a replica it failed to reach (`ReplicaBackoff::retry_due`), and on
//! a replica the debounced report that it stopped watching `btc` (`btc_watch.rs`). This decides
//! when the alarm should fire and whether it must be moved.

use crate::core::btc_watch::BtcWatch;

/// When counters must be written by, and when the fast poll last ran in this object's lifetime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Set when counters first changed after a write: they are written by this time (ms).
    pub flush_due: Option<u64>,
    /// When this object last ran the fast poll or started having `btc` watchers (ms); 0 after
    /// a wake.
    pub last_poll: u64,
    /// A replica's debounced `btc` watching, whose stop report the alarm sends.
    pub btc_watch: BtcWatch,
}

impl Upkeep {
    /// Counters changed at `now`: due within `flush_ms` unless already due sooner. Returns
    /// whether they just became due (only then may the alarm need moving).
    pub fn counters_changed(&mut self, now: u64, flush_ms: u64) -> bool {
        let newly = self.flush_due.is_none();
        self.flush_due.get_or_insert(now.saturating_add(flush_ms));
        newly
    }

    /// The counters are being written by the alarm: returns whether anything was due.
    pub fn take_flush(&mut self) -> bool {
        self.flush_due.take().is_some()
    }

    /// Whether counters that are due by `now` may ride along with a write happening anyway:
    /// only once their time has come, so a stream of publishes does not rewrite them each time.
    pub fn take_flush_if_due(&mut self, now: u64) -> bool {
        if self.flush_due.is_some_and(|due| due <= now) {
            self.flush_due = None;
            return true;
        }
        false
    }

    /// Someone started watching `btc` at `now`: the first poll comes one period later (the
    /// cron round provides the value until then).
    pub fn watching_began(&mut self, now: u64) {
        self.last_poll = self.last_poll.max(now);
    }

    /// When the next fast poll is due, if anyone watches `btc`: one period after the last price
    /// request (by a poll or a cron round: `last_attempt`, which survives restarts) or the last
    /// poll this object ran, whichever is later. A poll that was skipped (rate limit, breaker)
    /// still moves `last_poll`, so a skipped source never makes the alarm spin.
    pub fn poll_due(&self, watched: bool, last_attempt: Option<u64>, period_ms: u64) -> Option<u64> {
        watched.then(|| last_attempt.unwrap_or(0).max(self.last_poll).saturating_add(period_ms))
    }

    /// When the alarm should fire: the earliest job (None: no job is waiting).
    pub fn next_alarm(&self, poll_due: Option<u64>) -> Option<u64> {
        earliest(earliest(self.flush_due, poll_due), self.btc_watch.stop_due())
    }
}

/// The earlier of two times either of which may be unset: what the alarm serves when two
/// jobs share one slot of [`Upkeep::next_alarm`].
pub fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether an alarm currently set for `current` must be moved to serve `want`: it is unset, or
/// set later than needed. An alarm set earlier than needed stays: it fires, does what is due
/// and arms again, which costs less than a storage write per change.
pub fn must_arm(current: Option<u64>, want: Option<u64>) -> bool {
    match (current, want) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(c), Some(w)) => c > w,
    }
}

/// How far ahead (ms) the poll may run early when the alarm fires for it: the runtime's timer
/// is not exact, and a poll skipped for being 2 ms early would wait a whole period.
pub const POLL_SLACK_MS: u64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_due_once_per_flush_period() {
        let mut u = Upkeep::default();
        assert!(u.counters_changed(1_000, 5_000), "newly due");
        assert!(!u.counters_changed(3_000, 5_000));
        assert_eq!(u.flush_due, Some(6_000), "the first change sets the deadline");
        assert!(!u.take_flush_if_due(5_999), "a write before the deadline leaves them to later");
        assert!(u.take_flush_if_due(6_000));
        assert!(!u.take_flush());
        u.counters_changed(6_500, 5_000);
        assert!(u.take_flush());
        assert!(!u.take_flush(), "nothing left to write");
        u.counters_changed(9_000, 5_000);
        assert_eq!(u.flush_due, Some(14_000));
    }

    #[test]
    fn the_poll_follows_the_last_price_request() {
        let mut u = Upkeep::default();
        assert_eq!(u.poll_due(false, Some(1_000), 10_000), None, "nobody watches");
        assert_eq!(u.poll_due(true, None, 10_000), Some(10_000), "never polled: due at once");
        assert_eq!(u.poll_due(true, Some(50_000), 10_000), Some(60_000));
        u.last_poll = 70_000; // skipped by the rate limit: no new attempt, but no spinning either
        assert_eq!(u.poll_due(true, Some(50_000), 10_000), Some(80_000));
        u.watching_began(75_000);
        assert_eq!(u.poll_due(true, Some(50_000), 10_000), Some(85_000), "a period after watching began");
    }

    #[test]
    fn the_alarm_serves_whichever_job_comes_first() {
        let mut u = Upkeep::default();
        assert_eq!(u.next_alarm(None), None);
        assert_eq!(u.next_alarm(Some(9)), Some(9));
        u.counters_changed(0, 5);
        assert_eq!(u.next_alarm(Some(9)), Some(5));
        assert_eq!(u.next_alarm(Some(3)), Some(3));
        assert_eq!(u.next_alarm(None), Some(5));
        // A replica's pending btc stop report.
        let mut u = Upkeep::default();
        u.btc_watch.changed(0, 1, 0, 4);
        u.btc_watch.changed(1, 0, 1, 4);
        assert_eq!(u.next_alarm(None), Some(5));
        u.counters_changed(0, 7);
        assert_eq!(u.next_alarm(None), Some(5));
        assert_eq!(u.next_alarm(Some(2)), Some(2));
    }

    #[test]
    fn the_earliest_of_two_jobs_is_served() {
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(4), None), Some(4));
        assert_eq!(earliest(None, Some(4)), Some(4));
        assert_eq!(earliest(Some(9), Some(4)), Some(4));
    }

    #[test]
    fn the_alarm_moves_only_when_it_would_be_late() {
        assert!(must_arm(None, Some(5)));
        assert!(must_arm(Some(9), Some(5)));
        assert!(!must_arm(Some(5), Some(9)), "an early alarm stays");
        assert!(!must_arm(Some(5), Some(5)));
        assert!(!must_arm(None, None));
        assert!(!must_arm(Some(5), None));
    }
}
