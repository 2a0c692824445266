//! The hub's write path (wasm glue): an app publish is checked and admitted, an event's effects
//! are written, queued for the next flush (group commit, `commit.rs`), sent, and fanned out to
//! the other shards.
//!
//! Durable before visible: an event's storage write is issued in the same synchronous step that
//! queues its frames, and frames are only ever sent from the queue, so no frame goes out before
//! its write was issued and the runtime's output gate holds each one until its write is durable.
//! A crash can therefore never leave a client holding a seq that storage does not have.

use crate::hub::new_epoch;
use crate::hub::Hub;
use crate::hub_core::{Effects, HubCore};
use crate::internal::{shard_name, Apply, CloseReason, Published};
use crate::publish::{check_body, PublishRefusal};
use crate::storage_key::StorageKey;
use crate::upkeep::must_arm;
use futures::channel::oneshot;
use futures::future::FutureExt;
use std::time::Duration;
use worker::*;

/// A fan-out waiting for its turn: what to send, to how many shards, the fan-out before it, and
/// the signal that lets the next one go.
struct FanOutSlot {
    apply: Apply,
    shards: u32,
    previous: Option<futures::future::Shared<oneshot::Receiver<()>>>,
    done: oneshot::Sender<()>,
}

/// Durable Object storage deletes at most this many keys per call.
const MAX_DELETE_KEYS: usize = 128;

impl Hub {
    /// An application's publish: checked, admitted (or refused as overloaded before it gets a
    /// seq), sequenced, written and queued for the next flush.
    pub(crate) async fn publish(&self, body: &[u8]) -> Result<std::result::Result<Published, PublishRefusal>> {
        let (max_bytes, commit) = self.with_core(|core| (core.limits.max_publish_bytes, core.limits.commit));
        let publish = match check_body(body, max_bytes, Date::now().as_millis()) {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let admitted = self.queue.borrow().admit(&commit);
        if let Err(overloaded) = admitted {
            self.with_core(HubCore::count_overloaded);
            self.counters_changed().await;
            return Ok(Err(overloaded));
        }
        match self.with_core(|core| core.publish_app(publish, new_epoch)) {
            Ok((published, fx)) => {
                self.execute(fx).await?;
                Ok(Ok(published))
            }
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    /// Stores and broadcasts an event's effects, then fans them out and mirrors them to KV.
    pub(crate) async fn execute(&self, mut fx: Effects) -> Result<()> {
        let started = Date::now().as_millis();
        let timed = !fx.broadcasts.is_empty();
        // Our place in the fan-out line is taken now, in seq order, before anything awaits.
        let fan_out = self.fan_out_slot(Apply {
            updates: std::mem::take(&mut fx.fanout),
            confirmed: std::mem::take(&mut fx.confirmed),
        });
        // Built and issued with the frames queued in one synchronous step (see the module doc).
        let puts = self.puts(&fx)?;
        self.queue.borrow_mut().extend(std::mem::take(&mut fx.broadcasts));
        let storage = self.state.storage();
        if puts.is_some() || !fx.history.is_empty() {
            if let Some(puts) = puts {
                storage.put_multiple_raw(puts).await?;
            }
            self.delete_old_history(&fx).await?;
        }
        self.flush().await;
        if let Some(slot) = fan_out {
            self.fan_out(slot).await;
        }
        if timed {
            let ms = Date::now().as_millis().saturating_sub(started);
            self.with_core(|core| core.record_broadcast(ms));
            self.counters_changed().await;
        }
        self.write_kv(fx.kv_writes).await;
        Ok(())
    }

    /// The event's history entries and dirty keys, plus counters whose flush time has come (they
    /// ride along instead of costing a write of their own), as one object for one storage call.
    fn puts(&self, fx: &Effects) -> Result<Option<js_sys::Object>> {
        let puts = js_sys::Object::new();
        let mut count = 0;
        for write in &fx.history {
            let json = serde_json::to_string(&write.put).map_err(|e| Error::RustError(e.to_string()))?;
            let key = StorageKey::History(write.put.channel.clone(), write.put.seq).as_string();
            js_sys::Reflect::set(&puts, &key.into(), &json.into())?;
            count += 1;
        }
        let mut keys = fx.dirty.clone();
        if count > 0 || !keys.is_empty() {
            let now = Date::now().as_millis();
            keys.extend(self.with_core(|core| core.take_due_counters(now)));
        }
        count += self.entries_into(&puts, &keys)?;
        Ok((count > 0).then_some(puts))
    }

    /// Sets the core's current value of each key on `puts`; returns how many it set. Values are
    /// JSON text in a plain JS object: `put_multiple` would turn a Rust map into a JS `Map`,
    /// which storage does not take as key/value pairs.
    fn entries_into(&self, puts: &js_sys::Object, keys: &[StorageKey]) -> Result<usize> {
        let mut count = 0;
        for key in keys {
            if let Some(v) = self.with_core(|core| core.entry(key)) {
                js_sys::Reflect::set(puts, &key.as_string().into(), &v.to_string().into())?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// History entries that fell out of the window; on a replica that restarted its history,
    /// also every older entry (listed first, deleted in chunks the storage API accepts).
    async fn delete_old_history(&self, fx: &Effects) -> Result<()> {
        let storage = self.state.storage();
        let mut deletes = Vec::new();
        for write in &fx.history {
            let channel = &write.put.channel;
            if write.reset {
                let prefix = StorageKey::history_prefix(channel);
                let end = StorageKey::History(channel.clone(), write.put.seq).as_string();
                let old = storage.list_with_options(ListOptions::new().prefix(&prefix).end(&end)).await?;
                old.for_each(&mut |_, key| deletes.extend(key.as_string()));
            }
            deletes.extend(
                write.delete.clone().map(|s| StorageKey::History(channel.clone(), crate::protocol::Seq(s)).as_string()),
            );
        }
        for chunk in deletes.chunks(MAX_DELETE_KEYS) {
            storage.delete_multiple(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// Sends what is queued, unless another event has already claimed the flush (then this
    /// event's frames go with that one). The claimant first yields: until the previous flush's
    /// sends have had their time, at least `GROUP_COMMIT_LINGER_MS`, and otherwise until the
    /// queued writes are durable (see `CommitQueue::wait_before_flush`), so updates that arrive
    /// together are sent together: one message per socket, however many updates it carries.
    pub(crate) async fn flush(&self) {
        // One borrow at a time: a temporary borrow in the first operand of `||` would still be
        // alive in the second.
        let claimed = {
            let mut queue = self.queue.borrow_mut();
            !queue.is_empty() && queue.claim()
        };
        if !claimed {
            return;
        }
        let linger = self.with_core(|core| core.limits.linger_ms);
        let wait = self.queue.borrow().wait_before_flush(Date::now().as_millis(), linger);
        if wait == 0 {
            // Waiting for the queued writes to be durable is the yield: events that arrive
            // meanwhile queue their frames and go out with these, and the frames leave after
            // the commit instead of each send waiting on the output gate.
            if let Err(e) = self.state.storage().sync().await {
                console_error!("hub: storage sync failed: {e:?}");
            }
        } else {
            Delay::from(Duration::from_millis(wait)).await;
        }
        self.send_pending();
        self.queue.borrow_mut().release();
    }

    /// Sends everything queued now, synchronously. Also called before a catch-up, so that a new
    /// subscriber is caught up from a state in which every written update has been sent.
    pub(crate) fn send_pending(&self) {
        let flush = self.queue.borrow_mut().take();
        if flush.is_empty() {
            return;
        }
        let sent = self.with_fanout(|f| f.send(&flush));
        let updates = flush.iter().map(|c| c.frames as usize).sum();
        self.queue.borrow_mut().flushed(Date::now().as_millis(), sent.messages, updates);
        self.with_core(|core| {
            for (channel, reached) in flush.iter().zip(&sent.reached) {
                core.record_delivery(&channel.channel, reached * channel.frames, 0);
            }
        });
        for ws in &sent.failed {
            if let Some(mut meta) = ws.deserialize_attachment::<crate::session::SocketMeta>().ok().flatten() {
                console_warn!("hub: send to {} failed; closing it", meta.conn);
                self.with_core(|core| {
                    for c in flush.iter().filter(|c| meta.channels.contains(&c.channel)) {
                        core.record_delivery(&c.channel, 0, c.frames);
                    }
                });
                self.close(ws, &mut meta, CloseReason::SendFailed);
            }
        }
    }

    /// Takes this event's place in the fan-out line (None: nothing to fan out). Called
    /// synchronously when the updates are sequenced, so fan-outs go out in seq order.
    fn fan_out_slot(&self, apply: Apply) -> Option<FanOutSlot> {
        let shards = self.with_core(|core| core.limits.shards);
        if (apply.updates.is_empty() && apply.confirmed.is_empty()) || shards <= 1 {
            return None;
        }
        let (done, finished) = oneshot::channel::<()>();
        let previous = self.fanout_tail.borrow_mut().replace(finished.shared());
        Some(FanOutSlot { apply, shards, previous, done })
    }

    /// Shard 0 sends new updates (and confirmations) to shards 1..N in parallel. Fan-outs go
    /// out one after another: two in flight at once could reach a shard in the wrong order,
    /// and a replica seeing seq 6 before 5 would restart its history at 6 and drop 5. A shard
    /// that misses a fan-out sees the gap on the next one and restarts its history there (its
    /// resumes then say `recovered: false` rather than replay with a hole).
    async fn fan_out(&self, slot: FanOutSlot) {
        let FanOutSlot { apply, shards, previous, done } = slot;
        if let Some(previous) = previous {
            let _ = previous.await;
        }
        let Ok(body) = serde_json::to_string(&apply) else {
            let _ = done.send(());
            return;
        };
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

    /// Writes the core's current value of each key, in one storage call.
    pub(crate) async fn persist_keys(&self, keys: &[StorageKey]) -> Result<()> {
        let puts = js_sys::Object::new();
        if self.entries_into(&puts, keys)? > 0 {
            self.state.storage().put_multiple_raw(puts).await?;
        }
        Ok(())
    }

    /// Counters changed: make sure the alarm writes them in time (no write now).
    pub(crate) async fn counters_changed(&self) {
        let now = Date::now().as_millis();
        if self.with_core(|core| core.counters_changed(now)) {
            self.arm().await;
        }
    }

    /// Moves the alarm earlier if a job needs it sooner (see `upkeep.rs`). Reads the alarm from
    /// storage once per object lifetime; after that this object knows what it set.
    pub(crate) async fn arm(&self) {
        let watchers = self.btc_watchers();
        let shard0 = self.shard() == 0;
        let want = self.with_core(|core| {
            let poll = if shard0 { core.poll_due(watchers) } else { None };
            core.upkeep.next_alarm(poll)
        });
        let current = match self.alarm_at.get() {
            Some(known) => known,
            None => match self.state.storage().get_alarm().await {
                Ok(at) => {
                    let at = at.map(|ms| ms.max(0) as u64);
                    self.alarm_at.set(Some(at));
                    at
                }
                Err(e) => {
                    console_error!("hub: could not read the alarm: {e:?}");
                    None
                }
            },
        };
        if !must_arm(current, want) {
            return;
        }
        let Some(at) = want else { return };
        let offset = at.saturating_sub(Date::now().as_millis()) as i64;
        match self.state.storage().set_alarm(offset).await {
            Ok(()) => self.alarm_at.set(Some(Some(at))),
            Err(e) => console_error!("hub: could not set the alarm: {e:?}"),
        }
    }

    /// The alarm's work: counters that are due, then (on the sequencer) the fast poll if due.
    pub(crate) async fn upkeep(&self) {
        let keys = self.with_core(|core| core.take_unsaved_counters());
        if let Err(e) = self.persist_keys(&keys).await {
            console_error!("hub: could not write counters: {e:?}");
            let now = Date::now().as_millis();
            self.with_core(|core| core.counters_changed(now)); // try again next time
        }
        if self.shard() == 0 {
            self.fast_poll().await;
        }
        self.arm().await;
    }
}

/// A publish refusal as the API documents it: its status, JSON error body and, for
/// `overloaded`, `Retry-After`. The Worker passes it through as is.
pub(crate) fn refused(refusal: &PublishRefusal) -> Result<Response> {
    let resp = Response::ok(refusal.body())?.with_status(refusal.status());
    resp.headers().set("content-type", "application/json")?;
    if let PublishRefusal::Overloaded { retry_after_secs } = refusal {
        resp.headers().set("retry-after", &retry_after_secs.to_string())?;
    }
    Ok(resp)
}
