//! `/metrics`: the hub's numbers rendered as Prometheus text exposition format 0.0.4.
//!
//! Every family gets HELP and TYPE, counters end in `_total`, times are in seconds, and label
//! values come from bounded sets (channels, upstream sources, outcomes), so `promtool check
//! metrics` accepts the output without a lint message.

use std::fmt::Write;
use tickwire_hub::api::CatchupOutcome;
use tickwire_hub::api::CloseReason;
use tickwire_hub::api::FrameKind;
use tickwire_hub::api::{ChannelStats, HubStats};
use tickwire_hub::auth::TokenError;
use tickwire_hub::feeds::status::{Histogram, Outcome, Source, DURATION_BUCKETS};
use tickwire_hub::wire::protocol::ErrorCode;

/// The `channel` label of every private channel together (no channel name has parentheses).
pub const PRIVATE_LABEL: &str = "(private)";

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric family being written: HELP and TYPE first, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, kind: Kind, help: &str) -> Self {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
        self
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

fn histogram_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
}

/// `_bucket` (cumulative, then +Inf), `_sum` and `_count` lines of one histogram series.
fn histogram_samples(out: &mut String, name: &str, label: Option<(&str, &str)>, h: &Histogram) {
    let (prefix, only) = match label {
        Some((k, v)) => (format!("{k}=\"{}\",", escape(v)), format!("{{{k}=\"{}\"}}", escape(v))),
        None => (String::new(), String::new()),
    };
    for (bound, n) in DURATION_BUCKETS.iter().map(|b| number(*b)).chain(["+Inf".to_owned()]).zip(h.cumulative()) {
        let _ = writeln!(out, "{name}_bucket{{{prefix}le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_sum{only} {}", number(h.sum_ms as f64 / 1000.0));
    let _ = writeln!(out, "{name}_count{only} {}", h.count);
}

/// Reads one per-channel sample (None: no sample for that channel) given the time now.
type ChannelValue = fn(&ChannelStats, u64) -> Option<f64>;

/// Renders the exposition. `hub` is `None` when the hub could not be read: the scrape still
/// succeeds and says so with `tickwire_hub_up 0`, so alerts can fire on it.
pub fn render(version: &str, hub: Option<&HubStats>, now_ms: u64) -> String {
    let mut out = String::new();
    Family::new(&mut out, "tickwire_build_info", Kind::Gauge, "Build information; always 1.")
        .sample(&[("version", version)], 1.0);
    Family::new(&mut out, "tickwire_hub_up", Kind::Gauge, "1 if every hub shard answered this scrape, 0 if not.")
        .sample(&[], if hub.is_some() { 1.0 } else { 0.0 });
    let Some(s) = hub else { return out };
    let c = &s.counters;

    Family::new(&mut out, "tickwire_sockets_connected", Kind::Gauge, "WebSockets currently connected, all shards.")
        .sample(&[], s.total_sockets() as f64);
    let help = "WebSockets currently connected, by hub shard.";
    let mut f = Family::new(&mut out, "tickwire_shard_sockets_connected", Kind::Gauge, help);
    for (shard, n) in &s.sockets {
        f.sample(&[("shard", &shard.to_string())], *n as f64);
    }
    Family::new(&mut out, "tickwire_connections_opened_total", Kind::Counter, "WebSocket connections accepted.")
        .sample(&[], c.connections_opened as f64);
    // Every label value of a bounded set is written, zeros included, so rate() works from the
    // first event.
    let help = "WebSocket connections that ended, by reason.";
    let mut f = Family::new(&mut out, "tickwire_connections_closed_total", Kind::Counter, help);
    for r in CloseReason::ALL {
        f.sample(&[("reason", r.label())], c.connections_closed.get(&r).copied().unwrap_or(0) as f64);
    }
    let mut f =
        Family::new(&mut out, "tickwire_client_frames_total", Kind::Counter, "Frames received from clients, by op.");
    for k in FrameKind::ALL {
        f.sample(&[("op", k.label())], c.frames.get(&k).copied().unwrap_or(0) as f64);
    }
    let help = "Sockets' catch-ups of a channel, by outcome (a gap too large or a spent budget gets the latest value or none).";
    let mut f = Family::new(&mut out, "tickwire_catchups_total", Kind::Counter, help);
    for o in CatchupOutcome::ALL {
        f.sample(&[("outcome", o.label())], c.catchups.get(&o).copied().unwrap_or(0) as f64);
    }
    let help = "Error frames sent to clients, by error code.";
    let mut f = Family::new(&mut out, "tickwire_client_frames_rejected_total", Kind::Counter, help);
    for code in ErrorCode::ALL {
        f.sample(&[("code", code.label())], c.rejected.get(&code).copied().unwrap_or(0) as f64);
    }

    let help = "API reads (/api/snapshot, /api/history) answered, by hub shard.";
    let mut f = Family::new(&mut out, "tickwire_shard_api_reads_total", Kind::Counter, help);
    for (shard, n) in &s.reads {
        f.sample(&[("shard", &shard.to_string())], *n as f64);
    }
    let help = "Wasm linear memory of each hub shard's object, in bytes (it grows and never shrinks).";
    let mut f = Family::new(&mut out, "tickwire_shard_wasm_memory_bytes", Kind::Gauge, help);
    for (shard, n) in &s.wasm_memory_bytes {
        f.sample(&[("shard", &shard.to_string())], *n as f64);
    }
    let help = "Reports of another shard starting or stopping to have btc subscribers, received by shard 0.";
    Family::new(&mut out, "tickwire_btc_watch_reports_total", Kind::Counter, help).sample(&[], c.watch_reports as f64);
    Family::new(&mut out, "tickwire_fanouts_applied_total", Kind::Counter, "Fan-outs applied by replica shards.")
        .sample(&[], c.fanouts_applied as f64);
    let help = "Tokens refused (a connect's ?token=, the auth op, a publish's bearer token), by reason.";
    let mut f = Family::new(&mut out, "tickwire_auth_failures_total", Kind::Counter, help);
    for reason in TokenError::REASONS {
        f.sample(&[("reason", reason)], c.auth_failures.get(reason).copied().unwrap_or(0) as f64);
    }
    let help = "Publishes from sockets (the publish op) sequenced.";
    Family::new(&mut out, "tickwire_socket_publishes_total", Kind::Counter, help)
        .sample(&[], c.socket_publishes as f64);
    let help = "Ticks of conflated classes (a channel at one every interval with a pending change).";
    Family::new(&mut out, "tickwire_conflation_ticks_total", Kind::Counter, help)
        .sample(&[], c.conflation_ticks as f64);
    let help = "Messages conflated ticks built, each shared by every socket it went to.";
    Family::new(&mut out, "tickwire_conflation_frames_built_total", Kind::Counter, help)
        .sample(&[], c.conflation_frames_built as f64);
    let help = "Publishes refused with 503 overloaded: too many updates were waiting to be sent or fanned out.";
    Family::new(&mut out, "tickwire_publishes_overloaded_total", Kind::Counter, help)
        .sample(&[], c.publishes_overloaded as f64);
    // Summed over presence channels, with no channel label: their names are their users'.
    let help = "Presence members (distinct token subs) summed over presence channels, across shards.";
    Family::new(&mut out, "tickwire_presence_members", Kind::Gauge, help).sample(&[], s.presence_members as f64);

    let per_channel: [(&'static str, Kind, &str, ChannelValue); 5] = [
        (
            "tickwire_channel_subscribers",
            Kind::Gauge,
            "Sockets subscribed, by channel (channels that exist: at most the built-ins plus MAX_APP_CHANNELS).",
            |st, _| Some(st.subscribers as f64),
        ),
        ("tickwire_updates_published_total", Kind::Counter, "Updates sequenced, by channel.", |st, _| {
            Some(st.published as f64)
        }),
        ("tickwire_deliveries_total", Kind::Counter, "Update frames sent to sockets, by channel.", |st, _| {
            Some(st.deliveries as f64)
        }),
        (
            "tickwire_failed_sends_total",
            Kind::Counter,
            "Sends that failed (the socket was closed), by channel.",
            |st, _| Some(st.failed_sends as f64),
        ),
        (
            "tickwire_value_age_seconds",
            Kind::Gauge,
            "Seconds since the latest value of a channel was observed.",
            |st, now| st.latest_ts.map(|ts| now.saturating_sub(ts) as f64 / 1000.0),
        ),
    ];
    // Private channels' names are their users' business (they often hold a user id): they are
    // counted together under one label value no channel can have.
    let mut private = ChannelStats { latest_ts: None, ..ChannelStats::default() };
    let mut any_private = false;
    for st in s.channels.iter().filter(|(c, _)| c.is_private()).map(|(_, st)| st) {
        any_private = true;
        private.subscribers += st.subscribers;
        private.published += st.published;
        private.deliveries += st.deliveries;
        private.failed_sends += st.failed_sends;
        private.latest_ts = private.latest_ts.max(st.latest_ts);
    }
    let public = s.channels.iter().filter(|(c, _)| !c.is_private()).map(|(c, st)| (c.as_str(), st));
    let rows: Vec<(&str, &ChannelStats)> = public.chain(any_private.then_some((PRIVATE_LABEL, &private))).collect();
    for (name, kind, help, value) in per_channel {
        let mut f = Family::new(&mut out, name, kind, help);
        for (channel, st) in &rows {
            if let Some(v) = value(st, now_ms) {
                f.sample(&[("channel", channel)], v);
            }
        }
    }

    let help = "Upstream requests by source and outcome.";
    let mut f = Family::new(&mut out, "tickwire_upstream_requests_total", Kind::Counter, help);
    for source in Source::ALL {
        let st = s.upstreams.get(&source);
        for outcome in Outcome::ALL {
            let n = st.and_then(|u| u.requests.get(&outcome)).copied().unwrap_or(0);
            f.sample(&[("source", source.label()), ("outcome", outcome.label())], n as f64);
        }
    }
    let help = "Upstream requests that failed in a row (0 after a success).";
    let mut f = Family::new(&mut out, "tickwire_upstream_consecutive_failures", Kind::Gauge, help);
    for source in Source::ALL {
        let n = s.upstreams.get(&source).map_or(0, |u| u.consecutive_failures);
        f.sample(&[("source", source.label())], n as f64);
    }
    let help = "Circuit breaker state per upstream source: 0 closed, 1 open, 2 half-open.";
    let mut f = Family::new(&mut out, "tickwire_upstream_breaker_state", Kind::Gauge, help);
    for source in Source::ALL {
        let state = s.upstreams.get(&source).map(|u| u.breaker.state).unwrap_or_default();
        f.sample(&[("source", source.label())], state.gauge());
    }
    let name = "tickwire_upstream_request_duration_seconds";
    histogram_header(&mut out, name, "Duration of upstream requests that were sent, in seconds.");
    for source in Source::ALL {
        let h = s.upstreams.get(&source).map(|u| u.durations.clone()).unwrap_or_default();
        histogram_samples(&mut out, name, Some(("source", source.label())), &h);
    }
    let name = "tickwire_broadcast_duration_seconds";
    let help = "Time from a publish reaching a hub shard to its frames sent, stored and fanned out, in seconds.";
    histogram_header(&mut out, name, help);
    histogram_samples(&mut out, name, None, &c.broadcast_durations);
    Family::new(&mut out, "tickwire_kv_writes_total", Kind::Counter, "Channel copies written to Workers KV.")
        .sample(&[], c.kv_writes as f64);
    Family::new(&mut out, "tickwire_kv_write_failures_total", Kind::Counter, "KV writes that failed.")
        .sample(&[], c.kv_write_failures as f64);
    let help = "Unix time of the last successful upstream request.";
    let mut f = Family::new(&mut out, "tickwire_upstream_last_success_timestamp_seconds", Kind::Gauge, help);
    for source in Source::ALL {
        if let Some(t) = s.upstreams.get(&source).and_then(|u| u.last_success) {
            f.sample(&[("source", source.label())], t as f64 / 1000.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_hub::wire::protocol::{Channel, Seq};

    #[test]
    fn renders_families_with_help_and_type() {
        let mut s = HubStats::default();
        s.sockets.insert(0, 2);
        s.counters.connections_opened = 5;
        s.counters.connections_closed.insert(CloseReason::RateLimited, 3);
        s.counters.rejected.insert(ErrorCode::BadJson, 6);
        s.counters.catchups.insert(CatchupOutcome::Shared, 7);
        let btc = ChannelStats {
            seq: Seq(4),
            latest_ts: Some(10_000),
            published: 4,
            deliveries: 8,
            failed_sends: 1,
            subscribers: 2,
        };
        s.channels.insert(Channel::btc(), btc);
        s.upstreams.entry(Source::CoingeckoPrice).or_default().record(9_000, Outcome::HttpError, None);
        s.upstreams.entry(Source::CoingeckoPrice).or_default().durations.observe(700);
        s.counters.broadcast_durations.observe(3);
        let text = render("0.1.0", Some(&s), 12_500);
        for line in [
            "tickwire_build_info{version=\"0.1.0\"} 1",
            "tickwire_hub_up 1",
            "tickwire_sockets_connected 2",
            "tickwire_shard_sockets_connected{shard=\"0\"} 2",
            "tickwire_connections_closed_total{reason=\"rate_limited\"} 3",
            "tickwire_connections_closed_total{reason=\"client\"} 0",
            "tickwire_client_frames_rejected_total{code=\"bad_json\"} 6",
            "tickwire_catchups_total{outcome=\"shared\"} 7",
            "tickwire_catchups_total{outcome=\"withheld\"} 0",
            "tickwire_deliveries_total{channel=\"btc\"} 8",
            "tickwire_failed_sends_total{channel=\"btc\"} 1",
            "tickwire_connections_opened_total 5",
            "tickwire_publishes_overloaded_total 0",
            "tickwire_updates_published_total{channel=\"btc\"} 4",
            "tickwire_channel_subscribers{channel=\"btc\"} 2",
            "tickwire_value_age_seconds{channel=\"btc\"} 2.5",
            "tickwire_upstream_requests_total{source=\"coingecko_price\",outcome=\"http_error\"} 1",
            "tickwire_upstream_requests_total{source=\"coingecko_price\",outcome=\"ok\"} 0",
            "tickwire_upstream_consecutive_failures{source=\"coingecko_price\"} 1",
            "tickwire_upstream_breaker_state{source=\"fng\"} 0",
            "tickwire_upstream_request_duration_seconds_bucket{source=\"coingecko_price\",le=\"0.5\"} 0",
            "tickwire_upstream_request_duration_seconds_bucket{source=\"coingecko_price\",le=\"1\"} 1",
            "tickwire_upstream_request_duration_seconds_bucket{source=\"coingecko_price\",le=\"+Inf\"} 1",
            "tickwire_upstream_request_duration_seconds_sum{source=\"coingecko_price\"} 0.7",
            "tickwire_upstream_request_duration_seconds_count{source=\"coingecko_price\"} 1",
            "tickwire_kv_writes_total 0",
            "tickwire_broadcast_duration_seconds_bucket{le=\"0.05\"} 1",
            "tickwire_broadcast_duration_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Each family is announced exactly once, before its samples.
        for name in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap()) {
            assert_eq!(text.matches(&format!("# TYPE {name} ")).count(), 1);
            assert!(text.contains(&format!("# HELP {name} ")));
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn hub_down_still_renders() {
        let text = render("0.1.0", None, 0);
        assert!(text.contains("tickwire_hub_up 0\n"));
        assert!(!text.contains("tickwire_sockets_connected"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(3.0), "3");
    }

    #[test]
    fn private_channels_are_counted_together_and_never_named() {
        let mut s = HubStats::default();
        for (name, subscribers, published) in [("private-user-42", 2, 5), ("private-user-7", 1, 3), ("news", 4, 1)] {
            let st = ChannelStats { subscribers, published, latest_ts: Some(1_000), ..ChannelStats::default() };
            s.channels.insert(tickwire_hub::wire::protocol::Channel::parse(name).unwrap(), st);
        }
        let text = render("0.1.0", Some(&s), 2_000);
        assert!(!text.contains("user-42") && !text.contains("user-7"), "a private name in a label:\n{text}");
        assert!(text.contains("tickwire_channel_subscribers{channel=\"(private)\"} 3\n"), "{text}");
        assert!(text.contains("tickwire_updates_published_total{channel=\"(private)\"} 8\n"), "{text}");
        assert!(text.contains("tickwire_channel_subscribers{channel=\"news\"} 4\n"), "{text}");
    }
}
