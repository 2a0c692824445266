//! One refresh round of the upstream feeds, as pure decisions: which sources to fetch now
//! (due, breaker, rate limit), what each answer becomes (channel values), and what each result
//! does to the source's protection. The hub runs the fetches in between.

use crate::feeds::alternative_me::{self, FNG_PATH};
use crate::feeds::coingecko::{self, PriceAnswer, CHART_PATH, GLOBAL_PATH};
use crate::feeds::guard::ProviderLimit;
use crate::feeds::rsi;
use crate::feeds::settings::FeedSettings;
use crate::feeds::status::{Outcome, Provider, Source, UpstreamStatus};
use crate::feeds::{printable, FeedError};
use crate::wire::protocol::Channel;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What triggered the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundKind {
    /// A cron tick: every source that is due.
    Full,
    /// The fast alarm, while anyone watches `btc`: the prices (`btc` and the coins of
    /// `market`) every `FAST_POLL_SECONDS`, and the market totals and sentiment when
    /// `MARKET_REFRESH_SECONDS` have passed since they were last asked for.
    Fast,
}

/// The sources to fetch, and those skipped with the outcome that counts them.
#[derive(Debug, Default, PartialEq)]
pub struct Planned {
    pub fetch: Vec<Source>,
    pub skipped: Vec<(Source, Outcome)>,
}

/// A value for a channel from one source. With `merge`, its top-level fields are laid over the
/// channel's latest value (`market` is built from two sources, each owning some fields).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelValue {
    pub channel: Channel,
    pub data: Value,
    pub merge: bool,
}

/// The answer to one request: the body or why there is none, and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub source: Source,
    pub result: Result<String, FeedError>,
    pub duration_ms: u64,
    /// When the answer (or the failure) came, ms. Outcomes and a 429's `Retry-After` count
    /// from here, not from the end of the round, which waits for the slowest source.
    pub at: u64,
}

pub fn url(source: Source, cfg: &FeedSettings) -> String {
    match source {
        Source::CoingeckoPrice => {
            format!("{}{}", cfg.coingecko_base_url, coingecko::simple_price_path(&cfg.coins.join(",")))
        }
        Source::CoingeckoGlobal => format!("{}{GLOBAL_PATH}", cfg.coingecko_base_url),
        Source::CoingeckoChart => format!("{}{CHART_PATH}", cfg.coingecko_base_url),
        Source::Fng => format!("{}{FNG_PATH}", cfg.alternative_me_base_url),
    }
}

fn rpm(provider: Provider, cfg: &FeedSettings) -> u32 {
    match provider {
        Provider::Coingecko => cfg.coingecko_rpm,
        Provider::AlternativeMe => cfg.alternative_me_rpm,
    }
}

/// Decides the round: a source is skipped when it is not due (RSI history is fetched at most
/// every `RSI_REFRESH_SECONDS`), its breaker is open (`breaker_open`), or its provider's limit
/// says wait (`rate_limited`). Admission takes a token and may move a breaker to half-open.
pub fn plan(
    kind: RoundKind,
    now: u64,
    cfg: &FeedSettings,
    upstreams: &mut BTreeMap<Source, UpstreamStatus>,
    providers: &mut BTreeMap<Provider, ProviderLimit>,
) -> Planned {
    let sources: &[Source] = match kind {
        RoundKind::Full => &Source::ALL,
        RoundKind::Fast => &[Source::CoingeckoPrice, Source::CoingeckoGlobal, Source::Fng],
    };
    let market_refresh_ms = cfg.market_refresh_seconds * 1000;
    let breaker = cfg.breaker();
    let mut planned = Planned::default();
    for &source in sources {
        let status = upstreams.entry(source).or_default();
        let refresh_ms = cfg.rsi_refresh_seconds * 1000;
        if source == Source::CoingeckoChart && status.last_attempt.is_some_and(|t| now.saturating_sub(t) < refresh_ms) {
            continue;
        }
        let slow = matches!(source, Source::CoingeckoGlobal | Source::Fng);
        if kind == RoundKind::Fast
            && slow
            && status.last_attempt.is_some_and(|t| now.saturating_sub(t) < market_refresh_ms)
        {
            continue;
        }
        // Checked without side effects first, so an open breaker does not spend a token.
        let breaker_closed_for_now = {
            let mut probe = status.breaker.clone();
            probe.permit(now, &breaker)
        };
        if !breaker_closed_for_now {
            planned.skipped.push((source, Outcome::BreakerOpen));
            continue;
        }
        let provider = source.provider();
        if !providers.entry(provider).or_default().admit(now, rpm(provider, cfg)) {
            planned.skipped.push((source, Outcome::RateLimited));
            continue;
        }
        status.breaker.permit(now, &breaker);
        status.last_attempt = Some(now);
        planned.fetch.push(source);
    }
    planned
}

/// What a successful body means for the channels: values ready to publish, or a price answer,
/// whose `market` coins build on what `market` holds ([`price_values`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Values(Vec<ChannelValue>),
    Prices(PriceAnswer),
}

fn value(channel: &str, data: Value, merge: bool) -> ChannelValue {
    ChannelValue { channel: Channel::parse(channel).unwrap_or_else(|_| Channel::btc()), data, merge }
}

fn to_json(v: Result<Value, serde_json::Error>) -> Result<Value, FeedError> {
    v.map_err(|e| FeedError::Parse(e.to_string()))
}

/// Parses a successful body. Only an error here counts against the source (and its breaker):
/// a price answer with a usable bitcoin quote is a success however many other coins it lacks.
pub fn parse(source: Source, body: &str, cfg: &FeedSettings) -> Result<Answer, FeedError> {
    Ok(Answer::Values(match source {
        Source::CoingeckoPrice => return coingecko::parse_simple_price(body, &cfg.coins).map(Answer::Prices),
        Source::CoingeckoGlobal => {
            let totals = coingecko::parse_global(body)?;
            vec![value("market", to_json(serde_json::to_value(totals))?, true)]
        }
        Source::Fng => {
            vec![value("sentiment", to_json(serde_json::to_value(alternative_me::parse_fng(body)?))?, false)]
        }
        Source::CoingeckoChart => {
            let prices = coingecko::parse_chart(body)?;
            let ind = rsi::indicators(&prices).ok_or_else(|| {
                FeedError::Parse(format!(
                    "{} hourly closes; RSI-14 needs {}",
                    rsi::hourly_closes(&prices).len(),
                    rsi::PERIOD + 1
                ))
            })?;
            vec![value("indicators", to_json(serde_json::to_value(ind))?, false)]
        }
    }))
}

/// A price answer that came at `at`, as channel values: `btc` from bitcoin's quote, and the
/// coins of `market`, where each tracked coin the answer lacks keeps its last good quote from
/// `held` (`market`'s latest value and when it was observed), marked stale since it was last
/// quoted. Records each coin's state in `status` (the price source's), for `/health`.
pub fn price_values(
    answer: &PriceAnswer,
    held: Option<(&Value, u64)>,
    at: u64,
    cfg: &FeedSettings,
    status: &mut UpstreamStatus,
) -> Result<Vec<ChannelValue>, FeedError> {
    let btc = coingecko::btc_tick(answer).ok_or_else(|| FeedError::Parse("no usable bitcoin quote".into()))?;
    let held_coins = held.and_then(|(v, _)| v.get("coins"));
    // A coin fresh in `held` was quoted by the last price answer taken. The bookkeeping says
    // when; only a record from before it kept coins (once, after an upgrade) does not, and
    // then the time `market` last changed stands in.
    let quoted_at = |id: &str| status.coins.get(id).and_then(|c| c.quoted_at).or(held.map(|(_, ts)| ts));
    let coins = coingecko::merge_quotes(answer, held_coins, &cfg.coins, quoted_at);
    status.record_coins(at, &cfg.coins, &answer.unusable);
    Ok(vec![
        value("btc", to_json(serde_json::to_value(btc))?, false),
        value("market", json!({ "coins": to_json(serde_json::to_value(coins))? }), true),
    ])
}

/// Lays `part`'s top-level fields over `latest` (an object), keeping the fields it does not own.
pub fn merge(latest: Option<&Value>, part: Value) -> Value {
    match (latest, part) {
        (Some(Value::Object(old)), Value::Object(new)) => {
            let mut merged = old.clone();
            merged.extend(new);
            Value::Object(merged)
        }
        (_, part) => part,
    }
}

/// Records a result in the source's bookkeeping and protection, with the failure detail when
/// there is one (trimmed, and kept to printable text: it can quote the upstream, and `/health`
/// shows it).
pub fn record(
    fetched: &Fetched,
    outcome: Outcome,
    detail: Option<String>,
    cfg: &FeedSettings,
    upstreams: &mut BTreeMap<Source, UpstreamStatus>,
    providers: &mut BTreeMap<Provider, ProviderLimit>,
) {
    let status = upstreams.entry(fetched.source).or_default();
    status.durations.observe(fetched.duration_ms);
    let detail = detail.map(|d| {
        let mut d = printable(&d);
        if let Some((i, _)) = d.char_indices().nth(200) {
            d.truncate(i);
        }
        d
    });
    let at = fetched.at;
    status.record(at, outcome, detail.as_deref());
    if outcome == Outcome::Ok || outcome.is_fault() {
        status.breaker.record(at, outcome == Outcome::Ok, &cfg.breaker());
    }
    if let Err(FeedError::TooManyRequests(after)) = &fetched.result {
        providers.entry(fetched.source.provider()).or_default().too_many_requests(at, *after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::guard::BreakerState;

    fn cfg() -> FeedSettings {
        FeedSettings {
            coingecko_base_url: "http://cg".into(),
            alternative_me_base_url: "http://am".into(),
            coingecko_rpm: 5,
            ..FeedSettings::default()
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
        assert!(url(Source::CoingeckoPrice, &cfg())
            .starts_with("http://cg/api/v3/simple/price?ids=bitcoin,ethereum,solana&"));
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
        assert_eq!(plan_at(RoundKind::Fast, 300_001, &mut st).fetch, vec![Source::CoingeckoPrice]);
    }

    #[test]
    fn the_fast_round_adds_totals_and_sentiment_every_market_refresh() {
        let mut st = fresh();
        let fast = |t, st: &mut _| plan_at(RoundKind::Fast, t, st).fetch;
        let all_but_chart = vec![Source::CoingeckoPrice, Source::CoingeckoGlobal, Source::Fng];
        assert_eq!(fast(0, &mut st), all_but_chart, "never asked: due");
        assert_eq!(fast(10_000, &mut st), [Source::CoingeckoPrice]);
        assert_eq!(fast(29_999, &mut st), [Source::CoingeckoPrice]);
        assert_eq!(fast(30_000, &mut st), all_but_chart, "MARKET_REFRESH_SECONDS (30) later");
        plan_at(RoundKind::Full, 40_000, &mut st);
        assert_eq!(fast(50_000, &mut st), [Source::CoingeckoPrice], "a cron round counts as a refresh");
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
            plan_at(RoundKind::Fast, t, &mut st);
            record_result(
                &fetched_at(t, Source::CoingeckoPrice, Err(FeedError::Http(500))),
                Outcome::HttpError,
                &mut st,
            );
        }
        assert_eq!(st.0[&Source::CoingeckoPrice].breaker.state, BreakerState::Open);
        let tokens = st.1[&Provider::Coingecko].bucket.tokens;
        let p = plan_at(RoundKind::Fast, 10, &mut st);
        assert_eq!(p.skipped, vec![(Source::CoingeckoPrice, Outcome::BreakerOpen)]);
        assert_eq!(st.1[&Provider::Coingecko].bucket.tokens, tokens);
        // After the cooldown: one probe, and a success closes it.
        let p = plan_at(RoundKind::Fast, 60_002, &mut st);
        assert_eq!(p.fetch[0], Source::CoingeckoPrice, "{p:?}");
        assert_eq!(st.0[&Source::CoingeckoPrice].breaker.state, BreakerState::HalfOpen);
        assert_eq!(
            plan_at(RoundKind::Fast, 60_003, &mut st).skipped,
            vec![(Source::CoingeckoPrice, Outcome::BreakerOpen)]
        );
        record_result(&fetched_at(60_004, Source::CoingeckoPrice, Ok("")), Outcome::Ok, &mut st);
        assert_eq!(st.0[&Source::CoingeckoPrice].breaker.state, BreakerState::Closed);
        assert_eq!(st.0[&Source::CoingeckoPrice].durations.count, 4);
    }

    const PRICE: &str = r#"{"bitcoin":{"usd":64123.45,"usd_24h_change":1.5,"usd_market_cap":1.26e12,"usd_24h_vol":3.1e10},
     "ethereum":{"usd":3120.5,"usd_24h_change":-0.82,"usd_market_cap":3.75e11,"usd_24h_vol":1.4e10},
     "solana":{"usd":142.1,"usd_24h_change":3.1,"usd_market_cap":6.5e10,"usd_24h_vol":2.2e9}}"#;

    /// The values of one answer, with nothing held before it.
    fn values(source: Source, body: &str, cfg: &FeedSettings) -> Result<Vec<ChannelValue>, FeedError> {
        match parse(source, body, cfg)? {
            Answer::Values(v) => Ok(v),
            Answer::Prices(a) => price_values(&a, None, 0, cfg, &mut UpstreamStatus::default()),
        }
    }

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
    fn a_price_answer_degrades_per_coin() {
        let mut status = UpstreamStatus::default();
        let Answer::Prices(first) = parse(Source::CoingeckoPrice, PRICE, &cfg()).unwrap() else { panic!() };
        let v = price_values(&first, None, 1_000, &cfg(), &mut status).unwrap();
        let held = merge(None, v[1].data.clone());
        // Ethereum's change is null, solana is gone: btc and ethereum's price move on.
        let body = r#"{"bitcoin":{"usd":65000,"usd_24h_change":null,"usd_market_cap":1.3e12,"usd_24h_vol":3e10},
            "ethereum":{"usd":3200,"usd_24h_change":null,"usd_market_cap":3.8e11,"usd_24h_vol":1.5e10}}"#;
        let Answer::Prices(second) = parse(Source::CoingeckoPrice, body, &cfg()).unwrap() else { panic!() };
        let v = price_values(&second, Some((&held, 900)), 11_000, &cfg(), &mut status).unwrap();
        assert_eq!(v[0].data, json!({"price_usd": 65000.0, "change_24h_pct": null}), "unknown, not 0");
        let coins = &v[1].data["coins"];
        assert_eq!(
            coins["ethereum"],
            json!({"price_usd": 3200.0, "change_24h_pct": null, "market_cap_usd": 3.8e11, "volume_24h_usd": 1.5e10}),
            "a null change leaves the price fresh"
        );
        assert_eq!(
            coins["solana"],
            json!({"price_usd": 142.1, "change_24h_pct": 3.1, "market_cap_usd": 6.5e10, "volume_24h_usd": 2.2e9,
                "stale": true, "quoted_at": 1_000}),
            "the last good quote, stale since the answer that had it"
        );
        assert_eq!(status.coins["solana"].quoted_at, Some(1_000));
        assert!(status.coins["solana"].problem.as_deref().is_some_and(|p| p.contains("no \"solana\" object")));
        assert_eq!(
            (status.coins["ethereum"].quoted_at, status.coins["ethereum"].problem.clone()),
            (Some(11_000), None)
        );
        // The same partial answer again changes nothing: the stale quote keeps its time.
        let held = merge(Some(&held), v[1].data.clone());
        let again = price_values(&second, Some((&held, 11_000)), 21_000, &cfg(), &mut status).unwrap();
        assert_eq!(merge(Some(&held), again[1].data.clone()), held);
        // No bitcoin: not an answer at all (the breaker counts it).
        let no_btc = r#"{"ethereum":{"usd":3200},"solana":{"usd":140}}"#;
        assert!(
            matches!(parse(Source::CoingeckoPrice, no_btc, &cfg()), Err(FeedError::Parse(m)) if m.contains("bitcoin"))
        );
    }

    #[test]
    fn a_failure_detail_is_printable_and_trimmed() {
        let mut st = fresh();
        let f = fetched_at(0, Source::Fng, Err(FeedError::Parse("x".into())));
        let detail = format!("value \u{1b}]0;pwned\u{7}{}", "y".repeat(300));
        record(&f, Outcome::ParseError, Some(detail), &cfg(), &mut st.0, &mut st.1);
        let shown = st.0[&Source::Fng].last_error.clone().unwrap().detail;
        assert_eq!(shown.chars().count(), 200);
        assert!(shown.starts_with("value \u{FFFD}]0;pwned\u{FFFD}y"), "{shown:?}");
    }

    #[test]
    fn market_parts_merge_over_the_latest_value() {
        let latest = json!({"coins": {"bitcoin": 1}, "total_market_cap_usd": 5.0});
        let merged = merge(Some(&latest), json!({"total_market_cap_usd": 6.0, "btc_dominance_pct": 50.0}));
        assert_eq!(merged, json!({"coins": {"bitcoin": 1}, "total_market_cap_usd": 6.0, "btc_dominance_pct": 50.0}));
        assert_eq!(merge(None, json!({"a": 1})), json!({"a": 1}));
    }
}
