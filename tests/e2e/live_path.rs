//! The first live path: upstream price → cron → KV → hub → WebSocket and `/api/snapshot`, and
//! what happens when the upstream fails.

use crate::harness::{is_update, promtool_accepts, Fixture, Wrangler};
use serde_json::{json, Value};
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(3);

#[test]
fn price_flows_from_cron_to_sockets_and_snapshot() {
    let fixture = Fixture::start();
    fixture.set_btc(64_123.45, 1.5);
    let w = Wrangler::start(&fixture, &[]);

    let mut early = w.ws("/ws");
    let welcome = early.expect("welcome", FRAME_WAIT, |v| v["type"] == "welcome");
    assert_eq!(welcome["protocol"], 1);
    assert!(welcome["conn"].as_str().is_some_and(|c| c.len() == 16), "{welcome}");
    assert_eq!(welcome["channels"], json!(["btc", "market", "sentiment", "indicators"]));

    w.fire_cron();
    let u = early.expect("btc update", FRAME_WAIT, is_update("btc"));
    assert_eq!(u["data"]["price_usd"], 64_123.45);
    assert_eq!(u["data"]["change_24h_pct"], 1.5);
    assert_eq!(u["seq"], 1);
    assert_eq!(u["stale"], false);
    // The round's updates (btc, and market from two sources) came as one `batch` message (the
    // welcome and the catch-up of the four channels were another).
    let carries_updates = |m: &&serde_json::Value| {
        m["type"] == "batch" && m["frames"].as_array().is_some_and(|f| f.iter().any(|f| f["type"] == "update"))
    };
    let batch =
        early.seen.iter().find(carries_updates).unwrap_or_else(|| panic!("no batch message: {:#?}", early.seen));
    let channels: Vec<&str> =
        batch["frames"].as_array().unwrap().iter().filter_map(|f| f["channel"].as_str()).collect();
    assert!(channels.starts_with(&["btc", "market"]), "{batch}");
    assert!(batch["frames"].as_array().unwrap().iter().all(|f| f["type"] == "update"), "{batch}");

    // A client that connects afterwards gets the latest value at once.
    let mut late = w.ws("/ws");
    late.expect("welcome", FRAME_WAIT, |v| v["type"] == "welcome");
    let u = late.expect("latest btc on connect", FRAME_WAIT, is_update("btc"));
    assert_eq!((u["seq"].clone(), u["data"]["price_usd"].clone()), (json!(1), json!(64_123.45)));

    let (status, snap) = w.get_json("/api/snapshot");
    assert_eq!(status, 200, "{snap}");
    let btc = &snap["channels"]["btc"];
    assert_eq!(btc["data"]["price_usd"], 64_123.45, "{snap}");
    assert!(btc["age_seconds"].as_u64().is_some_and(|a| a < 30), "{snap}");
    assert_eq!(btc["stale"], false);
    assert_eq!(snap["channels"]["market"]["data"]["coins"]["bitcoin"]["price_usd"], 64_123.45, "{snap}");

    // A new price reaches both clients with the next sequence number.
    fixture.set_btc(65_000.5, -0.25);
    w.fire_cron();
    for ws in [&mut early, &mut late] {
        let u = ws.expect("second btc update", FRAME_WAIT, |v| is_update("btc")(v) && v["seq"] == 2);
        assert_eq!(u["data"]["price_usd"], 65_000.5);
        assert_eq!(u["data"]["change_24h_pct"], -0.25);
    }
    assert_eq!(w.get_json("/api/snapshot").1["channels"]["btc"]["data"]["price_usd"], 65_000.5);

    // The same value again is not news: no frame, no new seq. (First read what is left of the
    // last tick: its market update.)
    while early.next(Duration::from_millis(500)).is_some() {}
    w.fire_cron();
    if let Some(v) = early.next(Duration::from_millis(1500)) {
        panic!("unchanged value was broadcast again: {v}");
    }
    let metrics = w.get("/metrics").body;
    assert!(metrics.contains("tickwire_updates_published_total{channel=\"btc\"} 2\n"), "{metrics}");
    assert!(metrics.contains("tickwire_sockets_connected 2\n"), "{metrics}");
    assert!(
        metrics.contains("tickwire_upstream_requests_total{source=\"coingecko_price\",outcome=\"ok\"} 3\n"),
        "{metrics}"
    );
    w.assert_no_panic();
}

#[test]
fn upstream_failures_keep_the_last_good_value() {
    let fixture = Fixture::start();
    fixture.set_btc(64_123.45, 1.5);
    // Three failures in a row would open the breaker and skip the recovery tick; that is
    // tested in feeds.rs.
    let w = Wrangler::start(&fixture, &[("BREAKER_FAILURES", "10")]);
    w.fire_cron();
    let mut ws = w.ws("/ws");
    ws.expect("latest btc", FRAME_WAIT, is_update("btc"));
    // The catch-up ends with a `subscribed` per channel; the last default channel is indicators.
    ws.expect("end of catch-up", FRAME_WAIT, |v| v["type"] == "subscribed" && v["channel"] == "indicators");

    // HTTP 500, a body that is not JSON, then JSON of the wrong shape.
    fixture.set("/api/v3/simple/price", 500, json!({"error": "internal"}));
    w.fire_cron();
    fixture.set("/api/v3/simple/price", 200, json!("{\"bitcoin\": {\"usd\": 6"));
    w.fire_cron();
    fixture.set("/api/v3/simple/price", 200, json!({"bitcoin": {"usd": "64000", "usd_24h_change": 1}}));
    w.fire_cron();

    assert!(ws.next(Duration::from_millis(1000)).is_none(), "a failure must not broadcast: {:?}", ws.seen);
    let (_, snap) = w.get_json("/api/snapshot");
    assert_eq!(snap["channels"]["btc"]["data"]["price_usd"], 64_123.45, "{snap}");

    let (status, health) = w.get_json("/health");
    assert_eq!(status, 200, "degraded still serves: {health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let up = &health["components"]["coingecko_price"];
    assert_eq!(up["status"], "failing", "{health}");
    assert_eq!(up["consecutive_failures"], 3, "{health}");
    assert_eq!(up["last_error"]["outcome"], "parse_error", "{health}");
    assert_eq!(health["components"]["kv"]["status"], "ok");
    assert_eq!(health["components"]["hub"]["status"], "ok");

    let metrics = w.get("/metrics");
    assert!(metrics.content_type.starts_with("text/plain; version=0.0.4"), "{}", metrics.content_type);
    for (outcome, n) in [("ok", 1), ("http_error", 1), ("parse_error", 2), ("timeout", 0)] {
        let line =
            format!("tickwire_upstream_requests_total{{source=\"coingecko_price\",outcome=\"{outcome}\"}} {n}\n");
        assert!(metrics.body.contains(&line), "missing {line:?} in\n{}", metrics.body);
    }
    promtool_accepts(&metrics.body);

    // Recovery: a good answer clears the failure and publishes the new value.
    fixture.set_btc(63_000.0, -2.0);
    w.fire_cron();
    let u = ws.expect("recovered btc", FRAME_WAIT, is_update("btc"));
    assert_eq!((u["seq"].as_u64(), u["data"]["price_usd"].as_f64()), (Some(2), Some(63_000.0)));
    let (_, health) = w.get_json("/health");
    assert_eq!(health["components"]["coingecko_price"]["status"], "ok", "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    w.assert_no_panic();
}

#[test]
fn unreachable_and_slow_upstreams_are_counted() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("UPSTREAM_TIMEOUT_MS", "500")]);
    fixture.set_route(json!({"path": "/api/v3/simple/price", "status": 200, "delay_ms": 1500,
        "body": {"bitcoin": {"usd": 1.0, "usd_24h_change": 0}}}));
    w.fire_cron();
    let seen: Vec<Value> = fixture.requests().into_iter().filter(|r| r["path"] == "/api/v3/simple/price").collect();
    assert_eq!(seen.len(), 1, "one price request per tick: {seen:?}");
    assert_eq!(seen[0]["path"], "/api/v3/simple/price");
    assert!(seen[0]["query"].as_str().is_some_and(|q| q.contains("ids=bitcoin")), "{seen:?}");
    let metrics = w.get("/metrics").body;
    assert!(
        metrics.contains("tickwire_upstream_requests_total{source=\"coingecko_price\",outcome=\"timeout\"} 1\n"),
        "{metrics}"
    );
    // Nothing was ever fetched: snapshot has no btc, health says the upstream is failing.
    assert_eq!(w.get_json("/api/snapshot").1["channels"]["btc"], Value::Null);
    let (_, health) = w.get_json("/health");
    assert_eq!(health["components"]["coingecko_price"]["last_error"]["outcome"], "timeout", "{health}");
    w.assert_no_panic();
}

#[test]
fn http_routes_answer_with_json_errors() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);

    let (status, health) = w.get_json("/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "never polled yet: {health}");
    assert_eq!(health["components"]["coingecko_price"]["status"], "unknown");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    let r = w.get("/ws");
    assert_eq!(r.status, 426, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "upgrade_required");
    let r = w.get("/nope");
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (404, json!("not_found")));
    assert_eq!(r.content_type, "application/json");

    let post = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(&format!("{}/health", w.base))
        .send("x")
        .expect("POST /health");
    assert_eq!(post.status().as_u16(), 405);
    assert_eq!(post.headers().get("allow").and_then(|v| v.to_str().ok()), Some("GET"));

    let page = w.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<script type=\"module\" src=\"/app.js\">"), "{}", page.body);
    assert_eq!(w.get("/app.js").status, 200);
    assert_eq!(w.get("/tickwire-client.js").status, 200, "the module app.js imports");

    // Text `ping` is answered by the runtime's auto-response.
    let mut ws = w.ws("/ws");
    ws.expect("welcome", FRAME_WAIT, |v| v["type"] == "welcome");
    ws.send_text("ping");
    ws.expect("pong", FRAME_WAIT, |v| v == "pong");
    w.assert_no_panic();
}

#[test]
fn sequence_survives_a_restart() {
    let fixture = Fixture::start();
    fixture.set_btc(100.0, 0.0);
    let mut w = Wrangler::start(&fixture, &[]);
    w.fire_cron();
    w.restart();
    let mut ws = w.ws("/ws");
    let u = ws.expect("latest btc after restart", FRAME_WAIT, is_update("btc"));
    assert_eq!((u["seq"].as_u64(), u["data"]["price_usd"].as_f64()), (Some(1), Some(100.0)));
    fixture.set_btc(101.0, 0.0);
    w.fire_cron();
    let u = ws.expect("next btc", FRAME_WAIT, |v| is_update("btc")(v) && v["seq"] == 2);
    assert_eq!(u["data"]["price_usd"].as_f64(), Some(101.0));
    let metrics = w.get("/metrics").body;
    assert!(metrics.contains("tickwire_connections_opened_total 1\n"), "{metrics}");
}
