//! Property tests of the client protocol parsers: `Channel::parse`, `parse_client_frame` and
//! `parse_since_param` (`?since=`).

mod common;

use common::client::{channel_name, client_frame, error_frame, joined, list_sep, since_entry, MAX_CLIENT_MESSAGE};
use common::{any_text, config, mutated, quoted, readable};
use proptest::collection::vec;
use proptest::option::weighted;
use proptest::prelude::*;
use serde_json::Value;
use tickwire_hub::wire::client_op::{parse_client_frame, ClientOp};
use tickwire_hub::wire::protocol::{parse_since_param, Channel, Epoch, ErrorCode, Since, MAX_CHANNEL_LEN};

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

fn check_client_frame(text: &str) -> Result<(), TestCaseError> {
    let json: Option<Value> = serde_json::from_str(text).ok();
    let op = json.as_ref().and_then(|v| v.get("op")).and_then(Value::as_str);
    match parse_client_frame(text) {
        Ok(parsed) => {
            let v = json.as_ref().expect("an accepted frame is JSON");
            let want_channels = || -> Vec<String> {
                v["channels"]
                    .as_array()
                    .expect("an accepted subscribe or unsubscribe has a channels array")
                    .iter()
                    .map(|c| c.as_str().expect("of strings").to_owned())
                    .collect()
            };
            match parsed {
                ClientOp::Subscribe { channels, since, .. } => {
                    prop_assert_eq!(op, Some("subscribe"));
                    prop_assert_eq!(channels, want_channels());
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
                    prop_assert_eq!(channels, want_channels());
                }
                ClientOp::Auth { token } => {
                    prop_assert_eq!(op, Some("auth"));
                    prop_assert_eq!(Some(token.as_str()), v["token"].as_str());
                }
                ClientOp::Publish { channel, data, id } => {
                    prop_assert_eq!(op, Some("publish"));
                    prop_assert_eq!(Some(channel.as_str()), v["channel"].as_str());
                    prop_assert_eq!(&data, &v["data"]);
                    prop_assert_eq!(id.as_deref(), v["id"].as_str());
                }
            }
        }
        Err(frame) => {
            let code = error_frame(&frame, &[text])?;
            let want: &[ErrorCode] = match (&json, op) {
                (None, _) => &[ErrorCode::BadJson],
                (Some(_), None | Some("")) => &[ErrorCode::UnknownOp],
                (Some(_), Some("subscribe")) => &[ErrorCode::BadJson, ErrorCode::InvalidSince],
                (Some(_), Some("unsubscribe" | "auth" | "publish")) => &[ErrorCode::BadJson],
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
