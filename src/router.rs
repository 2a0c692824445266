//! HTTP routes of the Worker: the API, sockets, health, metrics and the dashboard's files
//! (`assets.rs`); their answers are built in `answer.rs`.

use crate::answer::{error_response, hub_unreachable, json_response, static_file, Answer, ORIGIN_NOT_ALLOWED};
use crate::assets;
use crate::bindings;
use crate::connect_limit;
use crate::cors::{self, AllowedOrigins};
use crate::error::ApiError;
use crate::health;
use crate::hub_client;
use crate::metrics;
use crate::public_route::PublicRoute;
use crate::publish;
use crate::settings::Settings;
use crate::snapshot::SnapshotEntry;
use serde_json::{json, Map, Value};
use tickwire_hub::api::body::{read_capped, Capped};
use tickwire_hub::api::route;
use tickwire_hub::clock::{Clock, SystemClock};
use tickwire_hub::feeds::kv::KvKey;
use tickwire_hub::log::{self, Event, Level};
use tickwire_hub::wire::protocol::Channel;
use worker::worker_sys::web_sys;
use worker::*;

/// The version `/health` and `tickwire_build_info` report.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Sockets and publishes (the hot routes) are handled on the runtime's request and forwarded
/// to the hub unchanged; every other route goes through `worker::Request`. Reading a request
/// only as far as routing needs matters here: `worker::Request::from` also reads `request.cf`,
/// which the runtime builds on first access, on every request.
///
/// A runtime call that fails while the answer is built (a header the runtime refuses, say)
/// becomes a logged 500 `internal` here, not an error for workers-rs to print as free text.
pub async fn handle(req: web_sys::Request, env: Env) -> Result<web_sys::Response> {
    let url = req.url();
    match respond(req, env, &url).await {
        Ok(resp) => Ok(resp),
        Err(e) => {
            let path = route::split_url(&url).0;
            Ok(error_response(path, None, &ApiError::Internal(format!("answering: {e}")))?.into())
        }
    }
}

async fn respond(req: web_sys::Request, env: Env, url: &str) -> Result<web_sys::Response> {
    let (path, query) = route::split_url(url);
    let origin = req.headers().get("origin").ok().flatten();
    let target = PublicRoute::parse(path);
    let api = target.api();
    let settings = bindings::settings(&env);
    let result = match settings.as_ref() {
        Err(e) => Err(ApiError::Settings(e.clone())),
        Ok(settings) => match (target, req.method().as_str()) {
            (PublicRoute::Ws, _) => ws(&req, &env, settings, query, origin.as_deref()).await,
            (PublicRoute::Publish, "POST") => publish(&req, &env, settings).await,
            (PublicRoute::Channel(_), "DELETE") => delete_channel(&req, &env, settings).await,
            // Boxed so that the reads' futures (all shards' stats, KV fallbacks) do not size
            // the future of every request.
            _ => Box::pin(cold(Request::from(req), &env, settings, path, target)).await.map(web_sys::Response::from),
        },
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => error_response(path, origin.as_deref(), &e)?.into(),
    };
    // CORS headers on every API answer, errors included, so browsers can read the error body.
    let Some(route) = api else { return Ok(resp) };
    let allowed =
        settings.map(|c| c.allowed_origins).unwrap_or_else(|_| AllowedOrigins::parse(AllowedOrigins::DEFAULT));
    let cors = cors::headers(route, origin.as_deref(), &allowed);
    if cors.is_empty() {
        return Ok(resp);
    }
    // A hub's answer has immutable headers: the CORS ones go on a copy (status, headers, body).
    let headers = web_sys::Headers::new_with_headers(&resp.headers())?;
    for (name, value) in cors {
        headers.set(name, &value)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(resp.status());
    init.set_headers(&headers);
    Ok(web_sys::Response::new_with_opt_readable_stream_and_init(resp.body().as_ref(), &init)?)
}

async fn cold(req: Request, env: &Env, settings: &Settings, path: &str, target: PublicRoute<'_>) -> Answer {
    let method = req.method();
    if let (Method::Get | Method::Head, Some(file)) = (&method, assets::find(path)) {
        return static_file(&req, file, method == Method::Head);
    }
    match (target, method) {
        (_, Method::Options) if target.api().is_some() => {
            let resp = Response::empty().map_err(|e| ApiError::Internal(format!("response: {e}")))?.with_status(204);
            Ok(resp)
        }
        (PublicRoute::Health, Method::Get) => health(env, settings, path).await,
        (PublicRoute::Metrics, Method::Get) => metrics_text(env, settings, path).await,
        (PublicRoute::Snapshot, Method::Get) => snapshot(env, settings, path).await,
        (PublicRoute::History, Method::Get) => history(&req, env, settings).await,
        (PublicRoute::Channels, Method::Get) => channels(env, settings).await,
        (PublicRoute::Presence, Method::Get) => presence(&req, env, settings).await,
        _ => Err(target.allow().map_or(ApiError::NotFound, |allow| ApiError::MethodNotAllowed { allow })),
    }
}

async fn ws(
    req: &web_sys::Request,
    env: &Env,
    settings: &Settings,
    query: &str,
    origin: Option<&str>,
) -> std::result::Result<web_sys::Response, ApiError> {
    if req.method() != "GET" {
        return Err(ApiError::MethodNotAllowed { allow: "GET" });
    }
    let upgrade = req.headers().get("upgrade").ok().flatten().unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::UpgradeRequired);
    }
    if !settings.allowed_origins.allows(origin) {
        return Err(ApiError::Forbidden { code: ORIGIN_NOT_ALLOWED, message: "this origin may not open sockets here" });
    }
    admit_connect(req, env).await?;
    let requested = route::query_param(query, "shard").and_then(|v| v.parse::<u32>().ok());
    let shard = route::socket_shard(requested, settings.hub.shards, random_u32());
    hub_client::connect(env, req, shard).await
}

thread_local! {
    /// Whether this isolate has logged a failing connect limiter (see `admit_connect`).
    static LIMITER_FAILURE_LOGGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Counts a connect against its client address with the platform's rate limiter
/// (`connect_limit`), before any hub is touched: over the limit, 429 `rate_limited`. A limiter
/// that is missing or fails is logged (once per isolate) and lets the connect through: the hub's own bounds still
/// hold, and a configuration slip must not take every socket down.
async fn admit_connect(req: &web_sys::Request, env: &Env) -> std::result::Result<(), ApiError> {
    let address = req.headers().get("cf-connecting-ip").ok().flatten();
    let key = connect_limit::client_key(address.as_deref());
    let outcome = match env.rate_limiter(connect_limit::BINDING) {
        Ok(limiter) => limiter.limit(key).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(outcome) if !outcome.success => {
            Err(ApiError::RateLimited { retry_after_secs: connect_limit::RETRY_AFTER_SECS })
        }
        Ok(_) => Ok(()),
        Err(e) => {
            // Let through: the limit guards the hub, it is no reason to refuse every client. A
            // binding that is missing (or failing) stays so, so this isolate says it once, not
            // once per connect.
            if !LIMITER_FAILURE_LOGGED.replace(true) {
                log::worker(Level::Error, Event::ConnectLimiterFailed)
                    .path(route::WS)
                    .detail(format_args!(
                        "the connect limiter {} failed: {e}; connects are let through",
                        connect_limit::BINDING
                    ))
                    .emit();
            }
            Ok(())
        }
    }
}

/// A random number for spreading sockets and reads over the shards (the clock if the runtime
/// has no randomness to give, which only makes the spread less even).
fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return SystemClock.now_ms() as u32;
    }
    u32::from_le_bytes(b)
}

/// Checks what the headers say, then hands the request, body unread, to the sequencer, which
/// checks and sequences the body and answers as the API documents (202, or a JSON error); that
/// answer is passed through. The body is parsed once, by the object that needs it.
async fn publish(
    req: &web_sys::Request,
    env: &Env,
    settings: &Settings,
) -> std::result::Result<web_sys::Response, ApiError> {
    let headers = req.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let (auth, ct, len) = (header("authorization"), header("content-type"), header("content-length"));
    let checked = publish::PublishHeaders {
        authorization: auth.as_deref(),
        content_type: ct.as_deref(),
        content_length: len.as_deref(),
    };
    let max = settings.hub.max_publish_bytes;
    let now_s = SystemClock.now_ms() / 1000;
    publish::check_headers(checked, settings.publish_token.as_ref(), &settings.keys, now_s, max)?;
    if len.is_some() {
        return hub_client::forward_to_sequencer(env, req).await;
    }
    // A body of unannounced size (chunked) is read here, up to the cap, and forwarded whole:
    // forwarded as a stream, the runtime would go on pumping it into the hub after the hub had
    // refused it, and fail (uncaught) once the answer was sent.
    let unreadable = |e: Error| {
        log::worker(Level::Warn, Event::RequestFailed)
            .path(route::PUBLISH)
            .kind("bad_request")
            .detail(format_args!("reading a chunked body: {e}"))
            .emit();
        ApiError::BadRequest { code: "bad_request", message: "the request body could not be read".to_owned() }
    };
    match read_capped(req, max).await.map_err(unreadable)? {
        Capped::TooLarge => Err(ApiError::PayloadTooLarge { limit: max }),
        Capped::Body(body) => {
            let req = buffered(req, &body).map_err(|e| ApiError::Internal(format!("forwarding a publish: {e}")))?;
            hub_client::forward_to_sequencer(env, &req).await
        }
    }
}

/// `DELETE /api/channels/<name>`: with the publish token, hands the request to the sequencer,
/// which checks the name, deletes the channel and answers as the API documents (200, or a JSON
/// error).
async fn delete_channel(
    req: &web_sys::Request,
    env: &Env,
    settings: &Settings,
) -> std::result::Result<web_sys::Response, ApiError> {
    let auth = req.headers().get("authorization").ok().flatten();
    publish::authorize(auth.as_deref(), settings.publish_token.as_ref())?;
    hub_client::forward_to_sequencer(env, req).await
}

/// `req` again with `body` in place of its stream.
fn buffered(req: &web_sys::Request, body: &[u8]) -> Result<web_sys::Request> {
    let init = web_sys::RequestInit::new();
    init.set_method(&req.method());
    init.set_headers(&req.headers());
    init.set_body(&js_sys::Uint8Array::from(body));
    Ok(web_sys::Request::new_with_str_and_init(&req.url(), &init)?)
}

async fn health(env: &Env, settings: &Settings, path: &str) -> Answer {
    let kv = bindings::read(env, &KvKey::Latest(Channel::btc())).await.map(|_| ()).map_err(|e| e.message());
    let hub = hub_client::stats(env, settings.hub.shards).await;
    if let Err(e) = &hub {
        hub_unreachable(path, e, "reporting it");
    }
    let mut report =
        health::assess(kv, hub.as_ref().map_err(|e| e.message()), SystemClock.now_ms(), &settings.feeds, VERSION);
    report.tokens = health::Tokens::of(&settings.keys);
    json_response(&report, report.http_status())
}

async fn metrics_text(env: &Env, settings: &Settings, path: &str) -> Answer {
    let stats = match hub_client::stats(env, settings.hub.shards).await {
        Ok(s) => Some(s),
        Err(e) => {
            hub_unreachable(path, &e, "serving the Worker's own series");
            None
        }
    };
    let text = metrics::render(VERSION, stats.as_ref(), SystemClock.now_ms());
    let build = || -> Result<Response> {
        let resp = Response::ok(text)?;
        resp.headers().set("content-type", metrics::CONTENT_TYPE)?;
        resp.headers().set("cache-control", "no-store")?;
        Ok(resp)
    };
    build().map_err(|e| ApiError::Internal(format!("response: {e}")))
}

/// Latest values from the hub; if the hub cannot be reached, from their KV copies (which may
/// lag by up to `KV_MIN_WRITE_SECONDS`, and say so with `"source": "kv"`).
async fn snapshot(env: &Env, settings: &Settings, path: &str) -> Answer {
    let stale_after = |c: &Channel| settings.feeds.channel_stale_after_seconds(c);
    let mut entries: Vec<SnapshotEntry> = match hub_client::snapshot(env, settings.hub.shards, random_u32()).await {
        Ok(values) => {
            let now = SystemClock.now_ms();
            values.into_iter().map(|v| SnapshotEntry::from_hub(stale_after(&v.channel), v, now)).collect()
        }
        Err(e) => {
            hub_unreachable(path, &e, "serving KV");
            let keys: Vec<KvKey> = Channel::built_in().into_iter().map(KvKey::Latest).collect();
            let values = futures::future::join_all(keys.iter().map(|k| bindings::read(env, k))).await;
            let now = SystemClock.now_ms();
            let mut entries = Vec::new();
            for v in values {
                entries.extend(v?.map(|v| SnapshotEntry::from_kv(stale_after(&v.channel), v, now)));
            }
            entries
        }
    };
    let mut out = Map::new();
    for channel in Channel::built_in() {
        let entry = entries.iter().position(|e| e.channel == channel).map(|i| entries.swap_remove(i));
        out.insert(channel.to_string(), serde_json::to_value(entry).unwrap_or(Value::Null));
    }
    json_response(&json!({ "time": crate::snapshot::rfc3339(SystemClock.now_ms()), "channels": out }), 200)
}

/// `GET /api/channels`: the channels that exist, with their seq, last update time and the
/// sockets subscribed over every shard (see `HubStats::channel_list`).
async fn channels(env: &Env, settings: &Settings) -> Answer {
    let stats = hub_client::stats(env, settings.hub.shards).await?;
    let time = crate::snapshot::rfc3339(SystemClock.now_ms());
    json_response(&json!({ "time": time, "channels": stats.channel_list() }), 200)
}

/// `GET /api/presence?channel=C`: the members of presence channel C and their count, for the
/// server (`PUBLISH_TOKEN`) or a token granting `presence` on C; shard 0 keeps the list.
async fn presence(req: &Request, env: &Env, settings: &Settings) -> Answer {
    let url = req.url().map_err(|_| ApiError::BadRequest {
        code: "bad_request",
        message: "the request URL could not be read".to_owned(),
    })?;
    let channel = crate::presence::channel(url.query_pairs())?;
    let authorization = req.headers().get("authorization").ok().flatten();
    let now_s = SystemClock.now_ms() / 1000;
    crate::presence::authorize(
        &channel,
        authorization.as_deref(),
        settings.publish_token.as_ref(),
        &settings.keys,
        now_s,
    )?;
    json_response(&hub_client::presence(env, channel).await?, 200)
}

/// `GET /api/history?channel=C&since=N&limit=M`: retained updates of C after seq N (default 0),
/// at most M (default 100, at most HISTORY_LEN), oldest first.
async fn history(req: &Request, env: &Env, settings: &Settings) -> Answer {
    let url = req.url().map_err(|_| ApiError::BadRequest {
        code: "bad_request",
        message: "the request URL could not be read".to_owned(),
    })?;
    let query = crate::history::HistoryQuery::parse(url.query_pairs(), settings.hub.history_len)?;
    let authorization = req.headers().get("authorization").ok().flatten();
    let now_s = SystemClock.now_ms() / 1000;
    crate::history::authorize(&query.channel, authorization.as_deref(), &settings.keys, now_s)?;
    match hub_client::history(env, &query, settings.hub.shards, random_u32()).await? {
        Some(page) => json_response(&page, 200),
        None => Err(ApiError::UnknownChannel(query.channel.to_string())),
    }
}
