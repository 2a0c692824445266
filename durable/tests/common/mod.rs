//! Shared generators and checks of the property tests (`props_*.rs`): arbitrary and
//! structured-but-mutated input to the parsers a client, an app or an upstream can reach never
//! panics and always yields a typed result or error.
//!
//! Each input family has two generators: fully arbitrary text or bytes, and the expected shape
//! with random values, types and separators, sometimes cut short or with one character changed,
//! so cases reach past the first parse error. Only the crate's public API is used. Everything
//! here is used by every test file; what only some use (client input) is in `client`.

pub mod client;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::Value;

/// Cases per property: each test file stays well under 10 s in a debug build.
const CASES: u32 = 256;

/// No `proptest-regressions/` files are written into the repository.
pub fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Any text: arbitrary Unicode, printable ASCII, or a soup of JSON punctuation.
pub fn any_text() -> BoxedStrategy<String> {
    prop_oneof![any::<String>(), "[ -~]{0,80}", r#"[{}\[\]":,.0-9a-z@ eE+-]{0,80}"#].boxed()
}

/// A small edit applied to structured text: most cases stay intact, the rest are cut short,
/// or get one character inserted, removed, or replaced by JSON punctuation.
#[derive(Debug, Clone)]
pub struct Mutation {
    how: u8,
    at: Index,
    c: char,
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    (0u8..16, any::<Index>(), prop_oneof![any::<char>(), select(vec!['"', ',', ':', '{', '}', '[', ']', '\\', '@'])])
        .prop_map(|(how, at, c)| Mutation { how, at, c })
}

impl Mutation {
    pub fn apply(&self, mut s: String) -> String {
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

pub fn mutated(base: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (base, mutation()).prop_map(|(s, m)| m.apply(s))
}

/// A JSON string literal holding `s`.
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// JSON number literals, including ones past u64 and f64 and fractions where integers belong.
pub fn number_lit() -> BoxedStrategy<String> {
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
pub fn value_lit() -> BoxedStrategy<String> {
    prop_oneof![
        12 => json_value().prop_map(|v| v.to_string()),
        8 => number_lit(),
        4 => ".{0,12}".prop_map(|s| quoted(&s)),
        1 => broken_lit(),
    ]
    .boxed()
}

/// A JSON object's text from (key, value text) fields; absent fields are left out.
pub fn obj<K: AsRef<str>>(fields: impl IntoIterator<Item = (K, Option<String>)>) -> String {
    let fields: Vec<String> =
        fields.into_iter().filter_map(|(k, v)| v.map(|v| format!("{}:{v}", quoted(k.as_ref())))).collect();
    format!("{{{}}}", fields.join(","))
}

pub fn array(items: Vec<String>) -> String {
    format!("[{}]", items.join(","))
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
pub fn readable(message: &str, inputs: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(!message.trim().is_empty(), "empty message");
    for pat in DEBUG_TEXT {
        if inputs.iter().all(|i| !i.contains(pat)) {
            prop_assert!(!message.contains(pat), "message {:?} holds Rust debug text {:?}", message, pat);
        }
    }
    Ok(())
}
