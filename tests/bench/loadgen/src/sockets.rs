//! The WebSocket side: connecting N sockets, reading their frames, and the shared per-publish
//! bookkeeping (who received which K, when, and the marker scanner that finds K in a frame).
use crate::cli::Args;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Error as WsError, Message};

/// State shared by the publisher and every socket task, indexed by publish number K (1..=M).
pub struct Tracker {
    base: Instant,
    /// Nanoseconds since `base` + 1 when publish K was sent (0: not yet).
    sent_ns: Vec<AtomicU64>,
    /// How many sockets received K (first receipts only).
    pub count: Vec<AtomicU32>,
    /// Slowest socket's latency for K, in microseconds.
    pub max_lat_us: Vec<AtomicU64>,
    /// Sockets open now (the number a publish must reach).
    pub live: AtomicUsize,
    /// When the last first-receipt arrived (nanoseconds since `base`).
    last_ns: AtomicU64,
    notify: Notify,
}

impl Tracker {
    pub fn new(publishes: usize) -> Self {
        let n = publishes + 1;
        Tracker {
            base: Instant::now(),
            sent_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            count: (0..n).map(|_| AtomicU32::new(0)).collect(),
            max_lat_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            live: AtomicUsize::new(0),
            last_ns: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }

    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Records that publish K is being sent now: call before writing the request.
    pub fn mark_sent(&self, k: usize) {
        self.sent_ns[k].store(self.now_ns() + 1, Release);
    }

    /// The instant of the last first-receipt, if any.
    pub fn last_delivery(&self) -> Option<Instant> {
        let ns = self.last_ns.load(Acquire);
        (ns > 0).then(|| self.base + Duration::from_nanos(ns))
    }

    fn complete(&self, k: usize) -> bool {
        self.count[k].load(Acquire) as usize >= self.live.load(Acquire)
    }

    /// Waits until every open socket has received every K in `ks`; false on timeout.
    pub async fn wait_all(&self, ks: &[usize], timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if ks.iter().all(|&k| self.complete(k)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return ks.iter().all(|&k| self.complete(k));
            }
        }
    }

    /// Counts the deliveries found in one text frame for one socket.
    fn on_text(&self, st: &mut SocketResult, text: &str, marker: &str) {
        let now = self.now_ns();
        scan(text, marker, |k| {
            let Ok(k) = usize::try_from(k) else { return };
            if k == 0 || k >= self.count.len() {
                return;
            }
            let (word, bit) = (k / 64, 1u64 << (k % 64));
            if st.seen[word] & bit != 0 {
                st.duplicates += 1;
                return;
            }
            st.seen[word] |= bit;
            let sent = self.sent_ns[k].load(Acquire);
            if sent > 0 {
                let lat_us = now.saturating_sub(sent - 1) / 1000;
                st.latencies.push((k as u32, lat_us.min(u32::MAX as u64) as u32));
                self.max_lat_us[k].fetch_max(lat_us, AcqRel);
            }
            self.last_ns.fetch_max(now, AcqRel);
            if self.count[k].fetch_add(1, AcqRel) as usize + 1 >= self.live.load(Acquire) {
                self.notify.notify_waiters();
            }
        });
    }
}

/// Calls `f(K)` for every `MARKER<digits>` in `text` (the marker is `"bench":"NONCE:`).
pub fn scan(text: &str, marker: &str, mut f: impl FnMut(u64)) {
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        rest = &rest[i + marker.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(k) = rest[..digits].parse() {
            f(k);
        }
        rest = &rest[digits..];
    }
}

/// What one socket saw, handed back when the run ends.
#[derive(Default)]
pub struct SocketResult {
    seen: Vec<u64>,
    pub duplicates: u64,
    /// (K, latency in microseconds) of each first receipt.
    pub latencies: Vec<(u32, u32)>,
    pub closed_early: bool,
    /// Text messages that carried an update of this run, and their bytes.
    pub messages: u64,
    pub bytes: u64,
}

pub struct Connected {
    pub handles: Vec<JoinHandle<SocketResult>>,
    pub connected: usize,
    pub errors: usize,
    pub error_kinds: BTreeMap<String, usize>,
    pub seconds: f64,
}

/// Opens `args.sockets` sockets, at most `connect_concurrency` handshakes at a time; each socket
/// then reads until `shutdown` turns true or the server closes it.
pub async fn connect_all(
    args: &Args,
    nonce: &str,
    tracker: &Arc<Tracker>,
    shutdown: watch::Receiver<bool>,
) -> Connected {
    let mut url = format!("ws://{}/ws?channels={}", args.authority, args.channel);
    if let Some(ms) = args.every {
        url.push_str(&format!("&every={}:{ms}", args.channel));
    }
    let url = Arc::new(url);
    let marker: Arc<str> = format!("\"bench\":\"{nonce}:").into();
    let sem = Arc::new(Semaphore::new(args.connect_concurrency));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let mut handles = Vec::with_capacity(args.sockets);
    for i in 0..args.sockets {
        let (marker, sem, tx, tracker, mut shutdown) =
            (marker.clone(), sem.clone(), tx.clone(), tracker.clone(), shutdown.clone());
        let url = match &args.token_secret {
            Some(secret) => Arc::new(format!("{url}&token={}", socket_token(secret, i, &args.channel))),
            None => url.clone(),
        };
        let (timeout, words) = (args.timeout, args.publishes / 64 + 1);
        handles.push(tokio::spawn(async move {
            let Ok(permit) = sem.acquire_owned().await else { return SocketResult::default() };
            let mut ws = match connect(&url, timeout).await {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return SocketResult::default();
                }
            };
            drop(permit);
            tracker.live.fetch_add(1, AcqRel);
            let _ = tx.send(Ok(Instant::now()));
            let mut st = SocketResult { seen: vec![0; words], ..Default::default() };
            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.changed() => break,
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            if t.as_str().contains(&*marker) {
                                st.messages += 1;
                                st.bytes += t.len() as u64;
                            }
                            tracker.on_text(&mut st, t.as_str(), &marker)
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            st.closed_early = true;
                            break;
                        }
                        Some(Ok(_)) => {}
                    },
                }
            }
            if st.closed_early {
                tracker.live.fetch_sub(1, AcqRel);
                tracker.notify.notify_waiters();
            }
            st
        }));
    }
    drop(tx);
    let (mut connected, mut errors, mut last) = (0, 0, start);
    let mut error_kinds = BTreeMap::new();
    while let Some(r) = rx.recv().await {
        match r {
            Ok(at) => {
                connected += 1;
                last = last.max(at);
            }
            Err(e) => {
                errors += 1;
                *error_kinds.entry(e).or_insert(0) += 1;
            }
        }
        if connected + errors == args.sockets {
            break;
        }
    }
    for (e, n) in &error_kinds {
        eprintln!("  connect error x{n}: {e}");
    }
    Connected { handles, connected, errors, error_kinds, seconds: (last - start).as_secs_f64() }
}

pub(crate) type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One socket, retried a few times when the server refuses or runs out of descriptors.
/// Socket `i`'s own token: sub `bench-<i>`, `subscribe` on `channel`, an hour to live.
fn socket_token(secret: &str, i: usize, channel: &str) -> String {
    use tickwire_hub::auth::{mint, Caps, Claims, Subject};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let sub = Subject::parse(&format!("bench-{i}")).expect("a short sub");
    let mut claims = Claims::new(sub, now + 3600);
    claims.caps = Caps::from_claim(&serde_json::json!({ channel: ["subscribe"] })).expect("a channel name");
    mint(&claims, secret)
}

pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<Ws, String> {
    // tungstenite's default 128 KiB read buffer is zero-filled on every read; frames here are small.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = tokio::time::timeout(timeout, tokio_tungstenite::connect_async_with_config(url, Some(config), true));
        let err = match r.await {
            Ok(Ok((ws, _))) => return Ok(ws),
            Ok(Err(e)) => e,
            Err(_) => return Err("handshake timeout".into()),
        };
        let retry = match &err {
            WsError::Io(e) => {
                matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset)
                    || matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::EADDRNOTAVAIL)
                    )
            }
            _ => false,
        };
        if !retry || attempt >= 5 {
            return Err(match err {
                WsError::Http(r) => format!("HTTP {}", r.status()),
                e => e.to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "\"bench\":\"n1:";

    fn ks(text: &str) -> Vec<u64> {
        let mut v = Vec::new();
        scan(text, M, |k| v.push(k));
        v
    }

    #[test]
    fn scans_single_and_batch_frames() {
        let single = r#"{"type":"update","channel":"bench","seq":4,"data":{"bench":"n1:17","pad":"xx"}}"#;
        assert_eq!(ks(single), vec![17]);
        let batch = r#"{"type":"batch","frames":[{"type":"update","data":{"bench":"n1:3","pad":"x"}},
            {"type":"update","data":{"pad":"x","bench":"n1:4"}},{"data":{"bench":"n1:5"}}]}"#;
        assert_eq!(ks(batch), vec![3, 4, 5]);
        let raw_publish = r#"{"channel":"bench","data":{"bench":"n1:200","pad":"xxxx"}}"#;
        assert_eq!(ks(raw_publish), vec![200]);
    }

    #[test]
    fn ignores_other_nonces_and_junk() {
        assert_eq!(
            ks(r#"{"data":{"bench":"n2:7"}} {"bench":"n11:8"} {"bench":"n1:"} {"bench":"n1:x"}"#),
            Vec::<u64>::new()
        );
        assert_eq!(ks(r#"{"bench":"n0:1"}{"bench":"n1:9"}"#), vec![9]);
    }

    #[test]
    fn counts_duplicates_and_out_of_range() {
        let t = Tracker::new(100);
        t.live.store(1, Relaxed);
        let mut st = SocketResult { seen: vec![0; 2], ..Default::default() };
        t.mark_sent(3);
        t.on_text(&mut st, r#"{"type":"batch","frames":[{"data":{"bench":"n1:3"}},{"data":{"bench":"n1:64"}}]}"#, M);
        t.on_text(&mut st, r#"{"data":{"bench":"n1:3"}} {"bench":"n1:0"} {"bench":"n1:101"}"#, M);
        assert_eq!(st.duplicates, 1);
        assert_eq!(st.latencies.len(), 1); // 64 was never sent: counted, no latency
        assert_eq!((t.count[3].load(Relaxed), t.count[64].load(Relaxed)), (1, 1));
        assert!(t.complete(3) && t.complete(64) && !t.complete(5));
    }
}
