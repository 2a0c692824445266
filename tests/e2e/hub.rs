//! The hub's wire protocol v1 end to end: app-channel publishing, per-socket subscriptions,
//! catch-up and resume with `since` (also across restarts and shards), client limits, and
//! fan-out to 1,000 sockets.

use crate::harness::{metric_value, seqs, Client, Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(5);
/// How long a socket must stay silent to show that nothing more is coming.
const QUIET: Duration = Duration::from_secs(1);

/// A wrangler dev whose publish route accepts the harness token, plus `vars`.
fn start(fixture: &Fixture, vars: &[(&str, &str)]) -> Wrangler {
    let mut all = vec![("PUBLISH_TOKEN", PUBLISH_TOKEN)];
    all.extend_from_slice(vars);
    Wrangler::start(fixture, &all)
}

/// Publishes `{"i": i}` for each i in `from..=to`. The tests use fresh channels, so the assigned
/// seq must equal i: that is the "starts at 1, +1, no gaps" rule seen from the publisher.
fn publish_run(w: &Wrangler, channel: &str, from: u64, to: u64) {
    for i in from..=to {
        assert_eq!(w.publish_seq(channel, json!({ "i": i })), i, "seq of {channel} #{i}");
    }
}

/// Asserts `updates` are exactly seq `from..=to` of `channel`, in order, each with its own data.
fn assert_run(updates: &[Value], channel: &str, from: u64, to: u64) {
    let want: Vec<u64> = (from..=to).collect();
    assert_eq!(seqs(updates), want, "{channel} updates: {updates:#?}");
    for u in updates {
        assert_eq!(u["channel"], channel, "{u}");
        assert_eq!(u["data"]["i"], u["seq"], "data belongs to another update: {u}");
        assert_eq!(u["stale"], false, "{u}");
        assert!(u["ts"].as_u64().is_some_and(|t| t > 0), "{u}");
    }
}

/// Asserts the end marker of a catch-up.
fn assert_subscribed(sub: &Value, channel: &str, seq: u64, recovered: bool) {
    assert_eq!(sub["channel"], channel, "{sub}");
    assert_eq!(sub["seq"], seq, "{sub}");
    assert_eq!(sub["recovered"], recovered, "{sub}");
    assert!(sub["epoch"].as_str().is_some_and(|e| !e.is_empty()), "{sub}");
}

/// Percent-encodes an epoch for the `since` query parameter (its alphabet is the server's).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Connects with `channels=news&since=<since>` and returns the news catch-up.
fn resume(w: &Wrangler, query: &str) -> (Vec<Value>, Value) {
    let mut c = w.client(&format!("/ws?channels=news&{query}"));
    c.catch_up("news", FRAME_WAIT)
}

#[test]
fn each_socket_gets_only_its_channels() {
    let fixture = Fixture::start();
    let w = start(&fixture, &[]);

    // Only app channels may be published, and only with the token; refusals use no seq.
    let (status, body) = w.publish("btc", json!({"price_usd": 1.0}));
    assert_eq!(status, 403, "built-in channel: {body}");
    publish_run(&w, "news", 1, 1);
    for token in [None, Some("wrong-token")] {
        let r = w.post_publish(token, &json!({"channel": "news", "data": {"i": 99}}));
        assert!(matches!(r.status, 401 | 403), "token {token:?}: {r:?}");
    }
    // "live": a query that merely contains a word must not pick a route (f8fc72b shipped a
    // debugging route matched that way).
    publish_run(&w, "live", 1, 1);

    let mut news = w.client("/ws?channels=news");
    let mut live = w.client("/ws?channels=live");
    let mut both = w.client("/ws?channels=news,live");
    // No `channels` parameter: the four built-ins, which have no value yet (no cron ran).
    let mut default = w.client("/ws");
    let conns: std::collections::BTreeSet<String> = [&news, &live, &both, &default]
        .iter()
        .map(|c| c.welcome["conn"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(conns.len(), 4, "each connection has its own id: {conns:?}");
    for (c, channel) in [(&mut news, "news"), (&mut live, "live")] {
        let (ups, sub) = c.catch_up(channel, FRAME_WAIT);
        assert_run(&ups, channel, 1, 1);
        assert_subscribed(&sub, channel, 1, false);
    }
    for channel in ["news", "live"] {
        let (ups, sub) = both.catch_up(channel, FRAME_WAIT);
        assert_run(&ups, channel, 1, 1);
        assert_subscribed(&sub, channel, 1, false);
    }
    for channel in ["btc", "market", "sentiment", "indicators"] {
        let (ups, sub) = default.catch_up(channel, FRAME_WAIT);
        assert!(ups.is_empty(), "{ups:?}");
        // Not assert_subscribed: a channel with no state yet may have no epoch either.
        assert_eq!((&sub["seq"], &sub["recovered"]), (&json!(0), &json!(false)), "{sub}");
    }

    // Interleaved, so a socket that got the wrong channel would see it between its own.
    for i in 2..=6 {
        publish_run(&w, "news", i, i);
        publish_run(&w, "live", i, i);
    }
    assert_run(&news.updates("news", 6, FRAME_WAIT), "news", 2, 6);
    assert_run(&live.updates("live", 6, FRAME_WAIT), "live", 2, 6);
    assert_run(&both.updates("news", 6, FRAME_WAIT), "news", 2, 6);
    assert_run(&both.updates("live", 6, FRAME_WAIT), "live", 2, 6);
    for c in [&mut news, &mut live, &mut both, &mut default] {
        let extra = c.collect(QUIET);
        assert!(extra.is_empty(), "frames for other channels: {extra:#?}");
    }
    w.assert_no_panic();
}

#[test]
fn concurrent_publishes_arrive_in_order_without_gaps() {
    concurrent_publishes_in_order(&[], "/ws?channels=news");
}

/// The same on a replica shard: what the sequencer fans out arrives there in seq order with no
/// gap. (The hub also sends fan-outs one at a time, because two in flight could arrive swapped
/// on Cloudflare; the local runtime happens to keep them in order, so this cannot show that.)
#[test]
fn concurrent_publishes_reach_a_replica_shard_in_order() {
    concurrent_publishes_in_order(&[("HUB_SHARDS", "3")], "/ws?shard=2&channels=news");
}

fn concurrent_publishes_in_order(vars: &[(&str, &str)], socket: &str) {
    let fixture = Fixture::start();
    let w = start(&fixture, vars);
    publish_run(&w, "news", 1, 1); // the channel exists once published
    let mut c = w.client(socket);
    let (ups, _) = c.catch_up("news", FRAME_WAIT);
    assert_run(&ups, "news", 1, 1);

    // 200 publishes from 4 threads at once: the sequencer must still hand out 2..=201 once
    // each, and delivery must follow seq order, not arrival order.
    let mut assigned: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let w = &w;
                s.spawn(move || {
                    (0..50u64)
                        .map(|k| {
                            let index = 1000 + t * 50 + k;
                            (w.publish_seq("news", json!({ "i": index })), index)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("publisher thread")).collect()
    });
    assigned.sort();
    let want: Vec<u64> = (2..=201).collect();
    assert_eq!(assigned.iter().map(|a| a.0).collect::<Vec<_>>(), want);

    let got = c.updates("news", 201, Duration::from_secs(30));
    assert_eq!(seqs(&got), want, "gap or reordering");
    for (u, (seq, index)) in got.iter().zip(&assigned) {
        assert_eq!((&u["seq"], &u["data"]["i"]), (&json!(seq), &json!(index)), "{u}");
    }
    let extra = c.collect(QUIET);
    assert!(extra.is_empty(), "duplicates: {extra:#?}");
    w.assert_no_panic();
}

#[test]
fn resume_replays_exactly_the_missed_updates() {
    let fixture = Fixture::start();
    let w = start(&fixture, &[]);
    publish_run(&w, "news", 1, 1);
    let mut c = w.client("/ws?channels=news");
    let (ups, _) = c.catch_up("news", FRAME_WAIT);
    assert_run(&ups, "news", 1, 1);
    publish_run(&w, "news", 2, 10);
    assert_run(&c.updates("news", 10, FRAME_WAIT), "news", 2, 10);
    c.close();

    publish_run(&w, "news", 11, 30);
    let mut r = w.client("/ws?channels=news&since=news:10");
    let (ups, sub) = r.catch_up("news", FRAME_WAIT);
    assert_run(&ups, "news", 11, 30);
    assert_subscribed(&sub, "news", 30, true);
    // Caught up, then live: the next publish follows with nothing repeated in between.
    publish_run(&w, "news", 31, 31);
    assert_run(&r.updates("news", 31, FRAME_WAIT), "news", 31, 31);
    let extra = r.collect(QUIET);
    assert!(extra.is_empty(), "{extra:#?}");
    w.assert_no_panic();
}

#[test]
fn since_outside_the_history_falls_back_to_the_latest() {
    let fixture = Fixture::start();
    let w = start(&fixture, &[("HISTORY_LEN", "5")]);
    publish_run(&w, "news", 1, 20); // history keeps 16..=20

    // Within the history (the oldest resumable point is 15: 16..=20 are all kept).
    let (ups, sub) = resume(&w, "since=news:17");
    assert_run(&ups, "news", 18, 20);
    assert_subscribed(&sub, "news", 20, true);
    let epoch = sub["epoch"].as_str().unwrap_or_default().to_owned();
    assert_ne!(epoch, "deadbeef");
    let (ups, sub) = resume(&w, "since=news:15");
    assert_run(&ups, "news", 16, 20);
    assert_subscribed(&sub, "news", 20, true);
    let (ups, sub) = resume(&w, "since=news:20");
    assert!(ups.is_empty(), "already current: {ups:#?}");
    assert_subscribed(&sub, "news", 20, true);
    // The epoch the server announced is the one it accepts back.
    let (ups, sub) = resume(&w, &format!("since=news:17@{}", enc(&epoch)));
    assert_run(&ups, "news", 18, 20);
    assert_subscribed(&sub, "news", 20, true);
    assert_eq!(sub["epoch"], epoch.as_str());

    // Not resumable: too old (3, and 14 whose successor 15 is gone), ahead of the channel,
    // or from another epoch. Each gets just the latest value and recovered:false.
    for since in ["news:3", "news:14", "news:999", "news:18@deadbeef"] {
        let (ups, sub) = resume(&w, &format!("since={since}"));
        assert_run(&ups, "news", 20, 20);
        assert_subscribed(&sub, "news", 20, false);
    }
    w.assert_no_panic();
}

#[test]
fn subscribe_and_unsubscribe_after_connect() {
    let fixture = Fixture::start();
    let w = start(&fixture, &[]);
    publish_run(&w, "news", 1, 3);
    publish_run(&w, "alerts", 1, 2);

    // `channels=` (empty): subscribed to nothing, so neither catch-up nor live updates.
    let mut c = w.client("/ws?channels=");
    publish_run(&w, "news", 4, 4);
    let extra = c.collect(QUIET);
    assert!(extra.is_empty(), "unsubscribed socket got {extra:#?}");

    c.send_json(&json!({"op": "subscribe", "channels": ["news"], "since": {"news": 2}}));
    let (ups, sub) = c.catch_up("news", FRAME_WAIT);
    assert_run(&ups, "news", 3, 4);
    assert_subscribed(&sub, "news", 4, true);
    publish_run(&w, "news", 5, 5);
    assert_run(&c.updates("news", 5, FRAME_WAIT), "news", 5, 5);
    // Asking again for a channel it holds replays nothing (it has had every update live): only
    // `subscribed` at the current seq, however far back `since` points.
    c.send_json(&json!({"op": "subscribe", "channels": ["news", "news"], "since": {"news": 1}}));
    let (ups, sub) = c.catch_up("news", FRAME_WAIT);
    assert!(ups.is_empty(), "a held channel was replayed: {ups:#?}");
    assert_subscribed(&sub, "news", 5, true);

    c.send_json(&json!({"op": "subscribe", "channels": ["alerts"]}));
    let (ups, sub) = c.catch_up("alerts", FRAME_WAIT);
    assert_run(&ups, "alerts", 2, 2);
    assert_subscribed(&sub, "alerts", 2, false);
    let epoch = sub["epoch"].clone();

    // Unsubscribe, miss an update, come back with the object form of `since`: alerts 3 must
    // arrive exactly once, as catch-up (a live copy after `unsubscribed` would show twice).
    c.send_json(&json!({"op": "unsubscribe", "channels": ["alerts"]}));
    c.expect("unsubscribed alerts", FRAME_WAIT, |v| v["type"] == "unsubscribed" && v["channel"] == "alerts");
    publish_run(&w, "alerts", 3, 3);
    c.send_json(&json!({"op": "subscribe", "channels": ["alerts"],
        "since": {"alerts": {"seq": 2, "epoch": epoch}}}));
    let (ups, sub) = c.catch_up("alerts", FRAME_WAIT);
    assert_run(&ups, "alerts", 3, 3);
    assert_subscribed(&sub, "alerts", 3, true);

    // One op, two channels: one `unsubscribed` each, then silence for both.
    c.send_json(&json!({"op": "unsubscribe", "channels": ["news", "alerts"]}));
    for ch in ["news", "alerts"] {
        c.expect(&format!("unsubscribed {ch}"), FRAME_WAIT, |v| v["type"] == "unsubscribed" && v["channel"] == ch);
    }
    publish_run(&w, "news", 6, 6);
    publish_run(&w, "alerts", 4, 4);
    let extra = c.collect(QUIET);
    assert!(extra.is_empty(), "updates after unsubscribe: {extra:#?}");
    c.ping(FRAME_WAIT);
    w.assert_no_panic();
}

#[test]
fn sequence_and_resume_survive_a_restart() {
    let fixture = Fixture::start();
    let mut w = start(&fixture, &[]);
    publish_run(&w, "news", 1, 5);
    let (_, sub) = resume(&w, "");
    let epoch = sub["epoch"].as_str().unwrap_or_default().to_owned();

    w.restart();
    // Storage persisted, so the history and the epoch did too: resume with or without it.
    for query in ["since=news:3".to_owned(), format!("since=news:3@{}", enc(&epoch))] {
        let (ups, sub) = resume(&w, &query);
        assert_run(&ups, "news", 4, 5);
        assert_subscribed(&sub, "news", 5, true);
        assert_eq!(sub["epoch"], epoch.as_str(), "epoch changed across restart");
    }
    let mut c = w.client("/ws?channels=news&since=news:5");
    let (ups, _) = c.catch_up("news", FRAME_WAIT);
    assert!(ups.is_empty(), "{ups:#?}");
    publish_run(&w, "news", 6, 6);
    assert_run(&c.updates("news", 6, FRAME_WAIT), "news", 6, 6);
    w.assert_no_panic();
}

/// Publishes the next news update and asserts the bystander gets it: bad input on another
/// socket must not cost anyone else their feed.
fn bystander_served(w: &Wrangler, bystander: &mut Client, next: &mut u64) {
    publish_run(w, "news", *next, *next);
    let got = bystander.updates("news", *next, FRAME_WAIT);
    assert_run(&got, "news", *next, *next);
    *next += 1;
}

#[test]
fn bad_client_input_gets_its_answer_and_spares_others() {
    let fixture = Fixture::start();
    let w = start(&fixture, &[("MAX_SUBSCRIPTIONS", "3"), ("CLIENT_MSGS_PER_10S", "10")]);
    for ch in ["news", "alerts", "sports", "weather"] {
        publish_run(&w, ch, 1, 1);
    }
    let mut bystander = w.client("/ws?channels=news");
    bystander.catch_up("news", FRAME_WAIT);
    let mut next = 2;
    // Each case gets a fresh socket, so the message rate limit only ever trips in its own case.
    let fresh = || w.client("/ws?channels=");
    let subscribe = |ch: &str| json!({"op": "subscribe", "channels": [ch]});

    // Frame size: exactly MAX_CLIENT_FRAME_BYTES (4096) is read (and is not JSON); one more
    // byte closes the socket with 1009.
    let mut c = fresh();
    c.send_text(&"x".repeat(4096));
    c.expect_error("bad_json", FRAME_WAIT);
    c.ping(FRAME_WAIT);
    c.send_text(&format!("{{\"op\":\"subscribe\",\"pad\":\"{}\"}}", "x".repeat(4097)));
    assert_eq!(c.expect_close(FRAME_WAIT), Some(1009), "{:#?}", c.ws.seen);
    bystander_served(&w, &mut bystander, &mut next);

    // Each refused frame gets its error code, and the socket still works afterwards.
    let since = |v: Value| json!({"op": "subscribe", "channels": ["news"], "since": {"news": v}});
    let cases = [
        ("bad_json", r#"{"op":"subscribe","#.to_owned()),
        ("unknown_op", json!({"op": "dance"}).to_string()),
        ("invalid_channel", subscribe("BAD NAME").to_string()),
        ("invalid_since", since(json!("eleven")).to_string()),
        ("invalid_since", since(json!(-3)).to_string()),
    ];
    for (code, frame) in cases {
        let mut c = fresh();
        c.send_text(&frame);
        c.expect_error(code, FRAME_WAIT);
        c.ping(FRAME_WAIT);
        c.send_json(&subscribe("alerts"));
        let (ups, sub) = c.catch_up("alerts", FRAME_WAIT);
        assert_run(&ups, "alerts", 1, 1);
        assert_subscribed(&sub, "alerts", 1, false);
        bystander_served(&w, &mut bystander, &mut next);
    }

    // MAX_SUBSCRIPTIONS=3: a fourth is refused; the three keep working, and after an
    // unsubscribe there is room again.
    let mut c = fresh();
    for ch in ["news", "alerts", "sports"] {
        c.send_json(&subscribe(ch));
        c.catch_up(ch, FRAME_WAIT);
    }
    c.send_json(&subscribe("weather"));
    c.expect_error("too_many_subscriptions", FRAME_WAIT);
    let seq = next;
    bystander_served(&w, &mut bystander, &mut next);
    assert_run(&c.updates("news", seq, FRAME_WAIT), "news", seq, seq);
    c.send_json(&json!({"op": "unsubscribe", "channels": ["sports"]}));
    c.expect("unsubscribed sports", FRAME_WAIT, |v| v["type"] == "unsubscribed");
    c.send_json(&subscribe("weather"));
    let (_, sub) = c.catch_up("weather", FRAME_WAIT);
    assert_subscribed(&sub, "weather", 1, false);

    // CLIENT_MSGS_PER_10S=10: ten messages are served, the eleventh gets rate_limited and the
    // socket is closed with 4029. Sent back to back, so all fall in one 10 s window.
    let mut c = fresh();
    for i in 0..11 {
        let op = if i % 2 == 0 { "subscribe" } else { "unsubscribe" };
        c.ws.try_send_text(&json!({"op": op, "channels": ["alerts"]}).to_string());
    }
    c.expect_error("rate_limited", FRAME_WAIT);
    assert_eq!(c.expect_close(FRAME_WAIT), Some(4029), "{:#?}", c.ws.seen);
    // The frames left unread are the answers to the ten served messages.
    let answered = c.collect(Duration::ZERO);
    let count = |t: &str| answered.iter().filter(|v| v["type"] == t).count();
    assert_eq!((count("subscribed"), count("unsubscribed")), (5, 5), "{answered:#?}");
    bystander_served(&w, &mut bystander, &mut next);
    // The limit is the socket's, not the address's: a new socket from here is served.
    let mut c = fresh();
    c.send_json(&subscribe("alerts"));
    c.catch_up("alerts", FRAME_WAIT);

    let extra = bystander.collect(QUIET);
    assert!(extra.is_empty(), "bystander got {extra:#?}");
    w.assert_no_panic();
}

#[test]
fn a_thousand_sockets_each_get_every_update() {
    const N: usize = 1000;
    let fixture = Fixture::start();
    let w = start(&fixture, &[]);
    publish_run(&w, "news", 1, 1);
    // Sequential connects; each reads only its welcome, the catch-up waits in the socket buffer.
    let mut clients: Vec<Client> = (0..N).map(|_| w.client("/ws?channels=news")).collect();
    w.wait_metric(&format!("tickwire_sockets_connected {N}"), FRAME_WAIT);

    publish_run(&w, "news", 2, 21);
    for (i, c) in clients.iter_mut().enumerate() {
        let (ups, sub) = c.catch_up("news", Duration::from_secs(30));
        assert_run(&ups, "news", 1, 1);
        assert_subscribed(&sub, "news", 1, false);
        let got = c.updates("news", 21, Duration::from_secs(30));
        assert_eq!(seqs(&got), (2..=21).collect::<Vec<_>>(), "client {i}");
    }
    w.assert_no_panic();
}

#[test]
fn shards_agree_on_seq_and_resume_across_shards() {
    let fixture = Fixture::start();
    let w = start(&fixture, &[("HUB_SHARDS", "4")]);
    publish_run(&w, "news", 1, 1);
    // One socket pinned to each replica shard, plus one the Worker places at random; and a crowd
    // that asks for the sequencer, which `?shard=0` must not grant when other shards exist.
    let mut clients: Vec<Client> = (1..4)
        .map(|k| w.client(&format!("/ws?shard={k}&channels=news")))
        .chain([w.client("/ws?channels=news")])
        .collect();
    let mut crowd: Vec<Client> = (0..12).map(|_| w.client("/ws?shard=0&channels=news")).collect();
    let mut epochs = Vec::new();
    for c in clients.iter_mut().chain(&mut crowd) {
        let (ups, sub) = c.catch_up("news", FRAME_WAIT);
        assert_run(&ups, "news", 1, 1);
        assert_subscribed(&sub, "news", 1, false);
        epochs.push(sub["epoch"].clone());
    }
    assert!(epochs.windows(2).all(|p| p[0] == p[1]), "one epoch per channel: {epochs:?}");
    let epoch = epochs[0].as_str().unwrap_or_default().to_owned();
    w.wait_metric("tickwire_sockets_connected 16", FRAME_WAIT);
    // The pinned sockets really are on three different objects, and the crowd was spread.
    let metrics = w.get("/metrics").body;
    let on_shard =
        |k: u32| metric_value(&metrics, &format!("tickwire_shard_sockets_connected{{shard=\"{k}\"}}")).unwrap_or(0.0);
    for k in 1..4 {
        assert!(on_shard(k) >= 1.0, "shard {k} holds no socket:\n{metrics}");
    }
    assert!(on_shard(0) < 12.0, "?shard=0 pinned the crowd on the sequencer:\n{metrics}");
    for mut c in crowd {
        c.close();
    }
    w.wait_metric("tickwire_sockets_connected 4", FRAME_WAIT);

    // The same update is the same frame (seq, ts, data) on every shard.
    publish_run(&w, "news", 2, 11);
    let runs: Vec<Vec<Value>> = clients.iter_mut().map(|c| c.updates("news", 11, FRAME_WAIT)).collect();
    assert_run(&runs[0], "news", 2, 11);
    for run in &runs[1..] {
        assert_eq!(run, &runs[0], "shards disagree");
    }

    // Leave shard 1 at seq 11, miss 12..=20, come back on shard 3 (and on shard 2 without the
    // epoch): exactly the missed updates, from a shard that never served this client.
    let mut gone = clients.remove(0);
    gone.close();
    drop(gone);
    w.wait_metric("tickwire_sockets_connected 3", FRAME_WAIT);
    publish_run(&w, "news", 12, 20);
    for query in [format!("shard=3&since=news:11@{}", enc(&epoch)), "shard=2&since=news:11".to_owned()] {
        let mut c = w.client(&format!("/ws?channels=news&{query}"));
        let (ups, sub) = c.catch_up("news", FRAME_WAIT);
        assert_run(&ups, "news", 12, 20);
        assert_subscribed(&sub, "news", 20, true);
        assert_eq!(sub["epoch"], epoch.as_str(), "{query}");
        clients.push(c);
    }
    w.wait_metric("tickwire_sockets_connected 5", FRAME_WAIT);
    publish_run(&w, "news", 21, 21);
    for c in &mut clients[..3] {
        let got = c.updates("news", 21, FRAME_WAIT);
        assert_eq!(seqs(&got), (12..=21).collect::<Vec<_>>());
    }
    for c in &mut clients[3..] {
        assert_run(&c.updates("news", 21, FRAME_WAIT), "news", 21, 21);
    }
    w.assert_no_panic();
}
