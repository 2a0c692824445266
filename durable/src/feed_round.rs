//! One refresh round of the upstream feeds, as pure decisions: which sources to fetch now
//! (due, breaker, rate limit), what each answer becomes (channel values), and what each result
//! does to the source's protection. The hub runs the fetches in between.

use crate::feeds::alternative_me::{self, FNG_PATH};
use crate::feeds::coingecko::{self, CHART_PATH, GLOBAL_PATH};
use crate::feeds::FeedError;
use crate::guard::ProviderLimit;
use crate::protocol::Channel;
use crate::rsi;
use crate::settings::FeedConfig;
use crate::upstream_status::{Outcome, Provider, Source, UpstreamStatus};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What triggered the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundKind {
    /// A cron tick: every source that is due.
    Full,
    /// The fast BTC alarm: the price only.
    FastBtc,
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

pub fn url(source: Source, cfg: &FeedConfig) -> String {
    match source {
        Source::CoingeckoPrice => {
            format!("{}{}", cfg.coingecko_base_url, coingecko::simple_price_path(&cfg.coins.join(",")))
        }
        Source::CoingeckoGlobal => format!("{}{GLOBAL_PATH}", cfg.coingecko_base_url),
        Source::CoingeckoChart => format!("{}{CHART_PATH}", cfg.coingecko_base_url),
        Source::Fng => format!("{}{FNG_PATH}", cfg.alternative_me_base_url),
    }
}

fn rpm(provider: Provider, cfg: &FeedConfig) -> u32 {
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
    cfg: &FeedConfig,
    upstreams: &mut BTreeMap<Source, UpstreamStatus>,
    providers: &mut BTreeMap<Provider, ProviderLimit>,
) -> Planned {
    let sources: &[Source] = match kind {
        RoundKind::Full => &Source::ALL,
        RoundKind::FastBtc => &[Source::CoingeckoPrice],
    };
    let breaker = cfg.breaker();
    let mut planned = Planned::default();
    for &source in sources {
        let status = upstreams.entry(source).or_default();
        let refresh_ms = cfg.rsi_refresh_seconds * 1000;
        if source == Source::CoingeckoChart && status.last_attempt.is_some_and(|t| now.saturating_sub(t) < refresh_ms) {
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

/// What a successful body means for the channels.
pub fn values(source: Source, body: &str, cfg: &FeedConfig) -> Result<Vec<ChannelValue>, FeedError> {
    let to_json = |v: Result<Value, serde_json::Error>| v.map_err(|e| FeedError::Parse(e.to_string()));
    let value = |channel: &str, data: Value, merge: bool| ChannelValue {
        channel: Channel::parse(channel).unwrap_or_else(|_| Channel::btc()),
        data,
        merge,
    };
    Ok(match source {
        Source::CoingeckoPrice => {
            let quotes = coingecko::parse_simple_price(body, &cfg.coins)?;
            let btc = coingecko::btc_tick(&quotes).ok_or_else(|| FeedError::Parse("no bitcoin quote".into()))?;
            vec![
                value("btc", to_json(serde_json::to_value(btc))?, false),
                value("market", json!({ "coins": to_json(serde_json::to_value(quotes))? }), true),
            ]
        }
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
    })
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

/// Records a result in the source's bookkeeping and protection; returns the failure detail
/// (trimmed for `/health`) when there is one.
pub fn record(
    fetched: &Fetched,
    outcome: Outcome,
    detail: Option<String>,
    cfg: &FeedConfig,
    upstreams: &mut BTreeMap<Source, UpstreamStatus>,
    providers: &mut BTreeMap<Provider, ProviderLimit>,
) {
    let status = upstreams.entry(fetched.source).or_default();
    status.durations.observe(fetched.duration_ms);
    let detail = detail.map(|mut d| {
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
#[path = "tests/feed_round.rs"]
mod tests;
