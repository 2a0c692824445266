//! The Worker's HTTP answers: JSON bodies, API errors (logged as the service's failures or as
//! refusals, never with a credential) and the dashboard's files with their ETags.

use crate::assets::{self, StaticFile};
use crate::error::ApiError;
use tickwire_hub::log::{self, Event, Level};
use worker::*;

/// What a cold route answers: a response, or the API error it becomes.
pub type Answer = std::result::Result<Response, ApiError>;

/// A socket from a page whose origin is not in `ALLOWED_ORIGINS` (logged with the origin).
pub const ORIGIN_NOT_ALLOWED: &str = "origin_not_allowed";

/// A dashboard file: revalidated on every load (`no-cache` with its ETag), so a deploy shows at
/// once and an unchanged file costs a 304.
pub fn static_file(req: &Request, file: &StaticFile, head: bool) -> Answer {
    let if_none_match = req.headers().get("if-none-match").ok().flatten();
    let build = || -> Result<Response> {
        let resp = if assets::not_modified(file, if_none_match.as_deref()) {
            Response::empty()?.with_status(304)
        } else if head {
            Response::empty()?
        } else {
            Response::from_bytes(file.body.to_vec())?
        };
        let headers = resp.headers();
        headers.set("content-type", file.content_type)?;
        headers.set("etag", file.etag)?;
        headers.set("cache-control", "no-cache")?;
        Ok(resp)
    };
    build().map_err(|e| ApiError::Internal(format!("response: {e}")))
}

/// The API error's JSON answer, logged when it is the service's failure (5xx, or any error
/// with detail) or a refusal of credentials (401, 403: `request_refused`, never the credential).
pub fn error_response(path: &str, origin: Option<&str>, e: &ApiError) -> Result<Response> {
    let line = match (e.detail(), e.status()) {
        (Some(d), _) => Some(log::worker(Level::Error, Event::RequestFailed).detail(d)),
        (None, 500..) => Some(log::worker(Level::Error, Event::RequestFailed).detail(e.message())),
        (None, 401 | 403) if e.code() == ORIGIN_NOT_ALLOWED => Some(
            log::worker(Level::Warn, Event::RequestRefused)
                .detail(format_args!("refused origin {:?}", origin.unwrap_or_default())),
        ),
        (None, 401 | 403) => Some(log::worker(Level::Warn, Event::RequestRefused)),
        (None, _) => None,
    };
    if let Some(line) = line {
        line.path(path).kind(e.code()).emit();
    }
    let resp = Response::ok(e.body())?.with_status(e.status());
    let headers = resp.headers();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "no-store")?;
    match e {
        ApiError::MethodNotAllowed { allow } => headers.set("allow", allow)?,
        ApiError::UpgradeRequired => headers.set("upgrade", "websocket")?,
        ApiError::RateLimited { retry_after_secs } => headers.set("retry-after", &retry_after_secs.to_string())?,
        _ => {}
    }
    Ok(resp)
}

pub fn json_response(body: &impl serde::Serialize, status: u16) -> Answer {
    let text = serde_json::to_string(body).map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
    let build = || -> Result<Response> {
        let resp = Response::ok(text)?.with_status(status);
        resp.headers().set("content-type", "application/json")?;
        resp.headers().set("cache-control", "no-store")?;
        Ok(resp)
    };
    build().map_err(|e| ApiError::Internal(format!("response: {e}")))
}

/// Logs a read `path` could not get from the hub, and what it does instead.
pub fn hub_unreachable(path: &str, e: &ApiError, instead: &str) {
    log::worker(Level::Error, Event::HubUnreachable)
        .path(path)
        .kind(e.code())
        .detail(format_args!("{}; {instead}", e.detail().unwrap_or(e.code())))
        .emit();
}
