//! Logs an operator can index: during faults (an upstream failing, publishes and sockets refused
//! for their credentials) every line the Worker and the hub write to `wrangler dev`'s output is
//! one JSON object with the stable fields, and no token or secret appears anywhere in it.

use crate::feeds::PRICE;
use crate::harness::{token, token_with, wait_until, Fixture, Wrangler, PUBLISH_TOKEN, TOKEN_SECRET};
use serde_json::{json, Value};
use std::time::Duration;

/// A line of wrangler's output without its colours (ANSI escape sequences).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the Worker wrote on a line of wrangler's output: `console.log` lines as they are,
/// `console.warn`/`console.error` after wrangler's `▲ [WARNING] ` / `✘ [ERROR] ` label; None for
/// wrangler's own lines, which never start with `{`.
fn ours(line: &str) -> Option<String> {
    let line = plain(line);
    let line = line.trim();
    let message = line.strip_prefix("✘ [ERROR] ").or_else(|| line.strip_prefix("▲ [WARNING] ")).unwrap_or(line);
    message.starts_with('{').then(|| message.to_owned())
}

/// Our lines, each parsed: a line that starts like an object but is not one fails the test.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(ours)
        .map(|l| serde_json::from_str::<Value>(&l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}")))
        .collect()
}

fn find<'a>(lines: &'a [Value], event: &str, pred: impl Fn(&Value) -> bool) -> Option<&'a Value> {
    lines.iter().find(|l| l["event"] == event && pred(l))
}

#[test]
fn faults_are_logged_as_json_lines_without_credentials() {
    let fixture = Fixture::start();
    fixture.set(PRICE, 500, json!({"error": "internal"}));
    // The CoinGecko key travels in a header of exactly the fetch that fails.
    let api_key = "cg-demo-key-4f1d2c3b5a6e7f8091a2b3c4";
    let w = Wrangler::start(
        &fixture,
        &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("TOKEN_SECRET", TOKEN_SECRET), ("COINGECKO_API_KEY", api_key)],
    );

    // An upstream failing during a cron round.
    w.fire_cron();
    // Publishes refused: a wrong publish token, a forged JWT, a valid one without `publish`.
    let wrong = "not-the-publish-token-0123456789";
    let forged = token_with("a-secret-that-is-not-the-servers-0123", "mallory", json!({"*": ["publish"]}), 600);
    let reader = token("reader", json!({"news": ["subscribe"]}), 600);
    for (bearer, status) in [(wrong, 403), (forged.as_str(), 401), (reader.as_str(), 403)] {
        let r = w.post_publish(Some(bearer), &json!({"channel": "news", "data": {"x": 1}}));
        assert_eq!(r.status, status, "{}", r.body);
    }
    // A socket refused before the upgrade for an expired `?token=`.
    let expired = token("late", json!({"private-a": ["subscribe"]}), -120);
    let (status, body) = w.ws_refused(&format!("/ws?channels=private-a&token={expired}"));
    assert_eq!((status, body["error"]["code"].clone()), (401, json!("token_expired")), "{body}");

    // Console output reaches wrangler's log a moment after the answer.
    wait_until("the refusals logged", Duration::from_secs(10), || {
        let lines = json_lines(&w.log());
        let refused: Vec<&Value> = lines.iter().filter(|l| l["event"] == "request_refused").collect();
        refused.len() >= 4
    });
    let whole = w.log();
    // From the start that succeeded (a start that lost a port race leaves its lines before).
    let log = whole.rfind("Starting local server").map_or(whole.as_str(), |i| &whole[i..]).to_owned();
    let lines = json_lines(&log);

    // Every line has the stable fields with their types.
    for l in &lines {
        assert!(["info", "warn", "error"].contains(&l["level"].as_str().unwrap_or("")), "{l}");
        assert!(l["event"].as_str().is_some_and(|e| !e.is_empty()), "{l}");
        assert!(["worker", "hub", "wasm"].contains(&l["component"].as_str().unwrap_or("")), "{l}");
        for key in l.as_object().unwrap().keys() {
            let known = [
                "level",
                "event",
                "component",
                "shard",
                "peer",
                "channel",
                "path",
                "conn",
                "upstream",
                "kind",
                "detail",
            ];
            assert!(known.contains(&key.as_str()), "unknown field {key}: {l}");
        }
    }
    // The upstream failure, with its source and kind, from the hub's shard 0.
    let upstream = find(&lines, "upstream_failed", |l| l["upstream"] == "coingecko_price")
        .unwrap_or_else(|| panic!("no upstream_failed line for coingecko_price:\n{log}"));
    assert_eq!(
        (&upstream["level"], &upstream["component"], &upstream["shard"]),
        (&json!("error"), &json!("hub"), &json!(0))
    );
    assert_eq!(upstream["kind"], "http_error", "{upstream}");
    assert!(upstream["detail"].as_str().unwrap_or("").contains("500"), "{upstream}");
    // The round itself, as one info line.
    assert!(find(&lines, "cron_round", |l| l["level"] == "info").is_some(), "no cron_round line:\n{log}");
    // The refusals: by the Worker (publish) and by the hub (the socket's token), each with its kind.
    let refused = |component: &str, path: &str, kind: &str| {
        find(&lines, "request_refused", |l| l["component"] == component && l["path"] == path && l["kind"] == kind)
            .unwrap_or_else(|| panic!("no request_refused {component} {path} {kind}:\n{log}"))
            .clone()
    };
    assert_eq!(refused("worker", "/api/publish", "unauthorized")["level"], "warn");
    // The wrong publish token is refused by the Worker; the token without `publish` by the
    // sequencer, which alone knows the channel it was for.
    refused("worker", "/api/publish", "forbidden");
    assert_eq!(refused("hub", "/api/publish", "forbidden")["channel"], "news");
    assert!(refused("hub", "/ws", "expired")["shard"].as_u64().is_some());

    // No credential anywhere in the output: not the publish token, the token secret or the
    // CoinGecko key, not a JWT sent (not even its signature), not the wrong token an attacker tried.
    for secret in [PUBLISH_TOKEN, TOKEN_SECRET, api_key, wrong, &forged, &reader, &expired] {
        assert!(!log.contains(secret), "a credential in wrangler's output");
    }
    for jwt in [&forged, &reader, &expired] {
        let signature = jwt.rsplit('.').next().unwrap_or_default();
        assert!(!log.contains(signature), "a token's signature in wrangler's output");
    }
    // No free-text line of ours is left: every line is one of our objects or one of wrangler's
    // own (the bindings table, its request lines; the harness hides the banner); wrangler labels every
    // console.warn/error, and each labelled line must be one of our objects.
    const WRANGLERS: [&str; 6] = [
        "Starting local server",
        "Your Worker has access to the following bindings:",
        "Binding ",
        "env.",
        "[wrangler:",
        "🪵",
    ];
    for l in log.lines().map(plain) {
        let l = l.trim();
        if l.starts_with("✘ [ERROR] ") || l.starts_with("▲ [WARNING] ") {
            assert!(ours(l).is_some(), "a console.warn/error line that is not a JSON object: {l}");
        }
        let known = l.is_empty() || ours(l).is_some() || WRANGLERS.iter().any(|w| l.starts_with(w));
        assert!(known, "a line that is neither one of our JSON objects nor wrangler's own: {l}");
    }
    w.assert_no_panic();
}
