//! `tickwire watch`: the built-in channels as a live table redrawn in place on a terminal (on
//! every update and once a second for the ages), or one plain line per update and per change of
//! connection state when stdout is not a terminal.

use crate::driver::{self, Step};
use crate::errors::say;
use crate::exit::Exit;
use crate::format::secs;
use crate::resume::{Output, Resume};
use crate::screen::Screen;
use crate::session::{Event, Options};
use crate::snapshot::{self, Confirmation};
use crate::view::{plain_line, ConnState, View};
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tickwire_hub::clock::Clock;
use tickwire_hub::protocol::Channel;
use tickwire_hub::route;
use tokio::sync::mpsc;

/// The first snapshot read comes this soon after start, then one every [`SNAPSHOT_EVERY`].
const SNAPSHOT_FIRST: Duration = Duration::from_secs(5);
const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);

pub async fn run(opts: Options, clock: &dyn Clock) -> Exit {
    let tty = std::io::stdout().is_terminal();
    let base = opts.endpoint.socket_base();
    let mut view = View::new(&base);
    let (snap_tx, snaps) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_snapshots(opts.endpoint.http_url(route::SNAPSHOT), snap_tx));
    let mut screen = tty.then(Screen::enter);
    let mut fatal = None;
    let exit = driver::run(opts, Resume::new(&Channel::built_in()), tty, snaps, |step| {
        let now = clock.now_ms();
        let mut plain: Option<String> = None;
        let mut exit = None;
        match step {
            Step::Event(Event::Connecting { .. }) => {
                view.set_state(ConnState::Connecting);
                plain = Some(format!("connecting to {base}"));
            }
            Step::Event(Event::Output(Output::Welcome { conn, stale_after_seconds })) => {
                view.set_stale_after(stale_after_seconds);
                plain = Some(format!("connected to {base} (conn {conn})"));
                view.set_state(ConnState::Connected { conn });
            }
            Step::Event(Event::Output(Output::Update(u))) => {
                view.update(&u);
                plain = Some(plain_line(&u));
            }
            Step::Event(Event::Output(Output::Note(note))) => {
                view.note(now, &note);
                if !tty {
                    say(&note);
                }
            }
            Step::Event(Event::Output(Output::Send(_))) => {}
            Step::Event(Event::Retrying { reason, delay }) => {
                plain = Some(format!("disconnected: {reason}; reconnecting in {}", secs(delay)));
                let at_ms = now.saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
                view.set_state(ConnState::Retrying { reason, at_ms });
            }
            Step::Event(Event::Fatal(message)) => {
                fatal = Some(message);
                exit = Some(Exit::Failure);
            }
            Step::Event(Event::Stopped { .. }) => exit = Some(Exit::Ok),
            Step::Extra(Ok(confirmations)) => confirm(&mut view, confirmations, now),
            Step::Extra(Err(_)) => {} // the socket's state line tells what matters
            Step::Tick => {}
            Step::Stopping => view.set_state(ConnState::Closing),
        }
        let shown = match (&mut screen, plain) {
            (Some(s), _) => s.draw(&view.render(now, true)),
            (None, Some(line)) => writeln!(std::io::stdout().lock(), "{line}"),
            (None, None) => Ok(()),
        };
        // Nobody reads stdout any more: stop like any filter would.
        exit.or(shown.is_err().then_some(Exit::Ok))
    })
    .await;
    reader.abort();
    if let Some(mut s) = screen {
        s.leave();
    }
    if let Some(message) = fatal {
        say(&message);
    }
    exit
}

fn confirm(view: &mut View, confirmations: Vec<Confirmation>, now: u64) {
    for c in confirmations {
        view.confirmed(&c.channel, c.seq, c.age_seconds, c.stale, now);
    }
}

/// Reads `/api/snapshot` now and then and hands the result to the view.
async fn read_snapshots(url: String, out: mpsc::UnboundedSender<Result<Vec<Confirmation>, String>>) {
    tokio::time::sleep(SNAPSHOT_FIRST).await;
    loop {
        let u = url.clone();
        let read = tokio::task::spawn_blocking(move || snapshot::fetch(&u)).await;
        let result = read.unwrap_or_else(|e| Err(e.to_string()));
        if out.send(result).is_err() {
            return;
        }
        tokio::time::sleep(SNAPSHOT_EVERY).await;
    }
}
