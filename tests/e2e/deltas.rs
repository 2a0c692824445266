//! Delta updates (`/ws?delta=merge`): while the fixture upstream walks every coin's price, a
//! delta socket gets each `market` update as an RFC 7386 merge patch of at most half the bytes
//! of the full frame, and ends with values identical to a full socket's, also after it resumed
//! (catch-up and resume send full values).

use crate::harness::{merge_patch, Client, Fixture, Wrangler};
use serde_json::{json, Value};
use std::time::Duration;

const FRAME_WAIT: Duration = Duration::from_secs(10);

/// The fixture's `--walk` step, made deterministic: every coin's price and 24 h change move.
fn walk(fixture: &Fixture, step: u32) {
    let k = f64::from(step);
    fixture.set(
        "/api/v3/simple/price",
        200,
        json!({
            "bitcoin": { "usd": 64123.45 + 17.31 * k, "usd_24h_change": 1.2345 + 0.0113 * k, "usd_market_cap": 1.26e12, "usd_24h_vol": 3.1e10 },
            "ethereum": { "usd": 3120.5 - 2.17 * k, "usd_24h_change": -0.82 + 0.0071 * k, "usd_market_cap": 3.75e11, "usd_24h_vol": 1.4e10 },
            "solana": { "usd": 142.1 + 0.13 * k, "usd_24h_change": 3.1 - 0.0042 * k, "usd_market_cap": 6.5e10, "usd_24h_vol": 2.2e9 },
        }),
    );
}

/// What a socket holds for `market`: its value and seq, kept up to date from its frames.
struct Follower {
    client: Client,
    value: Value,
    seq: u64,
    /// Bytes of the live frames (the frames' JSON, as sent) and how many were deltas.
    bytes: usize,
    deltas: usize,
}

impl Follower {
    fn new(client: Client) -> Follower {
        Follower { client, value: Value::Null, seq: 0, bytes: 0, deltas: 0 }
    }

    /// A catch-up: full values only, ending with `subscribed`.
    fn catch_up(&mut self) -> Value {
        let (updates, subscribed) = self.client.catch_up("market", FRAME_WAIT);
        for u in updates {
            assert_eq!(u["type"], "update", "catch-up frames are full: {u}");
            self.seq = u["seq"].as_u64().unwrap_or(0);
            self.value = u["data"].clone();
        }
        subscribed
    }

    /// Reads live frames until it holds seq `seq`.
    fn follow_to(&mut self, seq: u64) {
        while self.seq < seq {
            let f = self.client.expect("market frame", FRAME_WAIT, |v| {
                v["channel"] == "market" && (v["type"] == "update" || v["type"] == "delta")
            });
            let got = f["seq"].as_u64().unwrap_or(0);
            assert_eq!(got, self.seq + 1, "frames in order, no gap: {f}");
            self.bytes += f.to_string().len();
            if f["type"] == "delta" {
                self.deltas += 1;
                merge_patch(&mut self.value, &f["patch"]);
            } else {
                self.value = f["data"].clone();
            }
            self.seq = got;
        }
    }
}

#[test]
fn delta_sockets_get_market_updates_in_half_the_bytes_and_the_same_values() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("COINGECKO_RPM", "600")]);
    walk(&fixture, 0);
    w.fire_cron();
    let mut full = Follower::new(w.client("/ws?channels=market"));
    let mut delta = Follower::new(w.client("/ws?channels=market&delta=merge"));
    full.catch_up();
    let epoch = delta.catch_up()["epoch"].as_str().unwrap_or_default().to_owned();
    assert_eq!((full.seq > 0, &full.value), (true, &delta.value), "both start from the same full value");

    let rounds = 12;
    for step in 1..=rounds {
        walk(&fixture, step);
        w.fire_cron();
        let seq = full.seq + 1;
        full.follow_to(seq);
        delta.follow_to(seq);
        assert_eq!(delta.value, full.value, "seq {seq}");
    }
    assert_eq!(delta.deltas, rounds as usize, "every market update went as a delta");
    let ratio = delta.bytes as f64 / full.bytes as f64;
    eprintln!("market: {} B full, {} B delta over {rounds} updates ({ratio:.2})", full.bytes, delta.bytes);
    assert!(ratio <= 0.5, "delta frames are {ratio:.2} of the full frames' bytes");

    // The delta socket leaves, misses three updates, and resumes: the missed ones come as full
    // updates, then deltas again, and it ends with the full socket's value.
    delta.client.close();
    for step in rounds + 1..=rounds + 3 {
        walk(&fixture, step);
        w.fire_cron();
        full.follow_to(full.seq + 1);
    }
    let url = format!("/ws?channels=market&delta=merge&since=market:{}@{epoch}", delta.seq);
    let mut resumed = Follower { client: w.client(&url), deltas: 0, ..delta };
    let sub = resumed.catch_up();
    assert_eq!((&sub["recovered"], resumed.seq), (&json!(true), full.seq), "{sub}");
    assert_eq!(resumed.value, full.value);
    for step in rounds + 4..=rounds + 6 {
        walk(&fixture, step);
        w.fire_cron();
        let seq = full.seq + 1;
        full.follow_to(seq);
        resumed.follow_to(seq);
    }
    assert_eq!((resumed.deltas, &resumed.value), (3, &full.value));
    w.assert_no_panic();
}
