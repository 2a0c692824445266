//! The core's feed side: refresh rounds (what to fetch, what the answers change), the KV copies
//! they make due, and who watches `btc` (which drives the fast poll).

use super::{Effects, HubCore};
use crate::core::storage_key::StorageKey;
use crate::feeds::coingecko::PriceAnswer;
use crate::feeds::kv::{kv_write_due, StoredValue};
use crate::feeds::round::{self, Answer, ChannelValue, Fetched, Planned, RoundKind};
use crate::feeds::status::{Outcome, Source};
use crate::wire::bodies::{Confirmed, Sequenced};
use crate::wire::protocol::{Channel, Epoch};

impl HubCore {
    /// Starts a refresh round: which sources to fetch now. Skipped sources are counted here.
    pub fn plan_round(&mut self, kind: RoundKind, now: u64) -> Planned {
        let planned = round::plan(kind, now, &self.feeds, &mut self.upstreams, &mut self.providers);
        for (source, outcome) in &planned.skipped {
            self.upstreams.entry(*source).or_default().record_skip(*outcome);
        }
        planned
    }

    /// Ends a refresh round: records each result, sequences the values that changed, confirms
    /// the ones that held, and decides which KV copies to rewrite.
    pub fn finish_round(
        &mut self,
        kind: RoundKind,
        now: u64,
        fetched: Vec<Fetched>,
        mut new_epoch: impl FnMut() -> Epoch,
    ) -> Effects {
        let mut fx = Effects { dirty: vec![StorageKey::Upstreams, StorageKey::Providers], ..Effects::default() };
        for f in fetched {
            let parsed = f.result.clone().and_then(|body| round::parse(f.source, &body, &self.feeds));
            let (outcome, detail) = match &parsed {
                Ok(_) => (Outcome::Ok, None),
                Err(e) => (e.outcome(), Some(e.to_string())),
            };
            // A cron round and the fast poll can overlap: an answer older than one this source
            // already gave is counted, but its value must not replace the newer one.
            let outdated = self.upstreams.get(&f.source).and_then(|u| u.last_success).is_some_and(|t| t > f.at);
            round::record(&f, outcome, detail, &self.feeds, &mut self.upstreams, &mut self.providers);
            let values = match parsed {
                Ok(_) if outdated => Vec::new(),
                Ok(Answer::Values(values)) => values,
                Ok(Answer::Prices(answer)) => self.price_values(&answer, f.at),
                Err(_) => Vec::new(),
            };
            let observed = f.at;
            for v in values {
                let data = if v.merge {
                    let latest = self.channels.get(&v.channel).and_then(|m| m.latest.as_ref()).map(|l| &l.data);
                    round::merge(latest, v.data)
                } else {
                    v.data
                };
                self.sequence(v.channel.clone(), observed, data, true, &mut new_epoch, &mut fx);
                if let Some(m) = self.channels.get_mut(&v.channel) {
                    m.confirmed_at = m.confirmed_at.max(observed);
                    if let Some(latest) = m.latest.clone() {
                        fx.confirmed.retain(|c| c.latest.update.channel != v.channel);
                        let latest = Sequenced { epoch: m.epoch.clone(), update: latest };
                        fx.confirmed.push(Confirmed { latest, confirmed_at: m.confirmed_at });
                    }
                }
                if !fx.dirty.contains(&StorageKey::Meta(v.channel.clone())) {
                    fx.dirty.push(StorageKey::Meta(v.channel));
                }
            }
        }
        self.due_kv_writes(now, &mut fx);
        // A fast poll that changed nothing tells the other shards nothing: its confirmation
        // would wake every idle shard every few seconds. The next full round confirms for them
        // (STALE_AFTER_SECONDS is minutes, the cron one).
        if kind == RoundKind::Fast && fx.fanout.is_empty() {
            fx.confirmed.clear();
        }
        fx
    }

    /// A price answer's values: each coin it lacks keeps its last good quote from `market`.
    fn price_values(&mut self, answer: &PriceAnswer, at: u64) -> Vec<ChannelValue> {
        let market = Channel::parse("market").ok().and_then(|c| self.channels.get(&c));
        let held = market.and_then(|m| m.latest.as_ref()).map(|l| (&l.data, l.ts));
        let status = self.upstreams.entry(Source::CoingeckoPrice).or_default();
        // `parse` only hands over answers with a bitcoin quote, so this never fails.
        round::price_values(answer, held, at, &self.feeds, status).unwrap_or_default()
    }

    /// KV copies of built-in channels that changed and whose last write is old enough.
    fn due_kv_writes(&mut self, now: u64, fx: &mut Effects) {
        let min_ms = self.feeds.kv_min_write_seconds * 1000;
        for (c, m) in self.channels.iter_mut().filter(|(c, _)| c.is_built_in()) {
            let Some(latest) = &m.latest else { continue };
            if kv_write_due(m.kv_dirty, m.kv_written_at, now, min_ms) {
                fx.kv_writes.push(StoredValue {
                    channel: c.clone(),
                    seq: m.seq,
                    fetched_at: latest.ts,
                    confirmed_at: m.confirmed_at,
                    data: latest.data.clone(),
                });
                m.kv_dirty = false;
                m.kv_written_at = Some(now);
                if !fx.dirty.contains(&StorageKey::Meta(c.clone())) {
                    fx.dirty.push(StorageKey::Meta(c.clone()));
                }
            }
        }
    }

    /// The sequencer's own `btc` subscribers went from `before` to `after` at `now`. Returns
    /// whether the poll must be armed: they went from none to some while no other shard watched,
    /// so the poll's clock starts now (one period before the first poll).
    pub fn local_watchers_changed(&mut self, before: usize, after: usize, now: u64) -> bool {
        let began = before == 0 && after > 0 && self.watchers.is_empty();
        if began {
            self.upkeep.watching_began(now);
        }
        began
    }

    /// Shard `shard` reports at `now` whether it has `btc` subscribers; `local` is this
    /// object's own count. Returns whether the watcher set changed (and must be written). When
    /// nobody watched until this report, the poll's clock starts now.
    pub fn note_watcher(&mut self, shard: u32, watching: bool, local: usize, now: u64) -> bool {
        let was_watched = self.btc_watched(local);
        if !self.set_watcher(shard, watching) {
            return false;
        }
        if watching && !was_watched {
            self.upkeep.watching_began(now);
        }
        true
    }

    /// Whether the fast BTC poll should run: sockets here, or another shard says it has some.
    pub fn btc_watched(&self, local_watchers: usize) -> bool {
        local_watchers > 0 || !self.watchers.is_empty()
    }

    /// Another shard reports whether it has `btc` subscribers. Returns whether that changed.
    pub fn set_watcher(&mut self, shard: u32, watching: bool) -> bool {
        if watching {
            self.watchers.insert(shard)
        } else {
            self.watchers.remove(&shard)
        }
    }

    pub fn watchers(&self) -> Vec<u32> {
        self.watchers.iter().copied().collect()
    }

    /// When the fast poll is next due (None: nobody watches `btc`).
    pub fn poll_due(&self, local_watchers: usize) -> Option<u64> {
        let last_attempt = self.upstreams.get(&Source::CoingeckoPrice).and_then(|u| u.last_attempt);
        let period_ms = self.feeds.fast_poll_seconds * 1000;
        self.upkeep.poll_due(self.btc_watched(local_watchers), last_attempt, period_ms)
    }
}
