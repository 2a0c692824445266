//! The upstream feeds' settings from wrangler vars: base URLs, the tracked coins, rate limits,
//! breakers, refresh periods and staleness, parsed and range-checked like the hub's limits.

use crate::settings::{Secret, SettingError, Vars};
use std::fmt;

/// Upstream feed settings, read by the hub (which runs the refresh rounds) and the Worker
/// (which reports staleness). README documents each var.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSettings {
    /// `COINGECKO_BASE_URL`.
    pub coingecko_base_url: String,
    /// `ALTERNATIVE_ME_BASE_URL`.
    pub alternative_me_base_url: String,
    /// `COINGECKO_API_KEY` (secret, optional): sent as CoinGecko's demo key header.
    pub coingecko_api_key: Option<Secret>,
    /// `COINS`: CoinGecko ids tracked for `market`; `bitcoin` is always included (for `btc`).
    pub coins: Vec<String>,
    /// `UPSTREAM_TIMEOUT_MS`.
    pub timeout_ms: u64,
    /// `COINGECKO_RPM`, `ALTERNATIVE_ME_RPM`: requests per minute allowed per provider.
    pub coingecko_rpm: u32,
    pub alternative_me_rpm: u32,
    /// `BREAKER_FAILURES`, `BREAKER_COOLDOWN_SECONDS`.
    pub breaker_failures: u32,
    pub breaker_cooldown_seconds: u64,
    /// `RSI_REFRESH_SECONDS`: the price history for RSI is fetched at most this often.
    pub rsi_refresh_seconds: u64,
    /// `FAST_POLL_SECONDS`: the price poll period while someone watches `btc`.
    pub fast_poll_seconds: u64,
    /// `MARKET_REFRESH_SECONDS`: while someone watches `btc`, the market totals and sentiment
    /// are fetched this often too (besides the cron's once a minute).
    pub market_refresh_seconds: u64,
    /// `KV_MIN_WRITE_SECONDS`: a channel's KV copy is rewritten at most this often.
    pub kv_min_write_seconds: u64,
    /// `STALE_AFTER_SECONDS`.
    pub stale_after_seconds: u64,
}

impl Default for FeedSettings {
    fn default() -> Self {
        FeedSettings {
            coingecko_base_url: "https://api.coingecko.com".to_owned(),
            alternative_me_base_url: "https://api.alternative.me".to_owned(),
            coingecko_api_key: None,
            coins: vec!["bitcoin".to_owned(), "ethereum".to_owned(), "solana".to_owned()],
            timeout_ms: 5_000,
            coingecko_rpm: 30,
            alternative_me_rpm: 30,
            breaker_failures: 3,
            breaker_cooldown_seconds: 60,
            rsi_refresh_seconds: 300,
            fast_poll_seconds: 10,
            market_refresh_seconds: 30,
            kv_min_write_seconds: 300,
            stale_after_seconds: 180,
        }
    }
}

impl FeedSettings {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<FeedSettings, SettingError> {
        let d = FeedSettings::default();
        let url = |var: &'static str, default: String| -> Result<String, SettingError> {
            let v = vars.text(var).unwrap_or(default);
            let Some(rest) = v.strip_prefix("http://").or_else(|| v.strip_prefix("https://")) else {
                return Err(SettingError { var, problem: "must start with http:// or https://".to_owned() });
            };
            // The URL is logged when a fetch fails: it must hold no credential. (The problem
            // text never quotes the value.)
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if authority.contains('@') {
                let problem = "must not carry credentials (user:password@); a CoinGecko key goes in COINGECKO_API_KEY";
                return Err(SettingError { var, problem: problem.to_owned() });
            }
            Ok(v.trim_end_matches('/').to_owned())
        };
        let mut coins = match vars.text("COINS") {
            None => d.coins.clone(),
            Some(list) => {
                let ids: Vec<String> = list.split(',').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
                let valid = |c: &String| {
                    c.len() <= 64 && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                };
                if ids.is_empty() || ids.len() > 50 || !ids.iter().all(valid) {
                    let problem = "must be 1-50 CoinGecko ids (a-z, 0-9, '-'), comma-separated".to_owned();
                    return Err(SettingError { var: "COINS", problem });
                }
                ids
            }
        };
        if !coins.iter().any(|c| c == "bitcoin") {
            coins.insert(0, "bitcoin".to_owned());
        }
        Ok(FeedSettings {
            coingecko_base_url: url("COINGECKO_BASE_URL", d.coingecko_base_url)?,
            alternative_me_base_url: url("ALTERNATIVE_ME_BASE_URL", d.alternative_me_base_url)?,
            coingecko_api_key: vars.text("COINGECKO_API_KEY").map(Secret),
            coins,
            timeout_ms: vars.number("UPSTREAM_TIMEOUT_MS", d.timeout_ms, 100, 60_000)?,
            coingecko_rpm: vars.number("COINGECKO_RPM", u64::from(d.coingecko_rpm), 1, 10_000)? as u32,
            alternative_me_rpm: vars.number("ALTERNATIVE_ME_RPM", u64::from(d.alternative_me_rpm), 1, 10_000)? as u32,
            breaker_failures: vars.number("BREAKER_FAILURES", u64::from(d.breaker_failures), 1, 100)? as u32,
            breaker_cooldown_seconds: vars.number("BREAKER_COOLDOWN_SECONDS", d.breaker_cooldown_seconds, 1, 900)?,
            rsi_refresh_seconds: vars.number("RSI_REFRESH_SECONDS", d.rsi_refresh_seconds, 1, 86_400)?,
            fast_poll_seconds: vars.number("FAST_POLL_SECONDS", d.fast_poll_seconds, 1, 3_600)?,
            market_refresh_seconds: vars.number("MARKET_REFRESH_SECONDS", d.market_refresh_seconds, 1, 3_600)?,
            kv_min_write_seconds: vars.number("KV_MIN_WRITE_SECONDS", d.kv_min_write_seconds, 0, 86_400)?,
            stale_after_seconds: vars.number("STALE_AFTER_SECONDS", d.stale_after_seconds, 1, 86_400 * 7)?,
        })
    }

    /// How long a source's value may go unconfirmed before it is stale: `STALE_AFTER_SECONDS`
    /// past its refresh interval. The RSI history is fetched only every `RSI_REFRESH_SECONDS`,
    /// so its grace starts after that; the other sources are fetched every tick.
    pub fn stale_after_seconds_for(&self, source: crate::feeds::status::Source) -> u64 {
        match source {
            crate::feeds::status::Source::CoingeckoChart => self.rsi_refresh_seconds + self.stale_after_seconds,
            _ => self.stale_after_seconds,
        }
    }

    /// [`FeedSettings::stale_after_seconds_for`] of the source that fills `channel` (`market` has
    /// two sources fetched every tick; app channels never go stale this way).
    pub fn channel_stale_after_seconds(&self, channel: &crate::wire::protocol::Channel) -> u64 {
        match channel.as_str() {
            "indicators" => self.stale_after_seconds_for(crate::feeds::status::Source::CoingeckoChart),
            _ => self.stale_after_seconds,
        }
    }

    pub fn breaker(&self) -> crate::feeds::guard::BreakerConfig {
        crate::feeds::guard::BreakerConfig {
            failures: self.breaker_failures,
            cooldown_ms: self.breaker_cooldown_seconds * 1000,
            max_cooldown_ms: 900_000,
            // A probe is one request, so it is over after one timeout; twice that is generous.
            probe_timeout_ms: self.timeout_ms * 2,
        }
    }
}

impl fmt::Display for FeedSettings {
    /// For logs: everything but the API key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "coingecko={} alternative_me={} coins={} key={}",
            self.coingecko_base_url,
            self.alternative_me_base_url,
            self.coins.join(","),
            if self.coingecko_api_key.is_some() { "set" } else { "unset" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Vars(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn feed_config() {
        assert_eq!(FeedSettings::from_vars(&vars(&[])).unwrap(), FeedSettings::default());
        let c =
            FeedSettings::from_vars(&vars(&[("COINS", "ethereum, solana"), ("ALTERNATIVE_ME_BASE_URL", "http://x/")]))
                .unwrap();
        assert_eq!(c.coins, ["bitcoin", "ethereum", "solana"], "bitcoin is always tracked");
        assert_eq!(c.alternative_me_base_url, "http://x");
        assert_eq!(FeedSettings::from_vars(&vars(&[("COINS", "BTC")])).unwrap_err().var, "COINS");
        assert_eq!(
            FeedSettings::from_vars(&vars(&[("COINGECKO_BASE_URL", "ftp://x")])).unwrap_err().var,
            "COINGECKO_BASE_URL"
        );
        let with_credentials = vars(&[("ALTERNATIVE_ME_BASE_URL", "https://me:s3cret@proxy.example/fng")]);
        let e = FeedSettings::from_vars(&with_credentials).unwrap_err();
        assert_eq!(e.var, "ALTERNATIVE_ME_BASE_URL");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        // An `@` after the host is a path, not credentials.
        assert!(FeedSettings::from_vars(&vars(&[("COINGECKO_BASE_URL", "https://x/a@b")])).is_ok());
        let c = FeedSettings::from_vars(&vars(&[("COINGECKO_API_KEY", "k3y")])).unwrap();
        assert!(!c.to_string().contains("k3y") && !format!("{c:?}").contains("k3y"));
        assert_eq!(c.breaker().cooldown_ms, 60_000);
        use crate::feeds::status::Source;
        use crate::wire::protocol::Channel;
        assert_eq!(c.stale_after_seconds_for(Source::Fng), 180);
        assert_eq!(c.stale_after_seconds_for(Source::CoingeckoChart), 480, "fetched every 300 s, then 180 s of grace");
        assert_eq!(c.channel_stale_after_seconds(&Channel::parse("indicators").unwrap()), 480);
        assert_eq!(c.channel_stale_after_seconds(&Channel::btc()), 180);
    }
}
