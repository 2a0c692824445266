//! `POST /api/publish`: checks an application's publish request (auth, type, size, body) before
//! anything reaches the hub. Pure, so every refusal is unit-tested.

use crate::config::Token;
use crate::error::ApiError;
use durable::protocol::Channel;
use serde_json::Value;

/// The parts of the HTTP request the checks need.
#[derive(Debug, Clone, Copy)]
pub struct PublishRequest<'a> {
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// A checked publish: the channel (an app channel) and the data to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub channel: Channel,
    pub data: Value,
}

/// Compares in time independent of where the inputs differ, so response timing does not leak
/// how much of a guessed token was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// Authorises first (401/403), then checks the content type (415), size (413) and body (400).
pub fn check(req: PublishRequest<'_>, token: Option<&Token>, max_bytes: usize) -> Result<Checked, ApiError> {
    authorize(req.authorization, token)?;
    check_media_type(req.content_type)?;
    check_body(req.body, max_bytes)
}

/// The bearer token, compared in constant time. Checked before the body is read, so an
/// unauthorised client cannot make the Worker buffer anything.
pub fn authorize(authorization: Option<&str>, token: Option<&Token>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::Forbidden {
            code: "publish_disabled",
            message: "publishing is disabled: set the PUBLISH_TOKEN secret",
        });
    };
    let presented = authorization
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    if !constant_time_eq(presented.as_bytes(), token.expose().as_bytes()) {
        return Err(ApiError::Forbidden { code: "forbidden", message: "wrong publish token" });
    }
    Ok(())
}

pub fn check_media_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let media = content_type.and_then(|c| c.split(';').next()).map(str::trim).unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(())
}

/// Size (413), then JSON shape and channel (400, or 403 for a built-in channel).
pub fn check_body(body: &[u8], max_bytes: usize) -> Result<Checked, ApiError> {
    if body.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge { limit: max_bytes });
    }
    let bad = |code, message: String| ApiError::BadRequest { code, message };
    let value: Value = serde_json::from_slice(body).map_err(|e| bad("bad_json", format!("body is not JSON: {e}")))?;
    let name = value
        .get("channel")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("bad_json", "body needs \"channel\" (a string) and \"data\"".to_owned()))?;
    let data = value.get("data").cloned().ok_or_else(|| bad("bad_json", "body needs \"data\"".to_owned()))?;
    let channel = Channel::parse(name).map_err(|e| bad("invalid_channel", e.0))?;
    if channel.is_built_in() {
        return Err(ApiError::Forbidden {
            code: "channel_reserved",
            message: "built-in channels are published by tickwire's feeds only",
        });
    }
    Ok(Checked { channel, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BODY: &[u8] = br#"{"channel":"news","data":{"headline":"hi"}}"#;

    fn req<'a>(auth: Option<&'a str>, ct: Option<&'a str>, body: &'a [u8]) -> PublishRequest<'a> {
        PublishRequest { authorization: auth, content_type: ct, body }
    }

    fn code(r: Result<Checked, ApiError>) -> (u16, &'static str) {
        let e = r.unwrap_err();
        (e.status(), e.code())
    }

    #[test]
    fn accepts_a_good_publish() {
        let t = Token("tok".into());
        let ok = check(req(Some("Bearer tok"), Some("application/json; charset=utf-8"), BODY), Some(&t), 1000).unwrap();
        assert_eq!(ok, Checked { channel: Channel::parse("news").unwrap(), data: json!({"headline": "hi"}) });
    }

    #[test]
    fn refusals_have_their_status_and_code() {
        let t = Token("tok".into());
        let json = Some("application/json");
        assert_eq!(code(check(req(Some("Bearer tok"), json, BODY), None, 1000)), (403, "publish_disabled"));
        assert_eq!(code(check(req(None, json, BODY), Some(&t), 1000)), (401, "unauthorized"));
        assert_eq!(code(check(req(Some("Basic tok"), json, BODY), Some(&t), 1000)), (401, "unauthorized"));
        assert_eq!(code(check(req(Some("Bearer tok2"), json, BODY), Some(&t), 1000)), (403, "forbidden"));
        assert_eq!(code(check(req(Some("Bearer to"), json, BODY), Some(&t), 1000)), (403, "forbidden"));
        assert_eq!(
            code(check(req(Some("Bearer tok"), Some("text/plain"), BODY), Some(&t), 1000)),
            (415, "unsupported_media_type")
        );
        assert_eq!(code(check(req(Some("Bearer tok"), None, BODY), Some(&t), 1000)), (415, "unsupported_media_type"));
        assert_eq!(code(check(req(Some("Bearer tok"), json, BODY), Some(&t), 10)), (413, "payload_too_large"));
        assert_eq!(code(check(req(Some("Bearer tok"), json, b"{"), Some(&t), 1000)), (400, "bad_json"));
        assert_eq!(
            code(check(req(Some("Bearer tok"), json, br#"{"channel":"news"}"#), Some(&t), 1000)),
            (400, "bad_json")
        );
        assert_eq!(
            code(check(req(Some("Bearer tok"), json, br#"{"channel":"A B","data":1}"#), Some(&t), 1000)),
            (400, "invalid_channel")
        );
        assert_eq!(
            code(check(req(Some("Bearer tok"), json, br#"{"channel":"btc","data":1}"#), Some(&t), 1000)),
            (403, "channel_reserved")
        );
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
