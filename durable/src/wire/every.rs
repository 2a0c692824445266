//! Conflated delivery on the wire: the intervals a subscription may ask for (`?every=btc:1000`
//! on connect, `"every_ms"` in a `subscribe` op), and the `skipped` field a conflated `update`
//! or `delta` frame carries (how many of the channel's updates the socket did not get before
//! this one).
//!
//! Intervals come from a small set so that sockets share classes: every socket of one channel
//! at one interval gets the same message at each tick (`core/conflation.rs`).

use crate::wire::protocol::{parse_digits, truncate, ErrorCode, ServerFrame};
use serde::{Deserialize, Serialize};

/// An interval a subscription may ask for: at most one frame of the channel per interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Every {
    Ms250,
    S1,
    S5,
    S30,
}

impl Every {
    pub const ALL: [Every; 4] = [Every::Ms250, Every::S1, Every::S5, Every::S30];

    pub fn ms(self) -> u64 {
        match self {
            Every::Ms250 => 250,
            Every::S1 => 1000,
            Every::S5 => 5000,
            Every::S30 => 30_000,
        }
    }

    pub fn from_ms(ms: u64) -> Option<Every> {
        Every::ALL.into_iter().find(|e| e.ms() == ms)
    }

    /// Its code in a socket's attachment, 1 to 4 (0 stands for "not conflated").
    pub fn code(self) -> u8 {
        match self {
            Every::Ms250 => 1,
            Every::S1 => 2,
            Every::S5 => 3,
            Every::S30 => 4,
        }
    }

    pub fn from_code(c: u8) -> Option<Every> {
        Every::ALL.into_iter().find(|e| e.code() == c)
    }

    /// "250, 1000, 5000 or 30000", for error messages.
    fn choices() -> String {
        let ms: Vec<String> = Every::ALL.iter().map(|e| e.ms().to_string()).collect();
        format!("{} or {}", ms[..ms.len() - 1].join(", "), ms[ms.len() - 1])
    }
}

/// The `error` frame for an interval outside the set (the channel is then delivered
/// unconflated; the subscription itself stands).
pub fn invalid_every(what: &str) -> ServerFrame {
    let msg = format!(
        "every {:?} is not an interval; use one of {} (milliseconds); the channel is delivered unconflated",
        truncate(what, 40),
        Every::choices()
    );
    ServerFrame::error(ErrorCode::InvalidEvery, msg)
}

/// A `subscribe` op's `every_ms`, checked against the set.
pub fn every_of_ms(ms: u64) -> Result<Every, ServerFrame> {
    Every::from_ms(ms).ok_or_else(|| invalid_every(&ms.to_string()))
}

/// Parses the URL form `market:5000,btc:1000` into (channel name, interval) pairs; entries
/// that are not `name:ms` with `ms` in the set get an `error` frame each.
pub fn parse_every_param(param: &str) -> (Vec<(String, Every)>, Vec<ServerFrame>) {
    let mut pairs = Vec::new();
    let mut errors = Vec::new();
    for part in param.split(',').filter(|p| !p.is_empty()) {
        let parsed = part.split_once(':').and_then(|(name, ms)| Some((name, Every::from_ms(parse_digits(ms)?)?)));
        match parsed {
            Some((name, every)) => pairs.push((name.to_owned(), every)),
            None => errors.push(invalid_every(part)),
        }
    }
    (pairs, errors)
}

/// A conflated frame: `frame` (the JSON text of one `update` or `delta` frame, an object) with
/// `"skipped":N` as its last member.
pub fn with_skipped(frame: &str, skipped: u64) -> String {
    let (head, tail) = skipped_parts(frame);
    format!("{head}{skipped}{tail}")
}

/// `frame` split around where the skipped count goes: the hub's JavaScript send loop writes
/// the count itself for sockets whose counts differ (those that joined since a class's tick).
pub fn skipped_parts(frame: &str) -> (String, &'static str) {
    let body = frame.strip_suffix('}').unwrap_or(frame);
    (format!("{body},\"skipped\":"), "}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::protocol::{Channel, Seq, Update};
    use serde_json::{json, Value};

    #[test]
    fn intervals_round_trip_and_others_are_refused() {
        for e in Every::ALL {
            assert_eq!(Every::from_ms(e.ms()), Some(e));
            assert_eq!(Every::from_code(e.code()), Some(e));
        }
        assert_eq!(Every::from_code(0), None);
        for ms in [0, 1, 999, 2000, 60_000] {
            assert!(every_of_ms(ms).is_err(), "{ms}");
        }
        let ServerFrame::Error { code, message, .. } = invalid_every("btc:7") else { panic!() };
        assert_eq!(code, ErrorCode::InvalidEvery);
        assert!(message.contains("250, 1000, 5000 or 30000"), "{message}");
    }

    #[test]
    fn the_url_form_parses_and_names_each_bad_entry() {
        let (pairs, errors) = parse_every_param("market:5000,btc:1000,,x:7,y,z:+250,w:250");
        let names: Vec<(&str, u64)> = pairs.iter().map(|(n, e)| (n.as_str(), e.ms())).collect();
        assert_eq!(names, [("market", 5000), ("btc", 1000), ("w", 250)]);
        assert_eq!(errors.len(), 3, "x:7, y and z:+250");
        assert!(errors.iter().all(|e| e.to_json().contains("invalid_every")));
    }

    #[test]
    fn skipped_is_an_extra_member_of_the_frame() {
        let update = Update { channel: Channel::btc(), seq: Seq(9), ts: 5, stale: false, data: json!({"p": 1}) };
        let frame = ServerFrame::Update(update.clone()).to_json();
        let v: Value = serde_json::from_str(&with_skipped(&frame, 4)).unwrap();
        assert_eq!((v["type"].as_str(), v["seq"].as_u64(), v["skipped"].as_u64()), (Some("update"), Some(9), Some(4)));
        let back: ServerFrame = serde_json::from_value(v).unwrap();
        assert_eq!(back, ServerFrame::Update(update), "clients that do not know the field read the frame as before");
        let (head, tail) = skipped_parts(&frame);
        assert_eq!(format!("{head}0{tail}"), with_skipped(&frame, 0));
    }
}
