use super::*;
use serde_json::{json, Value};
use tickwire_hub::wire::protocol::{EndReason, ErrorCode};

fn ch(name: &str) -> Channel {
    Channel::parse(name).unwrap()
}

fn update(channel: &str, seq: u64) -> ServerFrame {
    ServerFrame::Update(Update { channel: ch(channel), seq: Seq(seq), ts: 1_000 + seq, stale: false, data: json!(seq) })
}

fn subscribed(channel: &str, seq: u64, epoch: &str, recovered: bool) -> ServerFrame {
    ServerFrame::Subscribed { channel: ch(channel), seq: Seq(seq), epoch: Epoch(epoch.into()), recovered }
}

fn welcome() -> ServerFrame {
    ServerFrame::Welcome { conn: "c0ffee".into(), protocol: 1, channels: Channel::built_in(), stale_after_seconds: 180 }
}

/// Feeds frames; returns the seqs passed on and the notes, in order, as short strings.
fn feed(r: &mut Resume, frames: Vec<ServerFrame>) -> Vec<String> {
    frames
        .into_iter()
        .flat_map(|f| r.frame(f))
        .map(|o| match o {
            Output::Welcome { conn, stale_after_seconds } => format!("welcome {conn} {stale_after_seconds}"),
            Output::Update(u) => format!("{}#{}", u.channel, u.seq),
            Output::Note(n) => format!("note: {n}"),
            Output::Send(s) => format!("send: {s}"),
            Output::Authed { sub, exp } => format!("authed {sub} {exp}"),
            Output::TokenRefused(why) => format!("refused: {why}"),
            Output::Presence(f) => format!("presence: {}", ServerFrame::Presence(f).to_json()),
        })
        .collect()
}

/// A resume state that has followed `channel` up to `seq` in `epoch`.
fn at(channel: &str, seq: u64, epoch: &str) -> Resume {
    let mut r = Resume::new(&[ch(channel)]);
    r.connected();
    feed(&mut r, vec![update(channel, seq), subscribed(channel, seq, epoch, false)]);
    r
}

#[test]
fn a_fresh_follow_passes_the_latest_value_on_at_its_subscribed() {
    let mut r = Resume::new(&[ch("btc")]);
    assert_eq!(r.since_param(), "");
    r.connected();
    assert_eq!(feed(&mut r, vec![welcome(), update("btc", 41)]), ["welcome c0ffee 180"], "held until subscribed");
    assert_eq!(feed(&mut r, vec![subscribed("btc", 41, "e1", false)]), ["btc#41"]);
    assert_eq!(r.since_param(), "btc:41@e1");
    assert_eq!(feed(&mut r, vec![update("btc", 42), update("btc", 43)]), ["btc#42", "btc#43"], "live: at once");
    assert_eq!(r.since_param(), "btc:43@e1");
}

#[test]
fn a_batch_is_handled_frame_by_frame() {
    let mut r = Resume::new(&[ch("btc"), ch("market")]);
    r.connected();
    let batch = ServerFrame::Batch {
        frames: vec![
            welcome(),
            update("btc", 5),
            subscribed("btc", 5, "e", false),
            ServerFrame::Batch { frames: vec![update("market", 2), subscribed("market", 2, "m", false)] },
        ],
    };
    assert_eq!(feed(&mut r, vec![batch]), ["welcome c0ffee 180", "btc#5", "market#2"]);
    assert_eq!(r.since_param(), "btc:5@e,market:2@m");
}

#[test]
fn a_resume_passes_on_what_was_missed_once_and_drops_what_was_seen() {
    let mut r = at("btc", 41, "e1");
    r.connected();
    let frames = vec![update("btc", 40), update("btc", 41), update("btc", 42), update("btc", 43)];
    assert_eq!(feed(&mut r, frames), Vec::<String>::new());
    assert_eq!(feed(&mut r, vec![subscribed("btc", 43, "e1", true)]), ["btc#42", "btc#43"]);
    assert_eq!(feed(&mut r, vec![update("btc", 43), update("btc", 44), update("btc", 44)]), ["btc#44"]);
}

#[test]
fn a_live_seq_jump_is_a_gap() {
    let mut r = at("btc", 44, "e1");
    assert_eq!(
        feed(&mut r, vec![update("btc", 46), subscribed("btc", 46, "e1", false)]),
        ["note: gap in btc: seq 45 not received", "btc#46"],
        "the server's unasked `subscribed` after the jump adds nothing"
    );
    assert_eq!(feed(&mut r, vec![update("btc", 50)]), ["note: gap in btc: seqs 47..49 not received", "btc#50"]);
}

#[test]
fn a_resume_the_server_cannot_replay_is_a_gap() {
    let mut r = at("btc", 44, "e1");
    r.connected();
    assert_eq!(
        feed(&mut r, vec![update("btc", 400), subscribed("btc", 400, "e1", false)]),
        ["note: gap in btc: seqs 45..399 not received", "btc#400"]
    );
    // No update at all, yet the server is further: also a gap.
    r.connected();
    let out = feed(&mut r, vec![subscribed("btc", 402, "e1", false)]);
    assert_eq!(out, ["note: gap in btc: the server is at seq 402, the last update received was 400"]);
    assert_eq!(r.since_param(), "btc:402@e1");
}

#[test]
fn a_recreated_channel_starts_its_seqs_over() {
    let mut r = at("orders", 44, "old");
    r.connected();
    let out = feed(&mut r, vec![update("orders", 3), subscribed("orders", 3, "new", false)]);
    assert_eq!(
        out,
        [
            "note: orders was recreated on the server (epoch old is now new); its seqs start over",
            "note: gap in orders: seqs 1..2 not received",
            "orders#3"
        ]
    );
    assert_eq!(r.since_param(), "orders:3@new");
    assert_eq!(feed(&mut r, vec![update("orders", 4)]), ["orders#4"]);
}

#[test]
fn a_position_without_epoch_that_the_server_does_not_know_is_left_for_its_latest() {
    let mut r = Resume::with_since(&[ch("btc")], "btc:41").unwrap();
    assert_eq!(r.since_param(), "btc:41");
    r.connected();
    let out = feed(&mut r, vec![update("btc", 10), subscribed("btc", 10, "e", false)]);
    assert_eq!(out, ["note: btc: could not resume from seq 41; the server's latest is seq 10", "btc#10"]);
    assert_eq!(r.since_param(), "btc:10@e");
    // A channel that has nothing yet, asked from a position past it.
    let mut r = Resume::with_since(&[ch("news")], "news:5").unwrap();
    r.connected();
    let out = feed(&mut r, vec![subscribed("news", 0, "", false)]);
    assert_eq!(out, ["note: news: could not resume from seq 5; the server is at seq 0"]);
    assert_eq!(r.since_param(), "news:0");
}

#[test]
fn since_resumes_from_given_positions() {
    let mut r = Resume::with_since(&[ch("btc"), ch("orders")], "orders:7@e9").unwrap();
    assert_eq!(r.since_param(), "orders:7@e9");
    r.connected();
    let frames = vec![
        update("orders", 8),
        subscribed("orders", 8, "e9", true),
        update("btc", 1),
        subscribed("btc", 1, "b", false),
    ];
    assert_eq!(feed(&mut r, frames), ["orders#8", "btc#1"]);
    for (bad, why) in [
        ("news:1", "not among the channels"),
        ("btc", "channel:seq"),
        ("btc:x", "channel:seq"),
        ("BTC:1", "invalid channel name"),
        ("btc:1@", "channel:seq"),
    ] {
        let e = Resume::with_since(&[ch("btc"), ch("orders")], bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn an_app_channel_followed_before_its_first_publish() {
    let mut r = Resume::new(&[ch("news")]);
    r.connected();
    assert_eq!(feed(&mut r, vec![subscribed("news", 0, "", true)]), Vec::<String>::new());
    assert_eq!(r.since_param(), "news:0");
    assert_eq!(feed(&mut r, vec![update("news", 1), update("news", 2)]), ["news#1", "news#2"]);
    r.connected();
    assert_eq!(feed(&mut r, vec![update("news", 3), subscribed("news", 3, "e", true)]), ["news#3"]);
    assert_eq!(r.since_param(), "news:3@e", "the epoch is learnt at the next subscribed");
}

#[test]
fn a_catch_up_cut_short_is_asked_for_again() {
    let mut r = at("btc", 5, "e");
    r.connected();
    assert_eq!(feed(&mut r, vec![update("btc", 6)]), Vec::<String>::new());
    assert_eq!(r.since_param(), "btc:5@e", "held updates are not a position");
    r.connected();
    assert_eq!(
        feed(&mut r, vec![update("btc", 6), update("btc", 7), subscribed("btc", 7, "e", true)]),
        ["btc#6", "btc#7"]
    );
}

#[test]
fn a_deleted_channel_is_followed_again() {
    let mut r = at("orders", 9, "old");
    let out = feed(&mut r, vec![ServerFrame::Unsubscribed { channel: ch("orders"), reason: None }]);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].contains("orders was deleted"), "{out:?}");
    let op: Value = serde_json::from_str(out[1].strip_prefix("send: ").unwrap()).unwrap();
    assert_eq!(op, json!({"op": "subscribe", "channels": ["orders"], "since": {"orders": 0}}));
    assert_eq!(feed(&mut r, vec![subscribed("orders", 0, "", true), update("orders", 1)]), ["orders#1"]);
    assert_eq!(r.since_param(), "orders:1");
}

#[test]
fn the_rest_becomes_notes() {
    let mut r = Resume::new(&[ch("btc")]);
    r.connected();
    let frames = vec![
        update("eth", 1),
        subscribed("eth", 1, "e", false),
        ServerFrame::Delta { channel: ch("btc"), seq: Seq(2), ts: 0, stale: false, patch: json!({}) },
        ServerFrame::error(ErrorCode::TooManySubscriptions, "at most 32"),
    ];
    let out = feed(&mut r, frames);
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(out[0].contains("ignored an update of eth"), "{out:?}");
    assert!(out[1].contains("ignored a subscription to eth"), "{out:?}");
    assert!(out[2].contains("ignored a delta of btc"), "{out:?}");
    assert_eq!(out[3], "note: server error too_many_subscriptions: at most 32");
}

#[test]
fn a_subscribe_op_carries_the_epoch_when_known() {
    let op: Value = serde_json::from_str(&subscribe_op(&[(
        &ch("x"),
        Some(&Position { seq: Seq(4), epoch: Some(Epoch("e".into())) }),
    )]))
    .unwrap();
    assert_eq!(op["since"], json!({"x": {"seq": 4, "epoch": "e"}}));
    let since: tickwire_hub::wire::protocol::Since = serde_json::from_value(op["since"]["x"].clone()).unwrap();
    assert_eq!(
        since,
        tickwire_hub::wire::protocol::Since::At { seq: 4, epoch: Some(Epoch("e".into())) },
        "the hub reads it back"
    );
}

/// An update of `channel` whose data is `bytes` characters of text.
fn sized(channel: &str, seq: u64, bytes: usize) -> ServerFrame {
    let data = json!("x".repeat(bytes));
    ServerFrame::Update(Update { channel: ch(channel), seq: Seq(seq), ts: 0, stale: false, data })
}

#[test]
fn the_hold_before_subscribed_is_bounded_and_what_it_drops_is_a_gap() {
    let mut r = at("btc", 1, "e");
    r.connected();
    // A server that streams 50 KB updates and never says `subscribed`: 5 MB in all.
    let mut out = Vec::new();
    for seq in 2..=101 {
        out.extend(feed(&mut r, vec![sized("btc", seq, 50_000)]));
    }
    assert_eq!(out, ["note: btc: more than 2 MiB of updates before its subscribed; dropping the oldest"], "said once");
    let held = r.channels[&ch("btc")].held.as_ref().unwrap();
    assert!(held.bytes <= HOLD_BYTES, "{}", held.bytes);
    assert_eq!(held.bytes, held.updates.iter().map(|(n, _)| n).sum::<usize>());
    let kept = held.updates.len() as u64;
    assert!((38..=42).contains(&kept), "about 2 MiB of 50 KB updates: {kept}");
    assert_eq!(held.dropped, 100 - kept);
    // The newest are kept: at `subscribed` they are passed on after a gap for the dropped ones.
    let out = feed(&mut r, vec![subscribed("btc", 101, "e", true)]);
    let first_kept = 102 - kept;
    assert_eq!(out[0], format!("note: gap in btc: seqs 2..{} not received", first_kept - 1));
    assert_eq!(out[1..], (first_kept..=101).map(|s| format!("btc#{s}")).collect::<Vec<_>>()[..]);
    assert_eq!(r.since_param(), "btc:101@e");
}

#[test]
fn the_hold_keeps_its_newest_update_whatever_its_size_and_each_channel_has_its_own() {
    let mut r = Resume::new(&[ch("btc"), ch("news")]);
    r.connected();
    let out = feed(&mut r, vec![sized("news", 1, 3 << 20), sized("btc", 1, 1000)]);
    assert!(out.is_empty(), "one update over the cap is held: {out:?}");
    let out = feed(&mut r, vec![sized("news", 2, 10)]);
    assert_eq!(out, ["note: news: more than 2 MiB of updates before its subscribed; dropping the oldest"]);
    let out = feed(&mut r, vec![subscribed("news", 2, "n", false), subscribed("btc", 1, "b", false)]);
    assert_eq!(out, ["news#2", "btc#1"], "a fresh follow has no position to report a gap from");
}

#[test]
fn without_a_token_every_channel_is_in_the_url() {
    let mut r = at("private-u42", 3, "e");
    r.channels.insert(ch("btc"), Followed::default());
    let o = r.opening(None);
    assert_eq!(
        o,
        Opening { channels: vec![ch("btc"), ch("private-u42")], since: "private-u42:3@e".into(), first: vec![] }
    );
}

#[test]
fn with_a_token_it_goes_first_and_private_channels_follow_by_op() {
    let mut r = at("private-u42", 3, "e");
    for c in ["btc", "private-room-1", "orders"] {
        r.channels.insert(ch(c), Followed::default());
    }
    r.channels.get_mut(&ch("orders")).unwrap().position = Some(Position { seq: Seq(7), epoch: None });
    let o = r.opening(Some("t.o.k"));
    assert_eq!(o.channels, [ch("btc"), ch("orders")], "public channels stay in the URL");
    assert_eq!(o.since, "orders:7", "with their positions only");
    assert_eq!(o.first.len(), 2);
    assert_eq!(serde_json::from_str::<Value>(&o.first[0]).unwrap(), json!({"op": "auth", "token": "t.o.k"}));
    assert_eq!(
        serde_json::from_str::<Value>(&o.first[1]).unwrap(),
        json!({"op": "subscribe", "channels": ["private-room-1", "private-u42"],
               "since": {"private-u42": {"seq": 3, "epoch": "e"}}})
    );
    assert_eq!(r.since_param(), "orders:7,private-u42:3@e", "--since on stop still names every channel");
    // Only public channels: the token alone goes first.
    let o = Resume::new(&Channel::built_in()).opening(Some("t"));
    assert_eq!((o.channels.len(), o.first.len()), (4, 1));
}

#[test]
fn token_frames() {
    let mut r = Resume::new(&[ch("private-a")]);
    r.connected();
    let out = feed(
        &mut r,
        vec![
            ServerFrame::Authed { sub: "u42".into(), exp: 1_765_000_000 },
            ServerFrame::Published { channel: ch("private-a"), seq: Seq(4), id: None },
            ServerFrame::error(ErrorCode::Forbidden, "no subscribe on private-a"),
            ServerFrame::error(ErrorCode::Unauthorized, "token signature does not verify"),
            ServerFrame::error(ErrorCode::TokenExpired, "token expired"),
            ServerFrame::refusal(ErrorCode::Forbidden, "no subscribe", &ch("private-b")),
            ServerFrame::Unsubscribed { channel: ch("private-a"), reason: Some(EndReason::TokenExpired) },
            ServerFrame::Unsubscribed { channel: ch("private-a"), reason: Some(EndReason::Forbidden) },
            ServerFrame::refusal(ErrorCode::InvalidChannel, "bad", &ch("x")),
        ],
    );
    assert_eq!(
        out,
        [
            "authed u42 1765000000",
            "note: published to private-a: seq 4",
            "refused: token refused: forbidden: no subscribe on private-a",
            "refused: token refused: unauthorized: token signature does not verify",
            "refused: token refused: token_expired: token expired",
            "refused: token refused: forbidden (private-b): no subscribe",
            "refused: the server ended private-a: the token expired",
            "refused: the server ended private-a: the token no longer grants it",
            "note: server error invalid_channel (x): bad",
        ]
    );
}

#[test]
fn presence_frames_of_followed_channels_are_passed_on_and_others_ignored() {
    let mut r = Resume::new(&[ch("presence-room")]);
    r.connected();
    let frame = |text: &str| serde_json::from_str::<ServerFrame>(text).unwrap();
    let out = feed(
        &mut r,
        vec![
            frame(r#"{"type":"presence","channel":"presence-room","members":[{"sub":"ann"}],"count":1}"#),
            frame(r#"{"type":"join","channel":"presence-room","sub":"bob","count":2}"#),
            frame(r#"{"type":"leave","channel":"presence-other","sub":"cy","count":0}"#),
        ],
    );
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].contains(r#""type":"presence""#) && out[0].contains(r#""sub":"ann""#), "{out:?}");
    assert!(out[1].contains(r#""type":"join""#) && out[1].contains(r#""sub":"bob""#), "{out:?}");
}

#[test]
fn conflated_channels_jump_without_a_gap_note_but_plain_ones_report_it() {
    let mut plain = at("btc", 5, "e");
    assert_eq!(feed(&mut plain, vec![update("btc", 9)]), ["note: gap in btc: seqs 6..8 not received", "btc#9"]);
    let mut conflated = Resume::new(&[ch("btc")]).conflated();
    conflated.connected();
    feed(&mut conflated, vec![update("btc", 5), subscribed("btc", 5, "e", false)]);
    assert_eq!(feed(&mut conflated, vec![update("btc", 9), update("btc", 9), update("btc", 20)]), ["btc#9", "btc#20"]);
}
