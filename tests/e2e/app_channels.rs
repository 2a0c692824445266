//! App channels are bounded and deletable: `MAX_APP_CHANNELS` refuses the channel past the
//! limit with 409, an authenticated `DELETE /api/channels/<name>` removes one on every shard
//! (its subscribers are told `unsubscribed`), and `welcome` lists the built-ins only.

use crate::harness::{seqs, Fixture, Reply, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(5);

fn error_code(r: &Reply) -> (u16, String) {
    (r.status, r.json()["error"]["code"].as_str().unwrap_or_default().to_owned())
}

/// 10,000 new channel names against a limit of 200, from 8 threads, while a bystander's channel
/// gets 20 publishes: exactly the 198 names that fit are created (two channels existed), every
/// other is refused with 409 `too_many_channels`, and the bystander gets all 20 updates.
#[test]
fn app_channels_are_bounded_and_the_welcome_stays_small() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("MAX_APP_CHANNELS", "200")]);
    assert_eq!(w.publish_seq("keep", json!({"i": 1})), 1);
    assert_eq!(w.publish_seq("spare", json!({"i": 1})), 1);
    let mut bystander = w.client("/ws?channels=keep");
    bystander.catch_up("keep", FRAME_WAIT);

    let (created, refused) = std::thread::scope(|s| {
        let w = &w;
        let keep = s.spawn(move || {
            for i in 2..=21 {
                assert_eq!(w.publish_seq("keep", json!({ "i": i })), i);
            }
        });
        let flooders: Vec<_> = (0..8)
            .map(|t| {
                s.spawn(move || {
                    let (mut created, mut refused) = (0, 0);
                    for i in (t..10_000).step_by(8) {
                        let (status, v) = w.publish(&format!("flood-{i}"), json!(i));
                        match status {
                            202 => created += 1,
                            409 => {
                                assert_eq!(v["error"]["code"], "too_many_channels", "{v}");
                                refused += 1;
                            }
                            _ => panic!("publish to flood-{i}: {status} {v}"),
                        }
                    }
                    (created, refused)
                })
            })
            .collect();
        keep.join().expect("keep publisher");
        flooders.into_iter().map(|f| f.join().expect("flooder")).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    assert_eq!((created, refused), (198, 9_802));
    assert_eq!(seqs(&bystander.updates("keep", 21, FRAME_WAIT)), (2..=21).collect::<Vec<_>>());

    let (status, v) = w.publish("one-more", json!(1));
    assert_eq!(status, 409, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("200") && message.contains("MAX_APP_CHANNELS"), "{message}");
    assert_eq!(w.publish_seq("keep", json!({"i": 22})), 22, "existing channels go on");

    // A connect is told the built-in channels only, however many app channels exist.
    let late = w.client("/ws");
    assert_eq!(late.welcome["channels"], json!(["btc", "market", "sentiment", "indicators"]));
    assert!(late.welcome.to_string().len() < 200, "{}", late.welcome);

    // Deleting one makes room for exactly one more.
    assert_eq!(w.delete("/api/channels/spare", Some(PUBLISH_TOKEN)).status, 200);
    assert_eq!(w.publish_seq("one-more", json!(1)), 1);
    assert_eq!(w.publish("two-more", json!(1)).0, 409);
    w.assert_no_panic();
}

/// `DELETE /api/channels/<name>` needs the publish token, refuses built-in, invalid and unknown
/// names with the documented errors, and removes the channel on every shard: its subscribers on
/// both shards get `unsubscribed`, its history is gone, and a later publish to the name starts a
/// new channel (seq 1, another epoch) that the old subscribers do not receive.
#[test]
fn deleting_an_app_channel_everywhere() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("HUB_SHARDS", "2")]);
    for i in 1..=3 {
        assert_eq!(w.publish_seq("doomed", json!({ "i": i })), i);
    }
    assert_eq!(w.publish_seq("keep", json!({"i": 1})), 1);
    let mut subscribers: Vec<_> = ["/ws?channels=doomed,keep&shard=1", "/ws?channels=doomed,keep"]
        .into_iter()
        .map(|path| {
            let mut c = w.client(path);
            let (_, sub) = c.catch_up("doomed", FRAME_WAIT);
            assert_eq!(sub["seq"], 3, "{sub}");
            c.catch_up("keep", FRAME_WAIT);
            c
        })
        .collect();
    let epoch = w.get_json("/api/history?channel=doomed").1["epoch"].clone();

    assert_eq!(error_code(&w.delete("/api/channels/doomed", None)), (401, "unauthorized".into()));
    assert_eq!(error_code(&w.delete("/api/channels/doomed", Some("wrong"))), (403, "forbidden".into()));
    assert_eq!(error_code(&w.delete("/api/channels/btc", Some(PUBLISH_TOKEN))), (403, "channel_reserved".into()));
    assert_eq!(error_code(&w.delete("/api/channels/Bad.Name", Some(PUBLISH_TOKEN))), (400, "invalid_channel".into()));
    let unknown = w.delete("/api/channels/zzz", Some(PUBLISH_TOKEN));
    assert_eq!(error_code(&unknown), (404, "unknown_channel".into()));
    assert_eq!(unknown.json()["error"]["message"], r#"no channel "zzz""#);
    let wrong_method = w.get("/api/channels/doomed");
    assert_eq!(error_code(&wrong_method), (405, "method_not_allowed".into()));

    let deleted = w.delete("/api/channels/doomed", Some(PUBLISH_TOKEN));
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.json(), json!({"channel": "doomed", "deleted": true, "seq": 3}));
    for c in &mut subscribers {
        let un = c.expect("unsubscribed", FRAME_WAIT, |v| v["type"] == "unsubscribed");
        assert_eq!(un["channel"], "doomed", "{un}");
    }
    assert_eq!(error_code(&w.delete("/api/channels/doomed", Some(PUBLISH_TOKEN))), (404, "unknown_channel".into()));
    assert_eq!(w.get("/api/history?channel=doomed").status, 404);

    // The name is free again: a new channel, which the old subscribers do not hold; they still
    // get their other channel.
    assert_eq!(w.publish_seq("doomed", json!({"i": "new"})), 1);
    assert_eq!(w.publish_seq("keep", json!({"i": 2})), 2);
    let (_, page) = w.get_json("/api/history?channel=doomed");
    assert_ne!(page["epoch"], epoch, "{page}");
    assert_eq!(page["updates"].as_array().map(Vec::len), Some(1), "{page}");
    for c in &mut subscribers {
        assert_eq!(seqs(&c.updates("keep", 2, FRAME_WAIT)), [2]);
        let leaked: Vec<Value> = c.collect(Duration::from_millis(300));
        assert!(!leaked.iter().any(|v| v["channel"] == "doomed"), "{leaked:?}");
    }
    // Errors name the channel as the client wrote it, never a Rust type.
    let history = w.get("/api/history?channel=zzz");
    assert_eq!(error_code(&history), (404, "unknown_channel".into()));
    let message = history.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.starts_with(r#"no channel "zzz""#), "{message}");
    let bad = w.post_publish(Some(PUBLISH_TOKEN), &json!("not an object"));
    let ws_error = {
        let mut c = w.client("/ws");
        c.send_json(&json!({"op": "subscribe", "channels": ["Zzz"]}));
        c.expect_error("invalid_channel", FRAME_WAIT)["message"].as_str().unwrap_or_default().to_owned()
    };
    assert!(ws_error.contains(r#""Zzz""#), "{ws_error}");
    for text in [&message, &ws_error, &bad.body] {
        assert!(!["Channel(", "Error(", "RustError", "JsValue"].iter().any(|t| text.contains(t)), "{text}");
    }

    // A new subscriber on the replica sees the new channel, not the old one.
    let mut fresh = w.client("/ws?channels=doomed&shard=1");
    let (ups, sub) = fresh.catch_up("doomed", FRAME_WAIT);
    assert_eq!((seqs(&ups), &sub["seq"]), (vec![1], &json!(1)), "{ups:?} {sub}");
    w.assert_no_panic();
}
