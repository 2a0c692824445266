//! The reconnect storm (`--mode storm`, driven by scripts/bench): N sockets follow one channel
//! and hold the same last seq; then all of them drop at once, the run publishes M updates while
//! they are away, and all N reconnect with `since` as fast as the client can. It times the
//! reconnect, from its first connect until every socket has exactly the M updates it missed and
//! `subscribed` with `recovered: true` (`resume.rs` checks each socket), and reports the server's
//! CPU and memory and the client's own CPU. With `--reconnect-only` (the baseline, which keeps
//! no history and sends nothing on connect) the sockets reconnect without `since` and a socket
//! is back once its handshake is done.
//!
//! The drop is abortive: each socket's TCP connection is reset (SO_LINGER 0), with no close
//! frame, as a connection cut by a NAT, a load balancer or a lost network path looks to the
//! server (the churn case covers orderly closes). The reconnect starts once the server has
//! counted every drop (its `/metrics` close count) and sequenced the M updates, so the time
//! measured is the reconnect's alone.
mod socket;
mod summary;

use crate::churn::closes;
use crate::cli::Args;
use crate::procstat::{self, FinishCpu};
use crate::publish::Client;
use serde_json::json;
use socket::{socket, Phase, Plan, Shared};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};
use summary::summary;
use tokio::sync::{watch, Semaphore};

/// Updates published once every socket is open, before the drop: each socket must have the
/// last of them, so all resume from the same seq.
const BEFORE_DROP: usize = 3;

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Polls until `done()` or `deadline`; whether it got there.
async fn until(deadline: Instant, done: impl Fn() -> bool) -> bool {
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Publishes K in `ks` one after another; each accepted publish's seq (0 when the answer names
/// none, as the baseline's do not) is recorded in `marks`, failures by status or error.
async fn publish(
    client: &Client,
    nonce: &str,
    ks: std::ops::RangeInclusive<usize>,
    marks: &mut HashMap<u64, String>,
    failed: &mut BTreeMap<String, u64>,
) -> usize {
    let mut ok = 0;
    for k in ks {
        match client.post_answer(&client.body(k)).await {
            Ok((s, body)) if (200..300).contains(&s) => {
                ok += 1;
                let seq = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["seq"].as_u64());
                marks.insert(seq.unwrap_or(0), format!("{nonce}:{k}"));
            }
            Ok((s, _)) => *failed.entry(s.to_string()).or_default() += 1,
            Err(e) => *failed.entry(e).or_default() += 1,
        }
    }
    ok
}

pub async fn run(args: &Args, nonce: &str, threads: usize) -> i32 {
    let (n, missed, label) = (args.sockets, args.publishes, &args.label);
    let resume = !args.reconnect_only;
    let client = Client::new(args, nonce);
    // Creates the channel: tickwire answers a subscription to a channel never published with
    // `seq: 0` and no epoch, which a resume could not name.
    match crate::publish::warm_up(args, nonce).await {
        Ok(s) if (200..300).contains(&s) => {}
        r => eprintln!("[{label}] warm-up publish failed: {r:?}"),
    }
    let sh = Arc::new(Shared {
        url: format!("ws://{}/ws?channels={}", args.authority, args.channel),
        channel: args.channel.clone(),
        marker: format!("\"bench\":\"{nonce}:"),
        last_before: BEFORE_DROP as u64,
        resume,
        timeout: args.timeout,
        sem: Semaphore::new(args.connect_concurrency),
        settled: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        early: AtomicUsize::new(0),
        held: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
    });
    let (phase_tx, _) = watch::channel(Phase::Hold);
    eprintln!("[{label}] storm: opening {n} sockets to {}", sh.url);
    let t_connect = Instant::now();
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(socket(sh.clone(), phase_tx.subscribe()))).collect();
    until(t_connect + args.timeout.max(Duration::from_secs(120)), || sh.settled.load(Acquire) >= n).await;
    let connect_seconds = t_connect.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await; // the catch-ups of the first connect pass

    let (mut marks, mut failed) = (HashMap::new(), BTreeMap::new());
    publish(&client, nonce, 1..=BEFORE_DROP, &mut marks, &mut failed).await;
    // Every socket still open has to hold the last update before the drop (those that do not
    // are reported).
    let open_now = || sh.settled.load(Acquire) - sh.failed.load(Acquire) - sh.early.load(Acquire);
    let all_held = until(Instant::now() + args.timeout, || sh.held.load(Acquire) >= open_now()).await;
    let held = sh.held.load(Acquire);
    eprintln!("[{label}] storm: {held} sockets hold the last update (connected in {connect_seconds:.2} s)");

    let server_pids = procstat::with_descendants(&args.server_pids);
    let rss_before_kb = procstat::rss_kb_sum(&server_pids);
    let rss = procstat::RssSampler::start(args.server_pids.clone());
    let mut metrics = None; // the connection `/metrics` is read on
    let closes_before = closes(&args.authority, &mut metrics, Instant::now() + args.timeout).await;
    let drop_cpu = procstat::CpuWindow::start(&args.server_pids, true);
    let t_drop = Instant::now();
    let _ = phase_tx.send(Phase::Drop);
    // The updates go out while the server still handles the drops; then the run waits for both.
    let publishing = publish(&client, nonce, BEFORE_DROP + 1..=BEFORE_DROP + missed, &mut marks, &mut failed);
    let settling = async {
        let connected = sh.settled.load(Acquire) - sh.failed.load(Acquire);
        until(t_drop + args.timeout, || sh.dropped.load(Acquire) >= connected).await;
        let dropped = sh.dropped.load(Acquire) - sh.early.load(Acquire);
        let Some(before) = closes_before else {
            tokio::time::sleep(Duration::from_secs(2)).await; // no close count to read: a fixed wait
            return None;
        };
        let deadline = t_drop + args.timeout;
        loop {
            let counted = closes(&args.authority, &mut metrics, deadline).await.map_or(0.0, |c| c - before);
            if counted >= dropped as f64 || Instant::now() >= deadline {
                return Some((counted, t_drop.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (missed_ok, drops) = tokio::join!(publishing, settling);
    let away = t_drop.elapsed();
    let drop_cpu = drop_cpu.finish(away);
    let to = marks.keys().copied().max().unwrap_or(0);
    eprintln!(
        "[{label}] storm: {missed_ok} of {missed} published while away ({:.2} s); reconnecting",
        away.as_secs_f64()
    );

    let plan = Arc::new(Plan { marks, to });
    let server = procstat::CpuWindow::start(&args.server_pids, true);
    // wrangler's own processes: its bindings' local simulations (such as a rate limiter) can run
    // there rather than in the Worker's workerd.
    let proxy = procstat::CpuWindow::start(&args.proxy_pids, false);
    let client_ticks = procstat::self_ticks();
    let t0 = Instant::now();
    let _ = phase_tx.send(Phase::Reconnect(plan));
    let reconnecting = n - sh.failed.load(Acquire);
    let all_back = until(t0 + args.timeout, || sh.finished.load(Acquire) >= reconnecting).await;
    let wall = t0.elapsed();
    let server_cpu = server.finish(wall);
    let proxy_cpu = proxy.finish(wall);
    let client_cpu_s = procstat::ticks_to_secs(procstat::self_ticks().saturating_sub(client_ticks));
    let rss_end_kb = procstat::rss_kb_sum(&procstat::with_descendants(&args.server_pids));
    tokio::time::sleep(Duration::from_millis(300)).await; // late duplicates would arrive now
    let _ = phase_tx.send(Phase::Stop);
    let mut outcomes = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(o) = t.await {
            outcomes.push(o);
        }
    }
    let rss_peak_kb = rss.stop().max(rss_end_kb);
    let mut result = summary(args, &outcomes, t0, wall, all_back);
    let mb = |kb: u64| round(kb as f64 / 1024.0, 1);
    result["connect_seconds"] = json!(round(connect_seconds, 3));
    result["held_before_drop"] = json!(held);
    result["all_held"] = json!(all_held);
    result["closes_counted"] = json!(drops.map(|c| c.0));
    result["drop_seconds"] = json!(drops.map(|c| round(c.1.as_secs_f64(), 3)));
    result["away_seconds"] = json!(round(away.as_secs_f64(), 3));
    result["missed_published"] = json!(missed_ok);
    result["publish_fail_statuses"] = json!(failed);
    result["seq_after_missed"] = json!(resume.then_some(to));
    result["server"] = json!(server_cpu.map(|c| json!({
        "cpu_s": round(c.secs, 2), "cpu_pct": round(c.pct, 1),
        "drop_cpu_s": drop_cpu.map(|d| round(d.secs, 2)),
        "rss_before_mb": mb(rss_before_kb), "rss_peak_mb": mb(rss_peak_kb), "rss_end_mb": mb(rss_end_kb),
    })));
    result["proxy"] = json!(proxy_cpu.map(|c| json!({ "cpu_s": round(c.secs, 2), "cpu_pct": round(c.pct, 1) })));
    result["client"] = json!({ "cpu_s": round(client_cpu_s, 2),
        "cpu_pct": round(100.0 * client_cpu_s / wall.as_secs_f64().max(1e-9), 1), "threads": threads });
    println!("{result}");
    let ok = result["back"] == json!(n) && (!resume || result["exact"] == json!(n)) && missed_ok == missed;
    i32::from(!ok)
}
