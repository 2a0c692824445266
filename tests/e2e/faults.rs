//! Faults the hub must ride out: a replica shard that hangs on every fan-out.

use crate::harness::{seqs, Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::json;
use std::time::{Duration, Instant};

const FRAME_WAIT: Duration = Duration::from_secs(5);

/// Shard 1 takes 30 s to apply anything (`TEST_APPLY_DELAY_MS`). The sequencer waits at most
/// `FANOUT_TIMEOUT_MS` for it, then leaves it out for a while: cron rounds, which wait for their
/// fan-out, still finish (they once queued behind every hung fan-out before them, 30 s each), and
/// publishes and shard 0's sockets go on as if nothing were wrong.
#[test]
fn a_hung_shard_does_not_stall_the_sequencer() {
    let fixture = Fixture::start();
    let w = Wrangler::start(
        &fixture,
        &[
            ("PUBLISH_TOKEN", PUBLISH_TOKEN),
            ("HUB_SHARDS", "2"),
            ("TEST_APPLY_DELAY_MS", "30000"),
            ("FANOUT_TIMEOUT_MS", "300"),
        ],
    );
    assert_eq!(w.publish_seq("news", json!({"i": 1})), 1);
    let mut on_sequencer = w.client("/ws?shard=0&channels=news");
    on_sequencer.catch_up("news", FRAME_WAIT);

    // Two rounds, each behind the hung fan-outs before it: neither waits for shard 1. (The
    // harness gives a request 15 s; one hung fan-out alone would take 30.)
    for _ in 0..2 {
        let started = Instant::now();
        w.fire_cron();
        assert!(started.elapsed() < Duration::from_secs(10), "a cron round took {:?}", started.elapsed());
    }
    for i in 2..=20 {
        assert_eq!(w.publish_seq("news", json!({"i": i})), i);
    }
    assert_eq!(seqs(&on_sequencer.updates("news", 20, FRAME_WAIT)), (2..=20).collect::<Vec<_>>());
    assert!(w.log().contains("fan-out to shard 1 timed out after 300 ms"), "the timeout is logged");
    w.assert_no_panic();
}
