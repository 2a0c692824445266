//! The cron job: one refresh round per tick. Fetch the upstream, validate, keep the value in KV,
//! and report the result to the hub, which sequences and broadcasts what changed.
//!
//! Nothing here may panic or give up the round: every failure is logged and reported as an
//! outcome, and the last good value stays where it is.

use crate::bindings;
use crate::feeds::coingecko;
use crate::hub_client;
use crate::store::{should_write, KvKey, StoredValue};
use crate::upstream;
use ::durable::clock::{Clock, SystemClock};
use ::durable::internal::{Ingest, Outcome, Publish, Source};
use ::durable::protocol::Channel;
use worker::*;

/// Longest failure detail kept for `/health`; upstream error pages can be large.
const MAX_DETAIL: usize = 200;

pub async fn run(env: &Env) {
    let config = match bindings::config(env) {
        Ok(c) => c,
        Err(e) => {
            console_error!("cron: {e}; skipping this round");
            return;
        }
    };
    let clock = SystemClock;
    let url = format!("{}{}", config.coingecko_base_url, coingecko::simple_price_path());
    let fetched =
        upstream::get_text(&url, config.upstream_timeout_ms).await.and_then(|body| coingecko::parse_btc_tick(&body));
    let at = clock.now_ms();
    let source = Source::CoingeckoPrice;
    let ingest = match fetched
        .and_then(|tick| serde_json::to_value(tick).map_err(|e| crate::feeds::FeedError::Parse(e.to_string())))
    {
        Ok(data) => {
            let value = StoredValue { channel: Channel::btc(), fetched_at: at, data: data.clone() };
            store(env, &value, config.kv_min_write_seconds * 1000).await;
            Ingest {
                source,
                at,
                outcome: Outcome::Ok,
                detail: None,
                publish: vec![Publish { channel: Channel::btc(), ts: at, data }],
            }
        }
        Err(e) => {
            console_error!("cron: {source}: {e}");
            let mut detail = e.to_string();
            if let Some((i, _)) = detail.char_indices().nth(MAX_DETAIL) {
                detail.truncate(i);
            }
            Ingest { source, at, outcome: e.outcome(), detail: Some(detail), publish: vec![] }
        }
    };
    match hub_client::ingest(env, &ingest).await {
        Ok(result) => {
            for (channel, seq) in result.published {
                console_log!("cron: published {channel} seq {seq}");
            }
        }
        Err(e) => console_error!("cron: reporting to the hub failed: {}", e.detail().unwrap_or(e.code())),
    }
}

/// Writes the value to KV when the write policy says so. A KV failure is logged, not fatal:
/// the hub still gets the value, and the next round tries KV again.
async fn store(env: &Env, value: &StoredValue, min_interval_ms: u64) {
    let key = KvKey::Latest(value.channel.clone());
    let previous = match bindings::read(env, &key).await {
        Ok(p) => p,
        Err(e) => {
            console_error!("cron: {}", e.detail().unwrap_or(e.code()));
            None
        }
    };
    if should_write(previous.as_ref(), value, min_interval_ms) {
        if let Err(e) = bindings::write(env, &key, value).await {
            console_error!("cron: {}", e.detail().unwrap_or(e.code()));
        }
    }
}
