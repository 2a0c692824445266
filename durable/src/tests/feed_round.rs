//! Host tests of a refresh round's decisions.

use super::*;
use crate::guard::BreakerState;

fn cfg() -> FeedConfig {
    FeedConfig {
        coingecko_base_url: "http://cg".into(),
        alternative_me_base_url: "http://am".into(),
        coingecko_rpm: 5,
        ..FeedConfig::default()
    }
}

type State = (BTreeMap<Source, UpstreamStatus>, BTreeMap<Provider, ProviderLimit>);

fn fresh() -> State {
    (BTreeMap::new(), BTreeMap::new())
}

fn plan_at(kind: RoundKind, now: u64, st: &mut State) -> Planned {
    plan(kind, now, &cfg(), &mut st.0, &mut st.1)
}

fn fetched_at(at: u64, source: Source, result: Result<&str, FeedError>) -> Fetched {
    Fetched { source, result: result.map(str::to_owned), duration_ms: 120, at }
}

fn record_result(f: &Fetched, outcome: Outcome, st: &mut State) {
    record(f, outcome, Some("x".into()), &cfg(), &mut st.0, &mut st.1);
}

#[test]
fn urls() {
    assert!(
        url(Source::CoingeckoPrice, &cfg()).starts_with("http://cg/api/v3/simple/price?ids=bitcoin,ethereum,solana&")
    );
    assert_eq!(url(Source::Fng, &cfg()), "http://am/fng/");
    assert_eq!(
        url(Source::CoingeckoChart, &cfg()),
        "http://cg/api/v3/coins/bitcoin/market_chart?vs_currency=usd&days=2"
    );
}

#[test]
fn a_full_round_fetches_every_due_source_and_the_chart_every_5_minutes() {
    let mut st = fresh();
    assert_eq!(plan_at(RoundKind::Full, 0, &mut st).fetch, Source::ALL.to_vec());
    let p = plan_at(RoundKind::Full, 60_000, &mut st);
    assert!(!p.fetch.contains(&Source::CoingeckoChart) && p.skipped.is_empty(), "{p:?}");
    assert!(plan_at(RoundKind::Full, 300_000, &mut st).fetch.contains(&Source::CoingeckoChart));
    assert_eq!(plan_at(RoundKind::FastBtc, 300_001, &mut st).fetch, vec![Source::CoingeckoPrice]);
}

#[test]
fn the_provider_budget_is_shared_by_its_sources() {
    let mut st = fresh();
    // 5 per minute for CoinGecko: 3 in the first round, then only 2 more.
    plan_at(RoundKind::Full, 0, &mut st);
    let p = plan_at(RoundKind::Full, 1, &mut st);
    assert_eq!(p.fetch, vec![Source::CoingeckoPrice, Source::CoingeckoGlobal, Source::Fng]);
    let p = plan_at(RoundKind::Full, 2, &mut st);
    assert_eq!(p.fetch, vec![Source::Fng]);
    assert_eq!(
        p.skipped,
        vec![(Source::CoingeckoPrice, Outcome::RateLimited), (Source::CoingeckoGlobal, Outcome::RateLimited)]
    );
}

#[test]
fn a_429_with_retry_after_holds_off_the_whole_provider() {
    let mut st = fresh();
    plan_at(RoundKind::Full, 0, &mut st);
    let f = fetched_at(0, Source::CoingeckoPrice, Err(FeedError::TooManyRequests(Some(30))));
    record_result(&f, Outcome::RateLimited, &mut st);
    let p = plan_at(RoundKind::Full, 29_999, &mut st);
    assert_eq!(p.fetch, vec![Source::Fng]);
    assert!(p.skipped.iter().all(|(_, o)| *o == Outcome::RateLimited));
    assert_eq!(st.0[&Source::CoingeckoPrice].breaker.state, BreakerState::Closed, "429 is not a fault");
    assert!(plan_at(RoundKind::Full, 30_000, &mut st).fetch.contains(&Source::CoingeckoPrice));
}

#[test]
fn faults_open_the_breaker_and_an_open_breaker_spends_no_tokens() {
    let mut st = fresh();
    for t in 0..3 {
        plan_at(RoundKind::FastBtc, t, &mut st);
        record_result(&fetched_at(t, Source::CoingeckoPrice, Err(FeedError::Http(500))), Outcome::HttpError, &mut st);
    }
    assert_eq!(st.0[&Source::CoingeckoPrice].breaker.state, BreakerState::Open);
    let tokens = st.1[&Provider::Coingecko].bucket.tokens;
    let p = plan_at(RoundKind::FastBtc, 10, &mut st);
    assert_eq!(p.skipped, vec![(Source::CoingeckoPrice, Outcome::BreakerOpen)]);
    assert_eq!(st.1[&Provider::Coingecko].bucket.tokens, tokens);
    // After the cooldown: one probe, and a success closes it.
    let p = plan_at(RoundKind::FastBtc, 60_002, &mut st);
    assert_eq!(p.fetch, vec![Source::CoingeckoPrice]);
    assert_eq!(st.0[&Source::CoingeckoPrice].breaker.state, BreakerState::HalfOpen);
    assert_eq!(
        plan_at(RoundKind::FastBtc, 60_003, &mut st).skipped,
        vec![(Source::CoingeckoPrice, Outcome::BreakerOpen)]
    );
    record_result(&fetched_at(60_004, Source::CoingeckoPrice, Ok("")), Outcome::Ok, &mut st);
    assert_eq!(st.0[&Source::CoingeckoPrice].breaker.state, BreakerState::Closed);
    assert_eq!(st.0[&Source::CoingeckoPrice].durations.count, 4);
}

const PRICE: &str = r#"{"bitcoin":{"usd":64123.45,"usd_24h_change":1.5,"usd_market_cap":1.26e12,"usd_24h_vol":3.1e10},
 "ethereum":{"usd":3120.5,"usd_24h_change":-0.82,"usd_market_cap":3.75e11,"usd_24h_vol":1.4e10},
 "solana":{"usd":142.1,"usd_24h_change":3.1,"usd_market_cap":6.5e10,"usd_24h_vol":2.2e9}}"#;

#[test]
fn each_source_becomes_channel_values() {
    let v = values(Source::CoingeckoPrice, PRICE, &cfg()).unwrap();
    assert_eq!(v[0].channel.as_str(), "btc");
    assert_eq!(v[0].data, json!({"price_usd": 64123.45, "change_24h_pct": 1.5}));
    assert_eq!((v[1].channel.as_str(), v[1].merge), ("market", true));
    assert_eq!(v[1].data["coins"]["solana"]["price_usd"], 142.1);
    let g = r#"{"data":{"total_market_cap":{"usd":2.41e12},"total_volume":{"usd":8.9e10},"market_cap_percentage":{"btc":52.3}}}"#;
    let v = values(Source::CoingeckoGlobal, g, &cfg()).unwrap();
    assert_eq!(v[0].data["btc_dominance_pct"], 52.3);
    let v = values(Source::Fng, r#"{"data":[{"value":"62","value_classification":"Greed"}]}"#, &cfg()).unwrap();
    assert_eq!(
        (v[0].channel.as_str(), v[0].data.clone()),
        ("sentiment", json!({"value": 62, "classification": "Greed"}))
    );
    let prices: Vec<String> =
        (0..30).map(|i| format!("[{},{}]", 1_700_000_000_000u64 + i * 3_600_000, 100 + i % 4)).collect();
    let v = values(Source::CoingeckoChart, &format!(r#"{{"prices":[{}]}}"#, prices.join(",")), &cfg()).unwrap();
    assert_eq!(v[0].channel.as_str(), "indicators");
    assert_eq!((v[0].data["period"].clone(), v[0].data["closes"].clone()), (json!(14), json!(30)));
    let short = values(Source::CoingeckoChart, r#"{"prices":[[1,5],[3600001,6]]}"#, &cfg());
    assert!(matches!(short, Err(FeedError::Parse(m)) if m.contains("2 hourly closes")));
}

#[test]
fn market_parts_merge_over_the_latest_value() {
    let latest = json!({"coins": {"bitcoin": 1}, "total_market_cap_usd": 5.0});
    let merged = merge(Some(&latest), json!({"total_market_cap_usd": 6.0, "btc_dominance_pct": 50.0}));
    assert_eq!(merged, json!({"coins": {"bitcoin": 1}, "total_market_cap_usd": 6.0, "btc_dominance_pct": 50.0}));
    assert_eq!(merge(None, json!({"a": 1})), json!({"a": 1}));
}
