//! Property tests of the edges of the crate: publish bodies (`check_body`), URLs
//! (`split_url`, `query_param`) and storage keys (`StorageKey`).

mod common;

use common::client::{channel_name, seq_text};
use common::{any_text, config, mutated, obj, quoted, readable, value_lit};
use proptest::collection::vec;
use proptest::option::weighted;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};
use tickwire_hub::api::route::{query_param, split_url};
use tickwire_hub::core::publish::AppPublish;
use tickwire_hub::core::publish::{check_body, PublishRefusal};
use tickwire_hub::core::storage_key::StorageKey;
use tickwire_hub::wire::protocol::{Channel, Seq};

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
