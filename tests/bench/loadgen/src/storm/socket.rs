//! One socket of the storm: its first connect, the drop, its reconnect and its resume check,
//! each when the run's phase says.
use crate::resume::{Position, Resume};
use crate::sockets::{connect, scan, Ws};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

/// What the sockets do now; every socket task follows it.
#[derive(Clone)]
pub(super) enum Phase {
    Hold,
    Drop,
    Reconnect(Arc<Plan>),
    Stop,
}

/// What a resume must bring.
pub(super) struct Plan {
    /// The marker of the data published at each seq (`NONCE:K`).
    pub(super) marks: HashMap<u64, String>,
    /// The channel's seq once the missed updates are sequenced.
    pub(super) to: u64,
}

pub(super) struct Shared {
    /// `ws://HOST/ws?channels=C`.
    pub(super) url: String,
    pub(super) channel: String,
    /// `"bench":"NONCE:`, and the K of the last update before the drop.
    pub(super) marker: String,
    pub(super) last_before: u64,
    pub(super) resume: bool,
    pub(super) timeout: Duration,
    pub(super) sem: Semaphore,
    /// First connects done or failed; those that failed; sockets the server closed before the
    /// drop; sockets that got `last_before`; sockets dropped (or closed early); reconnects
    /// finished (back, failed, or closed before their catch-up ended).
    pub(super) settled: AtomicUsize,
    pub(super) failed: AtomicUsize,
    pub(super) early: AtomicUsize,
    pub(super) held: AtomicUsize,
    pub(super) dropped: AtomicUsize,
    pub(super) finished: AtomicUsize,
}

/// What one socket went through.
#[derive(Default)]
pub(super) struct Outcome {
    pub(super) connect_error: Option<String>,
    /// The server closed it before the drop.
    pub(super) closed_early: bool,
    pub(super) position: Position,
    pub(super) reconnect_error: Option<String>,
    pub(super) handshake_at: Option<Instant>,
    pub(super) back_at: Option<Instant>,
    pub(super) resume: Option<Resume>,
    /// The server closed it after the reconnect.
    pub(super) closed_after: bool,
}

/// Ends the TCP connection with a reset: no close frame, no orderly shutdown.
fn abort(ws: Ws) {
    use std::os::fd::AsRawFd;
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: the descriptor is open while `s` lives; the value is a `linger` of the size given.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    drop(ws); // closing the descriptor now sends the reset
}

async fn open(sh: &Shared, url: &str) -> Result<Ws, String> {
    let _permit = sh.sem.acquire().await.map_err(|_| "closed".to_string())?;
    connect(url, sh.timeout).await
}

pub(super) async fn socket(sh: Arc<Shared>, mut phase: watch::Receiver<Phase>) -> Outcome {
    let mut out = Outcome::default();
    let first = open(&sh, &sh.url).await;
    sh.settled.fetch_add(1, AcqRel);
    let mut ws = match first {
        Ok(ws) => ws,
        Err(e) => {
            out.connect_error = Some(e);
            sh.failed.fetch_add(1, AcqRel);
            return out;
        }
    };
    let mut held = false;
    loop {
        tokio::select! {
            biased;
            r = phase.changed() => if r.is_err() || !matches!(*phase.borrow(), Phase::Hold) { break },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if sh.resume {
                        out.position.observe(t.as_str(), &sh.channel);
                    }
                    if !held {
                        scan(t.as_str(), &sh.marker, |k| held |= k == sh.last_before);
                        if held {
                            sh.held.fetch_add(1, AcqRel);
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    out.closed_early = true;
                    sh.early.fetch_add(1, AcqRel);
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    if !out.closed_early {
        abort(ws);
    }
    sh.dropped.fetch_add(1, AcqRel);
    let plan = loop {
        let now = phase.borrow_and_update().clone();
        match now {
            Phase::Reconnect(plan) => break plan,
            Phase::Stop => return out,
            Phase::Hold | Phase::Drop => {}
        }
        if phase.changed().await.is_err() {
            return out;
        }
    };
    let url = match sh.resume {
        true => format!("{}&since={}", sh.url, out.position.since(&sh.channel)),
        false => sh.url.clone(),
    };
    let mut ws = match open(&sh, &url).await {
        Ok(ws) => ws,
        Err(e) => {
            out.reconnect_error = Some(e);
            sh.finished.fetch_add(1, AcqRel);
            return out;
        }
    };
    let at = Instant::now();
    out.handshake_at = Some(at);
    let mut resume = sh.resume.then(|| Resume::new(&sh.channel, &out.position, plan.to));
    if resume.is_none() {
        out.back_at = Some(at);
        sh.finished.fetch_add(1, AcqRel);
    }
    loop {
        tokio::select! {
            biased;
            r = phase.changed() => if r.is_err() || matches!(*phase.borrow(), Phase::Stop) { break },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Some(r) = resume.as_mut() {
                        if r.on_text(t.as_str(), &plan.marks) {
                            out.back_at = Some(Instant::now());
                            sh.finished.fetch_add(1, AcqRel);
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    out.closed_after = true;
                    if resume.as_ref().is_some_and(|r| !r.done()) {
                        sh.finished.fetch_add(1, AcqRel); // it will not finish otherwise
                    }
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    out.resume = resume;
    out
}
