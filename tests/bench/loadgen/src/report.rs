//! The result of a run: counts, latency percentiles and resource use, printed as one JSON line.
use crate::cli::{Args, Mode};
use crate::procstat::{ticks_to_secs, Cpu};
use crate::publish::Published;
use crate::sockets::{Connected, SocketResult, Tracker};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Acquire;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Report {
    label: String,
    mode: &'static str,
    sockets: usize,
    nonce: String,
    threads: usize,
    connected: usize,
    connect_errors: usize,
    connect_error_kinds: BTreeMap<String, usize>,
    connect_seconds: f64,
    connect_cpu_s: f64,
    publishes: usize,
    publish_ok: usize,
    pub publish_failed: usize,
    publish_fail_statuses: BTreeMap<String, u64>,
    timed_out: bool,
    pub expected: u64,
    pub delivered: u64,
    unexpected: u64,
    duplicates: u64,
    closed_early: usize,
    pub seconds: f64,
    /// Sockets that received the last successful publish.
    last_holders: u64,
    latency_ms: Value,
    last_client_ms: Value,
    pub rss_peak_kb: u64,
    pub rss_end_kb: u64,
    has_server: bool,
    pub server_cpu: Option<Cpu>,
    pub proxy_cpu: Option<Cpu>,
    pub client_cpu_s: f64,
    client_wall: f64,
    /// Bytes and messages of updates each socket received per second of publishing (the
    /// publishes over the rate: the same window for every server, however fast it delivers).
    publish_window_s: f64,
    bytes_per_socket_s: f64,
    messages_per_socket_s: f64,
    /// `--every`: the interval asked for, and what the server's `/metrics` counted meanwhile.
    every_ms: Option<u64>,
    conflation_ticks: Option<f64>,
    frames_per_tick: Option<f64>,
}

/// Nearest-rank percentiles of microsecond values, in milliseconds (null when empty).
pub fn percentiles(v: &mut [u32]) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        round(v[i] as f64 / 1000.0, 2)
    };
    json!({ "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0) })
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

impl Report {
    pub fn new(args: &Args, nonce: String, threads: usize, c: &Connected, connect_cpu_ticks: u64) -> Self {
        Report {
            label: args.label.clone(),
            mode: if args.mode == Mode::Seq { "seq" } else { "rate" },
            sockets: args.sockets,
            nonce,
            threads,
            connected: c.connected,
            connect_errors: c.errors,
            connect_error_kinds: c.error_kinds.clone(),
            connect_seconds: c.seconds,
            connect_cpu_s: ticks_to_secs(connect_cpu_ticks),
            has_server: !args.server_pids.is_empty(),
            publish_window_s: args.publishes as f64 / args.rate,
            ..Default::default()
        }
    }

    /// Fills in the publish phase from the tracker, the publishes and every socket's result.
    pub fn finish(&mut self, t: &Tracker, p: &Published, sockets: Vec<SocketResult>, t0: Instant, wall: Duration) {
        self.publishes = p.attempted;
        self.publish_ok = p.ok.iter().filter(|&&ok| ok).count();
        self.publish_failed = p.attempted - self.publish_ok;
        self.publish_fail_statuses = p.fail_statuses.clone();
        self.timed_out = p.timed_out;
        self.expected = (self.connected * self.publish_ok) as u64;
        let mut last_client = Vec::new();
        if let Some(last) = p.ok.iter().rposition(|ok| *ok).filter(|k| *k > 0) {
            self.last_holders = t.count[last].load(Acquire) as u64;
        }
        for (k, ok) in p.ok.iter().enumerate().skip(1) {
            let n = t.count[k].load(Acquire) as u64;
            if !ok {
                self.unexpected += n;
            } else {
                self.delivered += n;
                if n >= self.connected as u64 {
                    last_client.push(t.max_lat_us[k].load(Acquire).min(u32::MAX as u64) as u32);
                }
            }
        }
        let mut lat = Vec::with_capacity(self.delivered as usize);
        let (mut bytes, mut messages) = (0, 0);
        for s in &sockets {
            bytes += s.bytes;
            messages += s.messages;
            self.duplicates += s.duplicates;
            self.closed_early += s.closed_early as usize;
            lat.extend(s.latencies.iter().filter(|(k, _)| p.ok[*k as usize]).map(|&(_, l)| l));
        }
        self.latency_ms = percentiles(&mut lat);
        self.last_client_ms = percentiles(&mut last_client);
        // Until the last delivery when everything arrived, else until the wait gave up.
        let end = match t.last_delivery() {
            Some(last) if !p.timed_out && self.delivered >= self.expected => last.duration_since(t0),
            _ => wall,
        };
        self.seconds = end.as_secs_f64();
        self.client_wall = wall.as_secs_f64();
        self.rss_peak_kb = self.rss_peak_kb.max(self.rss_end_kb);
        let per_socket_s = (self.connected as f64 * self.publish_window_s).max(1e-9);
        self.bytes_per_socket_s = bytes as f64 / per_socket_s;
        self.messages_per_socket_s = messages as f64 / per_socket_s;
    }

    /// Conflated delivery (`--every`): each socket skips updates by design, so what counts is
    /// that each ends with the last value (delivered: sockets holding it); and the server's
    /// ticks and the messages they built, from `/metrics` before and after (tickwire only).
    pub fn conflation(&mut self, args: &Args, before: Option<&str>, after: Option<&str>) {
        use crate::churn::metric_sum;
        let delta = |name: &str| Some(metric_sum(after?, name)? - metric_sum(before?, name).unwrap_or(0.0));
        self.every_ms = args.every;
        self.conflation_ticks = delta("tickwire_conflation_ticks_total");
        let built = delta("tickwire_conflation_frames_built_total");
        self.frames_per_tick = match (built, self.conflation_ticks) {
            (Some(b), Some(t)) if t > 0.0 => Some(round(b / t, 2)),
            _ => None,
        };
        if args.every.is_some() {
            self.expected = self.connected as u64;
            self.delivered = self.last_holders;
        }
    }

    pub fn to_json(&self) -> String {
        let mb = |kb: u64| round(kb as f64 / 1024.0, 1);
        let cpu = |c: Option<Cpu>| c.map(|c| json!({ "cpu_s": round(c.secs, 2), "cpu_pct": round(c.pct, 1) }));
        let server = self.has_server.then(|| {
            let (s, p) = self.server_cpu.map_or((0.0, 0.0), |c| (c.secs, c.pct));
            json!({ "rss_peak_mb": mb(self.rss_peak_kb), "rss_end_mb": mb(self.rss_end_kb),
                    "cpu_s": round(s, 2), "cpu_pct": round(p, 1) })
        });
        let client_pct = 100.0 * self.client_cpu_s / self.client_wall.max(1e-9);
        json!({
            "label": self.label, "mode": self.mode, "sockets": self.sockets, "nonce": self.nonce,
            "connected": self.connected, "connect_errors": self.connect_errors,
            "connect_error_kinds": self.connect_error_kinds, "connect_seconds": round(self.connect_seconds, 3),
            "closed_early": self.closed_early,
            "publishes": self.publishes, "publish_ok": self.publish_ok, "publish_failed": self.publish_failed,
            "publish_fail_statuses": self.publish_fail_statuses, "timed_out": self.timed_out,
            "expected": self.expected, "delivered": self.delivered,
            "lost": self.expected as i64 - self.delivered as i64,
            "duplicates": self.duplicates, "unexpected": self.unexpected,
            "seconds": round(self.seconds, 3),
            "deliveries_per_s": round(self.delivered as f64 / self.seconds.max(1e-9), 0),
            "latency_ms": self.latency_ms, "last_client_ms": self.last_client_ms,
            "bytes_per_socket_s": round(self.bytes_per_socket_s, 1),
            "messages_per_socket_s": round(self.messages_per_socket_s, 2),
            "every_ms": self.every_ms, "conflation_ticks": self.conflation_ticks,
            "frames_per_tick": self.frames_per_tick,
            "server": server, "proxy": cpu(self.proxy_cpu),
            "client": { "cpu_s": round(self.client_cpu_s, 2), "cpu_pct": round(client_pct, 1),
                        "connect_cpu_s": round(self.connect_cpu_s, 2), "threads": self.threads },
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflated_runs_count_sockets_holding_the_last_value_and_messages_per_tick() {
        let args = crate::cli::parse_args(
            "--url http://h:1 --token t --sockets 2 --mode rate --every 1000".split(' ').map(String::from),
        )
        .unwrap();
        let mut r = Report { connected: 2, delivered: 90, expected: 400, last_holders: 2, ..Default::default() };
        let before = "tickwire_conflation_ticks_total 3\ntickwire_conflation_frames_built_total 3\n";
        let after = "tickwire_conflation_ticks_total 7\ntickwire_conflation_frames_built_total 9\n";
        r.conflation(&args, Some(before), Some(after));
        assert_eq!((r.conflation_ticks, r.frames_per_tick), (Some(4.0), Some(1.5)));
        assert_eq!((r.expected, r.delivered), (2, 2), "every socket ended with the last value");
        r.conflation(&args, None, Some(after));
        assert_eq!(r.frames_per_tick, None, "no reading before: nothing to say");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u32> = (1..=100).rev().map(|i| i * 1000).collect();
        assert_eq!(percentiles(&mut v), json!({ "p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0 }));
        assert_eq!(percentiles(&mut [1500]), json!({ "p50": 1.5, "p90": 1.5, "p99": 1.5, "max": 1.5 }));
        assert_eq!(percentiles(&mut []), Value::Null);
    }
}
