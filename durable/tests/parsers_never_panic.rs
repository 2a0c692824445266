//! Property tests: arbitrary and structured-but-mutated input to the parsers a client, an app or
//! an upstream can reach never panics and always yields a typed result or error.
//!
//! Covered: protocol frames, a socket's `?channels=`/`?since=` and text frames (through
//! `HubCore`), publish bodies, feed bodies, URLs and storage keys. Each input family has two
//! generators: fully arbitrary text or bytes, and the expected shape with random values, types
//! and separators, sometimes cut short or with one character changed, so cases reach past the
//! first parse error. Only the crate's public API is used.

use durable::channel::Catchup;
use durable::feeds::alternative_me::parse_fng;
use durable::feeds::coingecko::{parse_chart, parse_global, parse_simple_price};
use durable::feeds::FeedError;
use durable::hub_core::HubCore;
use durable::internal::{AppPublish, CloseReason, Outcome};
use durable::protocol::{
    parse_client_frame, parse_since_param, Channel, ClientOp, Epoch, ErrorCode, Seq, ServerFrame, Since, Update,
    MAX_CHANNEL_LEN,
};
use durable::publish::{check_body, PublishRefusal};
use durable::route::{query_param, split_url};
use durable::session::{Action, SocketMeta};
use durable::settings::{FeedConfig, HubLimits};
use durable::storage_key::StorageKey;
use proptest::collection::vec;
use proptest::option::weighted;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};

/// Cases per property: the whole file stays well under 10 s in a debug build.
const CASES: u32 = 256;

/// No `proptest-regressions/` files are written into the repository.
fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Any text: arbitrary Unicode, printable ASCII, or a soup of JSON punctuation.
fn any_text() -> BoxedStrategy<String> {
    prop_oneof![any::<String>(), "[ -~]{0,80}", r#"[{}\[\]":,.0-9a-z@ eE+-]{0,80}"#].boxed()
}

/// A small edit applied to structured text: most cases stay intact, the rest are cut short,
/// or get one character inserted, removed, or replaced by JSON punctuation.
#[derive(Debug, Clone)]
struct Mutation {
    how: u8,
    at: Index,
    c: char,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (0u8..16, any::<Index>(), prop_oneof![any::<char>(), select(vec!['"', ',', ':', '{', '}', '[', ']', '\\', '@'])])
        .prop_map(|(how, at, c)| Mutation { how, at, c })
}

impl Mutation {
    fn apply(&self, mut s: String) -> String {
        let mut at = self.at.index(s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        match self.how {
            0 => s.truncate(at),
            1 => s.insert(at, self.c),
            2 if at < s.len() => {
                s.remove(at);
            }
            3 if at < s.len() => {
                s.remove(at);
                s.insert(at, self.c);
            }
            _ => {}
        }
        s
    }
}

fn mutated(base: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (base, mutation()).prop_map(|(s, m)| m.apply(s))
}

/// A JSON string literal holding `s`.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// JSON number literals, including ones past u64 and f64 and fractions where integers belong.
fn number_lit() -> BoxedStrategy<String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter_map("finite", |f| f.is_finite().then(|| f.to_string())),
        (-1e3f64..1e3).prop_map(|f| format!("{f:e}")),
        "[1-9][0-9]{18,40}",
        "-[1-9][0-9]{0,40}",
        select(vec!["-0", "0.0", "1e-400", "18446744073709551616", "100.0", "1e2", "-1e2", "1E+2"])
            .prop_map(str::to_owned),
    ]
    .boxed()
}

/// Text where a value should be that is not JSON (or not a value) at all.
fn broken_lit() -> BoxedStrategy<String> {
    prop_oneof![
        select(vec!["", "NaN", "inf", "-inf", "1e999", "-1e999", "0x10", "01", "+1", "-", ".5", "tru", "nul", "'x'"])
            .prop_map(str::to_owned),
        "[ -~]{1,8}",
    ]
    .boxed()
}

/// Any JSON value, of any type, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Non-finite values become null.
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((".{0,6}", inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A value's text where a field's value goes: any JSON value of any type, a doubtful number,
/// a string, and now and then something that is not JSON (which breaks the whole document).
fn value_lit() -> BoxedStrategy<String> {
    prop_oneof![
        12 => json_value().prop_map(|v| v.to_string()),
        8 => number_lit(),
        4 => ".{0,12}".prop_map(|s| quoted(&s)),
        1 => broken_lit(),
    ]
    .boxed()
}

/// A JSON object's text from (key, value text) fields; absent fields are left out.
fn obj<K: AsRef<str>>(fields: impl IntoIterator<Item = (K, Option<String>)>) -> String {
    let fields: Vec<String> =
        fields.into_iter().filter_map(|(k, v)| v.map(|v| format!("{}:{v}", quoted(k.as_ref())))).collect();
    format!("{{{}}}", fields.join(","))
}

fn array(items: Vec<String>) -> String {
    format!("[{}]", items.join(","))
}

/// A field that is usually there, usually with a plausible value.
fn field(good: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Option<String>> {
    weighted(0.95, prop_oneof![9 => good, 1 => value_lit()]).boxed()
}

fn float_text(lo: f64, hi: f64) -> impl Strategy<Value = String> {
    (lo..hi).prop_map(|f| f.to_string())
}

/// App channels the hub in the socket tests has published to (seq 1..=3, epoch `e1`).
const APP: [&str; 2] = ["news", "eth-usd"];
const APP_SEQ: u64 = 3;
const APP_EPOCH: &str = "e1";

/// A channel name as a client might write it: built-in, published, valid, almost valid, or anything.
fn channel_name() -> BoxedStrategy<String> {
    prop_oneof![
        5 => select(Channel::BUILT_IN.iter().chain(APP.iter()).copied().collect::<Vec<_>>()).prop_map(str::to_owned),
        2 => "[a-z0-9][a-z0-9_-]{0,31}",
        1 => "[a-z0-9_-]{0,40}",
        1 => mutated("[a-z0-9][a-z0-9_-]{0,31}"),
        1 => ".{0,50}",
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Checks shared by several properties
// ---------------------------------------------------------------------------------------------

/// Rust `Debug` output that must never reach a client-facing message.
const DEBUG_TEXT: [&str; 13] = [
    "Channel(",
    "Error(",
    "Some(",
    "None",
    "Seq(",
    "Epoch(",
    "Since",
    "ServerFrame",
    "ErrorCode",
    "Value::",
    "String(\"",
    "Number(",
    "Object {",
];

/// A message is non-empty and holds no Rust debug text (unless the input itself
/// did, since messages quote what the client wrote).
fn readable(message: &str, inputs: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(!message.trim().is_empty(), "empty message");
    for pat in DEBUG_TEXT {
        if inputs.iter().all(|i| !i.contains(pat)) {
            prop_assert!(!message.contains(pat), "message {:?} holds Rust debug text {:?}", message, pat);
        }
    }
    Ok(())
}

/// Client-facing error frames quote at most a few dozen characters of the input.
const MAX_CLIENT_MESSAGE: usize = 1024;

/// A frame survives its own wire format.
fn round_trips(frame: &ServerFrame) -> Result<(), TestCaseError> {
    let back: ServerFrame = serde_json::from_str(&frame.to_json()).expect("a server frame is valid JSON of its type");
    prop_assert_eq!(&back, frame);
    Ok(())
}

fn error_frame(frame: &ServerFrame, inputs: &[&str]) -> Result<ErrorCode, TestCaseError> {
    let ServerFrame::Error { code, message } = frame else {
        return Err(TestCaseError::fail(format!("expected an error frame, got {frame:?}")));
    };
    readable(message, inputs)?;
    prop_assert!(message.len() <= MAX_CLIENT_MESSAGE, "message of {} bytes", message.len());
    round_trips(frame)?;
    Ok(*code)
}

fn feed_error(e: &FeedError, inputs: &[&str]) -> Result<(), TestCaseError> {
    let FeedError::Parse(m) = e else {
        return Err(TestCaseError::fail(format!("a parser can only fail with Parse, got {e:?}")));
    };
    readable(m, inputs)?;
    prop_assert_eq!(e.outcome(), Outcome::ParseError);
    prop_assert!(e.to_string().starts_with("unexpected response: "));
    Ok(())
}

fn is_valid_channel_name(name: &str) -> bool {
    let b = name.as_bytes();
    let char_ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_';
    !b.is_empty()
        && b.len() <= MAX_CHANNEL_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(char_ok)
}

// ---------------------------------------------------------------------------------------------
// Channel::parse
// ---------------------------------------------------------------------------------------------

fn check_channel(name: &str) -> Result<(), TestCaseError> {
    let valid = is_valid_channel_name(name);
    match Channel::parse(name) {
        Ok(c) => {
            prop_assert!(valid, "accepted {:?}", name);
            prop_assert_eq!(c.as_str(), name);
            prop_assert_eq!(c.to_string(), name);
            prop_assert_eq!(c.is_built_in(), Channel::BUILT_IN.contains(&name));
            let json = serde_json::to_string(&c).expect("a channel serialises");
            prop_assert_eq!(json.clone(), quoted(name));
            prop_assert_eq!(serde_json::from_str::<Channel>(&json).ok(), Some(c.clone()));
            prop_assert_eq!(Channel::parse(c.as_str()), Ok(c.clone()));
            prop_assert_eq!(String::from(c), name);
        }
        Err(e) => {
            prop_assert!(!valid, "refused {:?}", name);
            readable(&e.0, &[name])?;
            prop_assert!(e.0.starts_with("invalid channel name "), "{}", e.0);
            prop_assert!(e.0.len() <= MAX_CLIENT_MESSAGE);
            prop_assert_eq!(e.to_string(), e.0.clone());
            prop_assert!(serde_json::from_str::<Channel>(&quoted(name)).is_err());
            prop_assert!(Channel::try_from(name.to_owned()).is_err());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn channel_parse_any_text(name in any_text()) {
        check_channel(&name)?;
    }

    #[test]
    fn channel_parse_near_valid(name in channel_name()) {
        check_channel(&name)?;
    }
}

// ---------------------------------------------------------------------------------------------
// parse_client_frame
// ---------------------------------------------------------------------------------------------

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
fn client_frame() -> impl Strategy<Value = String> {
    mutated(
        (op_or_junk(), weighted(0.95, channels_and_since()), any::<bool>(), weighted(0.05, (".{0,8}", value_lit())))
            .prop_map(|(op, cs, with_since, extra)| {
                let (channels, since) = cs.map_or((None, None), |(c, s)| (Some(c), with_since.then_some(s)));
                let (k, v) = extra.map_or((String::new(), None), |(k, v)| (k, Some(v)));
                obj([("op".to_owned(), op), ("channels".to_owned(), channels), ("since".to_owned(), since), (k, v)])
            }),
    )
}

fn check_client_frame(text: &str) -> Result<(), TestCaseError> {
    let json: Option<Value> = serde_json::from_str(text).ok();
    let op = json.as_ref().and_then(|v| v.get("op")).and_then(Value::as_str);
    match parse_client_frame(text) {
        Ok(parsed) => {
            let v = json.as_ref().expect("an accepted frame is JSON");
            let want_channels: Vec<String> = v["channels"]
                .as_array()
                .expect("an accepted frame has a channels array")
                .iter()
                .map(|c| c.as_str().expect("of strings").to_owned())
                .collect();
            match parsed {
                ClientOp::Subscribe { channels, since } => {
                    prop_assert_eq!(op, Some("subscribe"));
                    prop_assert_eq!(channels, want_channels);
                    let want_names: Vec<&String> =
                        v.get("since").and_then(Value::as_object).map_or(vec![], |m| m.keys().collect());
                    prop_assert_eq!(since.iter().map(|(n, _)| n).collect::<Vec<_>>(), want_names);
                    for (_, s) in &since {
                        let back: Since =
                            serde_json::from_value(serde_json::to_value(s).expect("serialises")).expect("parses");
                        prop_assert_eq!(&back, s);
                    }
                }
                ClientOp::Unsubscribe { channels } => {
                    prop_assert_eq!(op, Some("unsubscribe"));
                    prop_assert_eq!(channels, want_channels);
                }
            }
        }
        Err(frame) => {
            let code = error_frame(&frame, &[text])?;
            let want: &[ErrorCode] = match (&json, op) {
                (None, _) => &[ErrorCode::BadJson],
                (Some(_), None | Some("")) => &[ErrorCode::UnknownOp],
                (Some(_), Some("subscribe")) => &[ErrorCode::BadJson, ErrorCode::InvalidSince],
                (Some(_), Some("unsubscribe")) => &[ErrorCode::BadJson],
                (Some(_), Some(_)) => &[ErrorCode::UnknownOp],
            };
            prop_assert!(want.contains(&code), "{:?} for {:?}", code, text);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_frame_any_text(text in any_text()) {
        check_client_frame(&text)?;
    }

    #[test]
    fn client_frame_structured(text in client_frame()) {
        check_client_frame(&text)?;
    }
}

// ---------------------------------------------------------------------------------------------
// parse_since_param (`?since=`)
// ---------------------------------------------------------------------------------------------

/// A seq as the URL writes it: mostly a u64 (small ones match the app channels' history),
/// sometimes past u64, negative, signed, empty or not a number.
fn seq_text() -> BoxedStrategy<String> {
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
fn since_entry(name: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let sep = prop_oneof![40 => Just(":"), 1 => Just(""), 1 => Just("::"), 1 => Just("="), 1 => Just("@")];
    let epoch = prop_oneof![6 => Just(APP_EPOCH.to_owned()), 1 => Just(String::new()), 3 => "[ -~]{0,10}"];
    (name, sep, seq_text(), weighted(0.3, epoch)).prop_map(|(name, sep, seq, epoch)| {
        format!("{name}{sep}{seq}{}", epoch.map_or(String::new(), |e| format!("@{e}")))
    })
}

fn list_sep() -> impl Strategy<Value = &'static str> {
    prop_oneof![40 => Just(","), 1 => Just(",,"), 1 => Just(";"), 1 => Just(" "), 1 => Just("%2C")]
}

fn joined(items: Vec<(String, &str)>) -> String {
    items.into_iter().map(|(e, s)| format!("{e}{s}")).collect()
}

fn since_param() -> impl Strategy<Value = String> {
    mutated(vec((since_entry(channel_name()), list_sep()), 0..8).prop_map(joined))
}

fn check_since_param(param: &str) -> Result<(), TestCaseError> {
    let parts: Vec<&str> = param.split(',').filter(|p| !p.is_empty()).collect();
    match parse_since_param(param) {
        Ok(list) => {
            // One entry per non-empty part, named by what precedes its first ':'.
            prop_assert_eq!(list.len(), parts.len());
            for ((name, since), part) in list.iter().zip(&parts) {
                prop_assert!(!name.contains(',') && !name.contains(':'));
                let prefix = format!("{name}:");
                prop_assert!(part.starts_with(&prefix), "{:?} from {:?}", name, part);
                if let Some(e) = since.epoch() {
                    prop_assert!(!e.0.is_empty() && !e.0.contains(','));
                    let suffix = format!("@{}", e.0);
                    prop_assert!(part.ends_with(&suffix), "{:?} from {:?}", e, part);
                }
            }
        }
        Err(frame) => {
            prop_assert_eq!(error_frame(&frame, &[param])?, ErrorCode::InvalidSince);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn since_param_any_text(param in any_text()) {
        check_since_param(&param)?;
    }

    #[test]
    fn since_param_structured(param in since_param()) {
        check_since_param(&param)?;
    }

    /// Well-formed entries (names without `,` or `:`, any u64, epochs without `,`) come back
    /// exactly as written.
    #[test]
    fn since_param_round_trips(
        entries in vec(("[^,:]{0,12}", any::<u64>(), weighted(0.4, "[^,]{1,10}")), 0..6),
        sep in prop_oneof![Just(","), Just(",,")],
    ) {
        let text: Vec<String> = entries
            .iter()
            .map(|(n, s, e)| format!("{n}:{s}{}", e.as_ref().map_or(String::new(), |e| format!("@{e}"))))
            .collect();
        let want: Vec<(String, Since)> = entries
            .into_iter()
            .map(|(n, s, e)| (n, e.map_or(Since::Seq(s), |e| Since::At { seq: s, epoch: Some(Epoch(e)) })))
            .collect();
        prop_assert_eq!(parse_since_param(&text.join(sep)), Ok(want));
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream parsers
// ---------------------------------------------------------------------------------------------

fn fng_body() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        6 => (0u64..=100).prop_map(|n| quoted(&n.to_string())),
        4 => (0u64..=120).prop_map(|n| n.to_string()),
        1 => " ?\\+?[0-9]{0,4} ?".prop_map(|s| quoted(&s)),
        1 => number_lit(),
        1 => value_lit(),
    ];
    let class = prop_oneof![
        9 => select(vec!["Greed", "Extreme Fear", " Neutral "]).prop_map(quoted),
        1 => select(vec!["", "   "]).prop_map(quoted),
        1 => ".{0,50}".prop_map(|s| quoted(&s)),
        1 => value_lit(),
    ];
    let entry = (weighted(0.95, value), weighted(0.95, class))
        .prop_map(|(v, c)| obj([("value", v), ("value_classification", c), ("timestamp", Some("\"1\"".into()))]));
    let data = prop_oneof![
        5 => vec(entry, 1..3).prop_map(array),
        1 => vec(value_lit(), 0..3).prop_map(array),
        1 => value_lit(),
    ];
    mutated(weighted(0.95, data).prop_map(|d| obj([("name", Some("\"fng\"".to_owned())), ("data", d)])))
}

fn check_fng(body: &str) -> Result<(), TestCaseError> {
    match parse_fng(body) {
        Ok(s) => {
            prop_assert!(s.value <= 100);
            prop_assert!(!s.classification.is_empty() && s.classification.len() <= 40);
            prop_assert_eq!(s.classification.trim(), s.classification.as_str());
            let v: Value = serde_json::from_str(body).expect("accepted body is JSON");
            let raw = &v["data"][0]["value"];
            let want = raw.as_u64().or_else(|| raw.as_str().and_then(|t| t.trim().parse().ok()));
            prop_assert_eq!(want, Some(u64::from(s.value)));
        }
        Err(e) => feed_error(&e, &[body])?,
    }
    Ok(())
}

const COINS: [&str; 3] = ["bitcoin", "ethereum", "solana"];

fn coin_id() -> BoxedStrategy<String> {
    prop_oneof![4 => select(COINS.to_vec()).prop_map(str::to_owned), 1 => ".{0,10}"].boxed()
}

fn quote_lit() -> impl Strategy<Value = String> {
    (
        field(float_text(-1.0, 1e7)),
        field(float_text(-150.0, 1200.0)),
        field(float_text(-1.0, 1e13)),
        field(float_text(-1.0, 1e11)),
    )
        .prop_map(|(usd, change, cap, vol)| {
            obj([("usd", usd), ("usd_24h_change", change), ("usd_market_cap", cap), ("usd_24h_vol", vol)])
        })
}

/// A body with the tracked coins (each usually there), maybe others, and the coins asked for.
fn simple_price_case() -> impl Strategy<Value = (String, Vec<String>)> {
    let entry = || weighted(0.95, prop_oneof![9 => quote_lit(), 1 => value_lit()]);
    (
        [entry(), entry(), entry()],
        vec((coin_id(), entry()), 0..2),
        vec(prop_oneof![9 => select(COINS.to_vec()).prop_map(str::to_owned), 1 => coin_id()], 0..4),
        mutation(),
    )
        .prop_map(|(tracked, others, coins, m)| {
            let tracked = COINS.iter().map(|c| c.to_string()).zip(tracked);
            (m.apply(obj(tracked.chain(others))), coins)
        })
}

fn check_simple_price(body: &str, coins: &[String]) -> Result<(), TestCaseError> {
    match parse_simple_price(body, coins) {
        Ok(quotes) => {
            let want: HashSet<&String> = coins.iter().collect();
            prop_assert_eq!(quotes.keys().collect::<HashSet<_>>(), want);
            for q in quotes.values() {
                prop_assert!(q.price_usd.is_finite() && q.price_usd > 0.0);
                prop_assert!((-100.0..=1000.0).contains(&q.change_24h_pct));
                prop_assert!(q.market_cap_usd.is_finite() && q.market_cap_usd >= 0.0);
                prop_assert!(q.volume_24h_usd.is_finite() && q.volume_24h_usd >= 0.0);
            }
        }
        Err(e) => {
            let mut inputs: Vec<&str> = coins.iter().map(String::as_str).collect();
            inputs.push(body);
            feed_error(&e, &inputs)?;
        }
    }
    Ok(())
}

fn global_body() -> impl Strategy<Value = String> {
    let nested = |key: &'static str, good: BoxedStrategy<String>| {
        weighted(0.97, prop_oneof![12 => field(good).prop_map(move |v| obj([(key, v)])), 1 => value_lit()])
    };
    let data = (
        nested("usd", float_text(-1.0, 1e13).boxed()),
        nested("usd", float_text(-1.0, 1e11).boxed()),
        nested("btc", float_text(-5.0, 120.0).boxed()),
    )
        .prop_map(|(cap, vol, pct)| {
            obj([("total_market_cap", cap), ("total_volume", vol), ("market_cap_percentage", pct)])
        });
    mutated(weighted(0.95, prop_oneof![5 => data, 1 => value_lit()]).prop_map(|d| obj([("data", d)])))
}

fn check_global(body: &str) -> Result<(), TestCaseError> {
    match parse_global(body) {
        Ok(t) => {
            let v: Value = serde_json::from_str(body).expect("accepted body is JSON");
            let d = &v["data"];
            prop_assert!(t.total_market_cap_usd.is_finite() && t.total_market_cap_usd > 0.0);
            prop_assert!(t.total_volume_24h_usd.is_finite() && t.total_volume_24h_usd >= 0.0);
            prop_assert!((0.0..=100.0).contains(&t.btc_dominance_pct));
            prop_assert_eq!(d["total_market_cap"]["usd"].as_f64(), Some(t.total_market_cap_usd));
            prop_assert_eq!(d["total_volume"]["usd"].as_f64(), Some(t.total_volume_24h_usd));
            prop_assert_eq!(d["market_cap_percentage"]["btc"].as_f64(), Some(t.btc_dominance_pct));
        }
        Err(e) => feed_error(&e, &[body])?,
    }
    Ok(())
}

fn chart_body() -> impl Strategy<Value = String> {
    let ms = prop_oneof![12 => (0u64..2_000_000_000_000).prop_map(|n| n.to_string()), 1 => value_lit()];
    let price = prop_oneof![12 => float_text(-1.0, 1e6), 1 => value_lit()];
    let pair = prop_oneof![
        20 => (ms, price).prop_map(|(a, b)| format!("[{a},{b}]")),
        1 => vec(value_lit(), 0..4).prop_map(array),
        1 => value_lit(),
    ];
    let prices = prop_oneof![
        8 => vec(pair.clone(), 1..6).prop_map(array),
        1 => vec(pair, 0..1).prop_map(array),
        1 => value_lit(),
    ];
    mutated(weighted(0.95, prices).prop_map(|p| obj([("prices", p)])))
}

fn check_chart(body: &str) -> Result<(), TestCaseError> {
    match parse_chart(body) {
        Ok(points) => {
            let v: Value = serde_json::from_str(body).expect("accepted body is JSON");
            let prices = v["prices"].as_array().expect("an accepted body has prices");
            prop_assert!(!points.is_empty());
            prop_assert_eq!(points.len(), prices.len());
            for ((ms, price), raw) in points.iter().zip(prices) {
                prop_assert!(price.is_finite() && *price > 0.0);
                prop_assert_eq!(raw[1].as_f64(), Some(*price));
                let raw_ms = raw[0].as_f64().expect("a number");
                prop_assert!(raw_ms.is_finite() && raw_ms >= 0.0);
                prop_assert_eq!(*ms, raw_ms as u64);
            }
        }
        Err(e) => feed_error(&e, &[body])?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn upstream_parsers_any_text(body in any_text(), coins in vec(coin_id(), 0..3)) {
        check_fng(&body)?;
        check_simple_price(&body, &coins)?;
        check_global(&body)?;
        check_chart(&body)?;
    }

    #[test]
    fn fng_structured(body in fng_body()) {
        check_fng(&body)?;
    }

    #[test]
    fn simple_price_structured((body, coins) in simple_price_case()) {
        check_simple_price(&body, &coins)?;
    }

    #[test]
    fn global_structured(body in global_body()) {
        check_global(&body)?;
    }

    #[test]
    fn chart_structured(body in chart_body()) {
        check_chart(&body)?;
    }
}

// ---------------------------------------------------------------------------------------------
// check_body (POST /api/publish)
// ---------------------------------------------------------------------------------------------

fn publish_body() -> impl Strategy<Value = Vec<u8>> {
    let channel = prop_oneof![5 => channel_name().prop_map(|n| quoted(&n)), 1 => value_lit()];
    mutated((weighted(0.9, channel), weighted(0.9, value_lit()), weighted(0.2, (".{0,6}", value_lit()))).prop_map(
        |(channel, data, extra)| {
            let (k, v) = extra.map_or((String::new(), None), |(k, v)| (k, Some(v)));
            obj([("channel".to_owned(), channel), ("data".to_owned(), data), (k, v)])
        },
    ))
    .prop_map(String::into_bytes)
}

fn max_bytes() -> impl Strategy<Value = usize> {
    prop_oneof![2 => Just(usize::MAX), 2 => Just(64 * 1024), 1 => 0usize..256]
}

fn check_publish(body: &[u8], max: usize, ts: u64) -> Result<(), TestCaseError> {
    let got = check_body(body, max, ts);
    // The documented order: size, JSON, "channel", its name, "data", reserved. Messages of
    // `bad_json` come from serde_json and are only compared by kind.
    let bad_json = || Err(PublishRefusal::BadJson(String::new()));
    let want = if body.len() > max {
        Err(PublishRefusal::TooLarge { limit: max })
    } else {
        match serde_json::from_slice::<Value>(body) {
            Err(_) => bad_json(),
            Ok(v) => match v.get("channel").and_then(Value::as_str).map(|name| (Channel::parse(name), v.get("data"))) {
                None | Some((Ok(_), None)) => bad_json(),
                Some((Err(e), _)) => Err(PublishRefusal::InvalidChannel(e.0)),
                Some((Ok(c), Some(_))) if c.is_built_in() => Err(PublishRefusal::Reserved),
                Some((Ok(c), Some(data))) => Ok(AppPublish { channel: c, ts, data: data.clone() }),
            },
        }
    };
    match (&got, &want) {
        (Ok(p), Ok(w)) => prop_assert_eq!(p, w),
        (Err(PublishRefusal::BadJson(_)), Err(PublishRefusal::BadJson(_))) => {}
        (Err(g), Err(w)) => prop_assert_eq!(g, w),
        _ => prop_assert!(false, "got {:?}, want {:?}", got, want),
    }
    if let Err(e) = got {
        prop_assert!([400, 403, 413].contains(&e.status()));
        prop_assert!(["payload_too_large", "bad_json", "invalid_channel", "channel_reserved"].contains(&e.code()));
        let text = String::from_utf8_lossy(body);
        readable(&e.message(), &[&text])?;
        let v: Value = serde_json::from_str(&e.body()).expect("error bodies are JSON");
        prop_assert_eq!(v, json!({"error": {"code": e.code(), "message": e.message()}}));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn publish_any_bytes(body in vec(any::<u8>(), 0..160), max in max_bytes(), ts in any::<u64>()) {
        check_publish(&body, max, ts)?;
    }

    #[test]
    fn publish_any_text(body in any_text(), max in max_bytes(), ts in any::<u64>()) {
        check_publish(body.as_bytes(), max, ts)?;
    }

    #[test]
    fn publish_structured(body in publish_body(), max in max_bytes(), ts in any::<u64>()) {
        check_publish(&body, max, ts)?;
    }
}

// ---------------------------------------------------------------------------------------------
// split_url, query_param
// ---------------------------------------------------------------------------------------------

/// A URL as the runtime serialises it (absolute, always with a path), and its path and query.
fn runtime_url() -> impl Strategy<Value = (String, String, String)> {
    (
        select(vec!["http://", "https://", "ws://"]),
        weighted(0.1, "[a-z]{1,5}:[a-z]{0,5}@"),
        "[a-z0-9.-]{1,15}",
        weighted(0.3, ":[0-9]{1,5}"),
        "(/[a-zA-Z0-9._~%:@!$&'()*+,;=-]{0,8}){1,4}",
        weighted(0.7, "[a-zA-Z0-9._~%:@!$&'()*+,;=/?-]{0,30}"),
        weighted(0.2, ".{0,20}"),
    )
        .prop_map(|(scheme, user, host, port, path, query, fragment)| {
            let url = format!(
                "{scheme}{}{host}{}{path}{}{}",
                user.unwrap_or_default(),
                port.unwrap_or_default(),
                query.as_ref().map_or(String::new(), |q| format!("?{q}")),
                fragment.map_or(String::new(), |f| format!("#{f}")),
            );
            (url, path, query.unwrap_or_default())
        })
}

/// `application/x-www-form-urlencoded`, every byte outside the unreserved set escaped.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Keys looked up; junk segments (`&&`, `zz`, `=zz`) never decode to one of them.
const QUERY_KEYS: [&str; 5] = ["channels", "since", "a b", "ü", "x%y&z=1"];

fn query_key() -> impl Strategy<Value = String> {
    select(QUERY_KEYS.to_vec()).prop_map(str::to_owned)
}

fn query_case() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    let pair = (query_key(), any::<String>());
    let segment = prop_oneof![4 => pair.prop_map(Some), 1 => Just(None)];
    (vec((segment, select(vec!["", "zz", "=zz", "zz=", "="])), 0..6)).prop_map(|segments| {
        let mut parts = Vec::new();
        let mut pairs = Vec::new();
        for (pair, junk) in segments {
            match pair {
                Some((k, v)) => {
                    parts.push(format!("{}={}", form_encode(&k), form_encode(&v)));
                    pairs.push((k, v));
                }
                None => parts.push(junk.to_owned()),
            }
        }
        (parts.join("&"), pairs)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn split_url_any_text(url in any_text()) {
        let (path, query) = split_url(&url);
        prop_assert!(path.starts_with('/'), "{:?}", path);
        prop_assert!(!path.contains('?') && !path.contains('#'), "{:?}", path);
        prop_assert!(!query.contains('#'), "{:?}", query);
    }

    #[test]
    fn split_url_runtime_urls((url, path, query) in runtime_url()) {
        prop_assert_eq!(split_url(&url), (path.as_str(), query.as_str()));
    }

    #[test]
    fn query_param_any_text(query in any_text(), name in prop_oneof![any_text(), query_key()]) {
        if let Some(v) = query_param(&query, &name) {
            // Decoding never grows the text beyond what U+FFFD replacement can add.
            prop_assert!(v.len() <= 3 * query.len());
        }
    }

    #[test]
    fn query_param_finds_the_first_value((query, pairs) in query_case()) {
        for key in QUERY_KEYS {
            let want = pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            prop_assert_eq!(query_param(&query, key), want, "{} in {:?}", key, query);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// StorageKey
// ---------------------------------------------------------------------------------------------

fn valid_channel() -> impl Strategy<Value = Channel> {
    "[a-z0-9][a-z0-9_-]{0,31}".prop_map(|s| Channel::parse(&s).expect("the pattern is a valid name"))
}

fn storage_key() -> impl Strategy<Value = StorageKey> {
    prop_oneof![
        valid_channel().prop_map(StorageKey::Meta),
        (valid_channel(), prop_oneof![any::<u64>(), Just(0), Just(u64::MAX)])
            .prop_map(|(c, s)| StorageKey::History(c, Seq(s))),
        Just(StorageKey::Upstreams),
        Just(StorageKey::Providers),
        Just(StorageKey::Counters),
        Just(StorageKey::Watchers),
    ]
}

fn storage_key_text() -> impl Strategy<Value = String> {
    let prefix = select(vec!["ch:", "h:", "", "upstreams", "providers", "counters", "watchers", "h::", "ch"]);
    let singleton = select(StorageKey::SINGLETONS.to_vec()).prop_map(str::to_owned);
    let loose = (prefix, channel_name(), weighted(0.6, (select(vec![":", "::", "", "@"]), seq_text())))
        .prop_map(|(p, name, seq)| format!("{p}{name}{}", seq.map_or(String::new(), |(s, n)| format!("{s}{n}"))));
    mutated(prop_oneof![
        3 => channel_name().prop_map(|n| format!("ch:{n}")),
        3 => (channel_name(), seq_text()).prop_map(|(n, seq)| format!("h:{n}:{seq}")),
        1 => singleton,
        2 => loose,
    ])
}

fn check_storage_key_text(text: &str) -> Result<(), TestCaseError> {
    if let Some(k) = StorageKey::parse(text) {
        let canonical = k.as_string();
        prop_assert_eq!(StorageKey::parse(&canonical), Some(k.clone()));
        match &k {
            // History keys accept non-canonical seqs (`+5`, `005`); everything else is exact.
            StorageKey::History(c, _) => prop_assert!(text.starts_with(&StorageKey::history_prefix(c))),
            _ => prop_assert_eq!(text, canonical.as_str()),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn storage_key_round_trips(k in storage_key()) {
        let s = k.as_string();
        prop_assert_eq!(StorageKey::parse(&s), Some(k.clone()));
        if let StorageKey::History(c, seq) = &k {
            let digits = s.strip_prefix(&StorageKey::history_prefix(c)).expect("history prefix");
            prop_assert_eq!(digits.len(), 20);
            prop_assert_eq!(digits.parse::<u64>().ok(), Some(seq.0));
        }
    }

    /// History keys of one channel sort by seq, so a range read returns them in order.
    #[test]
    fn history_keys_sort_by_seq(c in valid_channel(), a in any::<u64>(), b in any::<u64>()) {
        let ka = StorageKey::History(c.clone(), Seq(a)).as_string();
        let kb = StorageKey::History(c, Seq(b)).as_string();
        prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
    }

    #[test]
    fn storage_key_parse_any_text(text in any_text()) {
        check_storage_key_text(&text)?;
    }

    #[test]
    fn storage_key_parse_structured(text in storage_key_text()) {
        check_storage_key_text(&text)?;
    }
}

// ---------------------------------------------------------------------------------------------
// A new socket: `?channels=` / `?since=`, then client text frames
// ---------------------------------------------------------------------------------------------

const NOW: u64 = 1_700_000_000_000;

/// A small hub: the defaults, maybe tight limits, maybe two app channels published 3 times
/// each. Returns the app channels' history for catch-ups.
fn hub(app_channels: bool, tight: bool) -> (HubCore, BTreeMap<Channel, Vec<Update>>) {
    let mut hub = HubCore::new(HubLimits::default(), FeedConfig::default());
    if tight {
        hub.limits =
            HubLimits { max_subscriptions: 2, client_msgs_per_10s: 3, max_client_frame_bytes: 256, ..hub.limits };
    }
    let mut history: BTreeMap<Channel, Vec<Update>> = BTreeMap::new();
    if app_channels {
        for name in APP {
            for n in 1..=APP_SEQ {
                let channel = Channel::parse(name).expect("valid");
                let p = AppPublish { channel, ts: n, data: json!({ "n": n }) };
                let (_, fx) = hub.publish_app(p, || Epoch(APP_EPOCH.to_owned())).expect("an app channel");
                for w in fx.history {
                    history.entry(w.put.channel.clone()).or_default().push(w.put);
                }
            }
        }
    }
    (hub, history)
}

fn channels_param() -> impl Strategy<Value = String> {
    mutated(vec((channel_name(), list_sep()), 0..10).prop_map(joined))
}

/// `?channels=` and `?since=` together, the since entries mostly naming listed channels; each
/// parameter may be absent.
fn connect_params() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    let since_name = || prop_oneof![4 => any::<Index>().prop_map(Ok), 1 => channel_name().prop_map(Err)];
    // All entries well formed (the whole parameter is refused for one bad entry), or not.
    let clean = (prop_oneof![3 => 0u64..6, 1 => any::<u64>()], weighted(0.3, select(vec![APP_EPOCH, "other"])))
        .prop_map(|(seq, epoch)| format!(":{seq}{}", epoch.map_or(String::new(), |e| format!("@{e}"))));
    let since = prop_oneof![
        vec((clean, since_name(), Just(",")), 0..6),
        vec((since_entry(Just(String::new())), since_name(), list_sep()), 0..6),
    ];
    (vec((channel_name(), list_sep()), 0..10), since, mutation(), mutation(), 0u8..8).prop_map(
        |(names, since, m1, m2, absent)| {
            let since = since
                .into_iter()
                .map(|(entry, name, sep)| {
                    let name = match name {
                        Ok(i) if !names.is_empty() => names[i.index(names.len())].0.clone(),
                        Ok(_) => "btc".to_owned(),
                        Err(n) => n,
                    };
                    (format!("{name}{entry}"), sep)
                })
                .collect();
            let channels = (absent != 0).then(|| m1.apply(joined(names)));
            let since = (absent != 1).then(|| m2.apply(joined(since)));
            (channels, since)
        },
    )
}

/// The catch-up the shell runs for a `Subscribe` action: planned from `since`, then answered
/// from history; it ends with `subscribed` for the channel.
fn check_catchup(
    hub: &HubCore,
    history: &BTreeMap<Channel, Vec<Update>>,
    c: &Channel,
    since: Option<&Since>,
) -> Result<(), TestCaseError> {
    let plan = hub.plan(c, since);
    let app = history.contains_key(c);
    let want = match since {
        _ if !app => Catchup::Latest,
        None => Catchup::Latest,
        Some(s) if s.epoch().is_some_and(|e| e.0 != APP_EPOCH) || s.seq().0 > APP_SEQ => Catchup::Latest,
        Some(s) if s.seq().0 == APP_SEQ => Catchup::UpToDate,
        Some(s) => Catchup::Replay { from: Seq(s.seq().0 + 1), to: Seq(APP_SEQ) },
    };
    prop_assert_eq!(&plan, &want);
    let fetched: Vec<Update> = match plan {
        Catchup::Replay { from, to } => history[c].iter().filter(|u| (from..=to).contains(&u.seq)).cloned().collect(),
        _ => Vec::new(),
    };
    let replayed = fetched.len();
    let frames = hub.catchup_frames(c, &plan, fetched, NOW);
    let (last, updates) = frames.split_last().expect("at least `subscribed`");
    let ServerFrame::Subscribed { channel, seq, recovered, .. } = last else {
        return Err(TestCaseError::fail(format!("catch-up ends with {last:?}")));
    };
    prop_assert_eq!(channel, c);
    prop_assert_eq!(*seq, Seq(if app { APP_SEQ } else { 0 }));
    prop_assert_eq!(*recovered, !matches!(plan, Catchup::Latest));
    for f in updates {
        prop_assert!(matches!(f, ServerFrame::Update(u) if &u.channel == c), "{:?}", f);
        round_trips(f)?;
    }
    match plan {
        Catchup::Replay { .. } => prop_assert_eq!(updates.len(), replayed),
        Catchup::UpToDate => prop_assert!(updates.is_empty()),
        Catchup::Latest => prop_assert_eq!(updates.len(), usize::from(app)),
    }
    Ok(())
}

fn check_connect(
    hub: &mut HubCore,
    history: &BTreeMap<Channel, Vec<Update>>,
    channels: Option<&str>,
    since: Option<&str>,
) -> Result<SocketMeta, TestCaseError> {
    let (meta, actions) = hub.connect("c0".to_owned(), channels, since);
    let inputs = [channels.unwrap_or_default(), since.unwrap_or_default()];
    let Some(Action::Send(welcome @ ServerFrame::Welcome { conn, channels: listed, .. })) = actions.first() else {
        return Err(TestCaseError::fail(format!("connect does not start with welcome: {actions:?}")));
    };
    prop_assert_eq!(conn, "c0");
    prop_assert_eq!(listed, &Channel::built_in(), "welcome lists the built-in channels");
    round_trips(welcome)?;

    let names: Vec<&str> = match channels {
        None => Channel::BUILT_IN.to_vec(),
        Some(list) => list.split(',').filter(|c| !c.is_empty()).collect(),
    };
    let distinct: HashSet<&str> = names.iter().copied().collect();
    let since_entries = since.map_or(0, |s| s.split(',').filter(|p| !p.is_empty()).count());
    let parsed_since = since.map(parse_since_param);

    let mut subscribed: Vec<Channel> = Vec::new();
    let mut since_errors = 0;
    for a in &actions[1..] {
        match a {
            Action::Subscribe(c, s) => {
                prop_assert!(distinct.contains(c.as_str()), "{} was not asked for", c);
                prop_assert!(hub.is_known(c));
                prop_assert!(!subscribed.contains(c), "{} twice", c);
                // The first `since` entry for the channel, if the parameter parsed.
                let want = match &parsed_since {
                    Some(Ok(list)) => list.iter().find(|(n, _)| n == c.as_str()).map(|(_, s)| s.clone()),
                    _ => None,
                };
                prop_assert_eq!(s, &want);
                check_catchup(hub, history, c, s.as_ref())?;
                subscribed.push(c.clone());
            }
            Action::Send(frame) => {
                let code = error_frame(frame, &inputs)?;
                prop_assert!(
                    matches!(
                        code,
                        ErrorCode::InvalidSince
                            | ErrorCode::InvalidChannel
                            | ErrorCode::UnknownChannel
                            | ErrorCode::TooManySubscriptions
                    ),
                    "{:?}",
                    code
                );
                since_errors += usize::from(code == ErrorCode::InvalidSince);
            }
            other => prop_assert!(false, "unexpected action on connect: {:?}", other),
        }
    }
    prop_assert_eq!(&meta.channels, &subscribed);
    prop_assert!(subscribed.len() <= hub.limits.max_subscriptions);
    // Welcome, at most one answer per distinct name, and one `invalid_since` for a `since`
    // that does not parse or per entry naming a channel not asked for.
    prop_assert!(since_errors <= since_entries.max(1));
    prop_assert!(
        actions.len() <= 1 + distinct.len() + since_entries.max(1),
        "{} actions for {} distinct names and {} since entries",
        actions.len(),
        distinct.len(),
        since_entries
    );
    Ok(meta)
}

/// One client text frame on an open socket.
fn check_message(
    hub: &mut HubCore,
    history: &BTreeMap<Channel, Vec<Update>>,
    meta: &mut SocketMeta,
    text: &str,
    now: u64,
) -> Result<(), TestCaseError> {
    let before = meta.channels.clone();
    let actions = hub.message(meta, text, now);
    let limits = hub.limits;
    if text.len() > limits.max_client_frame_bytes {
        prop_assert_eq!(actions, vec![Action::Close(CloseReason::TooBig)]);
        return Ok(());
    }
    if actions.iter().any(|a| matches!(a, Action::Close(_))) {
        prop_assert_eq!(actions.len(), 2);
        let rate_limited = matches!(&actions[0], Action::Send(ServerFrame::Error { code: ErrorCode::RateLimited, .. }));
        prop_assert!(rate_limited, "{:?}", actions);
        prop_assert_eq!(&actions[1], &Action::Close(CloseReason::RateLimited));
        return Ok(());
    }
    let json: Option<Value> = serde_json::from_str(text).ok();
    let distinct_names = json
        .as_ref()
        .and_then(|v| {
            v.get("channels")?.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<HashSet<_>>().len())
        })
        .unwrap_or(0);
    let since_entries = json.as_ref().and_then(|v| v.get("since")?.as_object().map(|m| m.len())).unwrap_or(0);

    let mut subscribed: Vec<Channel> = Vec::new();
    let mut unsubscribed: Vec<Channel> = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        match a {
            Action::Subscribe(c, s) => {
                prop_assert!(hub.is_known(c) && !before.contains(c) && !subscribed.contains(c), "{:?}", a);
                check_catchup(hub, history, c, s.as_ref())?;
                subscribed.push(c.clone());
            }
            Action::Held(c) => prop_assert!(before.contains(c), "{:?}", a),
            Action::Unsubscribe(c) => {
                prop_assert_eq!(
                    actions.get(i + 1),
                    Some(&Action::Send(ServerFrame::Unsubscribed { channel: c.clone() }))
                );
                unsubscribed.push(c.clone());
            }
            Action::Send(f @ ServerFrame::Unsubscribed { channel }) => {
                prop_assert!(i > 0 && actions[i - 1] == Action::Unsubscribe(channel.clone()));
                round_trips(f)?;
            }
            Action::Send(f) => {
                let code = error_frame(f, &[text])?;
                prop_assert!(code != ErrorCode::RateLimited);
            }
            Action::Close(_) => unreachable!("handled above"),
        }
    }
    prop_assert!(subscribed.is_empty() || unsubscribed.is_empty(), "one op per frame");
    let want: Vec<Channel> =
        before.iter().filter(|c| !unsubscribed.contains(c)).cloned().chain(subscribed.iter().cloned()).collect();
    prop_assert_eq!(&meta.channels, &want);
    prop_assert!(meta.channels.len() <= limits.max_subscriptions.max(before.len()));
    prop_assert!(
        actions.len() <= 1 + 2 * distinct_names + since_entries,
        "{} actions for {} distinct names and {} since entries: {:?}",
        actions.len(),
        distinct_names,
        since_entries,
        text
    );
    Ok(())
}

fn frame_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => client_frame(),
        2 => any_text(),
        // Past `max_client_frame_bytes` (4096 by default, 256 when tight).
        1 => (client_frame(), select(vec![257, 4097])).prop_map(|(f, n)| format!("{f}{}", " ".repeat(n))),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connect_any_params(
        app in any::<bool>(),
        tight in any::<bool>(),
        channels in weighted(0.8, any_text()),
        since in weighted(0.8, any_text()),
    ) {
        let (mut hub, history) = hub(app, tight);
        check_connect(&mut hub, &history, channels.as_deref(), since.as_deref())?;
    }

    #[test]
    fn connect_structured_params(
        app in any::<bool>(),
        tight in any::<bool>(),
        (channels, since) in connect_params(),
    ) {
        let (mut hub, history) = hub(app, tight);
        check_connect(&mut hub, &history, channels.as_deref(), since.as_deref())?;
    }

    #[test]
    fn messages_after_connect(
        app in any::<bool>(),
        tight in any::<bool>(),
        channels in weighted(0.5, channels_param()),
        frames in vec((frame_text(), 0u64..8_000), 1..7),
    ) {
        let (mut hub, history) = hub(app, tight);
        let mut meta = check_connect(&mut hub, &history, channels.as_deref(), None)?;
        let mut now = NOW;
        for (text, dt) in &frames {
            now += dt;
            check_message(&mut hub, &history, &mut meta, text, now)?;
        }
    }
}
