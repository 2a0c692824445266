//! One log line as one JSON object with stable fields, for Workers Logs to index field by field.
//!
//! Every line the Worker and the hub write goes through [`Line`]: `level`, `event` (a stable
//! name from [`Event`], the field operators filter on), `component` (`worker` or `hub`), and
//! where there is one `shard` (the shard that wrote it), `peer` (the other shard it is about),
//! `channel`, `path`, `conn` (a socket's id), `upstream`, `kind`
//! (the error's kind: an API error code, an upstream outcome) and `detail` (free text for a
//! person). The README lists the events. A line is one JSON object on one line, written as a
//! string (not a JS object) so `wrangler dev` prints it verbatim and Workers Logs parses it.
//!
//! Never a token or a secret: no call site passes one, and [`Line::detail`] still masks
//! anything shaped like a JWT or a bearer credential, and cuts text at [`MAX_DETAIL_BYTES`] so a
//! client's or an upstream's text cannot make a line huge.

use serde::Serialize;
use std::fmt::Display;

/// How bad it is: `info` is routine (a round's outcome), `warn` is a client's or a peer's
/// fault the service rode out, `error` is the service's own failure an operator should see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Which half of the service wrote the line (`wasm` for a panic: both halves share one wasm
/// module, and the hook cannot tell which one was running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    Worker,
    Hub,
    Wasm,
}

/// What happened: the `event` field. Names are stable (dashboards and alerts filter on them);
/// add new ones, never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    // ---- Requests (the Worker).
    /// A request failed on the service's side (5xx), or with detail worth a look.
    RequestFailed,
    /// A request refused for its credentials (401, 403): a bad, expired or under-capable token,
    /// a wrong publish token, a refused origin.
    RequestRefused,
    /// A shard could not answer a read; the sequencer is asked instead.
    ReadFallback,
    /// The hub could not be reached; `/api/snapshot` serves KV, `/health` and `/metrics` say so.
    HubUnreachable,
    /// The platform's connect limiter failed; connects are let through (once per isolate).
    ConnectLimiterFailed,
    // ---- Rounds.
    /// A cron round's outcome.
    CronRound,
    /// A cron round that failed or was skipped.
    CronFailed,
    /// An upstream fetch failed (`upstream`, `kind`).
    UpstreamFailed,
    /// A feed round failed as a whole.
    FeedRoundFailed,
    /// A KV mirror write or the KV binding failed.
    KvFailed,
    // ---- The hub's storage and setup.
    /// A storage write (or its sync) failed.
    StorageFailed,
    /// Stored state could not be read; it starts afresh.
    StorageUnreadable,
    /// Something could not be encoded to JSON.
    EncodeFailed,
    /// A var is invalid; defaults are used.
    SettingsInvalid,
    /// The alarm could not be read or set.
    AlarmFailed,
    /// The runtime refused `waitUntil` (`detail` says for what).
    WaitUntilRefused,
    /// Setting up the object failed in part (`detail` says what).
    SetupFailed,
    // ---- Sockets.
    /// A send to a socket failed; it is closed.
    SendFailed,
    /// A socket's attachment could not be saved.
    AttachmentFailed,
    /// The runtime reported a socket error.
    SocketError,
    /// A socket was closed for staying silent on a presence channel.
    SocketSilent,
    /// A publish (HTTP or socket) failed after it was accepted for checking.
    PublishFailed,
    /// History could not be read.
    HistoryFailed,
    // ---- Between shards.
    /// A fan-out to a replica failed or timed out; it is left out for a while.
    FanoutFailed,
    /// A replica could not pull from the sequencer.
    HealFailed,
    /// A replica healed channels from the sequencer.
    Healed,
    /// A replica's `btc` watch report failed.
    WatchReportFailed,
    /// A presence report or pull between shards failed.
    PresenceSyncFailed,
    // ---- Anything else.
    /// The code panicked (a bug): `detail` has the message and where.
    Panic,
}

impl Event {
    /// Every event, for the test that keeps the README's list complete.
    pub const ALL: [Event; 29] = [
        Event::RequestFailed,
        Event::RequestRefused,
        Event::ReadFallback,
        Event::HubUnreachable,
        Event::ConnectLimiterFailed,
        Event::CronRound,
        Event::CronFailed,
        Event::UpstreamFailed,
        Event::FeedRoundFailed,
        Event::KvFailed,
        Event::StorageFailed,
        Event::StorageUnreadable,
        Event::EncodeFailed,
        Event::SettingsInvalid,
        Event::AlarmFailed,
        Event::WaitUntilRefused,
        Event::SetupFailed,
        Event::SendFailed,
        Event::AttachmentFailed,
        Event::SocketError,
        Event::SocketSilent,
        Event::PublishFailed,
        Event::HistoryFailed,
        Event::FanoutFailed,
        Event::HealFailed,
        Event::Healed,
        Event::WatchReportFailed,
        Event::PresenceSyncFailed,
        Event::Panic,
    ];
}

/// The most bytes of `detail` a line carries (cut on a character boundary, marked `…`).
pub const MAX_DETAIL_BYTES: usize = 1024;

/// One log line, built then written with [`Line::emit`] (or rendered with [`Line::to_json`]).
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub level: Level,
    pub event: Event,
    pub component: Component,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Line {
    pub fn new(level: Level, component: Component, event: Event) -> Line {
        Line {
            level,
            event,
            component,
            shard: None,
            peer: None,
            channel: None,
            path: None,
            conn: None,
            upstream: None,
            kind: None,
            detail: None,
        }
    }
    pub fn shard(mut self, shard: u32) -> Line {
        self.shard = Some(shard);
        self
    }
    /// The other shard a line is about (a fan-out's target, a replica that reported).
    pub fn peer(mut self, peer: u32) -> Line {
        self.peer = Some(peer);
        self
    }
    pub fn channel(mut self, channel: impl Display) -> Line {
        self.channel = Some(clean(&channel.to_string()));
        self
    }
    pub fn path(mut self, path: impl Display) -> Line {
        self.path = Some(clean(&path.to_string()));
        self
    }
    pub fn conn(mut self, conn: impl Display) -> Line {
        self.conn = Some(clean(&conn.to_string()));
        self
    }
    pub fn upstream(mut self, upstream: impl Display) -> Line {
        self.upstream = Some(clean(&upstream.to_string()));
        self
    }
    pub fn kind(mut self, kind: impl Display) -> Line {
        self.kind = Some(clean(&kind.to_string()));
        self
    }
    /// Free text for a person: credentials masked, cut at [`MAX_DETAIL_BYTES`].
    pub fn detail(mut self, detail: impl Display) -> Line {
        self.detail = Some(clean(&detail.to_string()));
        self
    }

    /// The line: one JSON object, no newline inside (serde_json escapes control characters).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            // Unreachable (plain strings and enums), but a log call must never fail or panic.
            let component = serde_json::to_string(&self.component).unwrap_or_default();
            format!(r#"{{"level":"error","event":"encode_failed","component":{component}}}"#)
        })
    }

    /// Writes the line to the runtime's console at its level (`console.log`/`warn`/`error`).
    #[cfg(target_arch = "wasm32")]
    pub fn emit(self) {
        let text = self.to_json();
        match self.level {
            Level::Info => worker::console_log!("{text}"),
            Level::Warn => worker::console_warn!("{text}"),
            Level::Error => worker::console_error!("{text}"),
        }
    }
}

/// Makes a panic one `panic` line too: its message, where, and the JavaScript stack (what
/// `console_error_panic_hook` printed as free text). Set once, at the module's start.
#[cfg(target_arch = "wasm32")]
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let error = worker::js_sys::Error::new("");
        let stack = worker::js_sys::Reflect::get(&error, &"stack".into()).ok().and_then(|s| s.as_string());
        let stack = stack.unwrap_or_default();
        // The detail cap keeps the top of the stack, which is the part that matters.
        Line::new(Level::Error, Component::Wasm, Event::Panic).detail(format_args!("{info}\nstack:{stack}")).emit();
    }));
}

/// A line from the Worker.
pub fn worker(level: Level, event: Event) -> Line {
    Line::new(level, Component::Worker, event)
}

/// A line from the hub.
pub fn hub(level: Level, event: Event) -> Line {
    Line::new(level, Component::Hub, event)
}

/// `text` with credentials masked and cut to [`MAX_DETAIL_BYTES`].
fn clean(text: &str) -> String {
    let masked = mask_credentials(text);
    if masked.len() <= MAX_DETAIL_BYTES {
        return masked;
    }
    let mut end = MAX_DETAIL_BYTES;
    while !masked.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &masked[..end])
}

/// Masks what looks like a credential: a JWT (`eyJ` then two dots in a run of base64url
/// characters) and whatever follows an HTTP auth scheme (`Bearer`, `Basic`) and its spaces.
/// Belt and braces: no call site logs one.
fn mask_credentials(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(scheme) = ["Bearer", "Basic"].into_iter().find(|s| {
            rest.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s))
                && rest[s.len()..].starts_with(|c: char| c.is_whitespace())
        }) {
            let after = rest[scheme.len()..].trim_start();
            let end = after.find(|c: char| c.is_whitespace() || c == '"' || c == '\'').unwrap_or(after.len());
            out.push_str(scheme);
            out.push_str(" [redacted]");
            rest = &after[end..];
            continue;
        }
        if rest.starts_with("eyJ") {
            let end = rest.find(|c: char| !(is_b64(c) || c == '.')).unwrap_or(rest.len());
            if rest[..end].matches('.').count() >= 2 {
                out.push_str("[redacted token]");
                rest = &rest[end..];
                continue;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_line_is_one_json_object_with_stable_field_names() {
        let line = hub(Level::Error, Event::FanoutFailed)
            .shard(2)
            .channel("news")
            .kind("timeout")
            .detail("fan-out to shard 2 timed out after 300 ms\nnext line \"quoted\"");
        let text = line.to_json();
        assert!(!text.contains('\n'), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["event"], "fanout_failed");
        assert_eq!(v["component"], "hub");
        assert_eq!(v["shard"], 2);
        assert_eq!(v["channel"], "news");
        assert_eq!(v["kind"], "timeout");
        assert_eq!(v["detail"], "fan-out to shard 2 timed out after 300 ms\nnext line \"quoted\"");
        // Absent fields are left out, not null.
        assert!(v.get("path").is_none() && v.get("conn").is_none() && v.get("upstream").is_none());
        let w: Value = serde_json::from_str(&worker(Level::Warn, Event::RequestRefused).to_json()).unwrap();
        assert_eq!(w, serde_json::json!({"level": "warn", "event": "request_refused", "component": "worker"}));
    }

    #[test]
    fn credentials_are_masked_wherever_they_appear() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let line = worker(Level::Warn, Event::RequestRefused)
            .path(format!("/ws?token={jwt}"))
            .detail(format!("header was Bearer s3cret-publish-token, then {jwt}!"));
        let text = line.to_json();
        assert!(!text.contains("s3cret") && !text.contains("c2lnbmF0dXJl"), "{text}");
        assert_eq!(line.path.as_deref(), Some("/ws?token=[redacted token]"));
        // A bearer credential runs to the next space: the comma after it goes too.
        assert_eq!(line.detail.as_deref(), Some("header was Bearer [redacted] then [redacted token]!"));
        assert_eq!(clean("Authorization: Bearer  \ts3cret next"), "Authorization: Bearer [redacted] next");
        assert_eq!(clean("basic dXNlcjpwYXNz"), "Basic [redacted]");
        // Ordinary text that merely starts like a token is kept.
        assert_eq!(clean("eyJust one.dot"), "eyJust one.dot");
        assert_eq!(clean("bearer"), "bearer");
        assert_eq!(clean("Basically fine"), "Basically fine");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_DETAIL_BYTES);
        let cut = clean(&long);
        assert!(cut.len() <= MAX_DETAIL_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(clean("short"), "short");
    }

    #[test]
    fn event_names_are_snake_case_and_distinct() {
        let all = Event::ALL;
        // A new event fails to compile here until it is added to `Event::ALL` (and the README).
        for e in all {
            match e {
                Event::RequestFailed
                | Event::RequestRefused
                | Event::ReadFallback
                | Event::HubUnreachable
                | Event::ConnectLimiterFailed
                | Event::CronRound
                | Event::CronFailed
                | Event::UpstreamFailed
                | Event::FeedRoundFailed
                | Event::KvFailed
                | Event::StorageFailed
                | Event::StorageUnreadable
                | Event::EncodeFailed
                | Event::SettingsInvalid
                | Event::AlarmFailed
                | Event::WaitUntilRefused
                | Event::SetupFailed
                | Event::SendFailed
                | Event::AttachmentFailed
                | Event::SocketError
                | Event::SocketSilent
                | Event::PublishFailed
                | Event::HistoryFailed
                | Event::FanoutFailed
                | Event::HealFailed
                | Event::Healed
                | Event::WatchReportFailed
                | Event::PresenceSyncFailed
                | Event::Panic => {}
            }
        }
        let names: std::collections::BTreeSet<String> =
            all.iter().map(|e| serde_json::to_value(e).unwrap().as_str().unwrap().to_owned()).collect();
        assert_eq!(names.len(), all.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        // Operators filter on these names: the README lists every one.
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        for name in &names {
            assert!(readme.contains(&format!("| `{name}` |")), "README.md does not list the log event {name}");
        }
    }
}
