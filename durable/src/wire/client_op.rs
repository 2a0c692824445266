//! The frames a client sends over `/ws`, decoded: each op with its fields checked, or the
//! `error` frame it deserves.

use crate::wire::every::{every_of_ms, invalid_every, Every};
use crate::wire::protocol::{truncate, ErrorCode, ServerFrame, Since};
use serde_json::Value;

/// Longest publish `id` a client may attach (bytes): it is echoed in `published` or `error`.
pub const MAX_PUBLISH_ID_LEN: usize = 64;

/// A client frame, decoded. Channel names stay strings here so that one bad name gets its
/// own `error` without failing the others.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientOp {
    /// `{"op":"subscribe","channels":[..],"since":{..},"every_ms":1000}`; `every` applies to
    /// every channel of the op, and an interval outside the set is the `error` frame it gets
    /// (its channels are then subscribed unconflated).
    Subscribe { channels: Vec<String>, since: Vec<(String, Since)>, every: Option<Result<Every, ServerFrame>> },
    /// `{"op":"unsubscribe","channels":[..]}`
    Unsubscribe { channels: Vec<String> },
    /// `{"op":"auth","token":"<jwt>"}`: present a token, or replace the socket's (a refresh).
    Auth { token: String },
    /// `{"op":"publish","channel":"c","data":<json>,"id":"..."}`: sequenced like an API publish.
    Publish { channel: String, data: Value, id: Option<String> },
}

/// Decodes a client text frame, or says which error frame it deserves.
pub fn parse_client_frame(text: &str) -> Result<ClientOp, ServerFrame> {
    let mut value: Value = serde_json::from_str(text)
        .map_err(|e| ServerFrame::error(ErrorCode::BadJson, format!("frame is not JSON: {e}")))?;
    let op = value.get("op").and_then(Value::as_str).unwrap_or_default().to_owned();
    let channels = |value: &Value| -> Result<Vec<String>, ServerFrame> {
        match value.get("channels") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|c| c.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ServerFrame::error(ErrorCode::BadJson, "\"channels\" must be an array of strings")),
            _ => Err(ServerFrame::error(ErrorCode::BadJson, "\"channels\" must be an array of strings")),
        }
    };
    let string = |value: &Value, field: &str| -> Option<String> { value.get(field)?.as_str().map(str::to_owned) };
    match op.as_str() {
        "subscribe" => {
            let since = match value.get("since") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(c, v)| {
                        serde_json::from_value::<Since>(v.clone()).map(|s| (c.clone(), s)).map_err(|_| {
                            ServerFrame::error(
                                ErrorCode::InvalidSince,
                                format!("since for {c:?} must be a seq number or {{\"seq\":N,\"epoch\":\"...\"}}"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(ServerFrame::error(ErrorCode::InvalidSince, "\"since\" must be an object")),
            };
            let every = match value.get("every_ms") {
                None | Some(Value::Null) => None,
                Some(ms) => Some(ms.as_u64().ok_or_else(|| invalid_every(&ms.to_string())).and_then(every_of_ms)),
            };
            Ok(ClientOp::Subscribe { channels: channels(&value)?, since, every })
        }
        "unsubscribe" => Ok(ClientOp::Unsubscribe { channels: channels(&value)? }),
        "auth" => match string(&value, "token") {
            Some(token) => Ok(ClientOp::Auth { token }),
            // Never quoted back: whatever stands in "token" may be a secret.
            None => Err(ServerFrame::error(ErrorCode::BadJson, "\"token\" must be a string")),
        },
        "publish" => {
            let id = match value.get("id") {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) if id.len() <= MAX_PUBLISH_ID_LEN => Some(id.clone()),
                Some(_) => {
                    let msg = format!("\"id\" must be a string of at most {MAX_PUBLISH_ID_LEN} bytes");
                    return Err(ServerFrame::error(ErrorCode::BadJson, msg));
                }
            };
            let refuse = |msg: &str| Err(ServerFrame::error(ErrorCode::BadJson, msg).with_id(id.clone()));
            let Some(channel) = string(&value, "channel") else {
                return refuse("\"channel\" must be a string");
            };
            // Taken out rather than cloned: `data` is most of the frame.
            match value.as_object_mut().and_then(|o| o.remove("data")) {
                Some(data) => Ok(ClientOp::Publish { channel, data, id }),
                None => refuse("\"data\" is missing"),
            }
        }
        "" => Err(ServerFrame::error(ErrorCode::UnknownOp, "frame has no \"op\"")),
        other => Err(ServerFrame::error(
            ErrorCode::UnknownOp,
            format!("unknown op {:?}; use subscribe, unsubscribe, auth or publish", truncate(other, 40)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::protocol::Epoch;
    use serde_json::json;

    #[test]
    fn client_frames_decode() {
        assert_eq!(
            parse_client_frame(
                r#"{"op":"subscribe","channels":["btc","x"],"since":{"btc":41,"x":{"seq":2,"epoch":"ab"}}}"#
            ),
            Ok(ClientOp::Subscribe {
                channels: vec!["btc".into(), "x".into()],
                since: vec![
                    ("btc".into(), Since::Seq(41)),
                    ("x".into(), Since::At { seq: 2, epoch: Some(Epoch("ab".into())) })
                ],
                every: None,
            })
        );
        assert_eq!(
            parse_client_frame(r#"{"op":"unsubscribe","channels":["btc"]}"#),
            Ok(ClientOp::Unsubscribe { channels: vec!["btc".into()] })
        );
        let code = |t: &str| match parse_client_frame(t) {
            Err(ServerFrame::Error { code, .. }) => code,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(code("nope"), ErrorCode::BadJson);
        assert_eq!(code("[]"), ErrorCode::UnknownOp);
        assert_eq!(code(r#"{"op":"dance"}"#), ErrorCode::UnknownOp);
        assert_eq!(code(r#"{"op":"subscribe"}"#), ErrorCode::BadJson);
        assert_eq!(code(r#"{"op":"subscribe","channels":[1]}"#), ErrorCode::BadJson);
        assert_eq!(code(r#"{"op":"subscribe","channels":["btc"],"since":{"btc":-1}}"#), ErrorCode::InvalidSince);
        assert_eq!(code(r#"{"op":"subscribe","channels":["btc"],"since":[1]}"#), ErrorCode::InvalidSince);
    }

    #[test]
    fn subscribe_may_ask_for_an_interval() {
        let every = |t: &str| match parse_client_frame(t) {
            Ok(ClientOp::Subscribe { every, .. }) => every,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(every(r#"{"op":"subscribe","channels":["btc"],"every_ms":1000}"#), Some(Ok(Every::S1)));
        assert_eq!(every(r#"{"op":"subscribe","channels":["btc"],"every_ms":null}"#), None);
        for bad in ["7", "\"1s\"", "-250", "250.5"] {
            let t = format!(r#"{{"op":"subscribe","channels":["btc"],"every_ms":{bad}}}"#);
            let e = every(&t).and_then(Result::err).map(|f| f.to_json()).unwrap_or_default();
            assert!(e.contains("invalid_every"), "{t}: {e}");
        }
    }

    #[test]
    fn auth_and_publish_decode() {
        assert_eq!(
            parse_client_frame(r#"{"op":"auth","token":"a.b.c"}"#),
            Ok(ClientOp::Auth { token: "a.b.c".into() })
        );
        assert_eq!(
            parse_client_frame(r#"{"op":"publish","channel":"room","data":{"x":[1]},"id":"p1"}"#),
            Ok(ClientOp::Publish { channel: "room".into(), data: json!({"x":[1]}), id: Some("p1".into()) })
        );
        assert_eq!(
            parse_client_frame(r#"{"op":"publish","channel":"room","data":null}"#),
            Ok(ClientOp::Publish { channel: "room".into(), data: Value::Null, id: None })
        );
        let refused = |t: &str| parse_client_frame(t).err().unwrap_or_else(|| panic!("{t} was accepted"));
        let secret = "s3cret-token-text";
        let e = refused(&format!(r#"{{"op":"auth","token":{{"t":"{secret}"}}}}"#)).to_json();
        assert!(!e.contains(secret), "a token is never quoted back: {e}");
        assert!(refused(r#"{"op":"auth"}"#).to_json().contains("bad_json"));
        let no_data = refused(r#"{"op":"publish","channel":"room","id":"p2"}"#);
        assert!(matches!(&no_data, ServerFrame::Error { id: Some(id), .. } if id == "p2"), "{no_data:?}");
        let long_id = format!(r#"{{"op":"publish","channel":"room","data":1,"id":"{}"}}"#, "x".repeat(65));
        assert!(refused(&long_id).to_json().contains("bad_json"));
        assert!(refused(r#"{"op":"publish","data":1}"#).to_json().contains("bad_json"));
    }
}
