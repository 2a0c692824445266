//! The hub's read routes (wasm glue): `/snapshot` and `/history` pages, and reading a channel's
//! history from storage for them and for catch-ups.

use super::answer::refuse;
use super::Hub;
use crate::api::HubRefusal;
use crate::core::catchup::{ReplayEntries, ReplayRead};
use crate::core::history_budget::HistoryRead;
use crate::core::stats::Internal;
use crate::core::storage_key::{StorageKey, Stored, StoredUpdate};
use crate::log::{Event, Level};
use crate::wire::protocol::{Channel, Seq, Update};
use worker::*;

impl Hub {
    pub(crate) async fn snapshot(&self) -> Result<Response> {
        self.counted(Internal::ApiRead).await;
        if !self.vouch().await {
            return refuse(&HubRefusal::Lagging);
        }
        Response::from_json(&self.with_core(|core| core.snapshot())?)
    }

    /// A page of `channel`'s history after `since`: the core picks the range, storage holds the
    /// updates, the core frames the page.
    pub(crate) async fn history_page(&self, channel: &Channel, since: u64, limit: u64) -> Result<Response> {
        self.counted(Internal::ApiRead).await;
        // A replica that cannot vouch for its state lets the sequencer answer (`heal.rs`).
        if !self.vouch().await {
            return refuse(&HubRefusal::Lagging);
        }
        let Some((from, to)) = self.with_core(|core| core.history_range(channel, since, limit))? else {
            return refuse(&HubRefusal::UnknownChannel);
        };
        let budget = self.with_core(|core| core.limits.history_page_bytes)?;
        let updates = if from <= to { self.history(channel, from, to, budget).await? } else { Vec::new() };
        match self.with_core(|core| core.history_page(channel, since, updates))? {
            Some(page) => Response::from_json(&page),
            None => refuse(&HubRefusal::UnknownChannel),
        }
    }

    /// Retained updates `from..=to` of `channel` in seq order, as many as fit `budget` bytes
    /// of stored JSON; `HistoryRead` decides how the range is listed and when to stop.
    pub(crate) async fn history(&self, channel: &Channel, from: Seq, to: Seq, budget: usize) -> Result<Vec<Update>> {
        let mut updates = Vec::new();
        self.read_history(channel, HistoryRead::new(from, to, budget), |stored| {
            match StorageKey::History(channel.clone(), stored.seq).decode(&stored.json) {
                Ok(Stored::History(u)) => updates.push(u),
                Ok(_) => {}
                Err(e) => self
                    .line(Level::Error, Event::HistoryFailed)
                    .channel(channel)
                    .detail(format_args!("unreadable history entry: {e}"))
                    .emit(),
            }
        })
        .await?;
        Ok(updates)
    }

    /// A catch-up's replay read: the entries as stored text, all within `read.budget` or
    /// `full` (see `HistoryRead::strict`).
    pub(crate) async fn replay_read(&self, channel: &Channel, read: ReplayRead) -> Result<ReplayEntries> {
        let mut updates = Vec::new();
        let strict = HistoryRead::strict(read.from, read.to, read.budget);
        let full = self.read_history(channel, strict, |stored| updates.push(stored)).await?;
        Ok(ReplayEntries { updates, full })
    }

    /// Lists `read`'s range in the batches it asks for and hands `keep` each entry it admits;
    /// answers whether the budget ran out first.
    async fn read_history(
        &self,
        channel: &Channel,
        mut read: HistoryRead,
        mut keep: impl FnMut(StoredUpdate),
    ) -> Result<bool> {
        let end = StorageKey::History(channel.clone(), read.end()).as_string();
        loop {
            let (next, limit) = read.batch();
            let start = StorageKey::History(channel.clone(), next).as_string();
            let mut options = ListOptions::new().start(&start).end(&end);
            if let Some(limit) = limit {
                options = options.limit(limit);
            }
            let map = self.state.storage().list_with_options(options).await?;
            map.for_each(&mut |value, key| {
                let seq = match key.as_string().as_deref().and_then(StorageKey::parse) {
                    Some(StorageKey::History(_, seq)) => Some(seq),
                    _ => None,
                };
                let text = value.as_string();
                if read.offer(seq, text.as_ref().map(String::len)) {
                    if let (Some(seq), Some(json)) = (seq, text) {
                        keep(StoredUpdate { seq, json });
                    }
                }
            });
            if !read.batch_done() {
                return Ok(read.is_full());
            }
        }
    }
}
