//! The hub Durable Object: holds browsers' WebSockets (hibernation API) and broadcasts updates.
//!
//! A thin shell around [`HubCore`]: it loads the core from storage on first use, hands it each
//! event and carries out what it returns. Writing, group commit and fan-out are in
//! `hub_commit.rs`, sockets in `hub_socket.rs`, the feeds in `hub_feeds.rs`, the alarm in
//! `hub_alarm.rs`, and the class the runtime calls in `hub_object.rs`. Client requests the
//! Worker forwards unchanged (`route.rs`): `GET /ws` and, on shard 0 (the sequencer),
//! `POST /api/publish` and `DELETE /api/channels/<name>` (`hub_channels.rs`). Internal routes,
//! reached only through the Worker or another shard: `GET /stats?shard=K`, `GET /watching`,
//! `GET /snapshot` and `GET /history` (the Worker spreads reads over the shards, see
//! `route::read_shard`); on the sequencer also `POST /refresh` (a cron round) and `POST /watch`;
//! on the other shards `POST /apply`.
//!
//! Connects, closes and client frames write nothing to storage: counters live in memory and
//! are written by the alarm (`upkeep.rs`) or with the next write that happens anyway.

use crate::body::{read_capped, Capped};
use crate::commit::CommitQueue;
use crate::fanout::Fanout;
use crate::feed_round::RoundKind;
use crate::history_budget::PageBudget;
use crate::hub_commit::{answer, refused};
use crate::hub_core::HubCore;
use crate::hub_feeds::Watch;
use crate::hub_socket::attachment;
use crate::internal::{Applied, Apply, Internal};
use crate::protocol::{Channel, Epoch, Update};
use crate::publish::PublishRefusal;
use crate::replica_backoff::ReplicaBackoff;
use crate::route;
use crate::settings::{FeedConfig, HubLimits, Vars};
use crate::storage_key::StorageKey;
use futures::channel::oneshot;
use futures::future::Shared;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::worker_sys::web_sys;
use worker::*;

pub(crate) struct Hub {
    pub(crate) state: State,
    pub(crate) env: Env,
    /// Loaded lazily: after hibernation the object is rebuilt and reads storage again.
    core: RefCell<Option<HubCore>>,
    /// Rebuilt lazily from the sockets' attachments after a wake.
    fanout: RefCell<Option<Fanout>>,
    /// Frames written but not yet sent (group commit).
    pub(crate) queue: RefCell<CommitQueue>,
    /// The alarm as this object last set or read it; None until read once.
    pub(crate) alarm_at: Cell<Option<Option<u64>>>,
    /// Completes when the last fan-out started has finished: each fan-out waits for the one
    /// before, so replicas receive updates in seq order (see `Hub::fan_out`).
    pub(crate) fanout_tail: RefCell<Option<Shared<oneshot::Receiver<()>>>>,
    /// Replica shards left out of fan-outs after a failure (shard 0 only).
    pub(crate) replicas: RefCell<ReplicaBackoff>,
}

impl Hub {
    pub(crate) fn new(state: State, env: Env) -> Self {
        // The runtime answers `ping` with `pong` itself, without waking a hibernating object.
        match WebSocketRequestResponsePair::new("ping", "pong") {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => console_error!("hub: could not set the ping auto-response: {e:?}"),
        }
        Self {
            state,
            env,
            core: RefCell::new(None),
            fanout: RefCell::new(None),
            queue: RefCell::new(CommitQueue::default()),
            alarm_at: Cell::new(None),
            fanout_tail: RefCell::new(None),
            replicas: RefCell::new(ReplicaBackoff::default()),
        }
    }

    /// The hot routes (a client's socket, a publish) read the runtime's request as is; the
    /// internal ones go through `worker::Request`.
    pub(crate) async fn fetch(self: Rc<Self>, req: web_sys::Request) -> Result<web_sys::Response> {
        self.load().await?;
        let url = req.url();
        let (path, query) = route::split_url(&url);
        match (req.method().as_str(), path) {
            ("GET", route::WS) => {
                let (channels, since) = (route::query_param(query, "channels"), route::query_param(query, "since"));
                Ok(self.accept(channels.as_deref(), since.as_deref()).await?.into())
            }
            ("POST", route::PUBLISH) => {
                let max = self.with_core(|core| core.limits.max_publish_bytes);
                let Capped::Body(body) = read_capped(&req, max).await? else {
                    return refused(&PublishRefusal::TooLarge { limit: max });
                };
                match self.publish(&body).await? {
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

    /// The internal routes, reached only from the Worker or another shard.
    async fn internal(&self, mut req: Request) -> Result<Response> {
        let url = req.inner().url();
        let (path, query) = route::split_url(&url);
        let param = |name: &str| route::query_param(query, name);
        match (req.method(), path) {
            (Method::Post, "/refresh") => Response::from_json(&self.run_round(RoundKind::Full).await?),
            (Method::Get, "/snapshot") => {
                self.counted(Internal::ApiRead).await;
                Response::from_json(&self.with_core(|core| core.snapshot()))
            }
            (Method::Get, "/history") => {
                self.counted(Internal::ApiRead).await;
                let channel = param("channel").and_then(|c| Channel::parse(&c).ok());
                let number = |k: &str| param(k).and_then(|v| v.parse::<u64>().ok());
                let (Some(channel), since, limit) =
                    (channel, number("since").unwrap_or(0), number("limit").unwrap_or(100))
                else {
                    return Response::error("bad history query", 400);
                };
                let Some((from, to)) = self.with_core(|core| core.history_range(&channel, since, limit)) else {
                    return Response::error("no such channel", 404);
                };
                let budget = self.with_core(|core| core.limits.history_page_bytes);
                let updates = if from <= to { self.history(&channel, from, to, budget).await? } else { Vec::new() };
                match self.with_core(|core| core.history_page(&channel, since, updates)) {
                    Some(page) => Response::from_json(&page),
                    None => Response::error("no such channel", 404),
                }
            }
            (Method::Post, "/watch") => {
                let Ok(watch) = req.json::<Watch>().await else { return Response::error("bad watch body", 400) };
                self.counted(Internal::WatchReport).await;
                self.note_watcher(watch.shard, watch.watching).await?;
                Response::ok("ok")
            }
            (Method::Get, "/watching") => Response::ok(self.btc_watchers().to_string()),
            (Method::Post, "/apply") => {
                let Ok(apply) = req.json::<Apply>().await else {
                    return Response::error("bad apply body", 400);
                };
                let (delay, shards) = self.with_core(|core| (core.limits.test_apply_delay_ms, core.limits.shards));
                if delay > 0 && self.shard() + 1 == shards {
                    Delay::from(std::time::Duration::from_millis(delay)).await;
                }
                self.counted(Internal::FanoutApplied).await;
                let fx = self.with_core(|core| core.apply(apply));
                self.execute(fx).await?;
                Response::from_json(&Applied { btc_watchers: self.btc_watchers() as u64 })
            }
            (Method::Get, "/stats") => {
                let shard = param("shard").and_then(|s| s.parse().ok()).unwrap_or(0);
                let sockets = self.state.get_websockets().len() as u64;
                Response::from_json(&self.with_core(|core| core.stats(shard, sockets)))
            }
            _ => Response::error("no such hub route", 404),
        }
    }

    /// Counts an internal request (see `Counters`); written by the alarm like other counters.
    async fn counted(&self, what: Internal) {
        self.with_core(|core| core.count_internal(what));
        self.counters_changed().await;
    }

    /// Writes counters that are due and runs the fast BTC poll when due (see `upkeep.rs`).
    pub(crate) async fn alarm(&self) -> Result<()> {
        self.load().await?;
        self.alarm_at.set(Some(None)); // it fired: nothing is scheduled now
        self.upkeep().await;
        Ok(())
    }
}

/// A random id (16 hex digits): connection ids and channel epochs.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Fall back to the clock: these only need to differ between connections or resets.
        bytes = Date::now().as_millis().to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn new_epoch() -> Epoch {
    Epoch(random_hex())
}

impl Hub {
    /// Reads channel metas, counters and upstream bookkeeping once per object lifetime.
    pub(crate) async fn load(&self) -> Result<()> {
        if self.core.borrow().is_some() {
            return Ok(());
        }
        let storage = self.state.storage();
        let mut entries = Vec::new();
        let metas = storage.list_with_options(ListOptions::new().prefix(StorageKey::META_PREFIX)).await?;
        let others = storage.get_multiple(StorageKey::SINGLETONS.to_vec()).await?;
        for map in [metas, others] {
            map.for_each(&mut |value, key| {
                if let (Some(k), Some(v)) = (key.as_string(), value.as_string()) {
                    match serde_json::from_str(&v) {
                        Ok(json) => entries.push((k, json)),
                        Err(e) => console_error!("hub: stored {k} is not JSON ({e}); starting it afresh"),
                    }
                }
            });
        }
        let vars = Vars(|name: &str| self.env.var(name).ok().map(|v| v.to_string()));
        let limits = HubLimits::from_vars(&vars).unwrap_or_else(|e| {
            console_error!("hub: {e}; using default limits");
            HubLimits::default()
        });
        let feeds = FeedConfig::from_vars(&vars).unwrap_or_else(|e| {
            console_error!("hub: {e}; using default feed settings");
            FeedConfig::default()
        });
        let mut core = HubCore::new(limits, feeds);
        for c in core.load(entries) {
            console_error!("hub: stored {} is unreadable ({}); starting it afresh", c.key, c.error);
        }
        // Another event may have loaded it while we awaited storage; keep the first.
        self.core.borrow_mut().get_or_insert(core);
        Ok(())
    }

    /// Runs `f` on the loaded core. The borrow never spans an await.
    pub(crate) fn with_core<T>(&self, f: impl FnOnce(&mut HubCore) -> T) -> T {
        let mut guard = self.core.borrow_mut();
        f(guard.get_or_insert_with(|| HubCore::new(HubLimits::default(), FeedConfig::default())))
    }

    /// Runs `f` on the subscriber index, first rebuilding it from the sockets' attachments if
    /// the object has just woken up.
    pub(crate) fn with_fanout<T>(&self, f: impl FnOnce(&Fanout) -> T) -> T {
        let mut guard = self.fanout.borrow_mut();
        let fanout = guard.get_or_insert_with(|| {
            Fanout::rebuild(self.state.get_websockets().into_iter().filter_map(|ws| {
                let meta = attachment(&ws)?;
                (!meta.closing).then_some((meta, ws))
            }))
        });
        f(fanout)
    }

    pub(crate) fn btc_watchers(&self) -> usize {
        self.with_fanout(|f| f.subscribers(&Channel::btc()))
    }

    /// Retained updates `from..=to` of `channel` in seq order, as many as fit `budget` bytes
    /// of stored JSON (see `PageBudget`). Read in batches when bounded, so no more than one
    /// batch past the budget is ever held; a socket's catch-up (unbounded, at most
    /// `HISTORY_LEN` entries) takes one call.
    pub(crate) async fn history(
        &self,
        channel: &Channel,
        from: crate::protocol::Seq,
        to: crate::protocol::Seq,
        budget: usize,
    ) -> Result<Vec<Update>> {
        const BATCH: u32 = 16;
        let bounded = budget != usize::MAX;
        let end = StorageKey::History(channel.clone(), to.next()).as_string();
        let (mut page, mut updates, mut next) = (PageBudget::new(budget), Vec::new(), from);
        loop {
            let before = next;
            let start = StorageKey::History(channel.clone(), next).as_string();
            let mut options = ListOptions::new().start(&start).end(&end);
            if bounded {
                options = options.limit(BATCH as usize);
            }
            let map = self.state.storage().list_with_options(options).await?;
            let (mut read, mut full) = (0, false);
            map.for_each(&mut |value, key| {
                read += 1;
                if full {
                    return;
                }
                if let Some(StorageKey::History(_, seq)) = key.as_string().as_deref().and_then(StorageKey::parse) {
                    next = seq.next();
                }
                let Some(text) = value.as_string() else { return };
                if !page.admit(text.len()) {
                    full = true;
                    return;
                }
                match serde_json::from_str::<Update>(&text) {
                    Ok(u) => updates.push(u),
                    Err(e) => console_error!("hub: unreadable history entry of {channel}: {e}"),
                }
            });
            // A batch whose keys all failed to parse would start the next one in the same place.
            if full || !bounded || read < BATCH || next > to || next == before {
                return Ok(updates);
            }
        }
    }
}
