//! Following channels over time: connect, catch up and follow; when the connection drops, wait
//! (full-jitter backoff) and connect again resuming from where the client stood, until stopped.
//! Runs as its own task and reports everything as [`Event`]s, so `watch` and `tail` only render.
//!
//! The events go through a queue of [`EVENT_QUEUE`]: when the command falls behind (a slow
//! reader of `tail`'s stdout), the session waits for room and stops reading the socket, so TCP
//! flow control holds the server back; nothing is dropped and nothing grows. A server that gives
//! up on a reader that slow closes the socket, and the session resumes with `since`.

use crate::backoff::{random_u64, Backoff};
use crate::conn::{Link, Received};
use crate::endpoint::Endpoint;
use crate::resume::{Output, Resume};
use std::fmt;
use std::time::Duration;
use tickwire_hub::wire::every::Every;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The first reconnect waits up to this long; each failure doubles it, up to `retry_max`.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// A connection that stayed up this long starts the backoff over.
const STABLE: Duration = Duration::from_secs(10);
/// Events queued between the session and the command at most.
pub const EVENT_QUEUE: usize = 256;

#[derive(Debug, Clone)]
pub struct Options {
    pub endpoint: Endpoint,
    /// Keep-alive period (`ping`); nothing heard for twice this long ends the connection.
    pub ping_every: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// Give up after this many failed attempts in a row beyond the first (None: never).
    pub retries: Option<u32>,
    /// A token to present first on every connection (`--token`).
    pub token: Option<UserToken>,
    /// Each channel at most once per this interval (`watch --every`): conflated delivery.
    pub every: Option<Every>,
}

/// A user token (`--token`, `TICKWIRE_USER_TOKEN`); its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserToken(pub String);

impl fmt::Debug for UserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserToken(..)")
    }
}

/// What happened, in order.
#[derive(Debug)]
pub enum Event {
    Connecting {
        url: String,
    },
    /// From the server's frames: `welcome`, updates (each once, in order) and notes.
    Output(Output),
    /// The connection failed or ended; the next attempt comes after `delay`.
    Retrying {
        reason: String,
        delay: Duration,
    },
    /// Gave up: the server refused the URL, or `retries` ran out.
    Fatal(String),
    /// The server refused the token (or a channel needs more than it grants), so following
    /// cannot go on: the connection was closed. `since` is where the client stood.
    TokenRefused {
        message: String,
        since: String,
    },
    /// Stopped on request; `echoed` when a connection was open and the server answered its
    /// close. `since` is where the client stood (`btc:41@epoch,...`).
    Stopped {
        echoed: bool,
        since: String,
    },
}

/// Asks a running session to close its connection (1000) and stop.
pub struct Stop(oneshot::Sender<()>);

impl Stop {
    pub fn stop(self) {
        let _ = self.0.send(());
    }
}

/// Starts following `resume`'s channels on the current runtime.
pub fn spawn(opts: Options, resume: Resume) -> (mpsc::Receiver<Event>, Stop) {
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(run(opts, resume, tx, stop_rx));
    (rx, Stop(stop_tx))
}

/// Hands `e` to the command, waiting for room in the queue; a command that is gone is no error.
async fn emit(events: &mpsc::Sender<Event>, e: Event) {
    let _ = events.send(e).await;
}

async fn run(opts: Options, mut resume: Resume, events: mpsc::Sender<Event>, mut stop: oneshot::Receiver<()>) {
    let mut backoff = Backoff::new(BACKOFF_BASE, opts.retry_max, STABLE);
    let mut failures = 0u32;
    loop {
        let opening = resume.opening(opts.token.as_ref().map(|t| t.0.as_str()));
        let url = opts.endpoint.socket_url(&opening.channels, &opening.since, opts.every);
        emit(&events, Event::Connecting { url: url.clone() }).await;
        let opened = tokio::select! {
            r = Link::open(&url, opts.ping_every) => r,
            _ = &mut stop => return emit(&events, Event::Stopped { echoed: false, since: resume.since_param() }).await,
        };
        let reason = match opened {
            Err(e) if e.fatal => return emit(&events, Event::Fatal(e.message)).await,
            Err(e) => {
                failures += 1;
                if opts.retries.is_some_and(|n| failures > n) {
                    let message = format!("{} (gave up after {failures} failed attempts)", e.message);
                    return emit(&events, Event::Fatal(message)).await;
                }
                e.message
            }
            Ok(mut link) => {
                failures = 0;
                resume.connected();
                let up = Instant::now();
                let ended = tokio::select! {
                    ended = follow(&mut link, opening.first, &mut resume, &events) => Some(ended),
                    _ = &mut stop => None,
                };
                match ended {
                    None => {
                        let echoed = link.close().await;
                        return emit(&events, Event::Stopped { echoed, since: resume.since_param() }).await;
                    }
                    Some(Ended::Refused(message)) => {
                        link.close().await;
                        return emit(&events, Event::TokenRefused { message, since: resume.since_param() }).await;
                    }
                    Some(Ended::Lost(reason)) => {
                        backoff.connection_ended(up.elapsed());
                        reason
                    }
                }
            }
        };
        let delay = backoff.next_delay(random_u64());
        emit(&events, Event::Retrying { reason, delay }).await;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut stop => return emit(&events, Event::Stopped { echoed: false, since: resume.since_param() }).await,
        }
    }
}

/// Why following one connection stopped.
enum Ended {
    /// The connection was lost (a reason to retry).
    Lost(String),
    /// The token was refused: retrying cannot help.
    Refused(String),
}

/// Sends the `first` frames (the token, private subscriptions), then reads the connection until
/// it ends.
async fn follow(link: &mut Link, first: Vec<String>, resume: &mut Resume, events: &mpsc::Sender<Event>) -> Ended {
    for text in first {
        if let Err(reason) = link.send(text).await {
            return Ended::Lost(reason);
        }
    }
    loop {
        match link.recv().await {
            Received::Frame(f) => {
                for out in resume.frame(f) {
                    match out {
                        Output::Send(text) => {
                            if let Err(reason) = link.send(text).await {
                                return Ended::Lost(reason);
                            }
                        }
                        Output::TokenRefused(message) => return Ended::Refused(message),
                        other => emit(events, Event::Output(other)).await,
                    }
                }
            }
            Received::Malformed(m) => {
                emit(events, Event::Output(Output::Note(format!("skipped a message: {m}")))).await
            }
            Received::Ended(reason) => return Ended::Lost(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use serde_json::json;
    use serde_json::Value;
    use tickwire_hub::wire::protocol::{Channel, Epoch, ErrorCode, Seq, ServerFrame, Update};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;

    #[tokio::test]
    async fn a_command_that_falls_behind_holds_the_server_back_and_loses_nothing() {
        const N: u64 = 5_000;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let x = Channel::parse("x").unwrap();
        let channel = x.clone();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let epoch = Epoch("e".into());
            let subscribed = ServerFrame::Subscribed { channel: channel.clone(), seq: Seq(0), epoch, recovered: true };
            ws.send(Message::text(subscribed.to_json())).await.unwrap();
            for seq in 1..=N {
                let u = Update { channel: channel.clone(), seq: Seq(seq), ts: 0, stale: false, data: json!(seq) };
                ws.send(Message::text(ServerFrame::Update(u).to_json())).await.unwrap();
            }
            while let Some(Ok(_)) = ws.next().await {}
        });
        let opts = Options {
            endpoint: Endpoint::parse(&url).unwrap(),
            ping_every: Duration::from_secs(60),
            retry_max: Duration::from_secs(1),
            retries: Some(0),
            token: None,
            every: None,
        };
        let (mut events, stop) = spawn(opts, Resume::new(&[x]));
        // Nobody reads for a while: the session fills the queue and waits, it does not buffer N.
        let deadline = Instant::now() + Duration::from_secs(10);
        while events.len() < EVENT_QUEUE && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // time to go past it, were it unbounded
        assert_eq!(events.len(), EVENT_QUEUE);
        // Then every update comes, once and in order.
        let mut seqs = Vec::new();
        while seqs.len() < N as usize {
            match events.recv().await {
                Some(Event::Output(Output::Update(u))) => seqs.push(u.seq.0),
                Some(Event::Connecting { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seqs, (1..=N).collect::<Vec<_>>());
        stop.stop();
    }

    /// Accepts one connection: its request's path and query, and its first two text messages;
    /// then sends `frames` and, when `close`, closes.
    async fn accept_one(listener: &TcpListener, frames: &[String], close: bool) -> (String, Vec<String>) {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut uri = String::new();
        #[allow(clippy::result_large_err)] // tungstenite's handshake callback returns its Response as the error
        let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
            uri = req.uri().to_string();
            Ok(resp)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback).await.unwrap();
        let mut first = Vec::new();
        while first.len() < 2 {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str() != "ping" => first.push(t.to_string()),
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        for f in frames {
            ws.send(Message::text(f.clone())).await.unwrap();
        }
        if close {
            ws.close(None).await.unwrap();
        } else {
            tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
        }
        (uri, first)
    }

    #[tokio::test]
    async fn a_token_goes_first_on_every_connection_and_a_refusal_ends_the_session() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let opts = Options {
            endpoint: Endpoint::parse(&format!("ws://{}", listener.local_addr().unwrap())).unwrap(),
            ping_every: Duration::from_secs(60),
            retry_max: Duration::from_secs(1),
            retries: Some(0),
            token: Some(UserToken("t.o.k".into())),
            every: None,
        };
        let channels = [Channel::btc(), Channel::parse("private-u42").unwrap()];
        let (mut events, _stop) = spawn(opts, Resume::with_since(&channels, "private-u42:3@e").unwrap());
        let auth = json!({"op": "auth", "token": "t.o.k"});
        let subscribe =
            json!({"op": "subscribe", "channels": ["private-u42"], "since": {"private-u42": {"seq": 3, "epoch": "e"}}});
        let authed = ServerFrame::Authed { sub: "u42".into(), exp: 1_765_000_000 }.to_json();
        for _ in 0..2 {
            // The first connection is dropped; the second opens the same way.
            let (uri, first) = accept_one(&listener, std::slice::from_ref(&authed), true).await;
            assert_eq!(uri, "/ws?channels=btc", "the token and the private channel stay out of the URL");
            let first: Vec<Value> = first.iter().map(|t| serde_json::from_str(t).unwrap()).collect();
            assert_eq!(first, [auth.clone(), subscribe.clone()]);
        }
        let refused = ServerFrame::error(ErrorCode::TokenExpired, "token expired").to_json();
        let (_, first) = accept_one(&listener, &[refused], false).await;
        assert_eq!(first.len(), 2);
        let mut seen = Vec::new();
        while let Some(e) = events.recv().await {
            seen.push(match e {
                Event::Connecting { url } => format!("connecting {url}"),
                Event::Output(Output::Authed { sub, .. }) => format!("authed {sub}"),
                Event::Retrying { .. } => "retrying".into(),
                Event::TokenRefused { message, since } => format!("refused {message} {since}"),
                other => format!("{other:?}"),
            });
        }
        let url = format!("connecting ws://{}/ws?channels=btc", listener.local_addr().unwrap());
        assert_eq!(
            seen,
            [
                &url,
                "authed u42",
                "retrying",
                &url,
                "authed u42",
                "retrying",
                &url,
                "refused token refused: token_expired: token expired private-u42:3@e",
            ],
            "the session ends after a refusal: no retry"
        );
    }
}
