//! What shards tell each other about presence (wasm glue; the rules are in `core/presence.rs`
//! and `core/presence_table.rs`):
//! - a replica reports its transitions to shard 0, one report at a time (`/presence-report`),
//!   and answers shard 0's pull of its full state (`/presence-local`);
//! - shard 0 keeps the global table, numbers the joins and leaves it decides and sends them to
//!   every replica in order (`/presence-events`), and serves the whole table to a shard that
//!   must reload its mirror (`/presence-table`) and a channel's list to the Worker
//!   (`/presence`, for `GET /api/presence`).
//!
//! Shard 0 after it wakes knows only its own sockets: it pulls every replica's full state
//! before it serves or sends anything, and answers 503 meanwhile; once complete, a heartbeat of
//! its new run makes every replica reload its mirror and send its sockets fresh lists.

use super::answer::{answer, refuse};
use super::Hub;
use crate::api::stub;
use crate::api::{HubRefusal, HubRoute, SEQUENCER};
use crate::core::presence::{Batch, Event, Report, TableView};
use crate::core::presence_mirror::Step;
use crate::core::presence_table::{answer as list_answer, Reported, Table};
use crate::log::{self, Level};
use crate::wire::protocol::Channel;
use futures::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::*;

/// How long one presence call between shards may take.
const CALL_MS: u64 = 3_000;

/// How many refused reports one flush follows with a full one before it leaves the rest to
/// the alarm (a refusal means shard 0 missed one, or restarted).
const REFUSALS_PER_FLUSH: usize = 2;

impl Hub {
    /// A presence call to shard `k`, within `CALL_MS`: its status and body.
    async fn presence_call(&self, k: u32, route: &HubRoute, body: Option<String>) -> Result<(u16, String)> {
        let call = async {
            let mut resp = stub::send(&self.env, k, route, body).await?;
            let status = resp.status_code();
            Ok::<_, Error>((status, resp.text().await?))
        };
        let delay = Delay::from(Duration::from_millis(CALL_MS));
        match select(Box::pin(call), delay).await {
            Either::Left((r, _)) => r,
            Either::Right(_) => Err(Error::RustError(format!("shard {k}: no answer within {CALL_MS} ms"))),
        }
    }

    /// Shard 0: applies `change` to the table; joins and leaves it decides are numbered,
    /// shown to this shard's sockets and queued for the replicas. When the table has just
    /// become complete, its events are dropped for a heartbeat of the run instead: every
    /// shard reloads the whole table and sends fresh lists, which include them.
    pub(crate) fn table_changed(&self, change: impl FnOnce(&mut Table) -> Vec<Event>) {
        let Ok(max) = self.with_core(|core| core.limits.max_presence_members) else { return };
        let (frames, completed) = self.with_presence(|p| {
            let Some(table) = p.table.as_mut() else { return (Vec::new(), false) };
            let was = table.is_complete();
            let events = change(table);
            if !was && table.is_complete() {
                let heartbeat = table.batch(Vec::new());
                if let Some(view) = table.view() {
                    p.mirror.load(view);
                }
                p.outgoing.push_back(heartbeat);
                return (Vec::new(), true);
            }
            if events.is_empty() {
                return (Vec::new(), false);
            }
            let batch = table.batch(events);
            p.outgoing.push_back(batch.clone());
            match p.mirror.apply(batch, max) {
                Step::Frames(frames) => (frames, false),
                _ => (Vec::new(), false),
            }
        });
        self.presence_frames(&frames);
        if completed {
            self.presence_lists();
        }
    }

    /// Sends what presence owes: on shard 0, the pull that completes the table and the queued
    /// batches; on a replica, its reports and, if asked for, the table. Then the alarm is set
    /// for the next look.
    pub(crate) async fn presence_flush(&self) {
        // What is owed, read without building the state: a hub without presence pays nothing.
        let owed = self.presence.borrow().as_ref().map(|p| {
            let (want, here) = (p.want_table, !p.local.is_empty());
            (want, here, p.reporter.owed() || !p.outgoing.is_empty())
        });
        let Some((want, here, send)) = owed else { return };
        if !(want || here || send) {
            return;
        }
        if self.shard() == SEQUENCER {
            // Its own table is the one to complete, once presence is used here.
            self.with_presence(|p| p.want_table = false);
            if want || here {
                self.complete_table().await;
            }
            self.send_batches().await;
        } else {
            self.send_reports().await;
            if self.with_presence(|p| std::mem::take(&mut p.want_table)) {
                self.fetch_table().await;
            }
        }
        self.arm().await;
    }

    /// Shard 0: pulls the full state of every replica the table does not know yet.
    pub(crate) async fn complete_table(&self) {
        let missing = self.with_presence(|p| p.table.as_ref().map(Table::missing).unwrap_or_default());
        self.pull_states(missing).await;
    }

    /// Shard 0's alarm: the full state of every replica that has members in the table, so a
    /// replica that lost its sockets without telling does not keep them listed; and a
    /// heartbeat to replicas a batch failed to reach.
    pub(crate) async fn presence_audit(&self, due: bool) {
        if self.shard() != SEQUENCER {
            return;
        }
        if due {
            let holders = self.with_presence(|p| p.table.as_ref().map(Table::holders).unwrap_or_default());
            self.pull_states(holders).await;
        }
        self.with_presence(|p| {
            if !std::mem::take(&mut p.behind).is_empty() {
                if let Some(table) = p.table.as_mut().filter(|t| t.is_complete()) {
                    let heartbeat = table.batch(Vec::new());
                    if let Some(view) = table.view() {
                        p.mirror.load(view);
                    }
                    p.outgoing.push_back(heartbeat);
                }
            }
        });
    }

    async fn pull_states(&self, shards: Vec<u32>) {
        let calls = shards.into_iter().map(|k| async move {
            match self.presence_call(k, &HubRoute::PresenceLocal, None).await {
                Ok((200, body)) => serde_json::from_str::<Report>(&body).ok(),
                Ok((status, _)) => {
                    self.line(Level::Warn, log::Event::PresenceSyncFailed)
                        .peer(k)
                        .kind("pull")
                        .detail(format_args!("shard {k} answered {status} to a presence pull"))
                        .emit();
                    None
                }
                Err(e) => {
                    self.line(Level::Warn, log::Event::PresenceSyncFailed)
                        .peer(k)
                        .kind("pull")
                        .detail(format_args!("{e:?}"))
                        .emit();
                    None
                }
            }
        });
        for report in futures::future::join_all(calls).await.into_iter().flatten() {
            self.table_changed(|table| match table.report(&report) {
                Reported::Applied(events) => events,
                Reported::NeedFull => Vec::new(),
            });
        }
    }

    /// Shard 0: sends the queued batches to every replica, one batch at a time, so each
    /// replica gets them in order. A replica that misses one sees the gap at the next batch
    /// (or the alarm's heartbeat) and reloads the table.
    async fn send_batches(&self) {
        if self.with_presence(|p| std::mem::replace(&mut p.sending, true)) {
            return; // the send in progress takes what was queued
        }
        let shards = self.with_core(|core| core.limits.shards).unwrap_or(1);
        while let Some(batch) = self.with_presence(|p| p.outgoing.pop_front()) {
            let Ok(body) = serde_json::to_string(&batch) else { continue };
            let calls = (1..shards).map(|k| {
                let body = body.clone();
                async move {
                    match self.presence_call(k, &HubRoute::PresenceEvents, Some(body)).await {
                        Ok((200, _)) => None,
                        _ => Some(k),
                    }
                }
            });
            let failed: Vec<u32> = futures::future::join_all(calls).await.into_iter().flatten().collect();
            self.with_presence(|p| p.behind.extend(failed));
        }
        self.with_presence(|p| p.sending = false);
    }

    /// A replica: sends its reports to shard 0, one at a time. A refused one (shard 0 missed
    /// one before it, or does not know this run) is followed by a full one; a failed one is
    /// retried, full, by the alarm.
    async fn send_reports(&self) {
        if self.with_presence(|p| std::mem::replace(&mut p.reporter.sending, true)) {
            return;
        }
        let shard = self.shard();
        let mut refusals = 0;
        // Changes made while a report is on its way go in the next one.
        while refusals <= REFUSALS_PER_FLUSH {
            let Some(report) = self.with_presence(|p| p.reporter.next(&p.local, shard)) else { break };
            let Ok(body) = serde_json::to_string(&report) else { break };
            match self.presence_call(SEQUENCER, &HubRoute::PresenceReport, Some(body)).await {
                Ok((200, _)) => {}
                Ok((409, _)) => {
                    refusals += 1;
                    self.with_presence(|p| p.reporter.failed());
                }
                other => {
                    if let Err(e) = other {
                        self.line(Level::Warn, log::Event::PresenceSyncFailed)
                            .kind("report")
                            .detail(format_args!("presence report to shard 0: {e:?}"))
                            .emit();
                    }
                    self.with_presence(|p| p.reporter.failed());
                    break;
                }
            }
        }
        self.with_presence(|p| p.reporter.sending = false);
    }

    /// A replica: reloads its mirror from shard 0's table and sends its sockets fresh lists.
    async fn fetch_table(&self) {
        if self.with_presence(|p| std::mem::replace(&mut p.mirror.syncing, true)) {
            return;
        }
        for _ in 0..3 {
            let view = match self.presence_call(SEQUENCER, &HubRoute::PresenceTable, None).await {
                Ok((200, body)) => serde_json::from_str::<TableView>(&body).ok(),
                _ => None,
            };
            let Some(view) = view else {
                self.with_presence(|p| {
                    p.mirror.fetch_failed();
                    p.want_table = true; // the alarm tries again
                });
                return;
            };
            if self.with_presence(|p| p.mirror.load(view)) {
                self.presence_lists();
                return;
            }
            self.with_presence(|p| p.mirror.syncing = true);
        }
        self.with_presence(|p| {
            p.mirror.fetch_failed();
            p.want_table = true;
        });
    }

    /// `POST /presence-report` (shard 0).
    pub(crate) async fn presence_report(&self, mut req: Request) -> Result<Response> {
        let Ok(report) = req.json::<Report>().await else {
            return refuse(&HubRefusal::BadRequest("bad presence report"));
        };
        let mut refused = false;
        self.table_changed(|table| match table.report(&report) {
            Reported::Applied(events) => events,
            Reported::NeedFull => {
                refused = true;
                Vec::new()
            }
        });
        if refused {
            return Ok(answer(409, r#"{"need":"full"}"#, None)?.into());
        }
        // Answered as soon as the report is applied: pulling missing shards and sending the
        // batches to every replica may take longer than the reporter waits (one slow shard
        // would make every report time out and turn into a full one), so they go on after.
        let me = self.me.borrow().upgrade();
        match me {
            Some(hub) => {
                let rest = future_to_promise(async move {
                    hub.complete_table().await;
                    hub.presence_flush().await;
                    Ok(JsValue::UNDEFINED)
                });
                if let Err(e) = self.state.as_raw().wait_until(&rest) {
                    self.line(Level::Warn, log::Event::WaitUntilRefused)
                        .detail(format_args!("a presence flush: {e:?}"))
                        .emit();
                }
            }
            None => {
                self.complete_table().await;
                self.presence_flush().await;
            }
        }
        Response::ok("ok")
    }

    /// `GET /presence-local` (replicas): this shard's full state.
    pub(crate) fn presence_local(&self) -> Result<Response> {
        let shard = self.shard();
        Response::from_json(&self.with_presence(|p| p.reporter.full(&p.local, shard)))
    }

    /// `POST /presence-events` (replicas): a batch from shard 0, applied in order.
    pub(crate) async fn presence_events(&self, mut req: Request) -> Result<Response> {
        let Ok(batch) = req.json::<Batch>().await else {
            return refuse(&HubRefusal::BadRequest("bad presence batch"));
        };
        let max = self.with_core(|core| core.limits.max_presence_members)?;
        match self.with_presence(|p| p.mirror.apply(batch, max)) {
            Step::Frames(frames) => self.presence_frames(&frames),
            // With no presence socket here there is nothing to serve: the table is fetched
            // when a socket asks for a list.
            Step::Gap if self.with_presence(|p| p.local.is_empty()) => {}
            Step::Gap => self.fetch_table().await,
            Step::Old | Step::Held => {}
        }
        self.arm().await;
        Response::ok("ok")
    }

    /// `GET /presence-table` (shard 0): the whole table, once it is complete.
    pub(crate) async fn presence_table(&self) -> Result<Response> {
        self.complete_table().await;
        match self.with_presence(|p| p.table.as_ref().and_then(Table::view)) {
            Some(view) => Response::from_json(&view),
            None => incomplete(),
        }
    }

    /// `GET /presence?channel=C` (shard 0): the channel's members, for `GET /api/presence`.
    pub(crate) async fn presence_read(&self, channel: &Channel) -> Result<Response> {
        self.complete_table().await;
        let max = self.with_core(|core| core.limits.max_presence_members)?;
        let list = self.with_presence(|p| p.table.as_ref().filter(|t| t.is_complete()).map(|t| t.list(channel)));
        match list {
            Some(members) => Response::from_json(&list_answer(channel, members, max)),
            None => incomplete(),
        }
    }

    /// Members summed over presence channels (shard 0; 0 elsewhere or while incomplete).
    pub(crate) fn presence_total(&self) -> u64 {
        if self.shard() != SEQUENCER {
            return 0;
        }
        self.with_presence(|p| p.table.as_ref().and_then(Table::total)).unwrap_or(0)
    }
}

/// 503 while shard 0's table is incomplete: a list it cannot vouch for is never served. The
/// body is no internal refusal, so the Worker answers its client 503 too.
fn incomplete() -> Result<Response> {
    let body = crate::wire::error_body::error_body(
        "presence_incomplete",
        "the member list is being rebuilt from every shard; try again shortly",
    );
    Ok(answer(503, &body, None)?.into())
}
