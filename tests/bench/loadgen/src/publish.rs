//! The publishing side: a minimal HTTP/1.1 keep-alive client for `POST /api/publish`, and the
//! seq (closed loop) and rate (open loop) drivers.
use crate::cli::{Args, Mode};
use crate::sockets::Tracker;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What happened to the publishes.
#[derive(Default)]
pub struct Published {
    /// ok[K]: publish K was answered 2xx (index 0 unused).
    pub ok: Vec<bool>,
    pub attempted: usize,
    pub fail_statuses: BTreeMap<String, u64>,
    /// A seq wait ran out: publishing stopped there.
    pub timed_out: bool,
}

/// Keep-alive connections to the server, shared by concurrent publishes.
pub(crate) struct Client {
    authority: String,
    head: String,
    body_prefix: String,
    body_suffix: String,
    idle: Mutex<Vec<Conn>>,
    timeout: Duration,
}

impl Client {
    pub(crate) fn new(args: &Args, nonce: &str) -> Self {
        Client {
            authority: args.authority.clone(),
            head: format!(
                "POST /api/publish HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\n",
                args.authority, args.token
            ),
            body_prefix: format!("{{\"channel\":\"{}\",\"data\":{{\"bench\":\"{nonce}:", args.channel),
            body_suffix: format!("\",\"pad\":\"{}\"}}}}", "x".repeat(args.bytes)),
            idle: Mutex::new(Vec::new()),
            timeout: args.timeout,
        }
    }

    /// Sends publish K once (never retried): the status, or a short error name.
    async fn publish(&self, k: usize, tracker: &Tracker) -> Result<u16, String> {
        let body = format!("{}{k}{}", self.body_prefix, self.body_suffix);
        self.post(&body, || tracker.mark_sent(k)).await
    }

    /// POSTs `body`, calling `on_send` just before the request is written.
    pub(crate) async fn post(&self, body: &str, on_send: impl FnOnce()) -> Result<u16, String> {
        let req = format!("{}content-length: {}\r\n\r\n{body}", self.head, body.len());
        let pooled = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let attempt = async {
            let mut conn = match pooled {
                Some(c) => c,
                None => Conn::open(&self.authority).await?,
            };
            on_send();
            let (status, reusable) = conn.request(req.as_bytes()).await?;
            if reusable {
                if let Ok(mut v) = self.idle.lock() {
                    v.push(conn);
                }
            }
            Ok::<u16, io::Error>(status)
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => Err(format!("io: {:?}", e.kind())),
            Err(_) => Err("timeout".into()),
        }
    }
}

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(authority: &str) -> io::Result<Conn> {
        let s = TcpStream::connect(authority).await?;
        s.set_nodelay(true)?;
        Ok(Conn { s, buf: Vec::with_capacity(4096) })
    }

    /// Reads more bytes into the buffer; an early end of stream is an error.
    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        match self.s.read(&mut chunk).await? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn skip(&mut self, n: usize) -> io::Result<()> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        self.buf.drain(..n);
        Ok(())
    }

    /// Sends one request and reads the whole response: (status, connection reusable).
    async fn request(&mut self, req: &[u8]) -> io::Result<(u16, bool)> {
        self.buf.clear();
        self.s.write_all(req).await?;
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let status_line = self.line().await?;
        let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("status"))?;
        let (mut len, mut chunked, mut close) = (None, false, false);
        loop {
            let h = self.line().await?;
            if h.is_empty() {
                break;
            }
            let Some((name, value)) = h.split_once(':') else { continue };
            let value = value.trim().to_ascii_lowercase();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = Some(value.parse::<usize>().map_err(|_| bad("content-length"))?),
                "transfer-encoding" => chunked = value.contains("chunked"),
                "connection" => close = value == "close",
                _ => {}
            }
        }
        if status == 204 || status == 304 || (100..200).contains(&status) {
        } else if chunked {
            loop {
                let size = self.line().await?;
                let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| bad("chunk size"))?;
                if size == 0 {
                    while !self.line().await?.is_empty() {}
                    break;
                }
                self.skip(size + 2).await?;
            }
        } else if let Some(n) = len {
            self.skip(n).await?;
        } else {
            // No length: the body ends with the connection.
            while self.fill().await.is_ok() {
                self.buf.clear();
            }
            close = true;
        }
        Ok((status, !close))
    }
}

fn record(p: &mut Published, k: usize, r: Result<u16, String>) {
    match r {
        Ok(s) if (200..300).contains(&s) => p.ok[k] = true,
        Ok(s) => *p.fail_statuses.entry(s.to_string()).or_insert(0) += 1,
        Err(e) => *p.fail_statuses.entry(e).or_insert(0) += 1,
    }
}

/// One publish without a marker before the sockets connect: tickwire answers a subscription to
/// an app channel that was never published with `unknown_channel`.
pub async fn warm_up(args: &Args, nonce: &str) -> Result<u16, String> {
    let body = format!("{{\"channel\":\"{}\",\"data\":{{\"warmup\":\"{nonce}\"}}}}", args.channel);
    Client::new(args, nonce).post(&body, || ()).await
}

/// Publishes and waits for the deliveries, as the mode says.
pub async fn run(args: &Args, nonce: &str, tracker: &Arc<Tracker>, start: Instant) -> Published {
    let client = Arc::new(Client::new(args, nonce));
    let m = args.publishes;
    let mut p = Published { ok: vec![false; m + 1], ..Default::default() };
    match args.mode {
        Mode::Seq => {
            for k in 1..=m {
                let r = client.publish(k, tracker).await;
                p.attempted = k;
                record(&mut p, k, r);
                if p.ok[k] && !tracker.wait_all(&[k], args.timeout).await {
                    eprintln!(
                        "[{}] publish {k} did not reach every socket in {:?}: stopping",
                        args.label, args.timeout
                    );
                    p.timed_out = true;
                    break;
                }
                if k % 50 == 0 {
                    eprintln!("[{}] seq: {k}/{m} published", args.label);
                }
            }
        }
        Mode::Rate => {
            let start = tokio::time::Instant::from_std(start);
            let mut tasks = tokio::task::JoinSet::new();
            for k in 1..=m {
                tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / args.rate)).await;
                let (client, tracker) = (client.clone(), tracker.clone());
                tasks.spawn(async move { (k, client.publish(k, &tracker).await) });
            }
            p.attempted = m;
            while let Some(r) = tasks.join_next().await {
                if let Ok((k, r)) = r {
                    record(&mut p, k, r);
                }
            }
            eprintln!("[{}] rate: {m} published, waiting for deliveries", args.label);
            let ks: Vec<usize> = (1..=m).filter(|&k| p.ok[k]).collect();
            p.timed_out = !tracker.wait_all(&ks, args.timeout).await;
        }
        // The soak has its own broadcaster (soak.rs), and the churn run publishes nothing
        // (churn.rs): neither comes here.
        Mode::Soak | Mode::Churn => {}
    }
    p
}
