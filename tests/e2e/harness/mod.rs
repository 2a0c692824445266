//! End-to-end harness: a fixture upstream and a real `wrangler dev` per test, on 127.0.0.1 and
//! free ports, both stopped by PID when the test ends (also when it fails or panics).
//!
//! Expects the Worker to be built already (`scripts/test` does it once): each wrangler starts
//! from a copy of wrangler.toml without `[build]` (see `prebuilt_config`), so it neither builds
//! nor watches the sources.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod browser;
mod procs;
mod prometheus;
mod storage;
mod tokens;
mod ws;

pub(crate) use browser::in_each_browser;
pub use browser::{Browser, Engine, HOLD_SOCKETS, RELEASE_SOCKETS};
pub use prometheus::Prometheus;
pub use tokens::{claims, jose, now_s, token, token_with, TOKEN_SECRET};
pub use ws::{is_update, merge_patch, seqs, Client, Ws};

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

/// `PATH` with the Node that `scripts/setup` brings (`.tools/node/bin`, when the machine's Node is
/// too old for wrangler) first, as `scripts/lib.sh` sets it: for wrangler and the browser driver,
/// also when the tests run without `scripts/test`.
fn node_path() -> std::ffi::OsString {
    let mut dirs = vec![root().join(".tools/node/bin")];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).expect("PATH entries hold no separator")
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
    /// The `Retry-After` header, when the answer has one.
    pub retry_after: Option<String>,
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
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Reply { status: resp.status().as_u16(), content_type, retry_after, body }
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
    /// (a coin left out of the answer would show in `market` as stale).
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

    /// Changes one coin in the simple/price answer: `quote`'s fields are set (a JSON null stays
    /// null in the answer), and `Value::Null` drops the coin.
    pub fn set_coin(&self, id: &str, quote: Value) {
        let spec = serde_json::json!({ "id": id, "quote": quote });
        let r = read_reply(agent().put(&format!("{}/__fixture/coin", self.base)).send_json(&spec), "fixture coin");
        assert_eq!(r.status, 200, "fixture refused {spec}: {}", r.body);
    }

    /// The requests that reached the fixture, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        let r = read_reply(agent().get(&format!("{}/__fixture/requests", self.base)).call(), "fixture log");
        serde_json::from_str(&r.body).expect("fixture log JSON")
    }

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
    /// The wrangler config it runs with (see `prebuilt_config`).
    config: PathBuf,
    /// Kept across restarts, so a restarted instance sees the same storage.
    pub persist: TempDir,
    _logdir: TempDir,
    /// Held until the instance is dropped (see [`Wrangler::start_solo`]); declared last, so it
    /// is released after the instance has stopped.
    _gate: Gate,
}

/// The project's wrangler.toml without its `[build]` section, with `main` made absolute, written
/// once per connect limit under target/. Tests run the Worker built before they start; with
/// `[build]`, wrangler also watches `src/`, `durable/src/` and `static/`, and a change event (it
/// has fired with nothing edited) restarts the build and the runtime mid-test, whose new workerd
/// can then lose its port to another instance. `scripts/server.sh` does the same for the
/// benchmark. The connect rate limit (`[[ratelimits]]`, counted per client address, and every
/// test connects from 127.0.0.1) is set to `connects` per period: [`UNLIMITED_CONNECTS`]
/// unless a test asks for its own.
fn prebuilt_config(connects: u32) -> PathBuf {
    static CONFIGS: std::sync::Mutex<Vec<(u32, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut configs = CONFIGS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = configs.iter().find(|(c, _)| *c == connects) {
        return path.clone();
    }
    let text = std::fs::read_to_string(root().join("wrangler.toml")).expect("read wrangler.toml");
    let main = root().join("build/worker/shim.mjs");
    let (mut out, mut skipping) = (String::new(), false);
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = line.trim() == "[build]";
        }
        if skipping {
            continue;
        }
        if let Some(rest) = line.strip_prefix("simple = { limit = ") {
            let period = rest.split_once(", ").map_or("period = 10 }", |(_, p)| p);
            out.push_str(&format!("simple = {{ limit = {connects}, {period}\n"));
            continue;
        }
        match line.strip_prefix("main = ") {
            Some(_) => out.push_str(&format!("main = {:?}\n", main.display().to_string())),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    assert!(out.contains("build/worker/shim.mjs\"") && !out.contains("[build]"), "config:\n{out}");
    assert!(out.contains(&format!("simple = {{ limit = {connects}, period = ")), "config:\n{out}");
    let dir = root().join("target/e2e");
    std::fs::create_dir_all(&dir).expect("target/e2e");
    let path = dir.join(format!("wrangler-{}-{connects}.toml", std::process::id()));
    std::fs::write(&path, out).expect("write the test wrangler config");
    configs.push((connects, path.clone()));
    path
}

/// The connect limit tests run with unless they set their own: high enough that no test's
/// sockets (up to 5,000 from one address) are refused.
pub const UNLIMITED_CONNECTS: u32 = 1_000_000;

/// Raises this process's open-file limit to its hard limit, once (wrangler dev and workerd
/// inherit it): the churn test holds 5,000 sockets, more than a default soft limit allows, also
/// when the tests run without `scripts/test` (which raises it too).
fn raise_nofile() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
                limit.rlim_cur = limit.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    });
}

/// Shared by every running instance; taken alone by a solo one.
static GATE: std::sync::RwLock<()> = std::sync::RwLock::new(());

enum Gate {
    Shared(#[allow(dead_code)] std::sync::RwLockReadGuard<'static, ()>),
    Solo(#[allow(dead_code)] std::sync::RwLockWriteGuard<'static, ()>),
}

impl Wrangler {
    /// Starts wrangler dev with its upstream vars pointing at `fixture`, plus `vars`.
    pub fn start(fixture: &Fixture, vars: &[(&str, &str)]) -> Wrangler {
        let gate = Gate::Shared(GATE.read().unwrap_or_else(|e| e.into_inner()));
        Wrangler::start_gated(fixture, vars, gate, UNLIMITED_CONNECTS)
    }

    /// Like [`Wrangler::start`], with the connect rate limit at `connects` per period (the
    /// tests' own address, 127.0.0.1, counts them all).
    pub fn start_with_connect_limit(fixture: &Fixture, vars: &[(&str, &str)], connects: u32) -> Wrangler {
        let gate = Gate::Shared(GATE.read().unwrap_or_else(|e| e.into_inner()));
        Wrangler::start_gated(fixture, vars, gate, connects)
    }

    /// Like [`Wrangler::start`], but no other test's wrangler dev runs while this one does: for
    /// the few tests that report how long the server takes, which two cores shared with
    /// another test's server would distort.
    pub fn start_solo(fixture: &Fixture, vars: &[(&str, &str)]) -> Wrangler {
        let gate = Gate::Solo(GATE.write().unwrap_or_else(|e| e.into_inner()));
        Wrangler::start_gated(fixture, vars, gate, UNLIMITED_CONNECTS)
    }

    fn start_gated(fixture: &Fixture, vars: &[(&str, &str)], gate: Gate, connects: u32) -> Wrangler {
        raise_nofile();
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
            // Token secrets likewise: private channels closed unless a test opens them.
            ("TOKEN_SECRET".to_owned(), String::new()),
            ("TOKEN_SECRET_PREVIOUS".to_owned(), String::new()),
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
            config: prebuilt_config(connects),
            persist: TempDir::new("state"),
            _logdir: logdir,
            _gate: gate,
        };
        w.launch();
        w
    }

    fn launch(&mut self) {
        self.launch_retrying(None);
    }

    fn launch_on(&mut self, port: u16) {
        self.launch_retrying(Some(port));
    }

    /// Starts wrangler dev on `port` (a free one when None), again when it exits at start with
    /// "Address already in use": under wrangler 4.164, workerd's internal socket
    /// ("direct:1:default") once found its port taken while other tests' instances started
    /// (one full run in five); a port race of the tool, not something the Worker does.
    fn launch_retrying(&mut self, port: Option<u16>) {
        for attempt in 1..=3 {
            let from = self.log().len();
            match self.launch_once(port.unwrap_or_else(free_port)) {
                Ok(()) => return,
                Err(status) => {
                    let said = self.log().get(from..).unwrap_or_default().to_owned();
                    if attempt == 3 || !said.contains("Address already in use") {
                        panic!("wrangler dev exited ({status}) before it was ready:\n{}", self.log());
                    }
                    eprintln!("wrangler dev lost a port race at start ({status}); starting it again");
                }
            }
        }
    }

    fn launch_once(&mut self, port: u16) -> Result<(), std::process::ExitStatus> {
        self.port = port;
        self.base = format!("http://{}", self.authority());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("wrangler log");
        let mut cmd = Command::new(root().join("node_modules/.bin/wrangler"));
        cmd.current_dir(root())
            .args(["dev", "--local", "--test-scheduled", "--ip", "127.0.0.1"])
            .arg("--config")
            .arg(&self.config)
            .args(["--port", &self.port.to_string()])
            .args(["--inspector-port", &free_port().to_string()])
            .args(["--show-interactive-dev-session=false", "--log-level", "log"])
            .arg("--persist-to")
            .arg(&self.persist.0)
            .env("PATH", node_path())
            .env("TICKWIRE_PREBUILT", "1")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("NO_UPDATE_NOTIFIER", "1")
            // No banner: it asks the registry for a newer wrangler and warns once there is one.
            .env("WRANGLER_HIDE_BANNER", "true")
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
        self.wait_ready()
    }

    /// Waits until the Worker answers; the exit status when wrangler dev exits first.
    fn wait_ready(&mut self) -> Result<(), std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                if let Some(mut child) = self.child.take() {
                    stop_group(&mut child); // workerd may outlive the wrangler that started it
                }
                return Err(status);
            }
            if self.log().contains("Ready on") && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // The proxy accepts connections a moment before the Worker answers.
                if let Ok(r) = agent().get(&format!("{}/health", self.base)).call() {
                    if r.status().as_u16() != 502 {
                        return Ok(());
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

    /// Kills wrangler dev and workerd at once (SIGKILL to the process group): no shutdown, as
    /// in a crash. `start_again` brings it back on the same storage.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// The process group of the running instance (its leader's PID).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sets a var for the next start (`restart`, `start_again`).
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.to_owned(), value.to_owned()));
    }

    /// Starts a stopped instance again on the same port (a browser page keeps its origin),
    /// with the same vars and persisted storage.
    pub fn start_again(&mut self) {
        self.stop();
        let port = self.port;
        self.launch_on(port);
    }

    /// `127.0.0.1:PORT`, where wrangler dev listens: a scrape target, a URL without its scheme.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
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

    /// Like [`Wrangler::get`], but a request that fails or times out (the server is busy or
    /// down) is `None` rather than a panic: for polls that have their own deadline.
    pub fn try_get(&self, path: &str) -> Option<Reply> {
        let resp = agent().get(&format!("{}{path}", self.base)).call().ok()?;
        Some(read_reply(Ok(resp), path))
    }

    /// `GET path` with `Authorization: Bearer token`.
    pub fn get_bearer(&self, path: &str, token: &str) -> Reply {
        let req = agent().get(&format!("{}{path}", self.base)).header("authorization", format!("Bearer {token}"));
        read_reply(req.call(), path)
    }

    /// A WebSocket connect the server refuses before the upgrade: its status and JSON body.
    /// Panics if the socket opens. Spoken over a plain socket: WebSocket clients do not read
    /// the body of a refused handshake.
    pub fn ws_refused(&self, path_and_query: &str) -> (u16, Value) {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(self.authority()).expect("connect");
        let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            self.authority()
        );
        s.write_all(request.as_bytes()).expect("send the handshake");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head, then the body its Content-Length announces (the connection may stay open).
        loop {
            let n = s.read(&mut buf).unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let head = text[..end].to_ascii_lowercase();
                let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status line");
                assert_ne!(status, 101, "{path_and_query} was upgraded");
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)));
                let body = &text[end + 4..];
                if n == 0 || length.is_some_and(|l| body.len() >= l) {
                    return (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())));
                }
            } else if n == 0 {
                panic!("{path_and_query}: no answer: {text}");
            }
        }
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
        Ws::connect(&format!("ws://{}{path_and_query}", self.authority()))
    }

    /// Panics if the log shows a panic or an uncaught exception from the Worker.
    pub fn assert_no_panic(&self) {
        let log = self.log();
        for bad in ["panicked at", "RuntimeError: unreachable", "Uncaught"] {
            assert!(!log.contains(bad), "wrangler log shows {bad:?}:\n{log}");
        }
    }

    /// `POST /api/publish` with a JSON `body`, bearing `token` when given.
    pub fn post_publish(&self, token: Option<&str>, body: &Value) -> Reply {
        // Exactly `application/json` (ureq would add `; charset=utf-8`), as the README shows.
        let mut req = agent().post(&format!("{}/api/publish", self.base)).header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        read_reply(req.send_json(body), "POST /api/publish")
    }

    /// `DELETE path`, bearing `token` when given.
    pub fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = agent().delete(&format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        read_reply(req.call(), path)
    }

    /// Publishes `data` to `channel` with [`PUBLISH_TOKEN`]: the status and the answer (JSON, or
    /// the raw body as a string when it is not JSON).
    pub fn publish(&self, channel: &str, data: Value) -> (u16, Value) {
        let r = self.post_publish(Some(PUBLISH_TOKEN), &serde_json::json!({ "channel": channel, "data": data }));
        let v = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body));
        (r.status, v)
    }

    /// Publishes like [`Wrangler::publish`], but a failed connection (the server is down) is
    /// `None` rather than a panic.
    pub fn try_publish(&self, channel: &str, data: Value) -> Option<(u16, Value)> {
        let body = serde_json::json!({ "channel": channel, "data": data });
        let req = agent()
            .post(&format!("{}/api/publish", self.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {PUBLISH_TOKEN}"));
        let mut resp = req.send_json(&body).ok()?;
        let text = resp.body_mut().read_to_string().ok()?;
        Some((resp.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text))))
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

    /// One sample from `/metrics` by exact series; panics with the exposition when it is missing.
    pub fn metric(&self, series: &str) -> f64 {
        let body = self.get("/metrics").body;
        metric_value(&body, series).unwrap_or_else(|| panic!("no sample {series:?} in /metrics:\n{body}"))
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

/// The publish token the hub tests set as the `PUBLISH_TOKEN` var.
pub const PUBLISH_TOKEN: &str = "test-token";

// ---- Metrics samples and wall-clock waits (the fixture logs epoch seconds, the Worker reports
// RFC 3339).

/// The value of the sample whose name and labels are exactly `series` as printed (e.g.
/// `x_total{a="b"}`) in Prometheus exposition `text`; None when there is no such line.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
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
