//! Sharding spares shard 0 (the sequencer): btc watch reports only when a shard's btc
//! subscribers cross zero, an unchanged fast-poll price wakes no replica, and API reads are
//! answered by every shard, not the sequencer alone. (`?shard=0` not pinning sockets is in
//! `hub.rs`, `shards_agree_on_seq_and_resume_across_shards`.)

use crate::feeds::{prices, PRICE};
use crate::harness::{is_update, wait_until, Fixture, Wrangler};
use serde_json::json;
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(5);

#[test]
fn shard_zero_is_spared_what_sharding_should_spread() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("HUB_SHARDS", "2"), ("FAST_POLL_SECONDS", "1"), ("COINGECKO_RPM", "120")]);
    let count = |series: &str| w.metric(series) as u64;
    fixture.set(PRICE, 200, prices(60_000.0, 1.0));
    w.fire_cron();

    // Five btc watchers on shard 1, one of which leaves and rejoins btc three times: shard 0 hears
    // of it once (it heard of every subscriber, and of every rejoin, before).
    let mut watchers: Vec<_> = (0..5).map(|_| w.client("/ws?shard=1&channels=btc")).collect();
    for c in &mut watchers {
        c.catch_up("btc", FRAME_WAIT);
    }
    for _ in 0..3 {
        let c = &mut watchers[1];
        c.send_json(&json!({"op": "unsubscribe", "channels": ["btc"]}));
        c.expect("unsubscribed", FRAME_WAIT, |v| v["type"] == "unsubscribed");
        c.send_json(&json!({"op": "subscribe", "channels": ["btc"]}));
        c.catch_up("btc", FRAME_WAIT);
    }
    wait_until("the watch report", FRAME_WAIT, || count("tickwire_btc_watch_reports_total") >= 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count("tickwire_btc_watch_reports_total"), 1);

    // The poll runs for shard 1's watchers; while the price holds, no fan-out wakes shard 1.
    wait_until("a fast poll", FRAME_WAIT, || !fixture.requests_to(PRICE).is_empty());
    std::thread::sleep(Duration::from_millis(1500));
    let (applied, polled) = (count("tickwire_fanouts_applied_total"), fixture.requests_to(PRICE).len());
    std::thread::sleep(Duration::from_millis(3500));
    assert!(fixture.requests_to(PRICE).len() >= polled + 2, "the poll went on");
    assert_eq!(count("tickwire_fanouts_applied_total"), applied, "an unchanged price woke shard 1");
    // A new price does reach it.
    fixture.set(PRICE, 200, prices(60_100.0, 1.0));
    watchers[0]
        .expect("the new price on shard 1", FRAME_WAIT, |v| is_update("btc")(v) && v["data"]["price_usd"] == 60_100.0);
    assert!(count("tickwire_fanouts_applied_total") > applied);

    // Reads are answered by both shards (80 at random: all on one would be a 2^-79 chance).
    for _ in 0..40 {
        assert_eq!(w.get("/api/history?channel=btc").status, 200);
        assert_eq!(w.get("/api/snapshot").status, 200);
    }
    for shard in 0..2 {
        let reads = count(&format!("tickwire_shard_api_reads_total{{shard=\"{shard}\"}}"));
        assert!(reads >= 1, "shard {shard} answered no read");
    }

    // The last watcher leaving is the second report.
    for mut c in watchers {
        c.close();
    }
    wait_until("the unwatch report", FRAME_WAIT, || count("tickwire_btc_watch_reports_total") >= 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count("tickwire_btc_watch_reports_total"), 2);
    w.assert_no_panic();
}
