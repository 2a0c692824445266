//! Client frames and a socket's record at their limits, on the pinned runtime: an oversized
//! frame is refused by its length (text and binary) while a bystander is served, a client's
//! close frame is answered with its code, and a socket holds `MAX_SUBSCRIPTIONS` = 400 names of
//! the longest length in its 16 KiB hibernation attachment.

use crate::harness::{seqs, Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::json;
use std::time::Duration;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

const FRAME_WAIT: Duration = Duration::from_secs(5);

/// `MAX_CLIENT_FRAME_BYTES` is 4096 by default. A frame far over it (1,000,000 bytes, text or
/// binary) closes its socket with 1009, refused by its length before the hub copies it into
/// wasm memory (`frame_size.rs`): the object's memory does not grow. At the edge the exact byte count
/// decides: 1,365 three-byte characters (4,095 bytes) are read, 1,366 (4,098 bytes, fewer
/// UTF-16 units than the limit) close the socket. The object stays healthy: a bystander gets
/// every update, and each refusal is counted as `too_big`.
#[test]
fn an_oversized_frame_is_refused_by_its_length_and_spares_others() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)]);
    assert_eq!(w.publish_seq("news", json!({"i": 1})), 1);
    let mut bystander = w.client("/ws?channels=news");
    bystander.catch_up("news", FRAME_WAIT);
    let too_big = r#"tickwire_connections_closed_total{reason="too_big"}"#;
    let memory = || w.metric(r#"tickwire_shard_wasm_memory_bytes{shard="0"}"#);
    memory(); // the first scrape's own allocations
    let before = memory();

    let mut text = w.client("/ws?channels=news");
    text.send_text(&"x".repeat(1_000_000));
    assert_eq!(text.expect_close(FRAME_WAIT), Some(1009), "{:#?}", text.ws.seen);

    let mut binary = w.client("/ws?channels=news");
    binary.ws.send_binary(vec![b'x'; 1_000_000]);
    assert_eq!(binary.expect_close(FRAME_WAIT), Some(1009), "{:#?}", binary.ws.seen);

    // Neither was copied into the object's memory (a copy grows it by about 1 MB for good).
    let grown = memory() - before;
    assert!(grown < 256.0 * 1024.0, "wasm memory grew by {grown} bytes");

    // A small binary frame is still answered, not closed.
    let mut small = w.client("/ws?channels=");
    small.ws.send_binary(vec![b'x'; 10]);
    small.expect_error("bad_json", FRAME_WAIT);

    let mut edge = w.client("/ws?channels=");
    edge.send_text(&"€".repeat(1365));
    edge.expect_error("bad_json", FRAME_WAIT);
    edge.ping(FRAME_WAIT);
    edge.send_text(&"€".repeat(1366));
    assert_eq!(edge.expect_close(FRAME_WAIT), Some(1009), "{:#?}", edge.ws.seen);

    assert_eq!(w.publish_seq("news", json!({"i": 2})), 2);
    assert_eq!(seqs(&bystander.updates("news", 2, FRAME_WAIT)), [2]);
    small.ping(FRAME_WAIT);
    w.wait_metric(&format!("{too_big} 3"), FRAME_WAIT);
    w.assert_no_panic();
}

/// A client's close frame with code 4000 and a reason is answered with a close frame carrying
/// 4000, and counted as a client close. On workerd 1.20261117 the compatibility flag
/// `web_socket_auto_reply_to_close` (on since the 2026-04-07 date) answers close frames of
/// `accept()`ed sockets only: a hibernatable socket's close is answered by the hub's
/// `webSocketClose` or not at all (a client then waits for its own timeout).
#[test]
fn a_close_frame_is_answered_with_its_code_and_counted() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    let client = r#"tickwire_connections_closed_total{reason="client"}"#;
    let before = w.metric(client);
    let url = format!("ws://{}/ws?channels=btc", w.authority());
    let (mut ws, _) = tungstenite::connect(&url).expect("connect");
    assert!(matches!(ws.read(), Ok(Message::Text(_))), "the welcome first");
    if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
        tcp.set_read_timeout(Some(FRAME_WAIT)).expect("read timeout");
    }
    let frame = CloseFrame { code: CloseCode::from(4000), reason: "x".into() };
    ws.close(Some(frame)).expect("send close");
    let reply = loop {
        match ws.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => continue,
            Err(e) => panic!("no close reply within {FRAME_WAIT:?}: {e}"),
        }
    };
    assert_eq!(reply.map(|f| u16::from(f.code)), Some(4000));
    w.wait_metric(&format!("{client} {}", before + 1.0), FRAME_WAIT);
    w.assert_no_panic();
}

/// 400 subscriptions (the ceiling of `MAX_SUBSCRIPTIONS`) of 32-character names: the socket's
/// attachment (about 14 KB; the runtime takes up to 16 KiB) is saved, and read back on its next
/// frame (the 401st name is refused as over the limit, so the record holds all 400), and the
/// socket gets updates of the last name it took.
#[test]
fn a_socket_holds_400_subscriptions_of_the_longest_names() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("MAX_SUBSCRIPTIONS", "400")]);
    let names: Vec<String> = (0..401).map(|i| format!("{i:0>32}")).collect();
    let mut c = w.client("/ws?channels=");
    // 100 names a frame (3.5 KB, under the 4 KiB frame limit).
    for chunk in names[..400].chunks(100) {
        c.send_json(&json!({"op": "subscribe", "channels": chunk}));
        for name in chunk {
            let (updates, subscribed) = c.catch_up(name, FRAME_WAIT);
            assert!(updates.is_empty() && subscribed["seq"] == 0, "{name}: {subscribed}");
        }
    }
    c.send_json(&json!({"op": "subscribe", "channels": [names[400]]}));
    c.expect_error("too_many_subscriptions", FRAME_WAIT);
    let last = &names[399];
    assert_eq!(w.publish_seq(last, json!({"i": 1})), 1);
    let got = c.expect("the update of the last name", FRAME_WAIT, |v| v["type"] == "update" && v["channel"] == *last);
    assert_eq!(got["data"]["i"], 1);
    // The record stays writable: one name out, another in.
    c.send_json(&json!({"op": "unsubscribe", "channels": [names[0]]}));
    c.expect("unsubscribed", FRAME_WAIT, |v| v["type"] == "unsubscribed");
    c.send_json(&json!({"op": "subscribe", "channels": [names[400]]}));
    c.catch_up(&names[400], FRAME_WAIT);
    let log = w.log();
    assert!(!log.contains("\"attachment_failed\""), "{log}");
    w.assert_no_panic();
}
