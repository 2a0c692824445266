//! Alternative.me `/fng/`: the Crypto Fear & Greed index for the `sentiment` channel.
//!
//! Documented shape: `{"data":[{"value":"62","value_classification":"Greed","timestamp":"..."}]}`
//! (the value is a string holding an integer 0..100). The classification is upstream text shown
//! by every client, so it is kept to [`printable`] text.

use super::{parse_json, printable, FeedError};
use crate::wire::values::Sentiment;
use serde_json::Value;

pub const FNG_PATH: &str = "/fng/";

pub fn parse_fng(body: &str) -> Result<Sentiment, FeedError> {
    let json = parse_json(body)?;
    let entry = json
        .get("data")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or_else(|| FeedError::Parse("no \"data\" entries".into()))?;
    let raw = entry.get("value").ok_or_else(|| FeedError::Parse("data[0].value is missing".into()))?;
    // Documented as a string; accept a plain number too.
    let value = match raw {
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .filter(|v| *v <= 100)
    .ok_or_else(|| FeedError::Parse(format!("data[0].value {raw} is not an integer 0..100")))?;
    let classification = entry
        .get("value_classification")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.chars().count() <= 40)
        .ok_or_else(|| FeedError::Parse("data[0].value_classification is missing".into()))?;
    Ok(Sentiment { value: value as u8, classification: printable(classification) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_shape() {
        let body = r#"{"name":"Fear and Greed Index","data":[{"value":"62","value_classification":"Greed","timestamp":"1700000000"}]}"#;
        assert_eq!(parse_fng(body).unwrap(), Sentiment { value: 62, classification: "Greed".into() });
        let body = r#"{"data":[{"value":7,"value_classification":"Extreme Fear"}]}"#;
        assert_eq!(parse_fng(body).unwrap().value, 7);
    }

    #[test]
    fn the_classification_reaches_clients_as_printable_text() {
        let body = r#"{"data":[{"value":"62","value_classification":"\u001b]52;c;aGk=\u0007Gr\u202eeed\u009b2J"}]}"#;
        let c = parse_fng(body).unwrap().classification;
        assert_eq!(c, "\u{FFFD}]52;c;aGk=\u{FFFD}Gr\u{FFFD}eed\u{FFFD}2J");
        assert!(!c.chars().any(|ch| ch.is_control() || ch == '\u{202E}'), "{c:?}");
    }

    #[test]
    fn broken_variants() {
        for (body, why) in [
            ("<html>", "not JSON"),
            (r#"{"data":[]}"#, "no \"data\""),
            (r#"{"data":[{"value_classification":"Greed"}]}"#, "value is missing"),
            (r#"{"data":[{"value":"abc","value_classification":"Greed"}]}"#, "not an integer"),
            (r#"{"data":[{"value":"101","value_classification":"Greed"}]}"#, "not an integer"),
            (r#"{"data":[{"value":"-1","value_classification":"Greed"}]}"#, "not an integer"),
            (r#"{"data":[{"value":"50"}]}"#, "classification is missing"),
        ] {
            match parse_fng(body) {
                Err(FeedError::Parse(m)) => assert!(m.contains(why), "{body}: {m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
