#!/usr/bin/env python3
"""scripts/bench's report: reads the load client's JSON lines and prints one markdown table
comparing tickwire with the baseline per case (medians when a case ran more than once), then
warnings about runs whose numbers need care (saturated client, connect errors, timeouts), and
for the reconnect storm, its ratio against the target."""
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

# The reconnect storm: "every socket back" is, for tickwire, every socket with its exact
# catch-up and `recovered: true`; for the baseline (no history), every socket reconnected. Their
# ratio is the storm's target (STORM_TARGET at STORM_TARGET_SOCKETS).
STORM_METRICS = [
    ("every socket back s", lambda r: r["seconds"], lambda n: True),
    ("every socket reconnected s", lambda r: r["reconnect_seconds"], lambda n: True),
    ("per-socket back p99 ms", lambda r: (r["back_ms"] or {}).get("p99"), lambda n: True),
    ("exact catch-ups", lambda r: r["exact"], lambda n: True),
    ("recovered: false", lambda r: r["not_recovered"], lambda n: True),
    ("inexact or incomplete", lambda r: none_sum(r["inexact"], r["incomplete"]), lambda n: True),
    ("duplicates", lambda r: r["duplicates"], lambda n: True),
    ("server CPU s", lambda r: (r["server"] or {}).get("cpu_s"), lambda n: True),
    ("server CPU %", lambda r: (r["server"] or {}).get("cpu_pct"), lambda n: True),
    ("wrangler CPU %", lambda r: (r.get("proxy") or {}).get("cpu_pct"), lambda n: True),
    ("server RSS before MB", lambda r: (r["server"] or {}).get("rss_before_mb"), lambda n: True),
    ("server RSS peak MB", lambda r: (r["server"] or {}).get("rss_peak_mb"), lambda n: True),
    ("drops counted s", lambda r: r["drop_seconds"], lambda n: True),
    ("client CPU %", lambda r: r["client"]["cpu_pct"], lambda n: True),
]
STORM_TARGET, STORM_TARGET_SOCKETS = 1.2, 5000

# Conflated delivery (mode conflate): tickwire-conflated's sockets ask for every=1000 while the
# others get every update; "last value held" counts the sockets that ended with the last publish.
CONFLATE_METRICS = [
    ("bytes/socket/s", lambda r: r.get("bytes_per_socket_s"), lambda n: True),
    ("messages/socket/s", lambda r: r.get("messages_per_socket_s"), lambda n: True),
    ("messages built per tick", lambda r: r.get("frames_per_tick"), lambda n: True),
    ("ticks", lambda r: r.get("conflation_ticks"), lambda n: True),
    ("server CPU s", lambda r: (r["server"] or {}).get("cpu_s"), lambda n: True),
    ("server CPU %", lambda r: (r["server"] or {}).get("cpu_pct"), lambda n: True),
    ("last value held (sockets)", lambda r: r["delivered"] if r.get("every_ms") else None, lambda n: True),
    ("lost", lambda r: r["lost"], lambda n: True),
    ("publishes failed", lambda r: r["publish_failed"], lambda n: True),
    ("client CPU %", lambda r: r["client"]["cpu_pct"], lambda n: True),
]


def none_sum(*xs):
    return None if any(x is None for x in xs) else sum(xs)


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
        table = {"churn": CHURN_METRICS, "storm": STORM_METRICS, "conflate": CONFLATE_METRICS}.get(mode, METRICS)
        for metric, get, shown in table:
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
        if r["mode"] == "storm":
            warnings.extend(storm_warnings(r))
            continue
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
    storm = [key for key in order if key[1] == "storm"]
    if storm:
        print("storm: every socket back = tickwire: each has exactly the updates it missed, then recovered: true;"
              " baseline: each reconnected (it keeps no history)")
    for key in storm:
        tw = median(r["seconds"] for r in cases[key].get("tickwire", []))
        bl = median(r["seconds"] for r in cases[key].get("baseline", []))
        if tw is None or not bl:
            continue
        exact = all(r["exact"] == r["sockets"] for r in cases[key].get("tickwire", []))
        verdict = "met" if tw / bl <= STORM_TARGET and exact else "NOT met"
        # The issue sets the target at 5,000 sockets; other sizes show the ratio alone.
        target = f" (target <= {STORM_TARGET}x with every catch-up exact: {verdict})" if key[0] == STORM_TARGET_SOCKETS else ""
        print(f"storm, {key[0]:,} sockets, {key[2]}: every socket caught up in {fmt(tw)} s against the baseline's "
              f"{fmt(bl)} s to reconnect: {tw / bl:.2f}x{target}" + ("" if exact else "; NOT every catch-up exact"))
    for w in warnings:
        print(f"WARNING: {w}")
    if not any("client CPU" in w for w in warnings):
        top = max((r["client"]["cpu_pct"] for r in runs), default=0)
        print(f"client not saturated: highest client CPU {top}% of one core")


def storm_warnings(r):
    """What makes a storm run's time not the whole story."""
    out, label = [], r["label"]
    if r["reconnect_errors"]:
        out.append(f"{label}: {r['reconnect_errors']} reconnect errors {r['reconnect_error_kinds']}")
    if r["timed_out"]:
        out.append(f"{label}: only {r['back']:,} of {r['connected']:,} sockets back before the timeout")
    if r["kind"] == "catchup" and r["exact"] != r["connected"]:
        out.append(f"{label}: {r['exact']:,} of {r['connected']:,} catch-ups exact ({r['not_recovered']} recovered: false,"
                   f" {r['inexact']} inexact, {r['incomplete']} incomplete; {r['mismatches']} mismatched,"
                   f" {r['missing']} missing, {r['duplicates']} duplicate updates)")
    if len(r["positions"]) > 1:
        out.append(f"{label}: the sockets did not all hold the same position before the drop: {r['positions']}")
    if r["closed_early"] or r["closed_after"]:
        out.append(f"{label}: the server closed {r['closed_early']} sockets before the drop, {r['closed_after']} after the reconnect")
    if r["missed_published"] != r["missed"] or r["publish_fail_statuses"]:
        out.append(f"{label}: {r['missed_published']} of {r['missed']} updates published while away {r['publish_fail_statuses']}")
    if r["closes_counted"] is not None and r["closes_counted"] < r["connected"] - r["closed_early"]:
        out.append(f"{label}: the server counted {fmt(r['closes_counted'])} of the drops before the reconnect began")
    return out


if __name__ == "__main__":
    main(sys.argv[1])
