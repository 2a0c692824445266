//! The socket path's catch-ups: replays within the socket's budget, framed from stored text,
//! shared between sockets that resume alike, and never partial.

use super::*;
use crate::core::catchup::{CatchupFrames, CatchupStep, ReplayEntries, ReplayRead};
use crate::core::history_budget::{CatchupBudget, ReplayWindow};
use crate::core::storage_key::StoredUpdate;
use std::rc::Rc;

/// A core whose `news` has seqs 1..=n (history keeps the last 5), and the stored text of each.
fn published(n: u64) -> (HubCore, Vec<StoredUpdate>) {
    let mut c = core();
    let mut stored = Vec::new();
    for i in 1..=n {
        for w in app(&mut c, i).1.history {
            stored.push(StoredUpdate { seq: w.put.seq, json: Stored::encode_history(&w.put).unwrap() });
        }
    }
    (c, stored)
}

fn budget(window: usize, request: usize) -> CatchupBudget {
    ReplayWindow::default().begin(1, window, request)
}

fn range(stored: &[StoredUpdate], from: u64, to: u64) -> Vec<StoredUpdate> {
    stored.iter().filter(|s| (from..=to).contains(&s.seq.0)).cloned().collect()
}

/// The frames of a catch-up as JSON values, updates first.
fn frames(f: &CatchupFrames) -> Vec<Value> {
    let mut out: Vec<Value> = match &f.updates {
        Some(text) => serde_json::from_str::<Vec<Value>>(&format!("[{text}]")).unwrap(),
        None => Vec::new(),
    };
    assert_eq!(out.len(), f.count);
    out.push(frame(&f.subscribed.to_json()));
    out
}

fn done(step: CatchupStep) -> CatchupFrames {
    match step {
        CatchupStep::Done(f) => f,
        CatchupStep::Read(r) => panic!("expected no read, got {r:?}"),
    }
}

fn read(step: CatchupStep) -> ReplayRead {
    match step {
        CatchupStep::Read(r) => r,
        CatchupStep::Done(f) => panic!("expected a read, got {f:?}"),
    }
}

#[test]
fn a_replay_that_fits_is_the_frames_decoding_would_build() {
    let (mut c, stored) = published(8);
    let mut b = budget(1 << 20, 1 << 20);
    let r = read(c.catchup(&news(), Some(&Since::Seq(5)), &mut b, 8));
    assert_eq!((r.from, r.to, r.budget), (Seq(6), Seq(8), 1 << 20));
    let f = c.replayed(&news(), r, Some(ReplayEntries { updates: range(&stored, 6, 8), full: false }), &mut b, 8);
    // The reference: the decoded path's frames for the same replay.
    let decoded: Vec<Update> = range(&stored, 6, 8).iter().map(|s| serde_json::from_str(&s.json).unwrap()).collect();
    let plan = c.plan(&news(), Some(&Since::Seq(5)));
    let want: Vec<Value> = c.catchup_frames(&news(), &plan, decoded, 8).iter().map(|f| frame(&f.to_json())).collect();
    assert_eq!(frames(&f), want);
    assert_eq!(want.last().unwrap()["recovered"], true);
    let bytes: usize = range(&stored, 6, 8).iter().map(|s| s.json.len()).sum();
    assert_eq!(b.spent(), bytes, "a replay costs its stored bytes");
}

#[test]
fn sockets_resuming_alike_share_one_catch_up_until_the_channel_moves() {
    let (mut c, stored) = published(8);
    let mut first = budget(1 << 20, 1 << 20);
    let r = read(c.catchup(&news(), Some(&Since::Seq(5)), &mut first, 8));
    let built =
        c.replayed(&news(), r, Some(ReplayEntries { updates: range(&stored, 6, 8), full: false }), &mut first, 8);
    for _ in 0..1000 {
        let mut b = budget(1 << 20, 1 << 20);
        let again = done(c.catchup(&news(), Some(&Since::Seq(5)), &mut b, 8));
        assert!(Rc::ptr_eq(again.updates.as_ref().unwrap(), built.updates.as_ref().unwrap()), "the same text");
        assert_eq!((again.count, b.spent()), (3, first.spent()), "and the same cost");
    }
    assert_eq!(c.catchup_cache_size().0, 1);
    // Another starting point is built on its own; a publish moves the channel: read again.
    let mut b = budget(1 << 20, 1 << 20);
    assert_eq!(read(c.catchup(&news(), Some(&Since::Seq(6)), &mut b, 8)).from, Seq(7));
    app(&mut c, 9);
    assert_eq!(read(c.catchup(&news(), Some(&Since::Seq(5)), &mut b, 9)).to, Seq(9));
}

#[test]
fn a_gap_that_does_not_fit_gets_the_latest_value_and_is_read_once() {
    let (mut c, stored) = published(8);
    let mut b = budget(1 << 20, 100);
    let r = read(c.catchup(&news(), Some(&Since::Seq(3)), &mut b, 8));
    assert_eq!(r.budget, 100, "read no further than the request may send");
    // The strict read ran out of budget after one entry.
    let f = c.replayed(&news(), r, Some(ReplayEntries { updates: range(&stored, 4, 4), full: true }), &mut b, 8);
    let got = frames(&f);
    assert_eq!((got[0]["seq"].clone(), got[1]["recovered"].clone()), (json!(8), json!(false)), "{got:?}");
    assert_eq!(got.len(), 2, "the latest value only, never a partial replay");
    // Another socket asking the same with no more allowance is refused without a read.
    let mut b = budget(1 << 20, 100);
    let f = done(c.catchup(&news(), Some(&Since::Seq(3)), &mut b, 8));
    assert_eq!(frames(&f)[1]["recovered"], false);
    // One with more allowance reads again.
    let mut b = budget(1 << 20, 1 << 20);
    assert_eq!(read(c.catchup(&news(), Some(&Since::Seq(3)), &mut b, 8)).budget, 1 << 20);
}

#[test]
fn a_gap_the_cache_knows_too_large_costs_no_allowance_so_the_rest_of_the_request_replays() {
    let (mut c, stored) = published(8);
    let mut b = budget(1 << 20, 200);
    let r = read(c.catchup(&news(), Some(&Since::Seq(3)), &mut b, 8));
    c.replayed(&news(), r, Some(ReplayEntries { updates: range(&stored, 4, 5), full: true }), &mut b, 8);
    // A storm: the next socket names the same gap first (refused from the cache, unread), then a
    // gap that fits in the same request: it is still read and replayed, whatever the order.
    let mut b = budget(1 << 20, 200);
    let refused = done(c.catchup(&news(), Some(&Since::Seq(3)), &mut b, 8));
    assert_eq!(frames(&refused)[1]["recovered"], false);
    let latest: usize = range(&stored, 8, 8)[0].json.len();
    assert!(b.spent() <= latest + 64, "only the latest value was paid for: {}", b.spent());
    // Seq 8 alone was built already (it is the latest value): shared, recovered.
    let f = done(c.catchup(&news(), Some(&Since::Seq(7)), &mut b, 8));
    let got = frames(&f);
    assert_eq!((got[0]["seq"].clone(), got[1]["recovered"].clone()), (json!(8), json!(true)), "{got:?}");
}

#[test]
fn a_spent_window_replays_nothing_and_sends_one_latest_value_per_request() {
    let (mut c, stored) = published(8);
    let mut w = ReplayWindow::default();
    let mut b = w.begin(1_000, 300, 1 << 20);
    let r = read(c.catchup(&news(), Some(&Since::Seq(3)), &mut b, 8));
    c.replayed(&news(), r, Some(ReplayEntries { updates: range(&stored, 4, 5), full: true }), &mut b, 8);
    w.end(&b);
    // Within the same 10 s: no read at all, just the latest value, however often it asks.
    for t in 0..50 {
        let mut b = w.begin(2_000 + t, 300, 1 << 20);
        let f = done(c.catchup(&news(), Some(&Since::Seq(7)), &mut b, 8));
        assert_eq!(
            frames(&f).iter().map(|v| v["type"].clone()).collect::<Vec<_>>(),
            [json!("update"), json!("subscribed")]
        );
        assert_eq!(frames(&f)[1]["recovered"], false);
        // A second channel in the same request: no value (the client reads it from history).
        let other = done(c.catchup(&news(), None, &mut b, 8));
        assert_eq!((other.count, frames(&other)[0]["seq"].clone()), (0, json!(8)));
        w.end(&b);
    }
    // The next window replays again (seq 8 alone is the latest value, which is built already).
    let mut b = w.begin(11_001, 300, 1 << 20);
    let f = done(c.catchup(&news(), Some(&Since::Seq(7)), &mut b, 8));
    assert_eq!(frames(&f).iter().map(|v| v["seq"].clone()).collect::<Vec<_>>(), [json!(8), json!(8)]);
    assert_eq!(frames(&f)[1]["recovered"], true);
    assert_eq!(read(c.catchup(&news(), Some(&Since::Seq(5)), &mut b, 8)).from, Seq(6));
}

#[test]
fn a_replay_with_a_hole_a_bad_entry_or_a_moved_channel_is_not_recovered() {
    let (mut c, stored) = published(8);
    let cases: Vec<(Vec<StoredUpdate>, &str)> = vec![
        (vec![stored[5].clone(), stored[7].clone()], "hole"),
        (vec![stored[5].clone(), stored[6].clone(), StoredUpdate { seq: Seq(8), json: "{".into() }], "unreadable"),
        (range(&stored, 6, 7), "short"),
    ];
    for (updates, what) in cases {
        let mut b = budget(1 << 20, 1 << 20);
        let r = read(c.catchup(&news(), Some(&Since::Seq(5)), &mut b, 8));
        let f = c.replayed(&news(), r, Some(ReplayEntries { updates, full: false }), &mut b, 8);
        assert_eq!(frames(&f).iter().map(|v| v["seq"].clone()).collect::<Vec<_>>(), [json!(8), json!(8)], "{what}");
        assert_eq!(frames(&f)[1]["recovered"], false, "{what}");
    }
    assert_eq!(c.catchup_cache_size().0, 1, "only the latest value was kept");
    // Published while storage was read: the read is complete but old.
    let mut b = budget(1 << 20, 1 << 20);
    let r = read(c.catchup(&news(), Some(&Since::Seq(5)), &mut b, 8));
    app(&mut c, 9);
    let f = c.replayed(&news(), r, Some(ReplayEntries { updates: range(&stored, 6, 8), full: false }), &mut b, 9);
    assert_eq!(frames(&f)[0]["seq"], 9);
    assert_eq!(frames(&f)[1]["recovered"], false);
    let f = c.replayed(&news(), r, None, &mut budget(1 << 20, 1 << 20), 9);
    assert_eq!(frames(&f)[1]["recovered"], false, "a failed read");
}

#[test]
fn up_to_date_and_unknown_channels_cost_nothing() {
    let (mut c, _) = published(3);
    let mut b = budget(1 << 20, 1 << 20);
    let f = done(c.catchup(&news(), Some(&Since::Seq(3)), &mut b, 3));
    assert_eq!((f.count, frames(&f)[0]["recovered"].clone()), (0, json!(true)));
    let nope = Channel::parse("nope").unwrap();
    let f = done(c.catchup(&nope, Some(&Since::Seq(3)), &mut b, 3));
    assert_eq!(
        frames(&f),
        [json!({"type": "subscribed", "channel": "nope", "seq": 0, "epoch": "", "recovered": false})]
    );
    assert_eq!(b.spent(), 0);
}

#[test]
fn every_catch_up_is_counted_once_by_outcome() {
    use crate::core::history_budget::CatchupOutcome as O;
    let (mut c, stored) = published(8);
    let mut b = budget(1 << 20, 1 << 20);
    let r = read(c.catchup(&news(), Some(&Since::Seq(5)), &mut b, 8));
    c.replayed(&news(), r, Some(ReplayEntries { updates: range(&stored, 6, 8), full: false }), &mut b, 8);
    done(c.catchup(&news(), Some(&Since::Seq(5)), &mut b, 8));
    done(c.catchup(&news(), Some(&Since::Seq(8)), &mut b, 8));
    done(c.catchup(&news(), None, &mut b, 8));
    let mut small = budget(1 << 20, 10);
    let r = read(c.catchup(&news(), Some(&Since::Seq(4)), &mut small, 8));
    c.replayed(&news(), r, Some(ReplayEntries { updates: vec![], full: true }), &mut small, 8);
    done(c.catchup(&news(), None, &mut small, 8));
    let counted = c.stats(0, 0, |_| 0).counters.catchups;
    let want = [(O::Replayed, 1), (O::Shared, 1), (O::UpToDate, 1), (O::TooLarge, 1), (O::Latest, 1), (O::Withheld, 1)];
    assert_eq!(counted, want.into_iter().collect(), "{counted:?}");
}
