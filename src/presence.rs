//! `GET /api/presence`: the query's checks. The list itself comes from shard 0's table.

use crate::error::ApiError;
use tickwire_hub::auth::access::{bearer, check, grant_of};
use tickwire_hub::auth::{Capability, Keys};
use tickwire_hub::settings::Secret;
use tickwire_hub::wire::presence::is_presence;
use tickwire_hub::wire::protocol::Channel;

/// The `channel` of the query: required, and a `presence-` channel.
pub fn channel<'a>(
    mut pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<Channel, ApiError> {
    let bad = |code: &'static str, message: String| ApiError::BadRequest { code, message };
    let (_, name) =
        pairs.find(|(k, _)| k == "channel").ok_or_else(|| bad("bad_request", "channel is required".into()))?;
    let channel = Channel::parse(&name).map_err(|e| bad("invalid_channel", e.0))?;
    if !is_presence(channel.as_str()) {
        return Err(bad("bad_request", format!("{channel} is not a presence channel (presence-...)")));
    }
    Ok(channel)
}

/// The server's `PUBLISH_TOKEN`, or a token granting `presence` on the channel (`Authorization:
/// Bearer`). Anonymous: 401; a refused token: 401; a token without the capability: 403.
pub fn authorize(
    channel: &Channel,
    authorization: Option<&str>,
    publish_token: Option<&Secret>,
    keys: &Keys,
    now_s: u64,
) -> Result<(), ApiError> {
    let presented = bearer(authorization);
    if presented.is_some_and(|t| publish_token.is_some_and(|p| p.matches(t))) {
        return Ok(());
    }
    let grant = match presented {
        None => None,
        Some(token) => Some(grant_of(token, keys, now_s).map_err(|e| ApiError::token(&e))?),
    };
    check(grant.as_ref(), channel, Capability::Presence, now_s)
        .map_err(|d| ApiError::denied(d, channel, Capability::Presence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use tickwire_hub::auth::{mint, Caps, Claims, Subject};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_channel_must_be_a_presence_channel() {
        let parse = |q: &[(&str, &str)]| channel(q.iter().map(|(k, v)| (Cow::from(*k), Cow::from(*v))));
        assert_eq!(parse(&[("channel", "presence-room")]).unwrap().as_str(), "presence-room");
        assert_eq!(parse(&[]).unwrap_err().code(), "bad_request");
        assert_eq!(parse(&[("channel", "private-room")]).unwrap_err().code(), "bad_request");
        assert_eq!(parse(&[("channel", "B A D")]).unwrap_err().code(), "invalid_channel");
    }

    #[test]
    fn presence_reads_need_the_server_token_or_the_presence_capability() {
        let keys = Keys::new(Some(SECRET), None);
        let server = Secret("server-token".into());
        let jwt = |caps: serde_json::Value, exp: u64| {
            let mut claims = Claims::new(Subject::parse("u").unwrap(), exp);
            claims.caps = Caps::from_claim(&caps).unwrap();
            format!("Bearer {}", mint(&claims, SECRET))
        };
        let room = Channel::parse("presence-room").unwrap();
        let check =
            |h: Option<&str>| authorize(&room, h, Some(&server), &keys, 100).map_err(|e| (e.status(), e.code()));
        assert_eq!(check(Some("Bearer server-token")), Ok(()));
        assert_eq!(check(None), Err((401, "unauthorized")));
        assert_eq!(check(Some("Bearer wrong")), Err((401, "unauthorized")));
        let subscribe_only = jwt(serde_json::json!({"presence-room": ["subscribe"]}), 200);
        assert_eq!(check(Some(&subscribe_only)), Err((403, "forbidden")));
        assert_eq!(check(Some(&jwt(serde_json::json!({"presence-*": ["presence"]}), 200))), Ok(()));
        assert_eq!(check(Some(&jwt(serde_json::json!({"presence-*": ["presence"]}), 10))), Err((401, "token_expired")));
    }
}
