//! `POST /apply` on a replica (wasm glue): the sequencer's fan-out of updates, confirmed values
//! and deletions, applied in order (`heal.rs` when it shows a gap), answered with the replica's
//! `btc` watchers.

use super::answer::refuse;
use super::Hub;
use crate::api::{Applied, HubRefusal};
use crate::core::stats::Internal;
use crate::wire::bodies::Apply;
use std::rc::Rc;
use worker::*;

impl Hub {
    /// Applies one fan-out from shard 0.
    pub(super) async fn apply(self: &Rc<Self>, mut req: Request) -> Result<Response> {
        let Ok(apply) = req.json::<Apply>().await else {
            return refuse(&HubRefusal::BadRequest("bad apply body"));
        };
        let delay = self.with_core(|core| core.limits.test_apply_delay(self.shard()))?;
        if delay > 0 {
            Delay::from(std::time::Duration::from_millis(delay)).await;
        }
        self.counted(Internal::FanoutApplied).await;
        self.apply_numbered(apply).await?;
        Response::from_json(&Applied { btc_watchers: self.advertised_btc_watchers() as u64 })
    }
}
