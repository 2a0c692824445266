//! The terminal client (`cli/`, the `tickwire` binary) against a real `wrangler dev`:
//! - `tail` prints the fixture's price and app-channel publishes, one JSON line each, and every
//!   seq exactly once and in order across two cuts of its connection (publishes made while it was
//!   away come back through its resume with since and epoch) and across wrangler restarts;
//! - `watch` under tmux shows the fixture's price, coins, totals and Fear & Greed, and Ctrl-C
//!   closes its socket (the hub counts a client close) and exits 0; without a terminal it
//!   prints plain lines;
//! - `publish` and the errors: exit codes for 401, 403, 413, a bad URL, an unreachable server;
//! - `token` mints what the hub accepts: `tail --token` follows the private channel it grants
//!   (the token in the `auth` op, never the URL) and no other, and `publish --token` publishes
//!   only where the token grants `publish`.

mod support;

use crate::harness::{token, Fixture, Wrangler, PUBLISH_TOKEN, TOKEN_SECRET};
use serde_json::{json, Value};
use std::time::Duration;
use support::{Forwarder, Running, Tmux};

const CHANNEL: &str = "orders";

fn order(i: u64) -> Value {
    json!({ "order": i, "item": format!("widget-{i}") })
}

/// The seqs of `channel` in tail's output, in the order printed.
fn seqs(t: &Running, channel: &str) -> Vec<u64> {
    t.json_lines().iter().filter(|u| u["channel"] == channel).filter_map(|u| u["seq"].as_u64()).collect()
}

fn last_seq_is(channel: &'static str, seq: u64) -> impl Fn(&Running) -> bool {
    move |t| seqs(t, channel).last() == Some(&seq)
}

#[test]
fn tail_prints_every_update_once_across_cuts_and_restarts() {
    support::bin(); // built before any server starts
    let fixture = Fixture::start();
    fixture.set_btc(67123.45, 1.23);
    let mut w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)]);
    w.fire_cron();
    let fwd = Forwarder::start(w.port);
    let url = format!("ws://127.0.0.1:{}", fwd.port);
    let mut tail = Running::spawn(&["tail", "btc", CHANNEL, "--url", &url, "--ping", "2", "--retry-max", "1"]);
    tail.wait("btc from the cron round", Duration::from_secs(20), |t| {
        t.json_lines().iter().any(|u| u["channel"] == "btc" && u["seq"] == 1 && u["data"]["price_usd"] == 67123.45)
    });
    for i in 1..=3 {
        assert_eq!(w.publish_seq(CHANNEL, order(i)), i);
    }
    tail.wait("orders 1..3", Duration::from_secs(10), last_seq_is(CHANNEL, 3));
    let epoch =
        w.get_json(&format!("/api/history?channel={CHANNEL}")).1["epoch"].as_str().unwrap_or_default().to_owned();
    assert!(!epoch.is_empty());

    // Cut 1: the client is away (its reconnects closed as soon as they connect) while 4..6 are
    // published.
    let retries = tail.stderr_count("retrying in");
    fwd.cut();
    tail.wait("the cut noticed", Duration::from_secs(10), |t| t.stderr_count("retrying in") > retries);
    for i in 4..=6 {
        assert_eq!(w.publish_seq(CHANNEL, order(i)), i);
    }
    fwd.restore();
    tail.wait("4..6 replayed on reconnect", Duration::from_secs(15), last_seq_is(CHANNEL, 6));
    assert!(
        tail.stderr().iter().any(|l| l.contains("since=") && l.contains(&format!("{CHANNEL}:3"))),
        "{:?}",
        tail.stderr()
    );

    // Cut 2 and a wrangler restart while the client is away; 7..8 and a new BTC price published
    // after the restart, before the client is let back: its resume (with the epoch learnt at
    // the last reconnect) replays them from the restarted server's storage.
    fwd.cut();
    w.stop();
    w.start_again();
    for i in 7..=8 {
        assert_eq!(w.publish_seq(CHANNEL, order(i)), i);
    }
    fixture.set_btc(68000.5, -2.5);
    w.fire_cron();
    fwd.restore();
    tail.wait("7..8 after the restart", Duration::from_secs(15), last_seq_is(CHANNEL, 8));
    tail.wait("the new BTC price", Duration::from_secs(10), last_seq_is("btc", 2));
    let resumed = format!("{CHANNEL}:6@{epoch}");
    assert!(tail.stderr().iter().any(|l| l.contains(&resumed)), "no resume from {resumed}: {:?}", tail.stderr());

    // A restart under the connected client: it reconnects by itself once the server is back.
    let retries = tail.stderr_count("retrying in");
    w.stop();
    tail.wait("the restart noticed", Duration::from_secs(10), |t| t.stderr_count("retrying in") > retries);
    w.start_again();
    for i in 9..=10 {
        assert_eq!(w.publish_seq(CHANNEL, order(i)), i);
    }
    tail.wait("9..10", Duration::from_secs(20), last_seq_is(CHANNEL, 10));
    assert_eq!(w.publish_seq(CHANNEL, order(11)), 11);
    tail.wait("11, live", Duration::from_secs(10), last_seq_is(CHANNEL, 11));

    let status = tail.interrupt();
    assert_eq!(status.code(), Some(0), "Ctrl-C exits 0; stderr: {:?}", tail.stderr());
    assert_eq!(seqs(&tail, CHANNEL), (1..=11).collect::<Vec<_>>(), "every seq once, in order");
    assert_eq!(seqs(&tail, "btc"), [1, 2]);
    for u in tail.json_lines() {
        assert_eq!(u["type"], "update", "{u}");
        if u["channel"] == CHANNEL {
            assert_eq!(u["data"], order(u["seq"].as_u64().unwrap_or_default()), "{u}");
        }
    }
    let btc = tail.json_lines().into_iter().rev().find(|u| u["channel"] == "btc").unwrap_or_default();
    assert_eq!(
        (btc["data"]["price_usd"].clone(), btc["data"]["change_24h_pct"].clone()),
        (json!(68000.5), json!(-2.5))
    );
    let stderr = tail.stderr().join("\n");
    for bad in ["gap", "could not", "recreated", "skipped", "panicked"] {
        assert!(!stderr.contains(bad), "stderr says {bad:?}:\n{stderr}");
    }
    assert!(stderr.contains("resume with --since btc:2@"), "{stderr}");
    w.assert_no_panic();
}

#[test]
fn watch_shows_the_market_under_tmux_and_closes_on_ctrl_c() {
    support::bin(); // built before any server starts
    let fixture = Fixture::start();
    fixture.set_btc(67123.45, 1.23);
    let w = Wrangler::start(&fixture, &[]);
    w.fire_cron();
    let closed = r#"tickwire_connections_closed_total{reason="client"}"#;
    let closed_before = w.metric(closed);

    let tmux = Tmux::new("tmux");
    // The exit status goes to a file: tmux 3.3 can report a pane dead before it has reaped the
    // process, and then never shows a status. The shell's `trap :` (not inherited by the
    // client) keeps Ctrl-C from ending the shell before it writes the client's status.
    let status_path = tmux.path("status");
    let command = format!(
        "sh -c 'trap : INT; {} watch {}; echo $? > {}'",
        support::bin().display(),
        w.authority(),
        status_path.display()
    );
    tmux.cmd(&["new-session", "-d", "-s", "watch", "-x", "120", "-y", "40", &command]);
    tmux.cmd(&["set-option", "-t", "watch", "remain-on-exit", "on"]);
    let want = [
        "connected (conn ",
        "BTC              $67,123.45  +1.23 %",
        "Market cap           $2.41T",
        "Volume 24 h          $89.0B",
        "BTC dominance        52.3 %",
        "Fear & Greed             62  Greed",
        "RSI-14",
        "bitcoin         $67,123.45   +1.23 %       $1.26T       $31.0B",
        "ethereum         $3,120.50   -0.82 %        $375B       $14.0B",
        "solana             $142.10   +3.10 %       $65.0B       $2.20B",
    ];
    let mut pane = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !want.iter().all(|w| pane.contains(w)) {
        assert!(std::time::Instant::now() < deadline, "the pane lacks {want:?}:\n{pane}");
        std::thread::sleep(Duration::from_millis(200));
        pane = tmux.cmd(&["capture-pane", "-p", "-t", "watch"]);
    }
    let _ = std::fs::create_dir_all(crate::harness::root().join("tests/artifacts"));
    let _ = std::fs::write(crate::harness::root().join("tests/artifacts/cli-watch.txt"), &pane);
    assert!(!pane.contains("STALE"), "{pane}");

    tmux.cmd(&["send-keys", "-t", "watch", "C-c"]);
    let mut status = String::new();
    crate::harness::wait_until("watch exits after Ctrl-C", Duration::from_secs(10), || {
        status = std::fs::read_to_string(&status_path).unwrap_or_default();
        status.ends_with('\n')
    });
    let after = tmux.cmd(&["capture-pane", "-p", "-t", "watch"]);
    assert_eq!(status.trim(), "0", "exit status after Ctrl-C; the pane:\n{after}");
    crate::harness::wait_until("the hub counted a client close", Duration::from_secs(5), || {
        w.metric(closed) > closed_before
    });

    // Without a terminal: one plain line per update.
    let mut plain = Running::spawn(&["watch", &format!("http://127.0.0.1:{}/", w.port)]);
    plain.wait("plain lines", Duration::from_secs(20), |p| {
        let out = p.stdout().join("\n");
        out.contains("btc #1 BTC $67,123.45 +1.23 %") && out.contains("sentiment #1 Fear & Greed 62 Greed")
    });
    let out = plain.stdout().join("\n");
    assert!(out.contains("ethereum $3,120.50 -0.82 %") && out.contains("connected to ws://127.0.0.1:"), "{out}");
    assert!(!out.contains('\x1b'), "no escape codes when stdout is not a terminal: {out:?}");
    assert_eq!(plain.interrupt().code(), Some(0));
    w.assert_no_panic();
}

/// Arguments, environment, the exit code and what stderr says.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);

#[test]
fn publish_and_the_errors_a_user_gets() {
    support::bin(); // built before any server starts
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("MAX_PUBLISH_BYTES", "1024")]);
    let url = w.base.clone();
    let token = [("TICKWIRE_TOKEN", PUBLISH_TOKEN)];
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let one_line = |o: &std::process::Output| {
        let e = stderr(o);
        assert!(e.lines().count() == 1 && !e.contains("panicked"), "one line, no panic: {e:?}");
        e
    };

    let ok = support::run(&["publish", "news", r#"{"headline":"hello"}"#, "--url", &url], &token, "");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "{\"channel\":\"news\",\"seq\":1}\n");
    let from_stdin = support::run(&["publish", "news", "-"], &[token[0], ("TICKWIRE_URL", &url)], "[1, 2, 3]\n");
    assert_eq!(
        String::from_utf8_lossy(&from_stdin.stdout),
        "{\"channel\":\"news\",\"seq\":2}\n",
        "{}",
        stderr(&from_stdin)
    );
    let history = w.get_json("/api/history?channel=news").1;
    assert_eq!(history["updates"][1]["data"], json!([1, 2, 3]), "{history}");

    let cases: [Case; 7] = [
        (&["publish", "news", "1", "--url", &url], &[], 3, "401 unauthorized: set TICKWIRE_TOKEN"),
        (&["publish", "news", "1", "--url", &url], &[("TICKWIRE_TOKEN", "wrong")], 3, "refused"),
        (&["publish", "btc", "1", "--url", &url], &token, 6, "channel_reserved"),
        (&["publish", "Bad Name", "1", "--url", &url], &token, 2, "invalid channel name"),
        (&["publish", "news", "{oops", "--url", &url], &token, 2, "not JSON"),
        (&["publish", "news", "1", "--url", "ftp://x"], &token, 2, "bad URL \"ftp://x\""),
        (&["publish", "news", "1", "--url", "127.0.0.1:1"], &token, 1, "connection refused"),
    ];
    for (args, env, code, says) in cases {
        let o = support::run(args, env, "");
        let e = one_line(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
    }
    let big = json!({ "pad": "x".repeat(2000) }).to_string();
    let o = support::run(&["publish", "news", &big, "--url", &url], &token, "");
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(one_line(&o).contains("413: the message is too large (payload_too_large: body larger than 1024 bytes)"));

    // Following commands: a bad URL, a server that never answers, a path that is not tickwire.
    let o = support::run(&["tail", "btc", "--url", "ws://[::1"], &[], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o).contains("bad URL"));
    let o = support::run(&["watch", "wss://"], &[], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o).contains("no host"));
    let o = support::run(&["tail", "btc", "--url", "127.0.0.1:1", "--retries", "2", "--retry-max", "1", "-q"], &[], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(one_line(&o).contains("connection refused (gave up after 3 failed attempts)"), "{}", stderr(&o));
    let o = support::run(&["tail", "btc", "--url", &format!("{url}/nothing-here")], &[], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).lines().last().is_some_and(|l| l.contains("the server answered 404")), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));

    for args in [&["--help"][..], &["watch", "--help"], &["tail", "--help"], &["publish", "--help"]] {
        let o = support::run(args, &[], "");
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("Examples:"), "{args:?}");
    }
    w.assert_no_panic();
}

#[test]
fn a_minted_token_opens_its_private_channel_to_tail_and_publish_and_no_other() {
    support::bin(); // built before any server starts
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("TOKEN_SECRET", TOKEN_SECRET)]);
    let url = w.base.clone();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let secret = [("TICKWIRE_TOKEN_SECRET", TOKEN_SECRET)];
    let mint = |caps: &str| {
        let o = support::run(&["token", "--sub", "u42", "--cap", caps, "--ttl", "10m"], &secret, "");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stderr(&o).is_empty(), "nothing but the token: {}", stderr(&o));
        String::from_utf8(o.stdout).expect("ASCII").trim().to_owned()
    };
    let reader = mint("private-u42:subscribe,history");
    let writer = mint("private-u42:publish");

    // The latest value before tail starts, then live updates: each once, in order.
    assert_eq!(w.publish_seq("private-u42", order(1)), 1);
    assert_eq!(w.publish_seq("private-u43", order(1)), 1);
    let tail = Running::spawn(&["tail", "private-u42", "--token", &reader, "--url", &url]);
    tail.wait("private-u42 seq 1", Duration::from_secs(20), last_seq_is("private-u42", 1));
    assert_eq!(tail.stderr_count("authed as u42"), 1, "{:?}", tail.stderr());
    assert!(tail.stderr().iter().all(|l| !l.contains(&reader)), "the token is never shown: {:?}", tail.stderr());
    assert_eq!(w.publish_seq("private-u42", order(2)), 2);
    tail.wait("private-u42 seq 2", Duration::from_secs(10), last_seq_is("private-u42", 2));

    // publish --token: only with `publish` for the channel.
    let o = support::run(&["publish", "private-u42", "3", "--url", &url, "--token", &reader], &[], "");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not grant publish"), "{}", stderr(&o));
    let o = support::run(&["publish", "private-u42", "3", "--url", &url, "--token", &writer], &[], "");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "{\"channel\":\"private-u42\",\"seq\":3}\n", "{}", stderr(&o));
    tail.wait("private-u42 seq 3", Duration::from_secs(10), last_seq_is("private-u42", 3));
    assert_eq!(seqs(&tail, "private-u42"), [1, 2, 3]);
    assert!(seqs(&tail, "private-u43").is_empty());

    // Another user's channel: refused, exit 3, nothing of it printed; none without a token.
    let o = support::run(&["tail", "private-u43", "--token", &reader, "--url", &url], &[], "");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(stderr(&o).contains("token refused: forbidden (private-u43)"), "{}", stderr(&o));
    let o = support::run(&["tail", "private-u43", "--url", &url], &[], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A token signed with another secret: refused by the hub's auth op.
    let forged = support::run(
        &["token", "--sub", "u42", "--cap", "private-u43:subscribe"],
        &[("TICKWIRE_TOKEN_SECRET", "not-the-servers-secret-0123456789abcdef")],
        "",
    );
    let forged = String::from_utf8(forged.stdout).expect("ASCII").trim().to_owned();
    let o = support::run(&["tail", "private-u43", "--token", &forged, "--url", &url], &[], "");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("token refused: unauthorized"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    w.assert_no_panic();
}

/// `tail --presence` prints a presence channel's member list, then each join and leave, as JSON
/// lines; without `--presence` it prints none of them.
#[test]
fn tail_presence_prints_the_list_then_joins_and_leaves() {
    support::bin(); // built before any server starts
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("TOKEN_SECRET", TOKEN_SECRET)]);
    let url = w.base.clone();
    let caps = json!({"presence-room": ["subscribe", "presence"]});
    let mut ann = w.client(&format!("/ws?channels=presence-room&token={}", token("ann", caps.clone(), 600)));
    ann.expect("ann's list", Duration::from_secs(10), |v| v["type"] == "presence");
    let watcher = token("watcher", caps.clone(), 600);
    let tail = Running::spawn(&["tail", "presence-room", "--presence", "--token", &watcher, "--url", &url]);
    let plain = Running::spawn(&["tail", "presence-room", "--token", &watcher, "--url", &url]);
    let has = |r: &Running, ty: &str, sub: &str| r.json_lines().iter().any(|l| l["type"] == ty && l["sub"] == sub);
    let listed = |r: &Running, sub: &str| {
        r.json_lines().iter().any(|l| {
            l["type"] == "presence" && l["members"].as_array().is_some_and(|m| m.iter().any(|m| m["sub"] == sub))
        })
    };
    tail.wait("the member list with ann", Duration::from_secs(20), |r| listed(r, "ann"));
    let mut bob = w.client(&format!("/ws?channels=presence-room&token={}", token("bob", caps, 600)));
    bob.expect("bob's list", Duration::from_secs(10), |v| v["type"] == "presence");
    tail.wait("bob's join", Duration::from_secs(10), |r| has(r, "join", "bob"));
    bob.close();
    tail.wait("bob's leave", Duration::from_secs(10), |r| has(r, "leave", "bob"));
    let kinds: Vec<Value> = tail.json_lines().iter().map(|l| l["type"].clone()).collect();
    let (join, leave) = (kinds.iter().position(|k| k == "join"), kinds.iter().position(|k| k == "leave"));
    assert!(join < leave, "in order: {kinds:?}");
    assert!(
        plain.json_lines().iter().all(|l| l["type"] == "update"),
        "no presence lines without --presence: {:?}",
        plain.json_lines()
    );
    ann.close();
    w.assert_no_panic();
}
