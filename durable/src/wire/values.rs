//! The built-in channels' values as clients decode them: `btc` ([`BtcTick`]), `market`'s quotes
//! and totals ([`CoinQuote`], [`MarketTotals`]), `sentiment` ([`Sentiment`]) and `indicators`
//! ([`Indicators`]). The feeds (`feeds/`) build them from upstream answers; a client needs only
//! these types, not the parsers.

use serde::{Deserialize, Serialize};

/// The `sentiment` channel's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// 0 (extreme fear) ..= 100 (extreme greed).
    pub value: u8,
    pub classification: String,
}

/// One coin's quote from `simple/price`, as `market.coins` holds it. Only the price is
/// required: CoinGecko sends `null` for a 24 h change, market cap or volume it does not have at
/// the moment, and that is unknown (`null`), never 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoinQuote {
    pub price_usd: f64,
    /// 24 h change in percent (may be negative); `None`: unknown.
    pub change_24h_pct: Option<f64>,
    pub market_cap_usd: Option<f64>,
    pub volume_24h_usd: Option<f64>,
    /// Set while the latest answers had no usable quote for the coin: this is its last good one.
    /// Left out while fresh, so a fresh coin's shape is what it always was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// While stale: when the upstream last gave a usable quote for it (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_at: Option<u64>,
}

/// The `btc` channel's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BtcTick {
    pub price_usd: f64,
    /// `None` (JSON `null`): CoinGecko did not say; never shown as 0.
    pub change_24h_pct: Option<f64>,
}

/// The totals part of the `market` channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketTotals {
    pub total_market_cap_usd: f64,
    pub total_volume_24h_usd: f64,
    pub btc_dominance_pct: f64,
}

/// The `indicators` channel's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicators {
    pub rsi_14: f64,
    pub period: usize,
    /// Hourly closes the RSI was computed from.
    pub closes: usize,
    /// Time of the last close, ms since the Unix epoch.
    pub as_of: u64,
    /// The last `CHART_HOURS` (`feeds/rsi.rs`) hourly closes as `[ms, price]`, oldest first: a chart of the
    /// last two days at first paint, without a history request.
    pub hourly_closes: Vec<(u64, f64)>,
}
