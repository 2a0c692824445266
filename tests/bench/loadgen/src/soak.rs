//! The soak run (`--mode soak`, driven by scripts/soak): N sockets held open for a long time, a
//! broadcast every 1/R s, and churn (C sockets a second closed and replaced by new ones), then
//! a count of every acknowledged publish a socket should have had and did not get, and the
//! server's memory over the run.
use crate::cli::Args;
use crate::procstat;
use crate::publish::Client;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

/// What one socket saw of the soak channel: which publishes (by K) and from which K on it was
/// subscribed (the latest value its catch-up carried, or the first live update).
#[derive(Default, Debug)]
pub struct Seen {
    first: Option<u64>,
    seen: Vec<u64>,
    last: u64,
    pub closed_by_server: bool,
    /// Why the connect failed, if it did.
    pub connect_error: Option<String>,
}

impl Seen {
    fn record(&mut self, k: u64) {
        let (word, bit) = ((k / 64) as usize, 1u64 << (k % 64));
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        self.seen[word] |= bit;
        self.first = Some(self.first.map_or(k, |f| f.min(k)));
        self.last = self.last.max(k);
    }

    fn has(&self, k: u64) -> bool {
        self.seen.get((k / 64) as usize).is_some_and(|w| w & (1 << (k % 64)) != 0)
    }

    /// Acknowledged publishes after the first this socket saw and up to `through` that it did not
    /// get. A socket closed on purpose is held to what it saw last (frames in flight when it
    /// closed are not lost); one open at the end, to the last publish.
    pub fn lost(&self, acked: &[bool], through: u64) -> u64 {
        let Some(first) = self.first else { return 0 };
        (first + 1..=through).filter(|&k| acked.get(k as usize).copied().unwrap_or(false) && !self.has(k)).count()
            as u64
    }
}

/// One socket: connects, records what it sees until told to close (then closes politely) or
/// the server closes it.
pub(crate) async fn socket(
    url: Arc<String>,
    marker: Arc<str>,
    close: oneshot::Receiver<()>,
    timeout: Duration,
    settled: Arc<AtomicUsize>,
) -> Seen {
    let mut seen = Seen::default();
    let connected = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url.as_str())).await;
    settled.fetch_add(1, AcqRel);
    let mut ws = match connected {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            seen.connect_error = Some(e.to_string());
            return seen;
        }
        Err(_) => {
            seen.connect_error = Some("handshake timeout".into());
            return seen;
        }
    };
    tokio::pin!(close);
    loop {
        tokio::select! {
            biased;
            _ = &mut close => {
                let _ = ws.close(None).await;
                break;
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => crate::sockets::scan(t.as_str(), &marker, |k| seen.record(k)),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    seen.closed_by_server = true;
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    seen
}

/// A socket the run holds: how to close it, and its task.
struct Held {
    close: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Seen>,
}

pub async fn run(args: &Args, nonce: &str) -> i32 {
    let url = Arc::new(format!("ws://{}/ws?channels={}", args.authority, args.channel));
    let marker: Arc<str> = format!("\"soak\":\"{nonce}:").into();
    let client = Arc::new(Client::new(args, nonce));
    let body = |k: u64| format!("{{\"channel\":\"{}\",\"data\":{{\"soak\":\"{nonce}:{k}\"}}}}", args.channel);
    // K = 0 creates the channel, so sockets can subscribe before the first broadcast.
    let acked =
        Arc::new(Mutex::new(vec![matches!(client.post(&body(0), || ()).await, Ok(s) if (200..300).contains(&s))]));
    // Connects finished (or failed), so the ramp can wait for all of them.
    let settled = Arc::new(AtomicUsize::new(0));
    let open = |held: &mut Vec<Held>| {
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(socket(url.clone(), marker.clone(), rx, args.timeout, settled.clone()));
        held.push(Held { close: tx, task });
    };
    eprintln!("[{}] soak: opening {} sockets to {url}", args.label, args.sockets);
    let mut held = Vec::with_capacity(args.sockets);
    let t0 = Instant::now();
    for i in 0..args.sockets {
        open(&mut held);
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await; // a steady ramp, not a stampede
        }
    }
    // Memory at the start is measured with every socket open, not while they still connect.
    let ramp_deadline = Instant::now() + args.timeout.max(Duration::from_secs(120));
    while settled.load(Acquire) < args.sockets && Instant::now() < ramp_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids = procstat::with_descendants(&args.server_pids);
    let rss_start = procstat::rss_kb_sum(&pids);
    eprintln!(
        "[{}] soak: ramped up in {:.1} s; server RSS {} MB",
        args.label,
        t0.elapsed().as_secs_f64(),
        rss_start / 1024
    );

    // The broadcaster: K = 1, 2, ... every 1/R s, each acknowledged or not.
    let publishing = Arc::new(AtomicUsize::new(1));
    let publisher = {
        let (client, acked, publishing, period) = (client.clone(), acked.clone(), publishing.clone(), 1.0 / args.rate);
        let duration = args.duration;
        let bodies: Vec<String> = (0..=(duration.as_secs_f64() / period).ceil() as u64 + 1).map(body).collect();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut failed = BTreeMap::<String, u64>::new();
            for (k, b) in bodies.iter().enumerate().skip(1) {
                tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 * period)).await;
                if start.elapsed() >= duration {
                    break;
                }
                let ok = match client.post(b, || ()).await {
                    Ok(s) if (200..300).contains(&s) => true,
                    Ok(s) => {
                        *failed.entry(format!("HTTP {s}")).or_default() += 1;
                        false
                    }
                    Err(e) => {
                        *failed.entry(e).or_default() += 1;
                        false
                    }
                };
                if let Ok(mut a) = acked.lock() {
                    a.push(ok);
                }
                publishing.store(k + 1, Release);
            }
            failed
        })
    };

    // Churn: C closes and C new connects a second, spread evenly, for the whole run.
    let mut done = Vec::new(); // sockets closed by the churn
    let mut rss_samples = vec![(0u64, rss_start)];
    let mut fd_samples = vec![(0u64, procstat::fds_sum(&pids))];
    let (start, tick) = (tokio::time::Instant::now(), Duration::from_secs_f64(1.0 / args.churn.max(1e-9)));
    let mut next_sample = Duration::from_secs(60);
    let mut victim = 0x2545_f491_4f6c_dd1d_u64; // xorshift state: which socket goes next
    let mut churned = 0u64;
    while start.elapsed() < args.duration {
        if args.churn > 0.0 {
            // On a fixed schedule, so the rate holds however long each step takes.
            tokio::time::sleep_until(start + tick * (churned as u32 + 1)).await;
            victim ^= victim << 13;
            victim ^= victim >> 7;
            victim ^= victim << 17;
            let h = held.swap_remove((victim % held.len() as u64) as usize);
            let _ = h.close.send(());
            done.push(h.task);
            open(&mut held);
            churned += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if start.elapsed() >= next_sample {
            rss_samples.push((next_sample.as_secs(), procstat::rss_kb_sum(&pids)));
            fd_samples.push((next_sample.as_secs(), procstat::fds_sum(&pids)));
            eprintln!(
                "[{}] soak: {} s, {} published, {churned} churned, server RSS {} MB",
                args.label,
                next_sample.as_secs(),
                publishing.load(Acquire) - 1,
                rss_samples.last().map_or(0, |s| s.1) / 1024
            );
            next_sample += Duration::from_secs(60);
        }
    }
    let publish_errors = publisher.await.unwrap_or_default();
    let publish_failed: u64 = publish_errors.values().sum();
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    // Publishes attempted (K = 1..=last) and acknowledged.
    let last = acked.len() as u64 - 1;
    let acknowledged = acked.iter().skip(1).filter(|ok| **ok).count();

    // Every socket still open must have the last publish 3 s after it was acknowledged.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_end = procstat::rss_kb_sum(&pids);
    let mut at_end = Vec::with_capacity(held.len());
    for h in held {
        let _ = h.close.send(());
        at_end.push(h.task);
    }
    let (mut lost, mut closed_by_server, mut sockets) = (0u64, 0u64, 0u64);
    let mut connect_errors = BTreeMap::<String, u64>::new();
    let mut tally = |s: &Seen, through: u64| {
        sockets += 1;
        lost += s.lost(&acked, through);
        closed_by_server += u64::from(s.closed_by_server);
        if let Some(e) = &s.connect_error {
            *connect_errors.entry(e.clone()).or_default() += 1;
        }
    };
    for t in done {
        if let Ok(s) = t.await {
            let through = s.last;
            tally(&s, through);
        }
    }
    for t in at_end {
        if let Ok(s) = t.await {
            tally(&s, last);
        }
    }
    let result = serde_json::json!({
        "label": args.label,
        "sockets": args.sockets,
        "duration_s": args.duration.as_secs(),
        "rate": args.rate,
        "churn_per_s": args.churn,
        "publishes": last,
        "acknowledged": acknowledged,
        "publish_errors": publish_errors,
        "sockets_seen": sockets,
        "churned": churned,
        "lost": lost,
        "closed_by_server": closed_by_server,
        "connect_failed": connect_errors.values().sum::<u64>(),
        "connect_errors": connect_errors,
        "rss_start_mb": rss_start / 1024,
        "rss_end_mb": rss_end / 1024,
        "rss_growth": rss_end as f64 / rss_start.max(1) as f64,
        "rss_mb_by_minute": rss_samples.iter().map(|(t, kb)| [*t, kb / 1024]).collect::<Vec<_>>(),
        "server_fds_by_minute": fd_samples,
    });
    println!("{result}");
    i32::from(lost > 0 || publish_failed > 0 || closed_by_server > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_counts_acked_publishes_missing_after_the_first_seen() {
        let acked = [true, true, true, false, true, true, true];
        let mut s = Seen::default();
        for k in [1, 2, 5] {
            s.record(k);
        }
        // 3 was never acknowledged (not lost); 4 was, and is missing; 6 is past what it saw.
        assert_eq!(s.lost(&acked, s.last), 1);
        // Held to the end (6): 4 and 6 are missing.
        assert_eq!(s.lost(&acked, 6), 2);
        // A socket that saw nothing owes nothing.
        assert_eq!(Seen::default().lost(&acked, 6), 0);
        let mut big = Seen::default();
        big.record(130);
        assert!(big.has(130) && !big.has(129) && !big.has(1000));
    }
}
