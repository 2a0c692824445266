//! Property tests of tokens (`auth::verify`, `auth::mint`): arbitrary text and arbitrary
//! changes to a valid token never panic and are refused with a typed error; any valid claims
//! survive mint -> verify unchanged.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Map, Value};
use tickwire_hub::auth::{
    mint, verify, Capability, Caps, Claims, Keys, Subject, TokenError, LEEWAY_SECONDS, MAX_CAPS, MAX_SUB_BYTES,
};

const SECRET: &str = "props-secret-0123456789abcdefghijklmnop";
const NOW: u64 = 1_765_000_000;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

fn keys() -> Keys {
    Keys::new(Some(SECRET), Some("props-previous-0123456789abcdefghijklmn"))
}

fn valid_token() -> String {
    let mut c = Claims::new(Subject::parse("u42").unwrap(), NOW + 3600);
    c.caps =
        Caps::from_claim(&json!({"private-u42": ["subscribe"], "private-room-*": ["publish", "history"]})).unwrap();
    c.info = json!({"name": "Ann"}).as_object().cloned();
    mint(&c, SECRET)
}

/// Text that looks a little like a token: base64url soup with dots, padding and JSON punctuation.
fn tokenish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_\\-.=+/ ]{0,200}",
        "eyJ[A-Za-z0-9_\\-]{0,60}\\.[A-Za-z0-9_\\-]{0,60}\\.[A-Za-z0-9_\\-]{0,43}",
    ]
}

/// A change to a string: cut it, insert or replace one character, or swap two.
#[derive(Debug, Clone)]
enum Edit {
    Cut(Index),
    Insert(Index, char),
    Replace(Index, char),
    Swap(Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![select(vec!['.', '=', '+', '/', '-', '_', 'A', 'a', '0', 'e']), any::<char>()];
    prop_oneof![
        any::<Index>().prop_map(Edit::Cut),
        (any::<Index>(), c.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<Index>(), c).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
    ]
}

/// Applies edits to an ASCII string (a token is ASCII; inserted characters may not be).
fn apply(token: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    for e in edits {
        let n = chars.len();
        match e {
            Edit::Cut(i) => chars.truncate(i.index(n + 1)),
            Edit::Insert(i, c) => chars.insert(i.index(n + 1), *c),
            Edit::Replace(i, c) if !chars.is_empty() => {
                let at = i.index(chars.len());
                chars[at] = *c;
            }
            Edit::Swap(a, b) if !chars.is_empty() => chars.swap(a.index(n), b.index(n)),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn capability() -> impl Strategy<Value = Capability> {
    select(Capability::ALL.to_vec())
}

/// A caps key: a channel name, a name prefix with `*`, or `*`.
fn caps_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9_-]{0,31}",
        "[a-z0-9][a-z0-9_-]{0,31}".prop_map(|p| format!("{p}*")),
        Just("*".to_owned()),
    ]
}

fn caps() -> impl Strategy<Value = Caps> {
    btree_map(caps_key(), vec(capability(), 0..5), 0..=MAX_CAPS).prop_map(|m| {
        let value = Value::Object(
            m.into_iter()
                .map(|(k, cs)| (k, Value::Array(cs.into_iter().map(|c| c.label().into()).collect())))
                .collect::<Map<_, _>>(),
        );
        Caps::from_claim(&value).unwrap()
    })
}

fn claims() -> impl Strategy<Value = Claims> {
    let sub = any::<String>().prop_filter_map("1..=64 bytes", |s| {
        let mut end = s.len().min(MAX_SUB_BYTES);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Subject::parse(&s[..end]).ok()
    });
    let info = option::of(
        btree_map("[a-z]{1,8}", "[ -~]{0,20}", 0..5)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<String, Value>>()),
    );
    (sub, NOW..u64::MAX / 2, option::of(0..NOW), option::of(any::<u64>()), caps(), info)
        .prop_map(|(sub, exp, nbf, iat, caps, info)| Claims { sub, exp, nbf, iat, caps, info })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_is_refused(text in tokenish(), now in any::<u64>()) {
        let got = verify(&text, &keys(), now);
        prop_assert!(got.is_err(), "{text:?} verified");
        if let Err(e) = got {
            prop_assert!(TokenError::REASONS.contains(&e.reason()));
            prop_assert!(!e.to_string().contains(SECRET));
        }
    }

    #[test]
    fn any_change_to_a_valid_token_is_refused(edits in vec(edit(), 1..4)) {
        let token = valid_token();
        prop_assert!(verify(&token, &keys(), NOW).is_ok());
        let changed = apply(&token, &edits);
        let got = verify(&changed, &keys(), NOW);
        // Unpadded base64url has one spelling per byte string, so any other text is other bytes
        // (or no bytes at all), and other signed bytes or another signature never verify.
        if changed != token {
            prop_assert!(got.is_err(), "{changed} verified");
        }
    }

    #[test]
    fn mint_then_verify_round_trips(c in claims(), back in 0..LEEWAY_SECONDS) {
        let token = mint(&c, SECRET);
        prop_assert_eq!(verify(&token, &keys(), NOW - back), Ok(c.clone()));
        prop_assert_eq!(verify(&token, &keys(), c.exp + LEEWAY_SECONDS + 1), Err(TokenError::Expired));
    }

    #[test]
    fn caps_compact_form_round_trips(c in caps(), channel in "[a-z0-9][a-z0-9_-]{0,31}", cap in capability()) {
        let back: Caps = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        prop_assert_eq!(back.allows(&channel, cap), c.allows(&channel, cap));
        let again = Caps::from_claim(&c.to_claim()).unwrap();
        prop_assert_eq!(again, c);
    }
}
