//! Alternative.me `/fng/`: the Crypto Fear & Greed index for the `sentiment` channel.
//!
//! Documented shape: `{"data":[{"value":"62","value_classification":"Greed","timestamp":"..."}]}`
//! (the value is a string holding an integer 0..100).

use super::{parse_json, FeedError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const FNG_PATH: &str = "/fng/";

/// The `sentiment` channel's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// 0 (extreme fear) ..= 100 (extreme greed).
    pub value: u8,
    pub classification: String,
}

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
        .filter(|c| !c.is_empty() && c.len() <= 40)
        .ok_or_else(|| FeedError::Parse("data[0].value_classification is missing".into()))?;
    Ok(Sentiment { value: value as u8, classification: classification.to_owned() })
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
