//! The hub Durable Object: holds browsers' WebSockets (hibernation API) and broadcasts updates.
//!
//! A thin shell around [`HubCore`]: it loads the core from storage on first use, hands it each
//! event, runs the actions and effects it returns (sends, storage writes, fan-out), and keeps
//! the subscriber index. Internal routes, reached only through the Worker or another shard:
//! `GET /ws`, `GET /stats?shard=K`, `GET /watching`; on shard 0 (the sequencer) also
//! `POST /refresh` (a cron round), `POST /publish`, `POST /watch`, `GET /snapshot`; on the
//! other shards `POST /apply`. The feed side lives in `hub_feeds.rs`.

use crate::channel::Catchup;
use crate::feed_round::RoundKind;
use crate::hub_core::{Effects, HubCore, PublishRefused, StorageKey};
use crate::hub_feeds::Watch;
use crate::index::SubscriberIndex;
use crate::internal::{shard_name, AppPublish, Apply, CloseReason};
use crate::protocol::{Channel, Epoch, Update};
use crate::session::{close_frame, Action, SocketMeta};
use crate::settings::{FeedConfig, HubLimits, Vars};
use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use worker::*;

#[wasm_bindgen]
extern "C" {
    /// The runtime's WebSocket, seen only for `send` of an existing JS value.
    #[wasm_bindgen(js_name = WebSocket)]
    type RawSocket;

    /// `WebSocket.send` taking an existing JS value: a broadcast converts its frame to a JS
    /// string once and hands the same string to every socket, instead of copying the Rust
    /// string into a new JS string per socket as `send_with_str` does. `COMPARE=1 scripts/bench`
    /// measures the two against each other; locally (wrangler dev, one node client process) both
    /// delivered about 15-16k frames/s to 1,000-3,000 sockets, so the client and the dev proxy,
    /// not this copy, bound that setup.
    #[wasm_bindgen(method, catch, js_name = send)]
    fn send_value(this: &RawSocket, data: &JsValue) -> std::result::Result<(), JsValue>;
}

#[cfg(not(feature = "per-socket-copy"))]
fn send_shared(ws: &WebSocket, frame: &JsValue) -> bool {
    let raw: &web_sys::WebSocket = ws.as_ref();
    raw.unchecked_ref::<RawSocket>().send_value(frame).is_ok()
}

/// The per-socket copy the shared send replaces, kept only so scripts/bench can compare them.
#[cfg(feature = "per-socket-copy")]
fn send_shared(ws: &WebSocket, frame: &JsValue) -> bool {
    ws.send_with_str(frame.as_string().unwrap_or_default()).is_ok()
}

#[durable_object]
pub struct Hub {
    pub(crate) state: State,
    pub(crate) env: Env,
    /// Loaded lazily: after hibernation the object is rebuilt and reads storage again.
    core: RefCell<Option<HubCore>>,
    /// Rebuilt lazily from the sockets' attachments after a wake.
    index: RefCell<Option<SubscriberIndex<WebSocket>>>,
    /// Completes when the last fan-out started has finished: each fan-out waits for the one
    /// before, so replicas receive updates in seq order (see [`Hub::fan_out`]).
    fanout_tail: RefCell<Option<Shared<oneshot::Receiver<()>>>>,
}

impl DurableObject for Hub {
    fn new(state: State, env: Env) -> Self {
        // The runtime answers `ping` with `pong` itself, without waking a hibernating object.
        match WebSocketRequestResponsePair::new("ping", "pong") {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => console_error!("hub: could not set the ping auto-response: {e:?}"),
        }
        Self { state, env, core: RefCell::new(None), index: RefCell::new(None), fanout_tail: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.load().await?;
        let url = req.url()?;
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        match (req.method(), url.path()) {
            (Method::Get, "/ws") => {
                self.accept(query.get("channels").map(String::as_str), query.get("since").map(String::as_str)).await
            }
            (Method::Post, "/refresh") => Response::from_json(&self.run_round(RoundKind::Full).await?),
            (Method::Get, "/snapshot") => Response::from_json(&self.with_core(|core| core.snapshot())),
            (Method::Get, "/history") => {
                let channel = query.get("channel").and_then(|c| Channel::parse(c).ok());
                let number = |k: &str| query.get(k).and_then(|v| v.parse::<u64>().ok());
                let (Some(channel), since, limit) =
                    (channel, number("since").unwrap_or(0), number("limit").unwrap_or(100))
                else {
                    return Response::error("bad history query", 400);
                };
                let Some((from, to)) = self.with_core(|core| core.history_range(&channel, since, limit)) else {
                    return Response::error("no such channel", 404);
                };
                let updates = if from <= to { self.history(&channel, from, to).await } else { Vec::new() };
                match self.with_core(|core| core.history_page(&channel, since, updates)) {
                    Some(page) => Response::from_json(&page),
                    None => Response::error("no such channel", 404),
                }
            }
            (Method::Post, "/watch") => {
                let Ok(watch) = req.json::<Watch>().await else { return Response::error("bad watch body", 400) };
                if self.with_core(|core| core.set_watcher(watch.shard, watch.watching)) {
                    self.persist_keys(&[StorageKey::Watchers]).await?;
                }
                if watch.watching {
                    self.ensure_poll().await?;
                }
                Response::ok("ok")
            }
            (Method::Get, "/watching") => {
                Response::ok(self.with_index(|index| index.subscribers(&Channel::btc()).len()).to_string())
            }
            (Method::Post, "/publish") => {
                let Ok(publish) = req.json::<AppPublish>().await else {
                    return Response::error("bad publish body", 400);
                };
                match self.with_core(|core| core.publish_app(publish, new_epoch)) {
                    Ok((published, fx)) => {
                        self.execute(fx).await?;
                        Response::from_json(&published)
                    }
                    Err(PublishRefused::Reserved) => Response::error("built-in channel", 403),
                }
            }
            (Method::Post, "/apply") => {
                let Ok(apply) = req.json::<Apply>().await else {
                    return Response::error("bad apply body", 400);
                };
                let fx = self.with_core(|core| core.apply(apply));
                self.execute(fx).await?;
                Response::ok("applied")
            }
            (Method::Get, "/stats") => {
                let shard = query.get("shard").and_then(|s| s.parse().ok()).unwrap_or(0);
                let sockets = self.state.get_websockets().len() as u64;
                Response::from_json(&self.with_core(|core| core.stats(shard, sockets)))
            }
            _ => Response::error("no such hub route", 404),
        }
    }

    /// The fast BTC poll (see `hub_feeds.rs`).
    async fn alarm(&self) -> Result<Response> {
        self.load().await?;
        self.fast_poll().await?;
        Response::ok("polled")
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        self.load().await?;
        let Some(mut meta) = attachment(&ws) else {
            // A socket without an attachment was never set up by this hub; drop it.
            let (code, reason) = close_frame(CloseReason::Error);
            let _ = ws.close(Some(code), Some(reason));
            return Ok(());
        };
        if meta.closing {
            return Ok(());
        }
        let actions = match message {
            WebSocketIncomingMessage::String(text) => {
                let now = Date::now().as_millis();
                self.with_core(|core| core.message(&mut meta, &text, now))
            }
            WebSocketIncomingMessage::Binary(bytes) => {
                let now = Date::now().as_millis();
                let limits = self.with_core(|core| core.limits);
                let actions = meta.on_binary(bytes.len(), now, &limits);
                self.with_core(|core| core.counted_invalid(&actions));
                actions
            }
        };
        let before = self.with_index(|index| index.subscribers(&Channel::btc()).len());
        self.run(&ws, &mut meta, actions).await;
        // Saved before anything below awaits a fetch (which lets other events for this socket
        // run and save theirs).
        if let Err(e) = ws.serialize_attachment(&meta) {
            console_warn!("hub: could not save the attachment of {}: {e:?}", meta.conn);
        }
        self.btc_watchers_changed(before).await;
        self.persist_keys(&[StorageKey::Counters]).await
    }

    async fn websocket_close(&self, ws: WebSocket, code: usize, _reason: String, _was_clean: bool) -> Result<()> {
        // Complete the closing handshake; 1005/1006 are reserved and cannot be sent back.
        let reply = if (1000..5000).contains(&code) && code != 1005 && code != 1006 { code as u16 } else { 1000 };
        let _ = ws.close(Some(reply), Some("bye"));
        self.gone(&ws, CloseReason::Client).await
    }

    async fn websocket_error(&self, ws: WebSocket, error: Error) -> Result<()> {
        console_warn!("hub: socket error: {error:?}");
        self.gone(&ws, CloseReason::Error).await
    }
}

/// A random id (16 hex digits): connection ids and channel epochs.
fn random_hex() -> String {
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

fn attachment(ws: &WebSocket) -> Option<SocketMeta> {
    ws.deserialize_attachment::<SocketMeta>().ok().flatten()
}

impl Hub {
    /// Reads channel metas, counters and upstream bookkeeping once per object lifetime.
    async fn load(&self) -> Result<()> {
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
    pub(crate) fn with_index<T>(&self, f: impl FnOnce(&mut SubscriberIndex<WebSocket>) -> T) -> T {
        let mut guard = self.index.borrow_mut();
        let index = guard.get_or_insert_with(|| {
            let sockets = self.state.get_websockets().into_iter().filter_map(|ws| {
                let meta = attachment(&ws)?;
                (!meta.closing).then_some((meta, ws))
            });
            SubscriberIndex::from_sockets(sockets)
        });
        f(index)
    }

    async fn accept(&self, channels: Option<&str>, since: Option<&str>) -> Result<Response> {
        // Build the index before this socket exists, so the rebuild cannot count it twice.
        self.with_index(|_| ());
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let (mut meta, actions) = self.with_core(|core| core.connect(random_hex(), channels, since));
        let before = self.with_index(|index| index.subscribers(&Channel::btc()).len());
        self.run(&pair.server, &mut meta, actions).await;
        pair.server.serialize_attachment(&meta)?;
        self.btc_watchers_changed(before).await;
        self.persist_keys(&[StorageKey::Counters]).await?;
        Response::from_websocket(pair.client)
    }

    /// Carries out a socket's actions in order. Failures are logged: one socket's trouble never
    /// fails the event for the object.
    async fn run(&self, ws: &WebSocket, meta: &mut SocketMeta, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(frame) => {
                    if let Err(e) = ws.send_with_str(frame.to_json()) {
                        console_warn!("hub: send to {} failed: {e:?}", meta.conn);
                    }
                }
                Action::Subscribe(channel, since) => {
                    let plan = self.with_core(|core| core.plan(&channel, since.as_ref()));
                    let fetched = match &plan {
                        Catchup::Replay { from, to } => self.history(&channel, *from, *to).await,
                        _ => Vec::new(),
                    };
                    let now = Date::now().as_millis();
                    let frames = self.with_core(|core| core.catchup_frames(&channel, &plan, fetched, now));
                    for frame in frames {
                        if let Err(e) = ws.send_with_str(frame.to_json()) {
                            console_warn!("hub: send to {} failed: {e:?}", meta.conn);
                        }
                    }
                    self.with_index(|index| index.add(&channel, &meta.conn, ws.clone()));
                }
                Action::Unsubscribe(channel) => self.with_index(|index| index.remove(&channel, &meta.conn)),
                Action::Close(reason) => {
                    self.close(ws, meta, reason);
                    return;
                }
            }
        }
    }

    /// The hub ends a connection: counted once, removed from the index, closed with its code.
    fn close(&self, ws: &WebSocket, meta: &mut SocketMeta, reason: CloseReason) {
        meta.closing = true;
        self.with_core(|core| core.closed(reason));
        self.with_index(|index| index.remove_conn(&meta.conn));
        let (code, text) = close_frame(reason);
        let _ = ws.serialize_attachment(&*meta);
        let _ = ws.close(Some(code), Some(text));
    }

    /// The peer closed or the socket failed.
    async fn gone(&self, ws: &WebSocket, reason: CloseReason) -> Result<()> {
        self.load().await?;
        if let Some(meta) = attachment(ws) {
            let before = self.with_index(|index| index.subscribers(&Channel::btc()).len());
            self.with_index(|index| index.remove_conn(&meta.conn));
            self.btc_watchers_changed(before).await;
            if meta.closing {
                return Ok(()); // already counted when the hub closed it
            }
        }
        self.with_core(|core| core.closed(reason));
        self.persist_keys(&[StorageKey::Counters]).await
    }

    /// Retained updates `from..=to` of a channel, in seq order (storage keys sort by seq).
    async fn history(&self, channel: &Channel, from: crate::protocol::Seq, to: crate::protocol::Seq) -> Vec<Update> {
        let start = StorageKey::History(channel.clone(), from).as_string();
        let end = StorageKey::History(channel.clone(), to.next()).as_string();
        let map = match self.state.storage().list_with_options(ListOptions::new().start(&start).end(&end)).await {
            Ok(m) => m,
            Err(e) => {
                console_error!("hub: history read of {channel} failed: {e:?}");
                return Vec::new(); // the core then answers recovered: false
            }
        };
        let mut updates = Vec::new();
        map.for_each(&mut |value, _key| {
            if let Some(u) = value.as_string().and_then(|v| serde_json::from_str::<Update>(&v).ok()) {
                updates.push(u);
            }
        });
        updates
    }

    /// Sends each broadcast to its channel's subscribers, stores what changed, and (on the
    /// sequencer) fans the new updates out to the other shards.
    pub(crate) async fn execute(&self, fx: Effects) -> Result<()> {
        let started = Date::now().as_millis();
        let timed = !fx.broadcasts.is_empty();
        self.broadcast(&fx.broadcasts);
        let storage = self.state.storage();
        // Values are JSON text in a plain JS object: `put_multiple` would turn a Rust map into a
        // JS `Map`, which storage does not take as key/value pairs.
        let puts = js_sys::Object::new();
        let mut put_count = 0;
        let mut deletes = Vec::new();
        for write in &fx.history {
            let channel = &write.put.channel;
            if write.reset {
                // A replica that missed updates: drop the older, no longer contiguous history.
                let prefix = StorageKey::history_prefix(channel);
                let end = StorageKey::History(channel.clone(), write.put.seq).as_string();
                let old = storage.list_with_options(ListOptions::new().prefix(&prefix).end(&end)).await?;
                old.for_each(&mut |_, key| deletes.extend(key.as_string()));
            }
            deletes.extend(
                write.delete.clone().map(|s| StorageKey::History(channel.clone(), crate::protocol::Seq(s)).as_string()),
            );
            let json = serde_json::to_string(&write.put).map_err(|e| Error::RustError(e.to_string()))?;
            let key = StorageKey::History(channel.clone(), write.put.seq).as_string();
            js_sys::Reflect::set(&puts, &key.into(), &json.into())?;
            put_count += 1;
        }
        for key in &fx.dirty {
            if let Some(v) = self.with_core(|core| core.entry(key)) {
                js_sys::Reflect::set(&puts, &key.as_string().into(), &v.to_string().into())?;
                put_count += 1;
            }
        }
        if put_count > 0 {
            storage.put_multiple_raw(puts).await?;
        }
        if !deletes.is_empty() {
            storage.delete_multiple(deletes).await?;
        }
        self.fan_out(Apply { updates: fx.fanout, confirmed: fx.confirmed }).await;
        if timed {
            let ms = Date::now().as_millis().saturating_sub(started);
            self.with_core(|core| core.record_broadcast(ms));
            self.persist_keys(&[StorageKey::Counters]).await?;
        }
        self.write_kv(fx.kv_writes).await;
        Ok(())
    }

    /// Sends one event's update frames (serialised once each) to their subscribers: one message
    /// per socket, a `batch` when a socket gets several (a refresh round updates up to five
    /// channels at once), and each distinct message becomes a JS string once and is handed as
    /// is to every socket that gets it. A socket whose send fails is closed, so one dead peer
    /// cannot fail the publish for the others.
    fn broadcast(&self, broadcasts: &[(Channel, String)]) {
        if broadcasts.is_empty() {
            return;
        }
        let batches = self.with_index(|index| index.batches(broadcasts));
        let mut failed_sockets = Vec::new();
        for batch in batches {
            let js = JsValue::from_str(&batch.message);
            let before = failed_sockets.len();
            failed_sockets.extend(batch.sockets.iter().filter(|ws| !send_shared(ws, &js)).cloned());
            let failed = (failed_sockets.len() - before) as u64;
            let delivered = batch.sockets.len() as u64 - failed;
            self.with_core(|core| {
                for channel in &batch.channels {
                    core.record_delivery(channel, delivered, failed);
                }
            });
        }
        for ws in &failed_sockets {
            if let Some(mut meta) = attachment(ws) {
                console_warn!("hub: send to {} failed; closing it", meta.conn);
                self.close(ws, &mut meta, CloseReason::SendFailed);
            }
        }
    }

    /// Shard 0 sends new updates (and confirmations) to shards 1..N in parallel. Fan-outs go
    /// out one after another: two in flight at once could reach a shard in the wrong order,
    /// and a replica seeing seq 6 before 5 would restart its history at 6 and drop 5. A shard
    /// that misses a fan-out sees the gap on the next one and restarts its history there (its
    /// resumes then say `recovered: false` rather than replay with a hole).
    async fn fan_out(&self, apply: Apply) {
        let shards = self.with_core(|core| core.limits.shards);
        if (apply.updates.is_empty() && apply.confirmed.is_empty()) || shards <= 1 {
            return;
        }
        let Ok(body) = serde_json::to_string(&apply) else { return };
        // Take our place in line synchronously, before any await, so the order of fan-outs is
        // the order their updates were sequenced in.
        let (done, finished) = oneshot::channel::<()>();
        let previous = self.fanout_tail.borrow_mut().replace(finished.shared());
        if let Some(previous) = previous {
            let _ = previous.await;
        }
        match self.env.durable_object("HUB") {
            Ok(ns) => {
                let calls = (1..shards).map(|k| {
                    let body = body.clone();
                    let ns = &ns;
                    async move {
                        let mut init = RequestInit::new();
                        init.with_method(Method::Post).with_body(Some(body.into()));
                        let req = Request::new_with_init("https://hub.internal/apply", &init);
                        let result = match (ns.get_by_name(&shard_name(k)), req) {
                            (Ok(stub), Ok(req)) => stub.fetch_with_request(req).await.map(|r| r.status_code()),
                            (Err(e), _) | (_, Err(e)) => Err(e),
                        };
                        match result {
                            Ok(200) => {}
                            Ok(status) => console_error!("hub: fan-out to shard {k} answered {status}"),
                            Err(e) => console_error!("hub: fan-out to shard {k} failed: {e:?}"),
                        }
                    }
                });
                futures::future::join_all(calls).await;
            }
            Err(e) => console_error!("hub: no HUB binding for fan-out: {e:?}"),
        }
        let _ = done.send(());
    }

    pub(crate) async fn persist_keys(&self, keys: &[StorageKey]) -> Result<()> {
        let storage = self.state.storage();
        for key in keys {
            if let Some(v) = self.with_core(|core| core.entry(key)) {
                storage.put(&key.as_string(), v.to_string()).await?;
            }
        }
        Ok(())
    }
}
