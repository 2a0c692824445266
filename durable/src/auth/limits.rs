//! The bounds of a token and the clock-skew leeway, in one place (README's limits section lists them).

/// Clock skew tolerated between the app's backend and the hub, both ways (seconds): a token is
/// expired once `now > exp + LEEWAY_SECONDS`, and not yet valid while `now + LEEWAY_SECONDS < nbf`.
pub const LEEWAY_SECONDS: u64 = 30;
/// Longest token accepted (bytes); a longer one is refused as malformed before any decoding.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Most entries in a token's `caps` object.
pub const MAX_CAPS: usize = 16;
/// Largest `info` object, measured as compact JSON (bytes).
pub const MAX_INFO_BYTES: usize = 512;
/// Longest `sub` (bytes).
pub const MAX_SUB_BYTES: usize = 64;
/// Shortest secret used (bytes). RFC 7518 §3.2 requires an HS256 key of at least the hash's
/// size, 256 bits; a shorter `TOKEN_SECRET` or `TOKEN_SECRET_PREVIOUS` is ignored as if unset
/// (`Keys::ignored_short` says so), so a guessable secret never opens private channels.
pub const MIN_SECRET_BYTES: usize = 32;
