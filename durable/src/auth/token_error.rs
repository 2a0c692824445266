//! Why a token was refused: [`TokenError`], with a bounded metric label and the error code a
//! client sees. Its text never holds the token's or a secret's.

use super::claims::ClaimsError;
use super::limits::MAX_TOKEN_BYTES;
use crate::wire::protocol::ErrorCode;
use std::fmt;

/// Why a token was refused. `Display` is a fixed sentence per kind, never the token's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// No usable secret is configured, so no token can verify.
    NotConfigured,
    /// Not a compact JWS: too long, not three parts, bad base64url, or not JSON objects.
    Malformed(Malformed),
    /// A header asking for anything but plain HS256: another (or no) `alg`, or a `crit` extension.
    Algorithm,
    /// The signature matches none of the keys.
    Signature,
    /// `now > exp + LEEWAY_SECONDS`.
    Expired,
    /// `now + LEEWAY_SECONDS < nbf`.
    NotYetValid,
    /// The signed claims are not what a token must carry.
    Claims(ClaimsError),
}

/// Which part of a token's shape was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLong,
    /// Not three parts separated by dots.
    Parts,
    /// A part that is not unpadded base64url (RFC 7515 §2).
    Base64,
    /// A header or payload that is not a JSON object.
    Json,
}

impl TokenError {
    /// A bounded label for metrics (`tickwire_auth_failures_total{reason=..}`).
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::NotConfigured => "not_configured",
            TokenError::Malformed(_) => "malformed",
            TokenError::Algorithm => "algorithm",
            TokenError::Signature => "signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Claims(_) => "claims",
        }
    }

    /// Every [`TokenError::reason`] label, for metrics that list each one.
    pub const REASONS: [&'static str; 7] =
        ["not_configured", "malformed", "algorithm", "signature", "expired", "not_yet_valid", "claims"];

    /// The error code a client sees: `token_expired` for an expired token, else `unauthorized`.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Expired => ErrorCode::TokenExpired,
            _ => ErrorCode::Unauthorized,
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::NotConfigured => f.write_str("tokens are not configured on this server (no TOKEN_SECRET)"),
            TokenError::Malformed(Malformed::TooLong) => {
                write!(f, "malformed token: longer than {MAX_TOKEN_BYTES} bytes")
            }
            TokenError::Malformed(Malformed::Parts) => f.write_str("malformed token: not three dot-separated parts"),
            TokenError::Malformed(Malformed::Base64) => {
                f.write_str("malformed token: a part is not unpadded base64url")
            }
            TokenError::Malformed(Malformed::Json) => {
                f.write_str("malformed token: its header or payload is not a JSON object")
            }
            TokenError::Algorithm => f.write_str("token algorithm refused: only HS256 without \"crit\" is accepted"),
            TokenError::Signature => f.write_str("token signature does not verify"),
            TokenError::Expired => f.write_str("token expired"),
            TokenError::NotYetValid => f.write_str("token not yet valid (nbf)"),
            TokenError::Claims(e) => write!(f, "token claims refused: {e}"),
        }
    }
}

impl std::error::Error for TokenError {}
