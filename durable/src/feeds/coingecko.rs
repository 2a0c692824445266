//! CoinGecko: `/api/v3/simple/price` (prices of the tracked coins), `/api/v3/global` (market
//! totals) and `/api/v3/coins/bitcoin/market_chart` (BTC price history for RSI).
//!
//! Shapes follow CoinGecko's API documentation; every number is checked before it is used.

use super::{finite, non_negative, parse_json, FeedError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One coin's quote from `simple/price`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoinQuote {
    pub price_usd: f64,
    /// 24 h change in percent (may be negative).
    pub change_24h_pct: f64,
    pub market_cap_usd: f64,
    pub volume_24h_usd: f64,
}

/// The `btc` channel's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BtcTick {
    pub price_usd: f64,
    pub change_24h_pct: f64,
}

/// The totals part of the `market` channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketTotals {
    pub total_market_cap_usd: f64,
    pub total_volume_24h_usd: f64,
    pub btc_dominance_pct: f64,
}

/// The path (after the base URL) of the price request for `coins` (comma-separated ids).
pub fn simple_price_path(coins: &str) -> String {
    format!(
        "/api/v3/simple/price?ids={coins}&vs_currencies=usd&include_24hr_change=true&include_market_cap=true&include_24hr_vol=true"
    )
}

pub const GLOBAL_PATH: &str = "/api/v3/global";
pub const CHART_PATH: &str = "/api/v3/coins/bitcoin/market_chart?vs_currency=usd&days=2";

/// Parses `simple/price` for every coin in `coins`: all must be present and valid, so a partial
/// answer never replaces a complete one.
pub fn parse_simple_price(body: &str, coins: &[String]) -> Result<BTreeMap<String, CoinQuote>, FeedError> {
    let json = parse_json(body)?;
    let mut out = BTreeMap::new();
    for id in coins {
        let coin =
            json.get(id).filter(|v| v.is_object()).ok_or_else(|| FeedError::Parse(format!("no {id:?} object")))?;
        let change = finite(&format!("{id}.usd_24h_change"), coin.get("usd_24h_change"), false)?;
        // A 24 h move below -100 % is impossible; above +1000 % is a broken feed, not a market.
        if !(-100.0..=1000.0).contains(&change) {
            return Err(FeedError::Parse(format!("{id}.usd_24h_change {change} is implausible")));
        }
        let quote = CoinQuote {
            price_usd: finite(&format!("{id}.usd"), coin.get("usd"), true)?,
            change_24h_pct: change,
            market_cap_usd: non_negative(&format!("{id}.usd_market_cap"), coin.get("usd_market_cap"))?,
            volume_24h_usd: non_negative(&format!("{id}.usd_24h_vol"), coin.get("usd_24h_vol"))?,
        };
        out.insert(id.clone(), quote);
    }
    Ok(out)
}

pub fn btc_tick(quotes: &BTreeMap<String, CoinQuote>) -> Option<BtcTick> {
    quotes.get("bitcoin").map(|q| BtcTick { price_usd: q.price_usd, change_24h_pct: q.change_24h_pct })
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

    #[test]
    fn simple_price_documented_shape() {
        let q = parse_simple_price(PRICE, &coins()).unwrap();
        assert_eq!(q["bitcoin"].price_usd, 64123.45);
        assert_eq!(q["ethereum"].volume_24h_usd, 0.0);
        assert_eq!(btc_tick(&q), Some(BtcTick { price_usd: 64123.45, change_24h_pct: -1.5234 }));
        assert!(simple_price_path("bitcoin,ethereum").contains("ids=bitcoin,ethereum&vs_currencies=usd"));
    }

    #[test]
    fn simple_price_broken_variants() {
        for (body, why) in [
            ("<html>502 Bad Gateway</html>", "not JSON"),
            ("{}", "no \"bitcoin\""),
            (r#"{"bitcoin":[],"ethereum":{}}"#, "no \"bitcoin\""),
            (
                r#"{"bitcoin":{"usd":"64000","usd_24h_change":1,"usd_market_cap":1,"usd_24h_vol":1}}"#,
                "bitcoin.usd is missing",
            ),
            (r#"{"bitcoin":{"usd":-5,"usd_24h_change":1,"usd_market_cap":1,"usd_24h_vol":1}}"#, "must be positive"),
            (
                r#"{"bitcoin":{"usd":5,"usd_24h_change":null,"usd_market_cap":1,"usd_24h_vol":1}}"#,
                "usd_24h_change is missing",
            ),
            (r#"{"bitcoin":{"usd":5,"usd_24h_change":-250,"usd_market_cap":1,"usd_24h_vol":1}}"#, "implausible"),
            (r#"{"bitcoin":{"usd":5,"usd_24h_change":1,"usd_market_cap":-1,"usd_24h_vol":1}}"#, "must not be negative"),
            (r#"{"bitcoin":{"usd":1e999,"usd_24h_change":1}}"#, "not JSON"),
        ] {
            assert!(parse_err(parse_simple_price(body, &coins()[..1])).contains(why), "{body}");
        }
        // Every tracked coin must be there: a partial answer is an error.
        let only_btc = r#"{"bitcoin":{"usd":5,"usd_24h_change":1,"usd_market_cap":1,"usd_24h_vol":1}}"#;
        assert!(parse_err(parse_simple_price(only_btc, &coins())).contains("no \"ethereum\""));
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
