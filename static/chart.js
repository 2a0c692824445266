// tickwire dashboard: the BTC chart (#sparkline). Two series on one line, oldest first: the
// hourly closes of the last 48 h (`indicators.hourly_closes`, [[ms, price], ...]) and, after
// them, the live `btc` updates by seq (seeded from /api/history, then as they arrive). A live
// update older than the last hourly close is left out: the close already stands for its hour.
// Points are spaced evenly (an hour and a 10 s tick each take one step); a faint rule marks
// where the live part starts. The SVG's data attributes say what is drawn (tests read them):
//   data-points (all), data-hourly-points, data-live-points, data-trend (up | down).
"use strict";

(function (tw) {
  const fmt = tw.format;
  const $ = (id) => document.getElementById(id);
  const MAX_LIVE = 60;
  const MAX_HOURLY = 48;
  const chart = { epoch: null, hourly: [], live: [] }; // hourly: {ts, price}; live: {seq, ts, price}

  function liveShown() {
    const after = chart.hourly.length ? chart.hourly[chart.hourly.length - 1].ts : -Infinity;
    return chart.live.filter((p) => !(fmt.isNum(p.ts) && p.ts <= after));
  }

  function addLive(updates) {
    const bySeq = new Map(chart.live.map((p) => [p.seq, p]));
    for (const u of updates) {
      const price = u && u.data && u.data.price_usd;
      if (u && fmt.isNum(u.seq) && fmt.isNum(price)) bySeq.set(u.seq, { seq: u.seq, ts: u.ts, price });
    }
    chart.live = [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-MAX_LIVE);
    render();
  }

  /** `indicators.hourly_closes`: replaces the hourly series (absent or malformed: none). */
  function setHourly(closes) {
    const pts = (Array.isArray(closes) ? closes : [])
      .filter((c) => Array.isArray(c) && fmt.isNum(c[0]) && fmt.isNum(c[1]))
      .map(([ts, price]) => ({ ts, price }))
      .sort((a, b) => a.ts - b.ts)
      .slice(-MAX_HOURLY);
    const same = pts.length === chart.hourly.length && pts.every((p, i) => p.ts === chart.hourly[i].ts && p.price === chart.hourly[i].price);
    if (same) return;
    chart.hourly = pts;
    render();
  }

  /** The btc channel's storage generation: a new one makes the old seqs meaningless, so the
   *  live part restarts from `current` (the value shown). */
  function setEpoch(epoch, current) {
    if (!epoch || chart.epoch === epoch) return;
    const known = chart.epoch !== null;
    chart.epoch = epoch;
    if (known) {
      chart.live = [];
      addLive(current ? [current] : []);
    }
  }

  /** Seeds the live part from `/api/history`; a page from another epoch than the socket's is ignored. */
  function seed(epoch, updates) {
    if (chart.epoch !== null && epoch !== chart.epoch) return;
    chart.epoch = epoch || null;
    addLive(Array.isArray(updates) ? updates : []);
  }

  function render() {
    const svg = $("sparkline");
    const live = liveShown();
    const pts = [...chart.hourly, ...live];
    const w = Math.max(1, Math.round(svg.clientWidth || 300));
    const h = Math.max(1, Math.round(svg.clientHeight || 80));
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.dataset.points = String(pts.length);
    svg.dataset.hourlyPoints = String(chart.hourly.length);
    svg.dataset.livePoints = String(live.length);
    const [line, area, dot, rule] = ["spark-line", "spark-area", "spark-dot", "spark-rule"].map((k) => svg.querySelector("." + k));
    rule.setAttribute("d", "");
    if (!pts.length) {
      line.setAttribute("d", "");
      area.setAttribute("d", "");
      dot.setAttribute("r", "0");
      $("spark-caption").textContent = "";
      return;
    }
    const prices = pts.map((p) => p.price);
    const lo = Math.min(...prices), hi = Math.max(...prices);
    const pad = 6;
    const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, pts.length - 1);
    const y = (p) => (hi === lo ? h / 2 : pad + ((hi - p) * (h - 2 * pad)) / (hi - lo));
    const xy = pts.map((p, i) => [x(i).toFixed(1), y(p.price).toFixed(1)]);
    // A single point is drawn as a level line up to it (the only price known).
    if (xy.length === 1) {
      xy[0][0] = (w - pad).toFixed(1);
      xy.unshift([pad.toFixed(1), xy[0][1]]);
    }
    const d = "M" + xy.map((q) => q.join(",")).join(" L");
    line.setAttribute("d", d);
    area.setAttribute("d", `${d} L${xy[xy.length - 1][0]},${h} L${xy[0][0]},${h} Z`);
    if (chart.hourly.length && live.length) {
      const rx = x(chart.hourly.length - 1).toFixed(1);
      rule.setAttribute("d", `M${rx},0 L${rx},${h}`);
    }
    const last = xy[xy.length - 1];
    dot.setAttribute("cx", last[0]);
    dot.setAttribute("cy", last[1]);
    dot.setAttribute("r", "3.5");
    svg.dataset.trend = prices[prices.length - 1] < prices[0] ? "down" : "up";
    const parts = [];
    if (chart.hourly.length) parts.push(`${chart.hourly.length} h hourly`);
    if (live.length) parts.push(live.length === 1 ? "1 update" : `${live.length} updates`);
    if (pts.length > 1) parts.push(`low ${fmt.price(lo)} · high ${fmt.price(hi)}`);
    $("spark-caption").textContent = parts.join(" · ");
  }
  window.addEventListener("resize", render);

  tw.chart = { addLive, setHourly, setEpoch, seed, render };
})((window.tickwire = window.tickwire || {}));
