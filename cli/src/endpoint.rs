//! The server a command talks to: the URL argument parsed once (`ws://`, `wss://`, `http://`,
//! `https://` or a bare `host:port`), and the socket and HTTP URLs built from it.
//!
//! The URL names a tickwire deployment: its socket path `/ws` may be given or left out, and a
//! path before it (a Worker behind a route prefix) is kept, so `https://example.com/tw`,
//! `wss://example.com/tw/ws` and `example.com/tw` all mean the same service.

use std::fmt;
use tickwire_hub::api::route;
use tickwire_hub::wire::every::Every;
use tickwire_hub::wire::protocol::{parse_digits, Channel};

/// Where commands connect when neither the argument nor `TICKWIRE_URL` says otherwise:
/// `scripts/dev`'s wrangler dev.
pub const DEFAULT_URL: &str = "ws://127.0.0.1:8787/ws";

/// A parsed server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// TLS (`wss`/`https`) or not.
    secure: bool,
    /// `host` or `host:port`, as given (IPv6 hosts in brackets).
    authority: String,
    /// The path the service lives under, without a trailing `/` (empty at the root).
    base_path: String,
}

/// Why a URL argument was refused: one line, naming the argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadUrl {
    pub input: String,
    pub reason: String,
}

impl fmt::Display for BadUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad URL {:?}: {}", self.input, self.reason)
    }
}

impl Endpoint {
    pub fn parse(input: &str) -> Result<Endpoint, BadUrl> {
        let bad = |reason: &str| BadUrl { input: input.to_owned(), reason: reason.to_owned() };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("it is empty; give e.g. ws://127.0.0.1:8787 or https://tickwire.example.workers.dev"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains a space or a control character"));
        }
        let (secure, rest) = match s.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "ws" | "http" => (false, rest),
                "wss" | "https" => (true, rest),
                _ => return Err(bad(&format!("the scheme {scheme:?} is not one of ws, wss, http, https"))),
            },
            None => (false, s),
        };
        if rest.contains(['?', '#']) {
            return Err(bad("it has a query or fragment; the client builds the query itself (channels, since)"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        check_authority(authority).map_err(|r| bad(&r))?;
        let path = path.trim_end_matches('/');
        let base_path = path.strip_suffix(route::WS).unwrap_or(path);
        Ok(Endpoint { secure, authority: authority.to_owned(), base_path: base_path.to_owned() })
    }

    /// The socket URL without a query, as shown to the user.
    pub fn socket_base(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!("{scheme}://{}{}{}", self.authority, self.base_path, route::WS)
    }

    /// The URL to connect with: these channels (none: an empty list, so nothing is subscribed),
    /// resuming from `since` (`btc:41@epoch,...`, empty for none), each at most once per `every`
    /// (conflated delivery) when given.
    pub fn socket_url(&self, channels: &[Channel], since: &str, every: Option<Every>) -> String {
        // Channel names are checked to need no encoding; `since` may hold an epoch typed by hand.
        let names: Vec<&str> = channels.iter().map(Channel::as_str).collect();
        let mut url = format!("{}?channels={}", self.socket_base(), names.join(","));
        if !since.is_empty() {
            url.push_str("&since=");
            url.push_str(&query_value(since));
        }
        if let Some(every) = every.filter(|_| !channels.is_empty()) {
            let classes: Vec<String> = names.iter().map(|n| format!("{n}:{}", every.ms())).collect();
            url.push_str("&every=");
            url.push_str(&classes.join(","));
        }
        url
    }

    /// An HTTP URL of the service, e.g. `http_url(route::PUBLISH)`.
    pub fn http_url(&self, path: &str) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}{}{path}", self.authority, self.base_path)
    }
}

/// `value` fit for a URL query: every byte but letters, digits, `-._~` and the `:,@` of the
/// `since` syntax percent-encoded, so that `+ % & #` or a space reach the server (which decodes
/// the query as a form) as typed.
fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:,@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `host`, `host:port` or `[v6]:port`: a host of letters, digits, `-`, `.`, `_` and a port 1..65535.
fn check_authority(authority: &str) -> Result<(), String> {
    if authority.is_empty() {
        return Err("it has no host".to_owned());
    }
    if authority.contains('@') {
        return Err("credentials in the URL are not supported (publish reads TICKWIRE_TOKEN)".to_owned());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("an IPv6 host lacks its closing ']'")?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err(format!("{authority:?} is not an IPv6 address in brackets"));
        }
        match after {
            "" => (addr, None),
            _ => (addr, Some(after.strip_prefix(':').ok_or("after ']' only :port may follow")?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = authority.starts_with('[')
        || (!host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')));
    if !host_ok {
        return Err(format!("{host:?} is not a host name"));
    }
    if let Some(p) = port {
        match parse_digits(p) {
            Some(n) if (1..=65535).contains(&n) => {}
            _ => return Err(format!("the port {p:?} is not a number from 1 to 65535")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_spelling_of_a_server_means_its_socket() {
        for s in [
            "ws://127.0.0.1:8787/ws",
            "ws://127.0.0.1:8787",
            "ws://127.0.0.1:8787/",
            "http://127.0.0.1:8787",
            "http://127.0.0.1:8787/ws/",
            "127.0.0.1:8787",
            "127.0.0.1:8787/ws",
            "  WS://127.0.0.1:8787  ",
        ] {
            assert_eq!(ep(s).socket_base(), "ws://127.0.0.1:8787/ws", "{s}");
            assert_eq!(ep(s).http_url(route::PUBLISH), "http://127.0.0.1:8787/api/publish", "{s}");
        }
        for s in ["wss://tw.example.workers.dev", "https://tw.example.workers.dev/ws", "HTTPS://tw.example.workers.dev"]
        {
            assert_eq!(ep(s).socket_base(), "wss://tw.example.workers.dev/ws", "{s}");
            assert_eq!(ep(s).http_url("/api/snapshot"), "https://tw.example.workers.dev/api/snapshot", "{s}");
        }
        assert_eq!(Endpoint::parse(DEFAULT_URL), Ok(ep("127.0.0.1:8787")));
    }

    #[test]
    fn a_path_prefix_is_kept() {
        for s in ["https://example.com/tw", "wss://example.com/tw/ws", "https://example.com/tw/"] {
            assert_eq!(ep(s).socket_base(), "wss://example.com/tw/ws", "{s}");
            assert_eq!(ep(s).http_url(route::PUBLISH), "https://example.com/tw/api/publish", "{s}");
        }
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(ep("localhost").socket_base(), "ws://localhost/ws");
        assert_eq!(ep("[::1]:8787").socket_base(), "ws://[::1]:8787/ws");
        assert_eq!(ep("wss://[2001:db8::1]").socket_base(), "wss://[2001:db8::1]/ws");
        assert_eq!(ep("my_host.local:1").http_url("/x"), "http://my_host.local:1/x");
    }

    #[test]
    fn the_socket_url_names_channels_and_positions() {
        let e = ep("127.0.0.1:8787");
        let chans = [Channel::btc(), Channel::parse("orders").unwrap()];
        assert_eq!(e.socket_url(&chans, "", None), "ws://127.0.0.1:8787/ws?channels=btc,orders");
        assert_eq!(
            e.socket_url(&chans, "btc:41@9f2c,orders:3", None),
            "ws://127.0.0.1:8787/ws?channels=btc,orders&since=btc:41@9f2c,orders:3"
        );
        assert_eq!(e.socket_url(&[], "", None), "ws://127.0.0.1:8787/ws?channels=");
    }

    #[test]
    fn a_typed_epoch_reaches_the_server_as_typed() {
        let e = ep("127.0.0.1:8787");
        let since = "btc:4@a+b%c&d#e f/é";
        let url = e.socket_url(&[Channel::btc()], since, None);
        assert_eq!(url, "ws://127.0.0.1:8787/ws?channels=btc&since=btc:4@a%2Bb%25c%26d%23e%20f%2F%C3%A9");
        let query = url.split_once('?').map(|(_, q)| q).unwrap();
        assert_eq!(route::query_param(query, "since").as_deref(), Some(since), "the server's own decoding");
        assert_eq!(route::query_param(query, "channels").as_deref(), Some("btc"));
    }

    #[test]
    fn bad_urls_say_why_in_one_line() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("ftp://x", "scheme \"ftp\""),
            ("ws://", "no host"),
            ("ws:///ws", "no host"),
            ("ws://a b", "space"),
            ("ws://h:0", "port \"0\""),
            ("ws://h:65536", "port"),
            ("ws://h:", "port \"\""),
            ("ws://h:+1", "port"),
            ("ws://h:1:2", "port \"1:2\""),
            ("http:/x", "port"),
            ("ws://u:p@h", "credentials"),
            ("ws://h/ws?channels=btc", "query"),
            ("ws://h#x", "query or fragment"),
            ("ws://[::1", "closing"),
            ("ws://[zz]:1", "IPv6"),
            ("ws://[::1]x", "only :port"),
            ("ws://hé", "not a host"),
        ];
        for (input, want) in cases {
            let e = Endpoint::parse(input).expect_err(input);
            let line = e.to_string();
            assert!(line.contains(want), "{input:?}: {line}");
            assert!(!line.contains('\n'), "{input:?}: {line}");
        }
        assert!(Endpoint::parse("ws://h\n").is_ok(), "surrounding whitespace is trimmed");
        assert!(Endpoint::parse("ws://h\u{7}x").is_err());
    }

    #[test]
    fn every_asks_for_each_channel_at_the_interval() {
        let e = Endpoint::parse("127.0.0.1:8787").unwrap();
        let chans = [Channel::btc(), Channel::parse("market").unwrap()];
        let url = e.socket_url(&chans, "", Every::from_ms(1000));
        assert_eq!(url, "ws://127.0.0.1:8787/ws?channels=btc,market&every=btc:1000,market:1000");
        assert_eq!(e.socket_url(&[], "", Every::from_ms(1000)), "ws://127.0.0.1:8787/ws?channels=");
    }
}
