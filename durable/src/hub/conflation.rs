//! Conflated delivery's glue (wasm): placing a subscribing socket in its class, arming a class's
//! tick when a flush changes its channel, and the tick itself. What a tick sends is decided in
//! `core/classes.rs`; the send loop is `broadcast.js` (`tick`).
//!
//! The timer: one `Delay` per class, armed by the flush that first changed the class's channel
//! since its last tick and run as a future the runtime waits for (`waitUntil`). No timer runs
//! per socket, none while no class has a pending change (a channel that does not change costs
//! nothing), and a hub whose sockets are idle has no timer left and hibernates. The hub's one
//! alarm was the other choice: it is a storage write per set, shared with upkeep's schedule,
//! and a 250 ms class would set it four times a second.

use super::broadcast::attachment;
use super::Hub;
use crate::clock::now_ms;
use crate::core::channel::Catchup;
use crate::core::classes::{class_key, parse_class_key, Placement};
use crate::core::close::CloseReason;
use crate::core::commit::ChannelFrames;
use crate::core::socket::SocketMeta;
use crate::log::{Event, Level};
use crate::wire::every::Every;
use crate::wire::protocol::{Channel, Seq, ServerFrame};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::Array;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::{web_sys, Delay, WebSocket};

/// The seq a catch-up left the socket at (its `subscribed` frame's).
pub(crate) fn held_seq(subscribed: &ServerFrame) -> Seq {
    match subscribed {
        ServerFrame::Subscribed { seq, .. } => *seq,
        _ => Seq(0),
    }
}

impl Hub {
    /// Indexes a socket's new subscription, caught up to `held`: unconflated as ever, or in its
    /// class (in step, or fresh with what it holds).
    pub(crate) fn index_subscription(&self, meta: &SocketMeta, channel: &Channel, ws: &WebSocket, held: Seq) {
        let Some(every) = meta.every_of(channel) else {
            return self.with_subscribers(|f| f.subscribe(meta, std::slice::from_ref(channel), ws));
        };
        let class = class_key(channel, every);
        let empty = self.with_subscribers(|f| f.class_size(&class)) == 0;
        let placement =
            self.with_core(|core| core.join_class(channel, every, held, empty)).unwrap_or(Placement::Fresh(held));
        let base = match placement {
            Placement::InStep => -1.0,
            Placement::Fresh(seq) => seq.0 as f64,
        };
        let expiry = meta.expiry(channel).map_or(-1.0, |e| e as f64);
        let raw: &web_sys::WebSocket = ws.as_ref();
        self.with_subscribers(|f| {
            f.add_conflated(channel.as_str(), &class, &meta.conn, raw, expiry, meta.delta, base);
            f.index_presence(meta, channel, raw, expiry);
        });
    }

    /// A `subscribe` to a conflated channel the socket holds: it cannot say which seq the
    /// socket holds between ticks, so it answers the latest value and `subscribed` with
    /// `recovered: false`, and the socket is fresh in its class from there. None: not conflated.
    pub(crate) fn held_conflated(
        &self,
        meta: &SocketMeta,
        channel: &Channel,
        ws: &WebSocket,
    ) -> Option<Vec<ServerFrame>> {
        meta.every_of(channel)?;
        let now = now_ms();
        let frames = self.with_core(|core| core.catchup_frames(channel, &Catchup::Latest, Vec::new(), now)).ok()?;
        let held = frames.last().map_or(Seq(0), held_seq);
        self.with_subscribers(|f| f.unsubscribe(meta, std::slice::from_ref(channel)));
        self.index_subscription(meta, channel, ws, held);
        Some(frames)
    }

    /// After a flush: arms the tick of each class of a flushed channel that has none armed.
    pub(crate) fn arm_ticks(&self, flush: &[ChannelFrames]) {
        let channels: Array =
            flush.iter().filter(|c| !c.delta).map(|c| JsValue::from_str(c.channel.as_str())).collect();
        let keys = self.with_subscribers(|f| f.classes_of(channels));
        if keys.length() == 0 {
            return;
        }
        let classes = keys.iter().filter_map(|k| parse_class_key(&k.as_string()?));
        let Ok(armed) = self.with_core(|core| core.arm_classes(classes)) else { return };
        let Some(hub) = self.me.borrow().upgrade() else { return };
        for (channel, every) in armed {
            let hub = Rc::clone(&hub);
            let tick = future_to_promise(async move {
                Delay::from(Duration::from_millis(every.ms())).await;
                hub.tick(&channel, every).await;
                Ok(JsValue::UNDEFINED)
            });
            if let Err(e) = self.state.as_raw().wait_until(&tick) {
                self.line(Level::Warn, Event::WaitUntilRefused).detail(format_args!("a conflation tick: {e:?}")).emit();
            }
        }
    }

    /// A class's tick: the latest value to its sockets if the channel moved (`core/conflation.rs`).
    async fn tick(&self, channel: &Channel, every: Every) {
        let class = class_key(channel, every);
        let deltas = self.with_subscribers(|f| f.class_has_delta(&class));
        let Ok(tick) = self.with_core(|core| core.tick_class(channel, every, deltas)) else { return };
        let (full, delta) = match &tick.frames {
            Some(f) => (f.full.as_str(), f.delta.as_deref().unwrap_or("")),
            None => ("", ""),
        };
        let (seq, now) = (tick.seq.0 as f64, (now_ms() / 1000) as f64);
        let r = self.with_subscribers(|f| f.tick(&class, full, delta, &tick.fresh_head, tick.fresh_tail, seq, now));
        let sockets = |v: JsValue| -> Vec<WebSocket> {
            Array::from(&v)
                .iter()
                .filter_map(|v| v.dyn_into::<web_sys::WebSocket>().ok().map(WebSocket::from))
                .collect()
        };
        let number = |v: JsValue| v.as_f64().unwrap_or(0.0) as u64;
        let (failed, expired) = (sockets(r.get(0)), sockets(r.get(3)));
        let (reached, fresh_built, left) = (number(r.get(1)), number(r.get(2)), number(r.get(4)));
        let built = tick.frames.as_ref().map_or(0, |f| f.built()) + fresh_built;
        let _ = self.with_core(|core| {
            core.count_tick(built);
            core.record_delivery(channel, reached, failed.len() as u64);
            if left == 0 {
                core.drop_class(channel, every);
            }
        });
        for ws in &failed {
            if let Some(mut meta) = attachment(ws) {
                self.line(Level::Warn, Event::SendFailed).conn(&meta.conn).detail("closing it").emit();
                self.close(ws, &mut meta, CloseReason::SendFailed);
            }
        }
        for ws in &expired {
            self.end_expired(ws);
        }
        self.counters_changed().await;
    }
}
