//! The routes a client request keeps when the Worker forwards it to the hub unchanged (sockets
//! and publishes, the hot paths), declared once for both sides, and the URL splitting both use
//! instead of a full URL parse.

/// `GET /ws?channels=..&since=..`: a client's WebSocket upgrade, public and internal alike.
pub const WS: &str = "/ws";
/// The query parameter of `/ws` that carries a token (`?token=<jwt>`). Clients that can should
/// send the `auth` op instead, which keeps the token out of URLs.
pub const TOKEN_PARAM: &str = "token";
/// `POST /api/publish`: an app publish; the Worker checks the headers, the hub the body.
pub const PUBLISH: &str = "/api/publish";

/// `GET /api/snapshot`: the latest value of each built-in channel with its age; the terminal
/// client reads it for when values were last confirmed.
pub const SNAPSHOT: &str = "/api/snapshot";

/// `DELETE /api/channels/<name>`: deletes an app channel; the Worker checks the token, the
/// sequencer the name.
pub const CHANNELS: &str = "/api/channels/";

/// Which shard a new socket goes to, given `?shard=` (if any), the shard count and a random
/// number: spread at random; `?shard=K` pins K (tests, debugging) but never the sequencer
/// (shard 0) when other shards exist, so no client can pile sockets onto the object that
/// sequences every update.
pub fn socket_shard(requested: Option<u32>, shards: u32, random: u32) -> u32 {
    match requested {
        _ if shards <= 1 => 0,
        Some(k) if (1..shards).contains(&k) => k,
        _ => random % shards,
    }
}

/// Which shard answers a read of channel data (`/api/snapshot`, `/api/history`): any, at
/// random, so reads are spread like sockets. A replica may lag the sequencer by a fan-out in
/// flight, and may not know an app channel published since it last heard from shard 0: the
/// Worker then asks shard 0 (see `hub_client`).
pub fn read_shard(shards: u32, random: u32) -> u32 {
    random % shards.max(1)
}

/// The path and query (without `?`, empty when there is none) of a URL as the runtime
/// serialises it (`Request.url`): absolute, so the path starts at the first `/` after `://`;
/// a fragment is dropped.
pub fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    // The fragment first (a `?` after `#` is not a query), then the authority, which ends at
    // the first `/` or `?` (a `/` inside the query of a path-less URL is not a path).
    let rest = strip_fragment(&url[after_scheme..]);
    let rest = &rest[rest.find(['/', '?']).unwrap_or(rest.len())..];
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    (if path.is_empty() { "/" } else { path }, query)
}

fn strip_fragment(s: &str) -> &str {
    s.find('#').map_or(s, |h| &s[..h])
}

/// The first value of `name` in a query string, percent- and plus-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_what_the_runtime_serialises() {
        assert_eq!(
            split_url("http://127.0.0.1:8787/ws?channels=btc,market&since=btc:3"),
            ("/ws", "channels=btc,market&since=btc:3")
        );
        assert_eq!(split_url("https://hub.internal/api/publish"), ("/api/publish", ""));
        assert_eq!(split_url("http://h/"), ("/", ""));
        assert_eq!(split_url("http://h"), ("/", ""));
        assert_eq!(split_url("http://h?x=1"), ("/", "x=1"));
        assert_eq!(split_url("http://h/a/b?x=1#frag"), ("/a/b", "x=1"));
        assert_eq!(split_url("http://h/a#f?not-a-query"), ("/a", ""));
        // Path-less URLs: a `/` in the query or fragment is not a path, a `?` after `#` no query.
        assert_eq!(split_url("http://h?x=1/y"), ("/", "x=1/y"));
        assert_eq!(split_url("http://h#frag/z?q"), ("/", ""));
        assert_eq!(split_url("http://a#?a"), ("/", ""));
        // A host with a port or credentials-like text does not move the path.
        assert_eq!(split_url("http://u:p@h:1/ws"), ("/ws", ""));
    }

    #[test]
    fn sockets_never_pin_the_sequencer_when_other_shards_exist() {
        assert_eq!(socket_shard(Some(3), 1, 7), 0, "one shard: nothing to choose");
        assert_eq!(socket_shard(Some(0), 4, 7), 3, "?shard=0 is ignored: random");
        assert_eq!(socket_shard(Some(2), 4, 7), 2);
        assert_eq!(socket_shard(Some(4), 4, 5), 1, "out of range: random");
        assert_eq!(socket_shard(None, 4, 8), 0, "random placement may still land on 0");
        assert_eq!((0..8).map(|r| read_shard(4, r)).collect::<Vec<_>>(), [0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(read_shard(0, 5), 0);
    }

    #[test]
    fn query_params_are_decoded() {
        let q = "channels=btc%2Cmarket&since=btc%3A3&empty=&plus=a+b";
        assert_eq!(query_param(q, "channels").as_deref(), Some("btc,market"));
        assert_eq!(query_param(q, "since").as_deref(), Some("btc:3"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "plus").as_deref(), Some("a b"));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("", "x"), None);
    }
}
