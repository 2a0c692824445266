use super::*;
use serde_json::json;
use tickwire_hub::wire::protocol::Channel;

const NOW: u64 = 1_700_000_100_000;

fn upd(channel: &str, seq: u64, ts: u64, stale: bool, data: Value) -> Update {
    Update { channel: Channel::parse(channel).unwrap(), seq: Seq(seq), ts, stale, data }
}

fn market() -> Value {
    json!({
        "coins": {
            "solana": {"price_usd": 142.1, "change_24h_pct": 3.1, "market_cap_usd": 6.5e10, "volume_24h_usd": 2.2e9},
            "bitcoin": {"price_usd": 67123.45, "change_24h_pct": 1.2345, "market_cap_usd": 1.26e12, "volume_24h_usd": 3.1e10},
            "ethereum": {"price_usd": 3120.5, "change_24h_pct": -0.82, "market_cap_usd": 3.75e11, "volume_24h_usd": 1.4e10}
        },
        "total_market_cap_usd": 2.41e12, "total_volume_24h_usd": 8.9e10, "btc_dominance_pct": 52.3
    })
}

fn full_view() -> View {
    let mut v = View::new("ws://127.0.0.1:8787/ws");
    v.set_state(ConnState::Connected { conn: "9f2c6a1be04d7713".into() });
    v.set_stale_after(180);
    v.update(&upd("btc", 7, NOW - 4_000, false, json!({"price_usd": 67123.45, "change_24h_pct": 1.2345})));
    v.update(&upd("market", 3, NOW - 12_000, false, market()));
    v.update(&upd("sentiment", 2, NOW - 200_000, false, json!({"value": 62, "classification": "Greed"})));
    let ind = json!({"rsi_14": 55.123, "period": 14, "closes": 48, "as_of": 1, "hourly_closes": [[1, 2.0]]});
    v.update(&upd("indicators", 1, NOW - 61_000, true, ind));
    v
}

#[test]
fn the_table_shows_every_channel_with_age_and_stale_mark() {
    let lines = full_view().render(NOW, false);
    let want = [
        "tickwire  ws://127.0.0.1:8787/ws  connected (conn 9f2c6a1be04d7713)",
        "",
        "  CHANNEL               VALUE                  AGE",
        "  BTC              $67,123.45  +1.23 %          4s",
        "  Market cap           $2.41T                  12s",
        "  Volume 24 h          $89.0B                  12s",
        "  BTC dominance        52.3 %                  12s",
        "  Fear & Greed             62  Greed            3m  STALE",
        "  RSI-14                55.12  hourly           1m  STALE",
        "",
        "  COIN                 PRICE      24 H   MARKET CAP  VOLUME 24 H",
        "  bitcoin         $67,123.45   +1.23 %       $1.26T       $31.0B",
        "  ethereum         $3,120.50   -0.82 %        $375B       $14.0B",
        "  solana             $142.10   +3.10 %       $65.0B       $2.20B",
        "",
        "  Ctrl-C quits · ages since the source last confirmed a value · stale after 180s",
    ];
    assert_eq!(lines, want, "\n{}", lines.join("\n"));
}

#[test]
fn a_confirmation_makes_a_steady_value_fresh() {
    let mut v = full_view();
    v.confirmed("sentiment", Seq(2), 20, false, NOW);
    v.confirmed("indicators", Seq(9), 1, false, NOW); // not the value shown: ignored
    v.confirmed("nothing", Seq(1), 1, false, NOW);
    let lines = v.render(NOW, false);
    assert!(lines[7].ends_with("Greed           20s"), "{:?}", lines[7]);
    assert!(lines[8].ends_with("STALE"), "the update said stale: {:?}", lines[8]);
    // An older confirmation never makes a value look older than its update.
    v.confirmed("btc", Seq(7), 500, true, NOW);
    let lines = v.render(NOW, false);
    assert!(lines[3].ends_with("4s  STALE"), "{:?}", lines[3]);
}

#[test]
fn nothing_yet_shows_dashes() {
    let v = View::new("wss://x/ws");
    let lines = v.render(NOW, false);
    assert_eq!(lines[0], "tickwire  wss://x/ws  connecting");
    assert!(lines[3].starts_with("  BTC                       –"), "{:?}", lines[3]);
    assert!(lines.iter().any(|l| l == "  –"), "no coins: {lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("  Ctrl-C quits · ages since the source last confirmed a value"));
}

#[test]
fn partial_and_malformed_values_show_dashes() {
    let mut v = View::new("u");
    v.update(&upd("market", 1, NOW, false, json!({"total_market_cap_usd": 2.41e12})));
    v.update(&upd("btc", 1, NOW, false, json!("not an object")));
    v.update(&upd("sentiment", 1, NOW, false, json!({"value": 300, "classification": "?"})));
    let lines = v.render(NOW, false);
    assert!(lines[3].contains("  –  "), "{:?}", lines[3]);
    assert!(lines[4].contains(" – "), "totals need all three fields: {:?}", lines[4]);
    assert!(lines[7].contains(" – "), "{:?}", lines[7]);
}

#[test]
fn states_and_notes() {
    let mut v = View::new("u");
    v.set_state(ConnState::Retrying { reason: "connection refused".into(), at_ms: NOW + 3_250 });
    v.note(NOW - 5_000, "gap in btc: seq 4 not received");
    let lines = v.render(NOW, false);
    assert_eq!(lines[0], "tickwire  u  reconnecting in 3.2 s after: connection refused");
    assert_eq!(lines[1], "5s ago: gap in btc: seq 4 not received");
    v.set_state(ConnState::Closing);
    assert_eq!(v.render(NOW, false)[0], "tickwire  u  closing");
    v.set_state(ConnState::Retrying { reason: "x".into(), at_ms: NOW - 1 });
    assert!(v.render(NOW, false)[0].ends_with("reconnecting in 0.0 s after: x"));
}

#[test]
fn colour_never_moves_a_column() {
    let v = full_view();
    let strip = |s: &str| {
        let mut out = String::new();
        let mut in_escape = false;
        for c in s.chars() {
            match (in_escape, c) {
                (false, '\x1b') => in_escape = true,
                (true, 'm') => in_escape = false,
                (false, c) => out.push(c),
                _ => {}
            }
        }
        out
    };
    let coloured = v.render(NOW, true);
    assert!(coloured[3].contains("\x1b[32m"), "a rise is green: {:?}", coloured[3]);
    assert!(coloured[12].contains("\x1b[31m"), "a fall is red: {:?}", coloured[12]);
    assert_eq!(coloured.iter().map(|l| strip(l)).collect::<Vec<_>>(), v.render(NOW, false));
}

#[test]
fn plain_lines_per_channel() {
    let v = full_view();
    let lines: Vec<String> = v.values.values().map(|s| plain_line(&s.update)).collect();
    assert_eq!(
        lines,
        [
            "2023-11-14T22:14:56Z btc #7 BTC $67,123.45 +1.23 %",
            "2023-11-14T22:13:59Z indicators #1 RSI-14 55.12 (stale)",
            "2023-11-14T22:14:48Z market #3 market cap $2.41T, volume 24 h $89.0B, BTC dominance 52.3 % · \
             bitcoin $67,123.45 +1.23 % · ethereum $3,120.50 -0.82 % · solana $142.10 +3.10 %",
            "2023-11-14T22:11:40Z sentiment #2 Fear & Greed 62 Greed",
        ]
    );
    let other = upd("news", 4, 0, false, json!({"a": 1}));
    assert_eq!(plain_line(&other), "1970-01-01T00:00:00Z news #4 {\"a\":1}");
}

#[test]
fn long_coin_ids_are_clipped() {
    assert_eq!(clip("wrapped-bitcoin-plus", 13), "wrapped-bitc…");
    assert_eq!(clip("bitcoin", 13), "bitcoin");
    assert_eq!(clip("abcdefghijklm", 13), "abcdefghijklm");
    assert_eq!(clip("", 13), "");
}

#[test]
fn server_text_in_cells_states_and_notes_is_escaped() {
    let evil = "\x1b]52;c;cHduZWQ=\x07\u{9b}2J\u{202e}";
    let mut v = View::new("u");
    v.set_state(ConnState::Connected { conn: evil.into() });
    v.note(NOW, &format!("server error x: {evil}"));
    let mut coins = market();
    coins["coins"][evil] =
        json!({"price_usd": 1.0, "change_24h_pct": 0.0, "market_cap_usd": 1e13, "volume_24h_usd": 1.0});
    v.update(&upd("market", 1, NOW, false, coins));
    v.update(&upd("sentiment", 1, NOW, false, json!({"value": 50, "classification": evil})));
    for lines in [v.render(NOW, false), v.render(NOW, true)] {
        let screen = lines.join("\n");
        let raw: Vec<char> =
            lines.concat().chars().filter(|c| *c != '\x1b' && crate::terminal_text::is_unsafe(*c)).collect();
        assert!(raw.is_empty(), "{raw:?} in\n{screen}");
        assert!(!screen.contains("\x1b]") && !screen.contains('\x07'), "{screen}");
        assert!(screen.contains("connected (conn \\u{1b}]52;c;cHduZWQ=\\u{7}\\u{9b}2J\\u{202e})"), "{screen}");
        assert!(screen.contains("ago: server error x: \\u{1b}]52;"), "{screen}");
        assert!(screen.contains("  \\u{1b}]52;c;…"), "the coin id escaped, then clipped to its column: {screen}");
        assert!(screen.contains("50  \\u{1b}]52;c;cHduZWQ=\\u{7}"), "{screen}");
    }
}

#[test]
fn an_unknown_change_is_a_dash_and_a_stale_coin_is_marked_with_its_age() {
    let mut v = View::new("u");
    v.update(&upd("btc", 1, NOW, false, json!({"price_usd": 100.0, "change_24h_pct": null})));
    let coins = json!({
        "bitcoin": {"price_usd": 100.0, "change_24h_pct": null, "market_cap_usd": 2e9, "volume_24h_usd": null},
        "solana": {"price_usd": 7.0, "change_24h_pct": 1.0, "market_cap_usd": 1e9, "volume_24h_usd": 1e8,
            "stale": true, "quoted_at": NOW - 125_000},
    });
    v.update(&upd("market", 1, NOW, false, json!({ "coins": coins })));
    let lines = v.render(NOW, false);
    assert_eq!(lines[3], "  BTC                 $100.00  –                0s", "never +0.00 %");
    assert_eq!(lines[11], "  bitcoin            $100.00         –       $2.00B            –");
    assert_eq!(lines[12], "  solana               $7.00   +1.00 %       $1.00B        $100M  STALE 2m");
    let market = v.values["market"].update.clone();
    assert!(
        plain_line(&market).ends_with("bitcoin $100.00 – · solana $7.00 +1.00 % (stale)"),
        "{}",
        plain_line(&market)
    );
}
