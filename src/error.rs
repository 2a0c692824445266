//! The HTTP edge's one error type: every failure a route can hit, mapped to a status code and a
//! JSON body `{"error":{"code","message"}}`. Details go to the log, not to the client.

use crate::settings::SettingError;
use tickwire_hub::auth::access::Denied;
use tickwire_hub::auth::{Capability, TokenError};
use tickwire_hub::wire::protocol::Channel;

#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed (`code` says how: bad_json, invalid_channel).
    BadRequest {
        code: &'static str,
        message: String,
    },
    /// 401: no bearer token.
    Unauthorized,
    /// 401 (`unauthorized`, `token_expired`) or 403 (`forbidden`): a token refused, or one
    /// that does not grant what the request needs. The message names the reason or the
    /// capability, never the token.
    Access {
        status: u16,
        code: &'static str,
        message: String,
    },
    /// 403: wrong token, publishing disabled, a built-in channel, or a refused origin.
    Forbidden {
        code: &'static str,
        message: &'static str,
    },
    NotFound,
    /// 404: a channel that has never been published.
    UnknownChannel(String),
    PayloadTooLarge {
        limit: usize,
    },
    UnsupportedMediaType,
    MethodNotAllowed {
        allow: &'static str,
    },
    /// A plain HTTP request to the WebSocket endpoint.
    UpgradeRequired,
    /// 429: too many connects from this client address (`connect_limit`); try again after
    /// `retry_after_secs` (sent as `Retry-After`).
    RateLimited {
        retry_after_secs: u64,
    },
    Settings(SettingError),
    /// 500: a failure of this Worker's own (encoding an answer, building a response, a request
    /// the hub refused as malformed). The detail is logged, never sent.
    Internal(String),
    /// 503: the hub could not be reached or failed.
    HubUnavailable(String),
    KvUnavailable(String),
}

impl ApiError {
    /// A token refused (401, `unauthorized` or `token_expired`).
    pub fn token(e: &TokenError) -> ApiError {
        ApiError::Access { status: 401, code: e.code().label(), message: format!("token refused: {e}") }
    }

    /// A use of `channel` the request's token (or its lack) does not allow.
    pub fn denied(d: Denied, channel: &Channel, cap: Capability) -> ApiError {
        ApiError::Access { status: d.status(), code: d.code().label(), message: d.message(channel, cap) }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest { .. } => 400,
            ApiError::Unauthorized => 401,
            ApiError::Access { status, .. } => *status,
            ApiError::Forbidden { .. } => 403,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::NotFound | ApiError::UnknownChannel(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::UpgradeRequired => 426,
            ApiError::RateLimited { .. } => 429,
            ApiError::Settings(_) | ApiError::Internal(_) => 500,
            ApiError::HubUnavailable(_) | ApiError::KvUnavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::Forbidden { code, .. } | ApiError::Access { code, .. } => {
                code
            }
            ApiError::Unauthorized => "unauthorized",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::NotFound => "not_found",
            ApiError::UnknownChannel(_) => "unknown_channel",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UpgradeRequired => "upgrade_required",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Settings(_) => "config_invalid",
            ApiError::Internal(_) => "internal",
            ApiError::HubUnavailable(_) => "hub_unavailable",
            ApiError::KvUnavailable(_) => "kv_unavailable",
        }
    }

    /// What the client is told. Settings errors name the var (operators need it, and it holds no
    /// secret); storage and hub failures stay generic because their details can hold internals.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest { message, .. } | ApiError::Access { message, .. } => message.clone(),
            ApiError::Unauthorized => "send Authorization: Bearer <PUBLISH_TOKEN or a token>".to_owned(),
            ApiError::Forbidden { message, .. } => (*message).to_owned(),
            ApiError::PayloadTooLarge { limit } => format!("body larger than {limit} bytes"),
            ApiError::UnsupportedMediaType => "send Content-Type: application/json".to_owned(),
            ApiError::NotFound => "no such route".to_owned(),
            ApiError::UnknownChannel(c) => {
                format!("no channel {c:?}: built-in channels and published app channels exist")
            }
            ApiError::MethodNotAllowed { allow } => format!("method not allowed; use {allow}"),
            ApiError::UpgradeRequired => {
                "this endpoint speaks WebSocket; send an Upgrade: websocket request".to_owned()
            }
            ApiError::RateLimited { retry_after_secs } => {
                format!("too many connects from this address; try again in {retry_after_secs} s")
            }
            ApiError::Settings(e) => e.to_string(),
            ApiError::Internal(_) => "the server failed; this is a bug, and it is logged".to_owned(),
            ApiError::HubUnavailable(_) => "the hub is unreachable; try again shortly".to_owned(),
            ApiError::KvUnavailable(_) => "the value store is unreachable; try again shortly".to_owned(),
        }
    }

    /// The detail for the log line (never sent to clients).
    pub fn detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal(d) | ApiError::HubUnavailable(d) | ApiError::KvUnavailable(d) => Some(d),
            _ => None,
        }
    }

    pub fn body(&self) -> String {
        tickwire_hub::wire::error_body::error_body(self.code(), &self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn bodies_carry_code_and_message() {
        let cases = [
            (ApiError::NotFound, 404, "not_found"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::PayloadTooLarge { limit: 10 }, 413, "payload_too_large"),
            (ApiError::UnsupportedMediaType, 415, "unsupported_media_type"),
            (ApiError::MethodNotAllowed { allow: "GET" }, 405, "method_not_allowed"),
            (ApiError::UpgradeRequired, 426, "upgrade_required"),
            (ApiError::RateLimited { retry_after_secs: 10 }, 429, "rate_limited"),
            (ApiError::HubUnavailable("stub fetch: boom at 10.0.0.1".into()), 503, "hub_unavailable"),
            (ApiError::KvUnavailable("x".into()), 503, "kv_unavailable"),
            (ApiError::Internal("encode: secret at 10.0.0.1".into()), 500, "internal"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status);
            let v: Value = serde_json::from_str(&err.body()).unwrap();
            assert_eq!(v["error"]["code"], code);
            assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(!err.body().contains("10.0.0.1"), "internal detail leaked: {}", err.body());
        }
    }
}
