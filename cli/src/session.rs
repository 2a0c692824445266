//! Following channels over time: connect, catch up and follow; when the connection drops, wait
//! (full-jitter backoff) and connect again resuming from where the client stood, until stopped.
//! Runs as its own task and reports everything as [`Event`]s, so `watch` and `tail` only render.

use crate::backoff::{random_u64, Backoff};
use crate::conn::{Link, Received};
use crate::endpoint::Endpoint;
use crate::resume::{Output, Resume};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The first reconnect waits up to this long; each failure doubles it, up to `retry_max`.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// A connection that stayed up this long starts the backoff over.
const STABLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Options {
    pub endpoint: Endpoint,
    /// Keep-alive period (`ping`); nothing heard for twice this long ends the connection.
    pub ping_every: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// Give up after this many failed attempts in a row beyond the first (None: never).
    pub retries: Option<u32>,
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
pub fn spawn(opts: Options, resume: Resume) -> (mpsc::UnboundedReceiver<Event>, Stop) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(run(opts, resume, tx, stop_rx));
    (rx, Stop(stop_tx))
}

async fn run(opts: Options, mut resume: Resume, events: mpsc::UnboundedSender<Event>, mut stop: oneshot::Receiver<()>) {
    let emit = |e: Event| {
        let _ = events.send(e);
    };
    let mut backoff = Backoff::new(BACKOFF_BASE, opts.retry_max, STABLE);
    let mut failures = 0u32;
    loop {
        let url = opts.endpoint.socket_url(&resume.channels(), &resume.since_param());
        emit(Event::Connecting { url: url.clone() });
        let opened = tokio::select! {
            r = Link::open(&url, opts.ping_every) => r,
            _ = &mut stop => return emit(Event::Stopped { echoed: false, since: resume.since_param() }),
        };
        let reason = match opened {
            Err(e) if e.fatal => return emit(Event::Fatal(e.message)),
            Err(e) => {
                failures += 1;
                if opts.retries.is_some_and(|n| failures > n) {
                    return emit(Event::Fatal(format!("{} (gave up after {failures} failed attempts)", e.message)));
                }
                e.message
            }
            Ok(mut link) => {
                failures = 0;
                resume.connected();
                let up = Instant::now();
                let ended = tokio::select! {
                    reason = follow(&mut link, &mut resume, &emit) => Some(reason),
                    _ = &mut stop => None,
                };
                let Some(reason) = ended else {
                    let echoed = link.close().await;
                    return emit(Event::Stopped { echoed, since: resume.since_param() });
                };
                backoff.connection_ended(up.elapsed());
                reason
            }
        };
        let delay = backoff.next_delay(random_u64());
        emit(Event::Retrying { reason, delay });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut stop => return emit(Event::Stopped { echoed: false, since: resume.since_param() }),
        }
    }
}

/// Reads one connection until it ends; returns why.
async fn follow(link: &mut Link, resume: &mut Resume, emit: &impl Fn(Event)) -> String {
    loop {
        match link.recv().await {
            Received::Frame(f) => {
                for out in resume.frame(f) {
                    match out {
                        Output::Send(text) => {
                            if let Err(reason) = link.send(text).await {
                                return reason;
                            }
                        }
                        other => emit(Event::Output(other)),
                    }
                }
            }
            Received::Malformed(m) => emit(Event::Output(Output::Note(format!("skipped a message: {m}")))),
            Received::Ended(reason) => return reason,
        }
    }
}
