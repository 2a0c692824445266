//! Which replica shards a fan-out goes to. A shard whose `/apply` failed or timed out is left
//! out for a while, so a hung shard costs the sequencer one timeout, not one per update, and
//! the fan-out line never waits on it; when it is tried again it sees the gap and tells its
//! sockets (`HubCore::apply`).

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

    pub fn failed(&mut self, shard: u32, now: u64) {
        self.skip_until.insert(shard, now.saturating_add(SKIP_MS));
    }

    pub fn succeeded(&mut self, shard: u32) {
        self.skip_until.remove(&shard);
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
}
