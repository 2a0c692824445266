//! Presence channels against a real `wrangler dev` with two shards: one member list across
//! shards however many sockets a member has, joins and leaves once each and in order (clean
//! close, vanished connection, unsubscribe, token expiry), a fresh list after a reconnect, the
//! bound on lists, and readers without the `presence` capability refused or shown nothing.

use crate::harness::{now_s, Client, Fixture, Wrangler, PUBLISH_TOKEN, TOKEN_SECRET};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use tickwire_hub::auth::{mint, Caps, Claims, Subject};

const ROOM: &str = "presence-room";
const FRAME_WAIT: Duration = Duration::from_secs(10);
/// Long enough for a frame that was going to arrive to have arrived.
const QUIET: Duration = Duration::from_millis(2000);

fn vars(max_members: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("PUBLISH_TOKEN", PUBLISH_TOKEN),
        ("TOKEN_SECRET", TOKEN_SECRET),
        ("HUB_SHARDS", "2"),
        ("MAX_PRESENCE_MEMBERS", max_members),
    ]
}

/// A token for `sub` with `info` {"name": sub in capitals}, expiring `exp_in` s from now.
fn member_token(sub: &str, caps: Value, exp_in: i64) -> String {
    let mut claims = Claims::new(Subject::parse(sub).expect("sub"), now_s().saturating_add_signed(exp_in));
    claims.caps = Caps::from_claim(&caps).expect("caps");
    claims.info = json!({ "name": sub.to_uppercase() }).as_object().cloned();
    mint(&claims, TOKEN_SECRET)
}

fn seer(sub: &str) -> String {
    member_token(sub, json!({ "presence-*": ["subscribe", "presence"] }), 3600)
}

fn is_presence(v: &Value) -> bool {
    ["presence", "join", "leave"].contains(&v["type"].as_str().unwrap_or("")) && v["channel"] == ROOM
}

/// A socket's view of the member list, kept from its presence frames as a client would.
struct Member {
    c: Client,
    members: BTreeSet<String>,
    /// The join and leave frames it got, as "+sub" / "-sub".
    log: Vec<String>,
}

impl Member {
    fn open(w: &Wrangler, token: &str, shard: u32) -> Member {
        let c = w.client(&format!("/ws?channels={ROOM}&token={token}&shard={shard}"));
        let mut m = Member { c, members: BTreeSet::new(), log: Vec::new() };
        m.c.expect("authed", FRAME_WAIT, |v| v["type"] == "authed");
        let list = m.c.expect("presence list", FRAME_WAIT, |v| v["type"] == "presence");
        m.apply(&list);
        m
    }

    fn apply(&mut self, f: &Value) {
        let sub = f["sub"].as_str().map(str::to_owned);
        match f["type"].as_str() {
            Some("presence") => {
                let members = f["members"].as_array().expect("a list within the bound");
                self.members = members.iter().map(|m| m["sub"].as_str().expect("sub").to_owned()).collect();
                assert_eq!(f["count"], members.len(), "{f}");
                for m in members {
                    let name = m["sub"].as_str().unwrap_or("").to_uppercase();
                    assert_eq!(m["info"], json!({ "name": name }), "{f}");
                }
            }
            Some("join") => {
                let sub = sub.expect("a join names the member");
                assert!(self.members.insert(sub.clone()), "a join of {sub}, who is already there: {:?}", self.log);
                self.log.push(format!("+{sub}"));
                assert_eq!(f["count"], self.members.len(), "{f}");
            }
            Some("leave") => {
                let sub = sub.expect("a leave names the member");
                assert!(self.members.remove(&sub), "a leave of {sub}, who is not there: {:?}", self.log);
                self.log.push(format!("-{sub}"));
                assert_eq!(f["count"], self.members.len(), "{f}");
            }
            _ => {}
        }
    }

    /// Reads presence frames until the list is `want`.
    fn until(&mut self, want: &[&str]) {
        // A sign of life, as the client library's 25 s ping: a silent socket is closed at 60 s.
        self.c.send_text("ping");
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        let deadline = std::time::Instant::now() + FRAME_WAIT;
        while self.members != want {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.c.take(left, is_presence) {
                Some(f) => self.apply(&f),
                None => panic!("list {:?}, want {want:?}; log {:?}", self.members, self.log),
            }
        }
    }

    /// Whatever presence frames arrive within `QUIET`, applied.
    fn settle(&mut self) {
        self.c.send_text("ping");
        for f in self.c.collect(QUIET).iter().filter(|f| is_presence(f)) {
            self.apply(f);
        }
    }
}

#[test]
fn members_across_shards_share_one_list_with_each_join_and_leave_once_in_order() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &vars("100"));
    // Two watchers (one member, "obs", with a socket on each shard), then three members with
    // five sockets across both shards.
    let mut watchers = vec![Member::open(&w, &seer("obs"), 0), Member::open(&w, &seer("obs"), 1)];
    for m in &mut watchers {
        m.until(&["obs"]);
    }
    let mut sockets: Vec<Member> = [("ann", 0), ("ann", 1), ("bob", 1), ("cat", 0), ("cat", 1)]
        .into_iter()
        .map(|(sub, shard)| Member::open(&w, &seer(sub), shard))
        .collect();
    let all = ["ann", "bob", "cat", "obs"];
    for m in watchers.iter_mut().chain(sockets.iter_mut()) {
        m.until(&all);
    }
    let r = w.get_bearer(&format!("/api/presence?channel={ROOM}"), PUBLISH_TOKEN);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let subs: Vec<&str> =
        body["members"].as_array().expect("members").iter().filter_map(|m| m["sub"].as_str()).collect();
    assert_eq!((subs, body["count"].clone()), (all.to_vec(), json!(4)), "{}", r.body);

    // A clean close of one of ann's two sockets is no leave; of the second, one leave.
    sockets[1].c.close();
    for m in &mut watchers {
        m.settle();
        assert_eq!(m.members.len(), 4, "{:?}", m.log);
    }
    sockets[0].c.close();
    // cat's connections vanish: cut without a close frame, one after the other.
    for m in &mut watchers {
        m.until(&["bob", "cat", "obs"]);
    }
    sockets[3].c.ws.cut();
    for m in &mut watchers {
        m.settle();
        assert!(m.members.contains("cat"), "{:?}", m.log);
    }
    sockets[4].c.ws.cut();
    for m in &mut watchers {
        m.until(&["bob", "obs"]);
    }
    // bob unsubscribes: his socket stays open, he leaves.
    sockets[2].c.send_json(&json!({"op": "unsubscribe", "channels": [ROOM]}));
    sockets[2].c.expect("unsubscribed", FRAME_WAIT, |v| v["type"] == "unsubscribed");
    for m in &mut watchers {
        m.until(&["obs"]);
    }
    // eve's token runs out 3 s from now (exp 27 s ago, within the 30 s leeway): she joins and
    // then leaves with no frame from her.
    let mut eve = Member::open(&w, &member_token("eve", json!({ ROOM: ["subscribe", "presence"] }), -27), 1);
    for m in &mut watchers {
        m.until(&["eve", "obs"]);
    }
    let ended = eve.c.expect("token_expired", Duration::from_secs(40), |v| v["type"] == "unsubscribed");
    assert_eq!(ended["reason"], "token_expired");
    for m in &mut watchers {
        m.until(&["obs"]);
        m.settle();
        let joins_and_leaves = ["+ann", "+bob", "+cat", "-ann", "-cat", "-bob", "+eve", "-eve"];
        let mut got = m.log.clone();
        got.retain(|e| e != "+obs"); // the first watcher may see its own join
        got[..3].sort();
        assert_eq!(got, joins_and_leaves, "each once, in the order they happened");
    }
    w.assert_no_panic();
}

#[test]
fn a_reconnect_gets_a_fresh_list_never_a_stale_one() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &vars("100"));
    let mut ann = Member::open(&w, &seer("ann"), 1);
    let mut obs = Member::open(&w, &seer("obs"), 1);
    obs.until(&["ann", "obs"]);
    obs.c.ws.cut(); // its connection drops
    let mut bob = Member::open(&w, &seer("bob"), 0);
    bob.until(&["ann", "bob"]);
    ann.c.close();
    bob.until(&["bob"]);
    // Back on the other shard: the list it gets is the one of now.
    let again = Member::open(&w, &seer("obs"), 0);
    assert_eq!(again.members, BTreeSet::from(["bob".to_owned()]), "the fresh list");
    let mut again = again;
    again.until(&["bob", "obs"]);
    w.assert_no_panic();
}

#[test]
fn past_the_bound_only_counts_and_only_the_presence_capability_reads_the_list() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &vars("2"));
    let mut watcher = Member::open(&w, &seer("obs"), 1);
    watcher.until(&["obs"]);
    // A bystander with `subscribe` only is a member, gets the channel's updates, and never a
    // presence frame.
    let bystander_token = member_token("by", json!({ ROOM: ["subscribe"] }), 3600);
    let mut bystander = w.client(&format!("/ws?channels={ROOM}&token={bystander_token}&shard=0"));
    bystander.catch_up(ROOM, FRAME_WAIT);
    watcher.until(&["by", "obs"]);
    // The third member: past the bound, frames carry the count only.
    let _ann = w.client(&format!("/ws?channels={ROOM}&token={}&shard=0", seer("ann")));
    let join = watcher.c.expect("a counted join", FRAME_WAIT, |v| v["type"] == "join");
    assert_eq!(join, json!({"type": "join", "channel": ROOM, "count": 3}));
    let _late = Member::open_counted(&w, &seer("cat"), 1);
    let r = w.get_bearer(&format!("/api/presence?channel={ROOM}"), PUBLISH_TOKEN);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert!(body["members"].is_null() && body["count"].as_u64() >= Some(3), "{body}");
    assert_eq!(w.publish_seq(ROOM, json!({"hello": 1})), 1);
    let got = bystander.updates(ROOM, 1, FRAME_WAIT);
    assert_eq!(got[0]["data"], json!({"hello": 1}));
    let bystander_frames = bystander.collect(QUIET);
    assert!(bystander_frames.iter().all(|f| !is_presence(f)), "{bystander_frames:?}");
    assert!(bystander.ws.seen.iter().all(|f| !f.to_string().contains("\"presence\"")), "{:?}", bystander.ws.seen);

    // Reads of the list: anonymous 401, a token without `presence` on the channel 403.
    let path = format!("/api/presence?channel={ROOM}");
    let r = w.get(&path);
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (401, json!("unauthorized")), "{}", r.body);
    let other_room = member_token("x", json!({"presence-other": ["subscribe", "presence"]}), 3600);
    for t in [&bystander_token, &other_room] {
        let r = w.get_bearer(&path, t);
        assert_eq!((r.status, r.json()["error"]["code"].clone()), (403, json!("forbidden")), "{}", r.body);
    }
    let mut anon = w.client(&format!("/ws?channels={ROOM}&shard=1"));
    assert_eq!(anon.expect_error("unauthorized", FRAME_WAIT)["channel"], ROOM);
    let anon_frames = anon.collect(QUIET);
    assert!(anon_frames.iter().all(|f| !is_presence(f)), "{anon_frames:?}");
    // The gauge counts members without naming the channel.
    let metrics = w.get("/metrics").body;
    assert!(metrics.contains("\ntickwire_presence_members 4\n"), "obs, by, ann and cat: {metrics}");
    assert!(!metrics.contains(ROOM));
    w.assert_no_panic();
}

#[test]
fn a_silent_socket_is_closed_and_leaves_while_one_that_pings_stays() {
    let fixture = Fixture::start();
    let mut v = vars("100");
    v.push(("PRESENCE_SILENT_SECONDS", "6"));
    let w = Wrangler::start(&fixture, &v);
    let mut watcher = Member::open(&w, &seer("obs"), 0);
    // zed's client vanished without a word (no frame, no ping); pip's pings are answered by
    // the runtime alone, which never wakes the hub: only their timestamps keep pip here.
    let mut zed = Member::open(&w, &seer("zed"), 1);
    let mut pip = Member::open(&w, &seer("pip"), 1);
    watcher.until(&["obs", "pip", "zed"]);
    watcher.log.clear();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(18) {
        pip.c.ping(FRAME_WAIT);
        watcher.c.send_text("ping");
        if let Some(f) = watcher.c.take(Duration::from_secs(2), is_presence) {
            watcher.apply(&f);
        }
    }
    assert_eq!(watcher.log, ["-zed"], "zed left once, pip stayed");
    assert_eq!(watcher.members, BTreeSet::from(["obs".to_owned(), "pip".to_owned()]));
    assert_eq!(zed.c.expect_close(FRAME_WAIT), Some(4008), "closed as silent");
    w.assert_no_panic();
}

impl Member {
    /// A member whose list is past the bound: it gets the count only.
    fn open_counted(w: &Wrangler, token: &str, shard: u32) -> Client {
        let mut c = w.client(&format!("/ws?channels={ROOM}&token={token}&shard={shard}"));
        let list = c.expect("presence count", FRAME_WAIT, |v| v["type"] == "presence");
        assert_eq!(list, json!({"type": "presence", "channel": ROOM, "count": 3}));
        c
    }
}
