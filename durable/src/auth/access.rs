//! Who may do what with a channel: a token's grant against the channel's class, decided once
//! per subscribe, `auth`, publish or history read, never per message.
//!
//! `private-` channels need a capability for every use; other app channels are public to read
//! and need `publish` (or the server's `PUBLISH_TOKEN`) to publish; built-in channels are
//! public and never published by a client (the publish path refuses them as reserved).

use crate::auth::{verify, Capability, Caps, Claims, Keys, Malformed, TokenError, LEEWAY_SECONDS};
use crate::settings::Secret;
use crate::wire::error_body::error_body;
use crate::wire::protocol::{Channel, ErrorCode, ServerFrame};
use serde::{Deserialize, Serialize};

/// What a socket keeps of its token (in its attachment, so it survives hibernation): whose it
/// is, until when, and what it grants. Never the token itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub sub: String,
    /// The token's `exp` (Unix seconds); it is honoured until `exp + LEEWAY_SECONDS`.
    pub exp: u64,
    pub caps: Caps,
    /// The token's `info` (at most `MAX_INFO_BYTES`), shown beside `sub` in presence lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Why a use of a channel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token, where one is needed.
    Unauthorized,
    /// A token, but past its `exp` (and the leeway).
    TokenExpired,
    /// A valid token without the capability.
    Forbidden,
}

impl Denied {
    pub fn code(self) -> ErrorCode {
        match self {
            Denied::Unauthorized => ErrorCode::Unauthorized,
            Denied::TokenExpired => ErrorCode::TokenExpired,
            Denied::Forbidden => ErrorCode::Forbidden,
        }
    }

    /// The HTTP status of the same refusal.
    pub fn status(self) -> u16 {
        match self {
            Denied::Unauthorized | Denied::TokenExpired => 401,
            Denied::Forbidden => 403,
        }
    }

    /// What the client is told: the capability and channel, never anything of the token.
    pub fn message(self, channel: &Channel, cap: Capability) -> String {
        match self {
            Denied::Unauthorized => format!("{} on {channel} needs a token (auth)", cap.label()),
            Denied::TokenExpired => format!("the token expired; auth with a fresh one to {} {channel}", cap.label()),
            Denied::Forbidden => format!("the token does not grant {} on {channel}", cap.label()),
        }
    }
}

impl Grant {
    pub fn from_claims(claims: &Claims) -> Grant {
        Grant {
            sub: claims.sub.as_str().to_owned(),
            exp: claims.exp,
            caps: claims.caps.clone(),
            info: claims.info.clone(),
        }
    }

    /// The last second the grant is honoured in.
    pub fn valid_until(&self) -> u64 {
        self.exp.saturating_add(LEEWAY_SECONDS)
    }

    pub fn expired(&self, now_s: u64) -> bool {
        now_s > self.valid_until()
    }
}

/// Whether `cap` on `channel` needs a token at all: every use of a private channel, and a
/// publish to any channel (a socket has no `PUBLISH_TOKEN`).
pub fn needs_token(channel: &Channel, cap: Capability) -> bool {
    channel.is_private() || cap == Capability::Publish
}

/// May the holder of `grant` (if any) use `channel` for `cap` at `now_s`?
pub fn check(grant: Option<&Grant>, channel: &Channel, cap: Capability, now_s: u64) -> Result<(), Denied> {
    if !needs_token(channel, cap) {
        return Ok(());
    }
    let grant = grant.ok_or(Denied::Unauthorized)?;
    if grant.expired(now_s) {
        return Err(Denied::TokenExpired);
    }
    if grant.caps.allows(channel.as_str(), cap) {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

/// Checks a presented token (connect `?token=`, the `auth` op, `Authorization: Bearer`): its
/// grant, or the refusal as an `error` frame. The message names the reason only, never the
/// token.
pub fn grant_of(token: &str, keys: &Keys, now_s: u64) -> Result<Grant, TokenError> {
    verify(token, keys, now_s).map(|claims| Grant::from_claims(&claims))
}

/// Who publishes over HTTP (`POST /api/publish`): the server with `PUBLISH_TOKEN`, which may
/// publish to any app channel, or a token's holder, who may publish where it grants `publish`.
#[derive(Debug, Clone, PartialEq)]
pub enum Publisher {
    Server,
    Holder(Grant),
}

/// The `Authorization` header of a publish read as a [`Publisher`]: `PUBLISH_TOKEN` (compared in
/// constant time) first, then a token. The Worker refuses most bad headers before they get here;
/// the sequencer decides again, from the header alone, so no claim travels in a header a client
/// could forge.
pub fn publisher(
    authorization: Option<&str>,
    publish_token: Option<&Secret>,
    keys: &Keys,
    now_s: u64,
) -> Result<Publisher, TokenError> {
    let presented = bearer(authorization).ok_or(TokenError::Malformed(Malformed::Parts))?;
    if publish_token.is_some_and(|t| t.matches(presented)) {
        return Ok(Publisher::Server);
    }
    grant_of(presented, keys, now_s).map(Publisher::Holder)
}

/// The credentials of an `Authorization: Bearer ...` header.
/// The scheme is case-insensitive (RFC 7235).
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let h = authorization?.trim_start();
    let (scheme, rest) = h.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case("bearer ").then(|| rest.trim()).filter(|t| !t.is_empty())
}

/// The `error` frame of a refused token.
pub fn token_refusal(e: &TokenError) -> ServerFrame {
    ServerFrame::error(e.code(), format!("token refused: {e}"))
}

/// The JSON error body of a refused token (HTTP, status 401).
pub fn token_refusal_body(e: &TokenError) -> String {
    error_body(e.code().label(), &format!("token refused: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(caps: serde_json::Value, exp: u64) -> Grant {
        Grant { sub: "u42".into(), exp, caps: Caps::from_claim(&caps).unwrap(), info: None }
    }

    fn ch(name: &str) -> Channel {
        Channel::parse(name).unwrap()
    }

    #[test]
    fn public_channels_are_read_without_a_token_and_private_ones_never() {
        for cap in [Capability::Subscribe, Capability::History] {
            assert_eq!(check(None, &ch("news"), cap, 0), Ok(()));
            assert_eq!(check(None, &ch("btc"), cap, 0), Ok(()));
            assert_eq!(check(None, &ch("private-a"), cap, 0), Err(Denied::Unauthorized));
        }
        assert_eq!(check(None, &ch("news"), Capability::Publish, 0), Err(Denied::Unauthorized));
    }

    #[test]
    fn a_grant_opens_what_it_names_until_it_expires() {
        let g = grant(json!({"private-a": ["subscribe"], "private-room-*": ["subscribe", "history", "publish"]}), 100);
        assert_eq!(check(Some(&g), &ch("private-a"), Capability::Subscribe, 50), Ok(()));
        assert_eq!(check(Some(&g), &ch("private-a"), Capability::History, 50), Err(Denied::Forbidden));
        assert_eq!(check(Some(&g), &ch("private-b"), Capability::Subscribe, 50), Err(Denied::Forbidden));
        assert_eq!(check(Some(&g), &ch("private-room-7"), Capability::Publish, 50), Ok(()));
        assert_eq!(check(Some(&g), &ch("private-roomx"), Capability::Subscribe, 50), Err(Denied::Forbidden));
        assert_eq!(check(Some(&g), &ch("news"), Capability::Publish, 50), Err(Denied::Forbidden));
        // The leeway: honoured through exp + LEEWAY_SECONDS, not a second more.
        assert_eq!(check(Some(&g), &ch("private-a"), Capability::Subscribe, 100 + LEEWAY_SECONDS), Ok(()));
        let late = 101 + LEEWAY_SECONDS;
        assert_eq!(check(Some(&g), &ch("private-a"), Capability::Subscribe, late), Err(Denied::TokenExpired));
        // Public reads need nothing, expired or not.
        assert_eq!(check(Some(&g), &ch("news"), Capability::Subscribe, late), Ok(()));
    }

    #[test]
    fn refusals_map_to_codes_and_statuses_and_quote_no_token() {
        assert_eq!((Denied::Unauthorized.code(), Denied::Unauthorized.status()), (ErrorCode::Unauthorized, 401));
        assert_eq!((Denied::TokenExpired.code(), Denied::TokenExpired.status()), (ErrorCode::TokenExpired, 401));
        assert_eq!((Denied::Forbidden.code(), Denied::Forbidden.status()), (ErrorCode::Forbidden, 403));
        let m = Denied::Forbidden.message(&ch("private-b"), Capability::History);
        assert_eq!(m, "the token does not grant history on private-b");
    }

    #[test]
    fn a_grant_survives_the_attachment_round_trip() {
        let g = grant(json!({"*": ["subscribe"], "private-x": ["publish", "history"]}), 7);
        let text = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<Grant>(&text).unwrap(), g);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_needs_credentials() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bEaReR  abc ")), Some("abc"));
        for none in [None, Some("Basic abc"), Some("Bearer "), Some("Bearer"), Some("Bearerabc"), Some("")] {
            assert_eq!(bearer(none), None, "{none:?}");
        }
    }

    #[test]
    fn presence_channels_follow_the_private_rules() {
        assert_eq!(check(None, &ch("presence-room"), Capability::Subscribe, 0), Err(Denied::Unauthorized));
        let g = grant(json!({"presence-*": ["subscribe"]}), 100);
        assert_eq!(check(Some(&g), &ch("presence-room"), Capability::Subscribe, 50), Ok(()));
        assert_eq!(check(Some(&g), &ch("presence-room"), Capability::History, 50), Err(Denied::Forbidden));
    }
}
