//! tickwire: the terminal client of a tickwire server. `watch` shows the built-in channels as a
//! live table, `tail` prints every update of any channels as JSON lines, `publish` publishes to
//! an app channel, `token` mints a user token for private channels. A host tool: built for wasm32 (the workspace's Worker checks cover every
//! member) it is an empty library and an empty program.
//!
//! Module map: pure and host-tested: `endpoint` (the URL argument), `resume` (positions, gaps,
//! duplicates, the bounded hold before `subscribed`), `backoff`, `view` and `format` (what `watch`
//! shows), `publish` (what an answer means), `token` (a token's claims and signing), `snapshot`,
//! `errors`, `exit`, `terminal_text` (the one filter every server string passes on its way to the
//! terminal); glue: `conn` (one
//! WebSocket, its size caps), `session` (reconnecting), `driver` (a session in the foreground),
//! `watch`, `tail`, `screen`, `signals`, `http`, `args`.
#![cfg(not(target_arch = "wasm32"))]

mod args;
mod backoff;
mod conn;
mod driver;
mod endpoint;
mod errors;
mod exit;
mod format;
mod http;
mod publish;
mod resume;
mod screen;
mod session;
mod signals;
mod snapshot;
mod tail;
mod terminal_text;
mod token;
mod view;
mod watch;

/// Runs the command line of this process; its exit code.
pub fn run() -> std::process::ExitCode {
    args::run().code()
}
