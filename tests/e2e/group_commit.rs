//! The hub's write path end to end: publishes that arrive together are stored together and sent
//! as one `batch` per socket (group commit), an update is in storage before any client has it,
//! overload is refused at once with 503 `overloaded`, and connects, client frames and closes
//! write nothing to storage (counters follow within `COUNTERS_FLUSH_SECONDS`).

use crate::harness::{seqs, wait_until, Client, Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(5);

fn start(fixture: &Fixture, vars: &[(&str, &str)]) -> Wrangler {
    let mut all = vec![("PUBLISH_TOKEN", PUBLISH_TOKEN)];
    all.extend_from_slice(vars);
    Wrangler::start(fixture, &all)
}

/// Publishes `{"i": first..first+n}` to `channel` from `n` threads at once; returns each
/// answer's status, seq (0 if refused) and `Retry-After` header.
fn publish_together(w: &Wrangler, channel: &str, first: u64, n: u64) -> Vec<(u16, u64, Option<String>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (first..first + n)
            .map(|i| {
                s.spawn(move || {
                    let r = w.post_publish(Some(PUBLISH_TOKEN), &json!({"channel": channel, "data": {"i": i}}));
                    let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                    (r.status, body["seq"].as_u64().unwrap_or(0), r.retry_after, body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (status, seq, retry_after, body) = h.join().expect("publisher thread");
                assert!(status == 202 || status == 503, "unexpected answer {status}: {body}");
                if status == 503 {
                    assert_eq!(body["error"]["code"], "overloaded", "{body}");
                }
                (status, seq, retry_after)
            })
            .collect()
    })
}

/// The raw messages (before unpacking batches) a client received that carry `channel` updates.
fn update_messages<'a>(c: &'a Client, channel: &str) -> Vec<&'a Value> {
    let carries = |f: &Value| f["type"] == "update" && f["channel"] == channel;
    c.ws.seen.iter().filter(|m| carries(m) || m["frames"].as_array().is_some_and(|fs| fs.iter().any(carries))).collect()
}

#[test]
fn publishes_that_arrive_together_go_out_as_one_batch_stored_first() {
    let fixture = Fixture::start();
    // A short linger makes "together" independent of how fast this machine runs the threads.
    let w = start(&fixture, &[("GROUP_COMMIT_LINGER_MS", "300")]);
    assert_eq!(w.publish_seq("news", json!({"i": 0})), 1);
    let mut c = w.client("/ws?channels=news");
    c.catch_up("news", FRAME_WAIT);

    let answers = publish_together(&w, "news", 1, 20);
    let mut assigned: Vec<u64> = answers.iter().map(|a| a.1).collect();
    assigned.sort();
    assert_eq!(assigned, (2..=21).collect::<Vec<_>>(), "each publish got its own seq: {answers:?}");

    // Durable before visible: as each update arrives, storage already holds it.
    let mut got = Vec::new();
    while got.len() < 20 {
        let u = c.expect("news update", FRAME_WAIT, |v| v["type"] == "update" && v["channel"] == "news");
        let key = format!("h:news:{:020}", u["seq"].as_u64().unwrap_or(0));
        let stored = w.stored();
        let value: Value = serde_json::from_str(stored.get(&key).map_or("null", String::as_str)).unwrap_or_default();
        assert_eq!(value["data"], u["data"], "update {} reached a client before storage had it", u["seq"]);
        got.push(u);
    }
    assert_eq!(seqs(&got), (2..=21).collect::<Vec<_>>(), "in seq order, no gaps");
    // Group commit: far fewer messages than updates, at least one of them a batch of several
    // consecutive seqs.
    let messages = update_messages(&c, "news");
    assert!(messages.len() < 10, "{} messages for 20 updates: {messages:#?}", messages.len());
    let batch = messages
        .iter()
        .filter_map(|m| m["frames"].as_array())
        .max_by_key(|f| f.len())
        .unwrap_or_else(|| panic!("no batch: {messages:#?}"));
    let batch_seqs = seqs(batch);
    assert!(batch_seqs.len() >= 5, "{batch_seqs:?}");
    assert!(batch_seqs.windows(2).all(|p| p[1] == p[0] + 1), "consecutive: {batch_seqs:?}");
    let extra = c.collect(Duration::from_millis(500));
    assert!(extra.is_empty(), "duplicates: {extra:#?}");

    // A resume replays exactly what was committed together.
    let mut r = w.client("/ws?channels=news&since=news:1");
    let (ups, sub) = r.catch_up("news", FRAME_WAIT);
    assert_eq!(seqs(&ups), (2..=21).collect::<Vec<_>>());
    assert_eq!(ups, got, "replay differs from what was sent live");
    assert_eq!((&sub["seq"], &sub["recovered"]), (&json!(21), &json!(true)), "{sub}");
    w.assert_no_panic();
}

#[test]
fn past_the_pending_bound_publishes_get_503_and_nothing_accepted_is_lost() {
    let fixture = Fixture::start();
    // A flush waits a second, so updates pile up: at most 3 may wait.
    let w = start(&fixture, &[("GROUP_COMMIT_LINGER_MS", "1000"), ("MAX_PENDING_UPDATES", "3")]);
    assert_eq!(w.publish_seq("news", json!({"i": 0})), 1);
    let mut c = w.client("/ws?channels=news");
    c.catch_up("news", FRAME_WAIT);

    let started = std::time::Instant::now();
    let answers = publish_together(&w, "news", 1, 12);
    assert!(started.elapsed() < Duration::from_secs(10), "publishers waited {:?}", started.elapsed());
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    let mut accepted: Vec<u64> = answers.iter().filter(|a| a.0 == 202).map(|a| a.1).collect();
    assert!(!refused.is_empty(), "nothing refused: {answers:?}");
    assert!(refused.iter().all(|a| a.2.as_deref() == Some("1")), "Retry-After: 1 on every 503: {refused:?}");
    accepted.sort();
    // Refusals happen before sequencing: the accepted publishes hold 2..=N+1 with no hole.
    let want: Vec<u64> = (2..2 + accepted.len() as u64).collect();
    assert_eq!(accepted, want, "{answers:?}");
    let last = *accepted.last().unwrap_or(&1);
    let got = c.updates("news", last, Duration::from_secs(10));
    assert_eq!(seqs(&got), want, "every accepted publish is delivered");

    let overloaded = crate::harness::metric_value(&w.get("/metrics").body, "tickwire_publishes_overloaded_total");
    assert_eq!(overloaded, Some(refused.len() as f64), "refusals are counted");
    w.assert_no_panic();
}

#[test]
fn connects_frames_and_closes_write_nothing_and_counters_follow() {
    let fixture = Fixture::start();
    let w = start(&fixture, &[("COUNTERS_FLUSH_SECONDS", "3")]);
    assert_eq!(w.publish_seq("news", json!({"i": 1})), 1);
    // The publish's own counters ride along or follow within the flush period.
    wait_until("counters stored after the publish", Duration::from_secs(10), || w.stored().contains_key("counters"));
    let before = w.stored();

    let mut clients: Vec<Client> = (0..5).map(|_| w.client("/ws?channels=news")).collect();
    for c in &mut clients {
        c.catch_up("news", FRAME_WAIT);
        c.send_json(&json!({"op": "subscribe", "channels": ["news"]}));
        c.send_text("not json");
        c.expect_error("bad_json", FRAME_WAIT);
    }
    for c in &mut clients[..2] {
        c.close();
    }
    let after = w.stored();
    assert_eq!(after, before, "connects, client frames and closes wrote to storage");

    // Within the flush period the counters reach storage without any other write.
    wait_until("counters flushed by the alarm", Duration::from_secs(10), || {
        let stored = w.stored();
        let counters: Value =
            serde_json::from_str(stored.get("counters").map_or("{}", String::as_str)).unwrap_or_default();
        counters["connections_opened"] == 5 && counters["frames"]["invalid"] == 5
    });
    w.assert_no_panic();
}
