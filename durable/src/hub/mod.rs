//! The hub Durable Object: holds browsers' WebSockets (hibernation API) and broadcasts updates.
//!
//! A shell around [`HubCore`]: it loads the core from storage on first use, hands it each event
//! and carries out what it returns. This file is the struct; `load.rs` loads it and `router.rs`
//! routes a request. Each route's glue is in a file named after it: `publish.rs`, `connect.rs`,
//! `socket.rs` (a socket's frames and close), `delete.rs` (app channel deletes), `apply.rs` (a
//! replica's `/apply`), `read.rs` (`/snapshot`, `/history` and history reads), `feeds.rs`,
//! `upkeep.rs` (the alarm), `heal.rs` (healing replicas). Writing, group commit's flush and
//! fan-out are the write path, `write.rs`; sending to this object's sockets is `broadcast.rs`, and
//! conflated delivery's ticks `conflation.rs`;
//! the class the runtime calls is `object.rs`.
//! Client requests the Worker forwards unchanged (`api/route.rs`): `GET /ws` and, on shard 0 (the
//! sequencer), `POST /api/publish` and `DELETE /api/channels/<name>`. The internal routes are
//! [`HubRoute`]s (`api/mod.rs`), reached only through the Worker or another shard.
//!
//! Connects, closes and client frames write nothing to storage: counters live in memory and
//! are written by the alarm (`upkeep.rs`, deciding in `core/upkeep.rs`) or with the next
//! write that happens anyway.

mod answer;
mod apply;
mod broadcast;
mod conflation;
mod connect;
mod delete;
mod feeds;
mod heal;
mod load;
pub(crate) mod object;
mod presence;
mod presence_sync;
mod publish;
mod read;
mod router;
mod socket;
mod upkeep;
mod write;

use crate::clock::now_ms;
use crate::core::commit::CommitQueue;
use crate::core::replica_backoff::ReplicaBackoff;
use crate::core::replica_sync::Follow;
use crate::core::HubCore;
use crate::hub::broadcast::Subscribers;
use crate::log::{self, Event, Level, Line};
use crate::wire::bodies::Position;
use crate::wire::protocol::{Epoch, PING, PONG};
use futures::channel::oneshot;
use futures::future::Shared;
use std::cell::{Cell, RefCell};
use std::rc::Weak;
use worker::*;

pub(crate) struct Hub {
    pub(crate) state: State,
    pub(crate) env: Env,
    /// Loaded lazily: after hibernation the object is rebuilt and reads storage again.
    pub(crate) core: RefCell<Option<HubCore>>,
    /// Rebuilt lazily from the sockets' attachments after a wake.
    pub(crate) subscribers: RefCell<Option<Subscribers>>,
    /// The write path's state (`write.rs`).
    pub(crate) write: WritePath,
    /// The alarm as this object last set or read it; None until read once.
    pub(crate) alarm_at: Cell<Option<Option<u64>>>,
    /// How far this replica follows shard 0, and the pull in progress if any (`heal.rs`).
    pub(crate) follow: RefCell<Follow>,
    pub(crate) healing: RefCell<Option<Shared<oneshot::Receiver<bool>>>>,
    /// Presence: this shard's members, its mirror of the list and (shard 0) the global table
    /// (`presence.rs`); rebuilt lazily from the attachments after a wake.
    pub(crate) presence: RefCell<Option<crate::core::presence_state::PresenceState>>,
    /// Whether the alarm has looked for presence sockets since the object woke (`presence.rs`).
    pub(crate) presence_scanned: Cell<bool>,
    /// The hub itself, for work that outlives the event that starts it (conflated delivery's
    /// ticks, `conflation.rs`); set once the hub is behind its `Rc` (`object.rs`).
    pub(crate) me: RefCell<Weak<Hub>>,
}

/// What the write path (`write.rs`) keeps between events: the group-commit queue and, on shard
/// 0, the chain of fan-outs, the replicas left out of them and their numbering.
pub(crate) struct WritePath {
    /// Frames written but not yet sent (group commit).
    pub(crate) queue: RefCell<CommitQueue>,
    /// Completes when the last fan-out started has finished: each fan-out waits for the one
    /// before, so replicas receive updates in seq order (see `Hub::fan_out`).
    pub(crate) fanout_tail: RefCell<Option<Shared<oneshot::Receiver<()>>>>,
    /// Replica shards left out of fan-outs after a failure (shard 0 only).
    pub(crate) replicas: RefCell<ReplicaBackoff>,
    /// The number of the last fan-out (shard 0 only; `core/replica_sync.rs`).
    pub(crate) position: RefCell<Position>,
}

impl Hub {
    /// A log line from this shard (`log.rs`: one JSON object with the shard in it).
    pub(crate) fn line(&self, level: Level, event: Event) -> Line {
        log::hub(level, event).shard(self.shard())
    }

    pub(crate) fn new(state: State, env: Env) -> Self {
        // The runtime answers `ping` with `pong` itself, without waking a hibernating object.
        match WebSocketRequestResponsePair::new(PING, PONG) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => log::hub(Level::Error, Event::SetupFailed)
                .detail(format_args!("could not set the ping auto-response: {e:?}"))
                .emit(),
        }
        Self {
            state,
            env,
            core: RefCell::new(None),
            subscribers: RefCell::new(None),
            write: WritePath {
                queue: RefCell::new(CommitQueue::default()),
                fanout_tail: RefCell::new(None),
                replicas: RefCell::new(ReplicaBackoff::default()),
                position: RefCell::new(Position::start(random_hex())),
            },
            alarm_at: Cell::new(None),
            follow: RefCell::new(Follow::default()),
            healing: RefCell::new(None),
            presence: RefCell::new(None),
            presence_scanned: Cell::new(false),
            me: RefCell::new(Weak::new()),
        }
    }
}

/// A random id (16 hex digits): connection ids and channel epochs.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Fall back to the clock: these only need to differ between connections or resets.
        bytes = now_ms().to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn new_epoch() -> Epoch {
    Epoch(random_hex())
}
