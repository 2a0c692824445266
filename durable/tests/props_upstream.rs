//! Property tests of the upstream feed parsers: `parse_fng`, `parse_simple_price`,
//! `parse_global` and `parse_chart`.

mod common;

use common::{any_text, array, config, mutated, mutation, number_lit, obj, quoted, readable, value_lit};
use proptest::collection::vec;
use proptest::option::weighted;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;
use std::collections::HashSet;
use tickwire_hub::feeds::alternative_me::parse_fng;
use tickwire_hub::feeds::coingecko::{parse_chart, parse_global, parse_simple_price};
use tickwire_hub::feeds::status::Outcome;
use tickwire_hub::feeds::{printable, FeedError, REPLACEMENT};

/// A field that is usually there, usually with a plausible value.
fn field(good: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Option<String>> {
    weighted(0.95, prop_oneof![9 => good, 1 => value_lit()]).boxed()
}

fn float_text(lo: f64, hi: f64) -> impl Strategy<Value = String> {
    (lo..hi).prop_map(|f| f.to_string())
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
            prop_assert!(!s.classification.is_empty() && s.classification.chars().count() <= 40);
            prop_assert!(!s.classification.chars().any(char::is_control), "{:?}", s.classification);
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
        Ok(answer) => {
            // Every tracked coin (and bitcoin, which `btc` needs) is judged, once.
            let mut want: HashSet<&str> = coins.iter().map(String::as_str).collect();
            want.insert("bitcoin");
            let judged: Vec<&str> = answer.quotes.keys().chain(answer.unusable.keys()).map(String::as_str).collect();
            prop_assert_eq!(judged.len(), want.len());
            prop_assert_eq!(judged.into_iter().collect::<HashSet<_>>(), want);
            prop_assert!(answer.quotes.contains_key("bitcoin"), "no usable bitcoin must be an error");
            let v: Value = serde_json::from_str(body).expect("accepted body is JSON");
            for (id, q) in &answer.quotes {
                prop_assert!(q.price_usd.is_finite() && q.price_usd > 0.0);
                prop_assert_eq!(v[id]["usd"].as_f64(), Some(q.price_usd));
                prop_assert!(q.change_24h_pct.is_none_or(|c| (-100.0..=1000.0).contains(&c)));
                // Unknown only where the upstream said nothing: never a number turned into null.
                prop_assert_eq!(q.change_24h_pct, v[id]["usd_24h_change"].as_f64());
                prop_assert!(q.market_cap_usd.is_none_or(|c| c.is_finite() && c >= 0.0));
                prop_assert!(q.volume_24h_usd.is_none_or(|c| c.is_finite() && c >= 0.0));
                prop_assert!(!q.stale && q.quoted_at.is_none());
            }
            for why in answer.unusable.values() {
                readable(why, &[body])?;
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
    fn printable_lets_no_control_through_and_keeps_the_rest(text in any_text()) {
        let out = printable(&text);
        prop_assert_eq!(out.chars().count(), text.chars().count(), "one for one");
        for (a, b) in text.chars().zip(out.chars()) {
            let steers = a.is_control() || matches!(a as u32, 0x61C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069 | 0x2028 | 0x2029);
            prop_assert_eq!(b, if steers { REPLACEMENT } else { a }, "{:?}", a);
        }
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
