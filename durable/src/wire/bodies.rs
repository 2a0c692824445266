//! JSON bodies beyond the socket's frames that more than one side decodes: the answer to a
//! publish (`/api/publish`), the latest values (`/api/snapshot`), a page of a channel's history
//! (`/api/history`), and what the shards exchange (updates with their epoch,
//! confirmed latest values, a replica's digest and its sync pages, the sequencer's position).
//! The core builds and applies them; `api` names the routes that carry them.

use crate::wire::protocol::{Channel, Epoch, Seq, Update};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The answer to an app publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub channel: Channel,
    pub seq: Seq,
}

/// A built-in channel's latest value for `/api/snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSnapshot {
    pub channel: Channel,
    pub seq: Seq,
    pub data: Value,
    /// When the value was first observed (its update's `ts`), ms.
    pub fetched_at: u64,
    /// When a fetch last confirmed it, ms.
    pub confirmed_at: u64,
}

/// A page of a channel's history (`GET /history` on the sequencer, `/api/history` outside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub channel: Channel,
    pub epoch: Epoch,
    /// The channel's current seq.
    pub seq: Seq,
    /// The oldest seq still retained.
    pub first_retained: Seq,
    /// True when updates right after `since` are no longer retained (the page starts later).
    pub truncated: bool,
    pub updates: Vec<Update>,
    /// The `since` of the next page when the channel has updates after this page's last (the
    /// page ended at its `limit` or its byte budget); `null` at the end.
    pub next: Option<Seq>,
}

/// An update as the sequencer fans it out to the other shards (`POST /apply`), with the epoch
/// its seq belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequenced {
    pub epoch: Epoch,
    pub update: Update,
}

/// What shard 0 sends the other shards (`POST /apply`): new updates, in seq order, and the
/// latest value of each channel a refresh round confirmed. The latter keeps replicas' staleness
/// in step (confirmations are not updates) and brings a new or lagging replica up to date.
/// `deleted` names app channels deleted on the sequencer; a replica removes them before it
/// applies the updates (a deletion travels alone, in its own fan-out, in order with the rest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Apply {
    pub updates: Vec<Sequenced>,
    #[serde(default)]
    pub confirmed: Vec<Confirmed>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<Channel>,
    /// The sequencer's position after this fan-out (`replica_sync`): a replica that did not
    /// get the one before knows it missed something. Only a heartbeat carries nothing else.
    #[serde(default)]
    pub at: Option<Position>,
}

impl Apply {
    /// Whether it changes nothing (a heartbeat, or an event with nothing to fan out).
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.confirmed.is_empty() && self.deleted.is_empty()
    }
}

/// One channel of a replica's digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Have {
    pub channel: Channel,
    pub epoch: Epoch,
    pub seq: Seq,
}

/// The sequencer's answer to `POST /sync`: where it stands (`at`), the latest value of each
/// channel where the replica's digest differs from it, as many as fit the page's byte budget
/// (`HISTORY_PAGE_BYTES`, at least one), and the replica's channels it no longer has. With
/// `more`, the replica applies the page and asks again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncPage {
    pub at: Position,
    pub changed: Vec<Confirmed>,
    pub deleted: Vec<Channel>,
    pub more: bool,
}

/// A channel's latest value and when a fetch last confirmed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirmed {
    pub latest: Sequenced,
    pub confirmed_at: u64,
}

/// Where the sequencer is: `n` fan-outs into the run `run` (a random id per object start, so
/// counts of different runs are never compared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub run: String,
    pub n: u64,
}

impl Position {
    /// A new run of the sequencer, before its first fan-out.
    pub fn start(run: String) -> Position {
        Position { run, n: 0 }
    }

    /// Takes the next fan-out's number and returns the position it stands for.
    pub fn advance(&mut self) -> Position {
        self.n += 1;
        self.clone()
    }
}
