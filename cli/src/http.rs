//! The HTTP side of the client (publish, snapshot reads): one agent configuration, answers read
//! whole, and a failure to reach the server said in one line.

use crate::errors::io_reason;
use std::time::Duration;

/// An HTTP answer, as far as the client needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

/// How long one exchange (connect, request, whole answer) may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// HTTPS through rustls (ring); every status is an answer, not an error; [`TIMEOUT`] for the
/// whole exchange.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(TIMEOUT)).build().into()
}

/// A response read whole; a body past 1 MiB is an error (the API's answers are small).
pub fn answer(url: &str, mut resp: ureq::http::Response<ureq::Body>) -> Result<Answer, String> {
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(1 << 20).read_to_string().map_err(|e| describe(url, &e))?;
    Ok(Answer { status, retry_after, body })
}

/// Why `url` could not be reached, in one line.
pub fn describe(url: &str, e: &ureq::Error) -> String {
    let why = match e {
        ureq::Error::Io(io) => io_reason(io),
        ureq::Error::Timeout(_) => format!("no answer within {} s", TIMEOUT.as_secs()),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        other => other.to_string(),
    };
    format!("cannot reach {url}: {why}")
}
