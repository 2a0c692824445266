//! Reaching a hub shard from Workers code: the binding, names and routes `api` declares,
//! turned into a stub and a request in one adapter that the Worker's client, the sequencer's
//! fan-out and a shard's watch reports all use.

use crate::api::{shard_name, HubRoute, Verb, BINDING};
use worker::*;

/// The stub of hub shard `shard`.
pub fn stub(env: &Env, shard: u32) -> Result<Stub> {
    env.durable_object(BINDING)?.get_by_name(&shard_name(shard))
}

/// The request for `route`, carrying `body` as JSON when given.
pub fn request(route: &HubRoute, body: Option<String>) -> Result<Request> {
    let mut init = RequestInit::new();
    init.with_method(match route.verb() {
        Verb::Get => Method::Get,
        Verb::Post => Method::Post,
    });
    if let Some(body) = body {
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        init.with_headers(headers).with_body(Some(body.into()));
    }
    Request::new_with_init(&route.url(), &init)
}

/// Sends `route` (with `body`) to shard `shard` and returns its answer, whatever its status.
pub async fn send(env: &Env, shard: u32, route: &HubRoute, body: Option<String>) -> Result<Response> {
    let req = request(route, body)?;
    stub(env, shard)?.fetch_with_request(req).await
}
