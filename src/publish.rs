//! `POST /api/publish`: the Worker's checks of an application's publish request (token, media
//! type, announced size) before anything reaches the hub. Pure, so every refusal is unit-tested.

use crate::error::ApiError;
use crate::settings::Token;
use tickwire_hub::auth::access::{bearer, publisher};
use tickwire_hub::auth::{Keys, TokenError};

/// What the Worker checks of a publish request, all from its headers: the body itself is
/// checked by the hub (`tickwire_hub::core::publish::check_body`), which is the only one to read it.
#[derive(Debug, Clone, Copy)]
pub struct PublishHeaders<'a> {
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub content_length: Option<&'a str>,
}

/// Authorises first (401/403), then the content type (415), then an announced size (413).
/// A publish may present the server's `PUBLISH_TOKEN` or an app's token (checked here; whether
/// it grants `publish` on the channel, which is in the body, the sequencer decides).
pub fn check_headers(
    h: PublishHeaders<'_>,
    token: Option<&Token>,
    keys: &Keys,
    now_s: u64,
    max_bytes: usize,
) -> Result<(), ApiError> {
    authorize_publish(h.authorization, token, keys, now_s)?;
    check_media_type(h.content_type)?;
    if h.content_length.and_then(|l| l.trim().parse::<usize>().ok()).is_some_and(|l| l > max_bytes) {
        return Err(ApiError::PayloadTooLarge { limit: max_bytes });
    }
    Ok(())
}

/// A publish's bearer token: `PUBLISH_TOKEN`, or a valid app token when `TOKEN_SECRET` is set.
/// Checked before the body is read, so an unauthorised client cannot make the Worker buffer
/// anything.
pub fn authorize_publish(
    authorization: Option<&str>,
    token: Option<&Token>,
    keys: &Keys,
    now_s: u64,
) -> Result<(), ApiError> {
    if !keys.configured() {
        return authorize(authorization, token);
    }
    match publisher(authorization, token, keys, now_s) {
        Ok(_) => Ok(()),
        Err(_) if bearer(authorization).is_none() => Err(ApiError::Unauthorized),
        // Not a token at all: a wrong PUBLISH_TOKEN, answered as without token secrets.
        Err(TokenError::Malformed(_)) if token.is_some() => authorize(authorization, token),
        Err(e) => Err(ApiError::token(&e)),
    }
}

/// The bearer token, `PUBLISH_TOKEN` only (channel deletes, and publishes while no token
/// secret is set), compared in constant time.
pub fn authorize(authorization: Option<&str>, token: Option<&Token>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::Forbidden {
            code: "publish_disabled",
            message: "publishing is disabled: set the PUBLISH_TOKEN secret",
        });
    };
    let presented = bearer(authorization).ok_or(ApiError::Unauthorized)?;
    if !token.matches(presented) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(auth: Option<&'a str>, ct: Option<&'a str>, len: Option<&'a str>) -> PublishHeaders<'a> {
        PublishHeaders { authorization: auth, content_type: ct, content_length: len }
    }

    fn code(r: Result<(), ApiError>) -> (u16, &'static str) {
        let e = r.unwrap_err();
        (e.status(), e.code())
    }

    #[test]
    fn accepts_good_headers() {
        let t = Token("tok".into());
        let h = headers(Some("Bearer tok"), Some("application/json; charset=utf-8"), Some("40"));
        assert!(check_headers(h, Some(&t), &Keys::default(), 0, 1000).is_ok());
        assert!(check_headers(
            headers(Some("bearer tok"), Some("application/json"), None),
            Some(&t),
            &Keys::default(),
            0,
            10
        )
        .is_ok());
    }

    #[test]
    fn refusals_have_their_status_and_code_in_order() {
        let t = Token("tok".into());
        let json = Some("application/json");
        let ok = Some("Bearer tok");
        assert_eq!(
            code(check_headers(headers(ok, json, None), None, &Keys::default(), 0, 1000)),
            (403, "publish_disabled")
        );
        assert_eq!(
            code(check_headers(headers(None, json, None), Some(&t), &Keys::default(), 0, 1000)),
            (401, "unauthorized")
        );
        assert_eq!(
            code(check_headers(headers(Some("Basic tok"), json, None), Some(&t), &Keys::default(), 0, 1000)),
            (401, "unauthorized")
        );
        assert_eq!(
            code(check_headers(headers(Some("Bearer tok2"), json, None), Some(&t), &Keys::default(), 0, 1000)),
            (403, "forbidden")
        );
        assert_eq!(
            code(check_headers(headers(Some("Bearer to"), json, None), Some(&t), &Keys::default(), 0, 1000)),
            (403, "forbidden")
        );
        let text = Some("text/plain");
        assert_eq!(
            code(check_headers(headers(ok, text, None), Some(&t), &Keys::default(), 0, 1000)),
            (415, "unsupported_media_type")
        );
        assert_eq!(
            code(check_headers(headers(ok, None, None), Some(&t), &Keys::default(), 0, 1000)),
            (415, "unsupported_media_type")
        );
        assert_eq!(
            code(check_headers(headers(ok, json, Some("11")), Some(&t), &Keys::default(), 0, 10)),
            (413, "payload_too_large")
        );
        // The token comes first: an unauthorised caller learns nothing about size limits.
        assert_eq!(
            code(check_headers(headers(None, text, Some("11")), Some(&t), &Keys::default(), 0, 10)),
            (401, "unauthorized")
        );
    }

    #[test]
    fn with_token_secrets_a_valid_token_may_publish_and_the_sequencer_checks_its_channel() {
        use tickwire_hub::auth::{mint, Caps, Claims, Subject};
        const SECRET: &str = "0123456789abcdef0123456789abcdef";
        let keys = Keys::new(Some(SECRET), None);
        let t = Token("server-token".into());
        let mut claims = Claims::new(Subject::parse("app").unwrap(), 1_000);
        claims.caps = Caps::from_claim(&serde_json::json!({"chat": ["publish"]})).unwrap();
        let jwt = mint(&claims, SECRET);
        let auth =
            |h: &str, now: u64| authorize_publish(Some(h), Some(&t), &keys, now).map_err(|e| (e.status(), e.code()));
        assert_eq!(auth("Bearer server-token", 0), Ok(()));
        assert_eq!(auth(&format!("Bearer {jwt}"), 900), Ok(()));
        assert_eq!(auth(&format!("Bearer {jwt}"), 2_000), Err((401, "token_expired")));
        let foreign = mint(&claims, "another-secret-0123456789abcdef01");
        assert_eq!(auth(&format!("Bearer {foreign}"), 900), Err((401, "unauthorized")));
        // Not a token at all: the wrong-PUBLISH_TOKEN answer it always was.
        assert_eq!(auth("Bearer guess", 900), Err((403, "forbidden")));
        assert_eq!(authorize_publish(None, Some(&t), &keys, 0).map_err(|e| e.code()), Err("unauthorized"));
        // With token secrets and no PUBLISH_TOKEN, tokens still publish.
        assert_eq!(authorize_publish(Some(&format!("Bearer {jwt}")), None, &keys, 900).map_err(|e| e.code()), Ok(()));
    }
}
