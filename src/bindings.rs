//! Adapters over the Worker's bindings: typed config from wrangler vars, typed KV reads.

use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use tickwire_hub::feeds::kv::{KvKey, StoredValue, KV_BINDING};
use worker::*;

/// The Worker's config, parsed once per isolate: vars cannot change while an isolate lives
/// (a new deployment or `wrangler dev` run starts new isolates), and reading them costs a
/// boundary crossing each on every request.
pub fn config(env: &Env) -> std::result::Result<Config, ConfigError> {
    thread_local! {
        static CONFIG: std::cell::OnceCell<std::result::Result<Config, ConfigError>> =
            const { std::cell::OnceCell::new() };
    }
    CONFIG.with(|c| c.get_or_init(|| Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))).clone())
}

pub async fn read(env: &Env, key: &KvKey) -> std::result::Result<Option<StoredValue>, ApiError> {
    env.kv(KV_BINDING)
        .map_err(|e| ApiError::KvUnavailable(format!("binding {KV_BINDING}: {e}")))?
        .get(&key.to_string())
        .json::<StoredValue>()
        .await
        .map_err(|e| ApiError::KvUnavailable(format!("get {key}: {e}")))
}
