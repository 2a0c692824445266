//! `/metrics` as operators consume it: promtool accepts it without a lint message, and a real
//! Prometheus server scrapes it and sees the service's numbers.

use crate::harness::{promtool_accepts, Fixture, Prometheus, Wrangler};
use std::time::Duration;

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

    let prom = Prometheus::scraping(&w.authority());
    prom.wait_for(r#"up{job="tickwire"}"#, 1.0, Duration::from_secs(30));
    prom.wait_for("tickwire_sockets_connected", 3.0, Duration::from_secs(10));
    prom.wait_for(r#"sum(tickwire_upstream_requests_total{outcome="ok"})"#, 4.0, Duration::from_secs(10));
    drop(sockets);
    prom.wait_for("tickwire_sockets_connected", 0.0, Duration::from_secs(10));
    w.assert_no_panic();
}
