//! The monitoring files (monitoring/) against a real Prometheus scraping a real wrangler dev:
//! the example prometheus.yml loads with alerts.yml as its rule file, every rule evaluates
//! without error, and the upstream alerts go pending when an upstream fails; every query of the
//! Grafana dashboard parses and returns data, and the dashboard has what an import needs.

use crate::harness::{metric_value, root, Fixture, Prometheus, TempDir, Wrangler, PUBLISH_TOKEN};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

const DASHBOARD: &str = "monitoring/grafana/tickwire.json";
const DATASOURCE: &str = "${DS_PROMETHEUS}";

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// monitoring/prometheus.yml as shipped, made to scrape `target` and evaluate rules every second
/// (a test cannot wait for 15 s scrapes). Each edit must apply exactly once, so a change of the
/// example that this test no longer understands fails here rather than going untested.
fn example_config(target: &str) -> String {
    let mut text = read("monitoring/prometheus.yml");
    let targets = format!("targets: ['{target}']");
    for (from, to) in [
        ("scrape_interval: 15s", "scrape_interval: 1s"),
        ("scrape_timeout: 10s", "scrape_timeout: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
        ("targets: ['127.0.0.1:8787']", targets.as_str()),
    ] {
        assert_eq!(text.matches(from).count(), 1, "monitoring/prometheus.yml should have {from:?} once:\n{text}");
        text = text.replace(from, to);
    }
    text
}

#[test]
fn alerts_load_into_prometheus_and_every_dashboard_query_returns_data() {
    let fixture = Fixture::start();
    let w = Wrangler::start(&fixture, &[("PUBLISH_TOKEN", PUBLISH_TOKEN)]);
    let prom = Prometheus::start(&example_config(&w.authority()), &[("alerts.yml", &read("monitoring/alerts.yml"))]);
    prom.wait_for(r#"up{job="tickwire"}"#, 1.0, Duration::from_secs(30));

    // Traffic once Prometheus watches, so that rates and histograms see it: a refresh round,
    // sockets on built-in channels and an app channel, publishes to it, a rejected frame.
    w.fire_cron();
    let mut sockets: Vec<_> = (0..3).map(|_| w.client("/ws?channels=btc,market,news")).collect();
    w.wait_metric("tickwire_sockets_connected 3", Duration::from_secs(10));
    for i in 0..5 {
        w.publish_seq("news", json!({ "i": i }));
    }
    sockets[0].send_text("not json");
    sockets[0].expect_error("bad_json", Duration::from_secs(5));

    let exposition = w.get("/metrics").body;
    rules_load_and_evaluate(&prom);
    alerts_read_exported_metrics(&exposition);
    dashboard_covers_every_family(&exposition);
    upstream_alerts_go_pending(&w, &fixture, &prom);
    dashboard_queries_return_data(&w, &prom);
    drop(sockets);
    w.assert_no_panic();
}

/// Every alert of alerts.yml is loaded, has been evaluated against the real series, and is
/// healthy (an expression Prometheus could not evaluate would show `err` and its error).
fn rules_load_and_evaluate(prom: &Prometheus) {
    let mut want: Vec<String> = read("monitoring/alerts.yml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::to_owned)
        .collect();
    want.sort();
    assert!(want.len() >= 10, "alerts.yml has only {want:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = prom.api("rules", &[("type", "alert")]).expect("GET /api/v1/rules");
        let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
        let rules: Vec<&Value> = groups.iter().flat_map(|g| g["rules"].as_array().into_iter().flatten()).collect();
        let mut loaded: Vec<String> = rules.iter().filter_map(|r| r["name"].as_str()).map(str::to_owned).collect();
        loaded.sort();
        assert_eq!(loaded, want, "the rules Prometheus loaded: {v}");
        assert!(groups.iter().all(|g| g["name"] == "tickwire"), "{v}");
        if rules.iter().all(|r| r["health"] != "unknown") {
            for r in &rules {
                assert_eq!(r["health"], "ok", "rule {} does not evaluate: {}", r["name"], r["lastError"]);
                assert_eq!(r["lastError"].as_str().unwrap_or_default(), "", "rule {}", r["name"]);
            }
            return;
        }
        assert!(Instant::now() < deadline, "rules not all evaluated within 30 s: {v}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The metric families named anywhere in `text` (tickwire_*, a histogram's series folded into
/// its family).
fn tickwire_families(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("tickwire_") {
        let name: String =
            rest[i..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        rest = &rest[i + name.len()..];
        let family = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
        out.insert(family.to_owned());
    }
    out
}

fn exported_families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// A rule on a misspelt metric would never fire and never err: every tickwire metric that
/// alerts.yml names (in expressions and in the hints) is one /metrics exports.
fn alerts_read_exported_metrics(exposition: &str) {
    let named = tickwire_families(&read("monitoring/alerts.yml"));
    let exported = exported_families(exposition);
    let missing: Vec<_> = named.difference(&exported).collect();
    assert!(named.len() >= 15 && missing.is_empty(), "alerts.yml names metrics /metrics lacks: {missing:?}");
}

/// Every family /metrics exports is charted somewhere on the dashboard.
fn dashboard_covers_every_family(exposition: &str) {
    let charted: BTreeSet<String> = queries(&dashboard()).iter().flat_map(|q| tickwire_families(&q.expr)).collect();
    let exported = exported_families(exposition);
    let missing: Vec<_> = exported.difference(&charted).collect();
    assert!(missing.is_empty(), "families on no dashboard panel: {missing:?}");
}

/// The upstream alerts match the labels the Worker really exports: with Fear & Greed failing,
/// TickwireUpstreamFailing and TickwireBreakerOpen go pending for source fng (their `for` is
/// minutes, so they do not fire here), and for no other source.
fn upstream_alerts_go_pending(w: &Wrangler, fixture: &Fixture, prom: &Prometheus) {
    fixture.set("/fng/", 500, json!({ "error": "internal" }));
    for _ in 0..3 {
        w.fire_cron();
    }
    let exposition = w.get("/metrics").body;
    let fng = |family: &str| metric_value(&exposition, &format!(r#"{family}{{source="fng"}}"#));
    assert_eq!(fng("tickwire_upstream_consecutive_failures"), Some(3.0), "{exposition}");
    assert_eq!(fng("tickwire_upstream_breaker_state"), Some(1.0), "{exposition}");
    for alert in ["TickwireUpstreamFailing", "TickwireBreakerOpen"] {
        let q = format!(
            r#"ALERTS{{alertname="{alert}", alertstate="pending", job="tickwire", source="fng", severity="warning"}}"#
        );
        prom.wait_for(&q, 1.0, Duration::from_secs(30));
    }
    let v = prom.api("alerts", &[]).expect("GET /api/v1/alerts");
    for a in v["data"]["alerts"].as_array().expect("alerts") {
        let name = a["labels"]["alertname"].as_str().unwrap_or_default();
        if name == "TickwireUpstreamFailing" || name == "TickwireBreakerOpen" {
            assert_eq!(a["labels"]["source"], "fng", "only fng fails: {a}");
        }
        assert!(!["TickwireHubDown", "TickwireTargetMissing"].contains(&name), "{a}");
    }
}

/// One PromQL expression of the dashboard: a panel's target.
struct Query {
    panel: String,
    ref_id: String,
    expr: String,
}

/// Every panel, also those nested in a collapsed row.
fn panels(dash: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

fn queries(dash: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let panel = p["title"].as_str().unwrap_or("(untitled)").to_owned();
            let ref_id = t["refId"].as_str().unwrap_or_default().to_owned();
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("panel {panel:?} target {ref_id} has no expr"));
            out.push(Query { panel, ref_id, expr: expr.to_owned() });
        }
    }
    out
}

/// A templating variable's query. `label_values(selector, label)` is Grafana's, not PromQL:
/// Grafana answers it with Prometheus's label values API (`/api/v1/label/<label>/values` with
/// `match[]=<selector>`), and so does this test.
fn variable_values(prom: &Prometheus, var: &Value, known: &BTreeMap<String, String>) -> Vec<String> {
    let q = var["query"].get("query").unwrap_or(&var["query"]).as_str().unwrap_or_default();
    let args = q
        .strip_prefix("label_values(")
        .and_then(|a| a.strip_suffix(')'))
        .unwrap_or_else(|| panic!("variable {}: only label_values(...) is supported here, not {q:?}", var["name"]));
    let (selector, label) = match args.rsplit_once(',') {
        Some((s, l)) => (Some(substitute(s.trim(), known)), l.trim()),
        None => (None, args.trim()),
    };
    let params: Vec<(&str, &str)> = selector.iter().map(|s| ("match[]", s.as_str())).collect();
    let v = prom.api(&format!("label/{label}/values"), &params).expect("label values API");
    assert_eq!(v["status"], "success", "variable {}: {q} -> {v}", var["name"]);
    v["data"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// Grafana's variables in `expr` replaced as Grafana would: `$__rate_interval` by what it
/// becomes with Prometheus's usual 15 s scrape interval (max(4 × 15 s, $__interval + 15 s) =
/// 1m), `$__interval` and `$__range` by plausible values, template variables by `known`
/// (their "All" value). An unknown variable is a test failure.
fn substitute(expr: &str, known: &BTreeMap<String, String>) -> String {
    let (mut out, mut rest) = (String::new(), expr);
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(b) => {
                let end = b.find('}').unwrap_or_else(|| panic!("unclosed ${{ in {expr}"));
                (&b[..end], end + 2)
            }
            None => {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        let value = match name {
            "__rate_interval" => "1m",
            "__interval" => "15s",
            "__range" => "1h",
            _ => known.get(name).unwrap_or_else(|| panic!("unknown variable ${name} in {expr}")),
        };
        out.push_str(value);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The dashboard's variables, each resolved against Prometheus (it must offer at least one
/// value), in order (a later one may use an earlier one), mapped to what "All" substitutes.
fn resolve_variables(dash: &Value, prom: &Prometheus) -> BTreeMap<String, String> {
    let mut known = BTreeMap::new();
    for var in dash["templating"]["list"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("variable name").to_owned();
        assert_eq!(var["type"], "query", "variable {name}: only query variables are checked here");
        let deadline = Instant::now() + Duration::from_secs(20);
        let values = loop {
            let values = variable_values(prom, var, &known);
            if !values.is_empty() || Instant::now() >= deadline {
                break values;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        assert!(!values.is_empty(), "variable {name} offers no value: {}", var["query"]);
        let all = var["allValue"].as_str().filter(|_| var["includeAll"] == true);
        let value = all.map(str::to_owned).unwrap_or_else(|| values[0].clone());
        known.insert(name, value);
    }
    known
}

/// Why an instant query's answer shows nothing on a panel, if it does not: no answer, an error,
/// no series, or only NaN (what a quantile of an empty window gives).
fn no_data(answer: Option<Value>) -> Option<String> {
    let Some(v) = answer else { return Some("no answer".into()) };
    if v["status"] != "success" {
        return Some(format!("{}: {}", v["errorType"], v["error"]));
    }
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    if result.is_empty() {
        return Some("no series".into());
    }
    let finite =
        result.iter().filter_map(|s| s["value"][1].as_str()).any(|x| x.parse::<f64>().is_ok_and(f64::is_finite));
    (!finite).then(|| format!("only NaN or infinite values: {}", v["data"]))
}

/// Every panel's every query, with the variables substituted, parses and returns data. Rates
/// need two samples in their window; while some query still waits, the Worker gets a publish
/// and a refresh round a second, so histograms keep seeing events (bounded: 90 s).
fn dashboard_queries_return_data(w: &Wrangler, prom: &Prometheus) {
    let dash = dashboard();
    let known = resolve_variables(&dash, prom);
    let all = queries(&dash);
    assert!(all.len() >= 25, "only {} queries on the dashboard", all.len());
    let mut waiting: Vec<(String, String)> =
        all.iter().map(|q| (format!("panel {:?} query {}", q.panel, q.ref_id), substitute(&q.expr, &known))).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    for tick in 0.. {
        let (mut why, mut broken) = (Vec::new(), Vec::new());
        waiting.retain(|(what, expr)| {
            let answer = prom.api("query", &[("query", expr)]);
            // A query Prometheus rejects at the first look does not parse, and never will: fail
            // at once rather than after the wait for data.
            if let Some(v) = answer.as_ref().filter(|v| tick == 0 && v["status"] != "success") {
                broken.push(format!("{what}: {expr}\n  {}", v["error"]));
            }
            match no_data(answer) {
                Some(reason) => {
                    why.push(format!("{what}: {expr}\n  {reason}"));
                    true
                }
                None => false,
            }
        });
        assert!(broken.is_empty(), "dashboard queries Prometheus rejects:\n{}", broken.join("\n"));
        if waiting.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "dashboard queries without data after 90 s:\n{}", why.join("\n"));
        w.publish_seq("news", json!({ "tick": tick }));
        w.fire_cron();
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// What Grafana's import needs: the datasource as an input (`${DS_PROMETHEUS}`) used by every
/// panel, target and variable; unique panel ids; a place on the grid for each panel, no two
/// overlapping; a refId for each target.
#[test]
fn dashboard_imports_as_is() {
    let dash = dashboard();
    for key in ["uid", "title", "refresh"] {
        assert!(dash[key].as_str().is_some_and(|s| !s.is_empty()), "no {key}");
    }
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36), "schemaVersion {}", dash["schemaVersion"]);
    assert!(dash["time"]["from"].is_string() && dash["time"]["to"].is_string(), "time {}", dash["time"]);
    assert!(dash["id"].is_null(), "an exported dashboard has id null, so import creates it");
    let inputs = dash["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["type"] == "datasource" && i["pluginId"] == "prometheus"),
        "__inputs: {inputs:?}"
    );
    // Every ${DS_...} the file uses is declared.
    let text = read(DASHBOARD);
    for (i, _) in text.match_indices("${DS_") {
        let name = &text[i + 2..i + 2 + text[i + 2..].find('}').expect("closed")];
        assert!(inputs.iter().any(|x| x["name"] == name), "${{{name}}} used but not in __inputs");
    }
    let prometheus = json!({ "type": "prometheus", "uid": DATASOURCE });

    let all = panels(&dash);
    let mut ids = BTreeSet::new();
    for p in &all {
        let title = p["title"].as_str().unwrap_or_default();
        let id = p["id"].as_u64().unwrap_or_else(|| panic!("panel {title:?} has no id"));
        assert!(ids.insert(id), "panel id {id} twice ({title:?})");
        let g = &p["gridPos"];
        let [h, w, x, y] =
            ["h", "w", "x", "y"].map(|k| g[k].as_u64().unwrap_or_else(|| panic!("{title:?} gridPos {g}")));
        assert!(h >= 1 && (1..=24).contains(&w) && x + w <= 24 && y < 1000, "{title:?} gridPos {g}");
        if p["type"] == "row" {
            let nested = p["panels"].as_array().map_or(0, Vec::len);
            assert!(
                p["collapsed"] == true || nested == 0,
                "an open row keeps its panels after it, not in it: {title:?}"
            );
            continue;
        }
        assert_eq!(p["datasource"], prometheus, "panel {title:?}");
        let targets =
            p["targets"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("{title:?}: no targets"));
        let mut refs = BTreeSet::new();
        for t in targets {
            let r = t["refId"]
                .as_str()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| panic!("{title:?}: target without refId"));
            assert!(refs.insert(r), "{title:?}: refId {r} twice");
            assert_eq!(t["datasource"], prometheus, "{title:?} target {r}");
            assert!(t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()), "{title:?} target {r}: no expr");
        }
    }
    // No two panels overlap: those at the top level, and those inside each collapsed row.
    let top: Vec<&Value> = dash["panels"].as_array().expect("panels").iter().collect();
    let mut layouts = vec![top];
    layouts.extend(
        all.iter().filter(|p| p["collapsed"] == true).map(|p| p["panels"].as_array().expect("nested").iter().collect()),
    );
    for layout in layouts {
        let rect = |p: &Value| ["x", "y", "w", "h"].map(|k| p["gridPos"][k].as_u64().unwrap_or_default());
        for (i, a) in layout.iter().enumerate() {
            for b in &layout[i + 1..] {
                let ([ax, ay, aw, ah], [bx, by, bw, bh]) = (rect(a), rect(b));
                let overlap = ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah;
                assert!(!overlap, "panels {} and {} overlap", a["title"], b["title"]);
            }
        }
    }
    let vars = dash["templating"]["list"].as_array().expect("templating.list");
    assert!(!vars.is_empty());
    for v in vars {
        assert_eq!(v["datasource"], prometheus, "variable {}", v["name"]);
    }
}

/// The example config as shipped (local wrangler dev) passes `promtool check config`, which
/// also checks alerts.yml; so does its commented deployed variant once uncommented in place of
/// the local job.
#[test]
fn example_config_and_its_deployed_variant_pass_promtool() {
    let shipped = read("monitoring/prometheus.yml");
    let mut deployed = Vec::new();
    let (mut in_local, mut uncomment) = (false, false);
    for line in shipped.lines() {
        if line == "  - job_name: tickwire" {
            in_local = true;
        } else if line.starts_with("  # Deployed") {
            in_local = false;
        }
        if line == "  # - job_name: tickwire" {
            uncomment = true;
        }
        match (in_local, uncomment) {
            (true, _) => {}
            (false, true) => deployed.push(line.replacen("  # ", "  ", 1)),
            (false, false) => deployed.push(line.to_owned()),
        }
    }
    let deployed = deployed.join("\n") + "\n";
    assert!(
        deployed.contains("scheme: https") && !deployed.contains("targets: ['127.0.0.1:8787']"),
        "variant:\n{deployed}"
    );
    assert_eq!(deployed.matches("- job_name: tickwire").count(), 1, "variant:\n{deployed}");
    for (what, config) in [("shipped", shipped.as_str()), ("deployed variant", deployed.as_str())] {
        let dir = TempDir::new("promtool");
        std::fs::write(dir.0.join("prometheus.yml"), config).expect("write config");
        std::fs::write(dir.0.join("alerts.yml"), read("monitoring/alerts.yml")).expect("write rules");
        let out = Command::new("promtool")
            .args(["check", "config"])
            .arg(dir.0.join("prometheus.yml"))
            .output()
            .expect("promtool (scripts/setup installs it)");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.contains("1 rule files found"), "{what}: {said}\n{config}");
    }
}
