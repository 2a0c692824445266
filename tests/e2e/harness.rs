//! End-to-end harness: a fixture upstream and a real `wrangler dev` per test, on 127.0.0.1 and
//! free ports, both stopped by PID when the test ends (also when it fails or panics).
//!
//! Expects the Worker to be built already (`scripts/test` does it once and sets
//! `TICKWIRE_PREBUILT=1` so each wrangler start skips the build).

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under the system temp dir, removed by [`TempDir::drop`].
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tickwire-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Stops a child and everything it started: SIGTERM to its process group, SIGKILL after 5 s.
fn stop_group(child: &mut Child) {
    let pgid = child.id() as i32;
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // The leader is gone; make sure no straggler (workerd) outlives it.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// Spawns `cmd` as the leader of a new process group, so [`stop_group`] reaches its children.
fn spawn_group(cmd: &mut Command) -> Child {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into()
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn read_reply(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str) -> Reply {
    let mut resp = resp.unwrap_or_else(|e| panic!("{what}: {e}"));
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Reply { status: resp.status().as_u16(), content_type, body }
}

/// The fixture upstream (tests/fixtures/upstream.py): CoinGecko- and Alternative.me-shaped JSON
/// whose answers each test sets.
pub struct Fixture {
    child: Child,
    pub base: String,
}

impl Fixture {
    pub fn start() -> Fixture {
        let mut child = spawn_group(
            Command::new("python3")
                .arg(root().join("tests/fixtures/upstream.py"))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        );
        let mut line = String::new();
        let stdout = child.stdout.take().expect("fixture stdout");
        BufReader::new(stdout).read_line(&mut line).expect("fixture banner");
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("fixture said {line:?}"));
        Fixture { base: format!("http://{addr}"), child }
    }

    /// Sets what `path` answers: a JSON body, or a raw string (for malformed bodies).
    pub fn set(&self, path: &str, status: u16, body: Value) {
        self.set_route(serde_json::json!({ "path": path, "status": status, "body": body }));
    }

    pub fn set_route(&self, spec: Value) {
        let r = read_reply(agent().put(&format!("{}/__fixture/route", self.base)).send_json(&spec), "fixture set");
        assert_eq!(r.status, 200, "fixture refused {spec}: {}", r.body);
    }

    /// Sets the BTC price and change; the other tracked coins keep the fixture's defaults
    /// (the feed wants every tracked coin in the answer).
    pub fn set_btc(&self, price: f64, change: f64) {
        self.set(
            "/api/v3/simple/price",
            200,
            serde_json::json!({
                "bitcoin": { "usd": price, "usd_24h_change": change, "usd_market_cap": 1.26e12, "usd_24h_vol": 3.1e10 },
                "ethereum": { "usd": 3120.5, "usd_24h_change": -0.82, "usd_market_cap": 3.75e11, "usd_24h_vol": 1.4e10 },
                "solana": { "usd": 142.1, "usd_24h_change": 3.1, "usd_market_cap": 6.5e10, "usd_24h_vol": 2.2e9 },
            }),
        );
    }

    /// The requests that reached the fixture, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        let r = read_reply(agent().get(&format!("{}/__fixture/requests", self.base)).call(), "fixture log");
        serde_json::from_str(&r.body).expect("fixture log JSON")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// A `wrangler dev` instance with local KV and Durable Objects in its own persist directory.
pub struct Wrangler {
    child: Option<Child>,
    pub base: String,
    pub port: u16,
    log: PathBuf,
    vars: Vec<(String, String)>,
    /// Kept across restarts, so a restarted instance sees the same storage.
    pub persist: TempDir,
    _logdir: TempDir,
}

impl Wrangler {
    /// Starts wrangler dev with its upstream vars pointing at `fixture`, plus `vars`.
    pub fn start(fixture: &Fixture, vars: &[(&str, &str)]) -> Wrangler {
        let mut all = vec![
            ("COINGECKO_BASE_URL".to_owned(), fixture.base.clone()),
            ("ALTERNATIVE_ME_BASE_URL".to_owned(), fixture.base.clone()),
            // Every changed value goes to KV at once, so tests see it in /api/snapshot.
            ("KV_MIN_WRITE_SECONDS".to_owned(), "0".to_owned()),
            // No fast BTC poll unless a test asks for one: request counts and frames stay exact.
            ("FAST_POLL_SECONDS".to_owned(), "3600".to_owned()),
            // Publishing off unless a test sets a token: a developer's .dev.vars (which
            // wrangler reads) must not leak into the tests.
            ("PUBLISH_TOKEN".to_owned(), String::new()),
        ];
        // A test's own value replaces the harness default.
        all.retain(|(k, _)| !vars.iter().any(|(t, _)| t == k));
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let logdir = TempDir::new("log");
        let mut w = Wrangler {
            child: None,
            base: String::new(),
            port: 0,
            log: logdir.0.join("wrangler.log"),
            vars: all,
            persist: TempDir::new("state"),
            _logdir: logdir,
        };
        w.launch();
        w
    }

    fn launch(&mut self) {
        self.launch_on(free_port());
    }

    fn launch_on(&mut self, port: u16) {
        self.port = port;
        self.base = format!("http://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("wrangler log");
        let mut cmd = Command::new(root().join("node_modules/.bin/wrangler"));
        cmd.current_dir(root())
            .args(["dev", "--local", "--test-scheduled", "--ip", "127.0.0.1"])
            .args(["--port", &self.port.to_string()])
            .args(["--inspector-port", &free_port().to_string()])
            .args(["--show-interactive-dev-session=false", "--log-level", "log"])
            .arg("--persist-to")
            .arg(&self.persist.0)
            .env("TICKWIRE_PREBUILT", "1")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("NO_UPDATE_NOTIFIER", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        for (k, v) in &self.vars {
            cmd.arg("--var").arg(format!("{k}:{v}"));
        }
        // The dashboard's own origin may open sockets (the port is only known now).
        if !self.vars.iter().any(|(k, _)| k == "ALLOWED_ORIGINS") {
            cmd.arg("--var").arg(format!("ALLOWED_ORIGINS:{}", self.base));
        }
        self.child = Some(spawn_group(&mut cmd));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("wrangler dev exited ({status}) before it was ready:\n{}", self.log());
            }
            if self.log().contains("Ready on") && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // The proxy accepts connections a moment before the Worker answers.
                if let Ok(r) = agent().get(&format!("{}/health", self.base)).call() {
                    if r.status().as_u16() != 502 {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("wrangler dev not ready after 90 s:\n{}", self.log());
    }

    /// Stops the instance (by PID, whole process group).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child);
        }
    }

    /// Stops and starts again on a new port with the same vars and persisted storage.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts a stopped instance again on the same port (a browser page keeps its origin),
    /// with the same vars and persisted storage.
    pub fn start_again(&mut self) {
        self.stop();
        let port = self.port;
        self.launch_on(port);
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn get(&self, path: &str) -> Reply {
        read_reply(agent().get(&format!("{}{path}", self.base)).call(), path)
    }

    pub fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path);
        (r.status, r.json())
    }

    /// Runs the scheduled handler once (what a cron tick does) and waits for it to finish.
    pub fn fire_cron(&self) {
        let r = self.get("/__scheduled?cron=*+*+*+*+*");
        assert_eq!(r.status, 200, "cron tick failed: {}", r.body);
    }

    pub fn ws(&self, path_and_query: &str) -> Ws {
        Ws::connect(&format!("ws://127.0.0.1:{}{path_and_query}", self.port))
    }

    /// Panics if the log shows a panic or an uncaught exception from the Worker.
    pub fn assert_no_panic(&self) {
        let log = self.log();
        for bad in ["panicked at", "RuntimeError: unreachable", "Uncaught"] {
            assert!(!log.contains(bad), "wrangler log shows {bad:?}:\n{log}");
        }
    }
}

impl Drop for Wrangler {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- wrangler log ({}) ---\n{}", self.base, self.log());
        }
    }
}

/// A WebSocket client that reads JSON frames with a deadline.
pub struct Ws {
    socket: tungstenite::WebSocket<MaybeTlsStream<TcpStream>>,
    /// Every frame received so far, for failure messages.
    pub seen: Vec<Value>,
}

impl Ws {
    pub fn connect(url: &str) -> Ws {
        let (socket, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("ws connect {url}: {e}"));
        Ws { socket, seen: Vec::new() }
    }

    fn set_timeout(&mut self, t: Duration) {
        if let MaybeTlsStream::Plain(s) = self.socket.get_mut() {
            let _ = s.set_read_timeout(Some(t.max(Duration::from_millis(1))));
        }
    }

    /// The next text frame parsed as JSON, or None if nothing arrives before `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.set_timeout(left);
            match self.socket.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::String(t.to_string()));
                    self.seen.push(v.clone());
                    return Some(v);
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None
                }
                Err(e) => panic!("ws read: {e}; frames so far: {:?}", self.seen),
            }
        }
    }

    /// Reads frames until one matches `pred`; panics with everything seen if none does in time.
    pub fn expect(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        while let Some(v) = self.next(deadline.saturating_duration_since(Instant::now())) {
            if pred(&v) {
                return v;
            }
        }
        panic!("no {what} within {timeout:?}; frames seen: {:#?}", self.seen);
    }

    pub fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text)).expect("ws send");
    }
}

/// The `update` frame predicate for a channel.
pub fn is_update(channel: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == "update" && v["channel"] == channel
}

/// Asserts that `promtool check metrics` accepts the exposition with exit 0 and says nothing
/// (exit 3 would be a lint problem, exit 1 a parse error).
pub fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup installs it)");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write metrics");
    let out = child.wait_with_output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool: {:?} {said}\n{text}", out.status.code());
}

// ---- Hub protocol helpers: publishing to app channels, and a client that reads protocol frames
// (unpacking `batch`) and reports a close instead of panicking on it.

/// The publish token the hub tests set as the `PUBLISH_TOKEN` var.
pub const PUBLISH_TOKEN: &str = "test-token";

impl Wrangler {
    /// `POST /api/publish` with a JSON `body`, bearing `token` when given.
    pub fn post_publish(&self, token: Option<&str>, body: &Value) -> Reply {
        // Exactly `application/json` (ureq would add `; charset=utf-8`), as the README shows.
        let mut req = agent().post(&format!("{}/api/publish", self.base)).header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        read_reply(req.send_json(body), "POST /api/publish")
    }

    /// Publishes `data` to `channel` with [`PUBLISH_TOKEN`]: the status and the answer (JSON, or
    /// the raw body as a string when it is not JSON).
    pub fn publish(&self, channel: &str, data: Value) -> (u16, Value) {
        let r = self.post_publish(Some(PUBLISH_TOKEN), &serde_json::json!({ "channel": channel, "data": data }));
        let v = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body));
        (r.status, v)
    }

    /// Publishes, asserts the 202 `{"channel","seq"}` answer, and returns the assigned seq.
    pub fn publish_seq(&self, channel: &str, data: Value) -> u64 {
        let (status, v) = self.publish(channel, data);
        assert_eq!(status, 202, "publish to {channel}: {v}");
        assert_eq!(v["channel"], channel, "publish answer: {v}");
        v["seq"].as_u64().unwrap_or_else(|| panic!("publish answer without seq: {v}"))
    }

    /// Connects a [`Client`]; its first frame must be `welcome`.
    pub fn client(&self, path_and_query: &str) -> Client {
        Client::new(self.ws(path_and_query))
    }

    /// Polls `/metrics` until it has the exact line `line`; panics with the last exposition.
    /// (Gauges follow socket events, so they may lag a close by a moment.)
    pub fn wait_metric(&self, line: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let body = self.get("/metrics").body;
            if body.lines().any(|l| l == line) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("no {line:?} in /metrics within {timeout:?}:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What one read of a [`Ws`] gave.
#[derive(Debug)]
pub enum WsEvent {
    /// A text frame, parsed as JSON (a string value when it is not JSON, e.g. `pong`).
    Text(Value),
    /// The server closed: its close code, or None when the connection ended without one.
    Closed(Option<u16>),
    Timeout,
}

impl Ws {
    /// Like [`Ws::next`], but a close (or a broken connection) is an event, not a panic.
    pub fn read_event(&mut self, timeout: Duration) -> WsEvent {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return WsEvent::Timeout;
            }
            self.set_timeout(left);
            match self.socket.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::String(t.to_string()));
                    self.seen.push(v.clone());
                    return WsEvent::Text(v);
                }
                Ok(Message::Close(frame)) => {
                    let code = frame.map(|f| u16::from(f.code));
                    self.seen.push(serde_json::json!({ "(closed)": code }));
                    return WsEvent::Closed(code);
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return WsEvent::Timeout
                }
                Err(e) => {
                    self.seen.push(serde_json::json!({ "(connection ended)": e.to_string() }));
                    return WsEvent::Closed(None);
                }
            }
        }
    }

    /// Sends a text frame; false if the connection is already gone.
    pub fn try_send_text(&mut self, text: &str) -> bool {
        self.socket.send(Message::text(text)).is_ok()
    }

    /// Starts the closing handshake and waits briefly for the server's answer.
    pub fn close(&mut self) {
        let _ = self.socket.close(None);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let WsEvent::Closed(_) = self.read_event(deadline.saturating_duration_since(Instant::now())) {
                return;
            }
        }
    }
}

/// The frames one text message carries: the `frames` of a `batch`, or the message itself.
fn unbatch(v: Value) -> Vec<Value> {
    match v {
        Value::Object(ref o) if o.get("type").and_then(Value::as_str) == Some("batch") => {
            o.get("frames").and_then(Value::as_array).cloned().unwrap_or_default()
        }
        v => vec![v],
    }
}

/// A protocol client over [`Ws`]: frames are queued in arrival order (batches unpacked), and
/// each reader takes only the frames it asks for, so nothing it skips is lost to later reads.
pub struct Client {
    pub ws: Ws,
    /// The `welcome` frame, which came first.
    pub welcome: Value,
    queue: std::collections::VecDeque<Value>,
    /// Set once the server closed: its close code, if it sent one.
    closed: Option<Option<u16>>,
}

impl Client {
    pub fn new(mut ws: Ws) -> Client {
        let first = ws.next(Duration::from_secs(10)).unwrap_or_else(|| panic!("no frame within 10 s of connecting"));
        let mut queue: std::collections::VecDeque<Value> = unbatch(first).into();
        let welcome = queue.pop_front().unwrap_or_default();
        assert_eq!(welcome["type"], "welcome", "first frame: {welcome}");
        assert_eq!(welcome["protocol"], 1, "{welcome}");
        Client { ws, welcome, queue, closed: None }
    }

    /// Reads one message into the queue; false on timeout or once the socket is closed.
    fn fill(&mut self, deadline: Instant) -> bool {
        if self.closed.is_some() {
            return false;
        }
        match self.ws.read_event(deadline.saturating_duration_since(Instant::now())) {
            WsEvent::Text(v) => {
                self.queue.extend(unbatch(v));
                true
            }
            WsEvent::Closed(code) => {
                self.closed = Some(code);
                false
            }
            WsEvent::Timeout => false,
        }
    }

    fn fail(&self, what: &str, timeout: Duration) -> ! {
        panic!(
            "no {what} within {timeout:?} (closed: {:?}); unread: {:#?}; messages seen: {:#?}",
            self.closed, self.queue, self.ws.seen
        );
    }

    /// The first queued or arriving frame matching `pred`, taken out of the queue.
    pub fn take(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.queue.iter().position(&pred) {
                return self.queue.remove(i);
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    pub fn expect(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        match self.take(timeout, pred) {
            Some(v) => v,
            None => self.fail(what, timeout),
        }
    }

    /// The next `error` frame; asserts its code.
    pub fn expect_error(&mut self, code: &str, timeout: Duration) -> Value {
        let e = self.expect(&format!("error {code}"), timeout, |v| v["type"] == "error");
        assert_eq!(e["code"], code, "error frame: {e}; seen: {:#?}", self.ws.seen);
        e
    }

    /// A channel's catch-up: the updates of `channel` that came before its `subscribed` frame,
    /// and that frame. Other frames stay queued; an `error` frame fails at once.
    pub fn catch_up(&mut self, channel: &str, timeout: Duration) -> (Vec<Value>, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.queue.iter().find(|v| v["type"] == "error") {
                panic!("error during catch-up of {channel}: {e}; seen: {:#?}", self.ws.seen);
            }
            let end = self.queue.iter().position(|v| v["type"] == "subscribed" && v["channel"] == channel);
            if let Some(i) = end {
                let mut before: Vec<Value> = self.queue.drain(..=i).collect();
                let subscribed = before.pop().unwrap_or_default();
                let (updates, others): (Vec<Value>, Vec<Value>) =
                    before.into_iter().partition(|v| v["type"] == "update" && v["channel"] == channel);
                for v in others.into_iter().rev() {
                    self.queue.push_front(v);
                }
                return (updates, subscribed);
            }
            if !self.fill(deadline) {
                self.fail(&format!("subscribed frame for {channel}"), timeout);
            }
        }
    }

    /// Updates of `channel`, in arrival order, up to and including the first with seq >= `seq`.
    pub fn updates(&mut self, channel: &str, seq: u64, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.last().is_none_or(|u: &Value| u["seq"].as_u64().unwrap_or(0) < seq) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.take(left, |v| v["type"] == "update" && v["channel"] == channel) {
                Some(u) => got.push(u),
                None => self.fail(&format!("{channel} update seq {seq} (got seqs {:?})", seqs(&got)), timeout),
            }
        }
        got
    }

    /// Everything unread now plus whatever arrives within `window`.
    pub fn collect(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        while Instant::now() < deadline {
            if !self.fill(deadline) && self.closed.is_some() {
                break;
            }
        }
        self.queue.drain(..).collect()
    }

    /// Reads until the server closes the socket and returns its close code (None: no code);
    /// frames read on the way stay queued. Panics if the socket is still open after `timeout`.
    pub fn expect_close(&mut self, timeout: Duration) -> Option<u16> {
        let deadline = Instant::now() + timeout;
        while self.closed.is_none() {
            if !self.fill(deadline) && self.closed.is_none() {
                self.fail("close", timeout);
            }
        }
        self.closed.flatten()
    }

    pub fn send_json(&mut self, v: &Value) {
        self.ws.send_text(&v.to_string());
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send_text(text);
    }

    /// Sends `ping` and waits for the runtime's `pong`: proof the socket is open.
    pub fn ping(&mut self, timeout: Duration) {
        self.send_text("ping");
        self.expect("pong", timeout, |v| v == "pong");
    }

    pub fn close(&mut self) {
        self.ws.close();
    }
}

/// The `seq` of each frame.
pub fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().map(|f| f["seq"].as_u64().unwrap_or(0)).collect()
}

// ---- Feed helpers: the fixture's request log by path, single samples from /metrics, and
// waiting for wall-clock times (the fixture logs epoch seconds, the Worker reports RFC 3339).

impl Fixture {
    /// Every route back to its default answer, and the request log cleared.
    pub fn reset(&self) {
        let r = read_reply(agent().post(&format!("{}/__fixture/reset", self.base)).send_empty(), "fixture reset");
        assert_eq!(r.status, 200, "fixture reset: {}", r.body);
    }

    /// Clears the request log; the routes stay as they are.
    pub fn clear_requests(&self) {
        let r = read_reply(agent().delete(&format!("{}/__fixture/requests", self.base)).call(), "fixture clear");
        assert_eq!(r.status, 200, "fixture clear: {}", r.body);
    }

    /// The logged requests to exactly `path` (query ignored), oldest first.
    pub fn requests_to(&self, path: &str) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r["path"] == path).collect()
    }
}

/// The value of the sample whose name and labels are exactly `series` as printed (e.g.
/// `x_total{a="b"}`) in Prometheus exposition `text`; None when there is no such line.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

impl Wrangler {
    /// One sample from `/metrics` by exact series; panics with the exposition when it is missing.
    pub fn metric(&self, series: &str) -> f64 {
        let body = self.get("/metrics").body;
        metric_value(&body, series).unwrap_or_else(|| panic!("no sample {series:?} in /metrics:\n{body}"))
    }
}

/// Now, in seconds since the Unix epoch: the clock of the fixture's `start` and `end`.
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// Sleeps until the wall clock reads `epoch` (seconds since the Unix epoch); at once if it has.
pub fn sleep_until_epoch(epoch: f64) {
    let left = epoch - epoch_now();
    if left > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(left));
    }
}

/// Polls `cond` every 100 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An RFC 3339 time (as `/health` and `/api/snapshot` print them) in seconds since the epoch.
pub fn rfc3339_secs(v: &Value) -> f64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not an RFC 3339 string: {v}"));
    let t = chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {s}"));
    t.timestamp_millis() as f64 / 1000.0
}

/// JSON equality (same keys, same order of arrays) where numbers compare by value: the server
/// may well print 2.41e12 as an integer.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w)),
        _ => a == b,
    }
}

/// The fields of `v` at `pointers` (JSON pointers) as one array, so that several fields of a
/// `/health` component are checked, and reported on failure, together.
pub fn pick(v: &Value, pointers: &[&str]) -> Value {
    pointers.iter().map(|p| v.pointer(p).cloned().unwrap_or(Value::Null)).collect()
}

// ---- A headless Chromium driven over tests/browser/driver.mjs (one JSON command per line).

/// Headless Chromium through `node tests/browser/driver.mjs`, one page. The driver runs in its
/// own process group and is stopped by PID on drop (after being asked to close Chromium).
pub struct Browser {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    replies: std::sync::mpsc::Receiver<String>,
    width: u32,
    height: u32,
}

impl Browser {
    /// Desktop size until [`Browser::set_viewport`] says otherwise.
    pub const DESKTOP: (u32, u32) = (1280, 800);
    /// A phone-sized screen.
    pub const PHONE: (u32, u32) = (390, 844);

    pub fn launch() -> Browser {
        let mut child = spawn_group(
            Command::new("node")
                .arg(root().join("tests/browser/driver.mjs"))
                .current_dir(root())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        );
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("driver stdout");
        // Replies are read on a thread, so a stuck driver fails the test instead of hanging it.
        let (tx, replies) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (width, height) = Browser::DESKTOP;
        Browser { child, stdin, replies, width, height }
    }

    /// Sends one command and returns its value; Err with the driver's message if it failed.
    fn command(&mut self, cmd: Value, timeout: Duration) -> Result<Value, String> {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("driver stdin");
        writeln!(stdin, "{cmd}").and_then(|_| stdin.flush()).unwrap_or_else(|e| panic!("driver gone ({e}): {cmd}"));
        let line = self
            .replies
            .recv_timeout(timeout + Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no answer from the browser driver to {cmd}: {e}"));
        let reply: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver said {line:?}: {e}"));
        if reply["ok"] == true {
            Ok(reply["value"].clone())
        } else {
            Err(reply["error"].as_str().unwrap_or("?").to_owned())
        }
    }

    /// The viewport the next [`Browser::open`] uses.
    pub fn set_viewport(&mut self, (width, height): (u32, u32)) {
        (self.width, self.height) = (width, height);
    }

    /// Loads `url` (again: a reload) and waits for its `load` event.
    pub fn open(&mut self, url: &str) {
        let cmd = serde_json::json!({ "cmd": "open", "url": url, "width": self.width, "height": self.height });
        let status = self.command(cmd, Duration::from_secs(15)).unwrap_or_else(|e| panic!("open {url}: {e}"));
        assert_eq!(status, 200, "open {url}: HTTP {status}");
    }

    /// The JSON value of a JavaScript expression evaluated in the page.
    pub fn eval(&mut self, js: &str) -> Value {
        let cmd = serde_json::json!({ "cmd": "eval", "js": js });
        self.command(cmd, Duration::from_secs(10)).unwrap_or_else(|e| panic!("eval {js}: {e}"))
    }

    /// Waits until the expression is truthy; on timeout panics with the page's console log and
    /// a screenshot of the page.
    pub fn wait(&mut self, js: &str, timeout: Duration) {
        let cmd = serde_json::json!({ "cmd": "wait", "js": js, "timeout_ms": timeout.as_millis() as u64 });
        if let Err(e) = self.command(cmd, timeout) {
            static N: AtomicU32 = AtomicU32::new(0);
            let shot = root().join(format!(
                "tests/artifacts/failed-wait-{}-{}.png",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::create_dir_all(root().join("tests/artifacts"));
            let shot_result = self.command(serde_json::json!({ "cmd": "screenshot", "path": shot }), timeout);
            let console = self.console().join("\n  ");
            let status = self.command(serde_json::json!({ "cmd": "eval", "js": DIAGNOSIS }), timeout);
            panic!(
                "browser: `{js}` not true within {timeout:?} ({e})\npage: {}\nscreenshot: {} {}\nconsole:\n  {console}",
                status.map(|v| v.to_string()).unwrap_or_else(|e| e),
                shot.display(),
                shot_result.err().unwrap_or_default(),
            );
        }
    }

    /// Saves a full-page PNG.
    pub fn screenshot(&mut self, path: &std::path::Path) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        let cmd = serde_json::json!({ "cmd": "screenshot", "path": path });
        self.command(cmd, Duration::from_secs(15)).unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
    }

    /// The page's console messages (and page errors, failed requests) so far.
    pub fn console(&mut self) -> Vec<String> {
        match self.command(serde_json::json!({ "cmd": "console" }), Duration::from_secs(5)) {
            Ok(Value::Array(v)) => v.iter().map(|m| m.as_str().unwrap_or_default().to_owned()).collect(),
            other => vec![format!("(console unavailable: {other:?})")],
        }
    }
}

/// What a failed [`Browser::wait`] reports about the page: its URL and visible texts.
const DIAGNOSIS: &str = "({ url: location.href, text: document.body ? document.body.innerText.slice(0, 2000) : null })";

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing stdin asks the driver to close Chromium and exit; then make sure, by PID.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        stop_group(&mut self.child);
    }
}
