//! The hub's feed side (wasm glue): refresh rounds (cron and the fast BTC alarm), the KV
//! mirror, and who is watching `btc`. The decisions are in `feeds/round.rs` and `core/`.

use super::{new_epoch, Hub};
use crate::api::stub;
use crate::api::{shard_of_name, HubRoute, RoundReport, Watch, SEQUENCER};
use crate::clock::now_ms;
use crate::core::upkeep::POLL_SLACK_MS;
use crate::feeds::kv::{KvKey, StoredValue, KV_BINDING};
use crate::feeds::round::{self, Fetched, RoundKind};
use crate::feeds::status::Provider;
use crate::feeds::upstream;
use crate::log::{self, Event, Level};
use crate::wire::protocol::Channel;
use wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::*;

/// CoinGecko's header for a demo API key.
const COINGECKO_KEY_HEADER: &str = "x-cg-demo-api-key";

impl Hub {
    /// This object's shard number, from its name (`hub`, `hub-shard-K`).
    pub(crate) fn shard(&self) -> u32 {
        self.state.id().name().as_deref().and_then(shard_of_name).unwrap_or(SEQUENCER)
    }

    /// One refresh round: fetch the due sources in parallel, each with its own timeout, then
    /// sequence what changed, broadcast, store, fan out and mirror to KV.
    pub(crate) async fn run_round(&self, kind: RoundKind) -> Result<RoundReport> {
        let planned = self.with_core(|core| core.plan_round(kind, now_ms()))?;
        let cfg = self.with_core(|core| core.feeds.clone())?;
        let fetches = planned.fetch.iter().map(|&source| {
            let cfg = &cfg;
            async move {
                let url = round::url(source, cfg);
                let key = cfg
                    .coingecko_api_key
                    .as_ref()
                    .map(|k| k.expose())
                    .filter(|_| source.provider() == Provider::Coingecko);
                let headers: Vec<(&str, &str)> = key.map(|k| (COINGECKO_KEY_HEADER, k)).into_iter().collect();
                let started = now_ms();
                let result = upstream::get_text(&url, cfg.timeout_ms, &headers).await;
                if let Err(e) = &result {
                    // The URL holds no secret (the key travels in a header).
                    self.line(Level::Error, Event::UpstreamFailed)
                        .upstream(source)
                        .kind(e.outcome().label())
                        .detail(format_args!("{e} ({url})"))
                        .emit();
                }
                let at = now_ms();
                Fetched { source, result, duration_ms: at.saturating_sub(started), at }
            }
        });
        let fetched = futures::future::join_all(fetches).await;
        let fx = self.with_core(|core| core.finish_round(kind, now_ms(), fetched, new_epoch))?;
        let report = RoundReport { fetched: planned.fetch, skipped: planned.skipped, published: fx.published.clone() };
        self.execute(fx).await?;
        Ok(report)
    }

    /// Writes the channel copies to KV. A failure is logged and counted, and that channel is
    /// written again by a later round; the hub keeps the authoritative value meanwhile.
    pub(crate) async fn write_kv(&self, values: Vec<StoredValue>) {
        if values.is_empty() {
            return;
        }
        let kv = match self.env.kv(KV_BINDING) {
            Ok(kv) => kv,
            Err(e) => {
                self.line(Level::Error, Event::KvFailed)
                    .kind("binding")
                    .detail(format_args!("no KV binding {KV_BINDING}: {e:?}"))
                    .emit();
                let failed: Vec<Channel> = values.into_iter().map(|v| v.channel).collect();
                let _ = self.with_core(|core| core.kv_writes_done(0, &failed));
                return;
            }
        };
        let (mut ok, mut failed) = (0, Vec::new());
        for v in values {
            let key = KvKey::Latest(v.channel.clone()).to_string();
            let result = match serde_json::to_string(&v) {
                Ok(json) => match kv.put(&key, json) {
                    Ok(put) => put.execute().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => ok += 1,
                Err(e) => {
                    self.line(Level::Error, Event::KvFailed)
                        .kind("write")
                        .detail(format_args!("KV write of {key} failed: {e}"))
                        .emit();
                    failed.push(v.channel);
                }
            }
        }
        // A failed copy is due again next round, so KV is never left behind for long.
        let Ok(dirty) = self.with_core(|core| core.kv_writes_done(ok, &failed)) else { return };
        if let Err(e) = self.persist_keys(&dirty).await {
            self.line(Level::Error, Event::FeedRoundFailed).detail(format_args!("{e:?}")).emit();
        }
    }

    /// The fast BTC poll, when due: runs while anyone watches `btc`; with no watcher `arm`
    /// schedules no poll, so the alarm lapses (no cost while nobody looks).
    pub(crate) async fn fast_poll(&self) {
        self.prune_watchers().await;
        let local = self.btc_watchers();
        let now = now_ms();
        let Ok(due) = self.with_core(|core| core.poll_due(local)) else { return };
        if due.is_none_or(|at| at > now + POLL_SLACK_MS) {
            return;
        }
        let _ = self.with_core(|core| core.upkeep.last_poll = now);
        if let Err(e) = self.run_round(RoundKind::Fast).await {
            self.line(Level::Error, Event::FeedRoundFailed).kind("fast").detail(format_args!("{e:?}")).emit();
        }
    }

    /// After a socket's subscriptions changed: on shard 0 make sure the poll runs; on another
    /// shard tell shard 0 at once when this shard starts watching `btc`, in the background (a
    /// connect or subscribe never waits on the sequencer), and when its last `btc` subscriber
    /// left, have the alarm report the stop a linger period later if none came back
    /// (`btc_watch.rs`: a flapping subscription costs shard 0 no write per flap).
    pub(crate) async fn btc_watchers_changed(&self, before: usize) {
        let after = self.btc_watchers();
        let shard = self.shard();
        let now = now_ms();
        if shard == SEQUENCER {
            if matches!(self.with_core(|core| core.local_watchers_changed(before, after, now)), Ok(true)) {
                self.arm().await;
            }
            return;
        }
        let Ok(start) = self.with_core(|core| {
            let linger_ms = core.feeds.fast_poll_seconds * 1000;
            core.upkeep.btc_watch.changed(before, after, now, linger_ms)
        }) else {
            return;
        };
        if after == 0 && before > 0 {
            self.arm().await; // for the stop report
        }
        if start {
            self.report_start_in_background(shard);
        }
    }

    /// This shard's `btc` subscribers as shard 0 is told them (`/watching`, `/apply` answers):
    /// while its last one left less than a linger period ago it still counts as one.
    pub(crate) fn advertised_btc_watchers(&self) -> usize {
        let count = self.btc_watchers();
        let now = now_ms();
        self.with_core(|core| core.upkeep.btc_watch.advertised(count, now)).unwrap_or(count)
    }

    /// A replica's alarm: reports that it stopped watching `btc` once its last subscriber has
    /// been gone for the linger period. A report that fails is logged; shard 0 checks each
    /// listed watcher before every poll anyway (`prune_watchers`).
    pub(crate) async fn report_watch_stop(&self) {
        let count = self.btc_watchers();
        let now = now_ms();
        if !matches!(self.with_core(|core| core.upkeep.btc_watch.take_stop(count, now)), Ok(true)) {
            return;
        }
        let shard = self.shard();
        if let Err(e) = report_watch(&self.env, &Watch { shard, watching: false }).await {
            self.line(Level::Error, Event::WatchReportFailed)
                .detail(format_args!("could not report that it stopped watching btc: {e:?}"))
                .emit();
        }
    }

    fn report_start_in_background(&self, shard: u32) {
        let env = self.env.clone();
        let report = future_to_promise(async move {
            if let Err(e) = report_watch(&env, &Watch { shard, watching: true }).await {
                log::hub(Level::Error, Event::WatchReportFailed)
                    .shard(shard)
                    .detail(format_args!("could not report btc watchers: {e:?}"))
                    .emit();
            }
            Ok(JsValue::UNDEFINED)
        });
        if let Err(e) = self.state.as_raw().wait_until(&report) {
            self.line(Level::Warn, Event::WaitUntilRefused).detail(format_args!("a watch report: {e:?}")).emit();
        }
    }

    /// Shard `shard` says whether it has `btc` subscribers (`/watch`, or its `/apply` answer):
    /// recorded (written only when it changed), and the poll scheduled for it.
    pub(crate) async fn note_watcher(&self, shard: u32, watching: bool) -> Result<()> {
        let (local, now) = (self.btc_watchers(), now_ms());
        if !self.with_core(|core| core.note_watcher(shard, watching, local, now))? {
            return Ok(());
        }
        self.persist_keys(&[crate::core::storage_key::StorageKey::Watchers]).await?;
        self.arm().await;
        Ok(())
    }

    /// Drops watchers whose shard no longer has `btc` subscribers (a shard that was evicted
    /// without saying so would otherwise keep the poll running forever).
    async fn prune_watchers(&self) {
        let Ok(watchers) = self.with_core(|core| core.watchers()) else { return };
        if watchers.is_empty() {
            return;
        }
        let mut changed = false;
        for k in watchers {
            let count = async { stub::send(&self.env, k, &HubRoute::Watching, None).await?.text().await };
            match count.await.map(|t| t.trim().parse::<usize>()) {
                Ok(Ok(0)) => changed |= matches!(self.with_core(|core| core.set_watcher(k, false)), Ok(true)),
                Ok(Ok(_)) => {}
                // Unreachable or odd answer: keep polling rather than starve a watcher.
                other => self
                    .line(Level::Warn, Event::WatchReportFailed)
                    .peer(k)
                    .detail(format_args!("watcher check: {other:?}"))
                    .emit(),
            }
        }
        // Written only when a watcher was dropped: this runs before every poll.
        if changed {
            if let Err(e) = self.persist_keys(&[crate::core::storage_key::StorageKey::Watchers]).await {
                self.line(Level::Error, Event::FeedRoundFailed).detail(format_args!("{e:?}")).emit();
            }
        }
    }
}

/// `POST /watch` to the sequencer.
async fn report_watch(env: &Env, watch: &Watch) -> Result<()> {
    let json = serde_json::to_string(watch).map_err(|e| Error::RustError(e.to_string()))?;
    match stub::send(env, SEQUENCER, &HubRoute::Watch, Some(json)).await?.status_code() {
        200 => Ok(()),
        status => Err(Error::RustError(format!("/watch answered {status}"))),
    }
}
