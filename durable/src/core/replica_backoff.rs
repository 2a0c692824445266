//! Which replica shards a fan-out goes to. A shard whose `/apply` failed or timed out is left
//! out for a while, so a hung shard costs the sequencer one timeout, not one per update, and
//! the fan-out line never waits on it. It stays owed a contact until one succeeds: once its
//! skip time is up, shard 0's alarm retries it with a heartbeat if no fan-out came meanwhile
//! (`retry_due`), and it sees from the fan-outs' numbers that it missed some and heals
//! (`replica_sync.rs`).

use std::collections::BTreeMap;

/// How long a failed shard is left out of fan-outs.
pub const SKIP_MS: u64 = 10_000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplicaBackoff {
    skip_until: BTreeMap<u32, u64>,
}

impl ReplicaBackoff {
    /// Shards 1..`shards` that a fan-out at `now` goes to.
    pub fn targets(&self, shards: u32, now: u64) -> Vec<u32> {
        (1..shards).filter(|k| self.skip_until.get(k).is_none_or(|&until| now >= until)).collect()
    }

    /// Records how a fan-out call to `shard` ended: a failure leaves it out for a while, a
    /// success lets it back in. Returns the problem, for the log (None: it succeeded).
    pub fn record(&mut self, shard: u32, outcome: &ApplyOutcome, now: u64) -> Option<String> {
        let problem = outcome.problem();
        match problem {
            None => self.succeeded(shard),
            Some(_) => self.failed(shard, now),
        }
        problem
    }

    pub fn failed(&mut self, shard: u32, now: u64) {
        self.skip_until.insert(shard, now.saturating_add(SKIP_MS));
    }

    pub fn succeeded(&mut self, shard: u32) {
        self.skip_until.remove(&shard);
    }

    /// When the earliest shard that failed is due to be tried again (None: every shard's last
    /// call succeeded). A time in the past means it is owed a contact now.
    pub fn retry_due(&self) -> Option<u64> {
        self.skip_until.values().min().copied()
    }
}

/// How one replica's `/apply` call ended, as the fan-out saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// It answered `status`; a 200 says whether the shard has `btc` subscribers (None when
    /// its body did not parse: the updates were applied, only the report is lost).
    Answered { status: u16, btc_watching: Option<bool> },
    /// The call failed (the stub or the runtime), with the error as logged.
    Failed(String),
    /// No answer within the fan-out timeout.
    TimedOut { after_ms: u64 },
}

impl ApplyOutcome {
    /// What went wrong, for the log; None when the shard applied the updates.
    pub fn problem(&self) -> Option<String> {
        match self {
            ApplyOutcome::Answered { status: 200, .. } => None,
            ApplyOutcome::Answered { status, .. } => Some(format!("answered {status}")),
            ApplyOutcome::Failed(e) => Some(format!("failed: {e}")),
            ApplyOutcome::TimedOut { after_ms } => Some(format!("timed out after {after_ms} ms")),
        }
    }

    /// Whether the shard reported `btc` subscribers (only a 200 with a readable body does).
    pub fn btc_watching(&self) -> Option<bool> {
        match self {
            ApplyOutcome::Answered { status: 200, btc_watching } => *btc_watching,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_shard_is_left_out_until_its_time_is_up() {
        let mut b = ReplicaBackoff::default();
        assert_eq!(b.targets(4, 0), [1, 2, 3]);
        assert_eq!(b.targets(1, 0), Vec::<u32>::new(), "one shard: nothing to fan out to");
        b.failed(2, 1_000);
        assert_eq!(b.targets(4, 1_000), [1, 3]);
        assert_eq!(b.targets(4, 1_000 + SKIP_MS - 1), [1, 3]);
        assert_eq!(b.targets(4, 1_000 + SKIP_MS), [1, 2, 3], "tried again");
        b.failed(2, 20_000);
        b.succeeded(2);
        assert_eq!(b.targets(4, 20_000), [1, 2, 3]);
    }

    #[test]
    fn a_failed_shard_is_owed_a_retry_until_a_call_succeeds() {
        let mut b = ReplicaBackoff::default();
        assert_eq!(b.retry_due(), None);
        b.failed(3, 5_000);
        b.failed(1, 1_000);
        assert_eq!(b.retry_due(), Some(1_000 + SKIP_MS), "the earliest");
        assert_eq!(b.retry_due(), Some(1_000 + SKIP_MS), "still owed after its time is up");
        b.failed(1, 1_000 + SKIP_MS); // the retry failed too: left out again
        assert_eq!(b.retry_due(), Some(5_000 + SKIP_MS));
        b.succeeded(3);
        b.succeeded(1);
        assert_eq!(b.retry_due(), None);
    }

    #[test]
    fn an_outcome_says_what_went_wrong_and_what_the_shard_reported() {
        let ok = ApplyOutcome::Answered { status: 200, btc_watching: Some(true) };
        let unreadable = ApplyOutcome::Answered { status: 200, btc_watching: None };
        let refused = ApplyOutcome::Answered { status: 500, btc_watching: Some(true) };
        let failed = ApplyOutcome::Failed("network".into());
        let slow = ApplyOutcome::TimedOut { after_ms: 2_000 };
        assert_eq!((ok.problem(), ok.btc_watching()), (None, Some(true)));
        assert_eq!((unreadable.problem(), unreadable.btc_watching()), (None, None), "applied; report lost");
        assert_eq!((refused.problem().as_deref(), refused.btc_watching()), (Some("answered 500"), None));
        assert_eq!(failed.problem().as_deref(), Some("failed: network"));
        assert_eq!(slow.problem().as_deref(), Some("timed out after 2000 ms"));

        let mut b = ReplicaBackoff::default();
        assert!(b.record(1, &slow, 1_000).is_some());
        assert!(b.record(2, &ok, 1_000).is_none());
        assert_eq!(b.targets(3, 1_001), [2], "the slow shard is left out");
        assert!(b.record(1, &unreadable, 1_000 + SKIP_MS).is_none());
        assert_eq!(b.targets(3, 1_000 + SKIP_MS), [1, 2], "and back in once it answers");
    }
}
