//! Sockets with tokens: who may subscribe to and publish on which channel, the `auth` op's
//! refresh, and what an expired token ends.

use super::*;
use crate::auth::{mint, Capability, Caps, Claims, Keys, Subject, LEEWAY_SECONDS};
use crate::core::socket::Action;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const NOW_S: u64 = 1_800_000_000;

fn token(caps: &[(&str, &[Capability])], exp: u64) -> String {
    let mut claims = Claims::new(Subject::parse("u42").unwrap(), exp);
    claims.caps = Caps::from_entries(caps.iter().map(|(k, v)| (*k, v.to_vec()))).unwrap();
    mint(&claims, SECRET)
}

fn keyed() -> HubCore {
    let mut c = core();
    c.keys = Keys::new(Some(SECRET), None);
    c
}

/// A socket connected to `channels` with `token` (verified as the connect's `?token=` is).
fn connect_with(c: &mut HubCore, channels: &str, token: &str) -> SocketMeta {
    let grant = c.check_token(token, NOW_S * 1000).unwrap();
    c.connect("a".into(), ConnectParams { channels: Some(channels), ..Default::default() }, Some(grant), NOW_S * 1000).0
}

fn frames(actions: &[Action]) -> Vec<serde_json::Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(f) => Some(serde_json::from_str(&f.to_json()).unwrap()),
            _ => None,
        })
        .collect()
}

fn subscribed(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Subscribe(c, since) => Some(format!("{c}{}", since.as_ref().map_or("", |_| "+since"))),
            _ => None,
        })
        .collect()
}

const SUB: &[Capability] = &[Capability::Subscribe];
const SUB_HIST: &[Capability] = &[Capability::Subscribe, Capability::History];
const PUB: &[Capability] = &[Capability::Publish];

#[test]
fn an_anonymous_socket_is_refused_private_channels_and_keeps_public_ones() {
    let mut c = keyed();
    let (mut meta, _) = c.connect("a".into(), ConnectParams { channels: Some("news"), ..Default::default() }, None, 0);
    let a = c.message(&mut meta, r#"{"op":"subscribe","channels":["private-a","btc"]}"#, NOW_S * 1000);
    assert_eq!(subscribed(&a), ["btc"]);
    let f = frames(&a);
    assert_eq!((f[0]["code"].as_str(), f[0]["channel"].as_str()), (Some("unauthorized"), Some("private-a")));
    assert_eq!(meta.channels, [Channel::parse("news").unwrap(), Channel::btc()]);
}

#[test]
fn a_token_opens_what_it_names_and_since_replays_only_with_history() {
    let mut c = keyed();
    let (mut meta, _) = c.connect("a".into(), ConnectParams { channels: Some(""), ..Default::default() }, None, 0);
    let t = token(&[("private-a", SUB), ("private-room-*", SUB_HIST)], NOW_S + 60);
    let a = c.message(&mut meta, &format!(r#"{{"op":"auth","token":"{t}"}}"#), NOW_S * 1000);
    assert_eq!(frames(&a), [json!({"type":"authed","sub":"u42","exp":NOW_S + 60})]);
    let op = r#"{"op":"subscribe","channels":["private-a","private-b","private-room-7","private-roomx"],
        "since":{"private-a":3,"private-room-7":3}}"#;
    let a = c.message(&mut meta, op, NOW_S * 1000);
    assert_eq!(subscribed(&a), ["private-a", "private-room-7+since"], "no history: no replay of private-a");
    let refused: Vec<_> = frames(&a).iter().map(|f| (f["code"].clone(), f["channel"].clone())).collect();
    assert_eq!(refused, [(json!("forbidden"), json!("private-b")), (json!("forbidden"), json!("private-roomx"))]);
}

#[test]
fn bad_tokens_are_refused_counted_and_change_nothing() {
    let mut c = keyed();
    let good = token(&[("private-a", SUB)], NOW_S + 60);
    let mut meta = connect_with(&mut c, "private-a", &good);
    assert_eq!(meta.channels, [Channel::parse("private-a").unwrap()]);
    let expired = token(&[("*", SUB)], NOW_S - LEEWAY_SECONDS - 1);
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for (bad, code) in
        [(expired.as_str(), "token_expired"), (flipped.as_str(), "unauthorized"), ("x.y", "unauthorized")]
    {
        let a = c.message(&mut meta, &format!(r#"{{"op":"auth","token":"{bad}"}}"#), NOW_S * 1000);
        let f = frames(&a);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0]["code"], code);
        assert!(!f[0].to_string().contains(bad), "the token is never quoted back");
        assert!(a.iter().all(|a| matches!(a, Action::Send(_))), "nothing else happens: {a:?}");
    }
    assert_eq!(meta.channels, [Channel::parse("private-a").unwrap()], "the old grant still holds");
    let stats = c.stats(0, 1, |_| 0);
    let failures = &stats.counters.auth_failures;
    assert_eq!(
        (failures.get("expired"), failures.get("signature"), failures.get("malformed")),
        (Some(&1), Some(&1), Some(&1))
    );
}

#[test]
fn a_refresh_keeps_what_the_new_token_grants_and_ends_the_rest() {
    let mut c = keyed();
    let t1 = token(&[("private-a", SUB), ("private-b", SUB)], NOW_S + 60);
    let mut meta = connect_with(&mut c, "private-a,private-b,news", &t1);
    let t2 = token(&[("private-a", SUB)], NOW_S + 600);
    let a = c.message(&mut meta, &format!(r#"{{"op":"auth","token":"{t2}"}}"#), NOW_S * 1000);
    assert!(a.contains(&Action::Unsubscribe(Channel::parse("private-b").unwrap())));
    assert!(a.contains(&Action::Regrant));
    let f = frames(&a);
    assert_eq!(f[0], json!({"type":"unsubscribed","channel":"private-b","reason":"forbidden"}));
    assert_eq!(f[1]["type"], "authed");
    assert_eq!(meta.channels, [Channel::parse("private-a").unwrap(), Channel::parse("news").unwrap()]);
    assert_eq!(meta.expiry(&Channel::parse("private-a").unwrap()), Some(NOW_S + 600 + LEEWAY_SECONDS));
    assert_eq!(meta.expiry(&Channel::parse("news").unwrap()), None);
}

#[test]
fn an_expired_token_ends_private_channels_at_the_next_frame_and_a_fresh_one_resumes() {
    let mut c = keyed();
    let t = token(&[("private-a", SUB_HIST)], NOW_S + 10);
    let mut meta = connect_with(&mut c, "private-a,news", &t);
    let late = (NOW_S + 11 + LEEWAY_SECONDS) * 1000;
    let a = c.message(&mut meta, r#"{"op":"subscribe","channels":["private-a"],"since":{"private-a":1}}"#, late);
    let f = frames(&a);
    assert_eq!(f[0], json!({"type":"unsubscribed","channel":"private-a","reason":"token_expired"}));
    assert_eq!(f[1]["code"], "token_expired", "and the subscribe is refused");
    assert_eq!(meta.channels, [Channel::parse("news").unwrap()]);
    let fresh = token(&[("private-a", SUB_HIST)], NOW_S + 3600);
    c.message(&mut meta, &format!(r#"{{"op":"auth","token":"{fresh}"}}"#), late);
    let a = c.message(&mut meta, r#"{"op":"subscribe","channels":["private-a"],"since":{"private-a":1}}"#, late);
    assert_eq!(subscribed(&a), ["private-a+since"]);
}

#[test]
fn a_socket_publishes_where_its_token_grants_publish_and_never_to_built_ins() {
    let mut c = keyed();
    let (mut meta, _) = c.connect("a".into(), ConnectParams { channels: Some(""), ..Default::default() }, None, 0);
    let publish = |c: &mut HubCore, meta: &mut SocketMeta, channel: &str| {
        c.message(meta, &format!(r#"{{"op":"publish","channel":"{channel}","data":{{"x":1}},"id":"p"}}"#), NOW_S * 1000)
    };
    let a = publish(&mut c, &mut meta, "news");
    assert_eq!(frames(&a)[0]["code"], "unauthorized");
    assert_eq!(frames(&a)[0]["id"], "p");
    let t = token(&[("private-room-*", PUB), ("*", SUB)], NOW_S + 60);
    c.message(&mut meta, &format!(r#"{{"op":"auth","token":"{t}"}}"#), NOW_S * 1000);
    let a = publish(&mut c, &mut meta, "private-room-1");
    let [Action::Publish(p, id)] = a.as_slice() else { panic!("{a:?}") };
    assert_eq!((p.channel.as_str(), p.data.clone(), id.as_deref()), ("private-room-1", json!({"x":1}), Some("p")));
    assert_eq!(frames(&publish(&mut c, &mut meta, "news"))[0]["code"], "forbidden");
    assert_eq!(frames(&publish(&mut c, &mut meta, "btc"))[0]["code"], "channel_reserved");
    assert_eq!(frames(&publish(&mut c, &mut meta, "Bad"))[0]["code"], "invalid_channel");
}

#[test]
fn a_socket_publish_is_held_to_max_publish_bytes_too() {
    let mut c = keyed();
    c.limits.max_publish_bytes = 100;
    let (mut meta, _) = c.connect("a".into(), ConnectParams { channels: Some(""), ..Default::default() }, None, 0);
    let t = token(&[("chat", PUB)], NOW_S + 60);
    c.message(&mut meta, &format!(r#"{{"op":"auth","token":"{t}"}}"#), NOW_S * 1000);
    let big = format!(r#"{{"op":"publish","channel":"chat","data":"{}","id":"big"}}"#, "x".repeat(100));
    let f = frames(&c.message(&mut meta, &big, NOW_S * 1000));
    assert_eq!((f[0]["code"].as_str(), f[0]["id"].as_str()), (Some("payload_too_large"), Some("big")));
    let small = r#"{"op":"publish","channel":"chat","data":1,"id":"s"}"#;
    assert!(matches!(c.message(&mut meta, small, NOW_S * 1000).as_slice(), [Action::Publish(..)]));
}
