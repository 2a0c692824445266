//! `GET /api/history`: the query's checks. The page itself comes from the hub's history.

use crate::error::ApiError;
use tickwire_hub::auth::access::{bearer, check, grant_of};
use tickwire_hub::auth::{Capability, Keys};
use tickwire_hub::wire::protocol::Channel;

/// Updates returned when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub channel: Channel,
    /// Updates with a seq above this are returned.
    pub since: u64,
    pub limit: u64,
}

/// A private channel's history needs a token granting `history` on it (`Authorization:
/// Bearer`); other channels' history is public. Anonymous: 401; a refused token: 401; a
/// token without the capability: 403.
pub fn authorize(channel: &Channel, authorization: Option<&str>, keys: &Keys, now_s: u64) -> Result<(), ApiError> {
    if !channel.is_private() {
        return Ok(());
    }
    let grant = match bearer(authorization) {
        None => None,
        Some(token) => Some(grant_of(token, keys, now_s).map_err(|e| ApiError::token(&e))?),
    };
    check(grant.as_ref(), channel, Capability::History, now_s)
        .map_err(|d| ApiError::denied(d, channel, Capability::History))
}

impl HistoryQuery {
    /// Parses `channel` (required), `since` (default 0) and `limit` (1..=`max_limit`, default
    /// 100 or `max_limit` if smaller).
    pub fn parse<'a>(
        pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
        max_limit: u64,
    ) -> Result<HistoryQuery, ApiError> {
        let bad = |code: &'static str, message: String| ApiError::BadRequest { code, message };
        let (mut channel, mut since, mut limit) = (None, 0, DEFAULT_LIMIT.min(max_limit));
        for (k, v) in pairs {
            match k.as_ref() {
                "channel" => channel = Some(Channel::parse(&v).map_err(|e| bad("invalid_channel", e.0))?),
                "since" => {
                    since =
                        v.parse().map_err(|_| bad("bad_request", format!("since must be a whole number, got {v:?}")))?
                }
                "limit" => {
                    limit = v
                        .parse()
                        .ok()
                        .filter(|l| (1..=max_limit).contains(l))
                        .ok_or_else(|| bad("bad_request", format!("limit must be 1..={max_limit}, got {v:?}")))?
                }
                _ => {}
            }
        }
        let channel = channel.ok_or_else(|| bad("bad_request", "channel is required".to_owned()))?;
        Ok(HistoryQuery { channel, since, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn parse(q: &[(&str, &str)]) -> Result<HistoryQuery, ApiError> {
        HistoryQuery::parse(q.iter().map(|(k, v)| (Cow::from(*k), Cow::from(*v))), 300)
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(
            parse(&[("channel", "btc")]).unwrap(),
            HistoryQuery { channel: Channel::btc(), since: 0, limit: 100 }
        );
        let q = parse(&[("channel", "news"), ("since", "41"), ("limit", "300")]).unwrap();
        assert_eq!((q.since, q.limit), (41, 300));
        let q = HistoryQuery::parse([(Cow::from("channel"), Cow::from("btc"))].into_iter(), 5).unwrap();
        assert_eq!(q.limit, 5, "never more than the history holds");
    }

    #[test]
    fn bad_queries() {
        let code = |q: &[(&str, &str)]| parse(q).map(|_| ()).unwrap_err().code();
        assert_eq!(code(&[]), "bad_request");
        assert_eq!(code(&[("channel", "B T C")]), "invalid_channel");
        assert_eq!(code(&[("channel", "btc"), ("since", "-1")]), "bad_request");
        assert_eq!(code(&[("channel", "btc"), ("limit", "0")]), "bad_request");
        assert_eq!(code(&[("channel", "btc"), ("limit", "301")]), "bad_request");
    }

    #[test]
    fn private_history_needs_a_token_granting_history() {
        use tickwire_hub::auth::{mint, Caps, Claims, Subject};
        const SECRET: &str = "0123456789abcdef0123456789abcdef";
        let keys = Keys::new(Some(SECRET), None);
        let jwt = |caps: serde_json::Value, exp: u64| {
            let mut claims = Claims::new(Subject::parse("u").unwrap(), exp);
            claims.caps = Caps::from_claim(&caps).unwrap();
            format!("Bearer {}", mint(&claims, SECRET))
        };
        let private = Channel::parse("private-a").unwrap();
        let check = |c: &Channel, h: Option<&str>| authorize(c, h, &keys, 100).map_err(|e| (e.status(), e.code()));
        assert_eq!(check(&Channel::parse("news").unwrap(), None), Ok(()));
        assert_eq!(check(&private, None), Err((401, "unauthorized")));
        assert_eq!(check(&private, Some("Bearer nonsense")), Err((401, "unauthorized")));
        assert_eq!(
            check(&private, Some(&jwt(serde_json::json!({"private-a": ["subscribe"]}), 200))),
            Err((403, "forbidden"))
        );
        assert_eq!(check(&private, Some(&jwt(serde_json::json!({"private-*": ["history"]}), 200))), Ok(()));
        assert_eq!(
            check(&private, Some(&jwt(serde_json::json!({"private-*": ["history"]}), 10))),
            Err((401, "token_expired"))
        );
    }
}
