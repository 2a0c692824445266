//! Tokens: verifying and minting the HS256 JWTs that open private channels, and matching their
//! capabilities. Plain Rust (no Workers API), used by the Worker, the shards and the CLI.
//!
//! - `jwt` is the compact JWS layer: size, shape, base64url, the header (`alg` must be exactly
//!   `HS256`, no `crit`), and the HMAC-SHA-256 signature compared in constant time;
//! - `claims` checks what the payload says: `sub`, `exp`/`nbf`/`iat` with [`LEEWAY_SECONDS`],
//!   `caps` and `info`;
//! - `caps` is what a token grants: channel names and prefixes to [`Capability`] sets;
//! - `limits` holds the bounds and the leeway, `token_error` the refusals ([`TokenError`]);
//! - `access` decides who may do what with a channel: a token's grant against the channel's
//!   class (`private-` or public), for sockets and HTTP alike.
//!
//! A token is verified once per connect or `auth` op, never per message; what it grants is
//! kept as [`Claims`] (its [`Caps`] serialise compactly for a socket's attachment).
//! Errors never hold the token's or a secret's text.

pub mod access;
mod caps;
mod claims;
mod jwt;
mod limits;
mod token_error;

pub use caps::{Capability, Caps, CapsError};
pub use claims::{Claims, ClaimsError, Subject};
pub use limits::{LEEWAY_SECONDS, MAX_CAPS, MAX_INFO_BYTES, MAX_SUB_BYTES, MAX_TOKEN_BYTES, MIN_SECRET_BYTES};
pub use token_error::{Malformed, TokenError};

use std::fmt;

/// The secrets tokens are verified with: `TOKEN_SECRET` and, while an operator rotates keys,
/// `TOKEN_SECRET_PREVIOUS`. A token signed with either verifies. Its `Debug` never shows them.
// PartialEq compares the secrets as plain bytes: for tests of whole states only, never to
// check a presented secret (`Secret::matches` and the HMAC compare in constant time).
#[derive(Clone, Default, PartialEq)]
pub struct Keys {
    secrets: Vec<Vec<u8>>,
    ignored_short: bool,
}

impl Keys {
    /// The keys from the two secrets as configured. An unset or empty secret counts as none;
    /// one shorter than [`MIN_SECRET_BYTES`] is ignored (and [`Keys::ignored_short`] says so).
    /// The bytes are used as they are (the settings reader, `Vars::text`, has already trimmed
    /// surrounding whitespace, as for every var).
    pub fn new(current: Option<&str>, previous: Option<&str>) -> Keys {
        let mut keys = Keys::default();
        for secret in [current, previous].into_iter().flatten().filter(|s| !s.is_empty()) {
            if secret.len() < MIN_SECRET_BYTES {
                keys.ignored_short = true;
            } else {
                keys.secrets.push(secret.as_bytes().to_vec());
            }
        }
        keys
    }

    /// How many usable secrets there are (2 while a rotation is under way).
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Whether any token can verify (at least one usable secret).
    pub fn configured(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Whether a secret was set but ignored for being shorter than [`MIN_SECRET_BYTES`].
    pub fn ignored_short(&self) -> bool {
        self.ignored_short
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("secrets", &self.secrets.len())
            .field("ignored_short", &self.ignored_short)
            .finish()
    }
}

/// Verifies a compact JWS token and checks its claims at `now_unix_seconds`: the claims, or why
/// the token is refused. Refusals, in order: [`TokenError::NotConfigured`], then the token's
/// shape ([`TokenError::Malformed`]), its header ([`TokenError::Algorithm`]), its signature,
/// its payload (malformed or [`TokenError::Claims`]), then its time window.
pub fn verify(token: &str, keys: &Keys, now_unix_seconds: u64) -> Result<Claims, TokenError> {
    if !keys.configured() {
        return Err(TokenError::NotConfigured);
    }
    let payload = jwt::verified_payload(token, keys.secrets.iter().map(Vec::as_slice))?;
    let claims = Claims::from_payload(&payload).map_err(TokenError::Claims)?;
    if claims.expired(now_unix_seconds) {
        return Err(TokenError::Expired);
    }
    if claims.not_yet_valid(now_unix_seconds) {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

/// A token carrying `claims`, signed with `secret` (HS256, header `{"alg":"HS256","typ":"JWT"}`),
/// for the CLI and tests; apps mint theirs with any JWT library. Callers check the secret's
/// length against [`MIN_SECRET_BYTES`] themselves: a token signed with a shorter one never verifies.
pub fn mint(claims: &Claims, secret: &str) -> String {
    jwt::sign(&claims.to_payload(), secret.as_bytes())
}

#[cfg(test)]
mod tests;
