//! The hub core's channels: sequencing, replicas, resume, app channels, counters and storage.

use super::*;

#[test]
fn storage_keys_round_trip_and_sort_by_seq() {
    for k in [
        StorageKey::Meta(Channel::btc()),
        StorageKey::History(news(), Seq(42)),
        StorageKey::Upstreams,
        StorageKey::Providers,
        StorageKey::Counters,
        StorageKey::Watchers,
    ] {
        assert_eq!(StorageKey::parse(&k.as_string()), Some(k));
    }
    assert_eq!(StorageKey::History(news(), Seq(7)).as_string(), "h:news:00000000000000000007");
    assert!(StorageKey::History(news(), Seq(9)).as_string() < StorageKey::History(news(), Seq(10)).as_string());
    assert_eq!(StorageKey::parse("ch:NOPE"), None);
    assert_eq!(StorageKey::parse("h:news:x"), None);
}

#[test]
fn each_key_decodes_only_its_own_type() {
    let update = Update { channel: news(), seq: Seq(3), ts: 9, stale: false, data: json!({"x": 1}) };
    let history = StorageKey::History(news(), Seq(3));
    let text = Stored::History(update.clone()).encode().unwrap();
    assert_eq!(history.decode(&text).unwrap(), Stored::History(update));
    // An update is not a watcher set, and a list is not a channel meta.
    assert!(StorageKey::Watchers.decode(&text).is_err());
    assert!(StorageKey::Meta(news()).decode("[1, 2]").is_err());
    assert_eq!(StorageKey::Watchers.decode("[1, 2]").unwrap(), Stored::Watchers([1, 2].into()));
}

#[test]
fn built_in_channels_cannot_be_published_by_apps() {
    let mut c = core();
    let p = AppPublish { channel: Channel::btc(), ts: 1, data: json!(1) };
    assert_eq!(c.publish(p, epochs()).err(), Some(PublishRefusal::Reserved));
}

#[test]
fn connect_sends_welcome_then_catchup_actions() {
    let mut c = core();
    app(&mut c, 1);
    let (meta, actions) = c.connect(
        "conn1".into(),
        ConnectParams { channels: Some("news,btc,nope"), since: Some("news:0"), delta: None, every: None },
        None,
        0,
    );
    assert_eq!(sent(&actions)[0]["stale_after_seconds"], 180);
    let frames = sent(&actions);
    assert_eq!(frames[0]["type"], "welcome");
    assert_eq!(frames[0]["channels"], json!(["btc", "market", "sentiment", "indicators"]), "built-ins only");
    assert_eq!(frames.len(), 1, "no error: a channel nobody published to yet can be subscribed");
    let subs: Vec<_> = actions.iter().filter(|a| matches!(a, Action::Subscribe(..))).collect();
    assert_eq!(subs.len(), 3);
    let nope = Channel::parse("nope").unwrap();
    assert_eq!(meta.channels, vec![news(), Channel::btc(), nope.clone()]);
    // Its catch-up is `subscribed` at seq 0, and it costs no storage: the channel is not
    // created until its first publish.
    let plan = c.plan(&nope, None);
    let frames: Vec<Value> =
        c.catchup_frames(&nope, &plan, Vec::new(), 0).iter().map(|f| frame(&f.to_json())).collect();
    assert_eq!(frames, [json!({"type": "subscribed", "channel": "nope", "seq": 0, "epoch": "", "recovered": false})]);
    assert!(!c.is_known(&nope) && c.app_channels() == 1);
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
    let frames: Vec<Value> = c.catchup_frames(&news(), &plan, fetched, 8).iter().map(|f| frame(&f.to_json())).collect();
    assert_eq!(frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [6, 7, 8, 8]);
    assert_eq!(frames[3]["type"], "subscribed");
    assert_eq!(frames[3]["recovered"], true);
    // A built-in channel with nothing yet: subscribed at seq 0, not recovered.
    let f = c.catchup_frames(&Channel::btc(), &c.plan(&Channel::btc(), None), vec![], 0);
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
    let fx = replica.apply(Apply { updates: fanout.clone(), confirmed: vec![], ..Default::default() });
    assert_eq!(fx.broadcasts.len(), 3);
    assert_eq!(fx.dirty, vec![StorageKey::Meta(news())]);
    assert!(
        replica.apply(Apply { updates: fanout, confirmed: vec![], ..Default::default() }).broadcasts.is_empty(),
        "duplicates are dropped"
    );
    let (s, r) = (seq.stats(0, 0, |_| 0), replica.stats(1, 0, |_| 0));
    assert_eq!(s.channels[&news()].seq, r.channels[&news()].seq);
    assert_eq!(r.channels[&news()].published, 0);
    assert_eq!(seq.plan(&news(), Some(&Since::Seq(1))), replica.plan(&news(), Some(&Since::Seq(1))));
}

#[test]
fn a_replica_that_missed_updates_tells_its_sockets() {
    let mut seq = core();
    let mut replica = core();
    let fanout: Vec<_> = (1..=7).flat_map(|n| app(&mut seq, n).1.fanout).collect();
    replica.apply(Apply { updates: fanout[..5].to_vec(), confirmed: vec![], ..Default::default() });
    // Seq 6 never arrives: 7 restarts the replica's history, and its sockets are told.
    let fx = replica.apply(Apply { updates: fanout[6..].to_vec(), confirmed: vec![], ..Default::default() });
    let frames: Vec<Value> = fx.broadcasts.iter().map(|b| serde_json::from_str(&b.frame).unwrap()).collect();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!((&frames[0]["type"], &frames[0]["seq"]), (&json!("update"), &json!(7)));
    assert_eq!(
        (&frames[1]["type"], &frames[1]["channel"], &frames[1]["seq"], &frames[1]["recovered"]),
        (&json!("subscribed"), &json!("news"), &json!(7), &json!(false))
    );
    // Its old history (1..=5) is deleted by key, without reading it.
    assert_eq!(fx.history[0].deleted_seqs().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    // A resume from before the gap is answered with the latest value, not a replay with a hole.
    assert_eq!(replica.plan(&news(), Some(&Since::Seq(5))), Catchup::Latest);
    assert!(fx.broadcasts.iter().all(|b| b.delta.is_none()), "after a gap its sockets get full values");
    // Updates in order again carry no marker.
    let fx = replica.apply(Apply { updates: app(&mut seq, 8).1.fanout, confirmed: vec![], ..Default::default() });
    assert_eq!(fx.broadcasts.len(), 1);
}

#[test]
fn an_update_goes_to_delta_sockets_as_a_merge_patch_when_that_is_smaller() {
    let mut c = core();
    let publish = |c: &mut HubCore, ts: u64, data: Value| {
        c.publish(AppPublish { channel: news(), ts, data }, epochs()).unwrap().1.broadcasts.remove(0)
    };
    let coins = |btc: f64| json!({"coins": {"bitcoin": {"price_usd": btc, "cap": 1.26e12}, "solana": {"price_usd": 142.1, "cap": 6.5e10}}});
    assert_eq!(publish(&mut c, 1, coins(64_000.0)).delta, None, "the first update has nothing to patch");
    let b = publish(&mut c, 2, coins(64_100.5));
    let delta = frame(b.delta.as_deref().unwrap_or_default());
    assert_eq!(
        delta,
        json!({"type": "delta", "channel": "news", "seq": 2, "ts": 2, "stale": false,
               "patch": {"coins": {"bitcoin": {"price_usd": 64_100.5}}}})
    );
    assert!(b.delta.as_ref().is_some_and(|d| d.len() < b.frame.len()), "{} vs {}", b.frame, delta);
    // Applied to the previous value, the patch gives the update's value.
    let mut value = coins(64_000.0);
    crate::wire::merge_patch::apply(&mut value, &delta["patch"]);
    assert_eq!(value, frame(&b.frame)["data"]);
    // A small value whose patch is no smaller, and a null a patch cannot express: full frames.
    assert_eq!(publish(&mut c, 3, json!(1)).delta, None);
    assert_eq!(publish(&mut c, 4, json!({"a": 1})).delta, None);
    assert_eq!(publish(&mut c, 5, json!({"a": null, "padding": "x".repeat(50)})).delta, None);
}

#[test]
fn counters_and_stats() {
    let mut c = core();
    let (mut meta, _) =
        c.connect("a".into(), ConnectParams { channels: None, since: None, delta: None, every: None }, None, 0);
    c.message(&mut meta, "{", 1);
    c.message(&mut meta, r#"{"op":"unsubscribe","channels":["btc"]}"#, 2);
    c.closed(CloseReason::Client);
    round_btc(&mut c, 1, 1.0);
    c.record_delivery(&Channel::btc(), 4, 1);
    let s = c.stats(2, 7, |ch| if ch.as_str() == "btc" { 3 } else { 0 });
    assert_eq!(s.sockets[&2], 7);
    assert_eq!(s.counters.connections_opened, 1);
    assert_eq!(s.counters.connections_closed[&CloseReason::Client], 1);
    assert_eq!(s.counters.rejected[&ErrorCode::BadJson], 1);
    assert_eq!(s.counters.frames.values().sum::<u64>(), 2);
    let btc = &s.channels[&Channel::btc()];
    assert_eq!((btc.deliveries, btc.failed_sends, btc.published, btc.subscribers), (4, 1, 1, 3));
}

#[test]
fn state_survives_a_storage_round_trip() {
    let mut c = core();
    round_btc(&mut c, 1, 100.0);
    app(&mut c, 1);
    c.connect("a".into(), ConnectParams { channels: None, since: None, delta: None, every: None }, None, 0);
    c.set_watcher(2, true);
    let keys = [
        StorageKey::Meta(Channel::btc()),
        StorageKey::Meta(Channel::parse("market").unwrap()),
        StorageKey::Meta(news()),
        StorageKey::Upstreams,
        StorageKey::Providers,
        StorageKey::Counters,
        StorageKey::Watchers,
    ];
    let entries: Vec<_> = keys.iter().map(|k| (k.as_string(), c.entry(k).unwrap().encode().unwrap())).collect();
    let mut restored = core();
    assert!(restored.load(entries).is_empty());
    assert_eq!(restored, c);
    // The sequence continues after a restart, in the same epoch.
    let fx = round_btc(&mut restored, 2, 102.0);
    assert_eq!(fx.published[0], (Channel::btc(), Seq(2)));
    assert_eq!(fx.fanout[0].epoch, Epoch("e1".into()));
}

#[test]
fn corrupt_entries_are_reported_not_fatal() {
    let mut c = core();
    let corrupt = c.load(vec![
        ("ch:btc".to_owned(), json!("garbage").to_string()),
        ("counters".to_owned(), json!({"connections_opened": 4}).to_string()),
        ("watchers".to_owned(), "not json".to_owned()),
        ("someone-else's".to_owned(), "1".to_owned()),
    ]);
    assert_eq!(corrupt.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["ch:btc", "watchers"]);
    assert_eq!(c.stats(0, 0, |_| 0).counters.connections_opened, 4);
}

#[test]
fn history_pages() {
    let mut c = core(); // history_len 5
    for n in 1..=8 {
        app(&mut c, n);
    }
    assert_eq!(c.history_range(&news(), 0, 100), Some((Seq(4), Seq(8))), "starts at the oldest retained");
    assert_eq!(c.history_range(&news(), 5, 2), Some((Seq(6), Seq(7))));
    assert_eq!(c.history_range(&news(), 8, 10), Some((Seq(9), Seq(8))), "nothing newer: an empty range");
    assert_eq!(c.history_range(&Channel::parse("nope").unwrap(), 0, 1), None);
    let page = c.history_page(&news(), 0, vec![]).unwrap();
    assert_eq!((page.seq, page.first_retained, page.truncated), (Seq(8), Seq(4), true));
    assert!(!c.history_page(&news(), 3, vec![]).unwrap().truncated);
}

#[test]
fn app_channels_are_bounded_and_the_welcome_stays_small() {
    let mut c = HubCore::new(HubLimits { max_app_channels: 3, ..HubLimits::default() }, FeedSettings::default());
    let publish = |c: &mut HubCore, name: &str| {
        let p = AppPublish { channel: Channel::parse(name).unwrap(), ts: 1, data: json!(1) };
        c.publish(p, epochs()).map(|(published, _)| published.seq)
    };
    for name in ["a", "b", "c"] {
        assert_eq!(publish(&mut c, name), Ok(Seq(1)));
    }
    round_btc(&mut c, 1, 1.0); // a built-in channel does not count
    assert_eq!(c.app_channels(), 3);
    let refused = publish(&mut c, "d").unwrap_err();
    assert_eq!(refused, PublishRefusal::TooManyChannels { limit: 3 });
    assert_eq!((refused.status(), refused.code()), (409, "too_many_channels"));
    assert!(refused.message().contains("MAX_APP_CHANNELS"), "{}", refused.message());
    assert_eq!(publish(&mut c, "a"), Ok(Seq(2)), "existing channels go on");
    let (_, actions) =
        c.connect("x".into(), ConnectParams { channels: None, since: None, delta: None, every: None }, None, 0);
    assert_eq!(sent(&actions)[0]["channels"], json!(["btc", "market", "sentiment", "indicators"]));
    // Deleting one makes room.
    assert_eq!(c.delete_app(&Channel::parse("b").unwrap()).map(|(seq, _)| seq), Ok(Seq(1)));
    assert_eq!(publish(&mut c, "d"), Ok(Seq(1)));
}

#[test]
fn deleting_an_app_channel() {
    let mut c = core();
    for n in 1..=7 {
        app(&mut c, n);
    }
    let old_epoch = c.plan(&news(), Some(&Since::Seq(6)));
    assert_eq!(old_epoch, Catchup::Replay { from: Seq(7), to: Seq(7) });
    assert_eq!(c.delete_app(&Channel::btc()).err(), Some(Undeletable::BuiltIn));
    assert_eq!(c.delete_app(&Channel::parse("nope").unwrap()).err(), Some(Undeletable::Unknown));
    let (seq, fx) = c.delete_app(&news()).unwrap();
    assert_eq!(seq, Seq(7));
    // Its meta and retained history (3..=7 with HISTORY_LEN 5) go, and the replicas are told.
    assert_eq!(fx.removed, [RemovedChannel { channel: news(), history: 3..8 }]);
    assert_eq!(fx.fanout_deleted, [news()]);
    assert!(!c.is_known(&news()));
    assert!(!c.stats(0, 0, |_| 0).channels.contains_key(&news()), "its series leave /metrics");
    assert!(c.history_range(&news(), 0, 10).is_none());
    assert_eq!(c.delete_app(&news()).err(), Some(Undeletable::Unknown), "once");
    // Published again it is a new channel: seq 1, and a resume from the old one is not a replay.
    let mut later = || Epoch("after".into());
    let (p, _) = c.publish(AppPublish { channel: news(), ts: 9, data: json!(9) }, &mut later).unwrap();
    assert_eq!(p.seq, Seq(1));
    let stale = Since::At { seq: 1, epoch: Some(Epoch("e1".into())) };
    assert_eq!(c.plan(&news(), Some(&stale)), Catchup::Latest);
}

#[test]
fn replicas_delete_what_the_sequencer_deleted() {
    let mut seq = core();
    let mut replica = core();
    let fanout: Vec<_> = (1..=3).flat_map(|n| app(&mut seq, n).1.fanout).collect();
    replica.apply(Apply { updates: fanout, ..Default::default() });
    let (_, fx) = seq.delete_app(&news()).unwrap();
    let fx = replica.apply(Apply { deleted: fx.fanout_deleted, ..Default::default() });
    assert_eq!(fx.removed, [RemovedChannel { channel: news(), history: 1..4 }]);
    assert!(!replica.is_known(&news()));
    // A deletion the replica never had is nothing to do.
    assert!(replica.apply(Apply { deleted: vec![news()], ..Default::default() }).removed.is_empty());
}
