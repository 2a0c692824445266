//! The publishing side: a keep-alive pool of HTTP connections (`http.rs`) for
//! `POST /api/publish`, and the seq (closed loop) and rate (open loop) drivers.
use crate::cli::{Args, Mode};
use crate::http::Conn;
use crate::sockets::Tracker;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

    /// The body of publish K: `{"channel":C,"data":{"bench":"NONCE:K","pad":"x..."}}`.
    pub(crate) fn body(&self, k: usize) -> String {
        format!("{}{k}{}", self.body_prefix, self.body_suffix)
    }

    /// Sends publish K once (never retried): the status, or a short error name.
    async fn publish(&self, k: usize, tracker: &Tracker) -> Result<u16, String> {
        self.post(&self.body(k), || tracker.mark_sent(k)).await
    }

    /// POSTs `body`, calling `on_send` just before the request is written.
    pub(crate) async fn post(&self, body: &str, on_send: impl FnOnce()) -> Result<u16, String> {
        self.send(body, on_send).await.map(|(status, _)| status)
    }

    /// POSTs `body`: the status and the answer's body (tickwire's names the publish's seq).
    pub(crate) async fn post_answer(&self, body: &str) -> Result<(u16, Vec<u8>), String> {
        self.send(body, || ()).await
    }

    async fn send(&self, body: &str, on_send: impl FnOnce()) -> Result<(u16, Vec<u8>), String> {
        let req = format!("{}content-length: {}\r\n\r\n{body}", self.head, body.len());
        let pooled = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let attempt = async {
            let mut conn = match pooled {
                Some(c) => c,
                None => Conn::open(&self.authority).await?,
            };
            on_send();
            let answer = conn.request(req.as_bytes()).await?;
            if answer.reusable {
                if let Ok(mut v) = self.idle.lock() {
                    v.push(conn);
                }
            }
            Ok::<_, io::Error>((answer.status, answer.body))
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(format!("io: {:?}", e.kind())),
            Err(_) => Err("timeout".into()),
        }
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
            let mut ks: Vec<usize> = (1..=m).filter(|&k| p.ok[k]).collect();
            if args.every.is_some() {
                // Conflated sockets skip updates by design: each must end with the last value.
                ks = ks.last().copied().into_iter().collect();
            }
            p.timed_out = !tracker.wait_all(&ks, args.timeout).await;
        }
        // The soak has its own broadcaster (soak.rs), the churn run publishes nothing
        // (churn.rs) and the storm publishes its own way (storm.rs): none comes here.
        Mode::Soak | Mode::Churn | Mode::Storm => {}
    }
    p
}
