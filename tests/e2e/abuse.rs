//! Hostile input, each answered within its documented bound while a bystander socket still gets
//! every update: publish bodies that never announce their size, history that would not fit
//! one answer, a URL full of channel names, binary frames and subscribe storms. (Oversized
//! frames, rate limits and malformed frames: `hub.rs`; 10,000 channel names: `app_channels.rs`.)

use crate::harness::{seqs, Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(5);

/// A chunked publish without `Content-Length` is refused with 413 once it passes
/// `MAX_PUBLISH_BYTES`, while its sender is still sending: the hub reads no further than the
/// cap. The body here never ends, so an answer at all shows the hub stopped reading at the cap
/// (it once read the whole body first; then no answer ever came).
#[test]
fn a_chunked_publish_is_cut_off_at_the_cap() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)]);
    assert_eq!(w.publish_seq("news", json!({"i": 1})), 1);
    let mut bystander = w.client("/ws?channels=news");
    bystander.catch_up("news", FRAME_WAIT);

    let mut tcp = TcpStream::connect(("127.0.0.1", w.port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {PUBLISH_TOKEN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).expect("head");
    // Just past the default cap of 64 KiB (65 chunks of 1 KiB), and then nothing: the chunked
    // body is left open. No more than that is sent, so the server has read all of it when it
    // answers: unread bytes would make it close with a reset, which can discard the answer.
    let chunk = format!("{:x}\r\n{}\r\n", 1024, "x".repeat(1024));
    for _ in 0..65 {
        tcp.write_all(chunk.as_bytes()).expect("chunk");
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("payload_too_large") {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no answer to an endless chunked publish: {e}"),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
    drop(tcp);

    // Nothing was sequenced for it, and the hub goes on: the next publish is seq 2 and reaches
    // the bystander. wrangler dev's proxy (not the Worker) may answer a request or two with its
    // own 503 "restarted mid-request" text while it drops the connection workerd closed on the
    // unread body; those never reach the Worker, and are retried here.
    let mut answers = Vec::new();
    let seq = loop {
        let (status, v) = w.publish("news", json!({"i": 2}));
        if status == 202 {
            break v["seq"].clone();
        }
        assert!(v.as_str().is_some_and(|t| t.contains("restarted mid-request")) && answers.len() < 5, "{v}");
        answers.push(v);
    };
    assert_eq!(seq, 2, "after {answers:?}");
    let ups = bystander.updates("news", 2, FRAME_WAIT);
    assert_eq!(seqs(&ups), [2], "{ups:?}");
    w.assert_no_panic();
}

/// A full history of large updates (300 × 60 KiB, 18 MB stored) is read anonymously in pages of
/// at most `HISTORY_PAGE_BYTES` (1 MiB by default, plus the one update that always fits), each
/// naming the `since` of the next, which together hold every update once, in order. (One answer
/// once carried the whole 18 MB.)
#[test]
fn history_of_large_updates_comes_in_bounded_pages() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)]);
    let filler = "x".repeat(60 * 1024);
    assert_eq!(w.publish_seq("big", json!({"i": 1, "filler": filler})), 1);
    let mut bystander = w.client("/ws?channels=big");
    bystander.catch_up("big", FRAME_WAIT);
    for i in 2..=300 {
        assert_eq!(w.publish_seq("big", json!({"i": i, "filler": filler})), i);
    }

    let (mut since, mut got, mut pages) = (0u64, Vec::new(), 0);
    loop {
        let r = w.get(&format!("/api/history?channel=big&since={since}&limit=300"));
        assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(300)]);
        assert!(r.body.len() <= (1 << 20) + 70 * 1024, "page of {} bytes", r.body.len());
        let v: Value = serde_json::from_str(&r.body).expect("history JSON");
        let updates = v["updates"].as_array().expect("updates");
        assert!(!updates.is_empty(), "page after {since}: {}", v["next"]);
        got.extend(updates.iter().map(|u| (u["seq"].as_u64(), u["data"]["i"].as_u64())));
        pages += 1;
        match v["next"].as_u64() {
            Some(next) => {
                assert_eq!(Some(next), updates.last().and_then(|u| u["seq"].as_u64()), "{}", v["next"]);
                since = next;
            }
            None => break,
        }
    }
    let want: Vec<_> = (1..=300).map(|i| (Some(i), Some(i))).collect();
    assert_eq!(got, want, "every update once, in order");
    assert!(pages >= 17, "18 MB in pages of about 1 MiB, not {pages}");
    assert_eq!(seqs(&bystander.updates("big", 300, FRAME_WAIT)), (2..=300).collect::<Vec<_>>());
    w.assert_no_panic();
}

/// A 16 KB URL of 1,500 channel names nobody published to (plus `news`, which exists) connects:
/// `news` and the first 31 names subscribed (`MAX_SUBSCRIPTIONS`, 32; the others at seq 0), one
/// `too_many_subscriptions` error per further distinct name, nothing more. Binary frames
/// get `bad_json` (and over `MAX_CLIENT_FRAME_BYTES` close the socket with 1009). Forty
/// subscribes to a channel the socket holds, each asking to resume from seq 1, replay nothing:
/// each is answered `subscribed` alone. The bystander gets every update throughout.
#[test]
fn long_urls_binary_frames_and_subscribe_storms_stay_bounded() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)]);
    for i in 1..=5 {
        assert_eq!(w.publish_seq("news", json!({ "i": i })), i);
    }
    let mut bystander = w.client("/ws?channels=news");
    bystander.catch_up("news", FRAME_WAIT);

    let names: Vec<String> = (0..1500).map(|i| format!("missing-{i:04}")).collect();
    let url = format!("/ws?channels=news,{},{}", names.join(","), names[..100].join(","));
    assert!(url.len() > 16_000, "{}", url.len());
    let mut long = w.client(&url);
    let sub = long.expect("subscribed news", FRAME_WAIT, |v| v["type"] == "subscribed");
    assert_eq!((&sub["channel"], &sub["seq"]), (&json!("news"), &json!(5)));
    let rest = long.collect(Duration::from_millis(500));
    let refused = rest.iter().filter(|v| v["type"] == "error" && v["code"] == "too_many_subscriptions").count();
    let empty: Vec<&Value> = rest.iter().filter(|v| v["type"] == "subscribed").collect();
    let updates: Vec<&Value> = rest.iter().filter(|v| v["type"] == "update").collect();
    assert_eq!((refused, empty.len(), updates.len(), rest.len()), (1469, 31, 1, 1501), "one frame per distinct name");
    assert!(empty.iter().all(|v| v["seq"] == 0 && v["channel"].as_str().is_some_and(|c| c.starts_with("missing-"))));
    assert_eq!(updates[0]["seq"], 5);
    assert_eq!(w.publish_seq("news", json!({"i": 6})), 6);
    assert_eq!(seqs(&long.updates("news", 6, FRAME_WAIT)), [6]);

    let mut binary = w.client("/ws?channels=news");
    binary.catch_up("news", FRAME_WAIT);
    binary.ws.send_binary(vec![0xff; 100]);
    binary.expect_error("bad_json", FRAME_WAIT);
    binary.ping(FRAME_WAIT);
    binary.ws.send_binary(vec![0; 4097]);
    assert_eq!(binary.expect_close(FRAME_WAIT), Some(1009));

    let mut storm = w.client("/ws?channels=news");
    storm.catch_up("news", FRAME_WAIT);
    for _ in 0..40 {
        storm.send_json(&json!({"op": "subscribe", "channels": ["news"], "since": {"news": 1}}));
    }
    let answers = storm.collect(Duration::from_secs(2));
    let subscribed = answers.iter().filter(|v| v["type"] == "subscribed" && v["recovered"] == true).count();
    assert_eq!((subscribed, answers.len()), (40, 40), "no replay: {answers:?}");

    assert_eq!(w.publish_seq("news", json!({"i": 7})), 7);
    assert_eq!(seqs(&bystander.updates("news", 7, FRAME_WAIT)), [6, 7]);
    assert_eq!(seqs(&storm.updates("news", 7, FRAME_WAIT)), [7]);
    w.assert_no_panic();
}
