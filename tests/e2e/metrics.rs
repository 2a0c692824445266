//! `/metrics` as operators consume it: promtool accepts it without a lint message, and a real
//! Prometheus server scrapes it and sees the service's numbers.

use crate::harness::{promtool_accepts, Fixture, TempDir, Wrangler};
use serde_json::Value;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Prometheus server on 127.0.0.1, stopped by PID when dropped.
struct Prometheus {
    child: Child,
    base: String,
    _dir: TempDir,
}

impl Prometheus {
    fn scraping(target: &str) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let config = dir.0.join("prometheus.yml");
        let yaml = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: tickwire\n    \
             metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(&config, yaml).expect("prometheus config");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.0.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (scripts/setup installs it)");
        Prometheus { child, base: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    /// The value of an instant query's first sample, if there is one.
    fn query(&self, promql: &str) -> Option<f64> {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
        let mut resp = agent.get(&format!("{}/api/v1/query", self.base)).query("query", promql).call().ok()?;
        let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().ok()?).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `promql` evaluates to `want`; panics with the last value seen.
    fn wait_for(&self, promql: &str, want: f64, timeout: Duration) {
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
    }
}

#[test]
fn promtool_accepts_the_exposition_and_prometheus_scrapes_it() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[]);
    w.fire_cron();
    // Three sockets held open, on default channels.
    let sockets: Vec<_> = (0..3).map(|_| w.client("/ws")).collect();
    w.wait_metric("tickwire_sockets_connected 3", Duration::from_secs(5));
    let metrics = w.get("/metrics");
    assert!(metrics.content_type.starts_with("text/plain; version=0.0.4"), "{}", metrics.content_type);
    promtool_accepts(&metrics.body);
    for family in [
        "tickwire_build_info",
        "tickwire_connections_closed_total",
        "tickwire_client_frames_rejected_total",
        "tickwire_deliveries_total",
        "tickwire_broadcast_duration_seconds",
        "tickwire_upstream_request_duration_seconds",
        "tickwire_upstream_breaker_state",
        "tickwire_value_age_seconds",
        "tickwire_kv_writes_total",
    ] {
        assert!(metrics.body.contains(&format!("# TYPE {family} ")), "no {family} in\n{}", metrics.body);
    }
    // No label value may identify a connection or carry a URL.
    assert!(!metrics.body.contains("http://") && !metrics.body.contains("conn="), "{}", metrics.body);

    let target = w.base.trim_start_matches("http://").to_owned();
    let prom = Prometheus::scraping(&target);
    prom.wait_for(r#"up{job="tickwire"}"#, 1.0, Duration::from_secs(30));
    prom.wait_for("tickwire_sockets_connected", 3.0, Duration::from_secs(10));
    prom.wait_for(r#"sum(tickwire_upstream_requests_total{outcome="ok"})"#, 4.0, Duration::from_secs(10));
    drop(sockets);
    prom.wait_for("tickwire_sockets_connected", 0.0, Duration::from_secs(10));
    w.assert_no_panic();
}
