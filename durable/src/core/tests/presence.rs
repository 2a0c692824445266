//! Presence on the host: a shard's members from its sockets, reports and their numbering,
//! shard 0's table, the mirrors' order and the bound on lists.

use crate::auth::access::Grant;
use crate::auth::Caps;
use crate::core::presence::*;
use crate::core::presence_mirror::*;
use crate::core::presence_table::{answer, Reported, Table};
use crate::core::socket::SocketMeta;
use crate::wire::presence::{Member, PresenceFrame};
use crate::wire::protocol::{Channel, ServerFrame};
use serde_json::json;

fn room() -> Channel {
    Channel::parse("presence-room").unwrap()
}

fn socket(conn: &str, sub: &str, channels: &[&str], exp: u64) -> SocketMeta {
    let mut meta = SocketMeta::new(conn.into());
    meta.channels = channels.iter().map(|c| Channel::parse(c).unwrap()).collect();
    let info = json!({ "name": sub.to_uppercase() }).as_object().cloned();
    let caps = Caps::from_claim(&json!({"presence-*": ["subscribe", "presence"]})).unwrap();
    meta.grant = Some(Grant { sub: sub.into(), exp, caps, info });
    meta
}

fn named(changes: &[Change]) -> Vec<String> {
    changes.iter().map(|c| format!("{} {} {}", if c.present { "+" } else { "-" }, c.channel, c.sub)).collect()
}

#[test]
fn a_member_is_a_sub_however_many_sockets_it_has() {
    let mut local = LocalPresence::default();
    let a1 = socket("a1", "ann", &["presence-room", "btc"], 100);
    assert_eq!(named(&local.set("a1", Presence::of(&a1), 0)), ["+ presence-room ann"]);
    assert_eq!(local.set("a2", Presence::of(&socket("a2", "ann", &["presence-room"], 100)), 0), []);
    assert_eq!(local.set("a1", Presence::of(&a1), 5), [], "the same channels again: nothing");
    assert_eq!(local.set("a1", None, 6), [], "ann still has a2");
    assert_eq!(named(&local.set("a2", None, 7)), ["- presence-room ann"]);
    assert!(local.is_empty());
    // Public and private channels make nobody a member, nor does a socket without a grant.
    assert_eq!(local.set("x", Presence::of(&socket("x", "x", &["btc", "private-a"], 100)), 0), []);
    let mut anon = SocketMeta::new("y".into());
    anon.channels = vec![room()];
    assert_eq!(Presence::of(&anon), None);
    let mut closing = socket("z", "zed", &["presence-room"], 100);
    closing.closing = true;
    assert_eq!(Presence::of(&closing), None);
    assert!(holds_presence(&closing), "what it held, closing or not");
    assert!(!holds_presence(&anon) && !holds_presence(&socket("x", "x", &["private-a"], 100)));
}

#[test]
fn an_auth_as_someone_else_or_an_unsubscribe_is_a_leave() {
    let mut local = LocalPresence::default();
    local.set("s", Presence::of(&socket("s", "ann", &["presence-room", "presence-b"], 100)), 0);
    let now_bob = socket("s", "bob", &["presence-room"], 100);
    let mut got = named(&local.set("s", Presence::of(&now_bob), 1));
    got.sort();
    assert_eq!(got, ["+ presence-room bob", "- presence-b ann", "- presence-room ann"]);
    assert_eq!(local.snapshot().len(), 1);
}

#[test]
fn silent_and_expired_sockets_are_found_by_the_alarm() {
    let mut local = LocalPresence::default();
    local.set("s", Presence::of(&socket("s", "ann", &["presence-room"], 1_000)), 10_000);
    assert_eq!(local.verdict("s", None, 0, 10_000 + SILENT_MS), Verdict::Keep, "seen at 10 s");
    assert_eq!(local.verdict("s", None, 0, 10_001 + SILENT_MS), Verdict::Silent);
    assert_eq!(local.verdict("s", Some(40_000), 0, 40_000 + SILENT_MS), Verdict::Keep, "it answered a ping");
    assert_eq!(local.verdict("s", None, 50_000, 50_000 + SILENT_MS), Verdict::Keep, "it sent a frame");
    let until = 1_000 + crate::auth::LEEWAY_SECONDS;
    assert_eq!(local.verdict("s", Some(until * 1000), 0, (until + 1) * 1000), Verdict::Expired);
    assert_eq!(local.verdict("other", None, 0, u64::MAX), Verdict::Keep, "not a presence socket");
    assert_eq!(local.next_check(0), Some(check_ms(SILENT_MS)));
    let short = LocalPresence::new(8_000);
    assert_eq!((short.check_ms(), short.next_check(0)), (2_000, None), "a quarter of the limit; no socket, no look");
    local.set("t", Presence::of(&socket("t", "bob", &["presence-room"], 3)), 0);
    assert_eq!(local.next_check(30_000), Some((3 + crate::auth::LEEWAY_SECONDS + 1) * 1000), "the first expiry");
    assert_eq!(LocalPresence::default().next_check(0), None, "no presence socket: no alarm");
}

fn change(sub: &str, present: bool) -> Change {
    Change { channel: room(), sub: sub.into(), present, info: None }
}

#[test]
fn reports_are_numbered_and_a_missing_one_asks_for_the_full_state() {
    let mut table = Table::new(2, "r0".into());
    let mut local = LocalPresence::default();
    let mut reporter = Reporter::new("k1".into());
    assert!(!reporter.owed());
    local.set("a", Presence::of(&socket("a", "ann", &["presence-room"], 100)), 0);
    reporter.changed(vec![change("ann", true)]);
    let first = reporter.next(&local, 1).unwrap();
    assert!(!first.full);
    assert_eq!(table.report(&first), Reported::NeedFull, "shard 0 does not know this run");
    assert!(!table.is_complete());
    reporter.failed();
    let full = reporter.next(&local, 1).unwrap();
    assert!(full.full);
    assert_eq!(table.report(&full), Reported::Applied(Vec::new()), "it completes the table: no event");
    assert!(table.is_complete());
    assert_eq!(table.list(&room()).len(), 1);
    // In order: applied. A gap: refused. Old: ignored.
    reporter.changed(vec![change("bob", true)]);
    let r3 = reporter.next(&local, 1).unwrap();
    assert!(matches!(table.report(&r3), Reported::Applied(e) if e.len() == 1));
    reporter.changed(vec![change("cat", true)]);
    let _lost = reporter.next(&local, 1).unwrap();
    reporter.changed(vec![change("dan", true)]);
    assert_eq!(table.report(&reporter.next(&local, 1).unwrap()), Reported::NeedFull);
    assert_eq!(table.report(&r3), Reported::Applied(Vec::new()), "already applied");
    // A pulled full state at the current rev replaces what the shard had: bob, cat, dan were
    // only ever reported, ann is really there.
    let pulled = reporter.full(&local, 1);
    let Reported::Applied(events) = table.report(&pulled) else { panic!() };
    assert_eq!(events, vec![Event::Leave { channel: room(), sub: "bob".into() }]);
    assert_eq!(table.list(&room()).iter().map(|m| m.sub.as_str()).collect::<Vec<_>>(), ["ann"]);
}

#[test]
fn a_member_on_two_shards_leaves_when_its_last_shard_does() {
    let mut table = Table::new(2, "r0".into());
    assert_eq!(table.view(), None, "incomplete: nothing is served");
    assert_eq!(table.missing(), [1]);
    let full = |rev, changes| Report { shard: 1, run: "k".into(), rev, full: true, changes };
    let info = json!({"name": "Ann"}).as_object().cloned();
    table.report(&full(1, vec![Change { info: info.clone(), ..change("ann", true) }]));
    assert_eq!(table.holders(), [1]);
    assert!(table.has_holders());
    assert_eq!(table.local(&[change("ann", true)]), [], "ann is already a member");
    let partial = |rev, changes| Report { shard: 1, run: "k".into(), rev, full: false, changes };
    assert_eq!(table.report(&partial(2, vec![change("ann", false)])), Reported::Applied(Vec::new()));
    assert_eq!(table.list(&room()), [Member { sub: "ann".into(), info: None }], "now shown with shard 0's info");
    assert_eq!(table.local(&[change("ann", false)]), [Event::Leave { channel: room(), sub: "ann".into() }]);
    assert_eq!(table.total(), Some(0));
    assert_eq!(table.holders(), Vec::<u32>::new());
    assert!(!table.has_holders());
}

#[test]
fn mirrors_apply_batches_in_order_and_reload_after_a_gap() {
    let mut table = Table::new(1, "r".into());
    let mut mirror = Mirror::default();
    assert_eq!(mirror.list(&room(), 10), None, "not in step: no list");
    mirror.load(table.view().unwrap());
    let mut batch = |c: Change| {
        let events = table.local(&[c]);
        table.batch(events)
    };
    let (b1, b2, b3) = (batch(change("ann", true)), batch(change("bob", true)), batch(change("ann", false)));
    let Step::Frames(f) = mirror.apply(b1.clone(), 10) else { panic!() };
    assert_eq!(f, [PresenceFrame::Join { channel: room(), sub: Some("ann".into()), info: None, count: 1 }]);
    assert_eq!(mirror.apply(b1, 10), Step::Old);
    assert_eq!(mirror.apply(b3.clone(), 10), Step::Gap, "b2 never came");
    assert_eq!(mirror.list(&room(), 10), None, "a mirror that missed a batch serves nothing");
    // Reloading: batches that arrive while the table is fetched are held, then applied.
    mirror.syncing = true;
    assert_eq!(mirror.apply(b3, 10), Step::Held);
    let view = TableView { run: "r".into(), n: 2, channels: vec![(room(), vec![member("ann"), member("bob")])] };
    assert!(mirror.load(view));
    let Some(PresenceFrame::Presence { members: Some(members), count: 1, .. }) = mirror.list(&room(), 10) else {
        panic!("{:?}", mirror.list(&room(), 10))
    };
    assert_eq!(members, [member("bob")], "the held leave of ann was applied after the table");
    let _ = b2;
}

fn member(sub: &str) -> Member {
    Member { sub: sub.into(), info: None }
}

#[test]
fn past_the_bound_frames_carry_the_count_only() {
    let mut mirror = Mirror::default();
    mirror.load(TableView { run: "r".into(), n: 0, channels: vec![(room(), vec![member("a"), member("b")])] });
    let batch = |n, events| Batch { run: "r".into(), n, events };
    let join = |s: &str| Event::Join { channel: room(), member: member(s) };
    let leave = |s: &str| Event::Leave { channel: room(), sub: s.into() };
    let Step::Frames(f) = mirror.apply(batch(1, vec![join("c")]), 2) else { panic!() };
    assert_eq!(f, [PresenceFrame::Join { channel: room(), sub: None, info: None, count: 3 }]);
    assert_eq!(mirror.list(&room(), 2), Some(PresenceFrame::Presence { channel: room(), members: None, count: 3 }));
    let Step::Frames(f) = mirror.apply(batch(2, vec![leave("a"), leave("b")]), 2) else { panic!() };
    assert_eq!(
        f,
        [
            PresenceFrame::Presence { channel: room(), members: Some(vec![member("b"), member("c")]), count: 2 },
            PresenceFrame::Leave { channel: room(), sub: Some("b".into()), count: 1 },
        ],
        "back within the bound: the list, then names again"
    );
    let json =
        ServerFrame::Presence(PresenceFrame::Join { channel: room(), sub: None, info: None, count: 3 }).to_json();
    assert_eq!(json, r#"{"type":"join","channel":"presence-room","count":3}"#);
    assert_eq!(answer(&room(), vec![member("a")], 0), json!({"channel": "presence-room", "count": 1}));
    assert_eq!(
        answer(&room(), vec![member("a")], 1),
        json!({"channel": "presence-room", "count": 1, "members": [{"sub": "a"}]})
    );
}

#[test]
fn two_shards_show_one_list() {
    // Shard 0 and a replica, each with a mirror; sockets come and go on both.
    let mut table = Table::new(2, "r".into());
    let (mut l0, mut l1) = (LocalPresence::default(), LocalPresence::default());
    let mut reporter = Reporter::new("k".into());
    let (mut m0, mut m1) = (Mirror::default(), Mirror::default());
    table.report(&reporter.full(&l1, 1));
    m0.load(table.view().unwrap());
    m1.load(table.view().unwrap());
    let mut seen1 = Vec::new();
    let mut step = |table: &mut Table, events: Vec<Event>, m0: &mut Mirror, m1: &mut Mirror| {
        if events.is_empty() {
            return;
        }
        let b = table.batch(events);
        m0.apply(b.clone(), 10);
        if let Step::Frames(f) = m1.apply(b, 10) {
            seen1.extend(f);
        }
    };
    let s = |conn: &str, sub: &str| Presence::of(&socket(conn, sub, &["presence-room"], 100));
    let ev = table.local(&l0.set("a0", s("a0", "ann"), 0));
    step(&mut table, ev, &mut m0, &mut m1);
    reporter.changed(l1.set("a1", s("a1", "ann"), 0));
    reporter.changed(l1.set("b1", s("b1", "bob"), 0));
    let Reported::Applied(ev) = table.report(&reporter.next(&l1, 1).unwrap()) else { panic!() };
    step(&mut table, ev, &mut m0, &mut m1);
    let ev = table.local(&l0.set("a0", None, 1));
    assert_eq!(ev, [], "ann is still on shard 1");
    reporter.changed(l1.set("a1", None, 2));
    let Reported::Applied(ev) = table.report(&reporter.next(&l1, 1).unwrap()) else { panic!() };
    step(&mut table, ev, &mut m0, &mut m1);
    assert_eq!(m0.list(&room(), 10), m1.list(&room(), 10));
    let Some(PresenceFrame::Presence { members: Some(members), count: 1, .. }) = m1.list(&room(), 10) else { panic!() };
    assert_eq!(members.iter().map(|m| m.sub.as_str()).collect::<Vec<_>>(), ["bob"]);
    let kinds: Vec<String> = seen1.iter().map(|f| ServerFrame::Presence(f.clone()).to_json()).collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(kinds[0].contains(r#""type":"join","channel":"presence-room","sub":"ann""#), "{kinds:?}");
    assert!(kinds[1].contains(r#""sub":"bob""#) && kinds[2].contains(r#""type":"leave""#), "{kinds:?}");
}

#[test]
fn the_alarm_looks_while_this_shard_or_any_replica_has_members() {
    use crate::core::presence_state::PresenceState;
    let mut table = Table::new(2, "r".into());
    table.report(&Report { shard: 1, run: "k".into(), rev: 1, full: true, changes: vec![] });
    let mut state = PresenceState {
        local: LocalPresence::new(8_000),
        reporter: Reporter::new("k0".into()),
        mirror: Mirror::default(),
        table: Some(table),
        outgoing: Default::default(),
        sending: false,
        behind: Default::default(),
        want_table: false,
        last_check: 1_000,
    };
    assert_eq!(state.check_at(), None, "no member anywhere: no alarm");
    let r = Report { shard: 1, run: "k".into(), rev: 2, full: false, changes: vec![change("ann", true)] };
    state.table.as_mut().unwrap().report(&r);
    assert_eq!(state.check_at(), Some(3_000), "a replica's members are re-read every quarter of the limit");
}
