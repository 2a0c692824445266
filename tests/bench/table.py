#!/usr/bin/env python3
"""scripts/bench's report: reads the load client's JSON lines and prints one markdown table
comparing tickwire with the baseline per case (medians when a case ran more than once), then
warnings about runs whose numbers need care (saturated client, connect errors, timeouts)."""
import json
import statistics
import sys
from collections import defaultdict

# (name, how to read it from a run, shown for this socket count?)
METRICS = [
    ("deliveries/s", lambda r: r["deliveries_per_s"], lambda n: True),
    ("last-client p99 ms", lambda r: (r["last_client_ms"] or {}).get("p99"), lambda n: True),
    ("delivery p99 ms", lambda r: (r["latency_ms"] or {}).get("p99"), lambda n: True),
    ("connect seconds", lambda r: r["connect_seconds"], lambda n: n >= 5000),
    ("server RSS peak MB", lambda r: (r["server"] or {}).get("rss_peak_mb"), lambda n: True),
    ("publishes failed", lambda r: r["publish_failed"], lambda n: True),
    ("lost", lambda r: r["lost"], lambda n: True),
    ("duplicates", lambda r: r["duplicates"], lambda n: True),
    ("server CPU %", lambda r: (r["server"] or {}).get("cpu_pct"), lambda n: True),
    ("client CPU %", lambda r: r["client"]["cpu_pct"], lambda n: True),
]

# The churn case (every socket closes at once) has its own numbers.
CHURN_METRICS = [
    ("all closes processed s", lambda r: r["seconds"], lambda n: True),
    ("closes/s", lambda r: r["closes_per_s"], lambda n: True),
    ("closes counted", lambda r: r["closes_counted"], lambda n: True),
    ("connect seconds", lambda r: r["connect_seconds"], lambda n: True),
    ("server CPU %", lambda r: (r["server"] or {}).get("cpu_pct"), lambda n: True),
    ("client CPU %", lambda r: r["client"]["cpu_pct"], lambda n: True),
]


def fmt(x):
    if x is None:
        return "n/a"
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.1f}" if abs(x) < 100 else f"{x:,.0f}"
    return f"{int(x):,}"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main(path):
    runs = [json.loads(line) for line in open(path) if line.strip().startswith("{")]
    cases = defaultdict(lambda: defaultdict(list))  # (n, mode, via) -> target -> runs
    order = []
    for r in runs:
        target, n, mode, via, _rep = r["label"].split("/")
        key = (int(n), mode, via)
        if key not in cases:
            order.append(key)
        cases[key][target].append(r)

    # Targets beyond the pair (baseline-rs) get a column each, with their own ratio to the baseline.
    extra = sorted({t for c in cases.values() for t in c} - {"tickwire", "baseline"})
    print("| case | metric | tickwire | baseline | ratio |" + "".join(f" {t} | {t} / baseline |" for t in extra))
    print("|---|---|---:|---:|---:|" + "---:|---:|" * len(extra))
    for key in order:
        n, mode, via = key
        name = f"{n:,} sockets, {mode}, {via}"
        for metric, get, shown in CHURN_METRICS if mode == "churn" else METRICS:
            if not shown(n):
                continue
            tw = median(get(r) for r in cases[key].get("tickwire", []))
            bl = median(get(r) for r in cases[key].get("baseline", []))
            ratio = f"{tw / bl:.2f}x" if tw is not None and bl else "-"
            row = f"| {name} | {metric} | {fmt(tw)} | {fmt(bl)} | {ratio} |"
            for t in extra:
                v = median(get(r) for r in cases[key].get(t, []))
                row += f" {fmt(v)} | {f'{v / bl:.2f}x' if v is not None and bl else '-'} |"
            print(row)
            name = ""

    warnings = []
    for r in runs:
        c = r["client"]
        if c["cpu_pct"] > 80 * c["threads"]:
            warnings.append(f"{r['label']}: client CPU {c['cpu_pct']}% (> 80% of {c['threads']} cores): the client may be the bottleneck")
        if r["connect_errors"]:
            warnings.append(f"{r['label']}: {r['connect_errors']} connect errors {r['connect_error_kinds']}")
        if r["mode"] == "churn":
            if r["timed_out"]:
                warnings.append(f"{r['label']}: closes timed out ({fmt(r['closes_counted'])} of {fmt(r['connected'])} counted)")
            continue
        if r["timed_out"]:
            warnings.append(f"{r['label']}: deliveries timed out ({r['lost']:,} lost)")
        if r["closed_early"]:
            warnings.append(f"{r['label']}: {r['closed_early']} sockets closed by the server")
        if r["publish_fail_statuses"]:
            warnings.append(f"{r['label']}: failed publishes {r['publish_fail_statuses']}")
    print()
    print("ratio = tickwire / baseline (deliveries/s, closes/s: higher is better; latency, seconds, memory, CPU: lower is better)")
    for w in warnings:
        print(f"WARNING: {w}")
    if not any("client CPU" in w for w in warnings):
        top = max((r["client"]["cpu_pct"] for r in runs), default=0)
        print(f"client not saturated: highest client CPU {top}% of one core")


if __name__ == "__main__":
    main(sys.argv[1])
