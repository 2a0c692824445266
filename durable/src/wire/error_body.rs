//! The API's JSON error body, `{"error":{"code","message"}}`, as every HTTP answer that refuses
//! something carries it: the Worker's errors, the hub's publish refusals and internal refusals.

/// The API's error body: written here once for the Worker's
/// errors and the hub's publish refusals alike.
pub fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({"error": {"code": code, "message": message}}).to_string()
}
