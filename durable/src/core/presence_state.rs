//! What one shard keeps in memory for presence (wasm-free): its members, its reports, its
//! mirror of the list and, on shard 0, the global table and the batches on their way to the
//! other shards. Rebuilt from the sockets' attachments when the object wakes (`hub/presence.rs`).

use crate::core::presence::{Batch, LocalPresence, Reporter};
use crate::core::presence_mirror::Mirror;
use crate::core::presence_table::Table;
use std::collections::{BTreeSet, VecDeque};

/// A shard's presence state (memory only; rebuilt from the attachments when the object wakes).
pub struct PresenceState {
    pub local: LocalPresence,
    /// A replica's reports to shard 0.
    pub reporter: Reporter,
    pub mirror: Mirror,
    /// Shard 0's global table.
    pub table: Option<Table>,
    /// Shard 0's batches not yet sent to the replicas, in order, and whether a send is on.
    pub outgoing: VecDeque<Batch>,
    pub sending: bool,
    /// Replicas a batch failed to reach: the alarm sends them a heartbeat.
    pub behind: BTreeSet<u32>,
    /// A socket asked for a list the mirror could not serve: fetch the table.
    pub want_table: bool,
    pub last_check: u64,
}

/// How soon the alarm retries presence work that is owed (a report or batch that failed, a
/// table to fetch).
pub const RETRY_MS: u64 = 5_000;

impl PresenceState {
    /// When the alarm next looks at presence sockets: while this shard has some, or (shard 0)
    /// while any shard has members, whose state it then re-reads.
    pub fn check_at(&self) -> Option<u64> {
        let holders = self.table.as_ref().is_some_and(Table::has_holders);
        match self.local.next_check(self.last_check) {
            None if holders => Some(self.last_check.saturating_add(self.local.check_ms())),
            other => other,
        }
    }
}
