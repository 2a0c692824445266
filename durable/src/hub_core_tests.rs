//! Host tests of the hub state machine: sequencing, dedupe, replicas, resume, counters, storage.

use super::*;
use crate::internal::{Outcome, Publish};
use crate::protocol::ErrorCode;
use serde_json::json;

fn epochs() -> impl FnMut() -> Epoch {
    let mut n = 0;
    move || {
        n += 1;
        Epoch(format!("e{n}"))
    }
}

fn core() -> HubCore {
    HubCore::new(HubLimits { history_len: 5, ..HubLimits::default() })
}

fn ingest_btc(at: u64, price: f64) -> Ingest {
    Ingest {
        source: Source::CoingeckoPrice,
        at,
        outcome: Outcome::Ok,
        detail: None,
        publish: vec![Publish { channel: Channel::btc(), ts: at, data: json!({ "price_usd": price }) }],
    }
}

fn news() -> Channel {
    Channel::parse("news").unwrap()
}

fn app(core: &mut HubCore, n: u64) -> (Published, Effects) {
    core.publish_app(AppPublish { channel: news(), ts: n, data: json!({ "n": n }) }, epochs()).unwrap()
}

fn frame(json: &str) -> Value {
    serde_json::from_str(json).unwrap()
}

fn sent(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(f) => Some(frame(&f.to_json())),
            _ => None,
        })
        .collect()
}

#[test]
fn storage_keys_round_trip_and_sort_by_seq() {
    for k in [
        StorageKey::Meta(Channel::btc()),
        StorageKey::History(news(), Seq(42)),
        StorageKey::Upstreams,
        StorageKey::Counters,
    ] {
        assert_eq!(StorageKey::parse(&k.as_string()), Some(k));
    }
    assert_eq!(StorageKey::History(news(), Seq(7)).as_string(), "h:news:00000000000000000007");
    assert!(StorageKey::History(news(), Seq(9)).as_string() < StorageKey::History(news(), Seq(10)).as_string());
    assert_eq!(StorageKey::parse("ch:NOPE"), None);
    assert_eq!(StorageKey::parse("h:news:x"), None);
}

#[test]
fn feed_values_are_deduped_app_publishes_are_not() {
    let mut c = core();
    let fx = c.ingest(ingest_btc(1, 100.0), epochs());
    assert_eq!(fx.published, vec![(Channel::btc(), Seq(1))]);
    assert_eq!(frame(&fx.broadcasts[0].1)["seq"], 1);
    assert_eq!(fx.dirty, vec![StorageKey::Upstreams, StorageKey::Meta(Channel::btc())]);
    assert_eq!(fx.history.len(), 1);
    assert_eq!(fx.fanout[0].epoch, Epoch("e1".into()));
    let fx = c.ingest(ingest_btc(2, 100.0), epochs());
    assert!(fx.broadcasts.is_empty() && fx.history.is_empty());
    assert_eq!(fx.dirty, vec![StorageKey::Upstreams]);
    assert_eq!(app(&mut c, 1).0.seq, Seq(1));
    assert_eq!(app(&mut c, 1).0.seq, Seq(2), "same data, new seq");
    assert!(c.is_known(&news()));
}

#[test]
fn built_in_channels_cannot_be_published_by_apps() {
    let mut c = core();
    let p = AppPublish { channel: Channel::btc(), ts: 1, data: json!(1) };
    assert_eq!(c.publish_app(p, epochs()).err(), Some(PublishRefused::Reserved));
}

#[test]
fn connect_sends_welcome_then_catchup_actions() {
    let mut c = core();
    app(&mut c, 1);
    let (meta, actions) = c.connect("conn1".into(), Some("news,btc,nope"), Some("news:0"));
    let frames = sent(&actions);
    assert_eq!(frames[0]["type"], "welcome");
    assert_eq!(frames[0]["channels"], json!(["btc", "market", "sentiment", "indicators", "news"]));
    assert_eq!(frames[1]["code"], "unknown_channel");
    let subs: Vec<_> = actions.iter().filter(|a| matches!(a, Action::Subscribe(..))).collect();
    assert_eq!(subs.len(), 2);
    assert_eq!(meta.channels, vec![news(), Channel::btc()]);
    assert_eq!(c.stats(0, 1).counters.rejected[&ErrorCode::UnknownChannel], 1);
}

#[test]
fn catchup_through_the_core() {
    let mut c = core();
    for n in 1..=8 {
        app(&mut c, n);
    }
    let plan = c.plan(&news(), Some(&Since::Seq(5)));
    assert_eq!(plan, Catchup::Replay { from: Seq(6), to: Seq(8) });
    let fetched: Vec<Update> = (6..=8)
        .map(|n| Update { channel: news(), seq: Seq(n), ts: n, stale: false, data: json!({ "n": n }) })
        .collect();
    let frames: Vec<Value> = c.catchup_frames(&news(), &plan, fetched).iter().map(|f| frame(&f.to_json())).collect();
    assert_eq!(frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [6, 7, 8, 8]);
    assert_eq!(frames[3]["type"], "subscribed");
    assert_eq!(frames[3]["recovered"], true);
    // A built-in channel with nothing yet: subscribed at seq 0, not recovered.
    let f = c.catchup_frames(&Channel::btc(), &c.plan(&Channel::btc(), None), vec![]);
    assert_eq!(frame(&f[0].to_json())["seq"], 0);
}

#[test]
fn history_writes_trim_to_the_limit() {
    let mut c = core();
    let deleted: Vec<u64> = (1..=8).flat_map(|n| app(&mut c, n).1.history.remove(0).delete).collect();
    assert_eq!(deleted, [1, 2, 3]);
}

#[test]
fn replicas_apply_the_sequencers_updates() {
    let mut seq = core();
    let mut replica = core();
    let mut fanout = Vec::new();
    for n in 1..=3 {
        fanout.extend(app(&mut seq, n).1.fanout);
    }
    let fx = replica.apply(fanout.clone());
    assert_eq!(fx.broadcasts.len(), 3);
    assert_eq!(fx.dirty, vec![StorageKey::Meta(news())]);
    assert!(replica.apply(fanout).broadcasts.is_empty(), "duplicates are dropped");
    let (s, r) = (seq.stats(0, 0), replica.stats(1, 0));
    assert_eq!(s.channels[&news()].seq, r.channels[&news()].seq);
    assert_eq!(r.channels[&news()].published, 0);
    assert_eq!(seq.plan(&news(), Some(&Since::Seq(1))), replica.plan(&news(), Some(&Since::Seq(1))));
}

#[test]
fn counters_and_stats() {
    let mut c = core();
    let (mut meta, _) = c.connect("a".into(), None, None);
    c.message(&mut meta, "{", 1);
    c.message(&mut meta, r#"{"op":"unsubscribe","channels":["btc"]}"#, 2);
    c.closed(CloseReason::Client);
    c.ingest(ingest_btc(1, 1.0), epochs());
    c.record_delivery(&Channel::btc(), 4, 1);
    let s = c.stats(2, 7);
    assert_eq!(s.sockets[&2], 7);
    assert_eq!(s.counters.connections_opened, 1);
    assert_eq!(s.counters.connections_closed[&CloseReason::Client], 1);
    assert_eq!(s.counters.rejected[&ErrorCode::BadJson], 1);
    assert_eq!(s.counters.frames.values().sum::<u64>(), 2);
    let btc = &s.channels[&Channel::btc()];
    assert_eq!((btc.deliveries, btc.failed_sends, btc.published), (4, 1, 1));
}

#[test]
fn state_survives_a_storage_round_trip() {
    let mut c = core();
    c.ingest(ingest_btc(1, 100.0), epochs());
    app(&mut c, 1);
    c.connect("a".into(), None, None);
    let keys =
        [StorageKey::Meta(Channel::btc()), StorageKey::Meta(news()), StorageKey::Upstreams, StorageKey::Counters];
    let entries: Vec<_> = keys.iter().map(|k| (k.as_string(), c.entry(k).unwrap())).collect();
    let mut restored = core();
    assert!(restored.load(entries).is_empty());
    assert_eq!(restored, c);
    // The sequence continues after a restart, in the same epoch.
    let fx = restored.ingest(ingest_btc(2, 102.0), epochs());
    assert_eq!(fx.published, vec![(Channel::btc(), Seq(2))]);
    assert_eq!(fx.fanout[0].epoch, Epoch("e1".into()));
}

#[test]
fn corrupt_entries_are_reported_not_fatal() {
    let mut c = core();
    let corrupt = c
        .load(vec![("ch:btc".to_owned(), json!("garbage")), ("counters".to_owned(), json!({"connections_opened": 4}))]);
    assert_eq!(corrupt.len(), 1);
    assert_eq!(corrupt[0].key, "ch:btc");
    assert_eq!(c.stats(0, 0).counters.connections_opened, 4);
}
