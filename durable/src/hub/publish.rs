//! Publishing (wasm glue): `POST /api/publish` on the sequencer, an application's publish
//! checked (`core/publish.rs`) and authorised (`core/access.rs`); a socket's `publish` op,
//! sequenced here on shard 0 or forwarded to it from a replica (`POST /publish`). Either way the
//! publish is admitted by the group-commit queue, sequenced by the core and handed to the write
//! path (`write.rs`), which answers before the flush and fan-out are done.

use super::answer::refuse;
use super::{new_epoch, Hub};
use crate::api::{route, stub, HubRefusal, HubRoute, SocketPublish, SocketPublished, SEQUENCER};
use crate::auth::access::{check, publisher, Publisher};
use crate::auth::Capability;
use crate::clock::now_ms;
use crate::core::publish::{check_body, AppPublish, PublishRefusal};
use crate::core::HubCore;
use crate::log::{Event, Level};
use crate::wire::bodies::Published;
use futures::future::Either;
use std::rc::Rc;
use std::time::Duration;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::*;

/// A publish's outcome: the seq, or why it was refused.
type Outcome = std::result::Result<Published, PublishRefusal>;

impl Hub {
    /// An application's publish over HTTP: authorised from its `Authorization` header (the
    /// server's `PUBLISH_TOKEN`, or a token granting `publish` on the channel), then checked,
    /// admitted and sequenced.
    pub(crate) async fn publish(self: &Rc<Self>, body: &[u8], authorization: Option<&str>) -> Result<Outcome> {
        let now = now_ms();
        let (max_bytes, who) = self.with_core(|core| {
            let who = publisher(authorization, core.publish_token.as_ref(), &core.keys, now / 1000);
            (core.limits.max_publish_bytes, who)
        })?;
        let who = match who {
            Ok(who) => who,
            Err(e) => {
                self.line(Level::Warn, Event::RequestRefused).path(route::PUBLISH).kind(e.reason()).detail(&e).emit();
                self.with_core(|core| core.count_token_refused(e.reason()))?;
                self.counters_changed().await;
                return Ok(Err(PublishRefusal::Token(e)));
            }
        };
        let publish = match check_body(body, max_bytes, now) {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Publisher::Holder(grant) = &who {
            if let Err(denied) = check(Some(grant), &publish.channel, Capability::Publish, now / 1000) {
                let refusal = PublishRefusal::Denied(denied, publish.channel.clone());
                let line = self.line(Level::Warn, Event::RequestRefused).path(route::PUBLISH).channel(&publish.channel);
                line.kind(refusal.code()).detail(refusal.message()).emit();
                return Ok(Err(refusal));
            }
        }
        self.sequence_publish(publish).await
    }

    /// A socket's publish, its access checked by the socket's core: sequenced here on the
    /// sequencer, or forwarded to it.
    pub(crate) async fn socket_publish(self: &Rc<Self>, publish: AppPublish) -> Result<SocketPublished> {
        let answer = if self.shard() == SEQUENCER {
            answer_of(self.sequence_publish(publish).await?)
        } else {
            // Bounded like a fan-out: a sequencer that does not answer leaves the socket's
            // publish unanswered no longer than FANOUT_TIMEOUT_MS.
            let timeout = self.with_core(|core| core.limits.fanout_timeout_ms)?;
            let body = serde_json::to_string(&SocketPublish { publish })?;
            let call = async {
                let mut resp = stub::send(&self.env, SEQUENCER, &HubRoute::Publish, Some(body)).await?;
                if resp.status_code() != 200 {
                    return Err(Error::RustError(format!("the sequencer answered {}", resp.status_code())));
                }
                resp.json::<SocketPublished>().await
            };
            let delay = Delay::from(Duration::from_millis(timeout));
            match futures::future::select(Box::pin(call), delay).await {
                Either::Left((answer, _)) => answer?,
                Either::Right(_) => return Err(Error::RustError(format!("no answer within {timeout} ms"))),
            }
        };
        // Counted by the shard that holds the socket.
        if matches!(answer, SocketPublished::Published(_)) {
            self.with_core(HubCore::count_socket_publish)?;
            self.counters_changed().await;
        }
        Ok(answer)
    }

    /// `POST /publish` on the sequencer: a socket's publish a replica forwards.
    pub(crate) async fn forwarded_publish(self: &Rc<Self>, mut req: Request) -> Result<Response> {
        let Ok(SocketPublish { publish }) = req.json::<SocketPublish>().await else {
            return refuse(&HubRefusal::BadRequest("bad publish body"));
        };
        Response::from_json(&answer_of(self.sequence_publish(publish).await?))
    }

    /// Admits (or refuses as overloaded before it gets a seq), sequences, writes and queues a
    /// checked publish for the next flush.
    async fn sequence_publish(self: &Rc<Self>, publish: AppPublish) -> Result<Outcome> {
        let commit = self.with_core(|core| core.limits.commit)?;
        let admitted = self.write.queue.borrow().admit(&commit);
        if let Err(overloaded) = admitted {
            self.with_core(HubCore::count_overloaded)?;
            self.counters_changed().await;
            return Ok(Err(overloaded));
        }
        match self.with_core(|core| core.publish(publish, new_epoch))? {
            Ok((published, fx)) => {
                // The publisher is answered once the write is issued and the frames queued: the
                // output gate holds the answer, like the frames, until the write is durable, and
                // the flush and fan-out go on without keeping the publisher waiting.
                let begun = self.begin(fx)?;
                let hub = Rc::clone(self);
                let rest = future_to_promise(async move {
                    if let Err(e) = hub.finish(begun).await {
                        hub.line(Level::Error, Event::PublishFailed)
                            .detail(format_args!("finishing a publish: {e:?}"))
                            .emit();
                    }
                    Ok(wasm_bindgen::JsValue::UNDEFINED)
                });
                if let Err(e) = self.state.as_raw().wait_until(&rest) {
                    self.line(Level::Warn, Event::WaitUntilRefused)
                        .detail(format_args!("a publish's flush: {e:?}"))
                        .emit();
                }
                Ok(Ok(published))
            }
            Err(refusal) => Ok(Err(refusal)),
        }
    }
}

/// A publish's outcome as a socket is answered.
fn answer_of(outcome: Outcome) -> SocketPublished {
    match outcome {
        Ok(published) => SocketPublished::Published(published),
        Err(refusal) => SocketPublished::Refused { code: refusal.error_code(), message: refusal.message() },
    }
}
