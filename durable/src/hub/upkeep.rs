//! The hub's alarm (wasm glue): one alarm serves the jobs `core/upkeep.rs` schedules, writing
//! counters within `COUNTERS_FLUSH_SECONDS`, the fast BTC poll, (on shard 0) retrying a replica
//! it failed to reach (`heal.rs`) and (on a replica) the debounced report that it stopped
//! watching `btc`; this sets it no later than any needs and runs them when it fires.

use super::Hub;
use crate::clock::now_ms;
use crate::core::stats::Internal;
use crate::core::upkeep::{earliest, must_arm};
use crate::log::{Event, Level};
use worker::*;

impl Hub {
    /// Counts an internal request (see `Counters`); written by the alarm like other counters.
    pub(crate) async fn counted(&self, what: Internal) {
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

    /// Counters changed: make sure the alarm writes them in time (no write now).
    pub(crate) async fn counters_changed(&self) {
        let now = now_ms();
        if matches!(self.with_core(|core| core.counters_changed(now)), Ok(true)) {
            self.arm().await;
        }
    }

    /// Moves the alarm earlier if a job needs it sooner (see `core/upkeep.rs`). Reads the alarm from
    /// storage once per object lifetime; after that this object knows what it set.
    pub(crate) async fn arm(&self) {
        let watchers = self.btc_watchers();
        let shard0 = self.shard() == 0;
        let retry = if shard0 { self.write.replicas.borrow().retry_due() } else { None };
        let retry = earliest(retry, self.presence_due());
        let Ok(want) = self.with_core(|core| {
            let poll = if shard0 { core.poll_due(watchers) } else { None };
            core.upkeep.next_alarm(earliest(poll, retry))
        }) else {
            return;
        };
        let current = match self.alarm_at.get() {
            Some(known) => known,
            None => match self.state.storage().get_alarm().await {
                Ok(at) => {
                    let at = at.map(|ms| ms.max(0) as u64);
                    self.alarm_at.set(Some(at));
                    at
                }
                Err(e) => {
                    self.line(Level::Error, Event::AlarmFailed).kind("read").detail(format_args!("{e:?}")).emit();
                    None
                }
            },
        };
        if !must_arm(current, want) {
            return;
        }
        let Some(at) = want else { return };
        let offset = at.saturating_sub(now_ms()) as i64;
        match self.state.storage().set_alarm(offset).await {
            Ok(()) => self.alarm_at.set(Some(Some(at))),
            Err(e) => self.line(Level::Error, Event::AlarmFailed).kind("set").detail(format_args!("{e:?}")).emit(),
        }
    }

    /// The alarm's work: counters that are due, then the fast poll if due (on the sequencer) or
    /// the report that this shard stopped watching `btc` (on a replica).
    pub(crate) async fn upkeep(&self) {
        let Ok(keys) = self.with_core(|core| core.take_unsaved_counters()) else { return };
        if let Err(e) = self.persist_keys(&keys).await {
            self.line(Level::Error, Event::StorageFailed).kind("counters").detail(format_args!("{e:?}")).emit();
            let now = now_ms();
            let _ = self.with_core(|core| core.counters_changed(now)); // try again next time
        }
        if self.shard() == 0 {
            self.fast_poll().await;
            self.retry_replicas().await;
        } else {
            self.report_watch_stop().await;
        }
        self.presence_upkeep().await;
        self.arm().await;
    }
}
