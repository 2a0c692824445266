//! Host tests of the hub state machine, and the helpers they share: `channels.rs` (sequencing,
//! replicas, resume, app channels, counters, storage) and `feeds.rs` (feed rounds, staleness,
//! the fast poll and its watchers).

mod catchup;
mod channels;
mod feeds;
mod grant;
mod presence;

use super::*;
use crate::core::close::CloseReason;
use crate::feeds::round::{Fetched, RoundKind};
use crate::feeds::status::Outcome;
use crate::feeds::FeedError;
use crate::wire::bodies::Apply;
use crate::wire::protocol::ErrorCode;
use serde_json::json;

fn epochs() -> impl FnMut() -> Epoch {
    let mut n = 0;
    move || {
        n += 1;
        Epoch(format!("e{n}"))
    }
}

fn core() -> HubCore {
    let feeds = FeedSettings { coins: vec!["bitcoin".into()], kv_min_write_seconds: 300, ..FeedSettings::default() };
    HubCore::new(HubLimits { history_len: 5, ..HubLimits::default() }, feeds)
}

fn price_body(price: f64) -> String {
    json!({"bitcoin": {"usd": price, "usd_24h_change": 1.0, "usd_market_cap": 1e12, "usd_24h_vol": 1e10}}).to_string()
}

/// One fast round at `at` whose price request answered `body`.
fn round(c: &mut HubCore, at: u64, body: Result<String, FeedError>) -> Effects {
    round_of(c, RoundKind::Fast, at, body)
}

/// One round of `kind` at `at` whose price request answered `body` (no other source answers).
fn round_of(c: &mut HubCore, kind: RoundKind, at: u64, body: Result<String, FeedError>) -> Effects {
    let planned = c.plan_round(kind, at);
    let fetched = planned
        .fetch
        .iter()
        .filter(|s| **s == Source::CoingeckoPrice)
        .map(|s| Fetched { source: *s, result: body.clone(), duration_ms: 80, at })
        .collect();
    c.finish_round(kind, at, fetched, epochs())
}

fn round_btc(c: &mut HubCore, at: u64, price: f64) -> Effects {
    round(c, at, Ok(price_body(price)))
}

fn news() -> Channel {
    Channel::parse("news").unwrap()
}

fn app(core: &mut HubCore, n: u64) -> (Published, Effects) {
    core.publish(AppPublish { channel: news(), ts: n, data: json!({ "n": n }) }, epochs()).unwrap()
}

fn frame(json: &str) -> Value {
    serde_json::from_str(json).unwrap()
}

fn sent(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(f) => Some(frame(&f.to_json())),
            _ => None,
        })
        .collect()
}
