//! One socket's side of the protocol: its attachment (what survives hibernation), the input
//! limits, and what each client frame asks the hub to do.
//!
//! Everything a client can send is answered here with an `error` frame or a close with a
//! documented code; nothing a client sends can fail the object or reach another socket.

use crate::auth::access::{check, Grant};
use crate::auth::{Capability, Keys};
use crate::core::close::CloseReason;
use crate::core::history_budget::ReplayWindow;
use crate::core::publish::AppPublish;
use crate::settings::HubLimits;
use crate::wire::client_op::{parse_client_frame, ClientOp};
use crate::wire::every::Every;
use crate::wire::protocol::{parse_since_param, truncate, Channel, EndReason, ErrorCode, ServerFrame, Since};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Length of the rate-limit window.
const WINDOW_MS: u64 = 10_000;

/// A socket's attachment: small, serialised on every change so a woken object can rebuild
/// its subscriber index from the sockets alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketMeta {
    pub conn: String,
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub window_start: u64,
    #[serde(default)]
    pub window_msgs: u32,
    /// Set once the hub has closed the socket (and counted why), so the close event that
    /// follows is not counted again.
    #[serde(default)]
    pub closing: bool,
    /// Asked for `delta` frames (`/ws?delta=merge`): it is indexed under its channels' delta
    /// keys and gets each update as a merge patch where that is smaller.
    #[serde(default)]
    pub delta: bool,
    /// What its catch-ups cost in the current 10 s window (`REPLAY_BYTES_PER_10S`).
    #[serde(default)]
    pub replay: ReplayWindow,
    /// What its token grants (connect `?token=` or the `auth` op), if it presented one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
    /// The `every` interval of each entry of `channels`, packed (`core/conflation.rs`); or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub every: String,
}

/// The one delta mode: RFC 7386 JSON merge patches (`/ws?delta=merge`).
pub const DELTA_MERGE: &str = "merge";

/// What a connect URL asks for (`/ws?channels=..&since=..&delta=..&every=..`), as sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectParams<'a> {
    pub channels: Option<&'a str>,
    pub since: Option<&'a str>,
    pub delta: Option<&'a str>,
    pub every: Option<&'a str>,
}

/// What the shell must do for a socket, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(ServerFrame),
    /// Catch the socket up on `channel` (from `since` if given) and add it to the subscribers.
    Subscribe(Channel, Option<Since>),
    /// A subscribe to a channel the socket already holds: it gets every update live, so it
    /// is answered with `subscribed` at the current seq (`recovered: true`) and nothing is
    /// replayed; asking again is no way to read history over and over.
    Held(Channel),
    Unsubscribe(Channel),
    /// Sequence the socket's publish like an API publish (on the sequencer, or forwarded to
    /// it) and answer `published` or an `error`, with the client's id.
    Publish(AppPublish, Option<String>),
    /// The socket's grant changed (`auth`): its private channels expire at a new time.
    Regrant,
    /// A token was refused, for this reason (`TokenError::reason`): counted, nothing to do.
    TokenRefused(&'static str),
    /// Close the socket (see [`close_frame`] for the code).
    Close(CloseReason),
}

/// Counted client frames, by op (a bounded set, for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    Subscribe,
    Unsubscribe,
    Auth,
    Publish,
    Invalid,
}

impl FrameKind {
    pub const ALL: [FrameKind; 5] =
        [FrameKind::Subscribe, FrameKind::Unsubscribe, FrameKind::Auth, FrameKind::Publish, FrameKind::Invalid];

    pub fn label(self) -> &'static str {
        match self {
            FrameKind::Subscribe => "subscribe",
            FrameKind::Unsubscribe => "unsubscribe",
            FrameKind::Auth => "auth",
            FrameKind::Publish => "publish",
            FrameKind::Invalid => "invalid",
        }
    }
}

impl SocketMeta {
    pub fn new(conn: String) -> SocketMeta {
        SocketMeta {
            conn,
            channels: Vec::new(),
            window_start: 0,
            window_msgs: 0,
            closing: false,
            delta: false,
            replay: ReplayWindow::default(),
            grant: None,
            every: String::new(),
        }
    }

    /// A client text frame. A socket whose token has expired first loses its private channels
    /// (`end_expired`), whatever the frame asks.
    pub fn on_text(&mut self, text: &str, now_ms: u64, limits: &HubLimits, keys: &Keys) -> (FrameKind, Vec<Action>) {
        if let Some(refused) = self.admit(text.len(), now_ms, limits) {
            return (FrameKind::Invalid, refused);
        }
        let now_s = now_ms / 1000;
        let mut actions = self.end_expired(now_s);
        let kind = match parse_client_frame(text) {
            Err(frame) => {
                actions.push(Action::Send(frame));
                FrameKind::Invalid
            }
            Ok(ClientOp::Subscribe { channels, since, every }) => {
                let every = Self::op_interval(every, &mut actions);
                actions.extend(self.subscribe(&channels, since, &|_: &str| every, limits, now_s));
                FrameKind::Subscribe
            }
            Ok(ClientOp::Unsubscribe { channels }) => {
                actions.extend(self.unsubscribe(&channels));
                FrameKind::Unsubscribe
            }
            Ok(ClientOp::Auth { token }) => {
                actions.extend(self.on_auth(&token, keys, now_s));
                FrameKind::Auth
            }
            Ok(ClientOp::Publish { id, .. }) if text.len() > limits.max_publish_bytes => {
                let msg = format!("a publish frame larger than {} bytes (MAX_PUBLISH_BYTES)", limits.max_publish_bytes);
                actions.push(Action::Send(ServerFrame::error(ErrorCode::PayloadTooLarge, msg).with_id(id)));
                FrameKind::Publish
            }
            Ok(ClientOp::Publish { channel, data, id }) => {
                actions.push(self.on_publish(&channel, data, id, now_ms));
                FrameKind::Publish
            }
        };
        (kind, actions)
    }

    /// A socket's `publish`: allowed with the `publish` capability on an app channel; the
    /// frame's own size limit is the publish's.
    fn on_publish(&self, name: &str, data: serde_json::Value, id: Option<String>, now_ms: u64) -> Action {
        let channel = match Channel::parse(name) {
            Ok(c) => c,
            Err(e) => return Action::Send(ServerFrame::error(ErrorCode::InvalidChannel, e.0).with_id(id)),
        };
        if channel.is_built_in() {
            let msg = "built-in channels are published by tickwire's feeds only";
            return Action::Send(ServerFrame::refusal(ErrorCode::ChannelReserved, msg, &channel).with_id(id));
        }
        match check(self.grant.as_ref(), &channel, Capability::Publish, now_ms / 1000) {
            Ok(()) => Action::Publish(AppPublish { channel, ts: now_ms, data }, id),
            Err(denied) => {
                let msg = denied.message(&channel, Capability::Publish);
                Action::Send(ServerFrame::refusal(denied.code(), msg, &channel).with_id(id))
            }
        }
    }

    /// The socket's private channels, which expire with its grant.
    pub fn private_channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.iter().filter(|c| c.is_private())
    }

    /// Ends the subscriptions in `ended` with an `unsubscribed` frame saying why.
    pub(crate) fn end(&mut self, ended: Vec<Channel>, reason: EndReason) -> Vec<Action> {
        self.retain_channels(|c| !ended.contains(c));
        let mut actions = Vec::with_capacity(ended.len() * 2);
        for channel in ended {
            actions.push(Action::Unsubscribe(channel.clone()));
            actions.push(Action::Send(ServerFrame::Unsubscribed { channel, reason: Some(reason) }));
        }
        actions
    }

    /// A binary frame: the protocol is JSON text only. It counts against the same size and
    /// rate limits as text, so binary frames are no way around them.
    pub fn on_binary(&mut self, len: usize, now_ms: u64, limits: &HubLimits) -> Vec<Action> {
        self.admit(len, now_ms, limits).unwrap_or_else(|| {
            vec![Action::Send(ServerFrame::error(
                ErrorCode::BadJson,
                "binary frames are not supported; send JSON text",
            ))]
        })
    }

    /// The size and rate limits every client frame passes first; `Some` holds the refusal.
    fn admit(&mut self, len: usize, now_ms: u64, limits: &HubLimits) -> Option<Vec<Action>> {
        if len > limits.max_client_frame_bytes {
            return Some(vec![Action::Close(CloseReason::TooBig)]);
        }
        if self.window_msgs == 0 || now_ms.saturating_sub(self.window_start) >= WINDOW_MS {
            self.window_start = now_ms;
            self.window_msgs = 0;
        }
        self.window_msgs = self.window_msgs.saturating_add(1);
        if self.window_msgs > limits.client_msgs_per_10s {
            let msg = format!("more than {} messages in 10 s", limits.client_msgs_per_10s);
            return Some(vec![
                Action::Send(ServerFrame::error(ErrorCode::RateLimited, msg)),
                Action::Close(CloseReason::RateLimited),
            ]);
        }
        None
    }

    /// The subscriptions a connect URL asks for: `channels` (absent: every built-in channel),
    /// `since` and `delta`. Invalid parts get `error` frames; the connection is still accepted.
    pub fn on_connect(&mut self, params: ConnectParams<'_>, limits: &HubLimits, now_s: u64) -> Vec<Action> {
        let ConnectParams { channels: channels_param, since: since_param, delta, every } = params;
        let mut errors = Vec::new();
        match delta {
            None => {}
            Some(DELTA_MERGE) => self.delta = true,
            Some(other) => errors.push(Action::Send(ServerFrame::error(
                ErrorCode::InvalidDelta,
                format!("delta={:?} is not a delta mode; use delta={DELTA_MERGE} or leave it out", truncate(other, 40)),
            ))),
        }
        let channels: Vec<String> = match channels_param {
            None => Channel::BUILT_IN.iter().map(|c| c.to_string()).collect(),
            Some(list) => list.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
        };
        let (since, mut actions) = match since_param.map(parse_since_param) {
            None => (Vec::new(), Vec::new()),
            Some(Ok(s)) => (s, Vec::new()),
            Some(Err(frame)) => (Vec::new(), vec![Action::Send(frame)]),
        };
        let (intervals, every_errors) = Self::connect_intervals(every, &channels);
        actions.extend(every_errors);
        actions.extend(self.subscribe(&channels, since, &|name: &str| intervals.get(name).copied(), limits, now_s));
        errors.extend(actions);
        errors
    }

    /// Linear in the size of the request: names and `since` entries are looked up in sets,
    /// never scanned per name, and each name is handled once however often it repeats.
    /// A private channel needs `subscribe`, and `history` for its `since` to replay anything:
    /// without it the socket gets the latest value, as if it had sent no `since`.
    /// `every` is the interval asked for a name, if any; a channel already held keeps its own.
    fn subscribe(
        &mut self,
        names: &[String],
        since: Vec<(String, Since)>,
        every: &dyn Fn(&str) -> Option<Every>,
        limits: &HubLimits,
        now_s: u64,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut from: HashMap<&str, &Since> = HashMap::new();
        for (name, s) in &since {
            if !wanted.contains(name.as_str()) {
                let msg = format!("since names {:?}, which this frame does not subscribe to", truncate(name, 60));
                actions.push(Action::Send(ServerFrame::error(ErrorCode::InvalidSince, msg)));
                continue;
            }
            from.entry(name.as_str()).or_insert(s);
        }
        let mut held: HashSet<Channel> = self.channels.iter().cloned().collect();
        let mut seen = HashSet::new();
        for name in names.iter().filter(|n| seen.insert(n.as_str())) {
            let channel = match Channel::parse(name) {
                Ok(c) => c,
                Err(e) => {
                    actions.push(Action::Send(ServerFrame::error(ErrorCode::InvalidChannel, e.0)));
                    continue;
                }
            };
            if let Err(denied) = check(self.grant.as_ref(), &channel, Capability::Subscribe, now_s) {
                let msg = denied.message(&channel, Capability::Subscribe);
                actions.push(Action::Send(ServerFrame::refusal(denied.code(), msg, &channel)));
                continue;
            }
            if held.contains(&channel) {
                actions.push(Action::Held(channel));
                continue;
            }
            if self.channels.len() >= limits.max_subscriptions {
                let msg = format!("at most {} subscriptions per socket", limits.max_subscriptions);
                actions.push(Action::Send(ServerFrame::error(ErrorCode::TooManySubscriptions, msg)));
                continue;
            }
            self.channels.push(channel.clone());
            self.note_every(every(name));
            held.insert(channel.clone());
            let replayable = check(self.grant.as_ref(), &channel, Capability::History, now_s).is_ok();
            let since = from.get(name.as_str()).filter(|_| replayable).map(|s| (*s).clone());
            actions.push(Action::Subscribe(channel, since));
        }
        actions
    }

    /// Linear too: each name once, and the socket's channel list filtered once.
    fn unsubscribe(&mut self, names: &[String]) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut seen = HashSet::new();
        let mut gone = HashSet::new();
        for name in names.iter().filter(|n| seen.insert(n.as_str())) {
            match Channel::parse(name) {
                Ok(channel) => {
                    gone.insert(channel.clone());
                    actions.push(Action::Unsubscribe(channel.clone()));
                    actions.push(Action::Send(ServerFrame::Unsubscribed { channel, reason: None }));
                }
                Err(e) => actions.push(Action::Send(ServerFrame::error(ErrorCode::InvalidChannel, e.0))),
            }
        }
        self.retain_channels(|c| !gone.contains(c));
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::close::close_frame;

    fn limits() -> HubLimits {
        HubLimits { max_subscriptions: 3, client_msgs_per_10s: 5, max_client_frame_bytes: 100, ..HubLimits::default() }
    }

    fn codes(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Send(ServerFrame::Error { code, .. }) => format!("{code:?}"),
                Action::Send(ServerFrame::Unsubscribed { channel, reason }) => match reason {
                    None => format!("unsubscribed {channel}"),
                    Some(r) => format!("unsubscribed {channel} {r:?}"),
                },
                Action::Publish(p, id) => format!("publish {} {id:?}", p.channel),
                Action::Regrant => "regrant".to_owned(),
                Action::TokenRefused(r) => format!("refused {r}"),
                Action::Send(other) => format!("{other:?}"),
                Action::Subscribe(c, s) => format!("sub {c} {:?}", s.as_ref().map(Since::seq)),
                Action::Unsubscribe(c) => format!("unsub {c}"),
                Action::Held(c) => format!("held {c}"),
                Action::Close(reason) => format!("close {}", close_frame(*reason).0),
            })
            .collect()
    }

    #[test]
    fn connect_defaults_to_built_ins_and_honours_params() {
        let mut m = SocketMeta::new("c".into());
        let a = m.on_connect(
            ConnectParams { channels: None, since: None, delta: None, every: None },
            &HubLimits::default(),
            0,
        );
        assert_eq!(codes(&a), ["sub btc None", "sub market None", "sub sentiment None", "sub indicators None"]);
        let mut m = SocketMeta::new("c".into());
        let a = m.on_connect(
            ConnectParams { channels: Some("btc,news"), since: Some("news:4"), delta: None, every: None },
            &limits(),
            0,
        );
        assert_eq!(codes(&a), ["sub btc None", "sub news Some(Seq(4))"]);
        assert_eq!(m.channels, vec![Channel::btc(), Channel::parse("news").unwrap()]);
        let mut m = SocketMeta::new("c".into());
        assert!(m
            .on_connect(ConnectParams { channels: Some(""), since: None, delta: None, every: None }, &limits(), 0)
            .is_empty());
        let a = m.on_connect(
            ConnectParams { channels: Some("btc,Nope,zzz"), since: Some("btc:x"), delta: None, every: None },
            &limits(),
            0,
        );
        assert_eq!(codes(&a), ["InvalidSince", "sub btc None", "InvalidChannel", "sub zzz None"], "any valid name");
    }

    #[test]
    fn delta_mode_is_asked_for_on_the_url() {
        let mut m = SocketMeta::new("c".into());
        let params = ConnectParams { channels: Some("btc"), since: None, delta: Some(DELTA_MERGE), every: None };
        assert_eq!(codes(&m.on_connect(params, &limits(), 0)), ["sub btc None"]);
        assert!(m.delta);
        let mut m = SocketMeta::new("c".into());
        let params = ConnectParams { channels: Some("btc"), since: None, delta: Some("vcdiff"), every: None };
        assert_eq!(codes(&m.on_connect(params, &limits(), 0)), ["InvalidDelta", "sub btc None"], "still connected");
        assert!(!m.delta);
        let old: SocketMeta = serde_json::from_str(r#"{"conn":"c","channels":["btc"]}"#).unwrap();
        assert!(!old.delta, "attachments saved before delta mode read as full");
    }

    #[test]
    fn subscribe_unsubscribe_and_limits() {
        let mut m = SocketMeta::new("c".into());
        let l = limits();
        let (kind, a) = m.on_text(
            r#"{"op":"subscribe","channels":["btc","market","sentiment","indicators"]}"#,
            0,
            &l,
            &Keys::default(),
        );
        assert_eq!(kind, FrameKind::Subscribe);
        assert_eq!(codes(&a), ["sub btc None", "sub market None", "sub sentiment None", "TooManySubscriptions"]);
        // Re-subscribing to a channel it has does not count against the limit, and replays
        // nothing: the socket has had every update live.
        let (_, a) = m.on_text(r#"{"op":"subscribe","channels":["btc"],"since":{"btc":7}}"#, 1, &l, &Keys::default());
        assert_eq!(codes(&a), ["held btc"]);
        let (kind, a) = m.on_text(r#"{"op":"unsubscribe","channels":["btc","BAD"]}"#, 2, &l, &Keys::default());
        assert_eq!(kind, FrameKind::Unsubscribe);
        assert_eq!(codes(&a), ["unsub btc", "unsubscribed btc", "InvalidChannel"]);
        assert_eq!(m.channels.len(), 2);
        let (_, a) = m.on_text(r#"{"op":"subscribe","channels":["news"],"since":{"btc":1}}"#, 3, &l, &Keys::default());
        assert_eq!(codes(&a), ["InvalidSince", "sub news None"]);
    }

    #[test]
    fn bad_frames_get_errors_and_the_socket_stays() {
        let mut m = SocketMeta::new("c".into());
        let l = HubLimits::default();
        for (text, kind, code) in [
            ("{", FrameKind::Invalid, "BadJson"),
            (r#"{"op":"x"}"#, FrameKind::Invalid, "UnknownOp"),
            (r#"{"op":"subscribe","channels":["A"]}"#, FrameKind::Subscribe, "InvalidChannel"),
        ] {
            let (got, a) = m.on_text(text, 0, &l, &Keys::default());
            assert_eq!((got, codes(&a)), (kind, vec![code.to_owned()]), "{text}");
        }
        assert_eq!(codes(&m.on_binary(10, 0, &l)), ["BadJson"]);
    }

    #[test]
    fn binary_frames_meet_the_same_limits() {
        let mut m = SocketMeta::new("c".into());
        let l = limits();
        assert_eq!(codes(&m.on_binary(101, 0, &l)), ["close 1009"]);
        for t in 0..5 {
            assert_eq!(codes(&m.on_binary(10, t, &l)), ["BadJson"]);
        }
        assert_eq!(codes(&m.on_binary(10, 6, &l)), ["RateLimited", "close 4029"]);
    }

    #[test]
    fn a_frame_asks_for_each_channel_once_and_at_most_the_limit() {
        let mut m = SocketMeta::new("c".into());
        let (_, a) = m.on_text(r#"{"op":"subscribe","channels":["btc","btc","btc"]}"#, 0, &limits(), &Keys::default());
        assert_eq!(codes(&a), ["sub btc None"]);
        let names: Vec<String> = (0..10).map(|_| "\"market\"".to_owned()).collect();
        let frame = format!(r#"{{"op":"subscribe","channels":[{}]}}"#, names.join(","));
        assert_eq!(codes(&m.on_text(&frame, 1, &HubLimits::default(), &Keys::default()).1), ["sub market None"]);
        let frame = r#"{"op":"subscribe","channels":["btc","market","sentiment","indicators","news"]}"#;
        let (_, a) = SocketMeta::new("d".into()).on_text(frame, 0, &limits(), &Keys::default());
        let want =
            ["sub btc None", "sub market None", "sub sentiment None", "TooManySubscriptions", "TooManySubscriptions"];
        assert_eq!(codes(&a), want);
    }

    #[test]
    fn errors_quote_names_as_written() {
        let mut m = SocketMeta::new("c".into());
        let a =
            m.on_connect(ConnectParams { channels: Some("Zzz"), since: None, delta: None, every: None }, &limits(), 0);
        let [Action::Send(ServerFrame::Error { message, .. })] = a.as_slice() else { panic!("{a:?}") };
        assert!(message.starts_with("invalid channel name \"Zzz\""), "{message}");
        assert!(!message.contains("Channel("), "no Rust types in client-facing text: {message}");
    }

    #[test]
    fn huge_requests_are_handled_once_per_name() {
        // 20,000 copies of each of two names, 20,000 since entries and 20,000 distinct app
        // names past the subscription limit: one action per distinct name, and no per-name
        // scans (which would make this billions of comparisons).
        let l = HubLimits { max_subscriptions: 100, ..HubLimits::default() };
        let mut names: Vec<String> = Vec::new();
        for _ in 0..20_000 {
            names.push("btc".into());
            names.push("market".into());
        }
        names.extend((0..20_000).map(|i| format!("app{i}")));
        let since = format!("btc:1,{}", (0..20_000).map(|i| format!("app{i}:1")).collect::<Vec<_>>().join(","));
        let mut m = SocketMeta::new("c".into());
        let a = m.on_connect(
            ConnectParams { channels: Some(&names.join(",")), since: Some(&since), delta: None, every: None },
            &l,
            0,
        );
        assert_eq!(
            a.len(),
            2 + 20_000,
            "btc, market, 98 app channels, then one too_many_subscriptions per name past the limit"
        );
        assert_eq!(codes(&a[..3]), ["sub btc Some(Seq(1))", "sub market None", "sub app0 Some(Seq(1))"]);
        assert_eq!(codes(&a[100..101]), ["TooManySubscriptions"]);
        assert_eq!(m.channels.len(), 100);
        let frame = format!(r#"{{"op":"unsubscribe","channels":[{}]}}"#, vec!["\"btc\""; 20_000].join(","));
        let (_, a) = m.on_text(&frame, 0, &HubLimits { max_client_frame_bytes: 1 << 20, ..l }, &Keys::default());
        assert_eq!(codes(&a), ["unsub btc", "unsubscribed btc"]);
        assert_eq!((m.channels.len(), m.channels[0].as_str()), (99, "market"));
    }

    #[test]
    fn oversized_frames_close_1009() {
        let mut m = SocketMeta::new("c".into());
        let (_, a) = m.on_text(&"x".repeat(101), 0, &limits(), &Keys::default());
        assert_eq!(codes(&a), ["close 1009"]);
        let (_, a) = m.on_text(&" ".repeat(100), 0, &limits(), &Keys::default());
        assert_eq!(codes(&a), ["BadJson"], "exactly the limit is allowed");
    }

    #[test]
    fn flooding_is_cut_off_per_window() {
        let mut m = SocketMeta::new("c".into());
        let l = limits();
        for t in 0..5 {
            assert_eq!(codes(&m.on_text("{}", 1_000 + t, &l, &Keys::default()).1), ["UnknownOp"]);
        }
        assert_eq!(codes(&m.on_text("{}", 1_006, &l, &Keys::default()).1), ["RateLimited", "close 4029"]);
        // A new window starts 10 s after the first message of the last one.
        let mut m = SocketMeta::new("c".into());
        for t in 0..5 {
            m.on_text("{}", 1_000 + t, &l, &Keys::default());
        }
        assert_eq!(codes(&m.on_text("{}", 11_000, &l, &Keys::default()).1), ["UnknownOp"]);
    }

    #[test]
    fn attachment_round_trips() {
        let mut m = SocketMeta::new("abc".into());
        m.on_connect(ConnectParams { channels: Some("btc,news"), since: None, delta: None, every: None }, &limits(), 0);
        m.on_text("{}", 42, &limits(), &Keys::default());
        let back: SocketMeta = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        assert_eq!((back.window_start, back.window_msgs), (42, 1));
        let old: SocketMeta = serde_json::from_str(r#"{"conn":"c","channels":["btc"]}"#).unwrap();
        assert_eq!(old.replay, ReplayWindow::default(), "saved before replay windows: nothing spent");
    }
}
