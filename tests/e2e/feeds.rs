//! The market feeds end to end: four upstreams fetched in parallel by one cron tick into `btc`,
//! `market`, `sentiment` and `indicators`; per-provider rate limits, per-source circuit breakers,
//! timeouts, malformed answers, stale values, a price answer that lacks one coin, and the fast
//! BTC stream while someone watches `btc`.

use crate::harness::{
    epoch_now, is_update, metric_value, pick, promtool_accepts, rfc3339_secs, same, sleep_until_epoch, Client, Fixture,
    Wrangler,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub(crate) const PRICE: &str = "/api/v3/simple/price";
pub(crate) const GLOBAL: &str = "/api/v3/global";
pub(crate) const FNG: &str = "/fng/";
pub(crate) const CHART: &str = "/api/v3/coins/bitcoin/market_chart";
const CHANNELS: [&str; 4] = ["btc", "market", "sentiment", "indicators"];
const SOURCES: [&str; 4] = ["coingecko_price", "coingecko_global", "fng", "coingecko_chart"];
const OUTCOMES: [&str; 7] =
    ["ok", "http_error", "timeout", "network_error", "parse_error", "rate_limited", "breaker_open"];
const FRAME_WAIT: Duration = Duration::from_secs(3);
/// How long a socket must stay silent to show that nothing more is coming.
const QUIET: Duration = Duration::from_millis(1500);
/// The fixture chart's last two hourly points (`as_of` is one of them: a server may drop the
/// newest point as an unfinished hour).
const LAST_CLOSES_MS: [u64; 2] = [1_700_000_000_000 + 47 * 3_600_000, 1_700_000_000_000 + 48 * 3_600_000];

// The fixture's default answers (tests/fixtures/upstream.py), rebuilt here so a test can set a
// route with a delay or one changed field and still serve everything else the default serves.

/// simple/price for the three default coins; only bitcoin's price and change vary.
/// (`Fixture::set_btc` drops ethereum and solana, which `market` needs.)
pub(crate) fn prices(btc_usd: f64, btc_change: f64) -> Value {
    json!({
        "bitcoin": {"usd": btc_usd, "usd_24h_change": btc_change, "usd_market_cap": 1.26e12, "usd_24h_vol": 3.1e10},
        "ethereum": {"usd": 3120.5, "usd_24h_change": -0.82, "usd_market_cap": 3.75e11, "usd_24h_vol": 1.4e10},
        "solana": {"usd": 142.1, "usd_24h_change": 3.1, "usd_market_cap": 6.5e10, "usd_24h_vol": 2.2e9},
    })
}

pub(crate) fn global() -> Value {
    json!({"data": {"total_market_cap": {"usd": 2.41e12}, "total_volume": {"usd": 8.9e10},
        "market_cap_percentage": {"btc": 52.3, "eth": 15.6}, "updated_at": 1_700_000_000}})
}

pub(crate) fn fng(value: &str) -> Value {
    json!({"name": "Fear and Greed Index", "metadata": {"error": null}, "data": [{"value": value,
        "value_classification": "Greed", "timestamp": "1700000000", "time_until_update": "3600"}]})
}

fn chart() -> Value {
    let prices: Vec<Value> =
        (0..49u64).map(|i| json!([1_700_000_000_000 + i * 3_600_000, 60_000 + (i % 7) * 150 - (i % 3) * 90])).collect();
    json!({ "prices": prices })
}

/// The `market` data that `prices` (a simple/price body) and the default global answer make.
fn market_of(prices: &Value) -> Value {
    let coins: serde_json::Map<String, Value> = (prices.as_object().into_iter().flatten())
        .map(|(id, p)| {
            let coin = json!({"price_usd": p["usd"], "change_24h_pct": p["usd_24h_change"],
                "market_cap_usd": p["usd_market_cap"], "volume_24h_usd": p["usd_24h_vol"]});
            (id.clone(), coin)
        })
        .collect();
    json!({"coins": coins, "total_market_cap_usd": 2.41e12, "total_volume_24h_usd": 8.9e10, "btc_dominance_pct": 52.3})
}

pub(crate) fn requests(source: &str, outcome: &str) -> String {
    format!("tickwire_upstream_requests_total{{source=\"{source}\",outcome=\"{outcome}\"}}")
}

fn breaker_state(source: &str) -> String {
    format!("tickwire_upstream_breaker_state{{source=\"{source}\"}}")
}

/// `_sum` or `_count` of the request-duration histogram for `source`.
fn duration(suffix: &str, source: &str) -> String {
    format!("tickwire_upstream_request_duration_seconds_{suffix}{{source=\"{source}\"}}")
}

/// The `(le, count)` buckets of `source`'s request-duration histogram, in exposition order.
fn buckets(text: &str, source: &str) -> Vec<(String, f64)> {
    let prefix = format!("tickwire_upstream_request_duration_seconds_bucket{{source=\"{source}\",le=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once("\"} "))
        .map(|(le, n)| (le.to_owned(), n.trim().parse().unwrap_or(f64::NAN)))
        .collect()
}

/// Asserts a logged request's query has each `(name, value)`. Values are compared as sets of
/// comma-separated items: the commas may arrive percent-encoded, the ids in any order.
fn assert_query(r: &Value, want: &[(&str, &str)]) {
    let items =
        |v: &str| v.replace("%2C", ",").replace("%2c", ",").split(',').map(str::to_owned).collect::<BTreeSet<_>>();
    let q: BTreeMap<&str, &str> =
        r["query"].as_str().unwrap_or_default().split('&').filter_map(|p| p.split_once('=')).collect();
    for (k, v) in want {
        assert_eq!(q.get(k).map(|g| items(g)), Some(items(v)), "{k} in {r}");
    }
}

/// A logged request's `start` or `end` (epoch seconds); `end` must be set (answered).
pub(crate) fn at(r: &Value, key: &str) -> f64 {
    r[key].as_f64().unwrap_or_else(|| panic!("no {key}: {r}"))
}

/// Whether two logged requests were in flight at the same time (a pending one still is).
fn overlap(a: &Value, b: &Value) -> bool {
    let end = |r: &Value| r["end"].as_f64().unwrap_or(f64::INFINITY);
    at(a, "start") < end(b) && at(b, "start") < end(a)
}

/// `/health`, which answers 200 whether the service is ok or degraded.
pub(crate) fn health(w: &Wrangler) -> Value {
    let (status, h) = w.get_json("/health");
    assert_eq!(status, 200, "{h}");
    h
}

fn snapshot(w: &Wrangler) -> Value {
    w.get_json("/api/snapshot").1["channels"].clone()
}

/// Reads the catch-up of each channel and drops it.
fn catch_up_all(c: &mut Client, channels: &[&str]) {
    for ch in channels {
        c.catch_up(ch, FRAME_WAIT);
    }
}

/// The update frames among what arrives within [`QUIET`].
fn updates_within_quiet(c: &mut Client) -> Vec<Value> {
    c.collect(QUIET).into_iter().filter(|v| v["type"] == "update").collect()
}

#[test]
fn one_tick_fetches_all_feeds_in_parallel_and_publishes_only_changes() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    let mut c = w.client("/ws");
    assert_eq!(c.welcome["stale_after_seconds"], 180, "{}", c.welcome);
    // No tick yet. btc may already have a value: subscribing to it starts the fast BTC poll.
    let early_btc = c.catch_up("btc", FRAME_WAIT).0.pop();
    catch_up_all(&mut c, &["market", "sentiment", "indicators"]);

    // 700 ms per answer: one after the other would take 2.8 s and could not overlap.
    fixture.clear_requests();
    for (path, body) in [(PRICE, prices(64_123.45, 1.2345)), (GLOBAL, global()), (FNG, fng("62")), (CHART, chart())] {
        fixture.set_route(json!({"path": path, "status": 200, "delay_ms": 700, "body": body}));
    }
    w.fire_cron();
    let log = fixture.requests();
    let one = |path: &str| -> Value {
        let sent: Vec<&Value> = log.iter().filter(|r| r["path"] == path).collect();
        assert_eq!(sent.len(), 1, "one {path} request per tick: {log:#?}");
        sent[0].clone()
    };
    let others = [one(GLOBAL), one(FNG), one(CHART)];
    // A fast-poll request may also be in the log; the tick's own is the one overlapping the rest.
    let price = log
        .iter()
        .find(|r| r["path"] == PRICE && others.iter().all(|o| overlap(r, o)))
        .unwrap_or_else(|| panic!("requests did not overlap (not fetched in parallel): {log:#?}"));
    assert!(overlap(&others[0], &others[1]) && overlap(&others[0], &others[2]) && overlap(&others[1], &others[2]));
    let flags = [("include_24hr_change", "true"), ("include_market_cap", "true"), ("include_24hr_vol", "true")];
    assert_query(price, &[("ids", "bitcoin,ethereum,solana"), ("vs_currencies", "usd")]);
    assert_query(price, &flags);
    assert_query(&others[2], &[("vs_currency", "usd"), ("days", "2")]);

    // One update per channel with the fixture's numbers (market may have had a coins-only
    // value from the fast poll first, so wait for the one with the totals).
    let btc = match early_btc {
        Some(u) => u,
        None => c.expect("btc update", FRAME_WAIT, is_update("btc")),
    };
    let market = c.expect("full market update", FRAME_WAIT, |v| {
        is_update("market")(v) && v["data"]["total_market_cap_usd"] == 2.41e12
    });
    let sentiment = c.expect("sentiment update", FRAME_WAIT, is_update("sentiment"));
    let indicators = c.expect("indicators update", FRAME_WAIT, is_update("indicators"));
    for u in [&btc, &market, &sentiment, &indicators] {
        assert_eq!(u["stale"], false, "{u}");
        assert!(u["ts"].as_u64().is_some_and(|t| t > 0), "{u}");
    }
    // Exact shapes (no missing or extra keys) and the fixture's numbers.
    let want = json!({"price_usd": 64_123.45, "change_24h_pct": 1.2345});
    assert!(same(&btc["data"], &want), "{btc}");
    assert!(same(&market["data"], &market_of(&prices(64_123.45, 1.2345))), "{market}");
    let d = &sentiment["data"];
    assert_eq!(d, &json!({"value": 62, "classification": "Greed"}), "value is an integer, not a string");
    let d = &indicators["data"];
    let keys: BTreeSet<&str> = d.as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, BTreeSet::from(["rsi_14", "period", "closes", "as_of", "hourly_closes"]), "{d}");
    assert!(d["rsi_14"].as_f64().is_some_and(|r| (0.0..=100.0).contains(&r)), "{d}");
    assert_eq!(d["period"], 14, "{d}");
    assert!(d["closes"].as_u64().is_some_and(|n| (15..=49).contains(&n)), "{d}");
    assert!(d["as_of"].as_u64().is_some_and(|t| LAST_CLOSES_MS.contains(&t)), "{d}");
    // The last 48 of the fixture's 49 hourly closes, as [ms, price], for the dashboard's chart.
    let chart = d["hourly_closes"].as_array().cloned().unwrap_or_default();
    assert_eq!(chart.len(), 48, "{d}");
    assert_eq!(chart.last().map(|c| c[0].clone()), Some(d["as_of"].clone()), "{d}");
    for point in &chart {
        // The fixture's close i is at 1_700_000_000_000 + i h, priced 60000 + (i % 7) 150 - (i % 3) 90.
        let i = point[0].as_u64().unwrap_or(0).saturating_sub(1_700_000_000_000) / 3_600_000;
        assert_eq!(point[1].as_f64(), Some(60000.0 + (i % 7) as f64 * 150.0 - (i % 3) as f64 * 90.0), "{point}");
    }
    let times: Vec<u64> = chart.iter().filter_map(|p| p[0].as_u64()).collect();
    assert!(times.windows(2).all(|w| w[1] == w[0] + 3_600_000), "hourly, oldest first: {times:?}");

    let text = w.get("/metrics").body;
    for s in SOURCES {
        for o in OUTCOMES {
            assert!(metric_value(&text, &requests(s, o)).is_some(), "no {} in\n{text}", requests(s, o));
        }
        assert_eq!(metric_value(&text, &breaker_state(s)), Some(0.0), "{text}");
    }
    for s in ["coingecko_global", "fng", "coingecko_chart"] {
        assert_eq!(metric_value(&text, &requests(s, "ok")), Some(1.0), "{s}:\n{text}");
        assert_eq!(metric_value(&text, &duration("count", s)), Some(1.0), "{s}:\n{text}");
        // The request took at least the fixture's 700 ms.
        assert!(metric_value(&text, &duration("sum", s)).is_some_and(|t| t >= 0.6), "{s}:\n{text}");
        let b = buckets(&text, s);
        assert!(b.windows(2).all(|p| p[0].1 <= p[1].1), "buckets must be cumulative: {b:?}");
        assert_eq!(b.last().map(|(le, n)| (le.as_str(), *n)), Some(("+Inf", 1.0)), "{s}:\n{text}");
    }
    promtool_accepts(&text);

    let h = health(&w);
    assert_eq!(h["status"], "ok", "{h}");
    for s in SOURCES {
        let c = &h["components"][s];
        let got = pick(c, &["/status", "/breaker", "/breaker_open_until", "/rate_limited_until", "/last_error"]);
        assert_eq!(got, json!(["ok", "closed", null, null, null]), "{s}: {h}");
        assert_eq!(pick(c, &["/consecutive_failures", "/stale"]), json!([0, false]), "{s}: {h}");
        assert!(c["data_age_seconds"].as_u64().is_some_and(|a| a < 30), "{s}: {h}");
        rfc3339_secs(&c["last_success"]);
    }
    let snap = snapshot(&w);
    for (ch, u) in CHANNELS.iter().zip([&btc, &market, &sentiment, &indicators]) {
        let e = &snap[ch];
        assert_eq!((e["channel"].as_str(), e["source"].as_str()), (Some(*ch), Some("hub")), "{snap}");
        assert!(same(&e["data"], &u["data"]) && e["stale"] == false, "{ch}: {snap}");
        assert!(e["seq"].as_u64().is_some_and(|s| s >= 1) && e["age_seconds"].as_u64().is_some(), "{snap}");
        rfc3339_secs(&e["fetched_at"]);
    }

    // Same answers again (without the delays): fetched and confirmed, but nothing is news.
    // First drop what is still queued from the first tick (market's coins-only step).
    c.collect(QUIET);
    fixture.reset();
    w.fire_cron();
    let extra = updates_within_quiet(&mut c);
    assert!(extra.is_empty(), "unchanged values were broadcast again: {extra:#?}");
    assert!(fixture.requests_to(CHART).is_empty(), "chart refetched within RSI_REFRESH_SECONDS");
    assert_eq!((fixture.requests_to(GLOBAL).len(), fixture.requests_to(FNG).len()), (1, 1));
    assert!(!fixture.requests_to(PRICE).is_empty());
    let again = snapshot(&w);
    for ch in CHANNELS {
        assert_eq!(again[ch]["seq"], snap[ch]["seq"], "{ch}: no new value, no new seq: {again}");
    }
    let confirmed = |s: &Value| rfc3339_secs(&s["sentiment"]["confirmed_at"]);
    assert!(confirmed(&again) > confirmed(&snap), "the second fetch confirms the value: {snap} then {again}");
    assert_eq!(w.metric(&requests("coingecko_chart", "ok")), 1.0);
    w.assert_no_panic();
}

#[test]
fn a_429_with_retry_after_pauses_the_whole_provider() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    fixture.set_route(json!({"path": PRICE, "status": 429, "headers": {"Retry-After": "3"},
        "body": {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}}));
    w.fire_cron();
    let sent = fixture.requests_to(PRICE);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let answered = at(&sent[0], "end");
    assert_eq!(w.metric(&requests("coingecko_price", "rate_limited")), 1.0);
    // 200 from here on: whatever the hub skips now, it skips because of the Retry-After.
    fixture.reset();

    let h = health(&w);
    assert_eq!(h["status"], "degraded", "{h}");
    // The pause is the provider's: all three CoinGecko sources show it, Alternative.me does not.
    for s in ["coingecko_price", "coingecko_global", "coingecko_chart"] {
        let until = rfc3339_secs(&h["components"][s]["rate_limited_until"]);
        assert!((answered + 2.0..=answered + 4.5).contains(&until), "{s}: until {until}, 429 at {answered}: {h}");
    }
    assert_eq!(h["components"]["fng"]["rate_limited_until"], Value::Null, "{h}");

    for when in [answered + 0.2, answered + 1.8] {
        sleep_until_epoch(when);
        w.fire_cron();
        assert!(epoch_now() < answered + 3.0, "tick ended after the Retry-After window; machine too slow?");
    }
    let log = fixture.requests();
    assert!(log.iter().all(|r| r["path"] == FNG), "CoinGecko asked inside Retry-After: {log:#?}");
    assert_eq!(fixture.requests_to(FNG).len(), 2, "fng is another provider: {log:#?}");
    // Skipped sources count as rate_limited too; global was fetched once, in the first tick.
    let counts = [("coingecko_price", "rate_limited", 3.0), ("coingecko_global", "rate_limited", 2.0)];
    for (s, o, n) in counts.into_iter().chain([("coingecko_global", "ok", 1.0), ("fng", "ok", 3.0)]) {
        assert_eq!(w.metric(&requests(s, o)), n, "{s} {o}");
    }
    assert_eq!(w.metric(&duration("count", "coingecko_price")), 1.0, "only the 429 was sent");

    sleep_until_epoch(answered + 3.5);
    w.fire_cron();
    assert_eq!((fixture.requests_to(PRICE).len(), fixture.requests_to(GLOBAL).len()), (1, 1));
    assert_eq!(snapshot(&w)["btc"]["data"]["price_usd"], 64_123.45);
    assert_eq!(health(&w)["components"]["coingecko_price"]["status"], "ok");
    w.assert_no_panic();
}

#[test]
fn breaker_opens_probes_once_and_doubles_its_cooldown() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("BREAKER_FAILURES", "3"), ("BREAKER_COOLDOWN_SECONDS", "2")]);
    let price_sent = || fixture.requests_to(PRICE);
    fixture.set(PRICE, 500, json!({"error": "internal"}));
    for n in 1..=3 {
        w.fire_cron();
        assert_eq!(price_sent().len(), n, "one request per tick while closed");
    }
    let opened = at(&price_sent()[2], "end");
    let h = health(&w);
    let c = &h["components"]["coingecko_price"];
    assert_eq!(pick(c, &["/breaker", "/status", "/consecutive_failures"]), json!(["open", "failing", 3]), "{h}");
    let open_until = rfc3339_secs(&c["breaker_open_until"]);
    assert!((opened + 1.5..=opened + 3.0).contains(&open_until), "open until {open_until}, opened {opened}: {h}");
    assert_eq!(h["components"]["coingecko_global"]["breaker"], "closed", "breakers are per source: {h}");
    assert_eq!(w.metric(&breaker_state("coingecko_price")), 1.0);
    assert_eq!(w.metric(&breaker_state("coingecko_global")), 0.0);

    // Open: the tick skips the source and counts it, the other sources go on.
    assert!(epoch_now() < opened + 1.5, "machine too slow for a 2 s cooldown");
    fixture.clear_requests();
    w.fire_cron();
    assert!(price_sent().is_empty(), "request sent through an open breaker");
    assert_eq!(fixture.requests_to(GLOBAL).len(), 1);
    assert_eq!(w.metric(&requests("coingecko_price", "breaker_open")), 1.0);

    // Cooldown over: exactly one probe, which fails (still 500), so the breaker re-opens.
    sleep_until_epoch(open_until + 0.4);
    w.fire_cron();
    let probe = price_sent();
    assert_eq!(probe.len(), 1, "half-open sends exactly one request: {probe:?}");
    let reopened = at(&probe[0], "end");
    let h = health(&w);
    let c = &h["components"]["coingecko_price"];
    assert_eq!(c["breaker"], "open", "{h}");
    let open_until = rfc3339_secs(&c["breaker_open_until"]);
    assert!(
        (reopened + 3.5..=reopened + 4.6).contains(&open_until),
        "cooldown doubles to 4 s: {open_until}, {reopened}"
    );
    assert_eq!(w.metric(&breaker_state("coingecko_price")), 1.0);

    // Right after, and past the old 2 s but inside the doubled 4 s: nothing sent.
    w.fire_cron();
    sleep_until_epoch(reopened + 2.8);
    w.fire_cron();
    assert!(epoch_now() < open_until, "machine too slow for a 4 s cooldown");
    assert_eq!(price_sent().len(), 1, "sent while re-opened");
    assert_eq!(w.metric(&requests("coingecko_price", "breaker_open")), 3.0);

    // The upstream recovers; the next probe succeeds and closes the breaker.
    fixture.reset();
    sleep_until_epoch(open_until + 0.4);
    w.fire_cron();
    assert_eq!(price_sent().len(), 1);
    let h = health(&w);
    let got = pick(&h["components"]["coingecko_price"], &["/breaker", "/status", "/breaker_open_until"]);
    assert_eq!(got, json!(["closed", "ok", null]), "{h}");
    assert_eq!(h["components"]["coingecko_price"]["consecutive_failures"], 0, "{h}");
    assert_eq!(w.metric(&breaker_state("coingecko_price")), 0.0);
    for (outcome, n) in [("http_error", 4.0), ("breaker_open", 3.0), ("ok", 1.0)] {
        assert_eq!(w.metric(&requests("coingecko_price", outcome)), n, "{outcome}");
    }
    assert_eq!(w.metric(&duration("count", "coingecko_price")), 5.0, "requests actually sent");
    assert_eq!(snapshot(&w)["btc"]["data"]["price_usd"], 64_123.45);
    w.assert_no_panic();
}

#[test]
fn a_slow_upstream_times_out_without_holding_up_the_others() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("UPSTREAM_TIMEOUT_MS", "1000")]);
    // No btc subscription, so no fast poll adds requests.
    let mut c = w.client("/ws?channels=market,sentiment,indicators");
    catch_up_all(&mut c, &["market", "sentiment", "indicators"]);
    // Far slower than the timeout, so a tick that waited for it cannot pass for overhead.
    fixture.set_route(json!({"path": FNG, "status": 200, "delay_ms": 4000, "body": fng("62")}));
    let began = Instant::now();
    w.fire_cron();
    let took = began.elapsed();
    let slow = fixture.requests_to(FNG);
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert!(slow[0]["end"].is_null(), "the tick waited for the slow answer: {slow:?}");
    assert!(took < Duration::from_millis(3000), "tick took {took:?} with a 1 s timeout");

    // The other feeds were published by the same tick.
    c.expect("market update", FRAME_WAIT, is_update("market"));
    c.expect("indicators update", FRAME_WAIT, is_update("indicators"));
    let snap = snapshot(&w);
    assert_eq!(snap["btc"]["data"]["price_usd"], 64_123.45, "{snap}");
    assert_eq!(snap["sentiment"], Value::Null, "{snap}");
    assert_eq!(w.metric(&requests("fng", "timeout")), 1.0);
    assert_eq!(w.metric(&requests("fng", "ok")), 0.0);
    for s in ["coingecko_price", "coingecko_global", "coingecko_chart"] {
        assert_eq!(w.metric(&requests(s, "ok")), 1.0, "{s}");
    }
    let h = health(&w);
    let got = pick(&h["components"]["fng"], &["/status", "/last_error/outcome", "/consecutive_failures"]);
    assert_eq!(got, json!(["failing", "timeout", 1]), "{h}");

    // The answer that comes after the timeout is not used either.
    sleep_until_epoch(at(&slow[0], "start") + 4.5);
    let late: Vec<Value> = updates_within_quiet(&mut c).into_iter().filter(is_update("sentiment")).collect();
    assert!(late.is_empty(), "{late:#?}");
    assert_eq!(snapshot(&w)["sentiment"], Value::Null);
    w.assert_no_panic();
}

#[test]
fn bad_answers_keep_the_last_good_value_until_it_goes_stale() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("STALE_AFTER_SECONDS", "2")]);
    let mut c = w.client("/ws?channels=market,sentiment");
    assert_eq!(c.welcome["stale_after_seconds"], 2, "{}", c.welcome);
    catch_up_all(&mut c, &["market", "sentiment"]);
    w.fire_cron();
    let first = c.expect("market update", FRAME_WAIT, is_update("market"));
    let sentiment = c.expect("sentiment update", FRAME_WAIT, is_update("sentiment"));
    assert_eq!((&first["stale"], &sentiment["stale"]), (&json!(false), &json!(false)));

    // Wrong shapes for global (no `data`) and fng (value "abc"), while the price moves: market
    // still takes the new coins and keeps its last good totals.
    fixture.set(PRICE, 200, prices(65_000.5, 2.0));
    fixture.set(GLOBAL, 200, json!({"status": {"error_code": 0}}));
    fixture.set(FNG, 200, fng("abc"));
    w.fire_cron();
    let price_confirmed = epoch_now();
    let m = c.expect("market with the new price", FRAME_WAIT, |v| {
        is_update("market")(v) && v["data"]["coins"]["bitcoin"]["price_usd"] == 65_000.5
    });
    assert!(same(&m["data"], &market_of(&prices(65_000.5, 2.0))), "{m}");

    // Not JSON at all, and a NaN-like string for the price: no part of any value changes.
    let mut nan = prices(65_000.5, 2.0);
    nan["bitcoin"]["usd"] = json!("NaN");
    fixture.set(PRICE, 200, nan);
    fixture.set(GLOBAL, 200, json!("{\"data\": {\"total_market_cap\": "));
    // Drop frames still queued from the good ticks, so only this tick's are judged.
    c.collect(QUIET);
    fixture.set(FNG, 200, json!("<html>502 Bad Gateway</html>"));
    w.fire_cron();
    let extra = updates_within_quiet(&mut c);
    assert!(extra.is_empty(), "a failure must not broadcast: {extra:#?}");
    for (s, n) in [("coingecko_price", 1.0), ("coingecko_global", 2.0), ("fng", 2.0)] {
        assert_eq!(w.metric(&requests(s, "parse_error")), n, "{s}");
    }
    let snap = snapshot(&w);
    assert_eq!(snap["btc"]["data"]["price_usd"], 65_000.5, "{snap}");
    assert!(same(&snap["market"]["data"], &m["data"]), "{snap}");
    assert_eq!(snap["sentiment"]["data"], json!({"value": 62, "classification": "Greed"}), "{snap}");
    let h = health(&w);
    assert_eq!(h["status"], "degraded", "{h}");
    for (s, n) in [("coingecko_price", 1), ("coingecko_global", 2), ("fng", 2)] {
        // Still below BREAKER_FAILURES (3), so the breaker stays closed.
        let got = pick(&h["components"][s], &["/status", "/consecutive_failures", "/last_error/outcome", "/breaker"]);
        assert_eq!(got, json!(["failing", n, "parse_error", "closed"]), "{s}: {h}");
    }

    // Nothing confirmed since: past STALE_AFTER_SECONDS the kept values are reported stale.
    sleep_until_epoch(price_confirmed + 3.5);
    let snap = snapshot(&w);
    for ch in ["btc", "market", "sentiment"] {
        let e = &snap[ch];
        assert_eq!(e["stale"], true, "{ch}: {snap}");
        assert!(e["age_seconds"].as_u64().is_some_and(|a| a >= 2), "{ch}: {snap}");
    }
    assert_eq!(snap["sentiment"]["data"]["value"], 62, "{snap}");
    let f = health(&w)["components"]["fng"].clone();
    assert_eq!(f["stale"], true, "{f}");
    assert!(f["data_age_seconds"].as_u64().is_some_and(|a| a >= 2), "{f}");
    let mut late = w.client("/ws?channels=sentiment,market");
    for ch in ["sentiment", "market"] {
        let (ups, _) = late.catch_up(ch, FRAME_WAIT);
        let u = ups.last().unwrap_or_else(|| panic!("no {ch} in catch-up: {:#?}", late.ws.seen));
        assert_eq!(u["stale"], true, "{u}");
        assert!(same(&u["data"], &snap[ch]["data"]), "{u}");
    }
    w.assert_no_panic();
}

/// One coin's odd answer must not stop every price: with ethereum's 24 h change `null` and
/// solana dropped from simple/price, `btc`, bitcoin and ethereum keep moving, ethereum's change
/// is `null` (unknown, not 0), solana keeps its last good quote marked stale with its own time,
/// `/health` shows solana stale, and the breaker (opened here by a single failure) stays closed.
#[test]
fn one_coin_missing_or_without_a_change_leaves_the_other_prices_moving() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("BREAKER_FAILURES", "1")]);
    // No btc subscriber, so no fast poll: only the cron ticks below fetch.
    let mut c = w.client("/ws?channels=market");
    catch_up_all(&mut c, &["market"]);
    let before = epoch_now();
    w.fire_cron();
    let quoted = epoch_now();
    let first =
        c.expect("first market", FRAME_WAIT, |v| is_update("market")(v) && v["data"]["coins"]["solana"].is_object());
    let solana = first["data"]["coins"]["solana"].clone();

    // Ethereum's change goes null, solana is dropped, and the prices move.
    fixture.set_coin("ethereum", json!({"usd": 3250.75, "usd_24h_change": null}));
    fixture.set_coin("solana", Value::Null);
    for (round, btc) in [(1, 65_000.5), (2, 65_100.25)] {
        let eth = 3250.75 + f64::from(round - 1);
        fixture.set_coin("ethereum", json!({"usd": eth}));
        fixture.set_coin("bitcoin", json!({"usd": btc}));
        w.fire_cron();
        let m = c.expect(&format!("market of round {round}"), FRAME_WAIT, |v| {
            is_update("market")(v) && v["data"]["coins"]["bitcoin"]["price_usd"] == btc
        });
        let coins = &m["data"]["coins"];
        assert_eq!(coins["ethereum"]["price_usd"], eth, "ethereum moves on: {m}");
        let eth_change = coins["ethereum"].as_object().and_then(|o| o.get("change_24h_pct"));
        assert_eq!(eth_change, Some(&Value::Null), "unknown is null, never 0: {m}");
        assert_eq!(coins["ethereum"].get("stale"), None, "a price without a change is fresh: {m}");
        let sol = &coins["solana"];
        assert_eq!(sol["stale"], true, "{m}");
        let at = sol["quoted_at"].as_f64().unwrap_or_else(|| panic!("no quoted_at: {m}")) / 1000.0;
        assert!((before - 1.0..=quoted + 1.0).contains(&at), "quoted in the first tick ({before}..{quoted}): {at}");
        let mut kept = sol.clone();
        for k in ["stale", "quoted_at"] {
            kept.as_object_mut().map(|o| o.remove(k));
        }
        assert!(same(&kept, &solana), "the last good quote is kept: {sol} vs {solana}");
        let snap = snapshot(&w);
        assert_eq!(snap["btc"]["data"]["price_usd"], btc, "btc moves on: {snap}");
        assert!(same(&snap["market"]["data"], &m["data"]), "{snap}");
        assert_eq!(snap["market"]["stale"], false, "{snap}");
    }
    // Bitcoin's change null too: btc says unknown, not 0.
    fixture.set_coin("bitcoin", json!({"usd": 65_200.0, "usd_24h_change": null}));
    w.fire_cron();
    let btc = snapshot(&w)["btc"]["data"].clone();
    assert_eq!(btc, json!({"price_usd": 65_200.0, "change_24h_pct": null}), "{btc}");

    let h = health(&w);
    assert_eq!(h["status"], "degraded", "a stale coin degrades: {h}");
    let price = &h["components"]["coingecko_price"];
    let got = pick(price, &["/status", "/breaker", "/consecutive_failures", "/stale", "/last_error"]);
    assert_eq!(got, json!(["ok", "closed", 0, false, null]), "partial answers are answers: {h}");
    let coins = &price["coins"];
    assert_eq!(
        pick(coins, &["/bitcoin/stale", "/ethereum/stale", "/solana/stale"]),
        json!([false, false, true]),
        "{h}"
    );
    assert!(coins["solana"]["problem"].as_str().is_some_and(|p| p.contains("solana")), "{h}");
    assert!(coins["solana"]["age_seconds"].as_u64().is_some_and(|a| a as f64 >= epoch_now() - quoted - 1.0), "{h}");
    assert!((rfc3339_secs(&coins["solana"]["quoted_at"]) - quoted).abs() < 2.0, "{h}");
    assert!(coins["ethereum"]["age_seconds"].as_u64().is_some_and(|a| a < 5), "{h}");
    assert_eq!(w.metric(&requests("coingecko_price", "ok")), 4.0);
    assert_eq!(w.metric(&requests("coingecko_price", "parse_error")), 0.0);

    // Solana is back: fresh again, the stale mark gone.
    fixture
        .set_coin("solana", json!({"usd": 150.5, "usd_24h_change": 2.0, "usd_market_cap": 7e10, "usd_24h_vol": 2e9}));
    w.fire_cron();
    let m = c.expect("solana back", FRAME_WAIT, |v| {
        is_update("market")(v) && v["data"]["coins"]["solana"]["price_usd"] == 150.5
    });
    let want = json!({"price_usd": 150.5, "change_24h_pct": 2.0, "market_cap_usd": 7e10, "volume_24h_usd": 2e9});
    assert!(same(&m["data"]["coins"]["solana"], &want), "{m}");
    assert_eq!(pick(&health(&w), &["/status", "/components/coingecko_price/coins/solana/stale"]), json!(["ok", false]));

    // Only an answer without a usable bitcoin quote is a failure: one opens the breaker here.
    fixture.set_coin("bitcoin", Value::Null);
    w.fire_cron();
    assert_eq!(w.metric(&requests("coingecko_price", "parse_error")), 1.0);
    let price = &health(&w)["components"]["coingecko_price"];
    assert_eq!(pick(price, &["/status", "/breaker"]), json!(["failing", "open"]), "{price}");
    assert_eq!(snapshot(&w)["btc"]["data"]["price_usd"], 65_200.0);
    w.assert_no_panic();
}
