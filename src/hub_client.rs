//! The Worker's side of the hub's internal API: which object to reach and the typed calls.

use crate::error::ApiError;
use ::durable::internal::{HubStats, Ingest, IngestResult};
use worker::*;

/// The hub's Durable Object binding (wrangler.toml).
const BINDING: &str = "HUB";
/// The one hub object's name; every Worker isolate reaches the same object through it.
const HUB_NAME: &str = "hub";

fn stub(env: &Env) -> std::result::Result<Stub, ApiError> {
    env.durable_object(BINDING)
        .and_then(|ns| ns.get_by_name(HUB_NAME))
        .map_err(|e| ApiError::HubUnavailable(format!("binding {BINDING}: {e}")))
}

/// Hands a client's WebSocket upgrade request to the hub, which accepts the socket.
pub async fn connect(env: &Env, req: Request) -> std::result::Result<Response, ApiError> {
    stub(env)?
        .fetch_with_request(req)
        .await
        .map_err(|e| ApiError::HubUnavailable(format!("ws upgrade: {e}")))
}

pub async fn ingest(env: &Env, ingest: &Ingest) -> std::result::Result<IngestResult, ApiError> {
    let body = serde_json::to_string(ingest)
        .map_err(|e| ApiError::HubUnavailable(format!("encode ingest: {e}")))?;
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    call(env, "/ingest", &init).await
}

pub async fn stats(env: &Env) -> std::result::Result<HubStats, ApiError> {
    call(env, "/stats", RequestInit::new().with_method(Method::Get)).await
}

async fn call<T: serde::de::DeserializeOwned>(
    env: &Env,
    path: &str,
    init: &RequestInit,
) -> std::result::Result<T, ApiError> {
    let fail = |e: String| ApiError::HubUnavailable(format!("{path}: {e}"));
    let req = Request::new_with_init(&format!("https://hub.internal{path}"), init)
        .map_err(|e| fail(e.to_string()))?;
    let mut resp = stub(env)?
        .fetch_with_request(req)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if resp.status_code() != 200 {
        let text = resp.text().await.unwrap_or_default();
        return Err(fail(format!("HTTP {}: {text}", resp.status_code())));
    }
    resp.json().await.map_err(|e| fail(e.to_string()))
}
