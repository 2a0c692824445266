//! The HTTP API as an application meets it: every publish error with its status and JSON body,
//! history pages, CORS, the WebSocket origin check, and a published message reaching a socket.

use crate::harness::{Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;

const FRAME_WAIT: Duration = Duration::from_secs(3);

/// A raw answer: status, headers (lower-case names) and body.
struct Raw {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts the documented error shape `{"error":{"code","message"}}`.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{code}: {}", self.body);
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert_eq!(self.headers.get("content-type").map(String::as_str), Some("application/json"));
    }
}

fn request(w: &Wrangler, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Raw {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(format!("{}{path}", w.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let result = match body {
        Some(b) => agent.run(req.body(b.as_bytes().to_vec()).expect("request")),
        None => agent.run(req.body(()).expect("request")),
    };
    let mut resp = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Raw { status: resp.status().as_u16(), headers, body }
}

fn publish(w: &Wrangler, headers: &[(&str, &str)], body: &str) -> Raw {
    request(w, "POST", "/api/publish", headers, Some(body))
}

const BEARER: &str = "Bearer test-token";
const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn every_publish_error_has_its_status_and_json_body() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("MAX_PUBLISH_BYTES", "256")]);
    let auth = ("authorization", BEARER);
    let good = r#"{"channel":"news","data":{"headline":"hello"}}"#;

    publish(&w, &[JSON], good).assert_error(401, "unauthorized");
    publish(&w, &[JSON, ("authorization", "Basic dGVzdA==")], good).assert_error(401, "unauthorized");
    publish(&w, &[JSON, ("authorization", "Bearer test-tokeN")], good).assert_error(403, "forbidden");
    publish(&w, &[auth, ("content-type", "text/plain")], good).assert_error(415, "unsupported_media_type");
    publish(&w, &[auth], good).assert_error(415, "unsupported_media_type");
    let big = format!(r#"{{"channel":"news","data":"{}"}}"#, "x".repeat(300));
    publish(&w, &[auth, JSON], &big).assert_error(413, "payload_too_large");
    publish(&w, &[auth, JSON], "{not json").assert_error(400, "bad_json");
    publish(&w, &[auth, JSON], r#"{"channel":"news"}"#).assert_error(400, "bad_json");
    publish(&w, &[auth, JSON], r#"{"channel":"No Way","data":1}"#).assert_error(400, "invalid_channel");
    publish(&w, &[auth, JSON], r#"{"channel":"btc","data":1}"#).assert_error(403, "channel_reserved");
    let r = request(&w, "GET", "/api/publish", &[], None);
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.headers.get("allow").map(String::as_str), Some("POST, OPTIONS"));
    let r = request(&w, "DELETE", "/api/snapshot", &[], None);
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.headers.get("allow").map(String::as_str), Some("GET, OPTIONS"));
    request(&w, "GET", "/api/nothing", &[], None).assert_error(404, "not_found");

    // None of the refusals used a seq: the first good publish gets 1, and a socket gets it.
    let mut c = w.client("/ws?channels=");
    let r = publish(&w, &[auth, JSON], good);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json(), json!({"channel": "news", "seq": 1}));
    assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(r.headers.get("cache-control").map(String::as_str), Some("no-store"));
    assert_eq!(r.headers.get("access-control-allow-origin"), None, "no Origin, no CORS grant");
    c.send_json(&json!({"op": "subscribe", "channels": ["news"]}));
    let (ups, _) = c.catch_up("news", FRAME_WAIT);
    assert_eq!(ups.len(), 1);
    assert_eq!((ups[0]["seq"].clone(), ups[0]["data"].clone()), (json!(1), json!({"headline": "hello"})));
    let r = publish(&w, &[auth, ("content-type", "application/json; charset=utf-8")], good);
    assert_eq!(r.json()["seq"], 2);
    let u = c.expect("live publish", FRAME_WAIT, |v| v["type"] == "update" && v["channel"] == "news");
    assert_eq!(u["seq"], 2, "the socket sees the seq the publisher was given");
    w.assert_no_panic();
}

#[test]
fn publishing_is_off_without_a_token() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    let r = publish(&w, &[JSON, ("authorization", BEARER)], r#"{"channel":"news","data":1}"#);
    r.assert_error(403, "publish_disabled");
}

#[test]
fn history_pages_are_bounded_and_checked() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("HISTORY_LEN", "5")]);
    for n in 1..=8 {
        assert_eq!(w.publish_seq("news", json!({ "n": n })), n);
    }
    let page = |q: &str| request(&w, "GET", &format!("/api/history?{q}"), &[], None);
    let r = page("channel=news&since=4&limit=2");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let seqs: Vec<u64> = v["updates"].as_array().unwrap().iter().filter_map(|u| u["seq"].as_u64()).collect();
    assert_eq!(seqs, [5, 6]);
    assert_eq!(
        (v["seq"].clone(), v["first_retained"].clone(), v["truncated"].clone()),
        (json!(8), json!(4), json!(false))
    );
    assert_eq!(v["updates"][0]["data"], json!({"n": 5}));
    assert_eq!(v["next"], json!(6), "the limit ended the page before seq 8");
    assert!(v["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    // From the start: only what is retained, and it says so.
    let v = page("channel=news").json();
    let seqs: Vec<u64> = v["updates"].as_array().unwrap().iter().filter_map(|u| u["seq"].as_u64()).collect();
    assert_eq!((seqs, v["truncated"].clone(), v["next"].clone()), (vec![4, 5, 6, 7, 8], json!(true), json!(null)));
    let v = page("channel=news&since=8").json();
    assert_eq!((&v["updates"], &v["next"]), (&json!([]), &json!(null)));
    page("channel=nothere").assert_error(404, "unknown_channel");
    page("channel=Bad%20Name").assert_error(400, "invalid_channel");
    page("since=3").assert_error(400, "bad_request");
    page("channel=news&limit=6").assert_error(400, "bad_request");
    page("channel=news&since=x").assert_error(400, "bad_request");
}

#[test]
fn dashboard_files_are_served_with_types_and_etags() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    let index = request(&w, "GET", "/", &[], None);
    assert_eq!(index.status, 200);
    assert_eq!(index.headers.get("content-type").map(String::as_str), Some("text/html; charset=utf-8"));
    assert_eq!(index.body, std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/index.html")).unwrap());
    let app = request(&w, "GET", "/app.js", &[], None);
    assert_eq!(app.status, 200);
    assert_eq!(app.headers.get("content-type").map(String::as_str), Some("text/javascript; charset=utf-8"));
    assert_eq!(app.headers.get("cache-control").map(String::as_str), Some("no-cache"));
    let etag = app.headers.get("etag").cloned().expect("an ETag");
    let again = request(&w, "GET", "/app.js", &[("if-none-match", &etag)], None);
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    // Browsers run a module script only when it is served with a JavaScript type.
    let library = request(&w, "GET", "/tickwire-client.js", &[], None);
    assert_eq!(library.status, 200);
    assert_eq!(library.headers.get("content-type").map(String::as_str), Some("text/javascript; charset=utf-8"));
    let module = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/client/tickwire-client.js"));
    assert_eq!(library.body, module.unwrap(), "the client package's module, byte for byte, at its old URL");
    let head = request(&w, "HEAD", "/style.css", &[], None);
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(head.headers.get("content-type").map(String::as_str), Some("text/css; charset=utf-8"));
    request(&w, "GET", "/missing.js", &[], None).assert_error(404, "not_found");
}

#[test]
fn cors_for_reads_and_for_allowed_publishers() {
    let fixture = Fixture::start();
    let app = "https://app.example";
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("ALLOWED_ORIGINS", app)]);
    let r = request(&w, "GET", "/api/snapshot", &[("origin", "https://anyone.example")], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("access-control-allow-origin").map(String::as_str), Some("*"));
    let preflight = |origin: &str| {
        request(
            &w,
            "OPTIONS",
            "/api/publish",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization, content-type"),
            ],
            None,
        )
    };
    let r = preflight(app);
    assert_eq!(r.status, 204);
    assert_eq!(r.headers.get("access-control-allow-origin").map(String::as_str), Some(app));
    assert!(r.headers.get("access-control-allow-headers").is_some_and(|h| h.contains("authorization")));
    assert!(r.headers.get("access-control-allow-methods").is_some_and(|h| h.contains("POST")));
    let r = preflight("https://evil.example");
    assert_eq!(r.headers.get("access-control-allow-origin"), None, "no CORS grant for other origins");
    // An error answer still carries the grant, so the page can read why.
    let r = publish(&w, &[JSON, ("origin", app)], "{}");
    r.assert_error(401, "unauthorized");
    assert_eq!(r.headers.get("access-control-allow-origin").map(String::as_str), Some(app));
    // So do the hub's own answers (passed through by the Worker, which adds the grant): a
    // refusal of the body and an accepted publish.
    let auth = ("authorization", BEARER);
    let r = publish(&w, &[JSON, auth, ("origin", app)], "{}");
    r.assert_error(400, "bad_json");
    assert_eq!(r.headers.get("access-control-allow-origin").map(String::as_str), Some(app));
    let r = publish(&w, &[JSON, auth, ("origin", app)], r#"{"channel":"news","data":1}"#);
    assert_eq!((r.status, r.json()), (202, json!({"channel": "news", "seq": 1})), "{}", r.body);
    assert_eq!(r.headers.get("access-control-allow-origin").map(String::as_str), Some(app));
    assert_eq!(r.headers.get("vary").map(String::as_str), Some("Origin"));
    assert_eq!(r.headers.get("cache-control").map(String::as_str), Some("no-store"));
}

#[test]
fn sockets_only_from_allowed_origins() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("ALLOWED_ORIGINS", "https://app.example")]);
    let connect = |origin: Option<&str>| {
        let mut req = format!("ws://127.0.0.1:{}/ws", w.port).into_client_request().expect("ws request");
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().expect("header"));
        }
        match tungstenite::connect(req) {
            Ok((mut ws, _)) => {
                let _ = ws.close(None);
                101
            }
            Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("ws connect: {e}"),
        }
    };
    assert_eq!(connect(Some("https://app.example")), 101);
    assert_eq!(connect(Some("https://evil.example")), 403);
    assert_eq!(connect(None), 101, "apps without an Origin header are not browsers on other sites");
    let r = request(&w, "GET", "/ws", &[], None);
    r.assert_error(426, "upgrade_required");
    w.assert_no_panic();
}
