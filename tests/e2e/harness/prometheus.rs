//! A real Prometheus server (Debian's `prometheus`, which scripts/setup installs) on 127.0.0.1
//! and a free port, with its storage in a temp dir, stopped by PID when dropped.

use super::{agent, free_port, TempDir};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Child,
    pub base: String,
    dir: TempDir,
}

impl Prometheus {
    /// Scrapes `target` (host:port) every second as job `tickwire`, with no rules.
    pub fn scraping(target: &str) -> Prometheus {
        let yaml = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: tickwire\n    \
             metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n"
        );
        Prometheus::start(&yaml, &[])
    }

    /// Starts with `config` as its prometheus.yml and `files` (name, contents) beside it, such as
    /// the rule files the config names (relative paths in it are relative to its directory).
    /// Returns once Prometheus says it is ready; panics with its log if it exits instead.
    pub fn start(config: &str, files: &[(&str, &str)]) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let path = dir.0.join("prometheus.yml");
        std::fs::write(&path, config).expect("prometheus config");
        for (name, text) in files {
            std::fs::write(dir.0.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        }
        let log = std::fs::File::create(dir.0.join("prometheus.log")).expect("prometheus log");
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.0.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (scripts/setup installs it)");
        let mut p = Prometheus { child, base: format!("http://127.0.0.1:{port}"), dir };
        p.wait_ready();
        p
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            if agent().get(&format!("{}/-/ready", self.base)).call().is_ok_and(|r| r.status() == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("prometheus not ready after 30 s:\n{}", self.log());
    }

    /// What Prometheus logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>` with `params`: the whole JSON answer, or None when the request
    /// failed or the answer was not JSON. Error answers (400 for a query that does not parse)
    /// are returned too: their `status` is `error`.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Option<Value> {
        let mut req = agent().get(&format!("{}/api/v1/{path}", self.base));
        for (k, v) in params {
            req = req.query(k, v);
        }
        let mut resp = req.call().ok()?;
        serde_json::from_str(&resp.body_mut().read_to_string().ok()?).ok()
    }

    /// The value of an instant query's first sample, if there is one.
    pub fn query(&self, promql: &str) -> Option<f64> {
        let v = self.api("query", &[("query", promql)])?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `promql` evaluates to `want`; panics with the last value seen.
    pub fn wait_for(&self, promql: &str, want: f64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.query(promql);
            if last == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("Prometheus: {promql} = {last:?}, wanted {want}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- prometheus log ({}) ---\n{}", self.base, self.log());
        }
    }
}
