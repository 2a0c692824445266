//! Private channels and tokens, from the attacker's side: an anonymous or under-capable socket
//! or request gets nothing of a `private-` channel, forged and expired tokens are refused
//! before anything is opened, an expired socket receives no private frame, and a bystander
//! with the right token gets every update throughout.

use crate::harness::{
    claims, jose, now_s, seqs, token, token_with, Client, Fixture, Wrangler, PUBLISH_TOKEN, TOKEN_SECRET,
};
use serde_json::{json, Value};
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(5);
/// Long enough for a frame that was going to arrive to have arrived.
const QUIET: Duration = Duration::from_millis(1500);

fn vars() -> Vec<(&'static str, &'static str)> {
    vec![("PUBLISH_TOKEN", PUBLISH_TOKEN), ("TOKEN_SECRET", TOKEN_SECRET)]
}

/// Frames of `channel` among `frames`.
fn of<'a>(frames: &'a [Value], channel: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["channel"] == channel).collect()
}

fn auth(c: &mut Client, token: &str) -> Value {
    c.send_json(&json!({"op": "auth", "token": token}));
    c.expect("authed or error", FRAME_WAIT, |v| v["type"] == "authed" || v["type"] == "error")
}

fn publish_all(w: &Wrangler, channel: &str, n: std::ops::RangeInclusive<u64>) {
    for i in n {
        assert_eq!(w.publish_seq(channel, json!({ "i": i })), i);
    }
}

#[test]
fn private_channels_open_only_to_tokens_that_grant_them() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &vars());
    let reader = token("reader", json!({"private-a": ["subscribe"], "private-room-*": ["subscribe"]}), 3600);
    let mut bystander = w.client(&format!("/ws?channels=private-a,private-room-7&token={reader}"));
    assert_eq!(bystander.expect("authed", FRAME_WAIT, |v| v["type"] == "authed")["sub"], "reader");
    bystander.catch_up("private-a", FRAME_WAIT);
    bystander.catch_up("private-room-7", FRAME_WAIT);

    // Anonymous: refused at connect and by the subscribe op, with the channel named.
    let mut anon = w.client("/ws?channels=private-a");
    let e = anon.expect_error("unauthorized", FRAME_WAIT);
    assert_eq!(e["channel"], "private-a");
    anon.send_json(&json!({"op": "subscribe", "channels": ["private-a"], "since": {"private-a": 0}}));
    anon.expect_error("unauthorized", FRAME_WAIT);
    // A token for private-b does not open private-a.
    let b = token("bee", json!({"private-b": ["subscribe", "history"]}), 3600);
    let mut other = w.client(&format!("/ws?channels=private-a,private-b&token={b}"));
    assert_eq!(other.expect_error("forbidden", FRAME_WAIT)["channel"], "private-a");
    other.catch_up("private-b", FRAME_WAIT);
    // A prefix opens the names under it, and only those.
    let room = token("roomie", json!({"private-room-*": ["subscribe"]}), 3600);
    let mut roomie = w.client(&format!("/ws?channels=&token={room}"));
    roomie.send_json(&json!({"op": "subscribe", "channels": ["private-room-7", "private-roomx"]}));
    assert_eq!(roomie.expect_error("forbidden", FRAME_WAIT)["channel"], "private-roomx");
    roomie.catch_up("private-room-7", FRAME_WAIT);

    publish_all(&w, "private-a", 1..=5);
    publish_all(&w, "private-roomx", 1..=3);
    publish_all(&w, "private-room-7", 1..=2);
    assert_eq!(seqs(&bystander.updates("private-a", 5, FRAME_WAIT)), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(&bystander.updates("private-room-7", 2, FRAME_WAIT)), [1, 2]);
    let anon_got = anon.collect(QUIET);
    assert!(anon_got.iter().all(|f| f["type"] != "update"), "the anonymous socket got {anon_got:?}");
    let other_got = other.collect(QUIET);
    assert!(of(&other_got, "private-a").is_empty(), "the private-b socket got {other_got:?}");
    let roomie_got = roomie.collect(QUIET);
    assert!(of(&roomie_got, "private-roomx").is_empty(), "{roomie_got:?}");
    assert_eq!(of(&roomie_got, "private-room-7").len(), 2, "{roomie_got:?}");

    // History: anonymous 401, a token without `history` on the channel 403, with it 200.
    let path = "/api/history?channel=private-a&since=0";
    let r = w.get(path);
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (401, json!("unauthorized")), "{}", r.body);
    for t in [&b, &reader] {
        let r = w.get_bearer(path, t);
        assert_eq!((r.status, r.json()["error"]["code"].clone()), (403, json!("forbidden")), "{}", r.body);
    }
    let historian = token("historian", json!({"private-*": ["history"]}), 3600);
    let r = w.get_bearer(path, &historian);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(seqs(r.json()["updates"].as_array().expect("updates")), [1, 2, 3, 4, 5]);
    let r = w.get_bearer(path, &token("late", json!({"*": ["history"]}), -3600));
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (401, json!("token_expired")), "{}", r.body);
    // Public channels stay public.
    publish_all(&w, "news", 1..=1);
    assert_eq!(w.get("/api/history?channel=news").status, 200);
    // Presence channels follow the same rules.
    anon.send_json(&json!({"op": "subscribe", "channels": ["presence-room"]}));
    assert_eq!(anon.expect_error("unauthorized", FRAME_WAIT)["channel"], "presence-room");
    // Nobody learns private channels' names: not from the channel list, not from /metrics.
    let listed = w.get("/api/channels").body;
    assert!(listed.contains("\"news\"") && !listed.contains("private-"), "{listed}");
    let metrics = w.get("/metrics").body;
    assert!(!metrics.contains("private-"), "a private channel's name in /metrics");
    assert!(metrics.contains("tickwire_updates_published_total{channel=\"(private)\"} 10\n"), "{metrics}");

    let log = w.log();
    for t in [&reader, &b, &room, &historian] {
        assert!(!log.contains(t.as_str()), "a token is in the log");
    }
    w.assert_no_panic();
}

#[test]
fn forged_expired_and_foreign_tokens_are_refused_and_a_standard_library_token_works() {
    const OLD: &str = "the-previous-secret-0123456789abcdef";
    const STRANGER: &str = "somebody-elses-secret-0123456789abcd";
    let fixture = Fixture::start();
    let mut v = vars();
    v.push(("TOKEN_SECRET_PREVIOUS", OLD));
    let w = Wrangler::start(&fixture, &v);
    let caps = json!({"private-a": ["subscribe"]});
    let opens = |t: &str| {
        let mut c = w.client(&format!("/ws?channels=private-a&token={t}"));
        let authed = c.expect("authed", FRAME_WAIT, |v| v["type"] == "authed");
        c.catch_up("private-a", FRAME_WAIT);
        (authed, c)
    };
    // jose, a standard JWT library, signs with the current secret and with the previous one.
    let (authed, mut by_jose) = opens(&jose("HS256", &claims("jo", caps.clone(), 600), TOKEN_SECRET));
    assert_eq!(authed["sub"], "jo");
    let (_, mut rotated) = opens(&jose("HS256", &claims("ro", caps.clone(), 600), OLD));

    let good = token("u1", caps.clone(), 600);
    let mut flipped = good.clone().into_bytes();
    let i = flipped.len() - 3;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ASCII");
    let nbf = {
        let mut c = claims("early", caps.clone(), 3600);
        c["nbf"] = json!(now_s() + 600);
        jose("HS256", &c, TOKEN_SECRET)
    };
    let refused = [
        (jose("none", &claims("x", caps.clone(), 600), ""), "unauthorized", "algorithm"),
        (jose("HS384", &claims("x", caps.clone(), 600), TOKEN_SECRET), "unauthorized", "algorithm"),
        (jose("HS256", &claims("x", caps.clone(), 600), STRANGER), "unauthorized", "signature"),
        (flipped, "unauthorized", "signature"),
        (token_with(TOKEN_SECRET, "x", caps.clone(), -600), "token_expired", "expired"),
        (nbf, "unauthorized", "not_yet_valid"),
        ("not.a.token".to_owned(), "unauthorized", "malformed"),
    ];
    for (t, code, _) in &refused {
        let (status, body) = w.ws_refused(&format!("/ws?channels=private-a&token={t}"));
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some(*code)), "{body}");
        assert!(!body.to_string().contains(t.as_str()), "the token is quoted back: {body}");
    }
    // The same tokens in the auth op: an error frame, and the socket keeps its public channels.
    let mut open = w.client("/ws?channels=news");
    open.catch_up("news", FRAME_WAIT);
    for (t, code, _) in &refused {
        let e = auth(&mut open, t);
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some(*code)), "{e}");
    }
    publish_all(&w, "private-a", 1..=2);
    publish_all(&w, "news", 1..=1);
    assert_eq!(seqs(&open.updates("news", 1, FRAME_WAIT)), [1]);
    assert!(of(&open.collect(QUIET), "private-a").is_empty());
    assert_eq!(seqs(&by_jose.updates("private-a", 2, FRAME_WAIT)), [1, 2]);
    assert_eq!(seqs(&rotated.updates("private-a", 2, FRAME_WAIT)), [1, 2]);

    // Counted by reason, each refusal twice (connect and auth op); no token in a label.
    let metrics = w.get("/metrics").body;
    for (reason, n) in
        [("algorithm", 4.0), ("signature", 4.0), ("expired", 2.0), ("not_yet_valid", 2.0), ("malformed", 2.0)]
    {
        assert_eq!(w.metric(&format!("tickwire_auth_failures_total{{reason=\"{reason}\"}}")), n, "{reason}");
    }
    assert!(!metrics.contains(&good), "a token in /metrics");
    let health = w.get("/health").json();
    assert_eq!(health["tokens"], json!({"configured": true, "rotating": true, "secret_too_short": false}));
    let log = w.log();
    assert!(refused.iter().all(|(t, _, _)| !log.contains(t.as_str())), "a token is in the log");
    w.assert_no_panic();
}

#[test]
fn an_expired_socket_gets_no_private_frame_and_auth_then_since_resumes_without_loss() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &vars());
    let caps = json!({"private-a": ["subscribe", "history"]});
    // Valid for about 3 s more: exp is 27 s ago, and the hub allows 30 s of leeway.
    let short = token("u1", caps.clone(), -27);
    let mut c = w.client(&format!("/ws?channels=private-a,news&token={short}"));
    let exp = c.expect("authed", FRAME_WAIT, |v| v["type"] == "authed")["exp"].as_u64().expect("exp");
    c.catch_up("private-a", FRAME_WAIT);
    c.catch_up("news", FRAME_WAIT);
    let bystander_token = token("b", caps.clone(), 3600);
    let mut bystander = w.client(&format!("/ws?channels=private-a&token={bystander_token}"));
    bystander.catch_up("private-a", FRAME_WAIT);
    publish_all(&w, "private-a", 1..=3);
    assert_eq!(seqs(&c.updates("private-a", 3, FRAME_WAIT)), [1, 2, 3]);

    while now_s() <= exp + 30 {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1100)); // the hub's clock is whole seconds too
    publish_all(&w, "private-a", 4..=6);
    publish_all(&w, "news", 1..=1);
    let ended = c.expect("unsubscribed", FRAME_WAIT, |v| v["type"] == "unsubscribed");
    assert_eq!(ended, json!({"type": "unsubscribed", "channel": "private-a", "reason": "token_expired"}));
    assert_eq!(seqs(&c.updates("news", 1, FRAME_WAIT)), [1], "public channels go on");
    let after = c.collect(QUIET);
    assert!(of(&after, "private-a").is_empty(), "a private frame after expiry: {after:?}");

    // A fresh token and a resume from the last seq seen: 4..6 exactly once, then live.
    let fresh = token("u1", caps, 3600);
    assert_eq!(auth(&mut c, &fresh)["type"], "authed");
    c.send_json(&json!({"op": "subscribe", "channels": ["private-a"], "since": {"private-a": 3}}));
    let (replayed, subscribed) = c.catch_up("private-a", FRAME_WAIT);
    assert_eq!((seqs(&replayed), subscribed["recovered"].clone()), (vec![4, 5, 6], json!(true)));
    publish_all(&w, "private-a", 7..=7);
    assert_eq!(seqs(&c.updates("private-a", 7, FRAME_WAIT)), [7]);
    assert!(of(&c.collect(QUIET), "private-a").is_empty(), "no update twice");
    assert_eq!(seqs(&bystander.updates("private-a", 7, FRAME_WAIT)), (1..=7).collect::<Vec<_>>());
    w.assert_no_panic();
}

#[test]
fn a_refresh_before_expiry_keeps_the_stream_without_a_gap() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &vars());
    let caps = json!({"private-feed": ["subscribe"]});
    // About 4 s left; the refresh comes after 1.5 s, publishing goes on for 8 s.
    let short = token("u1", caps.clone(), -26);
    let mut c = w.client(&format!("/ws?channels=private-feed&token={short}"));
    c.catch_up("private-feed", FRAME_WAIT);
    let published = std::thread::scope(|s| {
        let w = &w;
        let publisher = s.spawn(move || {
            let mut n = 0;
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(8) {
                n += 1;
                assert_eq!(w.publish_seq("private-feed", json!({ "n": n })), n);
                std::thread::sleep(Duration::from_millis(100));
            }
            n
        });
        std::thread::sleep(Duration::from_millis(1500));
        let refreshed = auth(&mut c, &token("u1", caps, 3600));
        assert_eq!(refreshed["type"], "authed", "{refreshed}");
        publisher.join().expect("publisher")
    });
    let got = c.updates("private-feed", published, FRAME_WAIT);
    assert_eq!(seqs(&got), (1..=published).collect::<Vec<_>>(), "every update, once, in order");
    let rest = c.collect(QUIET);
    assert!(rest.iter().all(|f| f["type"] != "unsubscribed"), "{rest:?}");
    assert!(published >= 40, "the stream ran past the old token's expiry: {published} updates");
}

#[test]
fn sockets_publish_where_their_token_grants_it_on_every_shard() {
    let fixture = Fixture::start();
    let mut v = vars();
    v.extend([("HUB_SHARDS", "2"), ("CLIENT_MSGS_PER_10S", "30")]);
    let w = Wrangler::start(&fixture, &v);
    let reader = token("r", json!({"private-room-*": ["subscribe"]}), 3600);
    let mut bystander = w.client(&format!("/ws?channels=private-room-1,chat&token={reader}&shard=1"));
    bystander.catch_up("private-room-1", FRAME_WAIT);
    bystander.catch_up("chat", FRAME_WAIT);
    let writer = token("w", json!({"private-room-*": ["publish"], "chat": ["publish"]}), 3600);
    let publish = |c: &mut Client, channel: &str, id: &str| {
        c.send_json(&json!({"op": "publish", "channel": channel, "data": {"from": id}, "id": id}));
        c.expect("its answer", FRAME_WAIT, |v| v["id"] == id)
    };
    // From a replica (shard 1) and from the sequencer's shard alike.
    for (shard, first_seq) in [(1, 1), (0, 2)] {
        let query = if shard == 0 { String::new() } else { format!("&shard={shard}") };
        let mut c = w.client(&format!("/ws?channels=&token={writer}{query}"));
        let ok = publish(&mut c, "private-room-1", &format!("p{shard}"));
        assert_eq!(
            ok,
            json!({"type": "published", "channel": "private-room-1", "seq": first_seq, "id": format!("p{shard}")})
        );
        assert_eq!(publish(&mut c, "chat", "c")["type"], "published");
        let no = publish(&mut c, "news", "n");
        assert_eq!(
            (no["type"].as_str(), no["code"].as_str(), no["channel"].as_str()),
            (Some("error"), Some("forbidden"), Some("news"))
        );
        assert_eq!(publish(&mut c, "btc", "b")["code"], "channel_reserved");
        c.close();
    }
    let got = bystander.updates("private-room-1", 2, FRAME_WAIT);
    assert_eq!(got.iter().map(|u| u["data"]["from"].clone()).collect::<Vec<_>>(), [json!("p1"), json!("p0")]);
    assert_eq!(seqs(&bystander.updates("chat", 2, FRAME_WAIT)), [1, 2]);
    assert_eq!(
        w.get("/api/channels").json()["channels"].as_array().map(|c| c.iter().any(|c| c["channel"] == "news")),
        Some(false)
    );

    // Anonymous: refused. Oversized: closed 1009. Flooding: closed 4029 after its allowance.
    let mut anon = w.client("/ws?channels=");
    assert_eq!(publish(&mut anon, "chat", "a")["code"], "unauthorized");
    let mut big = w.client(&format!("/ws?channels=&token={writer}"));
    big.send_json(&json!({"op": "publish", "channel": "chat", "data": "x".repeat(5000), "id": "big"}));
    assert_eq!(big.expect_close(FRAME_WAIT), Some(1009));
    let mut flood = w.client(&format!("/ws?channels=&token={writer}"));
    for i in 0..40 {
        flood.send_json(&json!({"op": "publish", "channel": "chat", "data": i, "id": format!("f{i}")}));
    }
    assert_eq!(flood.expect_close(Duration::from_secs(10)), Some(4029));
    let answers = flood.collect(Duration::ZERO);
    let answered = answers.iter().filter(|f| f["type"] == "published").count();
    assert!(answered <= 30, "{answers:?}");
    // The 30 frames within CLIENT_MSGS_PER_10S are sequenced (answers still in flight when the
    // socket was closed are lost with it); the other 10 never are.
    let flooded = bystander.updates("chat", 32, FRAME_WAIT);
    assert_eq!(seqs(&flooded), (3..=32).collect::<Vec<_>>());
    assert!(of(&bystander.collect(QUIET), "chat").is_empty(), "nothing past the flooder's allowance");

    // Over HTTP with a bearer token: granted 202, not granted 403, expired 401.
    let post = |t: &str, channel: &str| w.post_publish(Some(t), &json!({"channel": channel, "data": 1}));
    assert_eq!(post(&writer, "chat").status, 202);
    let r = post(&writer, "news");
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (403, json!("forbidden")), "{}", r.body);
    let r = post(&token("w", json!({"chat": ["publish"]}), -3600), "chat");
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (401, json!("token_expired")), "{}", r.body);
    assert_eq!(w.metric("tickwire_socket_publishes_total"), 34.0);
    w.assert_no_panic();
}
