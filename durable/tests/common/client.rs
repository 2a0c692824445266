//! What a client sends (channel names, text frames, `?since=` entries) and the checks on the
//! error frames it gets back; used by props_protocol and props_hub, partly by props_edges.

// props_upstream uses none of this module and props_edges only `channel_name` and `seq_text`.
#![allow(dead_code)]

use super::{array, mutated, number_lit, obj, quoted, readable, value_lit};
use proptest::collection::vec;
use proptest::option::weighted;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use tickwire_hub::wire::protocol::{Channel, ErrorCode, ServerFrame};

/// App channels the hub in the socket tests has published to (seq 1..=3, epoch `e1`).
pub const APP: [&str; 2] = ["news", "eth-usd"];
pub const APP_EPOCH: &str = "e1";

/// A channel name as a client might write it: built-in, published, valid, almost valid, or anything.
pub fn channel_name() -> BoxedStrategy<String> {
    prop_oneof![
        5 => select(Channel::BUILT_IN.iter().chain(APP.iter()).copied().collect::<Vec<_>>()).prop_map(str::to_owned),
        2 => "[a-z0-9][a-z0-9_-]{0,31}",
        1 => "[a-z0-9_-]{0,40}",
        1 => mutated("[a-z0-9][a-z0-9_-]{0,31}"),
        1 => ".{0,50}",
    ]
    .boxed()
}

/// Client-facing error frames quote at most a few dozen characters of the input.
pub const MAX_CLIENT_MESSAGE: usize = 1024;

/// A frame survives its own wire format.
pub fn round_trips(frame: &ServerFrame) -> Result<(), TestCaseError> {
    let back: ServerFrame = serde_json::from_str(&frame.to_json()).expect("a server frame is valid JSON of its type");
    prop_assert_eq!(&back, frame);
    Ok(())
}

pub fn error_frame(frame: &ServerFrame, inputs: &[&str]) -> Result<ErrorCode, TestCaseError> {
    let ServerFrame::Error { code, message, .. } = frame else {
        return Err(TestCaseError::fail(format!("expected an error frame, got {frame:?}")));
    };
    readable(message, inputs)?;
    prop_assert!(message.len() <= MAX_CLIENT_MESSAGE, "message of {} bytes", message.len());
    round_trips(frame)?;
    Ok(*code)
}

/// A `since` entry's value: a seq, `{"seq":N,"epoch":"..."}`, or something else.
fn since_value_lit() -> BoxedStrategy<String> {
    let epoch = prop_oneof![
        6 => select(vec![APP_EPOCH, "", "other"]).prop_map(quoted),
        1 => ".{0,10}".prop_map(|s| quoted(&s)),
        1 => value_lit(),
    ];
    let seq = prop_oneof![
        6 => (0u64..6).prop_map(|n| n.to_string()),
        3 => any::<u64>().prop_map(|n| n.to_string()),
        1 => number_lit(),
        1 => value_lit(),
    ];
    prop_oneof![
        6 => (0u64..6).prop_map(|n| n.to_string()),
        2 => any::<u64>().prop_map(|n| n.to_string()),
        5 => (weighted(0.95, seq), weighted(0.7, epoch), weighted(0.05, value_lit()))
            .prop_map(|(seq, epoch, extra)| obj([("seq", seq), ("epoch", epoch), ("x", extra)])),
        1 => number_lit(),
        1 => value_lit(),
    ]
    .boxed()
}

/// `channels` as an array of names (now and then not a string, or not an array), and `since`
/// as an object whose keys are mostly names from that list.
fn channels_and_since() -> impl Strategy<Value = (String, String)> {
    let item = prop_oneof![
        12 => channel_name().prop_map(|n| (n.clone(), quoted(&n))),
        1 => value_lit().prop_map(|v| (String::new(), v)),
    ];
    let since_key = prop_oneof![4 => any::<Index>().prop_map(Ok), 1 => channel_name().prop_map(Err)];
    (vec(item, 0..8), vec((since_key, since_value_lit()), 0..4), 0u8..12, value_lit(), value_lit()).prop_map(
        |(items, since, odd, other_channels, other_since)| {
            let names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
            let channels = if odd == 0 { other_channels } else { array(items.into_iter().map(|(_, t)| t).collect()) };
            let since = if odd == 1 {
                other_since
            } else {
                obj(since.into_iter().map(|(key, v)| {
                    let key = match key {
                        Ok(i) if !names.is_empty() => names[i.index(names.len())].clone(),
                        Ok(_) => "btc".to_owned(),
                        Err(name) => name,
                    };
                    (key, Some(v))
                }))
            };
            (channels, since)
        },
    )
}

fn op_or_junk() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        12 => select(vec!["subscribe", "unsubscribe"]).prop_map(|o| Some(quoted(o))),
        1 => Just(None),
        1 => select(vec!["", "Subscribe", "subscribe ", "sub", "Channel(btc)"]).prop_map(|o| Some(quoted(o))),
        1 => ".{0,60}".prop_map(|s| Some(quoted(&s))),
        1 => value_lit().prop_map(Some),
    ]
}

/// `{"op":..,"channels":[..],"since":{..}}` with random values and types, maybe mutated.
pub fn client_frame() -> impl Strategy<Value = String> {
    mutated(
        (op_or_junk(), weighted(0.95, channels_and_since()), any::<bool>(), weighted(0.05, (".{0,8}", value_lit())))
            .prop_map(|(op, cs, with_since, extra)| {
                let (channels, since) = cs.map_or((None, None), |(c, s)| (Some(c), with_since.then_some(s)));
                let (k, v) = extra.map_or((String::new(), None), |(k, v)| (k, Some(v)));
                obj([("op".to_owned(), op), ("channels".to_owned(), channels), ("since".to_owned(), since), (k, v)])
            }),
    )
}

/// A seq as the URL writes it: mostly a u64 (small ones match the app channels' history),
/// sometimes past u64, negative, signed, empty or not a number.
pub fn seq_text() -> BoxedStrategy<String> {
    prop_oneof![
        12 => (0u64..6).prop_map(|n| n.to_string()),
        8 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just(u64::MAX.to_string()),
        1 => "[1-9][0-9]{19,40}",
        1 => "-[0-9]{1,5}",
        1 => "\\+[0-9]{1,5}",
        1 => Just(String::new()),
        1 => "[ -~]{0,6}",
    ]
    .boxed()
}

/// `name:seq[@epoch]`, with now and then another separator, a bad seq or an empty epoch.
pub fn since_entry(name: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let sep = prop_oneof![40 => Just(":"), 1 => Just(""), 1 => Just("::"), 1 => Just("="), 1 => Just("@")];
    let epoch = prop_oneof![6 => Just(APP_EPOCH.to_owned()), 1 => Just(String::new()), 3 => "[ -~]{0,10}"];
    (name, sep, seq_text(), weighted(0.3, epoch)).prop_map(|(name, sep, seq, epoch)| {
        format!("{name}{sep}{seq}{}", epoch.map_or(String::new(), |e| format!("@{e}")))
    })
}

pub fn list_sep() -> impl Strategy<Value = &'static str> {
    prop_oneof![40 => Just(","), 1 => Just(",,"), 1 => Just(";"), 1 => Just(" "), 1 => Just("%2C")]
}

pub fn joined(items: Vec<(String, &str)>) -> String {
    items.into_iter().map(|(e, s)| format!("{e}{s}")).collect()
}
