//! The Worker's side of the hub's internal API: which shard object to reach and the typed calls.

use crate::error::ApiError;
use tickwire_hub::api::route;
use tickwire_hub::api::stub;
use tickwire_hub::api::HubStats;
use tickwire_hub::api::{HubRefusal, HubRoute, RoundReport, SEQUENCER};
use tickwire_hub::log::{self, Event, Level};
use tickwire_hub::wire::bodies::ChannelSnapshot;
use tickwire_hub::wire::bodies::HistoryPage;
use tickwire_hub::wire::protocol::Channel;
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::{self, web_sys};
use worker::*;

fn stub(env: &Env, shard: u32) -> std::result::Result<Stub, ApiError> {
    stub::stub(env, shard).map_err(|e| ApiError::HubUnavailable(format!("shard {shard}: {e}")))
}

/// Hands a client's request to a shard unchanged (`route::WS`, `route::PUBLISH`, `route::CHANNELS`) and returns its
/// answer as is: no copy of the request, its body or its answer on the way.
async fn forward(env: &Env, shard: u32, req: &web_sys::Request) -> std::result::Result<web_sys::Response, ApiError> {
    let fail = |e: JsValue| ApiError::HubUnavailable(format!("shard {shard}: {e:?}"));
    let stub: worker_sys::DurableObject = stub(env, shard)?.into_rpc();
    let answer = JsFuture::from(stub.fetch_with_request(req).map_err(fail)?).await.map_err(fail)?;
    answer.dyn_into().map_err(fail)
}

/// Hands a client's WebSocket upgrade request (with its `channels`/`since` query) to a shard.
pub async fn connect(
    env: &Env,
    req: &web_sys::Request,
    shard: u32,
) -> std::result::Result<web_sys::Response, ApiError> {
    forward(env, shard, req).await
}

/// Runs one refresh round on the sequencer and returns its report.
pub async fn refresh(env: &Env) -> std::result::Result<RoundReport, ApiError> {
    call(env, SEQUENCER, &HubRoute::Refresh).await
}

/// A page of a channel's history; `None` for a channel that does not exist. A replica's page
/// is taken unless it restarted its history after the page's start (`truncated`), so spreading
/// reads never makes an answer less complete.
pub async fn history(
    env: &Env,
    q: &crate::history::HistoryQuery,
    shards: u32,
    random: u32,
) -> std::result::Result<Option<HistoryPage>, ApiError> {
    let route = HubRoute::History { channel: q.channel.clone(), since: q.since, limit: q.limit };
    spread_read(env, &route, route::read_shard(shards, random), |page: &HistoryPage| !page.truncated).await
}

/// The latest value of each built-in channel. A replica's answer is taken only when it has all
/// of them (a new replica has not heard a round yet).
pub async fn snapshot(env: &Env, shards: u32, random: u32) -> std::result::Result<Vec<ChannelSnapshot>, ApiError> {
    let complete = |values: &Vec<ChannelSnapshot>| values.len() == Channel::BUILT_IN.len();
    spread_read(env, &HubRoute::Snapshot, route::read_shard(shards, random), complete)
        .await?
        .ok_or_else(|| ApiError::Internal("shard 0 /snapshot: unknown channel".to_owned()))
}

/// A read of channel data from `shard` (picked at random, `route::read_shard`), answered by the
/// sequencer instead when that replica does not know the thing (yet), cannot be reached, or
/// gives an answer `good` does not take.
async fn spread_read<T: serde::de::DeserializeOwned>(
    env: &Env,
    route: &HubRoute,
    shard: u32,
    good: impl Fn(&T) -> bool,
) -> std::result::Result<Option<T>, ApiError> {
    if shard != SEQUENCER {
        match call_or_missing::<T>(env, shard, route).await {
            Ok(Some(answer)) if good(&answer) => return Ok(Some(answer)),
            Ok(_) => {}
            Err(e) => log::worker(Level::Warn, Event::ReadFallback)
                .shard(shard)
                .kind(e.code())
                .detail(format_args!("{route:?}: {}; asking the sequencer", e.detail().unwrap_or(e.code())))
                .emit(),
        }
    }
    call_or_missing(env, SEQUENCER, route).await
}

/// Hands a client's request for the sequencer (`route::PUBLISH`, `route::CHANNELS`), body
/// unread, to it, and returns its answer (for a publish 202 with `{"channel","seq"}`, or the
/// API's JSON error with `Retry-After` when overloaded), complete but for CORS headers.
pub async fn forward_to_sequencer(
    env: &Env,
    req: &web_sys::Request,
) -> std::result::Result<web_sys::Response, ApiError> {
    forward(env, SEQUENCER, req).await
}

/// A presence channel's members and count (`GET /api/presence`), from the sequencer.
pub async fn presence(env: &Env, channel: Channel) -> std::result::Result<serde_json::Value, ApiError> {
    call(env, SEQUENCER, &HubRoute::Presence { channel }).await
}

/// Every shard's stats, fetched in parallel and merged. Any shard failing fails the whole read:
/// a partial sum would under-report sockets without saying so.
pub async fn stats(env: &Env, shards: u32) -> std::result::Result<HubStats, ApiError> {
    let reads = (0..shards).map(|k| async move { call::<HubStats>(env, k, &HubRoute::Stats { shard: k }).await });
    let mut total = HubStats::default();
    for stats in futures::future::join_all(reads).await {
        total.merge(stats?);
    }
    Ok(total)
}

async fn call<T: serde::de::DeserializeOwned>(
    env: &Env,
    shard: u32,
    route: &HubRoute,
) -> std::result::Result<T, ApiError> {
    call_or_missing(env, shard, route)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("shard {shard} {route:?}: unknown channel")))
}

/// A hub call whose `unknown_channel` refusal means "no such thing" (`None`), not a failure.
/// Any other refusal is a request this Worker should never have built (500); an answer that is
/// no refusal at all (the object failed, or is unreachable) is 503.
async fn call_or_missing<T: serde::de::DeserializeOwned>(
    env: &Env,
    shard: u32,
    route: &HubRoute,
) -> std::result::Result<Option<T>, ApiError> {
    let unavailable = |e: String| ApiError::HubUnavailable(format!("shard {shard} {route:?}: {e}"));
    let req = stub::request(route, None).map_err(|e| ApiError::Internal(format!("{route:?}: {e}")))?;
    let mut resp = stub(env, shard)?.fetch_with_request(req).await.map_err(|e| unavailable(e.to_string()))?;
    let status = resp.status_code();
    if status == 200 {
        return resp.json().await.map(Some).map_err(|e| unavailable(e.to_string()));
    }
    let text = resp.text().await.unwrap_or_default();
    match HubRefusal::from_answer(status, &text) {
        Some(HubRefusal::UnknownChannel) => Ok(None),
        Some(refusal) => {
            Err(ApiError::Internal(format!("shard {shard} {route:?}: refused {}: {text}", refusal.code())))
        }
        None => Err(unavailable(format!("HTTP {status}: {text}"))),
    }
}
