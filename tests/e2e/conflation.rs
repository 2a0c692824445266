//! Conflated delivery (`every`): while about 50 updates a second are published, a socket at
//! `every=ticks:1000` gets about one frame a second carrying the latest value and how many
//! updates it skipped; a delta socket of the same class holds the same values at every frame; a
//! resume with `since` after a conflated frame replays exactly what was published; and sockets
//! that join, re-subscribe or ask through the `subscribe` op between ticks never get an older
//! value after a newer one, nor a patch against a value they do not hold.

use crate::harness::{merge_patch, Client, Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CH: &str = "ticks";
const FRAME_WAIT: Duration = Duration::from_secs(10);

/// The value published as update `i`: a small moving part and a large fixed one, so a patch is
/// much smaller than the full value.
fn data(i: u64) -> Value {
    json!({ "i": i, "price": 1000 + 3 * i, "note": "x".repeat(300) })
}

fn start(fixture: &Fixture, shards: &str) -> Wrangler {
    let w = Wrangler::start(fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("HUB_SHARDS", shards)]);
    assert_eq!(w.publish_seq(CH, data(0)), 1);
    w
}

/// Publishes about 50 updates a second until `stop`; answers each seq's value.
fn publish_at_50_per_s(w: &Wrangler, stop: &AtomicBool) -> BTreeMap<u64, Value> {
    let mut published = BTreeMap::new();
    let (start, mut i) = (Instant::now(), 1);
    while !stop.load(Ordering::Acquire) {
        let d = data(i);
        published.insert(w.publish_seq(CH, d.clone()), d);
        i += 1;
        let next = start + Duration::from_millis(20 * i);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    published
}

/// What a socket holds of `ticks`, followed frame by frame.
#[derive(Default)]
struct Held {
    seq: u64,
    value: Value,
    /// The conflated frames (those with `skipped`): (seq, skipped, type).
    ticks: Vec<(u64, u64, String)>,
}

impl Held {
    /// Applies `frames` (in arrival order) and checks each against what was published: seqs
    /// only go up, a conflated frame's skipped count is the seqs it jumped over, and the value
    /// held after each frame is the value published at its seq.
    fn follow(&mut self, who: &str, frames: &[Value], published: &BTreeMap<u64, Value>) {
        for f in frames.iter().filter(|f| f["channel"] == CH) {
            let kind = f["type"].as_str().unwrap_or_default();
            if kind != "update" && kind != "delta" {
                continue;
            }
            let seq = f["seq"].as_u64().unwrap_or(0);
            match f["skipped"].as_u64() {
                Some(skipped) => {
                    assert!(seq > self.seq, "{who}: seq {seq} after {}: {f}", self.seq);
                    assert_eq!(skipped + 1, seq - self.seq, "{who}: skipped counts the updates jumped over: {f}");
                    self.ticks.push((seq, skipped, kind.to_owned()));
                }
                // A catch-up's (or a re-subscribe's) latest value: never older than what it holds.
                None => assert!(seq >= self.seq, "{who}: an older value ({seq}) after {}: {f}", self.seq),
            }
            if kind == "delta" {
                assert_eq!(self.seq, seq - f["skipped"].as_u64().unwrap_or(0) - 1, "{who}: a patch against its value");
                merge_patch(&mut self.value, &f["patch"]);
            } else {
                self.value = f["data"].clone();
            }
            self.seq = seq;
            let want = published.get(&seq).cloned().unwrap_or_else(|| data(0));
            assert_eq!(self.value, want, "{who}: the value at seq {seq}");
        }
    }
}

/// Reads `c` until it holds `seq` (the last one published): the frames (and errors) on the way.
fn frames_until(c: &mut Client, seq: u64) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let pred = |v: &Value| v["channel"] == CH || v["type"] == "error";
        let f = c.expect(&format!("{CH} frame up to seq {seq}"), FRAME_WAIT, pred);
        let at = f["seq"].as_u64().unwrap_or(0);
        frames.push(f);
        if at >= seq {
            return frames;
        }
    }
}

#[test]
fn a_conflated_socket_gets_the_latest_value_about_once_a_second_and_resumes_without_loss() {
    let fixture = Fixture::start();
    let w = start(&fixture, "1");
    let mut full = w.client(&format!("/ws?channels={CH}&every={CH}:1000"));
    let mut delta = w.client(&format!("/ws?channels={CH}&every={CH}:1000&delta=merge"));
    for c in [&mut full, &mut delta] {
        assert_eq!(c.catch_up(CH, FRAME_WAIT).1["seq"], 1);
    }
    let stop = AtomicBool::new(false);
    let (window, published) = std::thread::scope(|s| {
        let publisher = s.spawn(|| publish_at_50_per_s(&w, &stop));
        let window = full.collect(Duration::from_secs(4));
        stop.store(true, Ordering::Release);
        (window, publisher.join().expect("publisher"))
    });
    let last = *published.keys().last().expect("something published");
    assert!(published.len() >= 60, "about 50 updates a second for 4 s, got {}", published.len());
    let in_window = window.iter().filter(|f| f["channel"] == CH && f["type"] == "update").count();
    assert!((3..=6).contains(&in_window), "{in_window} frames in 4 s at every=1000: {window:#?}");

    // The last frame is the last value: the tick after the publisher stopped brings it.
    let mut frames = window;
    frames.extend(frames_until(&mut full, last));
    let mut held = Held { seq: 1, value: data(0), ..Held::default() };
    held.follow("full", &frames, &published);
    assert_eq!(held.seq, last);
    let advanced: u64 = held.ticks.iter().map(|(_, skipped, _)| skipped + 1).sum();
    assert_eq!(advanced, last - 1, "skipped + 1 sums to the seq advance: {:?}", held.ticks);
    assert!(held.ticks.len() < published.len() / 5, "{} frames for {} updates", held.ticks.len(), published.len());

    // The delta socket of the same class: the same ticks, patches against what it held, and
    // the same value as the full socket at every frame.
    let mut patched = Held { seq: 1, value: data(0), ..Held::default() };
    patched.follow("delta", &frames_until(&mut delta, last), &published);
    let seqs = |h: &Held| h.ticks.iter().map(|t| t.0).collect::<Vec<_>>();
    assert_eq!(seqs(&patched), seqs(&held), "one class, one set of ticks");
    assert!(patched.ticks.iter().all(|t| t.2 == "delta"), "in step from the start: {:?}", patched.ticks);

    // A resume from a conflated frame replays exactly the updates it skipped since.
    let (from, skipped, _) = held.ticks[0].clone();
    assert!(skipped > 0, "the first tick skipped updates: {:?}", held.ticks);
    let mut resumed = w.client(&format!("/ws?channels={CH}&since={CH}:{from}&every={CH}:1000"));
    let (replayed, subscribed) = resumed.catch_up(CH, FRAME_WAIT);
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    let want: Vec<(u64, Value)> = published.range(from + 1..).map(|(s, v)| (*s, v.clone())).collect();
    let got: Vec<(u64, Value)> = replayed.iter().map(|u| (u["seq"].as_u64().unwrap_or(0), u["data"].clone())).collect();
    assert_eq!(got, want, "every update after seq {from}, exactly");
    w.assert_no_panic();
}

#[test]
fn sockets_that_join_or_resubscribe_between_ticks_never_go_back_nor_get_a_foreign_patch() {
    // Two shards: the replica's classes tick from the fan-outs it applies.
    let fixture = Fixture::start();
    let w = start(&fixture, "2");
    let mut first = w.client(&format!("/ws?channels={CH}&every={CH}:1000&delta=merge"));
    let stop = AtomicBool::new(false);
    let (mut clients, published) = std::thread::scope(|s| {
        let publisher = s.spawn(|| publish_at_50_per_s(&w, &stop));
        let pause = |ms| std::thread::sleep(Duration::from_millis(ms));
        pause(1300);
        // Joins between the class's ticks, holding newer values than the class's sockets.
        let late = w.client(&format!("/ws?channels={CH}&every={CH}:1000&delta=merge&shard=1"));
        pause(700);
        let mut by_op = w.client("/ws?channels=&delta=merge");
        by_op.send_json(&json!({"op": "subscribe", "channels": [CH], "every_ms": 1000}));
        pause(400);
        let quick = w.client(&format!("/ws?channels={CH}&every={CH}:250&shard=1"));
        pause(500);
        // A re-subscribe: the latest value now, and `subscribed` with recovered: false.
        first.send_json(&json!({"op": "subscribe", "channels": [CH]}));
        let bad = w.client(&format!("/ws?channels={CH}&every={CH}:7"));
        pause(1500);
        stop.store(true, Ordering::Release);
        (vec![("late", late), ("by_op", by_op), ("quick", quick), ("bad", bad)], publisher.join().expect("publisher"))
    });
    let last = *published.keys().last().expect("something published");
    clients.insert(0, ("first", first));
    let mut held = BTreeMap::new();
    for (who, c) in &mut clients {
        let frames = frames_until(c, last);
        let mut h = Held::default();
        h.follow(who, &frames, &published);
        assert_eq!(h.seq, last, "{who} ends at the latest value");
        held.insert(*who, (h, frames));
    }
    // The conflated sockets skipped, at their own pace; the one with a bad interval did not.
    for (who, most) in [("first", 8), ("late", 7), ("by_op", 6), ("quick", 15)] {
        let ticks = &held[who].0.ticks;
        assert!(!ticks.is_empty() && ticks.len() <= most, "{who}: {ticks:?}");
        assert!(ticks.iter().any(|t| t.1 > 0), "{who} skipped updates: {ticks:?}");
    }
    let resubscribed = held["first"].1.iter().find(|f| f["type"] == "subscribed" && f["recovered"] == false);
    assert!(resubscribed.is_some(), "the re-subscribe's answer");
    let bad = &held["bad"];
    assert!(bad.1.iter().any(|f| f["type"] == "error" && f["code"] == "invalid_every"), "{:#?}", bad.1);
    assert!(bad.0.ticks.is_empty(), "delivered unconflated");
    let seqs: Vec<u64> = bad.1.iter().filter(|f| f["type"] == "update").filter_map(|f| f["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1), "every update: {seqs:?}");
    w.assert_no_panic();
}
