//! The client library (static/client/tickwire-client.js) in headless Chromium and Firefox ESR (each
//! scenario runs in both), through its example pages: an app channel followed across two
//! wrangler restarts (static/example-app-channel.html, which lists every update it gets), once
//! resumed by the socket and once filled in by HTTP polling while the socket could not connect,
//! with every seq seen exactly once, in order; a private channel and a presence channel
//! (static/example-private-channel.html).

use crate::harness::{
    in_each_browser, token, Browser, Engine, Fixture, Wrangler, HOLD_SOCKETS, PUBLISH_TOKEN, RELEASE_SOCKETS,
    TOKEN_SECRET,
};
use serde_json::{json, Value};
use std::time::Duration;

const CHANNEL: &str = "orders";

fn value(i: u64) -> Value {
    json!({ "order": i, "item": format!("widget-{i}"), "qty": i * 3 })
}

fn state_is(state: &str) -> String {
    format!("(document.getElementById('status').dataset.state === {})", json!(state))
}

fn last_seq_is(seq: u64) -> String {
    format!("(window.seen.length > 0 && window.seen[window.seen.length - 1].seq === {seq})")
}

/// Makes the page try its socket now (the browser's `online` event), rather than after its backoff.
const ONLINE: &str = "(window.dispatchEvent(new Event('online')), true)";

fn example_page_follows_an_app_channel_across_restarts(engine: Engine) {
    let fixture = Fixture::start();
    let mut w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)]);
    // Published before the page subscribes, so the channel exists when it does.
    assert_eq!(w.publish_seq(CHANNEL, value(1)), 1);
    let epoch =
        w.get_json(&format!("/api/history?channel={CHANNEL}")).1["epoch"].as_str().unwrap_or_default().to_owned();
    assert!(!epoch.is_empty());

    let mut b = Browser::launch(engine);
    // HTTP polling is 10 minutes away: until the test shortens it, only the socket delivers.
    b.open(&format!("{}/example-app-channel.html?channel={CHANNEL}&poll_ms=600000", w.base));
    b.wait(&format!("{} && {}", state_is("live"), last_seq_is(1)), Duration::from_secs(10));
    for i in 2..=3 {
        assert_eq!(w.publish_seq(CHANNEL, value(i)), i);
    }
    b.wait(&last_seq_is(3), Duration::from_secs(5));

    // Restart 1: publishes made while the page is away arrive through the socket's resume. The
    // page's socket is held until they are in, so it surely reconnects after them.
    b.eval(HOLD_SOCKETS);
    w.stop();
    b.wait(&format!("!{}", state_is("live")), Duration::from_secs(5));
    w.start_again();
    for i in 4..=5 {
        assert_eq!(w.publish_seq(CHANNEL, value(i)), i);
    }
    b.eval(RELEASE_SOCKETS);
    b.eval(ONLINE);
    b.wait(&format!("{} && {}", state_is("live"), last_seq_is(5)), Duration::from_secs(40));
    let url = b.eval("window.client.lastUrl");
    let want = format!("since={CHANNEL}%3A3%40{epoch}");
    assert!(url.as_str().is_some_and(|u| u.contains(&want)), "resume URL {url} lacks {want}");
    let sub = b.eval("window.subscribed[window.subscribed.length - 1]");
    assert_eq!((sub["recovered"].clone(), sub["seq"].clone()), (json!(true), json!(5)), "{sub}");

    // Restart 2: the socket cannot connect (held); HTTP polling fills in what was published.
    b.eval("(window.client.options.pollMs = 500, true)");
    b.eval(HOLD_SOCKETS);
    w.stop();
    b.wait(&state_is("offline-polling"), Duration::from_secs(10));
    w.start_again();
    for i in 6..=7 {
        assert_eq!(w.publish_seq(CHANNEL, value(i)), i);
    }
    b.wait(&last_seq_is(7), Duration::from_secs(10));
    assert_eq!(b.eval(&state_is("offline-polling")), true, "filled in by polling, not by a socket");
    b.eval(RELEASE_SOCKETS);
    b.eval(ONLINE);
    b.wait(&state_is("live"), Duration::from_secs(10));
    let url = b.eval("window.client.lastUrl");
    let want = format!("since={CHANNEL}%3A7%40{epoch}");
    assert!(url.as_str().is_some_and(|u| u.contains(&want)), "resume URL {url} lacks {want}");
    assert_eq!(w.publish_seq(CHANNEL, value(8)), 8);
    b.wait(&last_seq_is(8), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500)); // room for a duplicate to show up

    let seen = b.eval("window.seen");
    let seen = seen.as_array().unwrap_or_else(|| panic!("window.seen: {seen}"));
    let got: Vec<(u64, Value)> = seen.iter().map(|u| (u["seq"].as_u64().unwrap_or(0), u["data"].clone())).collect();
    let want: Vec<(u64, Value)> = (1..=8).map(|i| (i, value(i))).collect();
    assert_eq!(got, want, "every update exactly once, in order: {seen:?}");
    let sources: Vec<&str> = seen.iter().map(|u| u["source"].as_str().unwrap_or("?")).collect();
    assert_eq!(sources[3..7], ["socket", "socket", "poll", "poll"], "{sources:?}");
    assert_eq!(b.eval("document.querySelectorAll('#updates li').length"), 8);
    let errors = b.page_errors();
    assert!(errors.is_empty(), "page errors: {errors:#?}");
    w.assert_no_panic();
}

/// The private-channel example page (static/example-private-channel.html): it gets
/// its tokens from an app backend (the fixture server stands in for one), follows a private
/// channel, refreshes its short-lived token on its own while updates keep coming (every one
/// arrives, once, in order, from the socket), and publishes from the page where its token
/// allows it and is refused where not.
fn example_page_follows_a_private_channel_refreshes_its_token_and_publishes(engine: Engine) {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("TOKEN_SECRET", TOKEN_SECRET)]);
    let caps = json!({"private-demo": ["subscribe", "history", "publish"]});
    let serve = |t: &str| {
        fixture.set_route(json!({"path": "/token", "status": 200, "body": {"token": t},
            "headers": {"Access-Control-Allow-Origin": "*"}}));
    };
    // Made once the browser is up (Firefox takes seconds to start), 30 s to live: the library
    // refreshes it 10.6-15 s after it gets it (`refreshDelay`: half its life, when it is short),
    // which leaves the test several seconds of updates before the refresh on a slow machine.
    let mut b = Browser::launch(engine);
    let first = token("page", caps.clone(), 30);
    serve(&first);
    let page = format!("{}/example-private-channel.html?channel=private-demo&token_url={}/token", w.base, fixture.base);
    b.open(&page);
    b.wait(&format!("window.authed.length === 1 && {}", state_is("live")), Duration::from_secs(10));
    let second = token("page", caps, 3600);
    serve(&second);

    b.eval("(window.publishText('hello from the page'), true)");
    b.wait("window.published.length === 1", Duration::from_secs(5));
    assert_eq!(b.eval("window.published[0]"), json!({"seq": 1}));
    b.wait(&last_seq_is(1), Duration::from_secs(5));

    // Updates every 300 ms until the page has refreshed, then a few more.
    let mut seq = 1;
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    while b.eval("window.authed.length") == json!(1) {
        assert!(std::time::Instant::now() < deadline, "no refresh within 25 s");
        seq += 1;
        assert_eq!(w.publish_seq("private-demo", json!({ "n": seq })), seq);
        std::thread::sleep(Duration::from_millis(300));
    }
    for _ in 0..3 {
        seq += 1;
        assert_eq!(w.publish_seq("private-demo", json!({ "n": seq })), seq);
    }
    b.wait(&last_seq_is(seq), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500)); // room for a duplicate to show up
    let seen = b.eval("window.seen");
    let seqs: Vec<u64> = seen.as_array().map_or(vec![], |s| s.iter().filter_map(|u| u["seq"].as_u64()).collect());
    assert_eq!(seqs, (1..=seq).collect::<Vec<_>>(), "every update once, in order, across the refresh");
    assert!(seen.as_array().is_some_and(|s| s.iter().all(|u| u["source"] == "socket")), "{seen}");
    let authed = b.eval("window.authed");
    assert!(authed[1]["exp"].as_u64() > authed[0]["exp"].as_u64(), "the refresh brought a later token: {authed}");
    assert!(seq >= 8, "updates kept coming before the refresh, too: {seq}");

    // Refused where the token grants nothing.
    b.eval("(window.publishText('nope', 'private-other'), true)");
    b.wait("window.published.length === 2", Duration::from_secs(5));
    assert_eq!(b.eval("window.published[1]"), json!({"code": "forbidden"}));
    let url = b.eval("window.client.lastUrl");
    assert!(url.as_str().is_some_and(|u| !u.contains(&first) && !u.contains(&second)), "a token in the URL: {url}");
    let errors = b.page_errors();
    assert!(errors.is_empty(), "page errors: {errors:#?}");
    assert!(!w.log().contains(&first), "a token in the log");
    w.assert_no_panic();
}

/// The example page on a presence channel: the library's member set follows joins
/// and leaves of other members (sockets on another shard included).
fn example_page_shows_who_is_here_on_a_presence_channel(engine: Engine) {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("TOKEN_SECRET", TOKEN_SECRET), ("HUB_SHARDS", "2")]);
    let caps = json!({"presence-lobby": ["subscribe", "presence"]});
    fixture.set_route(json!({"path": "/token", "status": 200, "body": {"token": token("page", caps.clone(), 3600)},
        "headers": {"Access-Control-Allow-Origin": "*"}}));
    let mut b = Browser::launch(engine);
    b.open(&format!("{}/example-private-channel.html?channel=presence-lobby&token_url={}/token", w.base, fixture.base));
    b.wait("JSON.stringify(window.members) === '[\"page\"]'", Duration::from_secs(15));
    let mut ann = w.client(&format!("/ws?channels=presence-lobby&shard=1&token={}", token("ann", caps.clone(), 3600)));
    ann.expect("ann's list", Duration::from_secs(10), |v| v["type"] == "presence");
    b.wait("JSON.stringify(window.members) === '[\"ann\",\"page\"]'", Duration::from_secs(10));
    assert_eq!(b.eval("document.getElementById('count').textContent"), json!("2"));
    ann.close();
    b.wait("JSON.stringify(window.members) === '[\"page\"]'", Duration::from_secs(10));
    let errors = b.page_errors();
    assert!(errors.is_empty(), "page errors: {errors:#?}");
    w.assert_no_panic();
}

/// The driver's own check: a page's uncaught exception and unhandled rejection are reported as
/// page errors in each browser (Firefox's come through an init script), so the checks above that
/// a page had none can fail.
fn the_driver_reports_a_pages_uncaught_errors(engine: Engine) {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    let mut b = Browser::launch(engine);
    b.open(&format!("{}/example-app-channel.html?channel=news", w.base));
    assert_eq!(b.page_errors(), Vec::<String>::new());
    b.eval("(setTimeout(() => { throw new TypeError('canary thrown'); }, 0), true)");
    b.eval("(Promise.reject(new Error('canary rejected')), true)");
    std::thread::sleep(Duration::from_millis(300));
    let errors = b.page_errors();
    assert!(errors.iter().any(|e| e.contains("canary thrown")), "{errors:#?}");
    assert!(errors.iter().any(|e| e.contains("canary rejected")), "{errors:#?}");
}

in_each_browser!(
    the_driver_reports_a_pages_uncaught_errors,
    example_page_follows_an_app_channel_across_restarts,
    example_page_follows_a_private_channel_refreshes_its_token_and_publishes,
    example_page_shows_who_is_here_on_a_presence_channel,
);
