//! Healing replicas (wasm glue; the decisions are in `core/replica_sync.rs` and `core/sync.rs`):
//! shard 0 answers a replica's pull (`POST /sync`) and retries a replica it failed to reach;
//! a replica numbers what it applies, vouches for its state before a catch-up or a read, and
//! pulls what changed when it cannot.

use super::answer::refuse;
use super::Hub;
use crate::api::stub;
use crate::api::{HubRefusal, HubRoute, SyncRequest, SEQUENCER};
use crate::clock::now_ms;
use crate::core::replica_sync::{Step, Vouch, PULL_TIMEOUT_MS};
use crate::log::{Event, Level};
use crate::wire::bodies::{Apply, SyncPage};
use futures::channel::oneshot;
use futures::future::{Either, FutureExt};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::*;

/// How many times a pull waits for the fan-out line to drain before the sequencer answers
/// anyway (a steady stream never drains; see [`Hub::sync`]).
const LINE_WAITS: usize = 3;

/// How long those waits may take in all: well within the puller's [`PULL_TIMEOUT_MS`], since a
/// fan-out to a hung replica holds the line for up to `FANOUT_TIMEOUT_MS` (2 s by default) each
/// time, and three of them would outlast the pull.
const LINE_WAIT_MS: u64 = PULL_TIMEOUT_MS / 2;

impl Hub {
    /// Shard 0: a replica's pull. The fan-outs already in line go out first, so the page is not
    /// ahead of updates that are on their way to the replica (it would restart those channels'
    /// history and tell their sockets `recovered: false` for nothing); then the page of what
    /// differs from the replica's digest.
    pub(crate) async fn sync(&self, mut req: Request) -> Result<Response> {
        let Ok(ask) = req.json::<SyncRequest>().await else {
            return refuse(&HubRefusal::BadRequest("bad sync body"));
        };
        let deadline = now_ms().saturating_add(LINE_WAIT_MS);
        for _ in 0..LINE_WAITS {
            let before = self.write.position.borrow().n;
            let tail = self.write.fanout_tail.borrow().clone();
            let Some(tail) = tail else { break };
            let left = deadline.saturating_sub(now_ms());
            if left == 0 {
                break;
            }
            let timer = Delay::from(Duration::from_millis(left));
            if let Either::Right(_) = futures::future::select(tail, timer).await {
                break; // answered now: at worst a spurious `recovered: false`, never a wrong `true`
            }
            if self.write.position.borrow().n == before {
                break;
            }
        }
        let at = self.write.position.borrow().clone();
        let page = self.with_core(|core| core.sync_page(&ask.have, core.limits.history_page_bytes, at))?;
        Response::from_json(&page)
    }

    /// Shard 0's alarm: a replica it failed to reach is owed a contact once its skip time is
    /// up; unless a fan-out reached it meanwhile, a heartbeat (an empty, numbered fan-out) goes
    /// now, so a replica that missed the last publishes of a quiet channel learns of it.
    pub(crate) async fn retry_replicas(&self) {
        let due = self.write.replicas.borrow().retry_due();
        if due.is_some_and(|at| at <= now_ms()) {
            if let Some(slot) = self.fan_out_slot(Apply::default()) {
                self.fan_out(slot).await;
            }
        }
    }

    /// A replica's `/apply`: applied unless a sync already covered it; a gap starts a pull in
    /// the background, so the sequencer's fan-out line does not wait for it.
    pub(crate) async fn apply_numbered(self: &Rc<Self>, apply: Apply) -> Result<()> {
        let step = self.follow.borrow_mut().on_apply(apply.at.as_ref(), now_ms());
        if step != Step::Covered {
            let fx = self.with_core(|core| core.apply(apply))?;
            self.execute(fx).await?;
        }
        if step == Step::Gap {
            let hub = Rc::clone(self);
            let pull = future_to_promise(async move {
                hub.vouch().await;
                Ok(JsValue::UNDEFINED)
            });
            if let Err(e) = self.state.as_raw().wait_until(&pull) {
                self.line(Level::Warn, Event::WaitUntilRefused).detail(format_args!("a pull: {e:?}")).emit();
            }
        }
        Ok(())
    }

    /// Whether this shard may answer a catch-up or a read from its own state now. Shard 0
    /// always may; a replica may while it follows shard 0 in step and heard from it within
    /// `VOUCH_MS`, and otherwise pulls first (one pull at a time: concurrent callers share it).
    /// False when the pull failed: the caller answers without vouching.
    pub(crate) async fn vouch(&self) -> bool {
        if self.shard() == SEQUENCER {
            return true;
        }
        let check = self.follow.borrow().check(now_ms());
        match check {
            Vouch::Vouched => return true,
            Vouch::Unvouched => return false,
            Vouch::Pull => {}
        }
        let running = self.healing.borrow().clone().filter(|h| h.peek().is_none());
        if let Some(running) = running {
            return running.await.unwrap_or(false);
        }
        let (done, shared) = oneshot::channel();
        *self.healing.borrow_mut() = Some(shared.shared());
        let healed = match self.pull().await {
            Ok(healed) => healed,
            Err(e) => {
                self.line(Level::Error, Event::HealFailed)
                    .detail(format_args!("could not pull from the sequencer: {e:?}"))
                    .emit();
                false
            }
        };
        if !healed {
            self.follow.borrow_mut().pull_failed(now_ms());
        }
        *self.healing.borrow_mut() = None;
        let _ = done.send(healed);
        healed
    }

    /// Pulls pages from shard 0 and applies them until the replica is in step (true), or
    /// gives up after as many pages as there can be channels (false).
    async fn pull(&self) -> Result<bool> {
        let pages =
            self.with_core(|core| core.limits.max_app_channels)? + crate::wire::protocol::Channel::BUILT_IN.len() + 2;
        for _ in 0..pages {
            self.follow.borrow_mut().sync_started();
            let ask = SyncRequest { shard: self.shard(), have: self.with_core(|core| core.digest())? };
            let page = self.page(&ask).await?;
            let (at, more, healed) = (page.at, page.more, page.changed.len() + page.deleted.len());
            let apply = Apply { confirmed: page.changed, deleted: page.deleted, ..Apply::default() };
            let fx = self.with_core(|core| core.apply(apply))?;
            self.execute(fx).await?;
            if healed > 0 {
                self.line(Level::Info, Event::Healed)
                    .detail(format_args!("healed {healed} channel(s) from the sequencer"))
                    .emit();
            }
            if !more && self.follow.borrow_mut().synced(at, now_ms()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One page of a pull, within `PULL_TIMEOUT_MS`.
    async fn page(&self, ask: &SyncRequest) -> Result<SyncPage> {
        let body = serde_json::to_string(ask)?;
        let call = async {
            let mut resp = stub::send(&self.env, SEQUENCER, &HubRoute::Sync, Some(body)).await?;
            match resp.status_code() {
                200 => resp.json::<SyncPage>().await,
                status => Err(Error::RustError(format!("the sequencer answered {status}"))),
            }
        };
        let delay = Delay::from(Duration::from_millis(PULL_TIMEOUT_MS));
        match futures::future::select(Box::pin(call), delay).await {
            Either::Left((page, _)) => page,
            Either::Right(_) => Err(Error::RustError(format!("no page within {PULL_TIMEOUT_MS} ms"))),
        }
    }
}
