//! Faults the hub must ride out: a replica shard that hangs on every fan-out or is merely
//! slow, a replica that misses fan-outs and must heal, a crash in the middle of a publish
//! stream, and storage calls past the platform's per-call limits.

use crate::harness::{seqs, Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FRAME_WAIT: Duration = Duration::from_secs(5);

/// Shard 2 of 3 takes 30 s to apply anything (`TEST_APPLY_DELAY_MS`). The sequencer waits at
/// most `FANOUT_TIMEOUT_MS` for it, then leaves it out for a while: cron rounds, which wait for
/// their fan-out, still finish (they once queued behind every hung fan-out before them, 30 s
/// each), and publishes and the healthy replica's sockets go on as if nothing were wrong.
#[test]
fn a_hung_shard_does_not_stall_the_sequencer() {
    let fixture = Fixture::start();
    let w = Wrangler::start(
        &fixture,
        &[
            ("PUBLISH_TOKEN", PUBLISH_TOKEN),
            ("HUB_SHARDS", "3"),
            ("TEST_APPLY_DELAY_MS", "30000"),
            ("FANOUT_TIMEOUT_MS", "300"),
        ],
    );
    assert_eq!(w.publish_seq("news", json!({"i": 1})), 1);
    let mut on_replica = w.client("/ws?shard=1&channels=news");
    on_replica.catch_up("news", FRAME_WAIT);

    // Two rounds, each behind the hung fan-outs before it: neither waits for shard 2. (The
    // harness gives a request 15 s; one hung fan-out alone would take 30.)
    for _ in 0..2 {
        let started = Instant::now();
        w.fire_cron();
        assert!(started.elapsed() < Duration::from_secs(10), "a cron round took {:?}", started.elapsed());
    }
    for i in 2..=20 {
        assert_eq!(w.publish_seq("news", json!({"i": i})), i);
    }
    assert_eq!(seqs(&on_replica.updates("news", 20, FRAME_WAIT)), (2..=20).collect::<Vec<_>>());
    assert!(w.log().contains("fan-out to shard 2 timed out after 300 ms"), "the timeout is logged");
    w.assert_no_panic();
}

/// Shard 1 of 2 is slow (300 ms per fan-out) but never slow enough to be left out, so fan-outs
/// queue behind it. The line is bounded like the send queue: past `MAX_PENDING_UPDATES` updates
/// waiting for other shards, publishes are refused with 503 `overloaded` before they get a seq
/// (they once all queued, each holding its body in shard 0's memory). Every accepted update
/// still reaches the slow shard's socket, in order and with no gap.
#[test]
fn a_slow_shard_backs_publishes_off_instead_of_piling_them_up() {
    let fixture = Fixture::start();
    let w = Wrangler::start(
        &fixture,
        &[
            ("PUBLISH_TOKEN", PUBLISH_TOKEN),
            ("HUB_SHARDS", "2"),
            ("TEST_APPLY_DELAY_MS", "300"),
            ("FANOUT_TIMEOUT_MS", "10000"),
            ("MAX_PENDING_UPDATES", "4"),
        ],
    );
    assert_eq!(w.publish_seq("news", json!({"i": 0})), 1);
    std::thread::sleep(Duration::from_secs(1)); // the channel reaches the slow shard
    let mut on_slow = w.client("/ws?shard=1&channels=news");
    on_slow.catch_up("news", Duration::from_secs(10));

    let (mut accepted, mut refused) = (Vec::new(), 0);
    for i in 1..=30 {
        let r = w.post_publish(Some(PUBLISH_TOKEN), &json!({"channel": "news", "data": {"i": i}}));
        match r.status {
            202 => accepted.push(r.json()["seq"].as_u64().expect("seq")),
            503 => {
                assert_eq!(r.json()["error"]["code"], "overloaded", "{}", r.body);
                assert_eq!(r.retry_after.as_deref(), Some("1"));
                refused += 1;
            }
            other => panic!("publish {i}: {other} {}", r.body),
        }
    }
    assert!(refused > 0, "30 publishes in a row behind a 300 ms shard were all accepted: {accepted:?}");
    // Refused publishes took no seq: the accepted ones are consecutive.
    assert_eq!(accepted, (2..2 + accepted.len() as u64).collect::<Vec<_>>());
    let last = *accepted.last().expect("some publishes were accepted");
    let got = on_slow.updates("news", last, Duration::from_secs(30));
    assert_eq!(seqs(&got), accepted, "the slow shard's socket got every accepted update, in order");
    assert!(on_slow.collect(Duration::from_millis(300)).iter().all(|f| f["recovered"] != false), "no gap was reported");
    // Once the line drains, publishing works again.
    assert_eq!(w.publish_seq("news", json!({"i": 31})), last + 1);
    assert!(w.metric("tickwire_publishes_overloaded_total") >= refused as f64);
    w.assert_no_panic();
}

/// Shard 1 of 2 answers every fan-out after 1.5 s, past `FANOUT_TIMEOUT_MS` (300 ms), so shard
/// 0 leaves it out for 10 s after each try, and the publishes in between never reach it. Then
/// the publisher goes quiet. The replica still heals: shard 0 retries it once its 10 s are up,
/// the replica sees from the fan-outs' numbers that it missed some and pulls what changed. Its
/// live socket gets the latest value (with `recovered: false`), a resume from the old seq is
/// not told `recovered: true` there, history read through it reaches the current seq, and a
/// channel created while it was left out exists on it. (It once answered from its stale copy
/// forever: `recovered: true` at seq 1, history ending at seq 1 with `next: null`.)
#[test]
fn a_replica_that_missed_fan_outs_heals_a_quiet_channel() {
    let fixture = Fixture::start();
    let w = Wrangler::start(
        &fixture,
        &[
            ("PUBLISH_TOKEN", PUBLISH_TOKEN),
            ("HUB_SHARDS", "2"),
            ("TEST_APPLY_DELAY_MS", "1500"),
            ("FANOUT_TIMEOUT_MS", "300"),
        ],
    );
    assert_eq!(w.publish_seq("quiet", json!({"i": 1})), 1);
    // The replica has seq 1 (the fan-out arrives late, after shard 0 gave up on it).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut live, epoch) = loop {
        let mut c = w.client("/ws?shard=1&channels=quiet");
        let (_, sub) = c.catch_up("quiet", FRAME_WAIT);
        if sub["seq"] == 1 {
            break (c, sub["epoch"].as_str().expect("epoch").to_owned());
        }
        assert!(Instant::now() < deadline, "the replica never got seq 1: {sub}");
        std::thread::sleep(Duration::from_millis(300));
    };
    std::thread::sleep(Duration::from_millis(500));
    // Left out: none of these is sent to the replica.
    assert_eq!(w.publish_seq("quiet", json!({"i": 2})), 2);
    assert_eq!(w.publish_seq("quiet", json!({"i": 3})), 3);
    assert_eq!(w.publish_seq("fresh", json!({"i": 1})), 1);

    // Nothing more is published. The live socket gets the current value, unasked, and is told
    // that continuity was lost before it.
    let ups = live.updates("quiet", 3, Duration::from_secs(40));
    assert_eq!(ups.last().map(|u| u["data"]["i"].clone()), Some(json!(3)), "{ups:?}");
    let sub = live.expect("subscribed after the healed value", FRAME_WAIT, |v| v["type"] == "subscribed");
    assert_eq!((&sub["seq"], &sub["recovered"]), (&json!(3), &json!(false)), "{sub}");

    let mut resumed = w.client(&format!("/ws?shard=1&channels=quiet&since=quiet:1@{epoch}"));
    let (ups, sub) = resumed.catch_up("quiet", FRAME_WAIT);
    assert_eq!(sub["seq"], 3, "the replica resumes at the current seq: {sub}");
    if sub["recovered"] == true {
        assert_eq!(seqs(&ups), [2, 3], "a recovered resume replays exactly what followed");
    } else {
        assert_eq!(seqs(&ups), [3], "not recovered: the latest value");
    }
    // /api/history is read from a shard at random: every answer reaches seq 3.
    for _ in 0..20 {
        let (status, page) = w.get_json("/api/history?channel=quiet&since=2");
        assert_eq!(status, 200, "{page}");
        assert_eq!((&page["seq"], &page["next"]), (&json!(3), &Value::Null), "{page}");
        assert_eq!(seqs(page["updates"].as_array().expect("updates")), [3], "{page}");
    }
    let mut fresh = w.client("/ws?shard=1&channels=fresh");
    let (ups, sub) = fresh.catch_up("fresh", FRAME_WAIT);
    assert_eq!((seqs(&ups), &sub["seq"]), (vec![1], &json!(1)), "created while the replica was left out: {sub}");
    w.assert_no_panic();
}

/// Shard 1 of 2 never finishes applying a fan-out (each hangs for 10 minutes), so shard 0 never
/// reaches it. A replica vouches for its copy only for 30 s after it last heard from shard 0
/// in step (`VOUCH_MS`): its first subscriber makes it pull the channel from shard 0, and a
/// resume more than 30 s later, after publishes it never got, pulls again and is answered at
/// the current seq, as is its live socket. (It once had no copy at all: `subscribed` at seq 0.)
#[test]
fn a_replica_shard_0_cannot_reach_pulls_before_it_vouches() {
    let fixture = Fixture::start();
    let w = Wrangler::start(
        &fixture,
        &[
            ("PUBLISH_TOKEN", PUBLISH_TOKEN),
            ("HUB_SHARDS", "2"),
            ("TEST_APPLY_DELAY_MS", "600000"),
            ("FANOUT_TIMEOUT_MS", "300"),
        ],
    );
    assert_eq!(w.publish_seq("quiet", json!({"i": 1})), 1);
    let mut live = w.client("/ws?shard=1&channels=quiet");
    let (ups, sub) = live.catch_up("quiet", FRAME_WAIT);
    assert_eq!((seqs(&ups), &sub["seq"]), (vec![1], &json!(1)), "pulled on first contact: {sub}");
    let epoch = sub["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(w.publish_seq("quiet", json!({"i": 2})), 2);
    assert_eq!(w.publish_seq("quiet", json!({"i": 3})), 3);

    std::thread::sleep(Duration::from_secs(32)); // past VOUCH_MS (30 s) since the replica pulled
    let mut resumed = w.client(&format!("/ws?shard=1&channels=quiet&since=quiet:1@{epoch}"));
    let (ups, sub) = resumed.catch_up("quiet", FRAME_WAIT);
    assert_eq!((seqs(&ups), &sub["seq"], &sub["recovered"]), (vec![3], &json!(3), &json!(false)), "{sub}");
    let ups = live.updates("quiet", 3, FRAME_WAIT);
    assert_eq!(seqs(&ups), [3], "the live socket gets the pulled value: {ups:?}");
    let sub = live.expect("subscribed after the pulled value", FRAME_WAIT, |v| v["type"] == "subscribed");
    assert_eq!((&sub["seq"], &sub["recovered"]), (&json!(3), &json!(false)), "{sub}");
    for _ in 0..10 {
        let (status, page) = w.get_json("/api/history?channel=quiet&since=2");
        assert_eq!((status, &page["seq"], &page["next"]), (200, &json!(3), &Value::Null), "{page}");
    }
    w.assert_no_panic();
}

/// Every retained update of `channel`, seq -> `data.i`, read through `/api/history` pages of
/// `limit` (at most `HISTORY_LEN`).
fn history_of(w: &Wrangler, channel: &str, limit: u64) -> BTreeMap<u64, u64> {
    let (mut since, mut all) = (0, BTreeMap::new());
    loop {
        let (status, page) = w.get_json(&format!("/api/history?channel={channel}&since={since}&limit={limit}"));
        assert_eq!(status, 200, "{page}");
        for u in page["updates"].as_array().expect("updates") {
            all.insert(u["seq"].as_u64().expect("seq"), u["data"]["i"].as_u64().expect("i"));
        }
        match page["next"].as_u64() {
            Some(next) => since = next,
            None => return all,
        }
    }
}

fn seq_to_i(frames: &[Value]) -> BTreeMap<u64, u64> {
    frames.iter().filter_map(|u| Some((u["seq"].as_u64()?, u["data"]["i"].as_u64()?))).collect()
}

/// wrangler dev (workerd with it) is killed with SIGKILL in the middle of a stream of publishes
/// and started again on the same storage. Every publish that was answered 202, and every update
/// a client received, is in the history afterwards with the same data (durable before visible);
/// the next publish gets a seq above all of them (no seq is reused for other data); and a client
/// resuming from the last seq it saw gets exactly what followed, or is told `recovered: false`.
#[test]
fn a_crash_mid_stream_loses_nothing_that_was_seen() {
    let fixture = Fixture::start();
    let mut w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)]);
    assert_eq!(w.publish_seq("news", json!({"i": 0})), 1);
    let mut client = w.client("/ws?channels=news");
    let (_, sub) = client.catch_up("news", FRAME_WAIT);
    let epoch = sub["epoch"].as_str().expect("epoch").to_owned();

    let acked = Mutex::new(BTreeMap::new());
    let pid = w.pid().expect("running") as i32;
    std::thread::scope(|s| {
        let (w, acked) = (&w, &acked);
        s.spawn(move || {
            for i in 1.. {
                match w.try_publish("news", json!({ "i": i })) {
                    Some((202, v)) => {
                        acked.lock().expect("acked").insert(v["seq"].as_u64().expect("seq"), i);
                    }
                    _ => return, // the crash
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.lock().expect("acked").len() < 60 {
            assert!(Instant::now() < deadline, "60 publishes did not go through in 30 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    });
    let seen = seq_to_i(&client.collect(Duration::from_secs(2)));
    let acked = acked.into_inner().expect("acked");
    assert!(acked.len() >= 60, "{acked:?}");
    let last_seen = *seen.keys().last().expect("the client got updates before the crash");
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), (2..=last_seen).collect::<Vec<_>>(), "no gap live");

    w.kill9();
    w.start_again();
    let history = history_of(&w, "news", 300);
    for (what, got) in [("answered 202", &acked), ("received by the client", &seen)] {
        for (seq, i) in got {
            assert_eq!(history.get(seq), Some(i), "seq {seq} {what} with i={i}; stored: {:?}", history.get(seq));
        }
    }
    let stored_last = *history.keys().last().expect("history");
    let top = acked.keys().chain(seen.keys()).max().copied().unwrap_or(0);
    assert!(stored_last >= top, "stored up to {stored_last}, but {top} was seen");
    assert_eq!(w.publish_seq("news", json!({"i": 9999})), stored_last + 1, "no seq is reused");

    let mut resumed = w.client(&format!("/ws?channels=news&since=news:{last_seen}@{epoch}"));
    let (ups, sub) = resumed.catch_up("news", FRAME_WAIT);
    if sub["recovered"] == true {
        let want: Vec<u64> = (last_seen + 1..=stored_last + 1).collect();
        assert_eq!(seqs(&ups), want, "a recovered resume replays exactly what followed");
    } else {
        assert_eq!(seqs(&ups), [stored_last + 1], "not recovered: just the latest value");
    }
    w.assert_no_panic();
}

/// Lowering `HISTORY_LEN` from 300 to 10 makes the next publish delete 290 history keys, more
/// than one storage call takes (128): it is still answered 202, storage keeps exactly the last 10,
/// and resumes inside and outside the new window answer as documented.
#[test]
fn lowering_history_len_trims_in_calls_storage_accepts() {
    let fixture = Fixture::start();
    let mut w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("HISTORY_LEN", "300")]);
    for i in 1..=300 {
        assert_eq!(w.publish_seq("news", json!({ "i": i })), i);
    }
    w.set_var("HISTORY_LEN", "10");
    w.restart();
    assert_eq!(w.publish_seq("news", json!({"i": 301})), 301);
    let mut kept: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        kept = w.stored().into_keys().filter(|k| k.starts_with("h:news:")).collect();
        if kept.len() == 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let want: Vec<String> = (292..=301).map(|s| format!("h:news:{s:020}")).collect();
    assert_eq!(kept, want);
    assert_eq!(history_of(&w, "news", 10).into_keys().collect::<Vec<_>>(), (292..=301).collect::<Vec<_>>());
    let mut inside = w.client("/ws?channels=news&since=news:295");
    let (ups, sub) = inside.catch_up("news", FRAME_WAIT);
    assert_eq!((seqs(&ups), &sub["recovered"]), ((296..=301).collect(), &json!(true)));
    let mut outside = w.client("/ws?channels=news&since=news:200");
    let (ups, sub) = outside.catch_up("news", FRAME_WAIT);
    assert_eq!((seqs(&ups), &sub["recovered"]), (vec![301], &json!(false)));
    w.assert_no_panic();
}
