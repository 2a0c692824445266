//! The hub's internal API, declared once for both ends: the Durable Object binding, the shards'
//! names, every internal route (the caller builds its URL, the object parses it back) and the
//! bodies those routes carry. Client routes the Worker forwards unchanged are in `route.rs`. The
//! JSON bodies the core builds too (history pages, what shards exchange) are in `wire/bodies.rs`.
//!
//! None of this is part of the public wire protocol; both ends are compiled from this crate, so
//! they change together.

#[cfg(target_arch = "wasm32")]
pub mod body;
pub mod route;
#[cfg(target_arch = "wasm32")]
pub mod stub;

use crate::core::publish::AppPublish;
use crate::wire::bodies::{Have, Published};
use crate::wire::presence::is_presence;
use crate::wire::protocol::{Channel, ErrorCode, Seq};

use crate::api::route::query_param;
pub use crate::core::close::CloseReason;
/// The body of `GET /stats` as the Worker merges the shards' answers, and the bounded label sets
/// it counts by: the core does the counting, this route carries it.
pub use crate::core::history_budget::CatchupOutcome;
pub use crate::core::socket::FrameKind;
pub use crate::core::stats::{ChannelStats, HubStats};
use crate::feeds::status::{Outcome, Source};
use serde::{Deserialize, Serialize};

/// The hub's Durable Object binding (wrangler.toml `[durable_objects]`).
pub const BINDING: &str = "HUB";

/// The origin of internal requests: the runtime routes them by stub, never by host.
const BASE: &str = "https://hub.internal";

/// Shard 0 sequences every channel; publishes, channel deletes and feed rounds go there.
pub const SEQUENCER: u32 = 0;

/// The Durable Object name of hub shard `k`. Shard 0 is also the sequencer, and keeps the name
/// the single hub always had, so raising `HUB_SHARDS` never resets anyone's sequence numbers.
pub fn shard_name(k: u32) -> String {
    if k == 0 {
        "hub".to_owned()
    } else {
        format!("hub-shard-{k}")
    }
}

/// The shard number a Durable Object name stands for: the inverse of [`shard_name`]. `None`
/// for a name no shard has.
pub fn shard_of_name(name: &str) -> Option<u32> {
    if name == "hub" {
        return Some(SEQUENCER);
    }
    name.strip_prefix("hub-shard-")?.parse().ok().filter(|&k| k != SEQUENCER)
}

/// The hub's internal routes, reached only from the Worker or another shard. The caller turns
/// one into a request with [`HubRoute::verb`] and [`HubRoute::url`]; the object reads it back
/// with [`HubRoute::parse`], so a path is spelled in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubRoute {
    /// `POST /refresh` (sequencer): runs a cron round; answers a [`RoundReport`].
    Refresh,
    /// `GET /snapshot`: each channel's latest value.
    Snapshot,
    /// `GET /history?channel=&since=&limit=`: a [`HistoryPage`]. The Worker has checked and
    /// defaulted the public query (`/api/history`), so all three are required here.
    History { channel: Channel, since: u64, limit: u64 },
    /// `POST /watch` (sequencer): a [`Watch`] report from another shard.
    Watch,
    /// `GET /watching`: this shard's `btc` subscriber count, as plain digits (a replica whose
    /// last one left less than `FAST_POLL_SECONDS` ago says 1: see `btc_watch.rs`).
    Watching,
    /// `POST /apply` (replicas): an [`Apply`] from the sequencer; answers [`Applied`].
    Apply,
    /// `POST /sync` (sequencer): a replica's [`SyncRequest`]; answers a [`SyncPage`].
    Sync,
    /// `GET /stats?shard=K`: the object's stats, labelled with its shard.
    Stats { shard: u32 },
    /// `POST /publish` (sequencer): a socket's publish from a replica, its access already
    /// checked there; a [`SocketPublish`] answered with a [`SocketPublished`].
    Publish,
    /// `POST /presence-report` (sequencer): a replica's presence `Report`; 409 asks for its
    /// full state (`core/presence.rs`).
    PresenceReport,
    /// `GET /presence-local` (replicas): the shard's full presence state, as a full `Report`.
    PresenceLocal,
    /// `GET /presence-table` (sequencer): the global member table (`TableView`), 503 while it
    /// is incomplete.
    PresenceTable,
    /// `POST /presence-events` (replicas): a numbered `Batch` of joins and leaves.
    PresenceEvents,
    /// `GET /presence?channel=` (sequencer): a presence channel's members, the body of
    /// `GET /api/presence` (the Worker has checked the caller).
    Presence { channel: Channel },
}

/// A socket's publish, forwarded by the replica that holds the socket to the sequencer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketPublish {
    pub publish: AppPublish,
}

/// The sequencer's answer to a [`SocketPublish`]: the seq, or the refusal as the socket's
/// `error` frame carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketPublished {
    Published(Published),
    Refused { code: ErrorCode, message: String },
}

/// The methods internal routes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    pub fn from_method(method: &str) -> Option<Verb> {
        match method {
            "GET" => Some(Verb::Get),
            "POST" => Some(Verb::Post),
            _ => None,
        }
    }
}

/// Why a request names no internal route (the object answers it with [`RouteError::refusal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No route has this method and path.
    NotFound,
    /// The route exists; its query does not parse (what is wrong with it).
    BadQuery(&'static str),
}

impl RouteError {
    /// The refusal the object answers: a caller of the internal API sent it, so it is a bug on
    /// the Worker's side, and the Worker reports it as such (`HubRefusal::is_caller_bug`).
    pub fn refusal(&self) -> HubRefusal {
        match self {
            RouteError::NotFound => HubRefusal::NoRoute,
            RouteError::BadQuery(what) => HubRefusal::BadRequest(what),
        }
    }
}

const REFRESH: &str = "/refresh";
const SNAPSHOT: &str = "/snapshot";
const HISTORY: &str = "/history";
const WATCH: &str = "/watch";
const WATCHING: &str = "/watching";
const APPLY: &str = "/apply";
const SYNC: &str = "/sync";
const STATS: &str = "/stats";
const PUBLISH: &str = "/publish";
const PRESENCE_REPORT: &str = "/presence-report";
const PRESENCE_LOCAL: &str = "/presence-local";
const PRESENCE_TABLE: &str = "/presence-table";
const PRESENCE_EVENTS: &str = "/presence-events";
const PRESENCE: &str = "/presence";

impl HubRoute {
    pub fn verb(&self) -> Verb {
        match self {
            HubRoute::Refresh
            | HubRoute::Watch
            | HubRoute::Apply
            | HubRoute::Sync
            | HubRoute::Publish
            | HubRoute::PresenceReport
            | HubRoute::PresenceEvents => Verb::Post,
            HubRoute::Snapshot
            | HubRoute::History { .. }
            | HubRoute::Watching
            | HubRoute::Stats { .. }
            | HubRoute::PresenceLocal
            | HubRoute::PresenceTable
            | HubRoute::Presence { .. } => Verb::Get,
        }
    }

    fn path(&self) -> &'static str {
        match self {
            HubRoute::Refresh => REFRESH,
            HubRoute::Snapshot => SNAPSHOT,
            HubRoute::History { .. } => HISTORY,
            HubRoute::Watch => WATCH,
            HubRoute::Watching => WATCHING,
            HubRoute::Apply => APPLY,
            HubRoute::Sync => SYNC,
            HubRoute::Stats { .. } => STATS,
            HubRoute::Publish => PUBLISH,
            HubRoute::PresenceReport => PRESENCE_REPORT,
            HubRoute::PresenceLocal => PRESENCE_LOCAL,
            HubRoute::PresenceTable => PRESENCE_TABLE,
            HubRoute::PresenceEvents => PRESENCE_EVENTS,
            HubRoute::Presence { .. } => PRESENCE,
        }
    }

    /// The URL a caller requests. Channel names are URL-safe by construction (`Channel::parse`).
    pub fn url(&self) -> String {
        let path = self.path();
        match self {
            HubRoute::History { channel, since, limit } => {
                format!("{BASE}{path}?channel={channel}&since={since}&limit={limit}")
            }
            HubRoute::Stats { shard } => format!("{BASE}{path}?shard={shard}"),
            HubRoute::Presence { channel } => format!("{BASE}{path}?channel={channel}"),
            _ => format!("{BASE}{path}"),
        }
    }

    /// The route a request names: its method, path and query (without `?`).
    pub fn parse(verb: Verb, path: &str, query: &str) -> Result<HubRoute, RouteError> {
        let number = |name: &str| query_param(query, name).and_then(|v| v.parse::<u64>().ok());
        let route = match path {
            REFRESH => HubRoute::Refresh,
            SNAPSHOT => HubRoute::Snapshot,
            HISTORY => {
                let channel = query_param(query, "channel").and_then(|c| Channel::parse(&c).ok());
                match (channel, number("since"), number("limit")) {
                    (Some(channel), Some(since), Some(limit)) => HubRoute::History { channel, since, limit },
                    _ => return Err(RouteError::BadQuery("history needs channel, since and limit")),
                }
            }
            WATCH => HubRoute::Watch,
            WATCHING => HubRoute::Watching,
            APPLY => HubRoute::Apply,
            SYNC => HubRoute::Sync,
            PUBLISH => HubRoute::Publish,
            PRESENCE_REPORT => HubRoute::PresenceReport,
            PRESENCE_LOCAL => HubRoute::PresenceLocal,
            PRESENCE_TABLE => HubRoute::PresenceTable,
            PRESENCE_EVENTS => HubRoute::PresenceEvents,
            PRESENCE => match query_param(query, "channel").and_then(|c| Channel::parse(&c).ok()) {
                Some(channel) if is_presence(channel.as_str()) => HubRoute::Presence { channel },
                _ => return Err(RouteError::BadQuery("presence needs a presence channel")),
            },
            STATS => match number("shard").and_then(|k| u32::try_from(k).ok()) {
                Some(shard) => HubRoute::Stats { shard },
                None => return Err(RouteError::BadQuery("stats needs shard")),
            },
            _ => return Err(RouteError::NotFound),
        };
        if route.verb() == verb {
            Ok(route)
        } else {
            Err(RouteError::NotFound)
        }
    }
}

/// How the object refuses an internal request: a status and a stable code in the API's JSON
/// error body, so the Worker tells "no such channel" (a 404 for its client) from its own bug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubRefusal {
    /// 404 `no_route`: the caller named no internal route.
    NoRoute,
    /// 400 `bad_request`: a route's query or body does not parse.
    BadRequest(&'static str),
    /// 404 `unknown_channel`: the channel does not exist (on this shard).
    UnknownChannel,
    /// 503 `lagging`: a replica that cannot vouch for its state (it could not reach shard 0);
    /// the Worker asks the sequencer instead.
    Lagging,
}

impl HubRefusal {
    pub fn status(&self) -> u16 {
        match self {
            HubRefusal::NoRoute | HubRefusal::UnknownChannel => 404,
            HubRefusal::BadRequest(_) => 400,
            HubRefusal::Lagging => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            HubRefusal::NoRoute => "no_route",
            HubRefusal::BadRequest(_) => "bad_request",
            HubRefusal::UnknownChannel => "unknown_channel",
            HubRefusal::Lagging => "lagging",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            HubRefusal::NoRoute => "no such hub route",
            HubRefusal::BadRequest(what) => what,
            HubRefusal::UnknownChannel => "no such channel",
            HubRefusal::Lagging => "this shard is catching up with the sequencer",
        }
    }

    /// The API's JSON error body for it.
    pub fn body(&self) -> String {
        crate::wire::error_body::error_body(self.code(), self.message())
    }

    /// The refusal a hub answer's status and body stand for; `None` when the body is not one
    /// (a different build of the hub, or something in between).
    pub fn from_answer(status: u16, body: &str) -> Option<HubRefusal> {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let refusal = match v.pointer("/error/code")?.as_str()? {
            "no_route" => HubRefusal::NoRoute,
            "bad_request" => HubRefusal::BadRequest("bad request"),
            "unknown_channel" => HubRefusal::UnknownChannel,
            "lagging" => HubRefusal::Lagging,
            _ => return None,
        };
        (refusal.status() == status).then_some(refusal)
    }
}

/// The hub's report of a refresh round (`POST /refresh`): what it fetched, what it skipped and
/// why, and the seq of each value that changed and was broadcast.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    pub fetched: Vec<Source>,
    pub skipped: Vec<(Source, Outcome)>,
    pub published: Vec<(Channel, Seq)>,
}

/// Body of `POST /sync`: a replica's digest, every channel it has and where it stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub shard: u32,
    pub have: Vec<Have>,
}

/// A shard's answer to `POST /apply`: how many `btc` subscribers it has (as `/watching` counts
/// them), so a lost or overtaken `/watch` report is corrected by the next fan-out (every cron
/// round sends one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub btc_watchers: u64,
}

/// Body of `POST /watch`: a shard other than 0 says whether it has `btc` subscribers: a start
/// at once, a stop once it has had none for `FAST_POLL_SECONDS` (`btc_watch.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub shard: u32,
    pub watching: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::route::split_url;

    fn round_trip(route: HubRoute) -> Result<HubRoute, RouteError> {
        let url = route.url();
        assert!(url.starts_with(BASE), "{url}");
        let (path, query) = split_url(&url);
        HubRoute::parse(route.verb(), path, query)
    }

    #[test]
    fn every_route_parses_back_from_its_url() {
        let routes = [
            HubRoute::Refresh,
            HubRoute::Snapshot,
            HubRoute::History { channel: Channel::parse("app-1_x").unwrap(), since: 7, limit: 100 },
            HubRoute::Watch,
            HubRoute::Watching,
            HubRoute::Apply,
            HubRoute::Sync,
            HubRoute::Stats { shard: 3 },
            HubRoute::Publish,
            HubRoute::PresenceReport,
            HubRoute::PresenceLocal,
            HubRoute::PresenceTable,
            HubRoute::PresenceEvents,
            HubRoute::Presence { channel: Channel::parse("presence-room").unwrap() },
        ];
        for route in routes {
            assert_eq!(round_trip(route.clone()), Ok(route));
        }
    }

    #[test]
    fn a_wrong_method_or_path_is_no_route_and_a_bad_query_says_what() {
        assert_eq!(HubRoute::parse(Verb::Get, "/refresh", ""), Err(RouteError::NotFound));
        assert_eq!(HubRoute::parse(Verb::Post, "/stats", "shard=1"), Err(RouteError::NotFound));
        assert_eq!(HubRoute::parse(Verb::Get, "/ingest", ""), Err(RouteError::NotFound));
        assert!(matches!(HubRoute::parse(Verb::Get, "/history", "channel=btc&since=1"), Err(RouteError::BadQuery(_))));
        assert!(matches!(
            HubRoute::parse(Verb::Get, "/history", "channel=B!&since=1&limit=2"),
            Err(RouteError::BadQuery(_))
        ));
        assert!(matches!(HubRoute::parse(Verb::Get, "/stats", "shard=-1"), Err(RouteError::BadQuery(_))));
        assert_eq!(Verb::from_method("DELETE"), None);
    }

    #[test]
    fn refusals_read_back_from_their_json_answer() {
        for refusal in [HubRefusal::NoRoute, HubRefusal::UnknownChannel, HubRefusal::Lagging] {
            let body = refusal.body();
            assert_eq!(HubRefusal::from_answer(refusal.status(), &body), Some(refusal));
        }
        let bad = HubRefusal::BadRequest("stats needs shard");
        let body = bad.body();
        assert_eq!(HubRefusal::from_answer(400, &body), Some(HubRefusal::BadRequest("bad request")));
        // A plain-text 404 (not ours) or a status that does not match the code is not a refusal.
        assert_eq!(HubRefusal::from_answer(404, "no such hub route"), None);
        assert_eq!(HubRefusal::from_answer(503, &body), None);
    }

    #[test]
    fn shard_names_keep_the_single_hub_name_for_shard_0_and_parse_back() {
        assert_eq!(shard_name(0), "hub");
        assert_eq!(shard_name(3), "hub-shard-3");
        for k in [0, 1, 7, 4096] {
            assert_eq!(shard_of_name(&shard_name(k)), Some(k));
        }
        for name in ["hub-shard-0", "hub-shard-", "hub-shard-x", "other", "hub-shard--1"] {
            assert_eq!(shard_of_name(name), None, "{name}");
        }
    }
}
