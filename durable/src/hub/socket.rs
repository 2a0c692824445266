//! A socket's life on the hub (wasm glue) after its connect (`connect.rs`): its frames and its
//! close, carried out from the actions `core/socket.rs` decides, with its attachment as the record that survives
//! hibernation.

use super::broadcast::attachment;
use super::conflation::held_seq;
use super::Hub;
use crate::api::SocketPublished;
use crate::clock::now_ms;
use crate::core::catchup::{CatchupFrames, CatchupStep};
use crate::core::channel::Catchup;
use crate::core::close::CloseReason;
use crate::core::close::{close_frame, close_reply};
use crate::core::history_budget::CatchupBudget;
use crate::core::presence::holds_presence;
use crate::core::publish::AppPublish;
use crate::core::socket::{Action, SocketMeta};
use crate::log::{self, Event, Level};
use crate::wire::batch::batch_json;
use crate::wire::frame_size::ClientMessage;
use crate::wire::protocol::{Channel, ErrorCode, ServerFrame};
use std::rc::Rc;
use worker::*;

impl Hub {
    pub(crate) async fn websocket_message(self: &Rc<Self>, ws: WebSocket, message: ClientMessage) -> Result<()> {
        self.load().await?;
        // A replica first checks that it can vouch for its state (`heal.rs`): the check may pull
        // from shard 0, an outgoing request during which this socket's other events run, so it
        // must come before the attachment is read; from there to its save nothing awaits but
        // storage (whose input gate holds other events back). Binary frames subscribe to nothing.
        let vouched = match message {
            ClientMessage::Text(_) => self.vouch().await,
            _ => true,
        };
        let Some(mut meta) = attachment(&ws) else {
            // A socket without an attachment was never set up by this hub; drop it.
            let (code, reason) = close_frame(CloseReason::Error);
            let _ = ws.close(Some(code), Some(reason));
            return Ok(());
        };
        if meta.closing {
            return Ok(());
        }
        let now = now_ms();
        let actions = match message {
            ClientMessage::Text(text) => self.with_core(|core| core.message(&mut meta, &text, now))?,
            // Judged by size alone: a binary frame is refused whatever its size, and a text
            // frame refused by its length uncopied is over the limit, which `on_binary` closes
            // with 1009 (as `on_text` would) before anything else.
            ClientMessage::Binary { bytes: len } | ClientMessage::Oversized { min_bytes: len } => {
                let limits = self.with_core(|core| core.limits)?;
                let actions = meta.on_binary(len, now, &limits);
                self.with_core(|core| core.counted_invalid(&actions))?;
                actions
            }
        };
        let (publishes, actions): (Vec<Action>, Vec<Action>) =
            actions.into_iter().partition(|a| matches!(a, Action::Publish(..)));
        let before = self.btc_watchers();
        let had = holds_presence(&meta);
        self.run(&ws, &mut meta, actions, vouched).await;
        self.presence_socket_if(had, &meta.conn, Some(&meta));
        // Saved before anything below awaits (which lets other events for this socket run and
        // save theirs).
        if let Err(e) = ws.serialize_attachment(&meta) {
            self.line(Level::Warn, Event::AttachmentFailed).conn(&meta.conn).detail(format_args!("{e:?}")).emit();
        }
        // Publishes change nothing of the socket's, so they may await (a replica's reaches
        // the sequencer) after its attachment is saved.
        for action in publishes {
            if let Action::Publish(publish, id) = action {
                let answer = self.answer_publish(publish, id).await;
                if let Err(e) = ws.send_with_str(answer.to_json()) {
                    self.line(Level::Warn, Event::SendFailed).conn(&meta.conn).detail(format_args!("{e:?}")).emit();
                }
            }
        }
        self.btc_watchers_changed(before).await;
        self.counters_changed().await;
        self.presence_flush().await;
        Ok(())
    }

    /// A socket's publish, answered `published` or `error` with the client's id.
    async fn answer_publish(self: &Rc<Self>, publish: AppPublish, id: Option<String>) -> ServerFrame {
        let channel = publish.channel.clone();
        match self.socket_publish(publish).await {
            Ok(SocketPublished::Published(p)) => ServerFrame::Published { channel: p.channel, seq: p.seq, id },
            Ok(SocketPublished::Refused { code, message }) => ServerFrame::refusal(code, message, &channel).with_id(id),
            Err(e) => {
                self.line(Level::Error, Event::PublishFailed)
                    .channel(&channel)
                    .detail(format_args!("a socket's publish: {e:?}"))
                    .emit();
                let msg = "the sequencer could not be reached or did not answer: the publish may or may not have been sequenced";
                ServerFrame::refusal(ErrorCode::Unavailable, msg, &channel).with_id(id)
            }
        }
    }

    pub(crate) async fn websocket_close(&self, ws: WebSocket, code: usize) -> Result<()> {
        // Complete the closing handshake, unless `close_reply` says there is nobody to answer.
        // The runtime does not: its `web_socket_auto_reply_to_close` (on at this compatibility
        // date) answers `accept()`ed sockets only, not hibernatable ones (workerd 1.20261117;
        // `tests/e2e/frames.rs` checks the answer).
        if let Some(reply) = close_reply(code) {
            let _ = ws.close(Some(reply), Some("bye"));
        }
        let gone = self.gone(&ws, CloseReason::Client).await;
        self.presence_flush().await;
        gone
    }

    pub(crate) async fn websocket_error(&self, ws: WebSocket, error: wasm_bindgen::JsValue) -> Result<()> {
        self.line(Level::Warn, Event::SocketError).detail(format_args!("{error:?}")).emit();
        let gone = self.gone(&ws, CloseReason::Error).await;
        self.presence_flush().await;
        gone
    }

    /// Carries out a socket's actions in order. Its frames go out as one message where they
    /// can (a connect's welcome and catch-ups are one `batch`), and always before anything
    /// awaits: once the socket is subscribed, a flush may send it live updates, which must
    /// come after its catch-up. Failures are logged: one socket's trouble never fails the event.
    /// The actions are one request (a connect or a client frame): their catch-ups share one
    /// allowance from the socket's replay window (`history_budget::ReplayWindow`). `vouched`
    /// is false on a replica that cannot vouch for its state (`heal.rs`): it then answers every
    /// subscribe with the latest value and `recovered: false`, as if no `since` had been given.
    pub(super) async fn run(&self, ws: &WebSocket, meta: &mut SocketMeta, actions: Vec<Action>, vouched: bool) {
        let Ok((per_window, per_request)) =
            self.with_core(|core| (core.limits.replay_bytes_per_10s, core.limits.history_page_bytes))
        else {
            return self.close(ws, meta, CloseReason::Error);
        };
        let mut budget = meta.replay.begin(now_ms(), per_window, per_request);
        self.run_within(ws, meta, actions, &mut budget, vouched).await;
        meta.replay.end(&budget);
    }

    async fn run_within(
        &self,
        ws: &WebSocket,
        meta: &mut SocketMeta,
        actions: Vec<Action>,
        budget: &mut CatchupBudget,
        vouched: bool,
    ) {
        let mut outbox = Outbox::default();
        for action in actions {
            match action {
                Action::Send(frame) => outbox.push(&frame),
                Action::Subscribe(channel, since) => {
                    let since = if vouched { since } else { None };
                    let now = now_ms();
                    let Ok(step) = self.with_core(|core| core.catchup(&channel, since.as_ref(), budget, now)) else {
                        return self.close(ws, meta, CloseReason::Error);
                    };
                    let frames = match step {
                        CatchupStep::Done(frames) => frames,
                        CatchupStep::Read(read) => {
                            send_frames(ws, &meta.conn, &mut outbox);
                            // Updates sequenced while this reads make the replay incomplete; the
                            // core then answers with the latest value and `recovered: false`.
                            let fetched = match self.replay_read(&channel, read).await {
                                Ok(fetched) => Some(fetched),
                                Err(e) => {
                                    self.line(Level::Error, Event::HistoryFailed)
                                        .channel(&channel)
                                        .detail(format_args!("{e:?}"))
                                        .emit();
                                    None // the core then answers recovered: false
                                }
                            };
                            let now = now_ms();
                            let Ok(frames) = self.with_core(|core| core.replayed(&channel, read, fetched, budget, now))
                            else {
                                return self.close(ws, meta, CloseReason::Error);
                            };
                            frames
                        }
                    };
                    // Updates written but not sent yet go out to the current subscribers first:
                    // the catch-up above includes them, so this socket must not get them again.
                    self.send_pending_after(ws, &meta.conn, &mut outbox);
                    let held = held_seq(&frames.subscribed);
                    outbox.push_catchup(frames);
                    self.index_subscription(meta, &channel, ws, held);
                    if let Some(list) = self.presence_list(meta, &channel) {
                        outbox.push(&list);
                    }
                }
                Action::Held(channel) => {
                    // Its pending updates go out first, so `subscribed` names the seq it has.
                    self.send_pending_after(ws, &meta.conn, &mut outbox);
                    if let Some(frames) = self.held_conflated(meta, &channel, ws) {
                        frames.iter().for_each(|f| outbox.push(f));
                        continue;
                    }
                    let now = now_ms();
                    let Ok(mut frames) =
                        self.with_core(|core| core.catchup_frames(&channel, &Catchup::UpToDate, Vec::new(), now))
                    else {
                        return self.close(ws, meta, CloseReason::Error);
                    };
                    if !vouched {
                        // A replica that cannot vouch for its state cannot say the socket has
                        // every update up to its seq either; the client refetches (`/api/history`).
                        for frame in &mut frames {
                            if let ServerFrame::Subscribed { recovered, .. } = frame {
                                *recovered = false;
                            }
                        }
                    }
                    frames.iter().for_each(|f| outbox.push(f));
                }
                Action::Unsubscribe(channel) => self.with_subscribers(|f| f.unsubscribe(meta, &[channel])),
                // Re-indexed under the new grant's expiry (the index replaces the old entry).
                Action::Regrant => {
                    let private: Vec<Channel> = meta.private_channels().cloned().collect();
                    self.with_subscribers(|f| f.regrant(meta, &private, ws));
                    // A fresh member list where the new token lets it see one.
                    private.iter().filter_map(|c| self.presence_list(meta, c)).for_each(|l| outbox.push(&l));
                }
                // Counted by the core; carried out after the attachment is saved.
                Action::TokenRefused(_) | Action::Publish(..) => {}
                Action::Close(reason) => {
                    send_frames(ws, &meta.conn, &mut outbox);
                    self.close(ws, meta, reason);
                    return;
                }
            }
        }
        send_frames(ws, &meta.conn, &mut outbox);
    }

    /// Sends what is queued for everyone (see `send_pending`), first sending this socket's own
    /// frames so far if anything is queued: the socket may hold channels with queued updates,
    /// and those must not overtake the frames it was answered before them.
    fn send_pending_after(&self, ws: &WebSocket, conn: &str, outbox: &mut Outbox) {
        if !self.write.queue.borrow().is_empty() {
            send_frames(ws, conn, outbox);
        }
        self.send_pending();
    }

    /// A socket the send loop skipped because its token had expired: its private channels end
    /// with `unsubscribed`, reason `token_expired` (its public ones go on).
    pub(crate) fn end_expired(&self, ws: &WebSocket) {
        let Some(mut meta) = attachment(ws) else { return };
        let actions = meta.end_expired(now_ms() / 1000);
        if actions.is_empty() || meta.closing {
            return;
        }
        let mut outbox = Outbox::default();
        for action in actions {
            match action {
                Action::Unsubscribe(channel) => self.with_subscribers(|f| f.unsubscribe(&meta, &[channel])),
                Action::Send(frame) => outbox.push(&frame),
                _ => {}
            }
        }
        // Before the save: a presence state first built now must see the socket as it was.
        self.presence_socket(&meta.conn, Some(&meta));
        if let Err(e) = ws.serialize_attachment(&meta) {
            self.line(Level::Warn, Event::AttachmentFailed).conn(&meta.conn).detail(format_args!("{e:?}")).emit();
        }
        send_frames(ws, &meta.conn, &mut outbox);
    }

    /// The hub ends a connection: counted once, removed from the index, closed with its code.
    pub(crate) fn close(&self, ws: &WebSocket, meta: &mut SocketMeta, reason: CloseReason) {
        meta.closing = true;
        let _ = self.with_core(|core| core.closed(reason));
        self.with_subscribers(|f| f.unsubscribe(meta, &meta.channels));
        self.presence_socket_if(holds_presence(meta), &meta.conn, None);
        let (code, text) = close_frame(reason);
        let _ = ws.serialize_attachment(&*meta);
        let _ = ws.close(Some(code), Some(text));
    }

    /// The peer closed or the socket failed. Counted once: the runtime may report an error and
    /// then a close for one socket, so an error marks the attachment as closing. A close is the
    /// socket's last event and marks nothing: the write would cost each of a mass disconnect's
    /// thousands of closes a serialization for an event that never comes.
    async fn gone(&self, ws: &WebSocket, reason: CloseReason) -> Result<()> {
        self.load().await?;
        if let Some(mut meta) = attachment(ws) {
            let before = self.btc_watchers();
            self.with_subscribers(|f| f.unsubscribe(&meta, &meta.channels));
            self.presence_socket_if(holds_presence(&meta), &meta.conn, None);
            let counted = meta.closing; // by the hub's close or an earlier error
            if !counted && reason == CloseReason::Error {
                meta.closing = true;
                if let Err(e) = ws.serialize_attachment(&meta) {
                    self.line(Level::Warn, Event::AttachmentFailed)
                        .conn(&meta.conn)
                        .detail(format_args!("marking it closed: {e:?}"))
                        .emit();
                }
            }
            self.btc_watchers_changed(before).await;
            if counted {
                return Ok(());
            }
        }
        self.with_core(|core| core.closed(reason))?;
        self.counters_changed().await;
        Ok(())
    }
}

/// A socket's frames not sent yet: pieces of JSON text (a piece may hold several frames joined
/// by commas, as a catch-up shared with other sockets does) and how many frames they hold.
#[derive(Default)]
struct Outbox {
    pieces: Vec<Rc<str>>,
    frames: usize,
}

impl Outbox {
    fn push(&mut self, frame: &ServerFrame) {
        self.pieces.push(frame.to_json().into());
        self.frames += 1;
    }

    fn push_catchup(&mut self, catchup: CatchupFrames) {
        if let Some(updates) = catchup.updates.filter(|_| catchup.count > 0) {
            self.pieces.push(updates);
            self.frames += catchup.count;
        }
        self.push(&catchup.subscribed);
    }
}

/// Sends a socket's accumulated frames as one message (a `batch` when there are several).
fn send_frames(ws: &WebSocket, conn: &str, outbox: &mut Outbox) {
    let sent = match outbox.frames {
        0 => return,
        1 => ws.send_with_str(&*outbox.pieces[0]),
        _ => ws.send_with_str(batch_json(&outbox.pieces.iter().map(|p| &**p).collect::<Vec<_>>())),
    };
    outbox.pieces.clear();
    outbox.frames = 0;
    if let Err(e) = sent {
        log::hub(Level::Warn, Event::SendFailed).conn(conn).detail(format_args!("{e:?}")).emit();
    }
}
