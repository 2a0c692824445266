//! `tickwire publish`: one `POST /api/publish`, and what its answer means for the user: the
//! `{"channel","seq"}` line on success, otherwise a one-line reason and a distinct exit code.

use crate::errors::short_line;
use crate::exit::Exit;
use crate::http::{self, Answer};
use serde::Deserialize;
use serde_json::{json, Value};
use tickwire_hub::wire::bodies::Published;
use tickwire_hub::wire::protocol::Channel;

/// The outcome: a line for stdout and exit 0, or a line for stderr and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Published(String),
    Refused(Exit, String),
}

/// Which token the publish was sent with: what a refusal asks the user to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The server's `PUBLISH_TOKEN`, from `TICKWIRE_TOKEN` (or none).
    PublishToken,
    /// A user token (`--token`, `TICKWIRE_USER_TOKEN`), which needs `publish` for the channel.
    UserToken,
}

/// The API's error body: `{"error":{"code","message"}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// The request body for `channel` and `data`.
pub fn body(channel: &Channel, data: &Value) -> String {
    json!({ "channel": channel, "data": data }).to_string()
}

/// What the answer to a publish sent with `credential` means.
pub fn outcome(a: &Answer, credential: Credential) -> Outcome {
    if a.status == 202 {
        return match serde_json::from_str::<Published>(&a.body) {
            Ok(p) => Outcome::Published(json!({ "channel": p.channel, "seq": p.seq }).to_string()),
            Err(_) => Outcome::Refused(Exit::Failure, format!("202 with an unexpected body: {}", snippet(&a.body))),
        };
    }
    let (code, message) = match serde_json::from_str::<ErrorBody>(&a.body) {
        Ok(e) => (e.error.code, e.error.message),
        Err(_) => (String::new(), snippet(&a.body)),
    };
    let server = if code.is_empty() { message.clone() } else { format!("{code}: {message}") };
    let retry = |what: &str| match &a.retry_after {
        Some(s) => format!("{what}; retry after {s} s ({server})"),
        None => format!("{what}; retry later ({server})"),
    };
    let user = credential == Credential::UserToken;
    let (exit, line) = match (a.status, code.as_str()) {
        (401, "token_expired") if user => {
            (Exit::Auth, format!("401: the user token expired: mint a new one ({server})"))
        }
        (401, _) if user => (Exit::Auth, format!("401: the user token was refused ({server})")),
        (403, "forbidden") if user => {
            (Exit::Auth, format!("403: the user token does not grant publish on this channel ({server})"))
        }
        (401, _) => {
            (Exit::Auth, format!("401 unauthorized: set TICKWIRE_TOKEN to the server's PUBLISH_TOKEN ({server})"))
        }
        (403, "publish_disabled") => {
            (Exit::Auth, format!("403: publishing is off on this server: it has no PUBLISH_TOKEN ({server})"))
        }
        (403, "forbidden") => (Exit::Auth, format!("403: the token in TICKWIRE_TOKEN was refused ({server})")),
        (413, _) => (Exit::TooLarge, format!("413: the message is too large ({server})")),
        (429, _) => (Exit::TryLater, retry("429: rate limited")),
        (503, _) => (Exit::TryLater, retry("503: the server is busy or unavailable")),
        (s, _) if (400..500).contains(&s) => (Exit::Refused, format!("{s}: refused ({server})")),
        (s, _) => (Exit::Failure, format!("{s}: server error ({server})")),
    };
    Outcome::Refused(exit, line)
}

/// A body quoted in an error: one line, at most 200 characters of it and `…` when cut.
fn snippet(body: &str) -> String {
    let line = short_line(body, 201, true);
    if line.is_empty() {
        "empty body".to_owned()
    } else {
        line
    }
}

/// Sends the publish; a failure to reach the server is `Err` with one line.
pub fn send(url: &str, token: Option<&str>, body: String) -> Result<Answer, String> {
    let mut req = http::agent().post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = req.send(body).map_err(|e| http::describe(url, &e))?;
    http::answer(url, resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
        outcome(
            &Answer { status, retry_after: retry_after.map(str::to_owned), body: body.to_owned() },
            Credential::PublishToken,
        )
    }

    fn user(status: u16, body: &str) -> Outcome {
        let answer = Answer { status, retry_after: None, body: body.to_owned() };
        outcome(&answer, Credential::UserToken)
    }

    #[test]
    fn a_user_token_refused_says_so() {
        let cases = [
            (user(401, &err("unauthorized", "token signature does not verify")), "user token was refused"),
            (user(401, &err("token_expired", "token expired")), "expired: mint a new one"),
            (user(403, &err("forbidden", "no publish on private-b")), "does not grant publish"),
        ];
        for (got, says) in cases {
            match got {
                Outcome::Refused(Exit::Auth, line) => {
                    assert!(line.contains(says) && !line.contains("TICKWIRE_TOKEN"), "{line}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(user(403, &err("channel_reserved", "built-in")), Outcome::Refused(Exit::Refused, _)));
        assert!(matches!(user(202, r#"{"seq":1,"channel":"private-a"}"#), Outcome::Published(_)));
    }

    fn err(code: &str, message: &str) -> String {
        json!({"error": {"code": code, "message": message}}).to_string()
    }

    #[test]
    fn accepted_prints_channel_and_seq() {
        assert_eq!(
            a(202, None, r#"{"seq":3,"channel":"news"}"#),
            Outcome::Published(r#"{"channel":"news","seq":3}"#.into())
        );
        match a(202, None, "<html>") {
            Outcome::Refused(Exit::Failure, line) => assert!(line.contains("<html>"), "{line}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals_map_to_exit_codes_and_say_what_to_do() {
        let cases = [
            (a(401, None, &err("unauthorized", "bearer token required")), Exit::Auth, "set TICKWIRE_TOKEN"),
            (a(403, None, &err("forbidden", "wrong token")), Exit::Auth, "was refused"),
            (a(403, None, &err("publish_disabled", "no token set")), Exit::Auth, "publishing is off"),
            (a(403, None, &err("channel_reserved", "built-in")), Exit::Refused, "channel_reserved: built-in"),
            (a(413, None, &err("payload_too_large", "body larger than 65536 bytes")), Exit::TooLarge, "65536 bytes"),
            (a(429, Some("30"), &err("rate_limited", "slow down")), Exit::TryLater, "retry after 30 s"),
            (a(503, Some("1"), &err("overloaded", "too many updates")), Exit::TryLater, "retry after 1 s (overloaded"),
            (a(503, None, &err("hub_unavailable", "x")), Exit::TryLater, "retry later (hub_unavailable: x)"),
            (
                a(400, None, &err("invalid_channel", "bad name")),
                Exit::Refused,
                "400: refused (invalid_channel: bad name)",
            ),
            (a(409, None, &err("too_many_channels", "1000 exist")), Exit::Refused, "too_many_channels"),
            (a(404, None, "Not Found"), Exit::Refused, "404: refused (Not Found)"),
            (a(500, None, &err("internal", "oops")), Exit::Failure, "500: server error (internal: oops)"),
            (a(502, None, ""), Exit::Failure, "empty body"),
        ];
        for (got, exit, says) in cases {
            match got {
                Outcome::Refused(e, line) => {
                    assert_eq!(e, exit, "{line}");
                    assert!(line.contains(says), "{line} lacks {says}");
                    assert!(!line.contains('\n'), "{line}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn long_or_multiline_bodies_are_cut_to_one_line() {
        let s = snippet(&format!("a\nb\r\n{}", "x".repeat(500)));
        assert!(s.starts_with("a b xxx") && s.ends_with('…') && s.chars().count() == 201, "{s}");
    }

    #[test]
    fn the_body_is_channel_and_data() {
        let v: Value = serde_json::from_str(&body(&Channel::btc(), &json!({"a": [1]}))).unwrap();
        assert_eq!(v, json!({"channel": "btc", "data": {"a": [1]}}));
    }
}
