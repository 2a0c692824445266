//! The hub Durable Object: holds browsers' WebSockets (hibernation API) and broadcasts updates.
//!
//! A shell around [`HubCore`]: it loads the core from storage on first use, hands it each event
//! and carries out what it returns. This file is the router and loading; each route's glue is
//! in a file named after it: `publish.rs`, `connect.rs`, `socket.rs` (a socket's frames and
//! close), `delete.rs` (app channel deletes), `apply.rs` (a replica's `/apply`), `feeds.rs`,
//! `upkeep.rs` (the alarm), `heal.rs` (healing replicas). Writing, group commit's flush and fan-out are the write
//! path, `write.rs`; sending to this object's sockets is `broadcast.rs`; the class the runtime
//! calls is `object.rs`.
//! Client requests the Worker forwards unchanged (`api/route.rs`): `GET /ws` and, on shard 0 (the
//! sequencer), `POST /api/publish` and `DELETE /api/channels/<name>`. The internal routes are
//! [`HubRoute`]s (`api/mod.rs`), reached only through the Worker or another shard.
//!
//! Connects, closes and client frames write nothing to storage: counters live in memory and
//! are written by the alarm (`upkeep.rs`, deciding in `core/upkeep.rs`) or with the next
//! write that happens anyway.

mod answer;
mod apply;
mod broadcast;
mod connect;
mod delete;
mod feeds;
mod heal;
pub(crate) mod object;
mod publish;
mod socket;
mod upkeep;
mod write;

use crate::api::body::{read_capped, Capped};
use crate::api::route;
use crate::api::{HubRefusal, HubRoute, RouteError, Verb, Watch};
use crate::clock::now_ms;
use crate::core::catchup::{ReplayEntries, ReplayRead};
use crate::core::commit::CommitQueue;
use crate::core::history_budget::HistoryRead;
use crate::core::publish::PublishRefusal;
use crate::core::replica_backoff::ReplicaBackoff;
use crate::core::replica_sync::Follow;
use crate::core::socket::ConnectParams;
use crate::core::stats::Internal;
use crate::core::storage_key::{StorageKey, Stored, StoredUpdate};
use crate::core::HubCore;
use crate::feeds::round::RoundKind;
use crate::feeds::settings::FeedConfig;
use crate::hub::broadcast::Subscribers;
use crate::settings::{HubLimits, Vars};
use crate::wire::bodies::Position;
use crate::wire::protocol::{Channel, Epoch, Update, PING, PONG};
use answer::{answer, refused};
use broadcast::attachment;
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
    subscribers: RefCell<Option<Subscribers>>,
    /// The write path's state (`write.rs`).
    pub(crate) write: WritePath,
    /// The alarm as this object last set or read it; None until read once.
    pub(crate) alarm_at: Cell<Option<Option<u64>>>,
    /// How far this replica follows shard 0, and the pull in progress if any (`heal.rs`).
    pub(crate) follow: RefCell<Follow>,
    pub(crate) healing: RefCell<Option<Shared<oneshot::Receiver<bool>>>>,
}

/// What the write path (`write.rs`) keeps between events: the group-commit queue and, on shard
/// 0, the chain of fan-outs, the replicas left out of them and their numbering.
pub(crate) struct WritePath {
    /// Frames written but not yet sent (group commit).
    pub(crate) queue: RefCell<CommitQueue>,
    /// Completes when the last fan-out started has finished: each fan-out waits for the one
    /// before, so replicas receive updates in seq order (see `Hub::fan_out`).
    pub(crate) fanout_tail: RefCell<Option<Shared<oneshot::Receiver<()>>>>,
    /// Replica shards left out of fan-outs after a failure (shard 0 only).
    pub(crate) replicas: RefCell<ReplicaBackoff>,
    /// The number of the last fan-out (shard 0 only; `core/replica_sync.rs`).
    pub(crate) position: RefCell<Position>,
}

impl Hub {
    pub(crate) fn new(state: State, env: Env) -> Self {
        // The runtime answers `ping` with `pong` itself, without waking a hibernating object.
        match WebSocketRequestResponsePair::new(PING, PONG) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => console_error!("hub: could not set the ping auto-response: {e:?}"),
        }
        Self {
            state,
            env,
            core: RefCell::new(None),
            subscribers: RefCell::new(None),
            write: WritePath {
                queue: RefCell::new(CommitQueue::default()),
                fanout_tail: RefCell::new(None),
                replicas: RefCell::new(ReplicaBackoff::default()),
                position: RefCell::new(Position::start(random_hex())),
            },
            alarm_at: Cell::new(None),
            follow: RefCell::new(Follow::default()),
            healing: RefCell::new(None),
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
                let param = |name| route::query_param(query, name);
                let (channels, since, delta) = (param("channels"), param("since"), param("delta"));
                let params =
                    ConnectParams { channels: channels.as_deref(), since: since.as_deref(), delta: delta.as_deref() };
                Ok(self.accept(params).await?.into())
            }
            ("POST", route::PUBLISH) => {
                let max = self.with_core(|core| core.limits.max_publish_bytes)?;
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
            Ok(HubRoute::Stats { shard }) => {
                let sockets = self.state.get_websockets().len() as u64;
                let subscribers = |c: &Channel| self.with_subscribers(|f| f.subscribers(c)) as u64;
                let mut stats = self.with_core(|core| core.stats(shard, sockets, subscribers))?;
                let pages = core::arch::wasm32::memory_size(0) as u64;
                stats.wasm_memory_bytes.insert(shard, pages * WASM_PAGE_BYTES);
                Response::from_json(&stats)
            }
            Err(e) => refuse(&e.refusal()),
        }
    }

    async fn snapshot(&self) -> Result<Response> {
        self.counted(Internal::ApiRead).await;
        if !self.vouch().await {
            return refuse(&HubRefusal::Lagging);
        }
        Response::from_json(&self.with_core(|core| core.snapshot())?)
    }

    /// A page of `channel`'s history after `since`: the core picks the range, storage holds the
    /// updates, the core frames the page.
    async fn history_page(&self, channel: &Channel, since: u64, limit: u64) -> Result<Response> {
        self.counted(Internal::ApiRead).await;
        // A replica that cannot vouch for its state lets the sequencer answer (`heal.rs`).
        if !self.vouch().await {
            return refuse(&HubRefusal::Lagging);
        }
        let Some((from, to)) = self.with_core(|core| core.history_range(channel, since, limit))? else {
            return refuse(&HubRefusal::UnknownChannel);
        };
        let budget = self.with_core(|core| core.limits.history_page_bytes)?;
        let updates = if from <= to { self.history(channel, from, to, budget).await? } else { Vec::new() };
        match self.with_core(|core| core.history_page(channel, since, updates))? {
            Some(page) => Response::from_json(&page),
            None => refuse(&HubRefusal::UnknownChannel),
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

    /// Counts an internal request (see `Counters`); written by the alarm like other counters.
    async fn counted(&self, what: Internal) {
        let _ = self.with_core(|core| core.count_internal(what));
        self.counters_changed().await;
    }

    /// Writes counters that are due and runs the fast BTC poll when due (see `core/upkeep.rs`).
    pub(crate) async fn alarm(&self) -> Result<()> {
        self.load().await?;
        self.alarm_at.set(Some(None)); // it fired: nothing is scheduled now
        self.upkeep().await;
        Ok(())
    }
}

/// An internal request refused: its status and the API's JSON error body (`api::HubRefusal`).
fn refuse(refusal: &HubRefusal) -> Result<Response> {
    Ok(answer(refusal.status(), &refusal.body(), None)?.into())
}

/// The size of a wasm memory page.
const WASM_PAGE_BYTES: u64 = 65_536;

/// A random id (16 hex digits): connection ids and channel epochs.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Fall back to the clock: these only need to differ between connections or resets.
        bytes = now_ms().to_be_bytes();
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
                    entries.push((k, v));
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
    ///
    /// Every event loads the core before anything else (`fetch`, `alarm`, and the socket
    /// events through `load`), so an unloaded core here is a bug, and an error: a default must
    /// never stand in for the stored state, nor keep `load` from reading it later. Paths that
    /// cannot fail (a socket's actions, the flush, the fan-out) skip their work instead; the
    /// error has been logged here.
    pub(crate) fn with_core<T>(&self, f: impl FnOnce(&mut HubCore) -> T) -> Result<T> {
        match self.core.borrow_mut().as_mut() {
            Some(core) => Ok(f(core)),
            None => {
                console_error!("hub: the core was used before it was loaded");
                Err(Error::RustError("hub: the core was used before it was loaded".into()))
            }
        }
    }

    /// Runs `f` on the subscriber index, first rebuilding it from the sockets' attachments if
    /// the object has just woken up.
    pub(crate) fn with_subscribers<T>(&self, f: impl FnOnce(&Subscribers) -> T) -> T {
        let mut guard = self.subscribers.borrow_mut();
        let index = guard.get_or_insert_with(|| {
            Subscribers::rebuild(self.state.get_websockets().into_iter().filter_map(|ws| {
                let meta = attachment(&ws)?;
                (!meta.closing).then_some((meta, ws))
            }))
        });
        f(index)
    }

    pub(crate) fn btc_watchers(&self) -> usize {
        self.with_subscribers(|f| f.subscribers(&Channel::btc()))
    }

    /// Retained updates `from..=to` of `channel` in seq order, as many as fit `budget` bytes
    /// of stored JSON; `HistoryRead` decides how the range is listed and when to stop.
    pub(crate) async fn history(
        &self,
        channel: &Channel,
        from: crate::wire::protocol::Seq,
        to: crate::wire::protocol::Seq,
        budget: usize,
    ) -> Result<Vec<Update>> {
        let mut updates = Vec::new();
        self.read_history(channel, HistoryRead::new(from, to, budget), |stored| {
            match StorageKey::History(channel.clone(), stored.seq).decode(&stored.json) {
                Ok(Stored::History(u)) => updates.push(u),
                Ok(_) => {}
                Err(e) => console_error!("hub: unreadable history entry of {channel}: {e}"),
            }
        })
        .await?;
        Ok(updates)
    }

    /// A catch-up's replay read: the entries as stored text, all within `read.budget` or
    /// `full` (see `HistoryRead::strict`).
    pub(crate) async fn replay_read(&self, channel: &Channel, read: ReplayRead) -> Result<ReplayEntries> {
        let mut updates = Vec::new();
        let strict = HistoryRead::strict(read.from, read.to, read.budget);
        let full = self.read_history(channel, strict, |stored| updates.push(stored)).await?;
        Ok(ReplayEntries { updates, full })
    }

    /// Lists `read`'s range in the batches it asks for and hands `keep` each entry it admits;
    /// answers whether the budget ran out first.
    async fn read_history(
        &self,
        channel: &Channel,
        mut read: HistoryRead,
        mut keep: impl FnMut(StoredUpdate),
    ) -> Result<bool> {
        let end = StorageKey::History(channel.clone(), read.end()).as_string();
        loop {
            let (next, limit) = read.batch();
            let start = StorageKey::History(channel.clone(), next).as_string();
            let mut options = ListOptions::new().start(&start).end(&end);
            if let Some(limit) = limit {
                options = options.limit(limit);
            }
            let map = self.state.storage().list_with_options(options).await?;
            map.for_each(&mut |value, key| {
                let seq = match key.as_string().as_deref().and_then(StorageKey::parse) {
                    Some(StorageKey::History(_, seq)) => Some(seq),
                    _ => None,
                };
                let text = value.as_string();
                if read.offer(seq, text.as_ref().map(String::len)) {
                    if let (Some(seq), Some(json)) = (seq, text) {
                        keep(StoredUpdate { seq, json });
                    }
                }
            });
            if !read.batch_done() {
                return Ok(read.is_full());
            }
        }
    }
}
