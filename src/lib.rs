//! tickwire: live market data at the edge. This crate is the Worker: HTTP routes, the cron
//! trigger, health and metrics text; the hub and the feeds it runs are in the `tickwire-hub`
//! crate (`durable/`).
//! `lib.rs` only wires modules and events together.
//!
//! Module map. Plain Rust, unit-tested on the host: `public_route` (the public routes by
//! path), `error` (the one API error and its JSON body), `settings` (wrangler vars), `cors`,
//! `connect_limit` (the key connects are rate limited by),
//! `publish` (a publish request's headers), `history` (the `/api/history` query), `snapshot`
//! (how `/api/snapshot` presents a value, live or from KV), `health`, `metrics` (Prometheus
//! text), `assets` (the embedded dashboard). Workers glue, wasm32 only: `router`,
//! `answer` (its HTTP answers and the log lines of API errors), `hub_client` (the typed calls to the hub's shards), `cron` (the scheduled event),
//! `bindings` (settings and KV from the environment).

pub mod assets;
#[cfg(target_arch = "wasm32")]
mod bindings;
pub mod connect_limit;
pub mod cors;
pub mod error;
pub mod health;
pub mod history;
pub mod metrics;
pub mod presence;
pub mod public_route;
pub mod publish;
pub mod settings;
pub mod snapshot;

#[cfg(target_arch = "wasm32")]
mod answer;
#[cfg(target_arch = "wasm32")]
mod cron;
#[cfg(target_arch = "wasm32")]
mod hub_client;
#[cfg(target_arch = "wasm32")]
mod router;

// The hub class must be exported from this crate for wrangler to find it.
#[cfg(target_arch = "wasm32")]
pub use tickwire_hub::HubObject;

#[cfg(target_arch = "wasm32")]
mod entry {
    use worker::*;

    #[event(start)]
    fn start() {
        tickwire_hub::log::install_panic_hook();
    }

    // The runtime's request as is: `router` converts it only for the routes that need more.
    #[event(fetch)]
    async fn fetch(
        req: worker_sys::web_sys::Request,
        env: Env,
        _ctx: Context,
    ) -> Result<worker_sys::web_sys::Response> {
        let f = crate::router::handle(req, env);

        f.await
    }

    #[event(scheduled)]
    async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
        crate::cron::run(&env).await;
    }
}
