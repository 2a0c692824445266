//! One WebSocket connection to the hub: opened with a timeout, read frame by frame with a
//! keep-alive (the text `ping` every N s, which the runtime answers `pong`; nothing heard for
//! 2N s means the connection is dead), and closed with 1000, waiting briefly for the echo.
//! A message or frame over [`MAX_MESSAGE_BYTES`] ends the connection before it is read whole.

use crate::errors::{io_reason, one_line, short_line};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tickwire_hub::wire::protocol::{self, ServerFrame};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a connect (TCP, TLS and the upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close waits for the server's echo.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The largest message (and frame) the client reads, instead of tungstenite's 64 MiB: eight
/// times the hub's default catch-up (`HISTORY_PAGE_BYTES`, 1 MiB) and its largest publish
/// (`MAX_PUBLISH_BYTES` at most 1 MiB). A longer one ends the connection, said in one line.
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;

/// The socket's limits: [`MAX_MESSAGE_BYTES`] for a message and for a frame.
fn config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE_BYTES)).max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// Why a connect failed; `fatal` when trying again cannot help (the server refused the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub message: String,
    pub fatal: bool,
}

/// What reading the connection gave.
#[derive(Debug)]
pub enum Received {
    Frame(ServerFrame),
    /// A message that is not a frame this client knows (one line, to note and skip).
    Malformed(String),
    /// The connection is over, and why.
    Ended(String),
}

/// An open connection.
pub struct Link {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    ping_every: Duration,
    last_heard: Instant,
    next_ping: Instant,
}

impl Link {
    pub async fn open(url: &str, ping_every: Duration) -> Result<Link, OpenError> {
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config()), false);
        let ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return Err(open_error(url, e)),
            Err(_) => {
                let message = format!("cannot connect to {url}: no answer within {} s", CONNECT_TIMEOUT.as_secs());
                return Err(OpenError { message, fatal: false });
            }
        };
        let now = Instant::now();
        Ok(Link { ws, ping_every, last_heard: now, next_ping: now + ping_every })
    }

    /// The next frame, or why the connection ended. Sends the keep-alive while waiting.
    pub async fn recv(&mut self) -> Received {
        loop {
            let dead_at = self.last_heard + self.ping_every * 2;
            tokio::select! {
                msg = self.ws.next() => {
                    self.last_heard = Instant::now();
                    match msg {
                        Some(Ok(Message::Text(t))) if t.as_str() == protocol::PONG => {}
                        Some(Ok(Message::Text(t))) => return decode(t.as_str()),
                        Some(Ok(Message::Binary(b))) => {
                            return Received::Malformed(format!("a binary message of {} bytes", b.len()))
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let how = frame.map_or("without a code".to_owned(), |f| {
                                format!("with {} {}", u16::from(f.code), one_line(f.reason.as_str()))
                            });
                            return Received::Ended(format!("the server closed the connection {}", how.trim_end()));
                        }
                        Some(Ok(_)) => {} // protocol ping/pong: answered by tungstenite
                        Some(Err(e)) => return Received::Ended(ws_reason(&e)),
                        None => return Received::Ended("the connection ended".to_owned()),
                    }
                }
                _ = tokio::time::sleep_until(self.next_ping) => {
                    self.next_ping = Instant::now() + self.ping_every;
                    if let Err(e) = self.ws.send(Message::text(protocol::PING)).await {
                        return Received::Ended(ws_reason(&e));
                    }
                }
                _ = tokio::time::sleep_until(dead_at) => {
                    let secs = (self.ping_every * 2).as_secs_f64();
                    return Received::Ended(format!("nothing heard for {secs} s: the connection is presumed dead"));
                }
            }
        }
    }

    /// Sends a client frame; `Err` says why the connection is over.
    pub async fn send(&mut self, text: String) -> Result<(), String> {
        self.ws.send(Message::text(text)).await.map_err(|e| ws_reason(&e))
    }

    /// Closes with 1000 and waits up to a second for the server's echo; true when it came.
    pub async fn close(mut self) -> bool {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
        let handshake = async {
            if self.ws.close(Some(frame)).await.is_err() {
                return false;
            }
            while let Some(msg) = self.ws.next().await {
                match msg {
                    Ok(Message::Close(_)) => return true,
                    Ok(_) => continue,
                    Err(_) => return false,
                }
            }
            false
        };
        tokio::time::timeout(CLOSE_WAIT, handshake).await.unwrap_or(false)
    }
}

/// A text message as a server frame; anything else is one line saying what it was.
fn decode(text: &str) -> Received {
    match serde_json::from_str::<ServerFrame>(text) {
        Ok(f) => Received::Frame(f),
        // Its start: 80 characters, and `…` when there is more.
        Err(e) => Received::Malformed(format!("{e} in {:?}", short_line(text, 81, true))),
    }
}

/// A failed connect in one line: refused URLs (4xx but 408 and 429), bad URLs and TLS
/// problems are fatal; the rest may pass.
fn open_error(url: &str, e: WsError) -> OpenError {
    let (why, fatal) = match &e {
        WsError::Http(resp) => {
            let status = resp.status();
            let body = resp.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            let body = short_line(&body, 200, false);
            let fatal = status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429;
            (
                format!(
                    "the server answered {status}{}",
                    if body.is_empty() { String::new() } else { format!(": {body}") }
                ),
                fatal,
            )
        }
        WsError::Url(u) => (format!("bad URL: {u}"), true),
        WsError::Tls(t) => (format!("TLS: {}", one_line(&t.to_string())), true),
        other => (ws_reason(other), false),
    };
    OpenError { message: format!("cannot connect to {url}: {why}"), fatal }
}

/// A WebSocket failure in one line.
fn ws_reason(e: &WsError) -> String {
    match e {
        WsError::Io(io) => io_reason(io),
        WsError::ConnectionClosed | WsError::AlreadyClosed => "the connection closed".to_owned(),
        WsError::Capacity(c) => {
            format!("refused a message from the server: {c} (the client reads at most {} MiB)", MAX_MESSAGE_BYTES >> 20)
        }
        other => one_line(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::http::Response;

    /// A WebSocket server on 127.0.0.1 for one connection: it answers the text `ping` with
    /// `pong` when `answer_pings`, sends `frames` first, and echoes a close. Its URL.
    async fn server(answer_pings: bool, frames: Vec<String>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            for f in frames {
                ws.send(Message::text(f)).await.unwrap();
            }
            while let Some(Ok(msg)) = ws.next().await {
                if msg == Message::text(protocol::PING) && answer_pings {
                    ws.send(Message::text(protocol::PONG)).await.unwrap();
                }
            }
        });
        url
    }

    const PING: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn pongs_keep_a_quiet_connection_alive_and_silence_ends_it() {
        let mut link = Link::open(&server(true, vec![]).await, PING).await.unwrap();
        let quiet = tokio::time::timeout(PING * 6, link.recv()).await;
        assert!(quiet.is_err(), "answered pings keep it open: {quiet:?}");
        assert!(link.close().await, "the close is echoed");

        let mut link = Link::open(&server(false, vec![]).await, PING).await.unwrap();
        let started = Instant::now();
        match tokio::time::timeout(PING * 6, link.recv()).await {
            Ok(Received::Ended(why)) => assert!(why.contains("presumed dead"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= PING * 2, "not before twice the ping period");
    }

    #[tokio::test]
    async fn frames_then_notes_for_what_is_not_a_frame() {
        let frames = [r#"{"type":"unsubscribed","channel":"btc"}"#, "pong", "garbage"].map(String::from).to_vec();
        let url = server(true, frames).await;
        let mut link = Link::open(&url, PING).await.unwrap();
        assert!(matches!(link.recv().await, Received::Frame(ServerFrame::Unsubscribed { .. })));
        assert!(matches!(link.recv().await, Received::Malformed(_)), "pong is skipped, garbage is noted");
    }

    #[tokio::test]
    async fn a_refused_connect_is_one_line_and_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        drop(listener);
        let e = Link::open(&url, PING).await.err().unwrap();
        assert_eq!(e, OpenError { message: format!("cannot connect to {url}: connection refused"), fatal: false });
    }

    #[tokio::test]
    async fn a_message_over_the_cap_ends_the_connection() {
        let at_cap = format!("\"{}\"", "x".repeat(MAX_MESSAGE_BYTES - 2));
        let over = format!("\"{}\"", "x".repeat(MAX_MESSAGE_BYTES - 1));
        let mut link = Link::open(&server(true, vec![at_cap, over]).await, PING).await.unwrap();
        assert!(matches!(link.recv().await, Received::Malformed(_)), "a message at the cap is read");
        match link.recv().await {
            Received::Ended(why) => assert!(why.contains("the client reads at most 8 MiB"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!((config().max_message_size, config().max_frame_size), (Some(8 << 20), Some(8 << 20)));
    }

    #[test]
    fn frames_decode_and_anything_else_is_one_line() {
        assert!(matches!(decode(r#"{"type":"unsubscribed","channel":"btc"}"#), Received::Frame(_)));
        for bad in ["nope", r#"{"type":"novel"}"#, "{\"type\":\n\"update\"}", &"x".repeat(500)] {
            match decode(bad) {
                Received::Malformed(m) => assert!(!m.contains('\n') && m.chars().count() < 200, "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn refused_urls_are_fatal_and_the_rest_retried() {
        let http = |status: u16, body: &str| {
            let resp = Response::builder().status(status).body(Some(body.as_bytes().to_vec())).unwrap();
            open_error("ws://h/ws", WsError::Http(Box::new(resp)))
        };
        let e = http(404, "Not\nFound");
        assert!(e.fatal);
        assert_eq!(e.message, "cannot connect to ws://h/ws: the server answered 404 Not Found: Not Found");
        assert!(http(403, "").fatal);
        assert!(!http(429, "").fatal);
        assert!(!http(502, "bad gateway").fatal);
        let refused = open_error("ws://h/ws", WsError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
        assert_eq!(
            refused,
            OpenError { message: "cannot connect to ws://h/ws: connection refused".into(), fatal: false }
        );
    }
}
