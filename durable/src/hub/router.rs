//! The hub's router (wasm glue): which route a request names, and the small internal routes
//! (`/stats`, `/watch`); each other route's glue is in a file named after it.

use super::answer::{answer, refuse, refused};
use super::Hub;
use crate::api::body::{read_capped, Capped};
use crate::api::route;
use crate::api::{HubRefusal, HubRoute, RouteError, Verb, Watch};
use crate::core::publish::PublishRefusal;
use crate::core::socket::ConnectParams;
use crate::core::stats::Internal;
use crate::feeds::round::RoundKind;
use crate::wire::protocol::Channel;
use std::rc::Rc;
use worker::worker_sys::web_sys;
use worker::*;

/// The size of a wasm memory page.
const WASM_PAGE_BYTES: u64 = 65_536;

impl Hub {
    /// The hot routes (a client's socket, a publish) read the runtime's request as is; the
    /// internal ones go through `worker::Request`.
    pub(crate) async fn fetch(self: Rc<Self>, req: web_sys::Request) -> Result<web_sys::Response> {
        self.load().await?;
        let url = req.url();
        let (path, query) = route::split_url(&url);
        match (req.method().as_str(), path) {
            ("GET", route::WS) => {
                let param = |name| route::query_param(query, name);
                let (channels, since, delta) = (param("channels"), param("since"), param("delta"));
                let every = param("every");
                let params = ConnectParams {
                    channels: channels.as_deref(),
                    since: since.as_deref(),
                    delta: delta.as_deref(),
                    every: every.as_deref(),
                };
                self.accept(params, param(route::TOKEN_PARAM).as_deref()).await
            }
            ("POST", route::PUBLISH) => {
                let max = self.with_core(|core| core.limits.max_publish_bytes)?;
                let Capped::Body(body) = read_capped(&req, max).await? else {
                    return refused(&PublishRefusal::TooLarge { limit: max });
                };
                let authorization = req.headers().get("authorization").ok().flatten();
                match self.publish(&body, authorization.as_deref()).await? {
                    Ok(published) => answer(202, &serde_json::to_string(&published)?, None),
                    Err(refusal) => refused(&refusal),
                }
            }
            ("DELETE", p) if p.starts_with(route::CHANNELS) => {
                Box::pin(self.delete_channel(&p[route::CHANNELS.len()..])).await
            }
            // Boxed: the internal routes' futures (a refresh round's above all) would otherwise
            // size the future of every event, sockets and publishes included.
            _ => Ok(Box::pin(self.internal(Request::from(req))).await?.into()),
        }
    }

    /// The internal routes ([`HubRoute`]), reached only from the Worker or another shard.
    async fn internal(self: &Rc<Self>, req: Request) -> Result<Response> {
        let url = req.inner().url();
        let (path, query) = route::split_url(&url);
        let route = Verb::from_method(&req.inner().method())
            .ok_or(RouteError::NotFound)
            .and_then(|verb| HubRoute::parse(verb, path, query));
        match route {
            Ok(HubRoute::Refresh) => Response::from_json(&self.run_round(RoundKind::Full).await?),
            Ok(HubRoute::Snapshot) => self.snapshot().await,
            Ok(HubRoute::History { channel, since, limit }) => self.history_page(&channel, since, limit).await,
            Ok(HubRoute::Watch) => self.watch(req).await,
            Ok(HubRoute::Watching) => Response::ok(self.advertised_btc_watchers().to_string()),
            Ok(HubRoute::Apply) => self.apply(req).await,
            Ok(HubRoute::Sync) => self.sync(req).await,
            Ok(HubRoute::Publish) => self.forwarded_publish(req).await,
            Ok(HubRoute::PresenceReport) => self.presence_report(req).await,
            Ok(HubRoute::PresenceLocal) => self.presence_local(),
            Ok(HubRoute::PresenceTable) => self.presence_table().await,
            Ok(HubRoute::PresenceEvents) => self.presence_events(req).await,
            Ok(HubRoute::Presence { channel }) => self.presence_read(&channel).await,
            Ok(HubRoute::Stats { shard }) => {
                let sockets = self.state.get_websockets().len() as u64;
                let subscribers = |c: &Channel| self.with_subscribers(|f| f.subscribers(c)) as u64;
                let mut stats = self.with_core(|core| core.stats(shard, sockets, subscribers))?;
                let pages = core::arch::wasm32::memory_size(0) as u64;
                stats.wasm_memory_bytes.insert(shard, pages * WASM_PAGE_BYTES);
                stats.presence_members = self.presence_total();
                Response::from_json(&stats)
            }
            Err(e) => refuse(&e.refusal()),
        }
    }

    async fn watch(&self, mut req: Request) -> Result<Response> {
        let Ok(watch) = req.json::<Watch>().await else {
            return refuse(&HubRefusal::BadRequest("bad watch body"));
        };
        self.counted(Internal::WatchReport).await;
        self.note_watcher(watch.shard, watch.watching).await?;
        Response::ok("ok")
    }
}
