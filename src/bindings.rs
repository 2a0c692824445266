//! Adapters over the Worker's bindings: typed config from wrangler vars, typed KV access.

use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use crate::store::{KvKey, StoredValue};
use worker::*;

/// The KV namespace binding (wrangler.toml).
const KV_BINDING: &str = "TICKWIRE_KV";

pub fn config(env: &Env) -> std::result::Result<Config, ConfigError> {
    Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))
}

fn kv(env: &Env) -> std::result::Result<KvStore, ApiError> {
    env.kv(KV_BINDING).map_err(|e| ApiError::KvUnavailable(format!("binding {KV_BINDING}: {e}")))
}

pub async fn read(env: &Env, key: &KvKey) -> std::result::Result<Option<StoredValue>, ApiError> {
    kv(env)?
        .get(&key.to_string())
        .json::<StoredValue>()
        .await
        .map_err(|e| ApiError::KvUnavailable(format!("get {key}: {e}")))
}

pub async fn write(env: &Env, key: &KvKey, value: &StoredValue) -> std::result::Result<(), ApiError> {
    let fail = |e: String| ApiError::KvUnavailable(format!("put {key}: {e}"));
    let json = serde_json::to_string(value).map_err(|e| fail(e.to_string()))?;
    kv(env)?
        .put(&key.to_string(), json)
        .map_err(|e| fail(e.to_string()))?
        .execute()
        .await
        .map_err(|e| fail(e.to_string()))
}
