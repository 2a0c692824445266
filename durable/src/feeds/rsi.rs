//! RSI-14 of BTC, computed in-house from CoinGecko's price history (no paid indicator API):
//! hourly closes, then Wilder's relative strength index with his smoothing.

use crate::wire::values::Indicators;

pub const PERIOD: usize = 14;
/// Hourly closes the `indicators` value carries for charts: the last 48 hours.
pub const CHART_HOURS: usize = 48;
const HOUR_MS: u64 = 3_600_000;

/// The last price of each hour, oldest first. `prices` must be sorted by time (CoinGecko's are).
pub fn hourly_closes(prices: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let mut closes: Vec<(u64, f64)> = Vec::new();
    for &(ms, price) in prices {
        match closes.last_mut() {
            Some(last) if last.0 / HOUR_MS == ms / HOUR_MS => *last = (ms, price),
            _ => closes.push((ms, price)),
        }
    }
    closes
}

/// Wilder's RSI for every close from the `period + 1`-th on: the first average gain and loss
/// are plain means of the first `period` changes, later ones `(prev * (period - 1) + x) / period`.
pub fn wilder_rsi(closes: &[f64], period: usize) -> Vec<f64> {
    if period == 0 || closes.len() <= period {
        return Vec::new();
    }
    let changes: Vec<f64> = closes.windows(2).map(|w| w[1] - w[0]).collect();
    let gain = |c: f64| c.max(0.0);
    let loss = |c: f64| (-c).max(0.0);
    let n = period as f64;
    let mut avg_gain = changes[..period].iter().map(|c| gain(*c)).sum::<f64>() / n;
    let mut avg_loss = changes[..period].iter().map(|c| loss(*c)).sum::<f64>() / n;
    let rsi = |g: f64, l: f64| {
        if l == 0.0 {
            if g == 0.0 {
                50.0
            } else {
                100.0
            }
        } else {
            100.0 - 100.0 / (1.0 + g / l)
        }
    };
    let mut out = vec![rsi(avg_gain, avg_loss)];
    for &c in &changes[period..] {
        avg_gain = (avg_gain * (n - 1.0) + gain(c)) / n;
        avg_loss = (avg_loss * (n - 1.0) + loss(c)) / n;
        out.push(rsi(avg_gain, avg_loss));
    }
    out
}

/// RSI-14 of the latest hourly close, or None with fewer than 15 hourly closes.
pub fn indicators(prices: &[(u64, f64)]) -> Option<Indicators> {
    let closes = hourly_closes(prices);
    let values: Vec<f64> = closes.iter().map(|c| c.1).collect();
    let rsi = *wilder_rsi(&values, PERIOD).last()?;
    let as_of = closes.last()?.0;
    // Two decimals is what anyone reads; it also keeps an unchanged RSI from looking changed.
    let hourly_closes = closes[closes.len().saturating_sub(CHART_HOURS)..].to_vec();
    Some(Indicators {
        rsi_14: (rsi * 100.0).round() / 100.0,
        period: PERIOD,
        closes: closes.len(),
        as_of,
        hourly_closes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closing prices of the RSI example in StockCharts' ChartSchool (the worked example
    /// commonly used to teach Wilder's RSI), and the RSI Wilder's formula gives for each close
    /// from the 15th, to two decimals. (Its printed table rounds the intermediate averages, so a
    /// value there can differ from these by a few hundredths.)
    const CLOSES: [f64; 33] = [
        44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61, 46.28, 46.28, 46.00,
        46.03, 46.41, 46.22, 45.64, 46.21, 46.25, 45.71, 46.45, 45.78, 45.35, 44.03, 44.18, 44.22, 44.57, 43.42, 42.66,
        43.13,
    ];
    const RSI: [f64; 19] = [
        70.46, 66.25, 66.48, 69.35, 66.29, 57.92, 62.88, 63.21, 56.01, 62.34, 54.67, 50.39, 40.02, 41.49, 41.90, 45.50,
        37.32, 33.09, 37.79,
    ];

    #[test]
    fn matches_the_worked_example_to_two_decimals() {
        let got = wilder_rsi(&CLOSES, 14);
        assert_eq!(got.len(), RSI.len());
        for (i, (g, want)) in got.iter().zip(RSI).enumerate() {
            assert!((g - want).abs() < 0.005, "RSI #{i}: {g:.4} vs {want}");
        }
    }

    #[test]
    fn edge_cases() {
        assert!(wilder_rsi(&CLOSES[..14], 14).is_empty(), "needs period + 1 closes");
        let up: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(wilder_rsi(&up, 14).last(), Some(&100.0));
        let down: Vec<f64> = (0..20).rev().map(f64::from).collect();
        assert_eq!(wilder_rsi(&down, 14).last(), Some(&0.0));
        assert_eq!(wilder_rsi(&[5.0; 20], 14).last(), Some(&50.0), "flat: neither gains nor losses");
        let zigzag: Vec<f64> = (0..21).map(|i| if i % 2 == 0 { 10.0 } else { 11.0 }).collect();
        let last = *wilder_rsi(&zigzag, 14).last().unwrap();
        assert!((last - 50.0).abs() < 5.0, "{last}");
    }

    #[test]
    fn hourly_closes_take_the_last_price_of_each_hour() {
        let h = HOUR_MS;
        let prices = [(0, 1.0), (h / 2, 2.0), (h, 3.0), (h + 10, 4.0), (3 * h, 5.0)];
        assert_eq!(hourly_closes(&prices), vec![(h / 2, 2.0), (h + 10, 4.0), (3 * h, 5.0)]);
    }

    #[test]
    fn indicators_from_a_price_history() {
        let prices: Vec<(u64, f64)> =
            CLOSES.iter().enumerate().map(|(i, c)| (i as u64 * HOUR_MS + 60_000, *c)).collect();
        let ind = indicators(&prices).unwrap();
        let want = Indicators {
            rsi_14: 37.79,
            period: 14,
            closes: 33,
            as_of: 32 * HOUR_MS + 60_000,
            hourly_closes: prices.clone(),
        };
        assert_eq!(ind, want);
        let json = serde_json::to_value(&ind).unwrap();
        assert_eq!(json["hourly_closes"][0], serde_json::json!([60_000, 44.34]), "[ms, price] pairs");
        let long: Vec<(u64, f64)> = (0..100).map(|i| (i * HOUR_MS, 50.0 + (i % 5) as f64)).collect();
        let chart = indicators(&long).unwrap().hourly_closes;
        assert_eq!((chart.len(), chart[0].0, chart[47].0), (CHART_HOURS, 52 * HOUR_MS, 99 * HOUR_MS), "the last 48");
        assert_eq!(indicators(&prices[..14]), None);
    }
}
