//! `POST /api/publish` on the sequencer (wasm glue): an application's publish checked
//! (`core/publish.rs`), admitted by the group-commit queue, sequenced by the core and handed
//! to the write path (`write.rs`), which answers before the flush and fan-out are done.

use super::{new_epoch, Hub};
use crate::clock::now_ms;
use crate::core::publish::{check_body, PublishRefusal};
use crate::core::HubCore;
use crate::wire::bodies::Published;
use std::rc::Rc;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::*;

impl Hub {
    /// An application's publish: checked, admitted (or refused as overloaded before it gets a
    /// seq), sequenced, written and queued for the next flush.
    pub(crate) async fn publish(
        self: &Rc<Self>,
        body: &[u8],
    ) -> Result<std::result::Result<Published, PublishRefusal>> {
        let (max_bytes, commit) = self.with_core(|core| (core.limits.max_publish_bytes, core.limits.commit))?;
        let publish = match check_body(body, max_bytes, now_ms()) {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
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
                        console_error!("hub: finishing a publish: {e:?}");
                    }
                    Ok(wasm_bindgen::JsValue::UNDEFINED)
                });
                if let Err(e) = self.state.as_raw().wait_until(&rest) {
                    console_warn!("hub: waitUntil refused a publish's flush: {e:?}");
                }
                Ok(Ok(published))
            }
            Err(refusal) => Ok(Err(refusal)),
        }
    }
}
