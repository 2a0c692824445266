//! Settings read from wrangler vars, with defaults, parsed once per event into typed values.
//!
//! Parsing is pure (it takes a lookup function), so defaults and error messages are unit-tested.

/// Worker configuration. Every field maps to one wrangler var named in its doc (README lists them).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `COINGECKO_BASE_URL`: scheme and host (and optional path prefix) of the CoinGecko API.
    pub coingecko_base_url: String,
    /// `UPSTREAM_TIMEOUT_MS`: how long one upstream request may take before it counts as a timeout.
    pub upstream_timeout_ms: u64,
    /// `KV_MIN_WRITE_SECONDS`: an unchanged value is rewritten to KV at most this often.
    pub kv_min_write_seconds: u64,
    /// `STALE_AFTER_SECONDS`: a value older than this is reported as stale.
    pub stale_after_seconds: u64,
    /// `PUBLISH_TOKEN` (a Worker secret; `.dev.vars` locally): bearer token of `POST /api/publish`.
    /// Unset disables publishing.
    pub publish_token: Option<Token>,
    /// `MAX_PUBLISH_BYTES`: largest accepted publish body.
    pub max_publish_bytes: usize,
    /// The hub's limits, `HUB_SHARDS` among them (the hub reads the same vars).
    pub hub: HubLimits,
}

/// A secret that never shows up in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            coingecko_base_url: "https://api.coingecko.com".to_owned(),
            upstream_timeout_ms: 5_000,
            kv_min_write_seconds: 90,
            stale_after_seconds: 180,
            publish_token: None,
            max_publish_bytes: 64 * 1024,
            hub: HubLimits::default(),
        }
    }
}

pub use durable::settings::SettingError as ConfigError;
use durable::settings::{HubLimits, Vars};

impl Config {
    /// Builds the config from `lookup(var)`; unset or empty vars take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let vars = Vars(lookup);
        let d = Config::default();
        let base = vars.text("COINGECKO_BASE_URL").unwrap_or(d.coingecko_base_url);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ConfigError {
                var: "COINGECKO_BASE_URL",
                problem: "must start with http:// or https://".to_owned(),
            });
        }
        Ok(Config {
            coingecko_base_url: base.trim_end_matches('/').to_owned(),
            upstream_timeout_ms: vars.number("UPSTREAM_TIMEOUT_MS", d.upstream_timeout_ms, 100, 60_000)?,
            kv_min_write_seconds: vars.number("KV_MIN_WRITE_SECONDS", d.kv_min_write_seconds, 0, 86_400)?,
            stale_after_seconds: vars.number("STALE_AFTER_SECONDS", d.stale_after_seconds, 1, 86_400 * 7)?,
            publish_token: vars.text("PUBLISH_TOKEN").map(Token),
            max_publish_bytes: vars.number("MAX_PUBLISH_BYTES", d.max_publish_bytes as u64, 16, 1 << 20)? as usize,
            hub: HubLimits::from_vars(&vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_unset_or_empty() {
        assert_eq!(parse(&[]).unwrap(), Config::default());
        assert_eq!(parse(&[("UPSTREAM_TIMEOUT_MS", "  ")]).unwrap(), Config::default());
    }

    #[test]
    fn values_are_parsed_and_trailing_slash_dropped() {
        let c = parse(&[
            ("COINGECKO_BASE_URL", "http://127.0.0.1:9000/"),
            ("UPSTREAM_TIMEOUT_MS", "750"),
            ("KV_MIN_WRITE_SECONDS", "0"),
            ("STALE_AFTER_SECONDS", "30"),
        ])
        .unwrap();
        assert_eq!(c.coingecko_base_url, "http://127.0.0.1:9000");
        assert_eq!((c.upstream_timeout_ms, c.kv_min_write_seconds, c.stale_after_seconds), (750, 0, 30));
    }

    #[test]
    fn bad_values_name_the_var() {
        let e = parse(&[("UPSTREAM_TIMEOUT_MS", "soon")]).unwrap_err();
        assert_eq!(e.var, "UPSTREAM_TIMEOUT_MS");
        assert!(e.to_string().contains("not a whole number"), "{e}");
        assert_eq!(parse(&[("UPSTREAM_TIMEOUT_MS", "5")]).unwrap_err().var, "UPSTREAM_TIMEOUT_MS");
        assert_eq!(parse(&[("COINGECKO_BASE_URL", "ftp://x")]).unwrap_err().var, "COINGECKO_BASE_URL");
    }
}
