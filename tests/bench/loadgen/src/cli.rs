//! The command line and the run: parses the flags, then connects, publishes and reports.
use crate::procstat::{self, FinishCpu};
use crate::{publish, report, sockets};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: tickwire-loadgen --url http://127.0.0.1:PORT --token TOKEN --sockets N --mode seq|rate|soak|churn|storm
  [--token-secret S (each socket connects with its own token for --channel, minted with S)]
  [--publishes M (200; storm: the updates missed while away)] [--reconnect-only (storm: no since, no catch-up)] [--rate R per second (50)] [--bytes B (200)] [--channel bench]
  [--duration-secs 600 (soak)] [--churn C connects per second (100, soak)]
  [--every MS (rate: sockets ask for conflated delivery, every=CHANNEL:MS)]
  [--connect-concurrency 200] [--server-pid PID]... [--proxy-pid PID]... [--label TEXT] [--timeout-secs 60]";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Publish K, wait until every socket has it, then publish K+1.
    Seq,
    /// Open loop: publish K at start + K/R seconds whatever the answers.
    Rate,
    /// Hold the sockets for `duration`, broadcasting at R/s, closing and replacing C a second.
    Soak,
    /// Connect every socket, close them all at once, time until the server counted each close.
    Churn,
    /// Connect every socket, drop them all at once, publish M, reconnect all with `since`, time
    /// until each has exactly what it missed (storm.rs).
    Storm,
}

#[derive(Debug)]
pub struct Args {
    /// `host:port` of the server, taken from --url.
    pub authority: String,
    pub token: String,
    pub sockets: usize,
    pub mode: Mode,
    pub publishes: usize,
    pub rate: f64,
    pub bytes: usize,
    pub channel: String,
    pub connect_concurrency: usize,
    pub server_pids: Vec<i32>,
    pub proxy_pids: Vec<i32>,
    pub label: String,
    pub timeout: Duration,
    pub duration: Duration,
    pub churn: f64,
    /// Storm: reconnect without `since` and count a socket back at its handshake (a server with
    /// no history, such as the baseline).
    pub reconnect_only: bool,
    /// Each socket connects with `?token=`, its own token (sub `bench-<i>`, `subscribe` on the
    /// channel) minted with this secret: the private-channel case.
    pub token_secret: Option<String>,
    /// Rate mode: each socket connects with `every=<channel>:<ms>` (conflated delivery), and
    /// the run waits until every socket holds the last value rather than every update.
    pub every: Option<u64>,
}

pub(crate) fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut url, mut token, mut sockets, mut mode) = (None, None, None, None);
    let mut a = Args {
        authority: String::new(),
        token: String::new(),
        sockets: 0,
        mode: Mode::Seq,
        publishes: 200,
        rate: 50.0,
        bytes: 200,
        channel: "bench".into(),
        connect_concurrency: 200,
        server_pids: Vec::new(),
        proxy_pids: Vec::new(),
        label: String::new(),
        timeout: Duration::from_secs(60),
        duration: Duration::from_secs(600),
        churn: 100.0,
        reconnect_only: false,
        token_secret: None,
        every: None,
    };
    fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
        v.parse().map_err(|_| format!("{flag}: not a valid number: {v}"))
    }
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--reconnect-only" {
            a.reconnect_only = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => url = Some(v),
            "--token" => token = Some(v),
            "--sockets" => sockets = Some(num::<usize>(&flag, v)?),
            "--mode" => {
                mode = Some(match v.as_str() {
                    "seq" => Mode::Seq,
                    "rate" => Mode::Rate,
                    "soak" => Mode::Soak,
                    "churn" => Mode::Churn,
                    "storm" => Mode::Storm,
                    _ => return Err(format!("--mode must be seq, rate, soak, churn or storm, not {v}")),
                })
            }
            "--publishes" => a.publishes = num(&flag, v)?,
            "--rate" => a.rate = num(&flag, v)?,
            "--bytes" => a.bytes = num(&flag, v)?,
            "--channel" => a.channel = v,
            "--token-secret" => a.token_secret = Some(v),
            "--every" => a.every = Some(num(&flag, v)?),
            "--connect-concurrency" => a.connect_concurrency = num(&flag, v)?,
            "--server-pid" => a.server_pids.push(num(&flag, v)?),
            "--proxy-pid" => a.proxy_pids.push(num(&flag, v)?),
            "--label" => a.label = v,
            "--timeout-secs" => a.timeout = Duration::from_secs_f64(num(&flag, v)?),
            "--duration-secs" => a.duration = Duration::from_secs_f64(num(&flag, v)?),
            "--churn" => a.churn = num(&flag, v)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url.strip_prefix("http://").ok_or("--url must start with http://")?;
    let host = rest.split('/').next().unwrap_or_default();
    a.authority = if host.contains(':') { host.to_string() } else { format!("{host}:80") };
    a.token = token.ok_or("--token is required")?;
    a.sockets = sockets.ok_or("--sockets is required")?;
    a.mode = mode.ok_or("--mode is required")?;
    if host.is_empty() || a.sockets == 0 || a.publishes == 0 || a.connect_concurrency == 0 {
        return Err("--url host, --sockets, --publishes and --connect-concurrency must be non-empty/positive".into());
    }
    if a.rate <= 0.0 || !a.rate.is_finite() {
        return Err("--rate must be positive".into());
    }
    if a.churn < 0.0 || !a.churn.is_finite() {
        return Err("--churn must be zero or positive".into());
    }
    if a.channel.is_empty() || !a.channel.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err("--channel must be [A-Za-z0-9_-]+".into());
    }
    Ok(a)
}

/// A random per-run nonce (std's hasher keys are random per process).
fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{:016x}", h.finish())
}

pub fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tickwire-loadgen: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tickwire-loadgen: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(run(args, threads));
    // Open sockets and blocked tasks are not worth an orderly shutdown: the process ends here.
    std::process::exit(code);
}

async fn run(args: Args, threads: usize) -> i32 {
    let nonce = nonce();
    match args.mode {
        Mode::Soak => return crate::soak::run(&args, &nonce).await,
        Mode::Churn => return crate::churn::run(&args, &nonce, threads).await,
        Mode::Storm => return crate::storm::run(&args, &nonce, threads).await,
        Mode::Seq | Mode::Rate => {}
    }
    let rss = procstat::RssSampler::start(args.server_pids.clone());
    let cpu_start = procstat::self_ticks();
    let tracker = Arc::new(sockets::Tracker::new(args.publishes));
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    match publish::warm_up(&args, &nonce).await {
        Ok(s) if (200..300).contains(&s) => {}
        r => eprintln!("[{}] warm-up publish failed: {r:?}", args.label),
    }
    eprintln!(
        "[{}] connecting {} sockets to ws://{}/ws?channels={}",
        args.label, args.sockets, args.authority, args.channel
    );
    let conn = sockets::connect_all(&args, &nonce, &tracker, shutdown_rx).await;
    let connect_cpu = procstat::self_ticks().saturating_sub(cpu_start);
    eprintln!(
        "[{}] connected {}/{} in {:.2} s ({} errors)",
        args.label, conn.connected, args.sockets, conn.seconds, conn.errors
    );
    let mut out = report::Report::new(&args, nonce.clone(), threads, &conn, connect_cpu);
    if conn.connected == 0 {
        println!("{}", out.to_json());
        return 1;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // catch-up frames (welcome, subscribed) pass

    let metrics_before = crate::churn::read_metrics(&args.authority, Instant::now() + args.timeout).await;
    let server = procstat::CpuWindow::start(&args.server_pids, true);
    let proxy = procstat::CpuWindow::start(&args.proxy_pids, false);
    let client = procstat::self_ticks();
    let t0 = Instant::now();
    let published = publish::run(&args, &nonce, &tracker, t0).await;
    let wall = t0.elapsed();
    out.server_cpu = server.finish(wall);
    out.proxy_cpu = proxy.finish(wall);
    out.client_cpu_s = procstat::ticks_to_secs(procstat::self_ticks().saturating_sub(client));
    out.rss_end_kb = procstat::rss_kb_sum(&procstat::with_descendants(&args.server_pids));
    let _ = shutdown_tx.send(true);
    let mut per_socket = Vec::with_capacity(conn.handles.len());
    for h in conn.handles {
        if let Ok(r) = h.await {
            per_socket.push(r);
        }
    }
    out.rss_peak_kb = rss.stop();
    out.finish(&tracker, &published, per_socket, t0, wall);
    let metrics_after = crate::churn::read_metrics(&args.authority, Instant::now() + args.timeout).await;
    out.conflation(&args, metrics_before.as_deref(), metrics_after.as_deref());
    eprintln!(
        "[{}] delivered {}/{} in {:.2} s, {} failed publishes",
        args.label, out.delivered, out.expected, out.seconds, out.publish_failed
    );
    println!("{}", out.to_json());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_flags() {
        let a =
            args("--url http://127.0.0.1:9/x --token t --sockets 5 --mode rate --server-pid 1 --server-pid 2").unwrap();
        assert_eq!((a.authority.as_str(), a.sockets, a.mode, a.publishes), ("127.0.0.1:9", 5, Mode::Rate, 200));
        assert_eq!(a.server_pids, vec![1, 2]);
        assert!(args("--url http://h:1 --token t --sockets 5 --mode fast").is_err());
        assert!(args("--url http://h:1 --sockets 5 --mode seq").is_err());
        let a = args("--url http://h:1 --token t --sockets 5 --mode storm --reconnect-only --publishes 50").unwrap();
        assert_eq!((a.mode, a.reconnect_only, a.publishes), (Mode::Storm, true, 50));
    }
}
