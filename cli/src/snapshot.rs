//! What the socket does not carry: when each value was last confirmed by its source, and whether
//! the server calls it stale, read from `/api/snapshot` (a value that holds steady, such as the
//! daily Fear & Greed index, is confirmed without a new update).

use crate::http;
use serde::Deserialize;
use std::collections::BTreeMap;
use tickwire_hub::wire::protocol::Seq;

/// One channel's entry: its value at `seq` was confirmed `age_seconds` ago.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub channel: String,
    pub seq: Seq,
    pub age_seconds: u64,
    pub stale: bool,
}

#[derive(Deserialize)]
struct Snapshot {
    channels: BTreeMap<String, Option<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    seq: Seq,
    age_seconds: u64,
    stale: bool,
}

/// The confirmations in a `/api/snapshot` body (channels without a value are left out).
pub fn parse(body: &str) -> Result<Vec<Confirmation>, String> {
    let s: Snapshot = serde_json::from_str(body).map_err(|e| format!("unexpected snapshot: {e}"))?;
    Ok(s.channels
        .into_iter()
        .filter_map(|(channel, e)| {
            e.map(|e| Confirmation { channel, seq: e.seq, age_seconds: e.age_seconds, stale: e.stale })
        })
        .collect())
}

/// Reads and parses the snapshot with `agent` (blocking).
pub fn fetch(agent: &ureq::Agent, url: &str) -> Result<Vec<Confirmation>, String> {
    let resp = agent.get(url).call().map_err(|e| http::describe(url, &e))?;
    let answer = http::answer(url, resp)?;
    match answer.status {
        200 => parse(&answer.body),
        s => Err(format!("{url} answered {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_values_become_confirmations() {
        let body = r#"{"time":"2026-11-23T00:00:00.000Z","channels":{
            "btc":{"channel":"btc","seq":7,"data":{},"fetched_at":"x","confirmed_at":"y","age_seconds":12,"stale":false,"source":"hub"},
            "indicators":null,
            "sentiment":{"channel":"sentiment","seq":2,"data":{},"fetched_at":"x","confirmed_at":"y","age_seconds":400,"stale":true,"source":"kv"}}}"#;
        assert_eq!(
            parse(body),
            Ok(vec![
                Confirmation { channel: "btc".into(), seq: Seq(7), age_seconds: 12, stale: false },
                Confirmation { channel: "sentiment".into(), seq: Seq(2), age_seconds: 400, stale: true },
            ])
        );
        assert!(parse("<html>").is_err());
        assert!(parse(r#"{"channels":{"btc":{"seq":-1}}}"#).is_err());
    }
}
