//! The object's HTTP answers (wasm glue): JSON, never cached, and a publish refusal with its
//! status, error body and `Retry-After`, as the API documents them.

use crate::api::HubRefusal;
use crate::core::publish::PublishRefusal;
use worker::worker_sys::web_sys;
use worker::*;

/// A publish refusal as the API documents it: its status, JSON error body and, for
/// `overloaded`, `Retry-After`.
pub(crate) fn refused(refusal: &PublishRefusal) -> Result<web_sys::Response> {
    let retry_after = match refusal {
        PublishRefusal::Overloaded { retry_after_secs } => Some(*retry_after_secs),
        _ => None,
    };
    answer(refusal.status(), &refusal.body(), retry_after)
}

/// An answer to a publish, complete as the API documents it (the Worker passes it through,
/// adding only CORS headers for browsers): JSON, never cached.
pub(crate) fn answer(status: u16, json: &str, retry_after_secs: Option<u64>) -> Result<web_sys::Response> {
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "no-store")?;
    if let Some(secs) = retry_after_secs {
        headers.set("retry-after", &secs.to_string())?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    Ok(web_sys::Response::new_with_opt_str_and_init(Some(json), &init)?)
}

/// An internal request refused: its status and the API's JSON error body (`api::HubRefusal`).
pub(crate) fn refuse(refusal: &HubRefusal) -> Result<Response> {
    Ok(answer(refusal.status(), &refusal.body(), None)?.into())
}
