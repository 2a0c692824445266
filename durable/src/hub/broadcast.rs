//! Which sockets listen to which channel, and the broadcast send loop: a thin binding to
//! `durable/js/broadcast.js`, which keeps the subscribers in JavaScript so that one flush crosses
//! the wasm boundary once, not once per socket (each crossing also copied the socket handle).
//! What the loop sends is planned in Rust (`core/commit.rs`, `plan`).

use crate::core::classes::class_key;
use crate::core::commit::ChannelFrames;
use crate::core::socket::SocketMeta;
use crate::wire::batch::{BATCH_PREFIX, BATCH_SUFFIX};
use crate::wire::presence::is_presence;
use crate::wire::protocol::Channel;
use wasm_bindgen::prelude::*;
use worker::js_sys::Array;
use worker::web_sys;
use worker::WebSocket;

#[wasm_bindgen(module = "/js/broadcast.js")]
extern "C" {
    /// The subscriber index (channel -> conn -> socket) and its send loops.
    pub type Subscribers;

    #[wasm_bindgen(constructor)]
    fn new() -> Subscribers;

    #[wasm_bindgen(method)]
    fn add(this: &Subscribers, channel: &str, conn: &str, ws: &JsValue, expiry: f64);

    #[wasm_bindgen(method)]
    fn remove(this: &Subscribers, channel: &str, conn: &str);

    #[wasm_bindgen(method)]
    fn count(this: &Subscribers, channel: &str) -> u32;

    #[wasm_bindgen(method, js_name = sendOne)]
    fn send_one(this: &Subscribers, channel: &str, message: &str, now: f64) -> Array;

    #[wasm_bindgen(method, js_name = sendMany)]
    fn send_many(
        this: &Subscribers,
        channels: Array,
        alone: Array,
        parts: Array,
        prefix: &str,
        suffix: &str,
        now: f64,
    ) -> Array;

    #[wasm_bindgen(method, js_name = addConflated)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_conflated(
        this: &Subscribers,
        channel: &str,
        class: &str,
        conn: &str,
        ws: &JsValue,
        expiry: f64,
        delta: bool,
        base: f64,
    );

    #[wasm_bindgen(method)]
    fn reexpire(this: &Subscribers, channel: &str, conn: &str, expiry: f64);

    #[wasm_bindgen(method)]
    fn total(this: &Subscribers, channel: &str) -> u32;

    #[wasm_bindgen(method, js_name = classSize)]
    pub(crate) fn class_size(this: &Subscribers, class: &str) -> u32;

    #[wasm_bindgen(method, js_name = classesOf)]
    pub(crate) fn classes_of(this: &Subscribers, channels: Array) -> Array;

    #[wasm_bindgen(method)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tick(
        this: &Subscribers,
        class: &str,
        full: &str,
        delta: &str,
        head: &str,
        tail: &str,
        seq: f64,
        now: f64,
    ) -> Array;
}

/// A channel's key in the index: its name, or for sockets that asked for deltas its name and
/// `+delta` (no channel name holds a `+`), so each group gets its own frames.
fn key(channel: &Channel, delta: bool) -> std::borrow::Cow<'_, str> {
    if delta {
        format!("{channel}+delta").into()
    } else {
        channel.as_str().into()
    }
}

/// The key of a presence channel's sockets that may see its member list (`+presence`: no
/// channel name holds a `+`); they get its `presence`, `join` and `leave` frames.
fn presence_key(channel: &Channel) -> String {
    format!("{channel}+presence")
}

/// What a flush did: sockets whose send failed (to be closed), per flushed channel how many
/// sockets it reached, how many messages it sent, and the sockets skipped because their token
/// had expired (their private channels are to be ended).
pub struct Sent {
    pub failed: Vec<WebSocket>,
    pub reached: Vec<u64>,
    pub messages: u64,
    pub expired: Vec<WebSocket>,
}

/// A socket's attachment: the record of its subscriptions that survives hibernation, from
/// which the index is rebuilt.
pub(crate) fn attachment(ws: &WebSocket) -> Option<SocketMeta> {
    ws.deserialize_attachment::<SocketMeta>().ok().flatten()
}

impl Subscribers {
    /// An index rebuilt from the sockets' attachments (after the object wakes up).
    pub fn rebuild(sockets: impl IntoIterator<Item = (SocketMeta, WebSocket)>) -> Subscribers {
        let subscribers = Subscribers::new();
        for (meta, ws) in sockets {
            subscribers.subscribe(&meta, &meta.channels, &ws);
        }
        subscribers
    }

    /// Indexes the socket's `channels`; a conflated one in step with its class (as a socket
    /// rebuilt after a wake is; a live subscribe places it with `hub/conflation.rs`).
    pub fn subscribe(&self, meta: &SocketMeta, channels: &[Channel], ws: &WebSocket) {
        let raw: &web_sys::WebSocket = ws.as_ref();
        let conflated = meta.conflated();
        for channel in channels {
            // -1: a public channel's subscriber, which never expires (0 is long past).
            let expiry = meta.expiry(channel).map_or(-1.0, |e| e as f64);
            match conflated.get(channel).copied() {
                None => self.add(&key(channel, meta.delta), &meta.conn, raw, expiry),
                Some(every) => {
                    let class = class_key(channel, every);
                    self.add_conflated(channel.as_str(), &class, &meta.conn, raw, expiry, meta.delta, -1.0)
                }
            }
            self.index_presence(meta, channel, raw, expiry);
        }
    }

    /// A presence channel's socket, indexed again (or no longer, after an `auth` without the
    /// capability) under the key of the sockets that may see the member list.
    pub fn index_presence(&self, meta: &SocketMeta, channel: &Channel, raw: &web_sys::WebSocket, expiry: f64) {
        if is_presence(channel.as_str()) {
            if crate::core::presence::may_see(meta, channel) {
                self.add(&presence_key(channel), &meta.conn, raw, expiry);
            } else {
                self.remove(&presence_key(channel), &meta.conn);
            }
        }
    }

    /// The socket's private `channels` expire at its new grant's time.
    pub fn regrant(&self, meta: &SocketMeta, channels: &[Channel], ws: &WebSocket) {
        let conflated = meta.conflated();
        for channel in channels {
            match conflated.get(channel) {
                None => self.subscribe(meta, std::slice::from_ref(channel), ws),
                Some(_) => {
                    let expiry = meta.expiry(channel).map_or(-1.0, |e| e as f64);
                    self.reexpire(channel.as_str(), &meta.conn, expiry);
                    self.index_presence(meta, channel, ws.as_ref(), expiry);
                }
            }
        }
    }

    pub fn unsubscribe(&self, meta: &SocketMeta, channels: &[Channel]) {
        for channel in channels {
            // Also takes it out of the channel's classes (`broadcast.js`, `remove`).
            self.remove(&key(channel, meta.delta), &meta.conn);
            if is_presence(channel.as_str()) {
                self.remove(&presence_key(channel), &meta.conn);
            }
        }
    }

    /// Sends a presence frame of `channel` to its sockets that may see the member list;
    /// returns the sockets skipped because their token had expired.
    pub fn send_presence(&self, channel: &Channel, message: &str, now_s: u64) -> Vec<WebSocket> {
        let result = self.send_one(&presence_key(channel), message, now_s as f64);
        Array::from(&result.get(3))
            .iter()
            .filter_map(|v| v.dyn_into::<web_sys::WebSocket>().ok().map(WebSocket::from))
            .collect()
    }

    /// Whether the class `channel@ms` has delta sockets in step (its patch is worth building).
    pub fn class_has_delta(&self, class: &str) -> bool {
        self.count(&format!("{class}+delta")) > 0
    }

    /// Every socket of `channel`, conflated ones included.
    pub fn subscribers(&self, channel: &Channel) -> usize {
        self.total(channel.as_str()) as usize
    }

    /// Whether any socket of `channel` asked for delta frames.
    pub fn has_delta(&self, channel: &Channel) -> bool {
        self.count(&key(channel, true)) > 0
    }

    /// Sends one flush: every subscriber of a flushed channel gets one message, but a private
    /// channel's subscriber whose token expired before `now_s`.
    pub fn send(&self, flush: &[ChannelFrames], now_s: u64) -> Sent {
        let now = now_s as f64;
        let result = match flush {
            [] => return Sent { failed: Vec::new(), reached: Vec::new(), messages: 0, expired: Vec::new() },
            [one] => self.send_one(&key(&one.channel, one.delta), &one.alone, now),
            many => {
                let strings = |f: &dyn Fn(&ChannelFrames) -> &str| -> Array {
                    many.iter().map(|c| JsValue::from_str(f(c))).collect()
                };
                let keys: Array = many.iter().map(|c| JsValue::from_str(&key(&c.channel, c.delta))).collect();
                self.send_many(keys, strings(&|c| &c.alone), strings(&|c| &c.parts), BATCH_PREFIX, BATCH_SUFFIX, now)
            }
        };
        let sockets = |v: JsValue| -> Vec<WebSocket> {
            Array::from(&v)
                .iter()
                .filter_map(|v| v.dyn_into::<web_sys::WebSocket>().ok().map(WebSocket::from))
                .collect()
        };
        let reached = Array::from(&result.get(1)).iter().map(|n| n.as_f64().unwrap_or(0.0) as u64).collect();
        let messages = result.get(2).as_f64().unwrap_or(0.0) as u64;
        Sent { failed: sockets(result.get(0)), reached, messages, expired: sockets(result.get(3)) }
    }
}
