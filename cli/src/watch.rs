//! `tickwire watch`: the built-in channels as a live table redrawn in place on a terminal (on
//! every update and once a second for the ages), or one plain line per update and per change of
//! connection state when stdout is not a terminal.

use crate::driver::{self, Step};
use crate::errors::say;
use crate::exit::Exit;
use crate::format::{authed, secs};
use crate::http;
use crate::resume::{Output, Resume};
use crate::screen::Screen;
use crate::session::{Event, Options};
use crate::snapshot::{self, Confirmation};
use crate::terminal_text;
use crate::view::{plain_line, ConnState, View};
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tickwire_hub::api::route;
use tickwire_hub::clock::Clock;
use tickwire_hub::wire::protocol::Channel;
use tokio::sync::mpsc;

/// The first snapshot read comes this soon after start, then one every [`SNAPSHOT_EVERY`].
const SNAPSHOT_FIRST: Duration = Duration::from_secs(5);
const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);

/// What a snapshot read hands the table.
type Snapshots = Result<Vec<Confirmation>, String>;

pub async fn run(opts: Options, clock: &dyn Clock) -> Exit {
    let tty = std::io::stdout().is_terminal();
    let base = opts.endpoint.socket_base();
    // Bounded like every queue of the client; a read waits while one is still queued.
    let (snap_tx, snaps) = mpsc::channel(1);
    // Only the table shows ages and stale marks: without it the sender is dropped unused, the
    // receiver is closed, and `/api/snapshot` is never read.
    let reader = tty.then(|| tokio::spawn(read_snapshots(opts.endpoint.http_url(route::SNAPSHOT), snap_tx)));
    let mut table = tty.then(|| Table { screen: Screen::enter(), view: View::new(&base) });
    let mut fatal = None;
    let resume = Resume::new(&Channel::built_in());
    let resume = if opts.every.is_some() { resume.conflated() } else { resume };
    let exit = driver::run(opts, resume, tty, snaps, |step| {
        let exit = match &step {
            Step::Event(Event::Fatal(message)) => {
                fatal = Some(message.clone());
                Some(Exit::Failure)
            }
            Step::Event(Event::TokenRefused { message, .. }) => {
                fatal = Some(message.clone());
                Some(Exit::Auth)
            }
            Step::Event(Event::Stopped { .. }) => Some(Exit::Ok),
            _ => None,
        };
        let shown = match &mut table {
            Some(t) => t.show(step, clock.now_ms()),
            None => match plain(&step, &base) {
                Some(line) => writeln!(std::io::stdout().lock(), "{}", terminal_text::text(&line)),
                None => Ok(()),
            },
        };
        // Nobody reads stdout any more: stop like any filter would.
        exit.or(shown.is_err().then_some(Exit::Ok))
    })
    .await;
    if let Some(r) = reader {
        r.abort();
    }
    if let Some(mut t) = table {
        t.screen.leave();
    }
    if let Some(message) = fatal {
        say(&message);
    }
    exit
}

/// The live table on a terminal: the view kept up to date and drawn over the last frame.
struct Table {
    screen: Screen,
    view: View,
}

impl Table {
    /// Applies a step to the view and draws it (every step: ticks age the values).
    fn show(&mut self, step: Step<Snapshots>, now: u64) -> std::io::Result<()> {
        let view = &mut self.view;
        match step {
            Step::Event(Event::Connecting { .. }) => view.set_state(ConnState::Connecting),
            Step::Event(Event::Output(Output::Welcome { conn, stale_after_seconds })) => {
                view.set_stale_after(stale_after_seconds);
                view.set_state(ConnState::Connected { conn });
            }
            Step::Event(Event::Output(Output::Update(u))) => view.update(&u),
            Step::Event(Event::Output(Output::Note(note))) => view.note(now, &note),
            Step::Event(Event::Output(Output::Authed { sub, exp })) => view.note(now, &authed(&sub, exp)),
            Step::Event(Event::Retrying { reason, delay }) => {
                let at_ms = now.saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
                view.set_state(ConnState::Retrying { reason, at_ms });
            }
            Step::Extra(Ok(confirmations)) => confirm(view, confirmations, now),
            Step::Stopping => view.set_state(ConnState::Closing),
            // A failed snapshot read: the socket's state line tells what matters.
            Step::Extra(Err(_)) => {}
            Step::Event(
                Event::Output(Output::Send(_) | Output::TokenRefused(_) | Output::Presence(_))
                | Event::Fatal(_)
                | Event::TokenRefused { .. }
                | Event::Stopped { .. },
            )
            | Step::Tick => {}
        }
        self.screen.draw(&view.render(now, true))
    }
}

/// The plain line a step prints when stdout is not a terminal; a note goes to stderr instead.
fn plain(step: &Step<Snapshots>, base: &str) -> Option<String> {
    match step {
        Step::Event(Event::Connecting { .. }) => Some(format!("connecting to {base}")),
        Step::Event(Event::Output(Output::Welcome { conn, .. })) => Some(format!("connected to {base} (conn {conn})")),
        Step::Event(Event::Output(Output::Update(u))) => Some(plain_line(u)),
        Step::Event(Event::Output(Output::Note(note))) => {
            say(note);
            None
        }
        Step::Event(Event::Output(Output::Authed { sub, exp })) => Some(authed(sub, *exp)),
        Step::Event(Event::Retrying { reason, delay }) => {
            Some(format!("disconnected: {reason}; reconnecting in {}", secs(*delay)))
        }
        Step::Event(
            Event::Output(Output::Send(_) | Output::TokenRefused(_) | Output::Presence(_))
            | Event::Fatal(_)
            | Event::TokenRefused { .. }
            | Event::Stopped { .. },
        )
        | Step::Extra(_)
        | Step::Tick
        | Step::Stopping => None,
    }
}

fn confirm(view: &mut View, confirmations: Vec<Confirmation>, now: u64) {
    for c in confirmations {
        view.confirmed(&c.channel, c.seq, c.age_seconds, c.stale, now);
    }
}

/// Reads `/api/snapshot` now and then and hands the result to the view.
async fn read_snapshots(url: String, out: mpsc::Sender<Snapshots>) {
    // Built once: its configuration (TLS included) is the same for every read.
    let agent = http::agent();
    tokio::time::sleep(SNAPSHOT_FIRST).await;
    loop {
        let (a, u) = (agent.clone(), url.clone());
        let read = tokio::task::spawn_blocking(move || snapshot::fetch(&a, &u)).await;
        let result = read.unwrap_or_else(|e| Err(e.to_string()));
        if out.send(result).await.is_err() {
            return;
        }
        tokio::time::sleep(SNAPSHOT_EVERY).await;
    }
}
