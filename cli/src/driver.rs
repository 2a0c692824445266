//! A session in the foreground: its events, an optional second source and a once-a-second tick
//! handed to the command in order, until the command says it is done or a stop signal arrives.
//! On a stop the connection is closed with 1000 and the command ends with exit 0, at most
//! [`GRACE`] later whatever the server does.

use crate::exit::Exit;
use crate::resume::Resume;
use crate::session::{self, Event, Options};
use crate::signals;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a stopping session may take to close before the command ends anyway.
const GRACE: Duration = Duration::from_millis(1500);

/// What the command is handed.
pub enum Step<X> {
    Event(Event),
    /// From the command's own source (`watch`: snapshot reads).
    Extra(X),
    /// Once a second, when asked for.
    Tick,
    /// A stop signal arrived; the session is closing.
    Stopping,
}

/// Runs `resume`'s session until `on` returns an exit code (the session is then stopped too)
/// or a stop signal ends it.
pub async fn run<X>(
    opts: Options,
    resume: Resume,
    ticks: bool,
    mut extra: mpsc::Receiver<X>,
    mut on: impl FnMut(Step<X>) -> Option<Exit>,
) -> Exit {
    let (mut events, stop) = session::spawn(opts, resume);
    let mut stop = Some(stop);
    let mut extra_open = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let interrupted = signals::stop_requested();
    tokio::pin!(interrupted);
    let mut deadline: Option<(Instant, Exit)> = None;
    loop {
        let result = tokio::select! {
            ev = events.recv() => match ev {
                // The session is over (it said why in its last event).
                None => return deadline.map_or(Exit::Failure, |(_, exit)| exit),
                Some(ev) => on(Step::Event(ev)),
            },
            x = extra.recv(), if extra_open => match x {
                Some(x) => on(Step::Extra(x)),
                None => {
                    extra_open = false;
                    None
                }
            },
            _ = tick.tick(), if ticks => on(Step::Tick),
            _ = &mut interrupted, if stop.is_some() => {
                let _ = on(Step::Stopping);
                Some(Exit::Ok)
            }
            _ = sleep_until(deadline.map(|(at, _)| at)), if deadline.is_some() => {
                return deadline.map_or(Exit::Ok, |(_, exit)| exit);
            }
        };
        if let Some(exit) = result {
            match stop.take() {
                Some(s) => {
                    s.stop();
                    deadline = Some((Instant::now() + GRACE, exit));
                }
                // Already stopping: the first decision stands unless this is the end of it.
                None => return deadline.map_or(exit, |(_, first)| first),
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
