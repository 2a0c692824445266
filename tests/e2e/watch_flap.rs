//! A client flapping its `btc` subscription on a replica costs the sequencer (shard 0) one watch
//! report (and so at most one write of its `watchers` record) per `FAST_POLL_SECONDS`, where it
//! once cost two per flap; the fast BTC poll still starts at once and stops a linger period
//! after the last watcher left.

use crate::feeds::{prices, PRICE};
use crate::harness::{wait_until, Fixture, Wrangler};
use serde_json::json;
use std::time::{Duration, Instant};

const FRAME_WAIT: Duration = Duration::from_secs(5);
const REPORTS: &str = "tickwire_btc_watch_reports_total";
/// One flap (two client messages) per 10 ms at most: at most 1,200 messages in the 6 s of
/// flapping, well inside `CLIENT_MSGS_PER_10S` below however fast the machine answers (an
/// unpaced loop once reached 5,000 in under 6 s and was rate-limited).
const FLAP_EVERY: Duration = Duration::from_millis(10);

#[test]
fn a_flapping_btc_subscription_on_a_replica_spares_shard_zero() {
    let fixture = Fixture::start();
    let w = Wrangler::start(
        &fixture,
        &[("HUB_SHARDS", "2"), ("FAST_POLL_SECONDS", "2"), ("COINGECKO_RPM", "120"), ("CLIENT_MSGS_PER_10S", "5000")],
    );
    let reports = || w.metric(REPORTS) as u64;
    let polls = || fixture.requests_to(PRICE).len();
    fixture.set(PRICE, 200, prices(60_000.0, 1.0));
    assert_eq!(reports(), 0);

    // Subscribe, unsubscribe, again and again for 6 s (three linger periods), on shard 1.
    let mut c = w.client("/ws?shard=1&channels=");
    let started = Instant::now();
    let mut flaps = 0;
    let mut polled_while_flapping = None;
    while started.elapsed() < Duration::from_secs(6) {
        c.send_json(&json!({"op": "subscribe", "channels": ["btc"]}));
        c.catch_up("btc", FRAME_WAIT);
        c.send_json(&json!({"op": "unsubscribe", "channels": ["btc"]}));
        c.expect("unsubscribed", FRAME_WAIT, |v| v["type"] == "unsubscribed");
        flaps += 1;
        if polled_while_flapping.is_none() && polls() > 0 {
            polled_while_flapping = Some(started.elapsed());
        }
        let next = started + FLAP_EVERY * flaps;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let left = Instant::now();
    assert!(flaps >= 20, "only {flaps} flaps in 6 s");
    assert!(polled_while_flapping.is_some(), "the fast poll never ran for the flapping watcher");
    // One report: the start. Each flap once made two (a start and a stop).
    assert_eq!(reports(), 1, "after {flaps} flaps");

    // The stop comes by the replica's alarm a linger period (2 s) after the last unsubscribe,
    // and then the poll stops: at most one more poll that was already due.
    wait_until("the stop report", FRAME_WAIT, || reports() >= 2);
    assert!(left.elapsed() >= Duration::from_millis(1500), "stop reported after {:?}", left.elapsed());
    let after_stop = polls();
    std::thread::sleep(Duration::from_secs(5));
    assert!(polls() <= after_stop + 1, "polled {} times after the stop", polls() - after_stop);
    assert_eq!(reports(), 2);

    // A new watcher starts it again at once.
    let idle = polls();
    c.send_json(&json!({"op": "subscribe", "channels": ["btc"]}));
    c.catch_up("btc", FRAME_WAIT);
    wait_until("the start report", FRAME_WAIT, || reports() >= 3);
    wait_until("a poll for the new watcher", Duration::from_secs(6), || polls() > idle);
    assert_eq!(reports(), 3);
    w.assert_no_panic();
}
