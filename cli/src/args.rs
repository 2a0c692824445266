//! The command line: clap's definitions with their help and examples, and each command started
//! with its arguments checked; a bad argument is one line on stderr and exit 2, never a panic.

use crate::endpoint::{Endpoint, DEFAULT_URL};
use crate::errors::say;
use crate::exit::{exit_codes_help, Exit};
use crate::publish::{self, Credential, Outcome};
use crate::resume::Resume;
use crate::session::{Options, UserToken};
use crate::terminal_text;
use crate::{tail, token, watch};
use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;
use tickwire_hub::api::route;
use tickwire_hub::clock::Clock;
use tickwire_hub::wire::every::Every;
use tickwire_hub::wire::protocol::Channel;

#[derive(Debug, Parser)]
#[command(
    name = "tickwire",
    version,
    about = "Terminal client of a tickwire server: live market data, app channels, publishing.",
    after_help = concat!(
        "The server URL may be ws://, wss://, http://, https:// or a bare host:port; /ws is implied.\n",
        "Default: $TICKWIRE_URL, else ws://127.0.0.1:8787/ws (scripts/dev).\n\n",
        "Examples:\n",
        "  tickwire watch\n",
        "  tickwire watch https://tickwire.example.workers.dev\n",
        "  tickwire tail btc market | jq -r 'select(.channel == \"btc\") | .data.price_usd'\n",
        "  TICKWIRE_TOKEN=secret tickwire publish news '{\"headline\":\"hello\"}'\n",
        "  tickwire tail private-u42 --token \"$(tickwire token --sub u42 --cap private-u42:subscribe,history)\"\n\n",
        exit_codes_help!(),
    ),
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A live table of the built-in channels: BTC, every tracked coin, market cap, volume,
    /// dominance, Fear & Greed, RSI, each with its age and a stale mark.
    #[command(after_help = concat!(
        "On a terminal the table is redrawn in place; otherwise every update is one plain line.\n",
        "Reconnects by itself (full-jitter backoff) and resumes where it stood. Ctrl-C closes the\n",
        "socket (1000) and exits 0.\n\n",
        "Examples:\n",
        "  tickwire watch\n",
        "  tickwire watch 127.0.0.1:8787\n",
        "  tickwire watch wss://tickwire.example.workers.dev | tee prices.log",
    ))]
    Watch(WatchArgs),
    /// One JSON line per update of the given channels (built-in or app), for scripts and jq.
    #[command(after_help = concat!(
        "stdout gets each update frame as one compact JSON line, each seq of a channel exactly once\n",
        "and in order, across reconnects (resumed with since and epoch); connection status, gaps\n",
        "and errors go to stderr. An unreachable server is retried forever, one stderr line per\n",
        "attempt, unless --retries says when to give up (exit 1). Ctrl-C exits 0 and prints the\n",
        "--since to resume from on stderr.\n\n",
        "Examples:\n",
        "  tickwire tail btc\n",
        "  tickwire tail orders news --url https://tickwire.example.workers.dev\n",
        "  tickwire tail orders --since orders:41@9f2c6a1be04d7713\n",
        "  tickwire tail btc | jq -r '.data.price_usd'",
    ))]
    Tail(TailArgs),
    /// Publish a JSON value to an app channel (POST /api/publish) with the token in $TICKWIRE_TOKEN.
    #[command(after_help = concat!(
        "Prints {\"channel\":...,\"seq\":N} on success. The token is the server's PUBLISH_TOKEN, read from\n",
        "the environment variable TICKWIRE_TOKEN (never from the command line, where ps would show it).\n\n",
        "Examples:\n",
        "  TICKWIRE_TOKEN=secret tickwire publish news '{\"headline\":\"hello\"}'\n",
        "  echo '[1,2,3]' | TICKWIRE_TOKEN=secret tickwire publish numbers -\n\n",
        exit_codes_help!(),
    ))]
    Publish(PublishArgs),
    /// Mint a token for a user, signed with $TICKWIRE_TOKEN_SECRET (the server's TOKEN_SECRET), and print it.
    #[command(after_help = concat!(
        "Prints the token (an HS256 JWT) on stdout. It opens private- channels as its --cap entries\n",
        "grant: CHANNEL:CAP[,CAP...], where CHANNEL is a channel name, a prefix ending in * or * alone,\n",
        "and CAP is subscribe, history, publish or presence (at most 16 entries). The secret is read\n",
        "from the environment only and never printed.\n\n",
        "Examples:\n",
        "  tickwire token --sub u42 --cap 'private-u42:subscribe,history' --ttl 1h\n",
        "  tickwire token --sub ann --cap 'private-room-*:subscribe,publish' --info '{\"name\":\"Ann\"}'\n",
        "  export TICKWIRE_USER_TOKEN=\"$(tickwire token --sub u42 --cap 'private-u42:subscribe')\"",
    ))]
    Token(TokenArgs),
}

/// A user token for the commands that talk to the server.
#[derive(Debug, Args)]
struct TokenArg {
    /// A user token (`tickwire token`), presented first on every connection (publish: sent as
    /// Authorization: Bearer, instead of TICKWIRE_TOKEN) [env: TICKWIRE_USER_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The user id (the token's sub), 1-64 bytes.
    #[arg(long, value_name = "ID")]
    sub: String,
    /// What the token grants: CHANNEL:CAP[,CAP...] (repeat for more channels).
    #[arg(long = "cap", value_name = "CHANNEL:CAPS")]
    caps: Vec<String>,
    /// How long the token is valid: a whole number and s, m, h or d (at most 365d).
    #[arg(long, value_name = "TTL", default_value = "1h")]
    ttl: String,
    /// A JSON object kept with the token for presence (at most 512 bytes).
    #[arg(long, value_name = "JSON")]
    info: Option<String>,
}

/// How a following command keeps its connection.
#[derive(Debug, Args)]
struct FollowArgs {
    /// Send the keep-alive `ping` every SECS seconds; nothing heard for twice as long reconnects.
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    ping: u64,
    /// Wait at most SECS seconds between reconnect attempts (full jitter from 0.5 s up).
    #[arg(long, value_name = "SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    retry_max: u64,
    /// Give up (exit 1) after N failed connection attempts in a row beyond the first [default: never].
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
}

#[derive(Debug, Args)]
struct WatchArgs {
    /// The server [env: TICKWIRE_URL] [default: ws://127.0.0.1:8787/ws]
    #[arg(value_name = "URL")]
    url: Option<String>,
    /// At most one update per channel per interval, the latest (conflated delivery): 250ms, 1s, 5s or 30s.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_every)]
    every: Option<Every>,
    #[command(flatten)]
    follow: FollowArgs,
    #[command(flatten)]
    token: TokenArg,
}

#[derive(Debug, Args)]
struct TailArgs {
    /// Channels to follow (built-in: btc, market, sentiment, indicators; any other name is an app channel).
    #[arg(value_name = "CHANNEL", required = true)]
    channels: Vec<String>,
    /// Resume from these positions (channel:seq or channel:seq@epoch, comma-separated): updates after them are replayed.
    #[arg(long, value_name = "POSITIONS")]
    since: Vec<String>,
    /// The server [env: TICKWIRE_URL] [default: ws://127.0.0.1:8787/ws]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// No connection status on stderr (gaps and errors are still reported).
    #[arg(short, long)]
    quiet: bool,
    /// Also print presence channels' member lists, joins and leaves as JSON lines (the token
    /// needs the `presence` capability).
    #[arg(long)]
    presence: bool,
    #[command(flatten)]
    follow: FollowArgs,
    #[command(flatten)]
    token: TokenArg,
}

#[derive(Debug, Args)]
struct PublishArgs {
    /// The app channel (1-32 characters of a-z, 0-9, '-', '_').
    channel: String,
    /// The value: JSON text, or - to read it from stdin.
    json: String,
    /// The server [env: TICKWIRE_URL] [default: ws://127.0.0.1:8787/ws]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    #[command(flatten)]
    token: TokenArg,
}

/// The real clock, for ages.
struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }
}

pub fn run() -> Exit {
    // --help, --version and clap's usage errors exit here.
    let cli = Cli::parse();
    // rustls picks ring (the only provider built in); installing it first makes that explicit.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match cli.command {
        Command::Watch(a) => options(a.url, &a.follow, a.token)
            .map(|opts| Options { every: a.every, ..opts })
            .map(|opts| in_runtime(watch::run(opts, &WallClock))),
        Command::Tail(a) => tail_command(a),
        Command::Publish(a) => publish_command(a),
        Command::Token(a) => token_command(a),
    };
    result.unwrap_or_else(|line| {
        say(&line);
        Exit::Usage
    })
}

/// The server: the argument, else `TICKWIRE_URL`, else the local default.
fn endpoint(arg: Option<String>) -> Result<Endpoint, String> {
    let url = arg.or_else(|| std::env::var("TICKWIRE_URL").ok().filter(|u| !u.trim().is_empty()));
    Endpoint::parse(url.as_deref().unwrap_or(DEFAULT_URL)).map_err(|e| e.to_string())
}

/// The user token: `--token`, else `TICKWIRE_USER_TOKEN`; empty is none.
fn user_token(arg: TokenArg) -> Option<UserToken> {
    let token = arg.token.or_else(|| std::env::var("TICKWIRE_USER_TOKEN").ok());
    token.filter(|t| !t.trim().is_empty()).map(UserToken)
}

fn options(url: Option<String>, f: &FollowArgs, token: TokenArg) -> Result<Options, String> {
    Ok(Options {
        endpoint: endpoint(url)?,
        ping_every: Duration::from_secs(f.ping),
        retry_max: Duration::from_secs(f.retry_max),
        retries: f.retries,
        token: user_token(token),
        every: None,
    })
}

/// `--every`: one of the server's conflation intervals, as `250ms`, `1s`, `5s` or `30s`.
fn parse_every(s: &str) -> Result<Every, String> {
    let ms = match s.strip_suffix("ms") {
        Some(n) => n.parse::<u64>().ok(),
        None => s.strip_suffix('s').and_then(|n| n.parse::<u64>().ok()).and_then(|n| n.checked_mul(1000)),
    };
    ms.and_then(Every::from_ms).ok_or_else(|| "use 250ms, 1s, 5s or 30s".to_owned())
}

fn tail_command(a: TailArgs) -> Result<Exit, String> {
    // Repeated channels are followed once: `Resume` keeps them in a map.
    let channels =
        a.channels.iter().map(|c| Channel::parse(c).map_err(|e| e.to_string())).collect::<Result<Vec<_>, _>>()?;
    let resume = Resume::with_since(&channels, &a.since.join(","))?;
    let opts = options(a.url, &a.follow, a.token)?;
    if let (None, Some(c)) = (&opts.token, channels.iter().find(|c| c.is_private())) {
        return Err(format!("{c} is a private channel: give a token with --token or TICKWIRE_USER_TOKEN"));
    }
    Ok(in_runtime(tail::run(opts, resume, a.quiet, a.presence)))
}

fn publish_command(a: PublishArgs) -> Result<Exit, String> {
    let endpoint = endpoint(a.url)?;
    let channel = Channel::parse(&a.channel).map_err(|e| e.to_string())?;
    let text = match a.json.as_str() {
        "-" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| format!("cannot read the value from stdin: {e}"))?;
            s
        }
        _ => a.json,
    };
    let data: Value = serde_json::from_str(&text).map_err(|e| format!("the value is not JSON: {e}"))?;
    // A user token, when given, is sent instead of the server's PUBLISH_TOKEN.
    let (token, credential) = match user_token(a.token) {
        Some(t) => (Some(t.0), Credential::UserToken),
        None => (std::env::var("TICKWIRE_TOKEN").ok().filter(|t| !t.is_empty()), Credential::PublishToken),
    };
    let url = endpoint.http_url(route::PUBLISH);
    let exit = match publish::send(&url, token.as_deref(), publish::body(&channel, &data)) {
        Err(line) => {
            say(&line);
            Exit::Failure
        }
        Ok(answer) => match publish::outcome(&answer, credential) {
            Outcome::Published(line) => {
                let _ = writeln!(std::io::stdout(), "{}", terminal_text::json(&line));
                Exit::Ok
            }
            Outcome::Refused(exit, line) => {
                say(&line);
                exit
            }
        },
    };
    Ok(exit)
}

fn token_command(a: TokenArgs) -> Result<Exit, String> {
    let ttl = token::parse_ttl(&a.ttl)?;
    let now = WallClock.now_ms() / 1000;
    let claims = token::claims(&a.sub, &a.caps, ttl, a.info.as_deref(), now)?;
    let secret = std::env::var(token::SECRET_VAR).ok();
    let jwt = token::mint(&claims, secret.as_deref())?;
    Ok(match writeln!(std::io::stdout(), "{jwt}") {
        Ok(()) => Exit::Ok,
        Err(_) => Exit::Failure,
    })
}

/// Runs a following command on a single-threaded runtime; a blocking read still in flight
/// (a snapshot) does not hold the exit up.
fn in_runtime(fut: impl std::future::Future<Output = Exit>) -> Exit {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => {
            let exit = rt.block_on(fut);
            rt.shutdown_background();
            exit
        }
        Err(e) => {
            say(&format!("cannot start: {e}"));
            Exit::Failure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_help_with_examples() {
        let mut cmd = Cli::command();
        let top = cmd.render_help().to_string();
        assert!(top.contains("Examples:") && top.contains("watch") && top.contains("publish"), "{top}");
        for name in ["watch", "tail", "publish", "token"] {
            let sub = cmd.find_subcommand_mut(name).unwrap().render_help().to_string();
            assert!(sub.contains("Examples:"), "{name}: {sub}");
        }
        let publish = cmd.find_subcommand_mut("publish").unwrap().render_help().to_string();
        assert!(publish.contains("TICKWIRE_TOKEN") && publish.contains("Exit codes"), "{publish}");
    }

    #[test]
    fn arguments_parse() {
        let cli =
            Cli::try_parse_from(["tickwire", "tail", "btc", "orders", "--since", "orders:3@e", "-q", "--ping", "2"])
                .unwrap();
        match cli.command {
            Command::Tail(a) => {
                assert_eq!(a.channels, ["btc", "orders"]);
                assert_eq!(a.since, ["orders:3@e"]);
                assert!(a.quiet);
                assert_eq!(a.follow.ping, 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["tickwire", "tail"]).is_err(), "a channel is required");
        assert!(Cli::try_parse_from(["tickwire", "watch", "--ping", "0"]).is_err());
        assert!(Cli::try_parse_from(["tickwire", "publish", "x"]).is_err(), "the value is required");
    }

    #[test]
    fn bad_values_are_one_line() {
        let bad = TailArgs {
            channels: vec!["BTC".into()],
            since: vec![],
            url: None,
            quiet: false,
            presence: false,
            follow: FollowArgs { ping: 20, retry_max: 15, retries: None },
            token: TokenArg { token: None },
        };
        let e = tail_command(bad).unwrap_err();
        assert!(e.contains("invalid channel name") && !e.contains('\n'), "{e}");
        let e = endpoint(Some("ftp://x".into())).unwrap_err();
        assert!(e.starts_with("bad URL \"ftp://x\""), "{e}");
        let p = PublishArgs {
            channel: "news".into(),
            json: "{nope".into(),
            url: Some("127.0.0.1:1".into()),
            token: TokenArg { token: None },
        };
        assert!(publish_command(p).unwrap_err().starts_with("the value is not JSON"));
    }

    #[test]
    fn token_arguments_parse() {
        let cli = Cli::try_parse_from([
            "tickwire",
            "token",
            "--sub",
            "u42",
            "--cap",
            "private-u42:subscribe,history",
            "--cap",
            "private-room-*:publish",
            "--ttl",
            "15m",
            "--info",
            r#"{"name":"Ann"}"#,
        ])
        .unwrap();
        match cli.command {
            Command::Token(a) => {
                assert_eq!((a.sub.as_str(), a.ttl.as_str()), ("u42", "15m"));
                assert_eq!(a.caps, ["private-u42:subscribe,history", "private-room-*:publish"]);
                assert_eq!(a.info.as_deref(), Some(r#"{"name":"Ann"}"#));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["tickwire", "token", "--sub", "u"]).unwrap();
        assert!(matches!(cli.command, Command::Token(a) if a.ttl == "1h" && a.caps.is_empty()), "defaults");
        assert!(Cli::try_parse_from(["tickwire", "token"]).is_err(), "--sub is required");
        for cmd in
            [&["watch", "--token", "T"][..], &["tail", "x", "--token", "T"], &["publish", "x", "1", "--token", "T"]]
        {
            let cli = Cli::try_parse_from([&["tickwire"], cmd].concat()).unwrap();
            let token = match cli.command {
                Command::Watch(a) => a.token.token,
                Command::Tail(a) => a.token.token,
                Command::Publish(a) => a.token.token,
                Command::Token(_) => None,
            };
            assert_eq!(token.as_deref(), Some("T"), "{cmd:?}");
        }
    }

    #[test]
    fn a_private_channel_needs_a_token() {
        let tail = |token: Option<&str>| TailArgs {
            channels: vec!["btc".into(), "private-u42".into()],
            since: vec![],
            url: None,
            quiet: false,
            presence: false,
            follow: FollowArgs { ping: 20, retry_max: 15, retries: None },
            token: TokenArg { token: token.map(str::to_owned) },
        };
        if std::env::var_os("TICKWIRE_USER_TOKEN").is_none() {
            let e = tail_command(tail(None)).unwrap_err();
            assert!(e.contains("private-u42 is a private channel") && e.contains("--token"), "{e}");
        }
        assert_eq!(user_token(TokenArg { token: Some("t".into()) }), Some(UserToken("t".into())));
        assert_eq!(format!("{:?}", UserToken("secret.token".into())), "UserToken(..)");
    }

    #[test]
    fn token_without_its_secret_is_a_usage_error() {
        if std::env::var_os(token::SECRET_VAR).is_some() {
            return;
        }
        let a = TokenArgs { sub: "u".into(), caps: vec![], ttl: "1h".into(), info: None };
        assert!(token_command(a).unwrap_err().contains(token::SECRET_VAR));
        let a = TokenArgs { sub: "u".into(), caps: vec![], ttl: "1y".into(), info: None };
        assert!(token_command(a).unwrap_err().starts_with("--ttl"));
    }

    #[test]
    fn exit_codes_are_documented() {
        for code in 0..=6 {
            assert!(exit_codes_help!().contains(&format!("\n  {code}  ")), "{code}");
        }
    }
}
