//! Full-jitter exponential backoff between reconnect attempts: attempt n waits a random time in
//! 0..=min(cap, base × 2^n), so clients dropped together do not come back together; a
//! connection that stayed up long enough starts the series over.
//!
//! The random number is an argument, so the schedule is deterministic under test.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// A connection that lasted this long resets the series.
    stable: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, stable: Duration) -> Backoff {
        Backoff { base, cap: cap.max(base), stable, attempt: 0 }
    }

    /// The longest the next wait can be: min(cap, base × 2^attempt).
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// How long to wait before the next attempt, given a uniformly random `random`.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling_ms = self.ceiling().as_millis().min(u128::from(u64::MAX)) as u64;
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis(random % ceiling_ms.saturating_add(1))
    }

    /// A connection ended after being up for `lasted`: long enough, and the series starts over.
    pub fn connection_ended(&mut self, lasted: Duration) {
        if lasted >= self.stable {
            self.attempt = 0;
        }
    }
}

/// A random number for [`Backoff::next_delay`], from std's randomly keyed hasher (no extra crate).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn fresh() -> Backoff {
        Backoff::new(500 * MS, 15_000 * MS, 10_000 * MS)
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let mut b = fresh();
        let mut ceilings = Vec::new();
        for _ in 0..9 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay(0);
        }
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000]);
        for _ in 0..100 {
            b.next_delay(0);
        }
        assert_eq!(b.ceiling(), 15_000 * MS, "no overflow after many attempts");
    }

    #[test]
    fn delays_span_zero_to_the_ceiling() {
        let mut b = fresh();
        assert_eq!(b.next_delay(0), Duration::ZERO);
        let mut b2 = Backoff { attempt: 0, ..b.clone() };
        assert_eq!(b2.next_delay(500), 500 * MS, "the ceiling itself is possible");
        assert_eq!(b2.next_delay(1001), Duration::ZERO, "wraps within 0..=1000");
        assert_eq!(b.next_delay(u64::MAX), Duration::from_millis(u64::MAX % 1001));
        let mut b3 = fresh();
        for _ in 0..20 {
            assert!(b3.next_delay(random_u64()) <= 15_000 * MS);
        }
    }

    #[test]
    fn a_stable_connection_starts_the_series_over() {
        let mut b = fresh();
        b.next_delay(0);
        b.next_delay(0);
        b.connection_ended(9_999 * MS);
        assert_eq!(b.ceiling(), 2000 * MS, "a short connection does not reset");
        b.connection_ended(10_000 * MS);
        assert_eq!(b.ceiling(), 500 * MS);
    }

    #[test]
    fn the_cap_is_at_least_the_base() {
        let b = Backoff::new(2000 * MS, 10 * MS, Duration::ZERO);
        assert_eq!(b.ceiling(), 2000 * MS);
    }

    #[test]
    fn random_numbers_vary() {
        let n: std::collections::BTreeSet<u64> = (0..16).map(|_| random_u64()).collect();
        assert!(n.len() > 8, "{n:?}");
    }
}
