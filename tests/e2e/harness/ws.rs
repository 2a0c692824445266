//! WebSocket clients for the e2e tests: [`Ws`] reads JSON frames with deadlines and reports
//! closes; [`Client`] speaks the hub protocol on top (queues frames, unpacks batches).

use serde_json::Value;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

/// A WebSocket client that reads JSON frames with a deadline.
pub struct Ws {
    socket: tungstenite::WebSocket<MaybeTlsStream<TcpStream>>,
    /// Every frame received so far, for failure messages.
    pub seen: Vec<Value>,
    /// Frames of a `batch` that [`Ws::next`] has not returned yet.
    pending: std::collections::VecDeque<Value>,
    /// Bytes of text messages received so far, and the largest one: what a socket cost the
    /// server to send.
    pub text_bytes: usize,
    pub largest_text: usize,
}

impl Ws {
    pub fn connect(url: &str) -> Ws {
        let (socket, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("ws connect {url}: {e}"));
        Ws { socket, seen: Vec::new(), pending: Default::default(), text_bytes: 0, largest_text: 0 }
    }

    fn set_timeout(&mut self, t: Duration) {
        if let MaybeTlsStream::Plain(s) = self.socket.get_mut() {
            let _ = s.set_read_timeout(Some(t.max(Duration::from_millis(1))));
        }
    }

    /// The next text frame parsed as JSON, or None if nothing arrives before `timeout`.
    /// A `batch` is unpacked: its frames come one by one, in order.
    pub fn next(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(v) = self.pending.pop_front() {
            return Some(v);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.set_timeout(left);
            match self.socket.read() {
                Ok(Message::Text(t)) => {
                    self.counted(t.len());
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::String(t.to_string()));
                    self.seen.push(v.clone());
                    self.pending.extend(unbatch(v));
                    match self.pending.pop_front() {
                        Some(first) => return Some(first),
                        None => continue, // an empty batch
                    }
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None
                }
                Err(e) => panic!("ws read: {e}; frames so far: {:?}", self.seen),
            }
        }
    }

    /// Reads frames until one matches `pred`; panics with everything seen if none does in time.
    pub fn expect(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        while let Some(v) = self.next(deadline.saturating_duration_since(Instant::now())) {
            if pred(&v) {
                return v;
            }
        }
        panic!("no {what} within {timeout:?}; frames seen: {:#?}", self.seen);
    }

    pub fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text)).expect("ws send");
    }

    fn counted(&mut self, len: usize) {
        self.text_bytes += len;
        self.largest_text = self.largest_text.max(len);
    }
}

/// The `update` frame predicate for a channel.
pub fn is_update(channel: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == "update" && v["channel"] == channel
}

/// What one read of a [`Ws`] gave.
#[derive(Debug)]
pub enum WsEvent {
    /// A text frame, parsed as JSON (a string value when it is not JSON, e.g. `pong`).
    Text(Value),
    /// The server closed: its close code, or None when the connection ended without one.
    Closed(Option<u16>),
    Timeout,
}

impl Ws {
    /// Like [`Ws::next`], but a close (or a broken connection) is an event, not a panic.
    pub fn read_event(&mut self, timeout: Duration) -> WsEvent {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return WsEvent::Timeout;
            }
            self.set_timeout(left);
            match self.socket.read() {
                Ok(Message::Text(t)) => {
                    self.counted(t.len());
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::String(t.to_string()));
                    self.seen.push(v.clone());
                    return WsEvent::Text(v);
                }
                Ok(Message::Close(frame)) => {
                    let code = frame.map(|f| u16::from(f.code));
                    self.seen.push(serde_json::json!({ "(closed)": code }));
                    return WsEvent::Closed(code);
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return WsEvent::Timeout
                }
                Err(e) => {
                    self.seen.push(serde_json::json!({ "(connection ended)": e.to_string() }));
                    return WsEvent::Closed(None);
                }
            }
        }
    }

    /// Sends a binary frame.
    pub fn send_binary(&mut self, bytes: Vec<u8>) {
        self.socket.send(Message::binary(bytes)).expect("ws send");
    }

    /// Sends a text frame; false if the connection is already gone.
    pub fn try_send_text(&mut self, text: &str) -> bool {
        self.socket.send(Message::text(text)).is_ok()
    }

    /// Cuts the TCP connection without a close frame, as a client that vanished does.
    pub fn cut(&mut self) {
        if let MaybeTlsStream::Plain(s) = self.socket.get_mut() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Sends a close frame and returns at once, without waiting for the server's answer.
    pub fn close_now(&mut self) {
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }

    /// Starts the closing handshake and waits briefly for the server's answer.
    pub fn close(&mut self) {
        let _ = self.socket.close(None);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let WsEvent::Closed(_) = self.read_event(deadline.saturating_duration_since(Instant::now())) {
                return;
            }
        }
    }
}

/// The frames one text message carries: the `frames` of a `batch`, or the message itself.
fn unbatch(v: Value) -> Vec<Value> {
    match v {
        Value::Object(ref o) if o.get("type").and_then(Value::as_str) == Some("batch") => {
            o.get("frames").and_then(Value::as_array).cloned().unwrap_or_default()
        }
        v => vec![v],
    }
}

/// A protocol client over [`Ws`]: frames are queued in arrival order (batches unpacked), and
/// each reader takes only the frames it asks for, so nothing it skips is lost to later reads.
pub struct Client {
    pub ws: Ws,
    /// The `welcome` frame, which came first.
    pub welcome: Value,
    queue: std::collections::VecDeque<Value>,
    /// Set once the server closed: its close code, if it sent one.
    closed: Option<Option<u16>>,
}

impl Client {
    pub fn new(mut ws: Ws) -> Client {
        // The whole first message: the hub sends the welcome and the catch-ups as one batch.
        let first = match ws.read_event(Duration::from_secs(10)) {
            WsEvent::Text(v) => v,
            other => panic!("no frame within 10 s of connecting: {other:?}"),
        };
        let mut queue: std::collections::VecDeque<Value> = unbatch(first).into();
        let welcome = queue.pop_front().unwrap_or_default();
        assert_eq!(welcome["type"], "welcome", "first frame: {welcome}");
        assert_eq!(welcome["protocol"], 1, "{welcome}");
        Client { ws, welcome, queue, closed: None }
    }

    /// Reads one message into the queue; false on timeout or once the socket is closed.
    fn fill(&mut self, deadline: Instant) -> bool {
        if self.closed.is_some() {
            return false;
        }
        match self.ws.read_event(deadline.saturating_duration_since(Instant::now())) {
            WsEvent::Text(v) => {
                self.queue.extend(unbatch(v));
                true
            }
            WsEvent::Closed(code) => {
                self.closed = Some(code);
                false
            }
            WsEvent::Timeout => false,
        }
    }

    fn fail(&self, what: &str, timeout: Duration) -> ! {
        panic!(
            "no {what} within {timeout:?} (closed: {:?}); unread: {:#?}; messages seen: {:#?}",
            self.closed, self.queue, self.ws.seen
        );
    }

    /// The first queued or arriving frame matching `pred`, taken out of the queue.
    pub fn take(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.queue.iter().position(&pred) {
                return self.queue.remove(i);
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    pub fn expect(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        match self.take(timeout, pred) {
            Some(v) => v,
            None => self.fail(what, timeout),
        }
    }

    /// The next `error` frame; asserts its code.
    pub fn expect_error(&mut self, code: &str, timeout: Duration) -> Value {
        let e = self.expect(&format!("error {code}"), timeout, |v| v["type"] == "error");
        assert_eq!(e["code"], code, "error frame: {e}; seen: {:#?}", self.ws.seen);
        e
    }

    /// A channel's catch-up: the updates of `channel` that came before its `subscribed` frame,
    /// and that frame. Other frames stay queued; an `error` frame fails at once.
    pub fn catch_up(&mut self, channel: &str, timeout: Duration) -> (Vec<Value>, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.queue.iter().find(|v| v["type"] == "error") {
                panic!("error during catch-up of {channel}: {e}; seen: {:#?}", self.ws.seen);
            }
            let end = self.queue.iter().position(|v| v["type"] == "subscribed" && v["channel"] == channel);
            if let Some(i) = end {
                let mut before: Vec<Value> = self.queue.drain(..=i).collect();
                let subscribed = before.pop().unwrap_or_default();
                let (updates, others): (Vec<Value>, Vec<Value>) =
                    before.into_iter().partition(|v| v["type"] == "update" && v["channel"] == channel);
                for v in others.into_iter().rev() {
                    self.queue.push_front(v);
                }
                return (updates, subscribed);
            }
            if !self.fill(deadline) {
                self.fail(&format!("subscribed frame for {channel}"), timeout);
            }
        }
    }

    /// Updates of `channel`, in arrival order, up to and including the first with seq >= `seq`.
    pub fn updates(&mut self, channel: &str, seq: u64, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.last().is_none_or(|u: &Value| u["seq"].as_u64().unwrap_or(0) < seq) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.take(left, |v| v["type"] == "update" && v["channel"] == channel) {
                Some(u) => got.push(u),
                None => self.fail(&format!("{channel} update seq {seq} (got seqs {:?})", seqs(&got)), timeout),
            }
        }
        got
    }

    /// Everything unread now plus whatever arrives within `window`.
    pub fn collect(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        while Instant::now() < deadline {
            if !self.fill(deadline) && self.closed.is_some() {
                break;
            }
        }
        self.queue.drain(..).collect()
    }

    /// Reads until the server closes the socket and returns its close code (None: no code);
    /// frames read on the way stay queued. Panics if the socket is still open after `timeout`.
    pub fn expect_close(&mut self, timeout: Duration) -> Option<u16> {
        let deadline = Instant::now() + timeout;
        while self.closed.is_none() {
            if !self.fill(deadline) && self.closed.is_none() {
                self.fail("close", timeout);
            }
        }
        self.closed.flatten()
    }

    pub fn send_json(&mut self, v: &Value) {
        self.ws.send_text(&v.to_string());
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send_text(text);
    }

    /// Sends `ping` and waits for the runtime's `pong`: proof the socket is open.
    pub fn ping(&mut self, timeout: Duration) {
        self.send_text("ping");
        self.expect("pong", timeout, |v| v == "pong");
    }

    pub fn close(&mut self) {
        self.ws.close();
    }
}

/// The `seq` of each frame.
pub fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().map(|f| f["seq"].as_u64().unwrap_or(0)).collect()
}

/// RFC 7386, as a client applies a `delta` frame's patch: written here, not taken from the hub's
/// `merge_patch`, so the tests check the hub's patches against an independent reading.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::json!({});
    }
    for (key, value) in members {
        if value.is_null() {
            target.as_object_mut().map(|m| m.remove(key));
        } else {
            merge_patch(&mut target[key.as_str()], value);
        }
    }
}
