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
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
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
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Reply {
        status: resp.status().as_u16(),
        content_type,
        body,
    }
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
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("fixture banner");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("fixture said {line:?}"));
        Fixture {
            base: format!("http://{addr}"),
            child,
        }
    }

    /// Sets what `path` answers: a JSON body, or a raw string (for malformed bodies).
    pub fn set(&self, path: &str, status: u16, body: Value) {
        self.set_route(serde_json::json!({ "path": path, "status": status, "body": body }));
    }

    pub fn set_route(&self, spec: Value) {
        let r = read_reply(
            agent()
                .put(&format!("{}/__fixture/route", self.base))
                .send_json(&spec),
            "fixture set",
        );
        assert_eq!(r.status, 200, "fixture refused {spec}: {}", r.body);
    }

    pub fn set_btc(&self, price: f64, change: f64) {
        self.set(
            "/api/v3/simple/price",
            200,
            serde_json::json!({ "bitcoin": { "usd": price, "usd_24h_change": change } }),
        );
    }

    /// The requests that reached the fixture, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        let r = read_reply(
            agent()
                .get(&format!("{}/__fixture/requests", self.base))
                .call(),
            "fixture log",
        );
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
            // Every changed value goes to KV at once, so tests see it in /api/snapshot.
            ("KV_MIN_WRITE_SECONDS".to_owned(), "0".to_owned()),
        ];
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
        self.port = free_port();
        self.base = format!("http://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("wrangler log");
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
        self.child = Some(spawn_group(&mut cmd));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "wrangler dev exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            if self.log().contains("Ready on")
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
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
        let (socket, _) =
            tungstenite::connect(url).unwrap_or_else(|e| panic!("ws connect {url}: {e}"));
        Ws {
            socket,
            seen: Vec::new(),
        }
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
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(e) => panic!("ws read: {e}; frames so far: {:?}", self.seen),
            }
        }
    }

    /// Reads frames until one matches `pred`; panics with everything seen if none does in time.
    pub fn expect(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        while let Some(v) = self.next(deadline.saturating_duration_since(Instant::now())) {
            if pred(&v) {
                return v;
            }
        }
        panic!(
            "no {what} within {timeout:?}; frames seen: {:#?}",
            self.seen
        );
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
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {:?} {said}\n{text}",
        out.status.code()
    );
}
