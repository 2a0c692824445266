//! How a user or a supervisor stops a command: Ctrl-C (SIGINT), SIGTERM or SIGHUP, as one future.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Resolves at the first of SIGINT, SIGTERM, SIGHUP. Create it before it is needed: signals
/// that arrive before it exists are not seen. A signal that cannot be watched never fires.
pub async fn stop_requested() {
    let (mut term, mut hup) = (signal(SignalKind::terminate()).ok(), signal(SignalKind::hangup()).ok());
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if r.is_err() {
                std::future::pending::<()>().await;
            }
        }
        _ = next(term.as_mut()) => {}
        _ = next(hup.as_mut()) => {}
    }
}

async fn next(s: Option<&mut Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
