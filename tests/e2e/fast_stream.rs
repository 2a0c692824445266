//! The fast BTC stream: while a socket watches `btc` (on any shard) the hub polls the price
//! every FAST_POLL_SECONDS, and stops when nobody watches.

use crate::feeds::{prices, PRICE};
use crate::harness::{is_update, wait_until, Fixture, Wrangler};
use serde_json::json;
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(3);

#[test]
fn btc_subscribers_get_a_fast_stream_that_stops_without_them() {
    let fixture = Fixture::start();
    // 60 polls a minute would drain the default 30-per-minute CoinGecko budget.
    let w = Wrangler::start(&fixture, &[("FAST_POLL_SECONDS", "1"), ("COINGECKO_RPM", "120")]);
    let price_sent = || fixture.requests_to(PRICE);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(price_sent().is_empty(), "polling with nobody watching btc");

    let mut c = w.client("/ws?channels=btc");
    c.catch_up("btc", FRAME_WAIT);
    fixture.set(PRICE, 200, prices(65_000.5, -0.5));
    let u = c.expect("fast btc update", Duration::from_millis(3500), |v| {
        is_update("btc")(v) && v["data"]["price_usd"] == 65_000.5
    });
    assert_eq!((u["data"]["change_24h_pct"].as_f64(), &u["stale"]), (Some(-0.5), &json!(false)), "{u}");
    assert!(!price_sent().is_empty());

    // Still connected but no longer on btc: polling stops after at most one more period.
    c.send_json(&json!({"op": "unsubscribe", "channels": ["btc"]}));
    c.expect("unsubscribed btc", FRAME_WAIT, |v| v["type"] == "unsubscribed" && v["channel"] == "btc");
    let quiet_after_leaving = || {
        std::thread::sleep(Duration::from_millis(2500));
        fixture.clear_requests();
        std::thread::sleep(Duration::from_secs(3));
        let sent = price_sent();
        assert!(sent.is_empty(), "still polling without btc subscribers: {sent:#?}");
    };
    quiet_after_leaving();

    // A new subscriber restarts it, and gets changes as they come.
    let mut d = w.client("/ws?channels=btc");
    let (ups, _) = d.catch_up("btc", FRAME_WAIT);
    assert_eq!(ups.last().and_then(|u| u["data"]["price_usd"].as_f64()), Some(65_000.5), "{ups:#?}");
    wait_until("polling resumed", Duration::from_millis(3500), || !price_sent().is_empty());
    fixture.set(PRICE, 200, prices(65_100.25, -0.4));
    d.expect("next fast btc update", Duration::from_millis(3500), |v| {
        is_update("btc")(v) && v["data"]["price_usd"] == 65_100.25
    });

    // Closing the last subscriber's socket stops it too.
    d.close();
    quiet_after_leaving();
    c.ping(FRAME_WAIT);
    w.assert_no_panic();
}

/// With shards, the poll runs in shard 0 but the watcher may sit on another shard: that shard
/// tells shard 0 when it starts and stops having `btc` subscribers.
#[test]
fn a_watcher_on_another_shard_starts_and_stops_the_poll() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("FAST_POLL_SECONDS", "1"), ("COINGECKO_RPM", "120"), ("HUB_SHARDS", "3")]);
    let price_sent = || fixture.requests_to(PRICE);
    // A market-only socket on shard 1: it sees the poll's market update only if shard 0 (the
    // sequencer) ran the poll and fanned it out, not if shard 2 polled by itself.
    let mut m = w.client("/ws?shard=1&channels=market");
    m.catch_up("market", FRAME_WAIT);
    let mut c = w.client("/ws?shard=2&channels=btc");
    c.catch_up("btc", FRAME_WAIT);
    fixture.set(PRICE, 200, prices(66_000.0, 1.0));
    let u = c.expect("fast btc update on shard 2", Duration::from_millis(4000), |v| {
        is_update("btc")(v) && v["data"]["price_usd"] == 66_000.0
    });
    assert_eq!(u["stale"], json!(false));
    m.expect("the sequencer's market update on shard 1", FRAME_WAIT, |v| {
        is_update("market")(v) && v["data"]["coins"]["bitcoin"]["price_usd"] == 66_000.0
    });
    c.close();
    std::thread::sleep(Duration::from_millis(2500));
    fixture.clear_requests();
    std::thread::sleep(Duration::from_secs(3));
    let sent = price_sent();
    assert!(sent.is_empty(), "still polling after shard 2's last btc socket left: {sent:#?}");
    // And it comes back with the next watcher there.
    let mut d = w.client("/ws?shard=1&channels=btc");
    d.catch_up("btc", FRAME_WAIT);
    wait_until("polling resumed", Duration::from_millis(3500), || !price_sent().is_empty());
    w.assert_no_panic();
}

/// While `btc` is watched, the fast round also refreshes the market totals and the sentiment
/// every MARKET_REFRESH_SECONDS (no cron tick in this test): a changed Fear & Greed value and
/// a changed total market cap reach a socket that watches `btc`, `market` and `sentiment`.
#[test]
fn market_and_sentiment_refresh_while_watched() {
    let fixture = Fixture::start();
    let vars = [("FAST_POLL_SECONDS", "1"), ("MARKET_REFRESH_SECONDS", "2"), ("COINGECKO_RPM", "240")];
    let w = Wrangler::start(&fixture, &vars);
    let mut c = w.client("/ws?channels=btc,market,sentiment");
    for channel in ["btc", "market", "sentiment"] {
        c.catch_up(channel, FRAME_WAIT);
    }
    wait_until("totals and sentiment fetched", Duration::from_secs(5), || {
        !fixture.requests_to("/fng/").is_empty() && !fixture.requests_to("/api/v3/global").is_empty()
    });
    fixture.set("/fng/", 200, crate::feeds::fng("17"));
    let mut global = crate::feeds::global();
    global["data"]["total_market_cap"]["usd"] = json!(3.5e12);
    fixture.set("/api/v3/global", 200, global);
    let s =
        c.expect("new sentiment", Duration::from_secs(5), |v| is_update("sentiment")(v) && v["data"]["value"] == 17);
    assert_eq!(s["stale"], false, "{s}");
    c.expect("new totals", Duration::from_secs(5), |v| {
        is_update("market")(v) && v["data"]["total_market_cap_usd"] == 3.5e12
    });
    // Paced: in 4 s, about two refreshes of each (not one per fast poll).
    fixture.clear_requests();
    std::thread::sleep(Duration::from_secs(4));
    let (fng, prices) = (fixture.requests_to("/fng/").len(), fixture.requests_to(PRICE).len());
    assert!((1..=3).contains(&fng) && prices >= 3, "{fng} sentiment and {prices} price requests in 4 s");
    w.assert_no_panic();
}
