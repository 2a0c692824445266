//! Whether a replica shard can vouch for its channels, and when it must heal.
//!
//! Shard 0 numbers its fan-outs: every `/apply` carries the sequencer's [`Position`] (a run id
//! drawn when its object starts, and the count of fan-outs of that run). A replica that gets
//! them one after another knows it missed nothing; one that sees a jump (it was left out, a
//! call failed, shard 0 restarted, or the replica itself did and forgot where it was) is
//! behind, and pulls what changed from shard 0 (`POST /sync`, see `sync.rs`).
//!
//! A replica cannot see a fan-out that never reached it, so it vouches for its state only for
//! [`VOUCH_MS`] after it last heard from shard 0 in step; past that, a catch-up or read asks
//! shard 0 first (the same pull, which costs one small call when nothing changed). Shard 0
//! retries a replica it failed to reach once its skip time is up (`ReplicaBackoff::retry_due`),
//! so a quiet replica learns of a miss without waiting for the next publish.

use crate::wire::bodies::Position;

/// How long a replica answers from its own state after it last heard from shard 0 in step.
pub const VOUCH_MS: u64 = 30_000;

/// After a pull failed (shard 0 unreachable or too slow), how long a replica answers
/// unvouched at once instead of trying again, so a lost sequencer does not hold up every
/// catch-up by a pull's timeout.
pub const PULL_RETRY_MS: u64 = 5_000;

/// How long a replica waits for one page of a pull.
pub const PULL_TIMEOUT_MS: u64 = 5_000;

/// What a replica does before it answers from its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vouch {
    /// Answer: it is in step and heard from shard 0 recently.
    Vouched,
    /// Pull from shard 0 first.
    Pull,
    /// A pull failed a moment ago: answer without vouching (`recovered: false`, or let the
    /// sequencer answer a read).
    Unvouched,
}

/// What a replica makes of an `/apply` that carries position `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The fan-out right after the last one it had: apply it; nothing was missed.
    InStep,
    /// Apply it, but something was missed (or cannot be ruled out): heal.
    Gap,
    /// A fan-out already covered by a sync this replica applied: ignore its body.
    Covered,
}

/// A replica's view of how far it follows the sequencer (memory only: a replica that restarts
/// starts unvouched and heals on first contact).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Follow {
    /// The position everything up to which is applied here; None while behind or unknown.
    at: Option<Position>,
    /// When it last heard from shard 0 in step (ms).
    heard_at: u64,
    /// The highest fan-out applied while behind: a sync answered before it may have undone it.
    seen: Option<Position>,
    /// When a pull last failed (ms).
    failed_at: Option<u64>,
}

impl Follow {
    /// An `/apply` carrying `at` (None from a sequencer that does not number them) arrived at `now`.
    pub fn on_apply(&mut self, at: Option<&Position>, now: u64) -> Step {
        let Some(at) = at else {
            self.at = None;
            return Step::Gap;
        };
        match &self.at {
            Some(mine) if mine.run == at.run && at.n <= mine.n => Step::Covered,
            Some(mine) if mine.run == at.run && at.n == mine.n + 1 => {
                self.at = Some(at.clone());
                self.heard_at = now;
                Step::InStep
            }
            _ => {
                self.at = None;
                if self.seen.as_ref().is_none_or(|s| s.run != at.run || s.n < at.n) {
                    self.seen = Some(at.clone());
                }
                Step::Gap
            }
        }
    }

    /// Whether this replica may answer from its own state at `now`: in step, and heard from
    /// shard 0 within [`VOUCH_MS`].
    pub fn vouched(&self, now: u64) -> bool {
        self.at.is_some() && now.saturating_sub(self.heard_at) <= VOUCH_MS
    }

    /// What to do before answering from this replica's state at `now`.
    pub fn check(&self, now: u64) -> Vouch {
        if self.vouched(now) {
            Vouch::Vouched
        } else if self.failed_at.is_some_and(|t| now.saturating_sub(t) < PULL_RETRY_MS) {
            Vouch::Unvouched
        } else {
            Vouch::Pull
        }
    }

    /// A pull failed at `now`.
    pub fn pull_failed(&mut self, now: u64) {
        self.failed_at = Some(now);
    }

    /// A sync is about to send this replica's digest: fan-outs applied from now on count as
    /// applied during it.
    pub fn sync_started(&mut self) {
        self.seen = None;
    }

    /// The last page of a sync, computed at the sequencer's position `at`, is applied. Returns
    /// whether the replica is now in step; false when a later fan-out was applied while the sync
    /// was on its way (the sync may have overwritten it): then it syncs again.
    pub fn synced(&mut self, at: Position, now: u64) -> bool {
        if self.seen.as_ref().is_some_and(|s| s.run == at.run && s.n > at.n) {
            return false;
        }
        self.at = Some(at);
        self.heard_at = now;
        self.seen = None;
        self.failed_at = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(run: &str, n: u64) -> Position {
        Position { run: run.into(), n }
    }

    #[test]
    fn the_sequencer_numbers_its_fan_outs() {
        let mut p = Position::start("r".into());
        assert_eq!(p.advance(), at("r", 1));
        assert_eq!(p.advance(), at("r", 2));
        assert_eq!(p, at("r", 2));
    }

    #[test]
    fn a_replica_that_never_heard_is_behind_and_vouches_for_nothing() {
        let mut f = Follow::default();
        assert!(!f.vouched(0));
        assert_eq!(f.on_apply(Some(&at("r", 7)), 100), Step::Gap, "it cannot know what came before 7");
        assert!(!f.vouched(100));
        f.sync_started();
        assert!(f.synced(at("r", 7), 200));
        assert!(f.vouched(200));
        assert_eq!(f.on_apply(Some(&at("r", 8)), 300), Step::InStep);
        assert!(f.vouched(300 + VOUCH_MS));
        assert!(!f.vouched(301 + VOUCH_MS), "silence past the bound: ask shard 0 first");
    }

    #[test]
    fn a_failed_pull_is_not_retried_for_a_while() {
        let mut f = Follow::default();
        assert_eq!(f.check(0), Vouch::Pull);
        f.pull_failed(1_000);
        assert_eq!(f.check(1_000 + PULL_RETRY_MS - 1), Vouch::Unvouched);
        assert_eq!(f.check(1_000 + PULL_RETRY_MS), Vouch::Pull);
        f.sync_started();
        assert!(f.synced(Position::start("r".into()), 10_000));
        assert_eq!(f.check(10_000 + VOUCH_MS), Vouch::Vouched);
        assert_eq!(f.check(10_001 + VOUCH_MS), Vouch::Pull, "the failure was forgotten once it healed");
    }

    #[test]
    fn a_missed_fan_out_a_new_run_or_an_unnumbered_apply_is_a_gap() {
        let mut f = Follow::default();
        f.synced(at("r", 3), 0);
        assert_eq!(f.on_apply(Some(&at("r", 5)), 10), Step::Gap, "4 never came");
        assert!(!f.vouched(10));
        assert_eq!(f.on_apply(Some(&at("r", 6)), 11), Step::Gap, "still behind until it syncs");
        f.synced(at("r", 6), 20);
        assert_eq!(f.on_apply(Some(&at("s", 1)), 30), Step::Gap, "shard 0 restarted");
        f.synced(at("s", 1), 40);
        assert_eq!(f.on_apply(None, 50), Step::Gap);
        assert!(!f.vouched(50));
    }

    #[test]
    fn fan_outs_a_sync_covered_are_ignored_and_later_ones_force_another_sync() {
        let mut f = Follow::default();
        f.on_apply(Some(&at("r", 2)), 0);
        f.sync_started();
        // The sync was computed at 9: fan-outs 3..=9 still in flight carry nothing new.
        assert!(f.synced(at("r", 9), 10));
        assert_eq!(f.on_apply(Some(&at("r", 5)), 11), Step::Covered);
        assert_eq!(f.on_apply(Some(&at("r", 9)), 12), Step::Covered);
        assert_eq!(f.on_apply(Some(&at("r", 10)), 13), Step::InStep);

        // Fan-out 12 is applied while a sync computed at 11 is on its way: the sync's older
        // values may have overwritten it, so the replica syncs again.
        f.on_apply(Some(&at("r", 12)), 20);
        f.sync_started();
        f.on_apply(Some(&at("r", 12)), 21);
        assert!(!f.synced(at("r", 11), 22));
        assert!(!f.vouched(22));
        f.sync_started();
        assert!(f.synced(at("r", 12), 23));
        assert!(f.vouched(23));
        // One applied during a sync but not after what the sync saw is fine.
        f.on_apply(Some(&at("r", 20)), 30);
        f.sync_started();
        f.on_apply(Some(&at("r", 21)), 31);
        assert!(f.synced(at("r", 25), 32));
    }
}
