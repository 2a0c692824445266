//! The feed protections with the issue's own numbers, not scaled down: a `Retry-After: 30`
//! keeps CoinGecko unasked for 30 s, and a 6 s answer meets the default 5 s timeout.
//! (feeds.rs checks the same mechanisms with short times.)

use crate::feeds::{at, health, requests, CHART, FNG, GLOBAL, PRICE};
use crate::harness::{epoch_now, rfc3339_secs, sleep_until_epoch, Fixture, Wrangler};
use serde_json::json;

#[test]
fn retry_after_30_holds_coingecko_off_and_a_6_s_answer_times_out_at_5_s() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    fixture.set_route(json!({"path": PRICE, "status": 429, "headers": {"Retry-After": "30"}, "body": {}}));
    // Alternative.me answers after 6 s; UPSTREAM_TIMEOUT_MS keeps its default of 5000.
    fixture.set_route(json!({"path": FNG, "status": 200, "delay_ms": 6000,
        "body": {"data": [{"value": "40", "value_classification": "Fear"}]}}));
    let started = epoch_now();
    w.fire_cron();
    let took = epoch_now() - started;
    assert!((4.5..6.0).contains(&took), "the round waited {took:.1} s: it should give up on fng at 5 s");
    assert_eq!(w.metric(&requests("fng", "timeout")), 1.0);
    let answered = at(&fixture.requests_to(PRICE)[0], "end");
    let until = rfc3339_secs(&health(&w)["components"]["coingecko_price"]["rate_limited_until"]);
    assert!((answered + 29.0..=answered + 31.0).contains(&until), "until {until}, 429 at {answered}");

    // Ticks through the 30 s: no CoinGecko request at all (fng is another provider).
    fixture.set(FNG, 200, json!({"data": [{"value": "40", "value_classification": "Fear"}]}));
    for offset in [8.0, 18.0, 28.0] {
        sleep_until_epoch(answered + offset);
        w.fire_cron();
    }
    let coingecko = [PRICE, GLOBAL, CHART].iter().map(|p| fixture.requests_to(p).len()).sum::<usize>();
    assert_eq!(coingecko, 3, "only the first tick's price (429), global and chart requests: {:#?}", fixture.requests());
    assert!(epoch_now() < answered + 30.0, "the quiet ticks ran past the window; machine too slow?");
    assert_eq!(w.metric(&requests("coingecko_price", "rate_limited")), 4.0, "the 429 and three skips");

    // After the 30 s, CoinGecko is asked again (reset also clears the request log).
    fixture.reset();
    sleep_until_epoch(answered + 30.5);
    w.fire_cron();
    assert_eq!(fixture.requests_to(PRICE).len(), 1, "{:#?}", fixture.requests());
    assert_eq!(health(&w)["components"]["coingecko_price"]["status"], "ok");
    w.assert_no_panic();
}
