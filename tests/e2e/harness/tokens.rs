//! Tokens for the tests: minted by tickwire's own `auth::mint`, or by a third-party JWT library
//! (`jose`, run under Node) so that interoperability is shown, not assumed. Also tokens no
//! honest backend mints (`alg: none`, HS384) for the refusal tests.

use super::{node_path, root};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};
use tickwire_hub::auth::{mint, Caps, Claims, Subject};

/// The `TOKEN_SECRET` the token tests set (at least 32 bytes, as tickwire requires).
pub const TOKEN_SECRET: &str = "e2e-token-secret-0123456789abcdef";

pub fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A token for `sub` with `caps` (the claim's JSON form), expiring `exp_in` seconds from now
/// (negative: in the past), signed with `secret` by tickwire's own code.
pub fn token_with(secret: &str, sub: &str, caps: Value, exp_in: i64) -> String {
    let mut claims = Claims::new(Subject::parse(sub).expect("a valid sub"), now_s().saturating_add_signed(exp_in));
    claims.caps = Caps::from_claim(&caps).expect("valid caps");
    mint(&claims, secret)
}

/// [`token_with`] and [`TOKEN_SECRET`].
pub fn token(sub: &str, caps: Value, exp_in: i64) -> String {
    token_with(TOKEN_SECRET, sub, caps, exp_in)
}

/// A token signed by `jose` (npm), a standard JWT library tickwire does not ship: `alg` is
/// "HS256", "HS384" or "none" (an unsecured JWT), the payload is `claims` as given.
pub fn jose(alg: &str, claims: &Value, secret: &str) -> String {
    const SCRIPT: &str = r#"
const jose = await import("jose");
const [alg, claims, secret] = [process.argv[1], JSON.parse(process.argv[2]), process.argv[3]];
const token = alg === "none"
  ? new jose.UnsecuredJWT(claims).encode()
  : await new jose.SignJWT(claims).setProtectedHeader({ alg, typ: "JWT" }).sign(new TextEncoder().encode(secret));
process.stdout.write(token);
"#;
    let out = Command::new("node")
        .args(["--input-type=module", "-e", SCRIPT, alg, &claims.to_string(), secret])
        .current_dir(root())
        .env("PATH", node_path())
        .output()
        .expect("run node");
    assert!(out.status.success(), "jose failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("a token is ASCII")
}

/// Standard claims for [`jose`]: `sub`, `exp` from now, `caps`.
pub fn claims(sub: &str, caps: Value, exp_in: i64) -> Value {
    json!({ "sub": sub, "exp": now_s().saturating_add_signed(exp_in), "caps": caps })
}
