//! The exit codes every command uses, documented once here and in `--help` and the README.

/// A process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: published, or stopped with Ctrl-C / SIGTERM.
    Ok = 0,
    /// The server could not be reached (or `--retries` ran out), or failed (5xx), or refused the
    /// socket's URL.
    Failure = 1,
    /// Bad arguments: unknown flag, bad URL, bad channel name, JSON that does not parse; a
    /// private channel without a token; `token` without `TICKWIRE_TOKEN_SECRET`.
    Usage = 2,
    /// Publish: 401, or 403 (token refused, or publishing is off on the server). Watch, tail:
    /// the server refused the user token, it expired, or it does not grant a channel.
    Auth = 3,
    /// Publish: 413, the message is larger than the server's MAX_PUBLISH_BYTES.
    TooLarge = 4,
    /// Publish: 429 or 503 (rate limited, overloaded, hub unavailable): retry after a while.
    TryLater = 5,
    /// Publish: any other refusal (400 invalid channel, 403 built-in channel, 409 too many channels).
    Refused = 6,
}

/// The table printed under `--help` (a macro, so that clap's `concat!` help texts can hold it).
macro_rules! exit_codes_help {
    () => {
        "Exit codes:
  0  done (published; or stopped with Ctrl-C or SIGTERM)
  1  server unreachable or failing (5xx), socket URL refused, or --retries ran out
  2  usage: bad arguments, URL, channel name or JSON; a private channel without --token;
     token: TICKWIRE_TOKEN_SECRET unset or too short
  3  not authorised: publish 401, 403 (token missing or refused, publishing off);
     watch, tail: the user token refused, expired, or not granting a channel
  4  publish: message too large (413)
  5  publish: rate limited or overloaded (429, 503): retry after the time given
  6  publish: refused otherwise (400, 403 built-in channel, 409 too many channels)"
    };
}
pub(crate) use exit_codes_help;

impl Exit {
    pub fn code(self) -> std::process::ExitCode {
        std::process::ExitCode::from(self as u8)
    }
}
