//! The hub core's feeds: rounds and their outcomes, dedupe, staleness, KV copies, the fast
//! poll and which shards watch it.

use super::*;

#[test]
fn feed_values_are_deduped_app_publishes_are_not() {
    let mut c = core();
    let fx = round_btc(&mut c, 1, 100.0);
    let market = Channel::parse("market").unwrap();
    assert_eq!(fx.published, vec![(Channel::btc(), Seq(1)), (market.clone(), Seq(1))]);
    assert_eq!(frame(&fx.broadcasts[0].frame)["seq"], 1);
    assert_eq!(frame(&fx.broadcasts[0].frame)["data"], json!({"price_usd": 100.0, "change_24h_pct": 1.0}));
    assert!(fx.dirty.contains(&StorageKey::Upstreams) && fx.dirty.contains(&StorageKey::Meta(Channel::btc())));
    assert_eq!(fx.history.len(), 2);
    assert_eq!(fx.fanout[0].epoch, Epoch("e1".into()));
    assert_eq!(fx.kv_writes.len(), 2, "first values go to KV at once");
    let fx = round_btc(&mut c, 2, 100.0);
    assert!(fx.broadcasts.is_empty() && fx.history.is_empty() && fx.kv_writes.is_empty());
    assert_eq!(app(&mut c, 1).0.seq, Seq(1));
    assert_eq!(app(&mut c, 1).0.seq, Seq(2), "same data, new seq");
    assert!(c.is_known(&news()));
}

#[test]
fn failures_keep_the_value_and_it_goes_stale_from_the_last_confirmation() {
    let mut c = core();
    round_btc(&mut c, 1_000, 100.0);
    // The same value confirmed later: no new seq, but it is fresh again.
    round_btc(&mut c, 100_000, 100.0);
    let fx = round(&mut c, 150_000, Err(FeedError::Http(500)));
    assert!(fx.broadcasts.is_empty());
    let snap = c.snapshot();
    assert_eq!(snap[0].channel, Channel::btc());
    assert_eq!((snap[0].seq, snap[0].fetched_at, snap[0].confirmed_at), (Seq(1), 1_000, 100_000));
    let stale_at = |now| {
        let frames = c.catchup_frames(&Channel::btc(), &Catchup::Latest, vec![], now);
        frame(&frames[0].to_json())["stale"].clone()
    };
    assert_eq!(stale_at(280_000), json!(false));
    assert_eq!(stale_at(280_001), json!(true));
    let st = c.stats(0, 0, |_| 0);
    let up = &st.upstreams[&Source::CoingeckoPrice];
    assert_eq!((up.requests[&Outcome::Ok], up.requests[&Outcome::HttpError], up.consecutive_failures), (2, 1, 1));
}

#[test]
fn market_is_merged_from_its_two_sources() {
    let mut c = core();
    let planned = c.plan_round(RoundKind::Full, 0);
    assert_eq!(planned.fetch.len(), 4);
    let global =
        r#"{"data":{"total_market_cap":{"usd":2e12},"total_volume":{"usd":9e10},"market_cap_percentage":{"btc":50}}}"#;
    let fetched = vec![
        Fetched { source: Source::CoingeckoPrice, result: Ok(price_body(100.0)), duration_ms: 5, at: 0 },
        Fetched { source: Source::CoingeckoGlobal, result: Ok(global.into()), duration_ms: 5, at: 0 },
        Fetched { source: Source::Fng, result: Err(FeedError::Timeout), duration_ms: 5000, at: 0 },
    ];
    c.finish_round(RoundKind::Full, 0, fetched, epochs());
    let market = c.snapshot().into_iter().find(|s| s.channel.as_str() == "market").unwrap();
    assert_eq!(market.data["coins"]["bitcoin"]["price_usd"], 100.0);
    assert_eq!(market.data["btc_dominance_pct"], 50.0);
    assert_eq!(market.seq, Seq(2), "one update per part");
    // Later only the price answers: the totals stay.
    c.plan_round(RoundKind::Fast, 60_000);
    let fetched =
        vec![Fetched { source: Source::CoingeckoPrice, result: Ok(price_body(101.0)), duration_ms: 5, at: 60_000 }];
    c.finish_round(RoundKind::Fast, 60_000, fetched, epochs());
    let market = c.snapshot().into_iter().find(|s| s.channel.as_str() == "market").unwrap();
    assert_eq!(
        (market.data["coins"]["bitcoin"]["price_usd"].clone(), market.data["btc_dominance_pct"].clone()),
        (json!(101.0), json!(50.0))
    );
    assert_eq!(c.stats(0, 0, |_| 0).upstreams[&Source::Fng].requests[&Outcome::Timeout], 1);
}

#[test]
fn kv_copies_are_throttled_but_never_left_behind() {
    let mut c = core();
    assert_eq!(round_btc(&mut c, 0, 100.0).kv_writes.len(), 2);
    assert!(round_btc(&mut c, 60_000, 101.0).kv_writes.is_empty(), "changed, but written 60 s ago");
    // Nothing changes any more, but the pending change is written once the interval is over.
    let fx = round_btc(&mut c, 300_000, 101.0);
    let btc: Vec<_> = fx.kv_writes.iter().filter(|w| w.channel == Channel::btc()).collect();
    assert_eq!(btc.len(), 1);
    assert_eq!((btc[0].seq, btc[0].data["price_usd"].clone()), (Seq(2), json!(101.0)));
    assert!(round_btc(&mut c, 900_000, 101.0).kv_writes.is_empty());
    // A failed write is due again once the interval has passed, even with no new change.
    c.kv_writes_done(0, &[Channel::btc()]);
    let fx = round_btc(&mut c, 1_200_000, 101.0);
    assert_eq!(fx.kv_writes.iter().filter(|w| w.channel == Channel::btc()).count(), 1);
    assert_eq!(c.stats(0, 0, |_| 0).counters.kv_write_failures, 1);
}

#[test]
fn watchers_from_other_shards() {
    let mut c = core();
    assert!(!c.btc_watched(0));
    assert!(c.btc_watched(1));
    assert!(c.set_watcher(3, true));
    assert!(!c.set_watcher(3, true));
    assert!(c.btc_watched(0));
    assert!(c.set_watcher(3, false));
    assert!(!c.btc_watched(0));
}

#[test]
fn indicators_stay_fresh_between_rsi_fetches() {
    let mut c = core(); // RSI_REFRESH_SECONDS 300, STALE_AFTER_SECONDS 180
    let prices: Vec<String> = (0..20).map(|i| format!("[{},{}]", i * 3_600_000u64, 100 + i % 3)).collect();
    let chart = format!(r#"{{"prices":[{}]}}"#, prices.join(","));
    c.plan_round(RoundKind::Full, 0);
    c.finish_round(
        RoundKind::Full,
        0,
        vec![Fetched { source: Source::CoingeckoChart, result: Ok(chart), duration_ms: 5, at: 0 }],
        epochs(),
    );
    let indicators = Channel::parse("indicators").unwrap();
    let stale_at =
        |now| frame(&c.catchup_frames(&indicators, &Catchup::Latest, vec![], now)[0].to_json())["stale"].clone();
    assert_eq!(stale_at(299_000), json!(false), "not yet due again: not stale");
    assert_eq!(stale_at(480_000), json!(false));
    assert_eq!(stale_at(480_001), json!(true));
}

#[test]
fn confirmations_keep_replicas_fresh_and_bring_new_ones_up_to_date() {
    let mut seq = core();
    let mut replica = core();
    let fx = round_btc(&mut seq, 1_000, 100.0);
    assert_eq!(fx.confirmed.len(), 2, "btc and market were confirmed");
    replica.apply(Apply { updates: fx.fanout, confirmed: fx.confirmed, ..Default::default() });
    // The same price later, in a full round: no update, but the replica learns it was confirmed.
    let fx = round_of(&mut seq, RoundKind::Full, 150_000, Ok(price_body(100.0)));
    assert!(fx.fanout.is_empty());
    let fx2 = replica.apply(Apply { updates: vec![], confirmed: fx.confirmed.clone(), ..Default::default() });
    assert!(fx2.broadcasts.is_empty(), "nothing new to send");
    let stale = |c: &HubCore| {
        frame(&c.catchup_frames(&Channel::btc(), &Catchup::Latest, vec![], 300_000)[0].to_json())["stale"].clone()
    };
    assert_eq!((stale(&seq), stale(&replica)), (json!(false), json!(false)));
    // A replica that never saw btc gets its latest value from the confirmation alone.
    let mut late = core();
    let fx3 = late.apply(Apply { updates: vec![], confirmed: fx.confirmed, ..Default::default() });
    assert_eq!(fx3.broadcasts.len(), 2);
    let snap = late.snapshot();
    assert_eq!((snap[0].seq, snap[0].confirmed_at), (Seq(1), 150_000));
}

#[test]
fn retry_after_counts_from_the_answer_not_the_end_of_the_round() {
    let mut c = core();
    c.plan_round(RoundKind::Fast, 0);
    // The 429 came at 1 s; the round ended at 5 s (waiting for a slow source).
    let f = Fetched {
        source: Source::CoingeckoPrice,
        result: Err(FeedError::TooManyRequests(Some(30))),
        duration_ms: 900,
        at: 1_000,
    };
    c.finish_round(RoundKind::Fast, 5_000, vec![f], epochs());
    let limit = &c.stats(0, 0, |_| 0).providers[&crate::feeds::status::Provider::Coingecko];
    assert_eq!(limit.retry_after_until, Some(31_000));
}

#[test]
fn an_older_answer_finishing_last_does_not_replace_a_newer_value() {
    let mut c = core();
    // The fast poll asked at 1 s and got 100; a cron round asked later, got 101 at 3 s, and
    // finished first.
    c.plan_round(RoundKind::Fast, 0);
    let newer = Fetched { source: Source::CoingeckoPrice, result: Ok(price_body(101.0)), duration_ms: 5, at: 3_000 };
    c.finish_round(RoundKind::Fast, 3_000, vec![newer], epochs());
    let older = Fetched { source: Source::CoingeckoPrice, result: Ok(price_body(100.0)), duration_ms: 5, at: 1_000 };
    let fx = c.finish_round(RoundKind::Fast, 4_000, vec![older], epochs());
    assert!(fx.broadcasts.is_empty(), "the older price was published after the newer one");
    let btc = c.snapshot().into_iter().find(|s| s.channel == Channel::btc()).unwrap();
    assert_eq!((btc.data["price_usd"].as_f64(), btc.fetched_at, btc.confirmed_at), (Some(101.0), 3_000, 3_000));
    let up = &c.stats(0, 0, |_| 0).upstreams[&Source::CoingeckoPrice];
    assert_eq!((up.requests[&Outcome::Ok], up.last_success), (2, Some(3_000)), "counted, but not newest");
}

#[test]
fn an_unchanged_fast_poll_tells_the_other_shards_nothing() {
    let mut c = core();
    let fx = round_btc(&mut c, 1_000, 100.0);
    assert!(!fx.fanout.is_empty() && !fx.confirmed.is_empty(), "a new price goes to every shard");
    let fx = round_btc(&mut c, 11_000, 100.0);
    assert!(fx.fanout.is_empty() && fx.confirmed.is_empty(), "an unchanged one wakes no shard: {fx:?}");
    let fx = round_btc(&mut c, 21_000, 100.5);
    assert_eq!((fx.fanout.len(), fx.confirmed.len()), (2, 2), "btc and market changed: {fx:?}");
}

#[test]
fn the_poll_clock_starts_when_the_first_watcher_appears_anywhere() {
    let mut c = core();
    // Sockets on the sequencer itself: only the first one, with no other shard watching, starts it.
    assert!(!c.local_watchers_changed(1, 2, 1_000));
    assert!(c.local_watchers_changed(0, 1, 1_000));
    assert_eq!(c.upkeep.last_poll, 1_000);
    // A replica's report: recorded once; the clock starts only if nobody watched before.
    assert!(c.note_watcher(2, true, 1, 5_000), "a new watcher is written");
    assert_eq!(c.upkeep.last_poll, 1_000, "the sequencer's own sockets were already watching");
    assert!(!c.note_watcher(2, true, 1, 6_000), "the same report again changes nothing");
    assert!(!c.local_watchers_changed(0, 1, 7_000), "shard 2 watches: the poll already runs");
    let mut idle = core();
    assert!(idle.note_watcher(3, true, 0, 9_000));
    assert_eq!(idle.upkeep.last_poll, 9_000);
    assert!(idle.note_watcher(3, false, 0, 9_500), "a watcher leaving is written too");
}

#[test]
fn one_coin_missing_or_without_a_change_leaves_btc_and_the_others_moving() {
    use crate::feeds::guard::BreakerState;
    let coins = vec!["bitcoin".into(), "ethereum".into(), "solana".into()];
    let feeds = FeedSettings { coins, breaker_failures: 1, ..FeedSettings::default() };
    let mut c = HubCore::new(HubLimits::default(), feeds);
    let quote = |usd: f64, change: Value| json!({"usd": usd, "usd_24h_change": change, "usd_market_cap": 1e9, "usd_24h_vol": 1e8});
    let body = |btc: f64, eth: Value, sol: Option<Value>| {
        let mut b = json!({"bitcoin": quote(btc, json!(1.0)), "ethereum": eth});
        if let Some(sol) = sol {
            b["solana"] = sol;
        }
        b.to_string()
    };
    round(&mut c, 1_000, Ok(body(100.0, quote(10.0, json!(2.0)), Some(quote(5.0, json!(3.0))))));
    // Ethereum's change is null and solana is gone: still a good answer, and btc moves on.
    let fx = round(&mut c, 11_000, Ok(body(101.0, quote(11.0, Value::Null), None)));
    assert_eq!(fx.published.len(), 2, "btc and market: {fx:?}");
    let market = c.snapshot().into_iter().find(|s| s.channel.as_str() == "market").unwrap();
    let btc = c.snapshot().into_iter().find(|s| s.channel == Channel::btc()).unwrap();
    assert_eq!(btc.data["price_usd"], 101.0);
    let eth = &market.data["coins"]["ethereum"];
    assert_eq!(
        (eth["price_usd"].clone(), eth["change_24h_pct"].clone(), eth.get("stale")),
        (json!(11.0), Value::Null, None)
    );
    let sol = &market.data["coins"]["solana"];
    assert_eq!(
        (sol["price_usd"].clone(), sol["stale"].clone(), sol["quoted_at"].clone()),
        (json!(5.0), json!(true), json!(1_000))
    );
    let st = c.stats(0, 0, |_| 0);
    let up = &st.upstreams[&Source::CoingeckoPrice];
    assert_eq!((up.requests[&Outcome::Ok], up.consecutive_failures, up.breaker.state), (2, 0, BreakerState::Closed));
    assert_eq!(up.coins["solana"].quoted_at, Some(1_000));
    assert!(up.coins["solana"].problem.is_some() && up.coins["ethereum"].problem.is_none());
    // The same partial answer again: nothing is news (the stale quote keeps its time).
    let fx = round(&mut c, 21_000, Ok(body(101.0, quote(11.0, Value::Null), None)));
    assert!(fx.published.is_empty(), "{fx:?}");
    // No usable bitcoin: a failure, which opens the breaker (BREAKER_FAILURES 1); nothing changes.
    let no_btc = json!({"ethereum": quote(12.0, json!(1.0)), "solana": quote(6.0, json!(1.0))}).to_string();
    let fx = round(&mut c, 31_000, Ok(no_btc));
    assert!(fx.published.is_empty(), "{fx:?}");
    let up = &c.stats(0, 0, |_| 0).upstreams[&Source::CoingeckoPrice];
    assert_eq!((up.requests[&Outcome::ParseError], up.breaker.state), (1, BreakerState::Open));
    // Solana is back: fresh again, its stale mark gone.
    let fx = round(&mut c, 200_000, Ok(body(102.0, quote(12.0, json!(1.0)), Some(quote(6.0, json!(1.0))))));
    assert_eq!(fx.published.len(), 2, "{fx:?}");
    let market = c.snapshot().into_iter().find(|s| s.channel.as_str() == "market").unwrap();
    assert_eq!(
        market.data["coins"]["solana"],
        json!({"price_usd": 6.0, "change_24h_pct": 1.0, "market_cap_usd": 1e9, "volume_24h_usd": 1e8})
    );
}
