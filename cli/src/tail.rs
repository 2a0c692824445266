//! `tickwire tail`: one compact JSON line per update on stdout (the `update` frame as the server
//! sent it), each seq of a channel exactly once and in order across reconnects; status, gaps and
//! errors go to stderr, so stdout stays clean for `jq` and scripts.

use crate::driver::{self, Step};
use crate::errors::say;
use crate::exit::Exit;
use crate::format::{authed, secs};
use crate::resume::{Output, Resume};
use crate::session::{Event, Options};
use crate::terminal_text;
use std::io::Write;
use tickwire_hub::wire::protocol::ServerFrame;

/// Follows `resume`'s channels until stopped, `--retries` runs out, or stdout is closed. With
/// `presence`, a presence channel's member list and every join and leave are JSON lines too.
pub async fn run(opts: Options, resume: Resume, quiet: bool, presence: bool) -> Exit {
    let status = |line: &str| {
        if !quiet {
            say(line);
        }
    };
    let (_none, nothing) = tokio::sync::mpsc::channel::<()>(1);
    driver::run(opts, resume, false, nothing, |step| match step {
        Step::Event(Event::Output(Output::Update(u))) => {
            let mut out = std::io::stdout().lock();
            // serde_json escapes C0 in strings but not DEL, C1 or bidi controls: the filter does.
            let line = ServerFrame::Update(u).to_json();
            let written = writeln!(out, "{}", terminal_text::json(&line)).and_then(|_| out.flush());
            // The reader went away (`| head -1`): done, like any filter.
            written.is_err().then_some(Exit::Ok)
        }
        Step::Event(Event::Output(Output::Presence(f))) if presence => {
            let mut out = std::io::stdout().lock();
            let line = ServerFrame::Presence(f).to_json();
            let written = writeln!(out, "{}", terminal_text::json(&line)).and_then(|_| out.flush());
            written.is_err().then_some(Exit::Ok)
        }
        Step::Event(Event::Output(Output::Presence(_))) => None,
        Step::Event(Event::Output(Output::Welcome { conn, .. })) => {
            status(&format!("connected (conn {conn})"));
            None
        }
        Step::Event(Event::Output(Output::Note(note))) => {
            say(&note);
            None
        }
        Step::Event(Event::Output(Output::Authed { sub, exp })) => {
            status(&authed(&sub, exp));
            None
        }
        Step::Event(Event::Output(Output::Send(_) | Output::TokenRefused(_))) | Step::Extra(()) | Step::Tick => None,
        Step::Event(Event::Connecting { url }) => {
            status(&format!("connecting to {url}"));
            None
        }
        Step::Event(Event::Retrying { reason, delay }) => {
            status(&format!("{reason}; retrying in {}", secs(delay)));
            None
        }
        Step::Event(Event::Fatal(message)) => {
            say(&message);
            Some(Exit::Failure)
        }
        Step::Event(Event::TokenRefused { message, since }) => {
            say(&message);
            if !since.is_empty() {
                say(&format!("resume with a valid token and --since {since}"));
            }
            Some(Exit::Auth)
        }
        Step::Event(Event::Stopped { echoed, since }) => {
            let closed = if echoed { "closed (1000, echoed by the server)" } else { "stopped" };
            match since.as_str() {
                "" => status(closed),
                _ => status(&format!("{closed}; resume with --since {since}")),
            }
            Some(Exit::Ok)
        }
        Step::Stopping => None,
    })
    .await
}
