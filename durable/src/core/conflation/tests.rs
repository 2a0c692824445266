//! Host tests of conflated delivery's decisions: the attachment's intervals, `every` on connect
//! and in `subscribe`, and what a class's tick sends.

use super::*;
use crate::auth::Keys;
use crate::core::classes::{class_key, parse_class_key};
use crate::core::publish::AppPublish;
use crate::core::socket::{Action, ConnectParams};
use crate::feeds::settings::FeedSettings;
use crate::settings::HubLimits;
use crate::wire::merge_patch;
use crate::wire::protocol::{Epoch, ErrorCode};
use serde_json::{json, Value};

fn ch(name: &str) -> Channel {
    Channel::parse(name).unwrap()
}

fn connect(channels: &str, every: Option<&str>) -> (SocketMeta, Vec<Action>) {
    let mut m = SocketMeta::new("c".into());
    let params = ConnectParams { channels: Some(channels), every, ..ConnectParams::default() };
    let actions = m.on_connect(params, &HubLimits::default(), 0);
    (m, actions)
}

fn errors(actions: &[Action]) -> Vec<ErrorCode> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(ServerFrame::Error { code, .. }) => Some(*code),
            _ => None,
        })
        .collect()
}

fn intervals(m: &SocketMeta) -> Vec<Option<u64>> {
    m.channels.iter().map(|c| m.every_of(c).map(Every::ms)).collect()
}

#[test]
fn connect_asks_per_channel_and_bad_intervals_are_refused_but_subscribed() {
    let (m, a) = connect("market,btc,news,fng", Some("market:5000,btc:1000,news:7,zzz:250"));
    assert_eq!(intervals(&m), [Some(5000), Some(1000), None, None]);
    assert_eq!(errors(&a), [ErrorCode::InvalidEvery, ErrorCode::InvalidEvery], "news:7, and zzz not subscribed");
    assert_eq!(a.iter().filter(|a| matches!(a, Action::Subscribe(..))).count(), 4, "every channel subscribed");
    let (m, a) = connect("btc", None);
    assert!(errors(&a).is_empty());
    assert_eq!((intervals(&m), m.every.as_str()), (vec![None], ""), "nothing conflated, nothing in the attachment");
}

#[test]
fn the_subscribe_op_applies_its_interval_to_its_new_channels() {
    let (mut m, _) = connect("btc", Some("btc:250"));
    let limits = HubLimits::default();
    let op = r#"{"op":"subscribe","channels":["btc","news","fx"],"every_ms":30000}"#;
    let (_, a) = m.on_text(op, 0, &limits, &Keys::default());
    assert!(errors(&a).is_empty());
    assert_eq!(intervals(&m), [Some(250), Some(30_000), Some(30_000)], "a held channel keeps its interval");
    let (_, a) = m.on_text(r#"{"op":"subscribe","channels":["more"],"every_ms":60000}"#, 1, &limits, &Keys::default());
    assert_eq!(errors(&a), [ErrorCode::InvalidEvery]);
    assert_eq!(intervals(&m).last(), Some(&None), "delivered unconflated");
}

#[test]
fn intervals_stay_with_their_channels_through_unsubscribes() {
    let (mut m, _) = connect("a,b,c,d", Some("b:1000,d:250"));
    let limits = HubLimits::default();
    m.on_text(r#"{"op":"unsubscribe","channels":["a","c"]}"#, 0, &limits, &Keys::default());
    assert_eq!((m.channels.clone(), intervals(&m)), (vec![ch("b"), ch("d")], vec![Some(1000), Some(250)]));
    m.on_text(r#"{"op":"subscribe","channels":["e"]}"#, 1, &limits, &Keys::default());
    assert_eq!(intervals(&m), [Some(1000), Some(250), None]);
    let gone = m.retain_channels(|c| c.as_str() != "b");
    assert_eq!((gone, intervals(&m)), (vec![ch("b")], vec![Some(250), None]));
    let back: SocketMeta = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m, "the attachment round-trips");
    let old: SocketMeta = serde_json::from_str(r#"{"conn":"c","channels":["btc"]}"#).unwrap();
    assert_eq!(old.every_of(&Channel::btc()), None, "attachments saved before conflation read as unconflated");
}

#[test]
fn class_keys_round_trip() {
    assert_eq!(class_key(&ch("news"), Every::S5), "news@5000");
    assert_eq!(parse_class_key("news@5000"), Some((ch("news"), Every::S5)));
    for bad in ["news", "news@7", "News@1000", "news@1000+delta"] {
        assert_eq!(parse_class_key(bad), None, "{bad}");
    }
}

fn hub() -> HubCore {
    HubCore::new(HubLimits::default(), FeedSettings::default())
}

fn publish(c: &mut HubCore, channel: &str, data: Value) {
    let mut n = 0;
    let epochs = move || {
        n += 1;
        Epoch(format!("e{n}"))
    };
    c.publish(AppPublish { channel: ch(channel), ts: 1, data }, epochs).unwrap();
}

fn parse(frame: &str) -> Value {
    serde_json::from_str(frame).unwrap_or_else(|e| panic!("{frame}: {e}"))
}

#[test]
fn a_tick_sends_the_latest_value_with_the_skipped_count_and_a_patch_against_the_last_frame() {
    let mut c = hub();
    publish(&mut c, "news", json!({"p": 1, "v": 1}));
    assert_eq!(
        c.join_class(&ch("news"), Every::S1, Seq(1), true),
        Placement::InStep,
        "the first socket makes the class"
    );
    for v in 2..=5 {
        publish(&mut c, "news", json!({"p": 1, "v": v}));
    }
    assert_eq!(c.arm_classes([(ch("news"), Every::S1)]), [(ch("news"), Every::S1)]);
    assert!(c.arm_classes([(ch("news"), Every::S1)]).is_empty(), "one timer per class");
    assert_eq!(
        c.join_class(&ch("news"), Every::S1, Seq(5), false),
        Placement::Fresh(Seq(5)),
        "joined since the last tick"
    );
    let tick = c.tick_class(&ch("news"), Every::S1, true);
    let frames = tick.frames.clone().unwrap();
    let full = parse(&frames.full);
    assert_eq!(
        (full["type"].as_str(), full["seq"].as_u64(), full["skipped"].as_u64()),
        (Some("update"), Some(5), Some(3))
    );
    assert_eq!(full["data"], json!({"p": 1, "v": 5}));
    let delta = parse(frames.delta.as_deref().unwrap());
    assert_eq!(
        (delta["type"].as_str(), delta["seq"].as_u64(), delta["skipped"].as_u64()),
        (Some("delta"), Some(5), Some(3))
    );
    let mut held = json!({"p": 1, "v": 1});
    merge_patch::apply(&mut held, &delta["patch"]);
    assert_eq!(held, full["data"], "the patch is against the value the class last had");
    assert_eq!(frames.built(), 2);
    let fresh = parse(&format!("{}{}{}", tick.fresh_head, 0, tick.fresh_tail));
    assert_eq!((fresh["seq"].as_u64(), fresh["skipped"].as_u64()), (Some(5), Some(0)), "a fresh socket's own count");
    // Nothing changed since: the next tick sends nothing, and the class is then in step at 5.
    assert_eq!(c.tick_class(&ch("news"), Every::S1, true).frames, None);
    assert_eq!(c.join_class(&ch("news"), Every::S1, Seq(5), false), Placement::InStep);
    // A class without delta sockets builds no patch.
    publish(&mut c, "news", json!({"p": 1, "v": 6}));
    let frames = c.tick_class(&ch("news"), Every::S1, false).frames.unwrap();
    assert_eq!((frames.built(), frames.delta), (1, None));
}

#[test]
fn a_class_after_a_wake_starts_from_the_stored_seq_and_sends_full_updates_first() {
    let mut c = hub();
    publish(&mut c, "news", json!({"v": 1}));
    publish(&mut c, "news", json!({"v": 2}));
    let entries: Vec<(String, String)> = c
        .entry(&crate::core::storage_key::StorageKey::Meta(ch("news")))
        .map(|v| (crate::core::storage_key::StorageKey::Meta(ch("news")).as_string(), v.encode().unwrap()))
        .into_iter()
        .collect();
    let mut woken = hub();
    woken.load(entries);
    publish(&mut woken, "news", json!({"v": 3}));
    // The socket rebuilt from its attachment holds seq 2, the stored latest value.
    assert_eq!(woken.arm_classes([(ch("news"), Every::S1)]).len(), 1);
    let frames = woken.tick_class(&ch("news"), Every::S1, true).frames.unwrap();
    assert_eq!(parse(&frames.full)["skipped"].as_u64(), Some(0));
    assert_eq!(frames.delta, None, "the patch's base was not in memory: delta sockets get the full update");
}

#[test]
fn a_deleted_channel_forgets_its_classes_and_an_empty_class_goes() {
    let mut c = hub();
    for v in 1..=3 {
        publish(&mut c, "news", json!({"v": v}));
    }
    c.join_class(&ch("news"), Every::Ms250, Seq(3), true);
    c.delete_app(&ch("news")).unwrap();
    publish(&mut c, "news", json!({"v": "new"}));
    // Its sockets were unsubscribed; one in the new channel's class from before (rebuilt after
    // a wake, say) holds nothing of it: the class starts from nothing.
    assert_eq!(c.join_class(&ch("news"), Every::Ms250, Seq(1), false), Placement::Fresh(Seq(1)));
    c.arm_classes([(ch("news"), Every::Ms250)]);
    let full = parse(&c.tick_class(&ch("news"), Every::Ms250, false).frames.unwrap().full);
    assert_eq!((full["seq"].as_u64(), full["skipped"].as_u64()), (Some(1), Some(0)));
    c.drop_class(&ch("news"), Every::Ms250);
    assert!(c.classes.is_empty());
}
