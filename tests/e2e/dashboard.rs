//! The dashboard in headless Chromium and Firefox ESR (each scenario runs in both): live values,
//! formatting, the sparkline, the connection indicator, polling when the socket is refused,
//! resuming after a restart, and stale badges.
//! The page's DOM hooks are listed at the top of static/index.html.

use crate::harness::{in_each_browser, root, Browser, Engine, Fixture, Wrangler, HOLD_SOCKETS, RELEASE_SOCKETS};
use serde_json::{json, Value};
use std::time::Duration;

/// The fixture's default values, as the page should print them.
const PRICE: &str = "$64,123.45";
const CHANGE: &str = "+1.23%";

fn el(id: &str) -> String {
    format!("document.getElementById({})", json!(id))
}

fn text_is(id: &str, want: &str) -> String {
    format!("({}.textContent === {})", el(id), json!(want))
}

fn state_is(state: &str) -> String {
    format!("(document.getElementById('status').dataset.state === {})", json!(state))
}

fn text(b: &mut Browser, id: &str) -> String {
    let v = b.eval(&format!("{}.textContent", el(id)));
    v.as_str().unwrap_or_else(|| panic!("#{id} has no text: {v}")).to_owned()
}

fn stale_badge_visible(card: &str) -> String {
    format!("(!document.querySelector('.card[data-card={}] .stale-badge').hidden)", json!(card))
}

/// Every card's value, age, stale badge and change count, for checks and failure messages.
const CARDS: &str = r#"Object.fromEntries([...document.querySelectorAll('.card[data-card]')].map(c => [c.dataset.card, {
    age: c.querySelector('.age').textContent,
    stale: !c.querySelector('.stale-badge').hidden,
    changes: Number(c.dataset.changes)
  }]))"#;

/// Points of the BTC chart from live `btc` updates (seeded from /api/history, then live); the
/// hourly closes of `indicators` are counted apart (see `dashboard_chart_starts_with_48_hours`).
const SPARK_POINTS: &str = "Number(document.getElementById('sparkline').dataset.livePoints)";

/// Where this browser's screenshot `name` goes (Chromium's keep their plain names).
fn artifact(b: &Browser, name: &str) -> std::path::PathBuf {
    root().join("tests/artifacts").join(b.engine().artifact(name))
}

/// Asserts the fixture's default values in every card, formatted for people.
fn assert_default_cards(b: &mut Browser) {
    let got: Vec<(&str, String)> =
        ["btc-price", "btc-change", "market-cap", "market-volume", "btc-dominance", "fng-value", "fng-label"]
            .into_iter()
            .map(|id| (id, text(b, id)))
            .collect();
    let want = [
        ("btc-price", PRICE),
        ("btc-change", CHANGE),
        ("market-cap", "$2.41T"),
        ("market-volume", "$89.00B"),
        ("btc-dominance", "52.3%"),
        ("fng-value", "62"),
        ("fng-label", "Greed"),
    ];
    let want: Vec<(&str, String)> = want.iter().map(|(k, v)| (*k, v.to_string())).collect();
    assert_eq!(got, want, "card texts");
    let rsi = text(b, "rsi");
    let (int, frac) = rsi.split_once('.').unwrap_or_else(|| panic!("RSI without one decimal: {rsi:?}"));
    assert!(
        !int.is_empty()
            && int.chars().all(|c| c.is_ascii_digit())
            && frac.len() == 1
            && frac.chars().all(|c| c.is_ascii_digit()),
        "RSI with one decimal: {rsi:?}"
    );
    assert_eq!(b.eval(&format!("{}.className", el("btc-change"))), "change up");
}

fn dashboard_shows_live_values_on_phone_and_desktop(engine: Engine) {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    let mut b = Browser::launch(engine);
    b.set_viewport(Browser::PHONE);
    // Nothing fetched yet: the page goes live with empty cards (and no btc history: a 404).
    b.open(&format!("{}/", w.base));
    b.wait(&state_is("live"), Duration::from_secs(10));
    assert_eq!(text(&mut b, "status"), "live");
    assert_eq!(text(&mut b, "btc-price"), "–");

    // One cron tick: every card fills in live, within 5 s.
    w.fire_cron();
    b.wait(&text_is("btc-price", PRICE), Duration::from_secs(5));
    b.wait(&format!("!{}", text_is("rsi", "–")), Duration::from_secs(5));
    b.wait(&text_is("fng-label", "Greed"), Duration::from_secs(5));
    assert_default_cards(&mut b);
    let cards = b.eval(CARDS);
    for (card, c) in cards.as_object().expect("cards") {
        let age = c["age"].as_str().unwrap_or_default();
        assert!(age.ends_with(" s ago") && c["stale"] == false, "card {card}: {c} (all: {cards})");
    }
    assert!(b.eval(SPARK_POINTS).as_u64() >= Some(1), "sparkline points: {}", b.eval(SPARK_POINTS));

    // A new price appears without a reload: the card pulses, the change turns red, the
    // sparkline grows.
    let changes = cards["btc"]["changes"].as_u64().unwrap_or(0);
    fixture.set_btc(65_432.1, -3.0);
    w.fire_cron();
    b.wait(&text_is("btc-price", "$65,432.10"), Duration::from_secs(5));
    assert_eq!(text(&mut b, "btc-change"), "-3.00%");
    assert_eq!(b.eval(&format!("{}.className", el("btc-change"))), "change down");
    let btc = b.eval(CARDS)["btc"].clone();
    assert!(btc["changes"].as_u64() > Some(changes), "btc card did not register the change: {btc}");
    assert_eq!(b.eval(SPARK_POINTS), 2);
    assert_eq!(text(&mut b, "status"), "live");

    // A few more ticks for a sparkline with a shape; then a reload seeds it from /api/history.
    for (i, p) in [65_120.0, 65_610.5, 65_980.25, 65_700.0, 66_240.8, 66_010.0, 66_455.3].iter().enumerate() {
        fixture.set_btc(*p, 0.4 + i as f64 * 0.3);
        w.fire_cron();
    }
    b.wait(&text_is("btc-price", "$66,455.30"), Duration::from_secs(5));
    assert_eq!(b.eval(SPARK_POINTS), 9);
    b.open(&format!("{}/", w.base));
    b.wait(&format!("{} && {} === 9", state_is("live"), SPARK_POINTS), Duration::from_secs(5));
    assert_eq!(text(&mut b, "btc-change"), "+2.20%");
    // Let the meters and the pulse settle before the pictures.
    std::thread::sleep(Duration::from_millis(1200));
    b.screenshot(&artifact(&b, "dashboard-phone"));
    b.set_viewport(Browser::DESKTOP);
    b.open(&format!("{}/", w.base));
    b.wait(&format!("{} && {} === 9", state_is("live"), SPARK_POINTS), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(1200));
    b.screenshot(&artifact(&b, "dashboard-desktop"));
    let errors: Vec<String> = b
        .console_settled()
        .into_iter()
        .filter(|m| m.starts_with("[pageerror]") || (m.starts_with("[error]") && !m.contains("404")))
        .collect();
    assert!(errors.is_empty(), "page errors: {errors:#?}");
    w.assert_no_panic();
}

fn dashboard_polls_the_snapshot_when_the_socket_is_refused(engine: Engine) {
    let fixture = Fixture::start();
    // The page's own origin is not allowed: /ws answers 403, HTTP works.
    let w = Wrangler::start(&fixture, &[("ALLOWED_ORIGINS", "http://example.invalid")]);
    w.fire_cron();
    let mut b = Browser::launch(engine);
    b.open(&format!("{}/?poll_ms=1000", w.base));
    b.wait(&state_is("offline-polling"), Duration::from_secs(5));
    assert_eq!(text(&mut b, "status"), "offline-polling");
    b.wait(&text_is("btc-price", PRICE), Duration::from_secs(5));
    b.wait(&text_is("fng-label", "Greed"), Duration::from_secs(5));
    assert_default_cards(&mut b);

    fixture.set_btc(65_432.1, -3.0);
    w.fire_cron();
    b.wait(&text_is("btc-price", "$65,432.10"), Duration::from_secs(5));
    assert_eq!(text(&mut b, "btc-change"), "-3.00%");
    assert_eq!(text(&mut b, "status"), "offline-polling");
    assert_eq!(b.eval(SPARK_POINTS), 2, "polled prices extend the sparkline");
    // It keeps trying the socket (with backoff) rather than giving up.
    let connects = b.eval("window.tickwire.debug.connects");
    assert!(connects.as_u64() >= Some(2), "socket attempts: {connects}");
    assert!(w.log().contains("refused origin"), "the worker should log the refused origin");
    w.assert_no_panic();
}

fn dashboard_reconnects_and_resumes_after_a_restart(engine: Engine) {
    let fixture = Fixture::start();
    let mut w = Wrangler::start(&fixture, &[]);
    w.fire_cron();
    let mut b = Browser::launch(engine);
    // No snapshot poll while the page is down (the first is 10 min away): the missed price
    // must come through the socket's resume, not through polling.
    b.open(&format!("{}/?poll_ms=600000", w.base));
    b.wait(&format!("{} && {}", state_is("live"), text_is("btc-price", PRICE)), Duration::from_secs(10));
    let before = b.eval("window.tickwire.debug.positions.btc");
    let epoch = before["epoch"].as_str().unwrap_or_else(|| panic!("btc position without epoch: {before}")).to_owned();
    assert_eq!(before["seq"], 1, "{before}");

    b.eval(HOLD_SOCKETS);
    w.stop();
    b.wait(&format!("!{}", state_is("live")), Duration::from_secs(5));
    let state = text(&mut b, "status");
    assert!(["reconnecting", "offline-polling"].contains(&state.as_str()), "status while down: {state}");
    b.wait(&state_is("offline-polling"), Duration::from_secs(5));

    // A new price is published while the page is disconnected; it must arrive by resume.
    w.start_again();
    fixture.set_btc(66_000.0, 2.5);
    w.fire_cron();
    b.eval(RELEASE_SOCKETS);
    b.wait(&format!("{} && {}", state_is("live"), text_is("btc-price", "$66,000.00")), Duration::from_secs(40));
    let url = b.eval("window.tickwire.debug.lastUrl");
    let want = format!("since=btc%3A1%40{epoch}");
    assert!(url.as_str().is_some_and(|u| u.contains(&want)), "reconnect URL {url} lacks {want}");
    // The catch-up replayed seq 2 and called it a full recovery.
    let sub = b.eval("window.tickwire.debug.subscribed.btc");
    assert_eq!(
        (sub["recovered"].clone(), sub["seq"].clone(), sub["epoch"].clone()),
        (json!(true), json!(2), json!(epoch)),
        "{sub}"
    );
    assert_eq!(b.eval(SPARK_POINTS), 2);
    assert_eq!(b.eval(&format!("{}.className", el("btc-change"))), "change up");
    w.assert_no_panic();
}

fn dashboard_marks_a_stale_value(engine: Engine) {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("STALE_AFTER_SECONDS", "2")]);
    let mut b = Browser::launch(engine);
    let page = format!("{}/", w.base);
    b.open(&page);
    b.wait(&state_is("live"), Duration::from_secs(10));
    // A live update is fresh.
    w.fire_cron();
    b.wait(&text_is("btc-price", PRICE), Duration::from_secs(5));
    assert_eq!(b.eval(&stale_badge_visible("btc")), false, "{}", b.eval(CARDS));

    // The price source fails; the last good price ages past STALE_AFTER_SECONDS.
    fixture.set("/api/v3/simple/price", 500, json!({}));
    w.fire_cron();
    std::thread::sleep(Duration::from_secs(3));
    b.open(&page);
    b.wait(&format!("{} && {}", state_is("live"), stale_badge_visible("btc")), Duration::from_secs(5));
    assert_eq!(text(&mut b, "btc-price"), PRICE, "the last good value stays");
    let cards: Value = b.eval(CARDS);
    assert!(cards["btc"]["age"].as_str().is_some_and(|a| a.ends_with(" s ago")), "{cards}");

    // The source recovers: the next update is fresh and clears the badge, live.
    fixture.set_btc(64_500.0, 0.5);
    w.fire_cron();
    b.wait(
        &format!("{} && !{}", text_is("btc-price", "$64,500.00"), stale_badge_visible("btc")),
        Duration::from_secs(5),
    );
    w.assert_no_panic();
}

/// Every coin row of the table: [id, name, price, change, cap, volume, change class], in order.
const COIN_ROWS: &str = r#"[...document.querySelectorAll('#coins .coin')].map(r => [r.dataset.coin,
    r.querySelector('.coin-name b').textContent, ...['price', 'change', 'cap', 'volume'].map(k => r.querySelector('.coin-' + k).textContent),
    r.querySelector('.coin-change').className])"#;

fn coin_rows(b: &mut Browser) -> Vec<Vec<String>> {
    let v = b.eval(COIN_ROWS);
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("coin rows {v}: {e}"))
}

fn row(cells: [&str; 7]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// The coin table shows every coin of `market.coins` (the fixture's bitcoin, ethereum and
/// solana under the default `COINS`) with price, 24 h change, market cap and volume, largest
/// first, and follows a live change of one coin without a reload.
fn dashboard_shows_every_tracked_coin(engine: Engine) {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    w.fire_cron();
    let mut b = Browser::launch(engine);
    b.open(&format!("{}/", w.base));
    b.wait(
        &format!("{} && document.querySelectorAll('#coins .coin').length === 3", state_is("live")),
        Duration::from_secs(10),
    );
    assert_eq!(
        coin_rows(&mut b),
        vec![
            row(["bitcoin", "Bitcoin", PRICE, CHANGE, "$1.26T", "$31.00B", "coin-change up"]),
            row(["ethereum", "Ethereum", "$3,120.50", "-0.82%", "$375.00B", "$14.00B", "coin-change down"]),
            row(["solana", "Solana", "$142.10", "+3.10%", "$65.00B", "$2.20B", "coin-change up"]),
        ]
    );
    let card = b.eval(CARDS)["coins"].clone();
    assert!(card["age"].as_str().is_some_and(|a| a.ends_with(" s ago")) && card["stale"] == false, "{card}");

    // Ethereum moves: its row changes live; the others stay.
    let mut body = fixture_prices();
    body["ethereum"] =
        json!({ "usd": 3250.75, "usd_24h_change": 2.5, "usd_market_cap": 3.9e11, "usd_24h_vol": 1.5e10 });
    fixture.set("/api/v3/simple/price", 200, body);
    w.fire_cron();
    b.wait(
        "document.querySelector('#coins .coin[data-coin=ethereum] .coin-price').textContent === '$3,250.75'",
        Duration::from_secs(5),
    );
    let rows = coin_rows(&mut b);
    assert_eq!(rows[1], row(["ethereum", "Ethereum", "$3,250.75", "+2.50%", "$390.00B", "$15.00B", "coin-change up"]));
    assert_eq!(rows[0][2], PRICE, "{rows:?}");
    assert_eq!(rows[2][2], "$142.10", "{rows:?}");

    // Changes go null and solana drops out of the answer: an unknown change shows "–" (not
    // "+0.00%"), and solana keeps its last price with its own stale badge.
    fixture.set_coin("bitcoin", json!({"usd_24h_change": null}));
    fixture.set_coin("ethereum", json!({"usd_24h_change": null}));
    fixture.set_coin("solana", Value::Null);
    w.fire_cron();
    let solana = "document.querySelector('#coins .coin[data-coin=solana]')";
    let stale_then = format!("{solana}.classList.contains('is-stale') && {}", text_is("btc-change", "–"));
    b.wait(&stale_then, Duration::from_secs(5));
    let rows = coin_rows(&mut b);
    assert_eq!(rows[1], row(["ethereum", "Ethereum", "$3,250.75", "–", "$390.00B", "$15.00B", "coin-change"]));
    assert_eq!(rows[2][2], "$142.10", "the last good price stays: {rows:?}");
    let badge = b.eval(&format!(
        "[{solana}.querySelector('.coin-stale').hidden, {solana}.querySelector('.coin-stale').textContent]"
    ));
    let text = badge[1].as_str().unwrap_or_default();
    assert!(badge[0] == false && text.starts_with("stale · ") && text.ends_with(" s ago"), "{badge}");
    let fresh_badges = "[...document.querySelectorAll('#coins .coin:not(.is-stale) .coin-stale')].every(b => b.hidden)";
    assert_eq!(b.eval(fresh_badges), json!(true));
    assert_eq!(b.eval(&format!("{}.className", el("btc-change"))), json!("change"), "neither up nor down");

    b.set_viewport(Browser::PHONE);
    b.open(&format!("{}/", w.base));
    b.wait("document.querySelectorAll('#coins .coin').length === 3", Duration::from_secs(10));
    let overflow = b.eval("document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(overflow, true, "the page scrolls sideways on a phone");
    std::thread::sleep(Duration::from_millis(1200));
    b.screenshot(&artifact(&b, "dashboard-coins-phone"));
    w.assert_no_panic();
}

/// The fixture's default `simple/price` answer.
fn fixture_prices() -> Value {
    json!({
        "bitcoin": { "usd": 64123.45, "usd_24h_change": 1.2345, "usd_market_cap": 1.26e12, "usd_24h_vol": 3.1e10 },
        "ethereum": { "usd": 3120.5, "usd_24h_change": -0.82, "usd_market_cap": 3.75e11, "usd_24h_vol": 1.4e10 },
        "solana": { "usd": 142.1, "usd_24h_change": 3.1, "usd_market_cap": 6.5e10, "usd_24h_vol": 2.2e9 },
    })
}

const HOURLY_POINTS: &str = "Number(document.getElementById('sparkline').dataset.hourlyPoints)";
const ALL_POINTS: &str = "Number(document.getElementById('sparkline').dataset.points)";

/// Right after a fresh start (one refresh round), the BTC chart's first paint already holds the
/// last 48 hourly closes from `indicators.hourly_closes`, and live updates extend it.
fn dashboard_chart_starts_with_48_hours(engine: Engine) {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    w.fire_cron();
    let mut b = Browser::launch(engine);
    b.open(&format!("{}/", w.base));
    b.wait(&format!("{} && {HOURLY_POINTS} === 48", state_is("live")), Duration::from_secs(10));
    let closes = b.eval("window.tickwire.client.values.indicators.hourly_closes");
    let closes = closes.as_array().unwrap_or_else(|| panic!("hourly_closes: {closes}"));
    assert_eq!(closes.len(), 48);
    assert!(closes.windows(2).all(|p| p[0][0].as_f64() < p[1][0].as_f64()), "oldest first: {closes:?}");
    assert_eq!((b.eval(ALL_POINTS), b.eval(SPARK_POINTS)), (json!(49), json!(1)), "48 hourly + the live price");
    let caption = text(&mut b, "spark-caption");
    assert!(caption.starts_with("48 h hourly · 1 update"), "{caption}");

    fixture.set_btc(65_432.1, -3.0);
    w.fire_cron();
    b.wait(&format!("{ALL_POINTS} === 50 && {SPARK_POINTS} === 2"), Duration::from_secs(5));
    b.screenshot(&artifact(&b, "dashboard-chart-48h"));
    w.assert_no_panic();
}

in_each_browser!(
    dashboard_shows_live_values_on_phone_and_desktop,
    dashboard_polls_the_snapshot_when_the_socket_is_refused,
    dashboard_reconnects_and_resumes_after_a_restart,
    dashboard_marks_a_stale_value,
    dashboard_shows_every_tracked_coin,
    dashboard_chart_starts_with_48_hours,
);
