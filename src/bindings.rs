//! Adapters over the Worker's bindings: typed settings from wrangler vars, typed KV reads.

use crate::error::ApiError;
use crate::settings::{SettingError, Settings};
use tickwire_hub::feeds::kv::{KvKey, StoredValue, KV_BINDING};
use worker::*;

/// The Worker's settings, parsed once per isolate: vars cannot change while an isolate lives
/// (a new deployment or `wrangler dev` run starts new isolates), and reading them costs a
/// boundary crossing each on every request.
pub fn settings(env: &Env) -> std::result::Result<Settings, SettingError> {
    thread_local! {
        static SETTINGS: std::cell::OnceCell<std::result::Result<Settings, SettingError>> =
            const { std::cell::OnceCell::new() };
    }
    SETTINGS.with(|c| c.get_or_init(|| Settings::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))).clone())
}

pub async fn read(env: &Env, key: &KvKey) -> std::result::Result<Option<StoredValue>, ApiError> {
    env.kv(KV_BINDING)
        .map_err(|e| ApiError::KvUnavailable(format!("binding {KV_BINDING}: {e}")))?
        .get(&key.to_string())
        .json::<StoredValue>()
        .await
        .map_err(|e| ApiError::KvUnavailable(format!("get {key}: {e}")))
}
