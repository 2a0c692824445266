//! CoinGecko: `/api/v3/simple/price` (prices of the tracked coins), `/api/v3/global` (market
//! totals) and `/api/v3/coins/bitcoin/market_chart` (BTC price history for RSI).
//!
//! Shapes follow CoinGecko's API documentation; every number is checked before it is used. A
//! price answer is judged per coin: one coin missing or unusable keeps its last good quote,
//! marked stale ([`merge_quotes`]), while the others move on.

use super::{finite, non_negative, optional, optional_non_negative, parse_json, FeedError};
use crate::wire::values::{BtcTick, CoinQuote, MarketTotals};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The coin `btc` is made from; an answer without a usable quote for it is a failed answer.
pub const BITCOIN: &str = "bitcoin";

/// A `simple/price` answer, coin by coin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceAnswer {
    /// The tracked coins with a usable quote.
    pub quotes: BTreeMap<String, CoinQuote>,
    /// The tracked coins without one, and why (for `/health`).
    pub unusable: BTreeMap<String, String>,
}

/// The path (after the base URL) of the price request for `coins` (comma-separated ids).
pub fn simple_price_path(coins: &str) -> String {
    format!(
        "/api/v3/simple/price?ids={coins}&vs_currencies=usd&include_24hr_change=true&include_market_cap=true&include_24hr_vol=true"
    )
}

pub const GLOBAL_PATH: &str = "/api/v3/global";
pub const CHART_PATH: &str = "/api/v3/coins/bitcoin/market_chart?vs_currency=usd&days=2";

/// Parses `simple/price` for every coin in `coins`, each on its own: a coin that is missing,
/// has no usable price, or a field of the wrong type or an implausible value is listed in
/// `unusable`; a `null` (or absent) change, market cap or volume is unknown, not a fault. Only
/// an answer that is not a JSON object or has no usable `bitcoin` quote is an error.
pub fn parse_simple_price(body: &str, coins: &[String]) -> Result<PriceAnswer, FeedError> {
    let json = parse_json(body)?;
    if !json.is_object() {
        return Err(FeedError::Parse("not a JSON object".into()));
    }
    let mut answer = PriceAnswer::default();
    for id in coins.iter().map(String::as_str).chain((!coins.iter().any(|c| c == BITCOIN)).then_some(BITCOIN)) {
        match parse_quote(id, json.get(id)) {
            Ok(q) => {
                answer.quotes.insert(id.to_owned(), q);
            }
            Err(FeedError::Parse(why)) => {
                answer.unusable.insert(id.to_owned(), why);
            }
            Err(other) => {
                answer.unusable.insert(id.to_owned(), other.to_string());
            }
        }
    }
    match answer.unusable.get(BITCOIN) {
        Some(why) => Err(FeedError::Parse(format!("no usable bitcoin quote: {why}"))),
        None => Ok(answer),
    }
}

fn parse_quote(id: &str, coin: Option<&Value>) -> Result<CoinQuote, FeedError> {
    let coin = coin.filter(|v| v.is_object()).ok_or_else(|| FeedError::Parse(format!("no {id:?} object")))?;
    let change = optional(&format!("{id}.usd_24h_change"), coin.get("usd_24h_change"))?;
    // A 24 h move below -100 % is impossible; above +1000 % is a broken feed, not a market.
    if let Some(change) = change.filter(|c| !(-100.0..=1000.0).contains(c)) {
        return Err(FeedError::Parse(format!("{id}.usd_24h_change {change} is implausible")));
    }
    Ok(CoinQuote {
        price_usd: finite(&format!("{id}.usd"), coin.get("usd"), true)?,
        change_24h_pct: change,
        market_cap_usd: optional_non_negative(&format!("{id}.usd_market_cap"), coin.get("usd_market_cap"))?,
        volume_24h_usd: optional_non_negative(&format!("{id}.usd_24h_vol"), coin.get("usd_24h_vol"))?,
        stale: false,
        quoted_at: None,
    })
}

/// `btc` from bitcoin's quote in an answer (`None`: the answer has none).
pub fn btc_tick(answer: &PriceAnswer) -> Option<BtcTick> {
    answer.quotes.get(BITCOIN).map(|q| BtcTick { price_usd: q.price_usd, change_24h_pct: q.change_24h_pct })
}

/// The coins of `market` after `answer`: each coin in `coins` with a usable quote takes it; one
/// without keeps its last good quote from `held` (the coins `market` holds now), marked stale.
/// A coin already stale keeps its `quoted_at`; one going stale now gets `quoted_at(id)`, when
/// the upstream last quoted it. A coin never quoted is left out.
pub fn merge_quotes(
    answer: &PriceAnswer,
    held: Option<&Value>,
    coins: &[String],
    quoted_at: impl Fn(&str) -> Option<u64>,
) -> BTreeMap<String, CoinQuote> {
    coins
        .iter()
        .filter_map(|id| {
            if let Some(q) = answer.quotes.get(id) {
                return Some((id.clone(), q.clone()));
            }
            let mut q = CoinQuote::deserialize(held?.get(id)?).ok()?;
            if !q.stale {
                q.stale = true;
                q.quoted_at = quoted_at(id);
            }
            Some((id.clone(), q))
        })
        .collect()
}

pub fn parse_global(body: &str) -> Result<MarketTotals, FeedError> {
    let json = parse_json(body)?;
    let data =
        json.get("data").filter(|d| d.is_object()).ok_or_else(|| FeedError::Parse("no \"data\" object".into()))?;
    let at = |path: &[&str]| path.iter().try_fold(data, |v, k| v.get(*k));
    let dominance = finite("data.market_cap_percentage.btc", at(&["market_cap_percentage", "btc"]), false)?;
    if !(0.0..=100.0).contains(&dominance) {
        return Err(FeedError::Parse(format!("BTC dominance {dominance} is not a percentage")));
    }
    Ok(MarketTotals {
        total_market_cap_usd: finite("data.total_market_cap.usd", at(&["total_market_cap", "usd"]), true)?,
        total_volume_24h_usd: non_negative("data.total_volume.usd", at(&["total_volume", "usd"]))?,
        btc_dominance_pct: dominance,
    })
}

/// `market_chart`'s `prices`: `[[ms, price], ...]`, oldest first.
pub fn parse_chart(body: &str) -> Result<Vec<(u64, f64)>, FeedError> {
    let json = parse_json(body)?;
    let prices =
        json.get("prices").and_then(Value::as_array).ok_or_else(|| FeedError::Parse("no \"prices\" array".into()))?;
    if prices.is_empty() {
        return Err(FeedError::Parse("\"prices\" is empty".into()));
    }
    prices
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let pair = p
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| FeedError::Parse(format!("prices[{i}] is not [ms, price]")))?;
            let ms = pair[0]
                .as_f64()
                .filter(|m| m.is_finite() && *m >= 0.0)
                .ok_or_else(|| FeedError::Parse(format!("prices[{i}] has a bad time")))?;
            Ok((ms as u64, finite(&format!("prices[{i}]"), Some(&pair[1]), true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coins() -> Vec<String> {
        vec!["bitcoin".into(), "ethereum".into()]
    }

    const PRICE: &str = r#"{"bitcoin":{"usd":64123.45,"usd_24h_change":-1.5234,"usd_market_cap":1.26e12,"usd_24h_vol":3.1e10},
        "ethereum":{"usd":3120.5,"usd_24h_change":0.8,"usd_market_cap":3.75e11,"usd_24h_vol":0}}"#;

    fn parse_err(r: Result<impl std::fmt::Debug, FeedError>) -> String {
        match r {
            Err(FeedError::Parse(m)) => m,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    fn quote(price: f64, change: Option<f64>) -> CoinQuote {
        CoinQuote {
            price_usd: price,
            change_24h_pct: change,
            market_cap_usd: Some(1.0),
            volume_24h_usd: Some(1.0),
            stale: false,
            quoted_at: None,
        }
    }

    #[test]
    fn simple_price_documented_shape() {
        let a = parse_simple_price(PRICE, &coins()).unwrap();
        assert!(a.unusable.is_empty(), "{a:?}");
        assert_eq!(a.quotes["bitcoin"].price_usd, 64123.45);
        assert_eq!(a.quotes["ethereum"].volume_24h_usd, Some(0.0), "a zero volume is a number, not unknown");
        assert_eq!(btc_tick(&a), Some(BtcTick { price_usd: 64123.45, change_24h_pct: Some(-1.5234) }));
        assert!(simple_price_path("bitcoin,ethereum").contains("ids=bitcoin,ethereum&vs_currencies=usd"));
        // A fresh coin's shape is what it always was: no stale mark, no quoted_at.
        let json = serde_json::to_value(&a.quotes["bitcoin"]).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["change_24h_pct", "market_cap_usd", "price_usd", "volume_24h_usd"]);
    }

    #[test]
    fn a_null_change_cap_or_volume_is_unknown_and_the_price_still_counts() {
        let body = r#"{"bitcoin":{"usd":5,"usd_24h_change":null,"usd_market_cap":null,"usd_24h_vol":1},
            "ethereum":{"usd":2}}"#;
        let a = parse_simple_price(body, &coins()).unwrap();
        assert!(a.unusable.is_empty(), "{a:?}");
        let btc = &a.quotes["bitcoin"];
        assert_eq!((btc.price_usd, btc.change_24h_pct, btc.market_cap_usd), (5.0, None, None));
        assert_eq!(a.quotes["ethereum"].volume_24h_usd, None, "absent is unknown too");
        assert_eq!(btc_tick(&a), Some(BtcTick { price_usd: 5.0, change_24h_pct: None }));
        let json = serde_json::to_value(btc_tick(&a)).unwrap();
        assert_eq!(json, serde_json::json!({"price_usd": 5.0, "change_24h_pct": null}), "null, never 0");
    }

    #[test]
    fn one_coin_missing_or_broken_leaves_the_others() {
        let tracked: Vec<String> = vec!["bitcoin".into(), "ethereum".into(), "solana".into(), "tron".into()];
        for (eth, why) in [
            ("", "no \"ethereum\" object"),
            (r#","ethereum":null"#, "no \"ethereum\" object"),
            (r#","ethereum":{"usd":null,"usd_24h_change":1}"#, "ethereum.usd is missing"),
            (r#","ethereum":{"usd":"3000"}"#, "ethereum.usd is missing"),
            (r#","ethereum":{"usd":0}"#, "must be positive"),
            (r#","ethereum":{"usd":3000,"usd_24h_change":"1.5"}"#, "usd_24h_change is missing or not a number"),
            (r#","ethereum":{"usd":3000,"usd_24h_change":-250}"#, "implausible"),
            (r#","ethereum":{"usd":3000,"usd_market_cap":-1}"#, "must not be negative"),
            (r#","ethereum":{"usd":3000,"usd_24h_vol":[]}"#, "usd_24h_vol is missing or not a number"),
        ] {
            let body = format!(r#"{{"bitcoin":{{"usd":5,"usd_24h_change":1}},"solana":{{"usd":7}}{eth}}}"#);
            let a = parse_simple_price(&body, &tracked).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(a.quotes.keys().collect::<Vec<_>>(), ["bitcoin", "solana"], "{body}");
            assert!(a.unusable["ethereum"].contains(why), "{body}: {a:?}");
            assert!(a.unusable["tron"].contains("no \"tron\" object"), "{a:?}");
        }
    }

    #[test]
    fn no_usable_bitcoin_is_a_failed_answer() {
        for (body, why) in [
            ("<html>502 Bad Gateway</html>", "not JSON"),
            ("[]", "not a JSON object"),
            ("{}", "no usable bitcoin quote: no \"bitcoin\""),
            (r#"{"bitcoin":[],"ethereum":{"usd":1}}"#, "no \"bitcoin\""),
            (r#"{"bitcoin":{"usd":"64000","usd_24h_change":1}}"#, "bitcoin.usd is missing"),
            (r#"{"bitcoin":{"usd":-5,"usd_24h_change":1}}"#, "must be positive"),
            (r#"{"bitcoin":{"usd":5,"usd_24h_change":-250}}"#, "implausible"),
            (r#"{"bitcoin":{"usd":5,"usd_24h_change":1,"usd_market_cap":-1}}"#, "must not be negative"),
            (r#"{"bitcoin":{"usd":1e999,"usd_24h_change":1}}"#, "not JSON"),
        ] {
            assert!(parse_err(parse_simple_price(body, &coins())).contains(why), "{body}");
        }
        // Bitcoin is judged even when the tracked list lacks it: `btc` is made from it.
        let only_eth = r#"{"ethereum":{"usd":5}}"#;
        assert!(parse_err(parse_simple_price(only_eth, &["ethereum".into()])).contains("no usable bitcoin"));
    }

    #[test]
    fn a_coin_without_a_quote_keeps_its_last_one_marked_stale() {
        let coins: Vec<String> = vec!["bitcoin".into(), "ethereum".into(), "solana".into(), "tron".into()];
        let held = serde_json::json!({
            "bitcoin": {"price_usd": 1.0, "change_24h_pct": 1.0, "market_cap_usd": 1.0, "volume_24h_usd": 1.0},
            "ethereum": {"price_usd": 30.0, "change_24h_pct": 2.0, "market_cap_usd": 1.0, "volume_24h_usd": 1.0},
            "solana": {"price_usd": 7.0, "change_24h_pct": null, "market_cap_usd": null, "volume_24h_usd": 1.0,
                "stale": true, "quoted_at": 500},
        });
        let mut answer = PriceAnswer::default();
        answer.quotes.insert("bitcoin".into(), quote(2.0, None));
        for id in ["ethereum", "solana", "tron"] {
            answer.unusable.insert(id.into(), "gone".into());
        }
        let coins_now = merge_quotes(&answer, Some(&held), &coins, |id| (id == "ethereum").then_some(9_000));
        assert_eq!(coins_now["bitcoin"], quote(2.0, None), "fresh: the answer's quote, change unknown");
        let eth = &coins_now["ethereum"];
        assert_eq!((eth.price_usd, eth.change_24h_pct, eth.stale, eth.quoted_at), (30.0, Some(2.0), true, Some(9_000)));
        let sol = &coins_now["solana"];
        assert_eq!((sol.price_usd, sol.stale, sol.quoted_at), (7.0, true, Some(500)), "stays stale since 500");
        assert!(!coins_now.contains_key("tron"), "never quoted: nothing to keep");
        let json = serde_json::to_value(eth).unwrap();
        assert_eq!(
            (json["stale"].clone(), json["quoted_at"].clone()),
            (serde_json::json!(true), serde_json::json!(9_000))
        );
        // Quoted again: fresh, the stale mark gone.
        answer.quotes.insert("solana".into(), quote(8.0, Some(1.0)));
        let coins_now = merge_quotes(&answer, Some(&held), &coins, |_| None);
        assert_eq!(coins_now["solana"], quote(8.0, Some(1.0)));
        // Nothing held yet (a first answer): only the quoted coins.
        assert_eq!(merge_quotes(&answer, None, &coins, |_| None).len(), 2);
        // A value from before quotes could be null (an f64 change) still reads.
        let old = serde_json::json!({"ethereum": {"price_usd": 3.0, "change_24h_pct": 1.5, "market_cap_usd": 1.0, "volume_24h_usd": 2.0}});
        assert_eq!(merge_quotes(&answer, Some(&old), &coins, |_| Some(1))["ethereum"].price_usd, 3.0);
    }

    #[test]
    fn global_shape_and_broken_variants() {
        let body = r#"{"data":{"total_market_cap":{"usd":2.41e12},"total_volume":{"usd":8.9e10},"market_cap_percentage":{"btc":52.3}}}"#;
        let t = parse_global(body).unwrap();
        assert_eq!(
            t,
            MarketTotals { total_market_cap_usd: 2.41e12, total_volume_24h_usd: 8.9e10, btc_dominance_pct: 52.3 }
        );
        for (body, why) in [
            (r#"{"status":"error"}"#, "no \"data\""),
            (
                r#"{"data":{"total_market_cap":{},"total_volume":{"usd":1},"market_cap_percentage":{"btc":1}}}"#,
                "total_market_cap.usd",
            ),
            (
                r#"{"data":{"total_market_cap":{"usd":1},"total_volume":{"usd":1},"market_cap_percentage":{"btc":120}}}"#,
                "not a percentage",
            ),
            (
                r#"{"data":{"total_market_cap":{"usd":1},"total_volume":{"usd":"x"},"market_cap_percentage":{"btc":1}}}"#,
                "total_volume.usd",
            ),
        ] {
            assert!(parse_err(parse_global(body)).contains(why), "{body}");
        }
    }

    #[test]
    fn chart_shape_and_broken_variants() {
        let p = parse_chart(r#"{"prices":[[1700000000000,60000.5],[1700003600000,60100]]}"#).unwrap();
        assert_eq!(p, vec![(1_700_000_000_000, 60000.5), (1_700_003_600_000, 60100.0)]);
        for (body, why) in [
            (r#"{"prices":[]}"#, "empty"),
            (r#"{"market_caps":[]}"#, "no \"prices\""),
            (r#"{"prices":[[1,2,3]]}"#, "not [ms, price]"),
            (r#"{"prices":[[1,"x"]]}"#, "prices[0] is missing"),
            (r#"{"prices":[["t",1]]}"#, "bad time"),
            (r#"{"prices":[[1,0]]}"#, "must be positive"),
        ] {
            assert!(parse_err(parse_chart(body)).contains(why), "{body}");
        }
    }
}
