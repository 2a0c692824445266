//! Whether a replica (a shard above 0) counts as watching `btc` for the sequencer, debounced:
//! the sequencer runs the fast BTC poll while any shard watches, and writes its record of who
//! watches (`watchers`) whenever that changes. Reporting every zero crossing let one client that
//! subscribes and unsubscribes `btc` in a loop make the sequencer write about 5 times a second.
//!
//! A replica starts watching the moment it has a `btc` subscriber (the poll must start at once)
//! and stops only once it has had none for the linger period (`FAST_POLL_SECONDS`): its alarm
//! then reports the stop. Until then, every answer shard 0 gets from it (a `/watch` report, an
//! `/apply` answer, `/watching`) says it watches, so nothing flips shard 0's record back and
//! forth. A start follows a stop, and a stop comes a linger period after the start before it at
//! the earliest, so each replica sends at most one start and one stop per linger period, and
//! shard 0 writes `watchers` at most that often for it.

/// One replica's debounced `btc` watching (memory only: after a wake it starts as not
/// watching; a start it reports again then changes nothing on shard 0, and a stop it forgot is
/// found by shard 0's check of each listed watcher before every poll).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BtcWatch {
    /// Whether it counts as watching (and last said so).
    watching: bool,
    /// When the stop is due: the linger period after its last `btc` subscriber left, while
    /// none came back.
    stop_at: Option<u64>,
}

impl BtcWatch {
    /// Its `btc` subscribers went from `before` to `after` at `now`. Returns `true` when shard
    /// 0 must be told at once that it watches. When the last one left, the stop is due
    /// `linger_ms` later ([`BtcWatch::stop_due`]; the alarm calls [`BtcWatch::take_stop`]).
    pub fn changed(&mut self, before: usize, after: usize, now: u64, linger_ms: u64) -> bool {
        if after > 0 {
            self.stop_at = None;
            return !std::mem::replace(&mut self.watching, true);
        }
        if before > 0 && self.watching {
            self.stop_at = Some(now.saturating_add(linger_ms));
        }
        false
    }

    /// When the alarm must fire to report the stop (None: no stop is pending).
    pub fn stop_due(&self) -> Option<u64> {
        self.stop_at.filter(|_| self.watching)
    }

    /// At the alarm, with `count` subscribers now: whether the stop is due and must be
    /// reported (it then no longer counts as watching).
    pub fn take_stop(&mut self, count: usize, now: u64) -> bool {
        if count > 0 || self.stop_due().is_none_or(|at| at > now) {
            return false;
        }
        *self = BtcWatch::default();
        true
    }

    /// The count shard 0 is given when it asks (`/watching`, an `/apply` answer): the real
    /// one, or 1 while the last subscriber left less than the linger period ago.
    pub fn advertised(&self, count: usize, now: u64) -> usize {
        match self.stop_due() {
            Some(at) if count == 0 && now < at => 1,
            _ => count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: u64 = 10_000;

    #[test]
    fn a_start_is_reported_at_once_and_a_stop_after_the_linger() {
        let mut w = BtcWatch::default();
        assert!(w.changed(0, 1, 1_000, LINGER), "the first subscriber starts the poll at once");
        assert!(!w.changed(1, 2, 1_100, LINGER), "another subscriber on a watching shard");
        assert!(!w.changed(2, 1, 1_200, LINGER));
        assert!(!w.changed(1, 2, 1_300, LINGER));
        assert!(!w.changed(2, 0, 2_000, LINGER), "the last one leaving is not reported yet");
        assert_eq!(w.stop_due(), Some(12_000));
        assert_eq!(w.advertised(0, 11_999), 1, "still watching for shard 0");
        assert!(!w.take_stop(0, 11_999), "too early");
        assert_eq!(w.advertised(0, 12_000), 0);
        assert!(w.take_stop(0, 12_000));
        assert_eq!((w.stop_due(), w.advertised(0, 12_000)), (None, 0));
        assert!(!w.take_stop(0, 20_000), "one stop");
        assert!(w.changed(0, 1, 20_001, LINGER), "a new watcher starts it again at once");
    }

    #[test]
    fn a_subscriber_back_within_the_linger_cancels_the_stop() {
        let mut w = BtcWatch::default();
        assert!(w.changed(0, 1, 0, LINGER));
        assert!(!w.changed(1, 0, 5_000, LINGER));
        assert!(!w.changed(0, 1, 6_000, LINGER), "still watching: nothing to report");
        assert_eq!(w.stop_due(), None);
        assert!(!w.take_stop(1, 15_000));
        assert_eq!(w.advertised(3, 15_000), 3);
        // An alarm that fires while a subscriber is back reports nothing.
        assert!(!w.changed(1, 0, 16_000, LINGER));
        assert!(!w.changed(0, 1, 17_000, LINGER));
        assert!(!w.take_stop(1, 26_000));
    }

    /// One client flapping `btc` every 100 ms for a minute, then leaving: a replica sends one
    /// start and, a linger period after the last unsubscribe, one stop.
    #[test]
    fn a_flapping_subscription_costs_one_start_and_one_stop() {
        let mut w = BtcWatch::default();
        let mut reports = Vec::new();
        let mut now = 0;
        while now < 60_000 {
            if w.changed(0, 1, now, LINGER) {
                reports.push((now, true));
            }
            now += 50;
            assert!(!w.changed(1, 0, now, LINGER));
            assert_eq!(w.advertised(0, now), 1, "shard 0 never sees it stop while it flaps");
            now += 50;
            if w.take_stop(0, now) {
                reports.push((now, false));
            }
        }
        let left = now - 50;
        assert_eq!(w.stop_due(), Some(left + LINGER), "the alarm's time");
        for t in (now..now + 2 * LINGER).step_by(50) {
            if w.take_stop(0, t) {
                reports.push((t, false));
            }
        }
        assert_eq!(reports, [(0, true), (left + LINGER, false)]);
    }

    /// Whatever the pattern, starts and stops alternate and each stop comes at least one
    /// linger period after the start before it: at most one of each per period.
    #[test]
    fn reports_alternate_and_stops_keep_the_linger() {
        let mut w = BtcWatch::default();
        let (mut count, mut last_start, mut watching) = (0usize, 0u64, false);
        let mut seed = 7u64;
        for step in 0..20_000u64 {
            let now = step * 137;
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let before = count;
            count = match seed >> 62 {
                0 => count.saturating_sub(1),
                1 => count + 1,
                2 => 0,
                _ => count,
            };
            if w.changed(before, count, now, LINGER) {
                assert!(!watching, "a start while watching");
                (watching, last_start) = (true, now);
            }
            if seed & 1 == 0 && w.take_stop(count, now) {
                assert!(watching && count == 0, "a stop while not watching, or with subscribers");
                assert!(now >= last_start + LINGER, "a stop {} ms after its start", now - last_start);
                watching = false;
            }
            let advertised = w.advertised(count, now);
            if count > 0 {
                assert_eq!(advertised, count);
            } else {
                assert!(advertised == 0 || (advertised == 1 && watching), "{advertised} while not watching");
            }
        }
    }
}
