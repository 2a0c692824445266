//! CoinGecko `/api/v3/simple/price`: the BTC price and its 24 h change for the `btc` channel.
//!
//! Response shape (documented by CoinGecko):
//! `{"bitcoin":{"usd":64123.45,"usd_24h_change":1.23}}`.

use super::{finite, FeedError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `btc` channel's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BtcTick {
    pub price_usd: f64,
    /// 24 h change in percent (may be negative).
    pub change_24h_pct: f64,
}

/// The request path (appended to `COINGECKO_BASE_URL`).
pub fn simple_price_path() -> &'static str {
    "/api/v3/simple/price?ids=bitcoin&vs_currencies=usd&include_24hr_change=true"
}

pub fn parse_btc_tick(body: &str) -> Result<BtcTick, FeedError> {
    let json: Value = serde_json::from_str(body).map_err(|e| FeedError::Parse(format!("not JSON: {e}")))?;
    let coin = json
        .get("bitcoin")
        .filter(|v| v.is_object())
        .ok_or_else(|| FeedError::Parse("no \"bitcoin\" object".to_owned()))?;
    let price = finite("bitcoin.usd", coin.get("usd").and_then(Value::as_f64), true)?;
    let change = finite("bitcoin.usd_24h_change", coin.get("usd_24h_change").and_then(Value::as_f64), false)?;
    // A 24 h move below -100 % is impossible; above +1000 % is a broken feed, not a market.
    if !(-100.0..=1000.0).contains(&change) {
        return Err(FeedError::Parse(format!("bitcoin.usd_24h_change {change} is implausible")));
    }
    Ok(BtcTick { price_usd: price, change_24h_pct: change })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_shape() {
        let t = parse_btc_tick(r#"{"bitcoin":{"usd":64123.45,"usd_24h_change":-1.5234}}"#).unwrap();
        assert_eq!(t, BtcTick { price_usd: 64123.45, change_24h_pct: -1.5234 });
        // Integers are numbers too.
        assert_eq!(parse_btc_tick(r#"{"bitcoin":{"usd":64000,"usd_24h_change":0}}"#).unwrap().price_usd, 64000.0);
    }

    #[test]
    fn rejects_broken_variants() {
        for (body, why) in [
            ("<html>502 Bad Gateway</html>", "not JSON"),
            ("{}", "no \"bitcoin\""),
            (r#"{"bitcoin":[]}"#, "no \"bitcoin\""),
            (r#"{"bitcoin":{"usd_24h_change":1}}"#, "bitcoin.usd is missing"),
            (r#"{"bitcoin":{"usd":"64000","usd_24h_change":1}}"#, "bitcoin.usd is missing"),
            (r#"{"bitcoin":{"usd":-5,"usd_24h_change":1}}"#, "must be positive"),
            (r#"{"bitcoin":{"usd":0,"usd_24h_change":1}}"#, "must be positive"),
            (r#"{"bitcoin":{"usd":5,"usd_24h_change":null}}"#, "usd_24h_change is missing"),
            (r#"{"bitcoin":{"usd":5,"usd_24h_change":-250}}"#, "implausible"),
            (r#"{"bitcoin":{"usd":1e999,"usd_24h_change":1}}"#, "not JSON"),
        ] {
            match parse_btc_tick(body) {
                Err(FeedError::Parse(msg)) => assert!(msg.contains(why), "{body}: {msg}"),
                other => panic!("{body}: expected a parse error, got {other:?}"),
            }
        }
    }
}
