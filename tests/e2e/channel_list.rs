//! App channels as clients of other real-time services expect them: any valid name can be
//! subscribed before anyone publishes to it (`subscribed` at seq 0, then the first publish),
//! on every shard, and `GET /api/channels` lists the channels that exist with their seq, last
//! update time and the sockets subscribed over all shards (also `/metrics`).

use crate::harness::{promtool_accepts, seqs, Fixture, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(5);

fn listed<'a>(list: &'a Value, channel: &str) -> Option<&'a Value> {
    list["channels"].as_array()?.iter().find(|c| c["channel"] == channel)
}

#[test]
fn subscribe_before_publish_on_every_shard_and_the_channel_list_counts_sockets() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN), ("HUB_SHARDS", "3")]);
    // Three sockets on two replicas, two by URL and one by a subscribe frame after connecting.
    let mut a = w.client("/ws?shard=1&channels=orders");
    let mut b = w.client("/ws?shard=2&channels=orders,btc");
    let mut c = w.client("/ws?shard=1&channels=sentiment");
    c.catch_up("sentiment", FRAME_WAIT);
    c.send_json(&json!({"op": "subscribe", "channels": ["orders"]}));
    for client in [&mut a, &mut b, &mut c] {
        let (updates, sub) = client.catch_up("orders", FRAME_WAIT);
        assert!(updates.is_empty(), "{updates:?}");
        assert_eq!(sub, json!({"type": "subscribed", "channel": "orders", "seq": 0, "epoch": "", "recovered": false}));
    }

    // Nothing published yet: the built-ins are listed, `orders` is not (it does not exist).
    let (status, list) = w.get_json("/api/channels");
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> =
        list["channels"].as_array().into_iter().flatten().filter_map(|c| c["channel"].as_str()).collect();
    assert_eq!(names, ["btc", "indicators", "market", "sentiment"], "{list}");

    // The first publish reaches every early subscriber as seq 1, the next as seq 2.
    assert_eq!(w.publish_seq("orders", json!({"id": 1})), 1);
    assert_eq!(w.publish_seq("orders", json!({"id": 2})), 2);
    for client in [&mut a, &mut b, &mut c] {
        let got = client.updates("orders", 2, FRAME_WAIT);
        assert_eq!(seqs(&got), [1, 2]);
        assert_eq!((&got[0]["data"], &got[1]["data"]), (&json!({"id": 1}), &json!({"id": 2})));
    }

    let (_, list) = w.get_json("/api/channels");
    let orders = listed(&list, "orders").unwrap_or_else(|| panic!("orders not listed: {list}"));
    assert_eq!((&orders["seq"], &orders["subscribers"], &orders["built_in"]), (&json!(2), &json!(3), &json!(false)));
    assert!(orders["updated_at"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{orders}");
    let sentiment = listed(&list, "sentiment").unwrap_or_else(|| panic!("{list}"));
    assert_eq!((&sentiment["subscribers"], &sentiment["built_in"]), (&json!(1), &json!(true)));
    assert_eq!(listed(&list, "btc").map(|b| b["subscribers"].clone()), Some(json!(1)), "{list}");

    // Unsubscribing and closing are counted too; /metrics says the same.
    c.send_json(&json!({"op": "unsubscribe", "channels": ["orders"]}));
    c.expect("unsubscribed", FRAME_WAIT, |v| v["type"] == "unsubscribed");
    a.close();
    let deadline = std::time::Instant::now() + FRAME_WAIT;
    let count = || listed(&w.get_json("/api/channels").1, "orders").map(|o| o["subscribers"].clone());
    while count() != Some(json!(1)) {
        assert!(std::time::Instant::now() < deadline, "orders subscribers: {:?}", count());
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = w.get("/metrics");
    promtool_accepts(&metrics.body);
    assert!(metrics.body.contains("tickwire_channel_subscribers{channel=\"orders\"} 1\n"), "{}", metrics.body);

    // A deleted channel leaves the list; its name can be subscribed again before the next publish.
    assert_eq!(w.delete("/api/channels/orders", Some(PUBLISH_TOKEN)).status, 200);
    b.expect("unsubscribed orders", FRAME_WAIT, |v| v["type"] == "unsubscribed" && v["channel"] == "orders");
    assert!(listed(&w.get_json("/api/channels").1, "orders").is_none());
    b.send_json(&json!({"op": "subscribe", "channels": ["orders"]}));
    assert_eq!(b.catch_up("orders", FRAME_WAIT).1["seq"], 0);
    assert_eq!(w.publish_seq("orders", json!({"id": 3})), 1);
    assert_eq!(b.updates("orders", 1, FRAME_WAIT)[0]["data"], json!({"id": 3}));
    w.assert_no_panic();
}
