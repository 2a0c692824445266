//! Headless Chromium or Firefox ESR for the browser tests, driven over tests/browser/driver.mjs,
//! and [`in_each_browser!`], which runs one scenario in both.

use super::{node_path, root, spawn_group, stop_group, TempDir};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

// ---- A headless browser driven over tests/browser/driver.mjs (one JSON command per line).

/// Which browser a [`Browser`] is: Debian's `chromium` or `firefox-esr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Chromium,
    Firefox,
}

impl Engine {
    /// The driver's argument, and the suffix of this browser's test names and screenshots.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "chromium",
            Engine::Firefox => "firefox",
        }
    }

    /// A screenshot's file name in tests/artifacts/: Chromium's keep the plain `name.png`,
    /// Firefox's are `name-firefox.png` beside them.
    pub fn artifact(self, name: &str) -> String {
        match self {
            Engine::Chromium => format!("{name}.png"),
            other => format!("{name}-{}.png", other.name()),
        }
    }
}

/// Generates, for each named scenario `fn name(engine: Engine)` of the calling module, the tests
/// `name::chromium` and `name::firefox`: every browser scenario runs in both browsers.
macro_rules! in_each_browser {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                use crate::harness::Engine;

                #[test]
                fn chromium() {
                    super::$scenario(Engine::Chromium)
                }

                #[test]
                fn firefox() {
                    super::$scenario(Engine::Firefox)
                }
            }
        )+
    };
}
pub(crate) use in_each_browser;

/// A headless browser through `node tests/browser/driver.mjs`, one page. The driver runs in its
/// own process group, and puppeteer starts the browser in another: on drop the driver is asked to
/// close the browser, then both groups are stopped by PID, and the profile folder is removed.
pub struct Browser {
    engine: Engine,
    /// The browser's PID, the leader of its own process group.
    browser_pid: Option<i32>,
    /// The profile folder, removed when this is dropped (after the browser is stopped).
    _profile: TempDir,
    /// Whether a page has shown this is the browser it was asked for.
    checked: bool,
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

    /// Starts `engine` through the driver and waits until it is up (Firefox takes about 5 s),
    /// so that a test's clock (a token's lifetime, say) starts after the browser's start.
    pub fn launch(engine: Engine) -> Browser {
        let profile = TempDir::new(&format!("{}-profile", engine.name()));
        let mut child = spawn_group(
            Command::new("node")
                .arg(root().join("tests/browser/driver.mjs"))
                .arg(engine.name())
                .arg(&profile.0)
                .current_dir(root())
                .env("PATH", node_path())
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
        let mut b = Browser {
            engine,
            browser_pid: None,
            _profile: profile,
            checked: false,
            child,
            stdin,
            replies,
            width,
            height,
        };
        // The driver's first line: the browser is up, with its PID (puppeteer allows 60 s).
        let ready = b.replies.recv_timeout(Duration::from_secs(90));
        let ready: Value = ready
            .ok()
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or_else(|| panic!("{} did not start (the driver said nothing for 90 s)", engine.name()));
        assert_eq!(ready["value"]["engine"], engine.name(), "{ready}");
        b.browser_pid = ready["value"]["pid"].as_i64().and_then(|p| i32::try_from(p).ok());
        b
    }

    /// Which browser this is.
    pub fn engine(&self) -> Engine {
        self.engine
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
        if !self.checked {
            // A Firefox test that quietly ran Chromium (or the reverse) would prove nothing.
            let agent = self.eval("navigator.userAgent");
            let agent = agent.as_str().unwrap_or_default();
            let mark = match self.engine {
                Engine::Chromium => "Chrome/",
                Engine::Firefox => "Firefox/",
            };
            assert!(agent.contains(mark), "asked for {:?}, got a browser saying {agent:?}", self.engine);
            self.checked = true;
        }
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
                "tests/artifacts/failed-wait-{}-{}-{}.png",
                self.engine.name(),
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::create_dir_all(root().join("tests/artifacts"));
            let shot_result = self.command(serde_json::json!({ "cmd": "screenshot", "path": shot }), timeout);
            let console = self.console().join("\n  ");
            let status = self.command(serde_json::json!({ "cmd": "eval", "js": DIAGNOSIS }), timeout);
            panic!(
                "{}: `{js}` not true within {timeout:?} ({e})\npage: {}\nscreenshot: {} {}\nconsole:\n  {console}",
                self.engine.name(),
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

    /// The console so far, once a canary line logged now has come back through it: page errors
    /// and console messages arrive asynchronously, so those from just before are in.
    pub fn console_settled(&mut self) -> Vec<String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let canary = format!("driver canary {}", N.fetch_add(1, Ordering::SeqCst));
        self.eval(&format!("(console.info({canary:?}), true)"));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let console = self.console();
            if console.iter().any(|m| m.ends_with(&canary)) {
                return console.into_iter().filter(|m| !m.ends_with(&canary)).collect();
            }
            assert!(Instant::now() < deadline, "the canary never came back: {console:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The page's uncaught exceptions and unhandled rejections so far (settled, as above).
    pub fn page_errors(&mut self) -> Vec<String> {
        self.console_settled().into_iter().filter(|m| m.starts_with("[pageerror]")).collect()
    }

    /// The page's console messages (and page errors, failed requests) so far.
    pub fn console(&mut self) -> Vec<String> {
        match self.command(serde_json::json!({ "cmd": "console" }), Duration::from_secs(5)) {
            Ok(Value::Array(v)) => v.iter().map(|m| m.as_str().unwrap_or_default().to_owned()).collect(),
            other => vec![format!("(console unavailable: {other:?})")],
        }
    }
}

/// Makes the page's `new WebSocket(...)` throw until [`RELEASE_SOCKETS`] (a client counts that
/// as a failed attempt and backs off): a publish made in between surely happens while the page
/// is disconnected, whatever its backoff timer says.
pub const HOLD_SOCKETS: &str = "(window.__RealWebSocket = WebSocket, window.WebSocket = function () { throw new Error('held by the test'); }, true)";
/// Undoes [`HOLD_SOCKETS`].
pub const RELEASE_SOCKETS: &str = "(window.WebSocket = window.__RealWebSocket, true)";

/// What a failed [`Browser::wait`] reports about the page: its URL and visible texts.
const DIAGNOSIS: &str = "({ url: location.href, text: document.body ? document.body.innerText.slice(0, 2000) : null })";

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing stdin asks the driver to close the browser and exit; then make sure, by PID.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        stop_group(&mut self.child);
        // The driver closes the browser when it can; when it could not (killed), the browser's
        // own group goes by PID, before its profile folder is removed (TempDir's drop).
        if let Some(pid) = self.browser_pid.filter(|&p| unsafe { libc::kill(p, 0) } == 0) {
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }
}
