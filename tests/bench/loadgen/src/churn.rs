//! The mass-churn run (`--mode churn`, driven by scripts/bench): N sockets connect, then all of
//! them close at once (each with a close frame, as a page unload or a mass logout does), and the
//! run times how long the server takes until its close counter has counted every one of them.
//! The server's count is read from `/metrics` (`tickwire_connections_closed_total`, summed over
//! its labels); the baseline objects print the same line.
use crate::cli::Args;
use crate::http::Conn;
use crate::procstat::{self, FinishCpu};
use crate::soak::{socket, Seen};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Acquire};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The closes counted so far in a `/metrics` exposition: every sample of
/// `tickwire_connections_closed_total`, whatever its labels.
pub fn closes_counted(exposition: &str) -> Option<f64> {
    metric_sum(exposition, "tickwire_connections_closed_total")
}

/// The sum of every sample of the family `name` in a `/metrics` exposition, whatever its labels.
pub fn metric_sum(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue; // another family with this prefix
        }
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
        found = Some(found.unwrap_or(0.0) + value);
    }
    found
}

/// The close count from one `GET /metrics` on `conn` (opened when there is none, kept for the
/// next read when the server keeps it open); None when the read fails, is not a 200 or is not
/// done by `deadline`: the answer can queue behind the closes the server is processing, and a
/// read with no bound would keep the run from ever reaching its own timeout.
pub(crate) async fn closes(authority: &str, conn: &mut Option<Conn>, deadline: Instant) -> Option<f64> {
    let req = format!("GET /metrics HTTP/1.1\r\nhost: {authority}\r\n\r\n");
    let read = async {
        // Taken out, so a failed or abandoned read leaves no half-read connection behind.
        let mut c = match conn.take() {
            Some(c) => c,
            None => Conn::open(authority).await.ok()?,
        };
        let answer = c.request(req.as_bytes()).await.ok()?;
        if answer.reusable {
            *conn = Some(c);
        }
        (answer.status == 200).then(|| String::from_utf8_lossy(&answer.body).into_owned())
    };
    let body = tokio::time::timeout_at(deadline.into(), read).await.ok().flatten()?;
    closes_counted(&body)
}

/// One `GET /metrics` on a connection of its own: the exposition, or None (no answer by
/// `deadline`, not a 200: the baseline has no `/metrics`).
pub(crate) async fn read_metrics(authority: &str, deadline: Instant) -> Option<String> {
    let req = format!("GET /metrics HTTP/1.1\r\nhost: {authority}\r\n\r\n");
    let read = async {
        let answer = Conn::open(authority).await.ok()?.request(req.as_bytes()).await.ok()?;
        (answer.status == 200).then(|| String::from_utf8_lossy(&answer.body).into_owned())
    };
    tokio::time::timeout_at(deadline.into(), read).await.ok().flatten()
}

pub async fn run(args: &Args, nonce: &str, threads: usize) -> i32 {
    let url = Arc::new(format!("ws://{}/ws?channels={}", args.authority, args.channel));
    let marker: Arc<str> = format!("\"churn\":\"{nonce}:").into();
    let settled = Arc::new(AtomicUsize::new(0));
    eprintln!("[{}] churn: opening {} sockets to {url}", args.label, args.sockets);
    let (mut closers, mut tasks) = (Vec::new(), Vec::new());
    let t_connect = Instant::now();
    for i in 0..args.sockets {
        let (tx, rx) = oneshot::channel();
        tasks.push(tokio::spawn(socket(url.clone(), marker.clone(), rx, args.timeout, settled.clone())));
        closers.push(tx);
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let ramp_deadline = Instant::now() + args.timeout.max(Duration::from_secs(120));
    while settled.load(Acquire) < args.sockets && Instant::now() < ramp_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_seconds = t_connect.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await; // catch-up frames pass
    let mut metrics = None; // the connection `/metrics` is read on
    let Some(before) = closes(&args.authority, &mut metrics, Instant::now() + args.timeout).await else {
        eprintln!("[{}] churn: GET /metrics gave no close count", args.label);
        return 1;
    };

    let server = procstat::CpuWindow::start(&args.server_pids, true);
    let client = procstat::self_ticks();
    let t0 = Instant::now();
    for tx in closers {
        let _ = tx.send(());
    }
    let mut seen: Vec<Seen> = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(s) = t.await {
            seen.push(s);
        }
    }
    let sent_seconds = t0.elapsed().as_secs_f64();
    let connected = seen.iter().filter(|s| s.connect_error.is_none()).count();
    let closed_by_server = seen.iter().filter(|s| s.closed_by_server).count();
    let mut connect_error_kinds = BTreeMap::<&str, usize>::new();
    for e in seen.iter().filter_map(|s| s.connect_error.as_deref()) {
        *connect_error_kinds.entry(e).or_default() += 1;
    }
    // Polled tightly: the answer is a time. A count that does not reach `connected` within the
    // timeout is reported as such.
    let (mut counted, mut polls, mut timed_out) = (0.0, 0u32, false);
    let deadline = t0 + args.timeout;
    loop {
        if let Some(now) = closes(&args.authority, &mut metrics, deadline).await {
            counted = now - before;
        }
        if counted >= connected as f64 {
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        polls += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wall = t0.elapsed();
    let server_cpu = server.finish(wall);
    let client_cpu_s = procstat::ticks_to_secs(procstat::self_ticks().saturating_sub(client));
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    let result = serde_json::json!({
        "label": args.label, "mode": "churn", "sockets": args.sockets, "connected": connected,
        "connect_errors": args.sockets - connected, "connect_seconds": round(connect_seconds, 3),
        "connect_error_kinds": connect_error_kinds,
        "closed_by_server": closed_by_server, "closes_counted": counted, "timed_out": timed_out,
        "closes_sent_seconds": round(sent_seconds, 3), "seconds": round(wall.as_secs_f64(), 3),
        "closes_per_s": round(counted / wall.as_secs_f64().max(1e-9), 0), "polls": polls,
        "server": server_cpu.map(|c| serde_json::json!({ "cpu_s": round(c.secs, 2), "cpu_pct": round(c.pct, 1) })),
        "client": { "cpu_s": round(client_cpu_s, 2),
                    "cpu_pct": round(100.0 * client_cpu_s / wall.as_secs_f64().max(1e-9), 1), "threads": threads },
    });
    println!("{result}");
    eprintln!(
        "[{}] churn: {counted} of {connected} closes counted {:.2} s after the first close",
        args.label,
        wall.as_secs_f64()
    );
    i32::from(timed_out || connected < args.sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_close_sample() {
        let text = "# TYPE tickwire_connections_closed_total counter\n\
                    tickwire_connections_closed_total{reason=\"client\"} 4998\n\
                    tickwire_connections_closed_total{reason=\"error\"} 2\n\
                    tickwire_connections_closed_total_extra 7\n\
                    tickwire_connections_opened_total 5001\n";
        assert_eq!(closes_counted(text), Some(5000.0));
        assert_eq!(closes_counted("tickwire_connections_closed_total 12\n"), Some(12.0));
        assert_eq!(closes_counted("tickwire_sockets_connected 3\n"), None);
    }
}
