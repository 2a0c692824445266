//! An application's publish as the hub receives it: the body checked (size, JSON, channel) into
//! an [`AppPublish`], or the refusal with the HTTP status, code and message the API documents.
//!
//! The Worker checks what the headers say (token, media type, announced length) and streams the
//! body to the sequencer unread; the body is parsed once, here, by the object that sequences it.

use crate::auth::access::Denied;
use crate::auth::{Capability, TokenError};
use crate::wire::error_body::error_body;
use crate::wire::protocol::{Channel, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An application's message for an app channel (`POST /api/publish` on the sequencer). Unlike feed
/// values, every publish is news: it always gets the next seq.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppPublish {
    pub channel: Channel,
    pub ts: u64,
    pub data: Value,
}

/// Why a publish was refused. Each has its status and stable `code` (README: HTTP routes).
#[derive(Debug, Clone, PartialEq)]
pub enum PublishRefusal {
    /// 413: the body is larger than `MAX_PUBLISH_BYTES`.
    TooLarge { limit: usize },
    /// 400 `bad_json`: not JSON, or not `{"channel": "...", "data": ...}`.
    BadJson(String),
    /// 400 `invalid_channel`: the name breaks the channel pattern.
    InvalidChannel(String),
    /// 403 `channel_reserved`: built-in channels are filled by tickwire's own feeds only.
    Reserved,
    /// 409 `too_many_channels`: the publish would create an app channel past `MAX_APP_CHANNELS`.
    TooManyChannels { limit: usize },
    /// 503 `overloaded` (with `Retry-After`): too many updates are waiting to be sent to sockets
    /// or fanned out to the other shards.
    Overloaded { retry_after_secs: u64 },
    /// 401 `unauthorized` / `token_expired`: the bearer token is neither `PUBLISH_TOKEN` nor a
    /// valid token (the Worker refuses most of these; the sequencer checks again).
    Token(TokenError),
    /// 401/403: a valid token that does not grant `publish` on the channel.
    Denied(Denied, Channel),
}

impl PublishRefusal {
    pub fn status(&self) -> u16 {
        match self {
            PublishRefusal::TooLarge { .. } => 413,
            PublishRefusal::BadJson(_) | PublishRefusal::InvalidChannel(_) => 400,
            PublishRefusal::Reserved => 403,
            PublishRefusal::TooManyChannels { .. } => 409,
            PublishRefusal::Overloaded { .. } => 503,
            PublishRefusal::Token(_) => 401,
            PublishRefusal::Denied(d, _) => d.status(),
        }
    }

    /// The code of the same refusal in a socket's `error` frame.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            PublishRefusal::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            PublishRefusal::BadJson(_) => ErrorCode::BadJson,
            PublishRefusal::InvalidChannel(_) => ErrorCode::InvalidChannel,
            PublishRefusal::Reserved => ErrorCode::ChannelReserved,
            PublishRefusal::TooManyChannels { .. } => ErrorCode::TooManyChannels,
            PublishRefusal::Overloaded { .. } => ErrorCode::Overloaded,
            PublishRefusal::Token(e) => e.code(),
            PublishRefusal::Denied(d, _) => d.code(),
        }
    }

    /// The stable code of the JSON error body: the same word as the socket's `error` frame.
    pub fn code(&self) -> &'static str {
        self.error_code().label()
    }

    pub fn message(&self) -> String {
        match self {
            PublishRefusal::TooLarge { limit } => format!("body larger than {limit} bytes"),
            PublishRefusal::BadJson(m) | PublishRefusal::InvalidChannel(m) => m.clone(),
            PublishRefusal::Reserved => "built-in channels are published by tickwire's feeds only".to_owned(),
            PublishRefusal::TooManyChannels { limit } => format!(
                "{limit} app channels exist (MAX_APP_CHANNELS); delete one with DELETE /api/channels/<name> first"
            ),
            PublishRefusal::Overloaded { retry_after_secs } => {
                format!("too many updates are waiting to be sent or fanned out; retry after {retry_after_secs} s")
            }
            PublishRefusal::Token(e) => format!("token refused: {e}"),
            PublishRefusal::Denied(d, channel) => d.message(channel, Capability::Publish),
        }
    }

    pub fn body(&self) -> String {
        error_body(self.code(), &self.message())
    }
}

/// Why `DELETE /api/channels/<name>` was refused, with its status and code (README: HTTP routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteRefusal {
    /// 400 `invalid_channel`: the name breaks the channel pattern (the reason).
    InvalidChannel(String),
    /// 403 `channel_reserved`.
    BuiltIn,
    /// 404 `unknown_channel`: no such app channel (the name as sent).
    Unknown(String),
}

impl DeleteRefusal {
    pub fn status(&self) -> u16 {
        match self {
            DeleteRefusal::InvalidChannel(_) => 400,
            DeleteRefusal::BuiltIn => 403,
            DeleteRefusal::Unknown(_) => 404,
        }
    }

    pub fn body(&self) -> String {
        match self {
            DeleteRefusal::InvalidChannel(reason) => {
                error_body(PublishRefusal::InvalidChannel(String::new()).code(), reason)
            }
            DeleteRefusal::BuiltIn => {
                error_body(PublishRefusal::Reserved.code(), "built-in channels cannot be deleted")
            }
            DeleteRefusal::Unknown(name) => error_body("unknown_channel", &format!("no channel {name:?}")),
        }
    }
}

/// Size, then JSON shape and channel; `ts` is when the publish arrived.
pub fn check_body(body: &[u8], max_bytes: usize, ts: u64) -> Result<AppPublish, PublishRefusal> {
    if body.len() > max_bytes {
        return Err(PublishRefusal::TooLarge { limit: max_bytes });
    }
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| PublishRefusal::BadJson(format!("body is not JSON: {e}")))?;
    let name = value
        .get("channel")
        .and_then(Value::as_str)
        .ok_or_else(|| PublishRefusal::BadJson("body needs \"channel\" (a string) and \"data\"".to_owned()))?;
    let channel = Channel::parse(name).map_err(|e| PublishRefusal::InvalidChannel(e.0))?;
    let data = value
        .get_mut("data")
        .map(Value::take)
        .ok_or_else(|| PublishRefusal::BadJson("body needs \"data\"".to_owned()))?;
    if channel.is_built_in() {
        return Err(PublishRefusal::Reserved);
    }
    Ok(AppPublish { channel, ts, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_refusals_carry_the_documented_status_and_code() {
        let code = |r: &DeleteRefusal| serde_json::from_str::<Value>(&r.body()).unwrap()["error"]["code"].clone();
        let cases = [
            (DeleteRefusal::InvalidChannel("bad".into()), 400, "invalid_channel"),
            (DeleteRefusal::BuiltIn, 403, "channel_reserved"),
            (DeleteRefusal::Unknown("gone".into()), 404, "unknown_channel"),
        ];
        for (refusal, status, expected) in cases {
            assert_eq!((refusal.status(), code(&refusal)), (status, Value::from(expected)));
        }
        assert!(DeleteRefusal::Unknown("gone".into()).body().contains("gone"));
    }
    use serde_json::json;

    fn refusal(body: &[u8], max: usize) -> (u16, &'static str) {
        let e = check_body(body, max, 0).unwrap_err();
        (e.status(), e.code())
    }

    #[test]
    fn accepts_a_good_publish() {
        let p = check_body(br#"{"channel":"news","data":{"headline":"hi"}}"#, 1000, 7).unwrap();
        assert_eq!(p, AppPublish { channel: Channel::parse("news").unwrap(), ts: 7, data: json!({"headline": "hi"}) });
        let null = check_body(br#"{"channel":"news","data":null}"#, 1000, 7).unwrap();
        assert_eq!(null.data, Value::Null, "null is a value like any other");
    }

    #[test]
    fn refusals_have_their_status_and_code() {
        assert_eq!(refusal(br#"{"channel":"news","data":1}"#, 10), (413, "payload_too_large"));
        assert_eq!(refusal(b"{", 1000), (400, "bad_json"));
        assert_eq!(refusal(br#"{"channel":"news"}"#, 1000), (400, "bad_json"));
        assert_eq!(refusal(br#"{"channel":7,"data":1}"#, 1000), (400, "bad_json"));
        assert_eq!(refusal(br#"{"channel":"A B","data":1}"#, 1000), (400, "invalid_channel"));
        assert_eq!(refusal(br#"{"channel":"btc","data":1}"#, 1000), (403, "channel_reserved"));
        let o = PublishRefusal::Overloaded { retry_after_secs: 1 };
        assert_eq!((o.status(), o.code()), (503, "overloaded"));
    }

    #[test]
    fn bodies_are_the_api_error_shape() {
        let v: Value = serde_json::from_str(&PublishRefusal::TooLarge { limit: 16 }.body()).unwrap();
        assert_eq!(v, json!({"error": {"code": "payload_too_large", "message": "body larger than 16 bytes"}}));
    }
}
