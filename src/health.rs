//! `/health`: one status per component (KV, hub, each upstream) and an overall verdict.
//!
//! `ok` and `degraded` answer 200 (the service is usable: data may be old but is served);
//! `down` answers 503 (KV or the hub cannot be reached, so nothing can be served live). The
//! price source also reports each tracked coin: one the latest answers lacked is stale on its
//! own, and that degrades the service too.

use crate::snapshot::rfc3339;
use serde::Serialize;
use std::collections::BTreeMap;
use tickwire_hub::api::HubStats;
use tickwire_hub::auth::Keys;
use tickwire_hub::feeds::guard::BreakerState;
use tickwire_hub::feeds::settings::FeedSettings;
use tickwire_hub::feeds::status::{LastError, Source, UpstreamStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Degraded,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeComponent {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// The last request succeeded.
    Ok,
    /// The last request failed; the last good value is still served.
    Failing,
    /// Never polled yet (no cron tick since the hub's storage was created).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamComponent {
    pub status: UpstreamState,
    pub breaker: BreakerState,
    /// While the breaker is open: when the next probe may go.
    pub breaker_open_until: Option<String>,
    /// After a 429: no request to this source's provider before this time.
    pub rate_limited_until: Option<String>,
    pub last_success: Option<String>,
    pub last_error: Option<LastError>,
    pub consecutive_failures: u32,
    /// Seconds since the upstream last answered well.
    pub data_age_seconds: Option<u64>,
    pub stale: bool,
    /// `coingecko_price` only: each tracked coin by CoinGecko id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coins: Option<BTreeMap<String, CoinHealth>>,
}

/// One tracked coin under `coingecko_price`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoinHealth {
    /// When an answer last had a usable quote for it (null: never yet).
    pub quoted_at: Option<String>,
    /// Seconds since then.
    pub age_seconds: Option<u64>,
    /// The latest answer had no usable quote for it (or none came for `STALE_AFTER_SECONDS`):
    /// `market` shows its last good quote, marked stale.
    pub stale: bool,
    /// Why the latest answer had no usable quote for it.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Components {
    pub kv: ProbeComponent,
    pub hub: ProbeComponent,
    #[serde(flatten)]
    pub upstreams: BTreeMap<&'static str, UpstreamComponent>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub status: Status,
    pub version: &'static str,
    pub time: String,
    pub components: Components,
    /// Whether app tokens can verify (`TOKEN_SECRET`), so private channels and socket
    /// publishes work. Not configured is no fault: tickwire then serves public channels only.
    pub tokens: Tokens,
}

/// What `/health` says of token verification (never the secrets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tokens {
    pub configured: bool,
    /// Both `TOKEN_SECRET` and `TOKEN_SECRET_PREVIOUS` are set: a key rotation is under way.
    pub rotating: bool,
    /// A secret was set but is shorter than the 32 bytes required, and ignored.
    pub secret_too_short: bool,
}

impl Tokens {
    pub fn of(keys: &Keys) -> Tokens {
        Tokens { configured: keys.configured(), rotating: keys.len() > 1, secret_too_short: keys.ignored_short() }
    }
}

impl Health {
    pub fn http_status(&self) -> u16 {
        if self.status == Status::Down {
            503
        } else {
            200
        }
    }
}

/// Judges health from a KV probe and the hub's stats (either may have failed).
pub fn assess(
    kv: Result<(), String>,
    hub: Result<&HubStats, String>,
    now_ms: u64,
    feeds: &FeedSettings,
    version: &'static str,
) -> Health {
    let probe = |r: Result<Option<u64>, String>| match r {
        Ok(sockets) => ProbeComponent { status: Status::Ok, sockets, error: None },
        Err(e) => ProbeComponent { status: Status::Down, sockets: None, error: Some(e) },
    };
    let kv = probe(kv.map(|_| None));
    let hub_c = probe(hub.as_ref().map(|s| Some(s.total_sockets())).map_err(Clone::clone));
    let mut upstreams = BTreeMap::new();
    for source in Source::ALL {
        let st = hub.as_ref().ok().and_then(|s| s.upstreams.get(&source));
        let age = st.and_then(|s| s.last_success).map(|t| now_ms.saturating_sub(t) / 1000);
        let status = match st {
            None => UpstreamState::Unknown,
            Some(s) if s.is_failing() => UpstreamState::Failing,
            Some(_) => UpstreamState::Ok,
        };
        let breaker = st.map(|s| s.breaker.clone()).unwrap_or_default();
        let limit = hub.as_ref().ok().and_then(|s| s.providers.get(&source.provider()));
        upstreams.insert(
            source.label(),
            UpstreamComponent {
                status,
                breaker: breaker.state,
                breaker_open_until: (breaker.state == BreakerState::Open).then(|| rfc3339(breaker.open_until)),
                rate_limited_until: limit.and_then(|l| l.retry_after_until).filter(|t| *t > now_ms).map(rfc3339),
                last_success: st.and_then(|s| s.last_success).map(rfc3339),
                last_error: st.and_then(|s| s.last_error.clone()),
                consecutive_failures: st.map_or(0, |s| s.consecutive_failures),
                data_age_seconds: age,
                stale: age.is_none_or(|a| a > feeds.stale_after_seconds_for(source)),
                coins: (source == Source::CoingeckoPrice).then(|| coins(st, now_ms, feeds)),
            },
        );
    }
    let status = if kv.status == Status::Down || hub_c.status == Status::Down {
        Status::Down
    } else if upstreams
        .values()
        .any(|u| u.status != UpstreamState::Ok || u.stale || u.coins.iter().flat_map(|c| c.values()).any(|c| c.stale))
    {
        Status::Degraded
    } else {
        Status::Ok
    };
    let components = Components { kv, hub: hub_c, upstreams };
    Health { status, version, time: rfc3339(now_ms), components, tokens: Tokens::default() }
}

/// Each tracked coin (`COINS`) as the price source's bookkeeping has it.
fn coins(st: Option<&UpstreamStatus>, now_ms: u64, feeds: &FeedSettings) -> BTreeMap<String, CoinHealth> {
    let stale_after = feeds.stale_after_seconds_for(Source::CoingeckoPrice);
    feeds
        .coins
        .iter()
        .map(|id| {
            let coin = st.and_then(|s| s.coins.get(id)).cloned().unwrap_or_default();
            let age = coin.quoted_at.map(|t| now_ms.saturating_sub(t) / 1000);
            let health = CoinHealth {
                quoted_at: coin.quoted_at.map(rfc3339),
                age_seconds: age,
                stale: coin.problem.is_some() || age.is_none_or(|a| a > stale_after),
                problem: coin.problem,
            };
            (id.clone(), health)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tickwire_hub::feeds::status::Outcome;

    const NOW: u64 = 1_800_000_000_000;

    fn stats_with(outcomes: &[(u64, Outcome)]) -> HubStats {
        let mut s = HubStats::default();
        s.sockets.insert(0, 3);
        let up = s.upstreams.entry(Source::CoingeckoPrice).or_default();
        for (at, o) in outcomes {
            up.record(*at, *o, Some("HTTP 500"));
            if *o == Outcome::Ok {
                up.record_coins(*at, &FeedSettings::default().coins, &BTreeMap::new());
            }
        }
        // The other sources are healthy, so each test is about the price source alone.
        for source in [Source::CoingeckoGlobal, Source::Fng, Source::CoingeckoChart] {
            s.upstreams.entry(source).or_default().record(NOW - 10_000, Outcome::Ok, None);
        }
        s
    }

    #[test]
    fn breaker_and_rate_limit_are_shown() {
        use tickwire_hub::feeds::guard::{Breaker, ProviderLimit};
        use tickwire_hub::feeds::status::Provider;
        let mut stats = stats_with(&[(NOW - 1_000, Outcome::HttpError)]);
        let up = stats.upstreams.get_mut(&Source::CoingeckoPrice).unwrap();
        up.breaker = Breaker { state: BreakerState::Open, open_until: NOW + 60_000, ..Breaker::default() };
        let limit = ProviderLimit { retry_after_until: Some(NOW + 30_000), ..ProviderLimit::default() };
        stats.providers.insert(Provider::Coingecko, limit);
        let h = assess(Ok(()), Ok(&stats), NOW, &FeedSettings::default(), "1.0");
        let json = serde_json::to_value(&h).unwrap();
        let price = &json["components"]["coingecko_price"];
        assert_eq!(price["breaker"], "open");
        assert_eq!(price["breaker_open_until"], rfc3339(NOW + 60_000));
        assert_eq!(price["rate_limited_until"], rfc3339(NOW + 30_000));
        assert_eq!(
            json["components"]["coingecko_global"]["rate_limited_until"],
            rfc3339(NOW + 30_000),
            "same provider"
        );
        assert_eq!(json["components"]["fng"]["rate_limited_until"], serde_json::Value::Null);
        assert_eq!(json["components"]["fng"]["breaker"], "closed");
    }

    #[test]
    fn healthy_when_all_fresh() {
        let stats = stats_with(&[(NOW - 20_000, Outcome::Ok)]);
        let h = assess(Ok(()), Ok(&stats), NOW, &FeedSettings::default(), "1.0");
        assert_eq!((h.status, h.http_status()), (Status::Ok, 200));
        assert_eq!(h.components.hub.sockets, Some(3));
        let up = &h.components.upstreams["coingecko_price"];
        assert_eq!((up.status, up.data_age_seconds, up.stale), (UpstreamState::Ok, Some(20), false));
    }

    #[test]
    fn failing_upstream_degrades_but_serves() {
        let stats = stats_with(&[(NOW - 70_000, Outcome::Ok), (NOW - 10_000, Outcome::HttpError)]);
        let h = assess(Ok(()), Ok(&stats), NOW, &FeedSettings::default(), "1.0");
        assert_eq!((h.status, h.http_status()), (Status::Degraded, 200));
        let up = &h.components.upstreams["coingecko_price"];
        assert_eq!(up.status, UpstreamState::Failing);
        assert_eq!(up.last_error.as_ref().map(|e| e.outcome), Some(Outcome::HttpError));
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["components"]["coingecko_price"]["status"], "failing");
    }

    #[test]
    fn old_data_is_stale_and_never_polled_is_unknown() {
        let stats = stats_with(&[(NOW - 200_000, Outcome::Ok)]);
        let h = assess(Ok(()), Ok(&stats), NOW, &FeedSettings::default(), "1.0");
        assert_eq!(h.status, Status::Degraded);
        assert!(h.components.upstreams["coingecko_price"].stale);
        let h = assess(Ok(()), Ok(&HubStats::default()), NOW, &FeedSettings::default(), "1.0");
        assert_eq!(h.components.upstreams["coingecko_price"].status, UpstreamState::Unknown);
    }

    #[test]
    fn each_coin_shows_its_own_age_and_a_missing_one_degrades() {
        let mut stats = stats_with(&[(NOW - 20_000, Outcome::Ok)]);
        let up = stats.upstreams.get_mut(&Source::CoingeckoPrice).unwrap();
        let problems = BTreeMap::from([("solana".to_owned(), "no \"solana\" object".to_owned())]);
        up.record(NOW - 10_000, Outcome::Ok, None);
        up.record_coins(NOW - 10_000, &FeedSettings::default().coins, &problems);
        let h = assess(Ok(()), Ok(&stats), NOW, &FeedSettings::default(), "1.0");
        assert_eq!(h.status, Status::Degraded, "a stale coin degrades");
        let json = serde_json::to_value(&h).unwrap();
        let price = &json["components"]["coingecko_price"];
        assert_eq!(
            (price["status"].clone(), price["stale"].clone()),
            (json!("ok"), json!(false)),
            "the source is fine"
        );
        let coins = &price["coins"];
        assert_eq!(coins["bitcoin"]["age_seconds"], 10);
        assert_eq!(
            (coins["ethereum"]["stale"].clone(), coins["ethereum"]["problem"].clone()),
            (json!(false), json!(null))
        );
        assert_eq!(
            (
                coins["solana"]["stale"].clone(),
                coins["solana"]["age_seconds"].clone(),
                coins["solana"]["problem"].clone()
            ),
            (json!(true), json!(20), json!("no \"solana\" object"))
        );
        assert_eq!(coins["solana"]["quoted_at"], rfc3339(NOW - 20_000));
        assert!(json["components"]["coingecko_global"].get("coins").is_none(), "the price source only");
        // A coin tracked but never quoted yet is stale with no age.
        let feeds = FeedSettings { coins: vec!["bitcoin".into(), "tron".into()], ..FeedSettings::default() };
        let h = assess(Ok(()), Ok(&stats), NOW, &feeds, "1.0");
        let tron = &h.components.upstreams["coingecko_price"].coins.as_ref().unwrap()["tron"];
        assert_eq!((tron.stale, tron.age_seconds, tron.quoted_at.clone()), (true, None, None));
    }

    #[test]
    fn unreachable_kv_or_hub_is_down() {
        let stats = stats_with(&[(NOW, Outcome::Ok)]);
        let h = assess(Err("kv get failed".into()), Ok(&stats), NOW, &FeedSettings::default(), "1.0");
        assert_eq!((h.status, h.http_status()), (Status::Down, 503));
        let h = assess(Ok(()), Err("no stub".into()), NOW, &FeedSettings::default(), "1.0");
        assert_eq!(h.status, Status::Down);
        assert_eq!(h.components.hub.error.as_deref(), Some("no stub"));
    }
}
