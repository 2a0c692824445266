//! Presence on a shard (wasm glue; the decisions are in `core/presence.rs` and
//! `core/presence_table.rs`): this shard's members, kept from its sockets' attachments, the
//! `presence` list a socket gets when it subscribes, the `join`/`leave` frames sent to the
//! channel's sockets that may see them, and the alarm's look for silent and expired presence
//! sockets. What shards tell each other is `presence_sync.rs`.

use super::broadcast::attachment;
use super::{random_hex, Hub};
use crate::clock::now_ms;
use crate::core::close::CloseReason;
use crate::core::presence::{holds_presence, may_see, Frame, LocalPresence, Presence, Reporter, Verdict};
use crate::core::presence_mirror::Mirror;
use crate::core::presence_state::{PresenceState, RETRY_MS};
use crate::core::presence_table::Table;
use crate::core::socket::SocketMeta;
use crate::log::{Event, Level};
use crate::wire::presence::is_presence;
use crate::wire::protocol::{Channel, ServerFrame};
use std::collections::{BTreeSet, VecDeque};
use wasm_bindgen::prelude::*;
use worker::*;

#[wasm_bindgen]
extern "C" {
    /// The runtime's state object, for the one method worker 0.8 does not bind.
    type RawState;

    /// When the runtime last answered this socket's `ping` with its auto-response (a `Date`,
    /// or null if it never did).
    #[wasm_bindgen(method, js_name = getWebSocketAutoResponseTimestamp)]
    fn auto_response_timestamp(this: &RawState, ws: &worker::web_sys::WebSocket) -> JsValue;
}

impl Hub {
    /// Runs `f` on the presence state, first rebuilding it from the sockets' attachments.
    pub(crate) fn with_presence<T>(&self, f: impl FnOnce(&mut PresenceState) -> T) -> T {
        let mut guard = self.presence.borrow_mut();
        let state = guard.get_or_insert_with(|| {
            let now = now_ms();
            let silent_s = self.with_core(|core| core.limits.presence_silent_seconds).unwrap_or(60);
            let mut local = LocalPresence::new(silent_s.saturating_mul(1000));
            for ws in self.state.get_websockets() {
                if let Some(meta) = attachment(&ws) {
                    local.set(&meta.conn, Presence::of(&meta), now);
                }
            }
            let shards = self.with_core(|core| core.limits.shards).unwrap_or(1);
            let table = (self.shard() == 0).then(|| {
                let mut table = Table::new(shards, random_hex());
                table.local(&local.snapshot());
                table
            });
            // A single shard's table is complete at once; with replicas it is loaded once they
            // have all sent their state (`presence_sync.rs`).
            let mut mirror = Mirror::default();
            if let Some(view) = table.as_ref().and_then(Table::view) {
                mirror.load(view);
            }
            PresenceState {
                local,
                reporter: Reporter::new(random_hex()),
                mirror,
                table,
                outgoing: VecDeque::new(),
                sending: false,
                behind: BTreeSet::new(),
                want_table: false,
                last_check: now,
            }
        });
        f(state)
    }

    /// A socket's presence may have changed (its attachment is `meta`; None: it is gone):
    /// its shard's transitions go to the table (shard 0) or into the next report.
    pub(crate) fn presence_socket(&self, conn: &str, meta: Option<&SocketMeta>) {
        let presence = meta.and_then(Presence::of);
        if presence.is_none() && !self.with_presence(|p| p.local.has(conn)) {
            return; // no presence socket: the common case costs one lookup
        }
        let shard0 = self.shard() == 0;
        let changes = self.with_presence(|p| p.local.set(conn, presence, now_ms()));
        if changes.is_empty() {
            return;
        }
        if shard0 {
            self.table_changed(|table| table.local(&changes));
        } else {
            self.with_presence(|p| p.reporter.changed(changes));
        }
    }

    /// [`Hub::presence_socket`] for a socket whose attachment held a presence channel before
    /// (`had`) or not: while no presence state was built in this object's lifetime, a socket
    /// that held none and holds none is nobody's member, and nothing is built for it (so a hub
    /// without presence never reads every attachment for it).
    pub(crate) fn presence_socket_if(&self, had: bool, conn: &str, meta: Option<&SocketMeta>) {
        if !had && self.presence.borrow().is_none() && meta.and_then(Presence::of).is_none() {
            return;
        }
        self.presence_socket(conn, meta);
    }

    /// The `presence` frame for a socket that just subscribed to `channel`, if it may see the
    /// list and this shard's mirror can serve it (otherwise the table is fetched, and the
    /// socket gets the list with every other one when it is loaded).
    pub(crate) fn presence_list(&self, meta: &SocketMeta, channel: &Channel) -> Option<ServerFrame> {
        if !is_presence(channel.as_str()) || !may_see(meta, channel) {
            return None;
        }
        let max = self.with_core(|core| core.limits.max_presence_members).ok()?;
        let list = self.with_presence(|p| p.mirror.list(channel, max));
        if list.is_none() {
            self.with_presence(|p| p.want_table = true);
        }
        list.map(ServerFrame::Presence)
    }

    /// Sends presence frames to the sockets of their channels that may see them; a socket
    /// whose token expired is skipped and its private channels end.
    /// The expired sockets are ended after every frame is sent: ending one sends its own
    /// leave at once, which must not overtake the frames of this batch (their counts).
    pub(crate) fn presence_frames(&self, frames: &[Frame]) {
        let now_s = now_ms() / 1000;
        let mut expired = Vec::new();
        for frame in frames {
            let json = ServerFrame::Presence(frame.clone()).to_json();
            expired.extend(self.with_subscribers(|f| f.send_presence(frame.channel(), &json, now_s)));
        }
        for ws in &expired {
            self.end_expired(ws); // which ends its presence too
        }
    }

    /// Fresh lists to every socket of this shard's presence channels that may see them (after
    /// the mirror was loaded).
    pub(crate) fn presence_lists(&self) {
        let Ok(max) = self.with_core(|core| core.limits.max_presence_members) else { return };
        let frames: Vec<Frame> = self.with_presence(|p| {
            let channels: Vec<Channel> = p.local.channels().cloned().collect();
            channels.iter().filter_map(|c| p.mirror.list(c, max)).collect()
        });
        self.presence_frames(&frames);
    }

    /// When the alarm must next serve presence: the look for silent and expired sockets while
    /// this shard has presence sockets (or, on shard 0, members anywhere), and soon when work
    /// is owed (a report, a batch, a replica left behind, a table to fetch).
    pub(crate) fn presence_due(&self) -> Option<u64> {
        let replica = self.shard() != 0;
        self.presence.borrow().as_ref().and_then(|p| {
            let owed = replica && p.reporter.owed() || !p.outgoing.is_empty() || !p.behind.is_empty() || p.want_table;
            let check = p.check_at();
            if owed {
                let soon = now_ms().saturating_add(RETRY_MS);
                Some(check.map_or(soon, |c| c.min(soon)))
            } else {
                check
            }
        })
    }

    /// The alarm's presence work: presence sockets whose token expired lose their private
    /// channels, silent ones are closed (both leave), and what is owed is sent.
    pub(crate) async fn presence_upkeep(&self) {
        // After a wake the state is rebuilt lazily, by socket, report and request events; the
        // alarm must rebuild it too (once per object lifetime, like the subscriber index), or a
        // member who vanished or whose token expired while the hub slept would never leave.
        if self.presence.borrow().is_none() && !self.presence_scanned.replace(true) {
            let held = self.state.get_websockets().iter().any(|ws| attachment(ws).is_some_and(|m| holds_presence(&m)));
            if held {
                self.with_presence(|_| ());
            }
        }
        if self.presence.borrow().is_none() {
            return;
        }
        let now = now_ms();
        let due = self.with_presence(|p| p.check_at()).is_some_and(|at| at <= now);
        if due {
            self.with_presence(|p| p.last_check = now);
            let raw: &RawState = self.state.as_raw().unchecked_ref();
            let mut unseen: BTreeSet<String> = self.with_presence(|p| p.local.conns());
            for ws in self.state.get_websockets() {
                let Some(mut meta) = attachment(&ws) else { continue };
                unseen.remove(&meta.conn);
                let stamp = raw.auto_response_timestamp(ws.as_ref());
                let pinged = stamp.dyn_ref::<js_sys::Date>().map(|d| d.get_time().max(0.0) as u64);
                match self.with_presence(|p| p.local.verdict(&meta.conn, pinged, meta.window_start, now)) {
                    Verdict::Keep => {}
                    Verdict::Expired => {
                        self.end_expired(&ws);
                        self.presence_socket(&meta.conn, None); // its presence channels ended
                    }
                    Verdict::Silent if !meta.closing => {
                        self.line(Level::Info, Event::SocketSilent)
                            .conn(&meta.conn)
                            .detail("closing it: silent for too long")
                            .emit();
                        self.close(&ws, &mut meta, CloseReason::Silent);
                    }
                    Verdict::Silent => {}
                }
            }
            // A socket the runtime no longer has (its close never reached this object) leaves.
            for conn in unseen {
                self.presence_socket(&conn, None);
            }
        }
        self.presence_audit(due).await;
        self.presence_flush().await;
    }
}
