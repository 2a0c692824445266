//! The one place tickwire talks HTTP to upstream APIs: a GET with a timeout whose failures
//! become [`FeedError`]s. Feeds parse what it returns.

use crate::feeds::FeedError;
use futures::future::{select, Either};
use std::time::Duration;
use worker::*;

/// GETs `url` and returns the body of a 2xx answer. The whole exchange (headers and body) must
/// finish within `timeout_ms`; on timeout the request is aborted, not left running. `extra`
/// headers (an API key) are sent as given and never logged.
pub async fn get_text(url: &str, timeout_ms: u64, extra: &[(&str, &str)]) -> std::result::Result<String, FeedError> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let headers = Headers::new();
    headers.set("accept", "application/json").map_err(network)?;
    headers.set("user-agent", concat!("tickwire/", env!("CARGO_PKG_VERSION"))).map_err(network)?;
    for (name, value) in extra {
        headers.set(name, value).map_err(network)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let request = Request::new_with_init(url, &init).map_err(network)?;

    let exchange = Box::pin(async move {
        let mut resp = Fetch::Request(request).send_with_signal(&signal).await.map_err(network)?;
        let status = resp.status_code();
        if status == 429 {
            let after = resp.headers().get("retry-after").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
            return Err(FeedError::TooManyRequests(after));
        }
        if !(200..300).contains(&status) {
            return Err(FeedError::Http(status));
        }
        resp.text().await.map_err(network)
    });
    let timer = Box::pin(Delay::from(Duration::from_millis(timeout_ms)));
    match select(exchange, timer).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(FeedError::Timeout)
        }
    }
}

fn network(e: Error) -> FeedError {
    FeedError::Network(e.to_string())
}
