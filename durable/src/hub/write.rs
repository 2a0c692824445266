//! The hub's write path (wasm glue): an event's effects (a publish, `publish.rs`, a round, an
//! apply) are written, queued for the next flush (group commit, `core/commit.rs`), sent, and
//! fanned out to the other shards.
//!
//! Durable before visible: an event's storage write is issued in the same synchronous step that
//! queues its frames, and frames are only ever sent from the queue, so no frame goes out before
//! its write was issued and the runtime's output gate holds each one until its write is durable.
//! A crash can therefore never leave a client holding a seq that storage does not have.

use super::broadcast::attachment;
use super::Hub;
use crate::api::stub;
use crate::api::{Applied, HubRoute};
use crate::clock::now_ms;
use crate::core::close::CloseReason;
use crate::core::commit::FlushWait;
use crate::core::replica_backoff::ApplyOutcome;
use crate::core::storage_key::{StorageKey, Stored};
use crate::core::Effects;
use crate::log::{Event, Level};
use crate::wire::bodies::Apply;
use crate::wire::protocol::Seq;
use futures::channel::oneshot;
use futures::future::{Either, FutureExt};
use std::time::Duration;
use worker::wasm_bindgen_futures::JsFuture;
use worker::*;

/// An event whose writes are issued and frames queued: what [`Hub::finish`] still has to do.
pub(crate) struct Begun {
    started: u64,
    timed: bool,
    fan_out: Option<FanOutSlot>,
    writes: Vec<js_sys::Promise>,
    kv_writes: Vec<crate::feeds::kv::StoredValue>,
}

/// A fan-out waiting for its turn: what to send (the `Apply` as JSON, and how many updates it
/// carries), to how many shards, the fan-out before it, and the signal that lets the next one go.
pub(crate) struct FanOutSlot {
    body: String,
    updates: usize,
    shards: u32,
    timeout: u64,
    previous: Option<futures::future::Shared<oneshot::Receiver<()>>>,
    done: oneshot::Sender<()>,
}

/// Durable Object storage puts and deletes at most this many keys per call.
const MAX_STORAGE_KEYS: usize = 128;

/// Key/value pairs as the plain JS object `put_multiple` takes: a Rust map would become a JS
/// `Map`, which storage does not take as pairs. Values are JSON text.
fn put_object(entries: &[(String, String)]) -> Result<js_sys::Object> {
    let puts = js_sys::Object::new();
    for (key, json) in entries {
        js_sys::Reflect::set(&puts, &key.into(), &json.into())?;
    }
    Ok(puts)
}

impl Hub {
    /// Stores and broadcasts an event's effects, then fans them out and mirrors them to KV.
    pub(crate) async fn execute(&self, fx: Effects) -> Result<()> {
        let begun = self.begin(fx)?;
        self.finish(begun).await
    }

    /// The synchronous half of [`Hub::execute`]: takes the event's place in the fan-out line,
    /// issues its storage writes and queues its frames, in one step (see the module doc).
    pub(crate) fn begin(&self, mut fx: Effects) -> Result<Begun> {
        let started = now_ms();
        let timed = !fx.broadcasts.is_empty();
        let storage = self.state.storage();
        let mut writes = Vec::new();
        for puts in self.puts(&fx)? {
            writes.push(storage.as_raw().put_multiple(puts.into())?);
        }
        self.issue_deletes(&fx, &mut writes)?;
        // Our place in the fan-out line is taken now, in seq order, before anything awaits, and
        // after the last step that can fail: a slot, once taken, is always run and released.
        let apply = Apply {
            updates: std::mem::take(&mut fx.fanout),
            confirmed: std::mem::take(&mut fx.confirmed),
            deleted: std::mem::take(&mut fx.fanout_deleted),
            at: None,
        };
        let fan_out = if apply.is_empty() { None } else { self.fan_out_slot(apply) };
        if !fx.removed.is_empty() {
            // What was queued for a deleted channel goes out before its subscribers are told.
            self.send_pending();
            self.unsubscribe_everyone(&fx.removed);
        }
        self.write.queue.borrow_mut().extend(std::mem::take(&mut fx.broadcasts));
        Ok(Begun { started, timed, fan_out, writes, kv_writes: std::mem::take(&mut fx.kv_writes) })
    }

    /// The rest: waits for the writes (their errors are logged; the output gate already keeps
    /// every frame and answer of a failed write from leaving), flushes, fans out, times the
    /// broadcast and mirrors to KV.
    pub(crate) async fn finish(&self, begun: Begun) -> Result<()> {
        let Begun { started, timed, fan_out, writes, kv_writes } = begun;
        self.flush().await;
        // After the flush, which waited for them to be durable: these only report errors.
        let mut failed = None;
        for w in writes {
            if let Err(e) = JsFuture::from(w).await {
                self.line(Level::Error, Event::StorageFailed).kind("write").detail(format_args!("{e:?}")).emit();
                failed = Some(Error::from(e));
            }
        }
        if let Some(slot) = fan_out {
            self.fan_out(slot).await;
        }
        if timed {
            let ms = now_ms().saturating_sub(started);
            self.with_core(|core| core.record_broadcast(ms))?;
            self.counters_changed().await;
        }
        self.write_kv(kv_writes).await;
        failed.map_or(Ok(()), Err)
    }

    /// The event's history entries and dirty keys, plus counters whose flush time has come (they
    /// ride along instead of costing a write of their own), as objects of at most
    /// `MAX_STORAGE_KEYS` entries, one storage call each (almost always just one).
    fn puts(&self, fx: &Effects) -> Result<Vec<js_sys::Object>> {
        let mut entries = Vec::new();
        for write in &fx.history {
            let json = Stored::encode_history(&write.put).map_err(|e| Error::RustError(e.to_string()))?;
            entries.push((StorageKey::History(write.put.channel.clone(), write.put.seq).as_string(), json));
        }
        let mut keys = fx.dirty.clone();
        if !entries.is_empty() || !keys.is_empty() {
            let now = now_ms();
            keys.extend(self.with_core(|core| core.take_due_counters(now))?);
        }
        entries.extend(self.entries(&keys));
        entries.chunks(MAX_STORAGE_KEYS).map(put_object).collect()
    }

    /// The core's current value of each key, as (key, JSON text).
    fn entries(&self, keys: &[StorageKey]) -> Vec<(String, String)> {
        keys.iter()
            .filter_map(|key| {
                let value = self.with_core(|core| core.entry(key)).ok().flatten()?;
                match value.encode() {
                    Ok(json) => Some((key.as_string(), json)),
                    Err(e) => {
                        self.line(Level::Error, Event::EncodeFailed)
                            .detail(format_args!("{}: {e}", key.as_string()))
                            .emit();
                        None
                    }
                }
            })
            .collect()
    }

    /// Issues the deletes of history entries that fell out of the window or a replica's reset,
    /// and of deleted channels' keys, in calls of at most `MAX_STORAGE_KEYS` keys.
    fn issue_deletes(&self, fx: &Effects, writes: &mut Vec<js_sys::Promise>) -> Result<()> {
        let storage = self.state.storage();
        let mut deletes = Vec::new();
        for write in &fx.history {
            let channel = &write.put.channel;
            deletes.extend(write.deleted_seqs().map(|s| StorageKey::History(channel.clone(), Seq(s)).as_string()));
        }
        for gone in &fx.removed {
            deletes.push(StorageKey::Meta(gone.channel.clone()).as_string());
            deletes.extend(gone.history.clone().map(|s| StorageKey::History(gone.channel.clone(), Seq(s)).as_string()));
        }
        for chunk in deletes.chunks(MAX_STORAGE_KEYS) {
            let keys = chunk.iter().map(|k| wasm_bindgen::JsValue::from_str(k)).collect();
            writes.push(storage.as_raw().delete_multiple(keys)?);
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
        let Ok(linger) = self.with_core(|core| core.limits.linger_ms) else { return };
        // One borrow at a time: a temporary borrow in the first operand of `||` would still be
        // alive in the second.
        let claimed = {
            let mut queue = self.write.queue.borrow_mut();
            !queue.is_empty() && queue.claim()
        };
        if !claimed {
            return;
        }
        let wait = self.write.queue.borrow().wait_before_flush(now_ms(), linger);
        match wait {
            FlushWait::UntilDurable => {
                if let Err(e) = self.state.storage().sync().await {
                    self.line(Level::Error, Event::StorageFailed).kind("sync").detail(format_args!("{e:?}")).emit();
                }
            }
            FlushWait::For(ms) => Delay::from(Duration::from_millis(ms)).await,
        }
        self.send_pending();
        self.write.queue.borrow_mut().release();
    }

    /// Sends everything queued now, synchronously. Also called before a catch-up, so that a new
    /// subscriber is caught up from a state in which every written update has been sent.
    pub(crate) fn send_pending(&self) {
        let flush = self.write.queue.borrow_mut().take(|c| self.with_subscribers(|f| f.has_delta(c)));
        if flush.is_empty() {
            return;
        }
        let sent = self.with_subscribers(|f| f.send(&flush, now_ms() / 1000));
        let updates = flush.iter().filter(|c| !c.delta).map(|c| c.frames as usize).sum();
        self.write.queue.borrow_mut().flushed(now_ms(), sent.messages, updates);
        let _ = self.with_core(|core| {
            for (channel, reached) in flush.iter().zip(&sent.reached) {
                core.record_delivery(&channel.channel, reached * channel.frames, 0);
            }
        });
        for ws in &sent.failed {
            if let Some(mut meta) = attachment(ws) {
                self.line(Level::Warn, Event::SendFailed).conn(&meta.conn).detail("closing it").emit();
                let _ = self.with_core(|core| {
                    for c in flush.iter().filter(|c| c.delta == meta.delta && meta.channels.contains(&c.channel)) {
                        core.record_delivery(&c.channel, 0, c.frames);
                    }
                });
                self.close(ws, &mut meta, CloseReason::SendFailed);
            }
        }
        for ws in &sent.expired {
            self.end_expired(ws);
        }
        self.arm_ticks(&flush);
    }

    /// Takes this event's place in the fan-out line, and its number (None: no other shards).
    /// Called synchronously when the updates are sequenced, so fan-outs go out in seq order
    /// and a replica sees from the numbers whether it missed one (`replica_sync.rs`).
    pub(crate) fn fan_out_slot(&self, mut apply: Apply) -> Option<FanOutSlot> {
        let (shards, timeout) = self.with_core(|core| (core.limits.shards, core.limits.fanout_timeout_ms)).ok()?;
        if shards <= 1 {
            return None;
        }
        apply.at = Some(self.write.position.borrow_mut().advance());
        let body = match serde_json::to_string(&apply) {
            Ok(body) => body,
            Err(e) => {
                self.line(Level::Error, Event::EncodeFailed).detail(format_args!("a fan-out: {e}")).emit();
                return None;
            }
        };
        let updates = apply.updates.len();
        // Counted until it is done: publishes are refused while the line is full.
        self.write.queue.borrow_mut().fanout_queued(updates, body.len());
        let (done, finished) = oneshot::channel::<()>();
        let previous = self.write.fanout_tail.borrow_mut().replace(finished.shared());
        Some(FanOutSlot { body, updates, shards, timeout, previous, done })
    }

    /// Shard 0 sends new updates (and confirmations) to shards 1..N in parallel. Fan-outs go
    /// out one after another: two in flight at once could reach a shard in the wrong order,
    /// and a replica seeing seq 6 before 5 would restart its history at 6 and drop 5. A shard
    /// that misses a fan-out sees from the next one's number that it did, and pulls the latest
    /// value of every channel that changed (`heal.rs`), restarting their history there (its
    /// resumes then say `recovered: false` rather than replay with a hole). Each call waits at
    /// most `FANOUT_TIMEOUT_MS`; a shard that fails is left out for a while (`ReplicaBackoff`),
    /// so a hung shard never holds the line for more than one timeout at a time, and the alarm
    /// retries it once its skip time is up (`Hub::retry_replicas`).
    pub(crate) async fn fan_out(&self, slot: FanOutSlot) {
        let FanOutSlot { body, updates, shards, timeout, previous, done } = slot;
        if let Some(previous) = previous {
            let _ = previous.await;
        }
        let bytes = body.len();
        let targets = self.write.replicas.borrow().targets(shards, now_ms());
        let calls = targets.into_iter().map(|k| {
            let body = body.clone();
            async move {
                let call = async {
                    let mut resp = stub::send(&self.env, k, &HubRoute::Apply, Some(body)).await?;
                    let status = resp.status_code();
                    let btc_watching = match status {
                        200 => resp.json::<Applied>().await.ok().map(|a| a.btc_watchers > 0),
                        _ => None,
                    };
                    Ok::<_, Error>(ApplyOutcome::Answered { status, btc_watching })
                };
                let delay = Delay::from(Duration::from_millis(timeout));
                let outcome = match futures::future::select(Box::pin(call), delay).await {
                    Either::Left((Ok(outcome), _)) => outcome,
                    Either::Left((Err(e), _)) => ApplyOutcome::Failed(format!("{e:?}")),
                    Either::Right(_) => ApplyOutcome::TimedOut { after_ms: timeout },
                };
                if let Some(problem) = self.write.replicas.borrow_mut().record(k, &outcome, now_ms()) {
                    self.line(Level::Error, Event::FanoutFailed)
                        .peer(k)
                        .detail(format_args!("fan-out to shard {k} {problem}; leaving it out for a while"))
                        .emit();
                }
                if let Some(watching) = outcome.btc_watching() {
                    if let Err(e) = self.note_watcher(k, watching).await {
                        self.line(Level::Error, Event::StorageFailed)
                            .peer(k)
                            .detail(format_args!("recording shard {k}'s btc watchers: {e:?}"))
                            .emit();
                    }
                }
            }
        });
        futures::future::join_all(calls).await;
        self.write.queue.borrow_mut().fanout_done(updates, bytes);
        let _ = done.send(());
        if self.write.replicas.borrow().retry_due().is_some() {
            self.arm().await;
        }
    }

    /// Writes the core's current value of each key (a few singletons: one storage call).
    pub(crate) async fn persist_keys(&self, keys: &[StorageKey]) -> Result<()> {
        for chunk in self.entries(keys).chunks(MAX_STORAGE_KEYS) {
            self.state.storage().put_multiple_raw(put_object(chunk)?).await?;
        }
        Ok(())
    }
}
