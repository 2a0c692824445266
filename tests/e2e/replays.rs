//! Replays from the attacker's side: one anonymous socket asks for 300 × 8 KiB of history
//! (2.4 MB stored) again and again, by connect and by unsubscribe/subscribe, and gets at most
//! `HISTORY_PAGE_BYTES` per catch-up and `REPLAY_BYTES_PER_10S` per 10 s (1 MiB each by
//! default), while a bystander gets every update published meanwhile, in order. And connects
//! per client address past the platform rate limiter's bound get 429 before any hub is touched.

use crate::harness::{seqs, Client, Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
const MIB: usize = 1 << 20;

/// `{"i": i, "filler": 8 KiB}`: about 8.3 KB stored, so 300 of them are 2.4 MB.
fn value(i: u64) -> Value {
    json!({ "i": i, "filler": "x".repeat(8 * 1024) })
}

/// Unsubscribes `channel`, publishes one update while the socket holds nothing (so it is the
/// latest value the subscribe below may answer with), then subscribes again from `since`: the
/// catch-up (its updates and `subscribed`) and the bytes the socket received for it.
fn resubscribe(w: &Wrangler, c: &mut Client, since: u64, publish: u64) -> (Vec<Value>, Value, usize) {
    c.send_json(&json!({"op": "unsubscribe", "channels": ["big"]}));
    c.expect("unsubscribed", WAIT, |v| v["type"] == "unsubscribed");
    assert_eq!(w.publish_seq("big", value(publish)), publish);
    let before = c.ws.text_bytes;
    c.send_json(&json!({"op": "subscribe", "channels": ["big"], "since": {"big": since}}));
    let (updates, subscribed) = c.catch_up("big", WAIT);
    (updates, subscribed, c.ws.text_bytes - before)
}

#[test]
fn replays_are_bounded_per_catch_up_and_per_socket_while_a_bystander_gets_everything() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)]);
    for i in 1..=300 {
        assert_eq!(w.publish_seq("big", value(i)), i);
    }
    let mut bystander = w.client("/ws?channels=big");
    let (latest, _) = bystander.catch_up("big", WAIT);
    assert_eq!(seqs(&latest), [300]);
    let one = latest[0].to_string().len();

    // A connect resuming from 0: 2.4 MB does not fit one catch-up, so the latest value and
    // `recovered: false`, never part of the history called recovered.
    let mut attacker = w.client("/ws?channels=big&since=big:0");
    let (updates, subscribed) = attacker.catch_up("big", WAIT);
    assert_eq!((seqs(&updates), &subscribed["recovered"]), (vec![300], &json!(false)), "{subscribed}");
    let connect_bytes = attacker.ws.text_bytes;
    assert!(connect_bytes < 2 * one, "{connect_bytes} bytes for one value");

    // The loop: unsubscribe, subscribe from 0, or from a gap that alone would fit. The refused
    // replay spent the socket's window, so every answer is the latest value alone.
    let mut next = 301;
    let (mut loop_bytes, rounds) = (0, 12);
    for round in 0..rounds {
        let since = if round % 2 == 0 { 0 } else { next - 20 };
        let (updates, subscribed, bytes) = resubscribe(&w, &mut attacker, since, next);
        assert_eq!(seqs(&updates), [next], "round {round}: {subscribed}");
        assert_eq!(subscribed["recovered"], false, "round {round}");
        loop_bytes += bytes;
        next += 1;
    }
    assert!(loop_bytes <= rounds * (one + 200), "{loop_bytes} bytes over {rounds} rounds");
    assert!(attacker.ws.largest_text <= MIB, "{}", attacker.ws.largest_text);

    // A socket whose gaps fit (20 updates, 170 KB) is replayed exactly, `recovered: true`,
    // until its window (1 MiB per 10 s) is spent; then the latest value and `recovered: false`.
    let last = next - 1;
    let mut honest = w.client(&format!("/ws?channels=big&since=big:{}", last - 20));
    let (updates, subscribed) = honest.catch_up("big", WAIT);
    assert_eq!(seqs(&updates), (last - 19..=last).collect::<Vec<_>>());
    assert_eq!(subscribed["recovered"], true);
    let mut replayed = honest.ws.text_bytes;
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        let (updates, subscribed, bytes) = resubscribe(&w, &mut honest, next - 20, next);
        let recovered = subscribed["recovered"] == true;
        if recovered {
            assert_eq!(seqs(&updates), (next - 19..=next).collect::<Vec<_>>(), "exactly the gap");
            replayed += bytes;
        } else {
            assert_eq!(seqs(&updates), [next], "the latest value only");
        }
        outcomes.push(recovered);
        next += 1;
    }
    assert_eq!(outcomes.iter().filter(|r| **r).count(), 5, "1 MiB holds six 170 KB replays: {outcomes:?}");
    assert!(outcomes.windows(2).all(|p| p[0] || !p[1]), "cut off for the rest of the window: {outcomes:?}");
    assert!(replayed <= MIB + 6 * 1024, "{replayed} bytes replayed within one window");
    eprintln!(
        "replays: the since=0 connect cost the attacker {connect_bytes} bytes, {rounds} resubscribes \
         {loop_bytes}; the honest socket got {replayed} bytes of replay in one window ({outcomes:?})"
    );

    // The window refills: 10 s later the same gap replays again.
    std::thread::sleep(Duration::from_secs(10));
    let (updates, subscribed, _) = resubscribe(&w, &mut honest, next - 20, next);
    assert_eq!((updates.len(), &subscribed["recovered"]), (20, &json!(true)), "{subscribed}");

    // Two sockets resuming from the same seq while nothing is published share one catch-up:
    // the second is built from the first's, the same frames.
    let mut a = w.client(&format!("/ws?channels=big&since=big:{}", next - 5));
    let (from_a, _) = a.catch_up("big", WAIT);
    let mut b = w.client(&format!("/ws?channels=big&since=big:{}", next - 5));
    let (from_b, sub_b) = b.catch_up("big", WAIT);
    assert_eq!((from_a.len(), &from_b, &sub_b["recovered"]), (5, &from_a, &json!(true)));

    // The bystander got every update, in order, and the attacker is still connected.
    assert_eq!(seqs(&bystander.updates("big", next, WAIT)), (301..=next).collect::<Vec<_>>());
    attacker.ping(WAIT);
    // Each catch-up counted once: the honest socket's 7 replays, the first resume's and the
    // second's shared one; refused: the attacker's connect, its 6 resubscribes from a gap that
    // fits the history, the honest socket's 3; the latest value as asked: the bystander and the
    // attacker's 6 resubscribes from 0 (seq 1 has left the 300 kept by then).
    let outcome = |o: &str| w.metric(&format!("tickwire_catchups_total{{outcome=\"{o}\"}}"));
    let counted = ["replayed", "shared", "too_large", "latest", "withheld"].map(outcome);
    assert_eq!(counted, [8.0, 1.0, 10.0, 7.0, 0.0], "replayed, shared, too_large, latest, withheld");
    w.assert_no_panic();
}

/// A WebSocket upgrade of `/ws?channels=news`, sent by hand so a refusal's body can be read:
/// the status, `Retry-After`, the body (empty for a 101) and the connection, held open.
/// `extra` is more header lines.
fn upgrade(w: &Wrangler, extra: &str) -> (u16, Option<String>, String, TcpStream) {
    let mut tcp = TcpStream::connect(("127.0.0.1", w.port)).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let head = format!(
        "GET /ws?channels=news HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
        w.authority()
    );
    tcp.write_all(head.as_bytes()).expect("upgrade request");
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    let parsed = loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)))
                    .map(|(_, v)| v.trim().to_owned())
            };
            let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
            let length = header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
            if status == 101 || body.len() >= length {
                break (status, header("retry-after"), body.to_owned());
            }
        }
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => panic!("the upgrade's answer ended early: {text:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    };
    (parsed.0, parsed.1, parsed.2, tcp)
}

/// Connects from one address past the limit (5 per 10 s here) are refused with 429 JSON and
/// `Retry-After`, before any hub is touched (the hub counts only the connects let through),
/// while a socket connected before goes on receiving.
#[test]
fn connects_past_the_limit_get_429_and_a_connected_socket_is_unaffected() {
    let fixture = Fixture::start();
    let w = Wrangler::start_with_connect_limit(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)], 5);
    assert_eq!(w.publish_seq("news", json!({"i": 1})), 1);
    let mut first = w.client("/ws?channels=news");
    first.catch_up("news", WAIT);

    let (mut held, mut refused) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        match upgrade(&w, "") {
            (101, _, _, tcp) => held.push(tcp),
            (status, retry, body, _) => refused.push((status, retry, body)),
        }
    }
    // Fixed windows may turn over once during the loop: at most two windows' worth get through.
    let connected = held.len() + 1;
    assert!(!refused.is_empty() && connected <= 10, "{connected} connected, {} refused", refused.len());
    for (status, retry, body) in &refused {
        assert_eq!((*status, retry.as_deref()), (429, Some("10")), "{body}");
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
        assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    }
    let opened = w.metric("tickwire_connections_opened_total");
    assert_eq!(opened as usize, held.len() + 1, "refused connects never reached the hub");
    // Counted per address: another one still connects. (wrangler dev keeps a CF-Connecting-IP
    // the client sent; Cloudflare sets it itself, so there no client can choose its key.)
    let (status, _, body, _other) = upgrade(&w, "CF-Connecting-IP: 203.0.113.9\r\n");
    assert_eq!(status, 101, "{body}");

    assert_eq!(w.publish_seq("news", json!({"i": 2})), 2);
    assert_eq!(seqs(&first.updates("news", 2, WAIT)), [2]);
    first.ping(WAIT);
    w.assert_no_panic();
}
