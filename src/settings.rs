//! The Worker's settings, read from wrangler vars into typed values (once per isolate: see
//! `bindings::settings`). The feed and hub settings are the same types the hub reads, so both
//! ends parse a var the same way.

use crate::cors::AllowedOrigins;
use tickwire_hub::auth::Keys;
use tickwire_hub::feeds::settings::FeedSettings;
use tickwire_hub::settings::{HubLimits, Vars};

pub use tickwire_hub::settings::SettingError;

/// The Worker's settings (README lists every var).
#[derive(Debug, Clone)]
pub struct Settings {
    pub feeds: FeedSettings,
    /// The hub's limits, `HUB_SHARDS` among them.
    pub hub: HubLimits,
    /// `PUBLISH_TOKEN` (a Worker secret; `.dev.vars` locally): bearer token of `POST /api/publish`.
    /// Unset disables publishing.
    pub publish_token: Option<Token>,
    /// `ALLOWED_ORIGINS`: browser origins that may open `/ws` and publish.
    pub allowed_origins: AllowedOrigins,
    /// `TOKEN_SECRET` and `TOKEN_SECRET_PREVIOUS` (Worker secrets): what apps' tokens are
    /// verified with. Unset: no token verifies, and private channels are closed to everyone.
    pub keys: Keys,
}

/// The publish token: a secret that never shows up in logs or `Debug` output.
pub use tickwire_hub::settings::Secret as Token;

impl Settings {
    /// Builds the settings from `lookup(var)`; unset or empty vars take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingError> {
        let vars = Vars(lookup);
        Ok(Settings {
            feeds: FeedSettings::from_vars(&vars)?,
            hub: HubLimits::from_vars(&vars)?,
            publish_token: vars.text("PUBLISH_TOKEN").map(Token),
            allowed_origins: AllowedOrigins::parse(
                &vars.text("ALLOWED_ORIGINS").unwrap_or(AllowedOrigins::DEFAULT.into()),
            ),
            keys: Keys::new(vars.text("TOKEN_SECRET").as_deref(), vars.text("TOKEN_SECRET_PREVIOUS").as_deref()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings, SettingError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_unset_or_empty() {
        let c = parse(&[("UPSTREAM_TIMEOUT_MS", "  ")]).unwrap();
        assert_eq!(
            (c.feeds, c.hub, c.publish_token, c.hub.max_publish_bytes),
            (FeedSettings::default(), HubLimits::default(), None, 65_536)
        );
    }

    #[test]
    fn bad_values_name_the_var() {
        let e = parse(&[("UPSTREAM_TIMEOUT_MS", "soon")]).unwrap_err();
        assert_eq!(e.var, "UPSTREAM_TIMEOUT_MS");
        assert!(e.to_string().contains("not a whole number"), "{e}");
        assert_eq!(parse(&[("HUB_SHARDS", "0")]).unwrap_err().var, "HUB_SHARDS");
        assert_eq!(parse(&[("MAX_PUBLISH_BYTES", "1")]).unwrap_err().var, "MAX_PUBLISH_BYTES");
    }

    #[test]
    fn the_publish_token_is_never_printed() {
        let c = parse(&[("PUBLISH_TOKEN", "s3cret"), ("HUB_SHARDS", "4")]).unwrap();
        assert_eq!(c.publish_token, Some(Token("s3cret".into())));
        assert_eq!(c.hub.shards, 4);
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
