//! The core's reads (`/snapshot`, `/history`): each channel's latest value, and which retained
//! updates a history page holds and how it is framed; the hub reads storage between the two
//! (`hub/read.rs`).

use super::HubCore;
use crate::core::history_budget::next_since;
use crate::wire::bodies::{ChannelSnapshot, HistoryPage};
use crate::wire::protocol::{Channel, Seq, Update};

impl HubCore {
    /// Which retained updates a history page after `since` holds (at most `limit`), or None for
    /// a channel that does not exist. The shell reads the range and calls [`HubCore::history_page`].
    pub fn history_range(&self, channel: &Channel, since: u64, limit: u64) -> Option<(Seq, Seq)> {
        let m = self.channels.get(channel)?;
        let from = since.saturating_add(1).max(m.first_retained.0);
        let to = m.seq.0.min(from.saturating_add(limit.max(1)) - 1);
        Some((Seq(from), Seq(to)))
    }

    pub fn history_page(&self, channel: &Channel, since: u64, updates: Vec<Update>) -> Option<HistoryPage> {
        let m = self.channels.get(channel)?;
        let next = next_since(updates.last().map(|u| u.seq.0), m.seq.0).map(Seq);
        Some(HistoryPage {
            next,
            channel: channel.clone(),
            epoch: m.epoch.clone(),
            seq: m.seq,
            first_retained: m.first_retained,
            truncated: since.saturating_add(1) < m.first_retained.0,
            updates,
        })
    }

    /// Latest values of the built-in channels, for `/api/snapshot`.
    pub fn snapshot(&self) -> Vec<ChannelSnapshot> {
        self.channels
            .iter()
            .filter(|(c, _)| c.is_built_in())
            .filter_map(|(c, m)| {
                let latest = m.latest.as_ref()?;
                Some(ChannelSnapshot {
                    channel: c.clone(),
                    seq: m.seq,
                    data: latest.data.clone(),
                    fetched_at: latest.ts,
                    confirmed_at: m.confirmed_at,
                })
            })
            .collect()
    }
}
