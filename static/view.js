// tickwire dashboard: the view. Keeps the value shown for each channel and renders the cards,
// the connection status and the BTC sparkline. Knows nothing about sockets or HTTP (app.js).
"use strict";

(function (tw) {
  const fmt = tw.format;
  const $ = (id) => document.getElementById(id);

  const textOrNull = (x) => (typeof x === "string" && x ? x : null);

  /** Fear & Greed 0 (extreme fear) .. 100 (extreme greed) → the label's colour. */
  function fngTone(v) {
    if (!fmt.isNum(v)) return "";
    if (v < 25) return "fear-2";
    if (v < 45) return "fear-1";
    if (v <= 55) return "neutral";
    return v <= 75 ? "greed-1" : "greed-2";
  }

  /** RSI zones: 70 and above overbought, 30 and below oversold. */
  function rsiZone(v) {
    if (!fmt.isNum(v)) return { label: null, tone: "" };
    if (v >= 70) return { label: "overbought", tone: "greed-2" };
    if (v <= 30) return { label: "oversold", tone: "fear-2" };
    return { label: "neutral", tone: "neutral" };
  }

  // Which card shows what: its channel, the text of each field (by element id) from the
  // channel's data (null: not known), the number that decides a pulse's colour (primary), and
  // optional extras: the number its meter shows, the tone that colours its label.
  const CARDS = [
    {
      card: "btc",
      channel: "btc",
      fields: { "btc-price": (d) => fmt.price(d.price_usd), "btc-change": (d) => fmt.signedPct(d.change_24h_pct) },
      primary: (d) => d.price_usd,
      extra(d) {
        const change = $("btc-change");
        const pct = d.change_24h_pct;
        // The same rounding as the text: -0.001 % shows "+0.00%", so it counts as up.
        const down = fmt.isNum(pct) && Math.round(pct * 100) < 0;
        change.classList.toggle("up", fmt.isNum(pct) && !down);
        change.classList.toggle("down", down);
      },
    },
    {
      card: "market-cap",
      channel: "market",
      fields: { "market-cap": (d) => fmt.compactUsd(d.total_market_cap_usd) },
      primary: (d) => d.total_market_cap_usd,
    },
    {
      card: "volume",
      channel: "market",
      fields: { "market-volume": (d) => fmt.compactUsd(d.total_volume_24h_usd) },
      primary: (d) => d.total_volume_24h_usd,
    },
    {
      card: "dominance",
      channel: "market",
      fields: { "btc-dominance": (d) => fmt.pct1(d.btc_dominance_pct) },
      primary: (d) => d.btc_dominance_pct,
      meter: (d) => d.btc_dominance_pct,
    },
    {
      card: "fng",
      channel: "sentiment",
      fields: { "fng-value": (d) => fmt.integer(d.value), "fng-label": (d) => textOrNull(d.classification) },
      primary: (d) => d.value,
      meter: (d) => d.value,
      tone: (d) => fngTone(d.value),
    },
    {
      card: "rsi",
      channel: "indicators",
      fields: { rsi: (d) => fmt.fixed1(d.rsi_14), "rsi-zone": (d) => rsiZone(d.rsi_14).label },
      primary: (d) => d.rsi_14,
      meter: (d) => d.rsi_14,
      tone: (d) => rsiZone(d.rsi_14).tone,
    },
  ];
  for (const c of CARDS) c.el = document.querySelector(`.card[data-card="${c.card}"]`);

  // channel -> { seq, ts, stale, data }: what the cards show.
  const shown = {};

  function setStatus(state) {
    const el = $("status");
    if (el.dataset.state === state) return;
    el.dataset.state = state;
    el.textContent = state;
    el.title = {
      connecting: "Opening the live connection",
      live: "Live: updates arrive as they happen",
      reconnecting: "Live connection lost; reconnecting",
      "offline-polling": "No live connection; refreshing from the server periodically",
    }[state];
  }

  function pulse(el, direction) {
    el.dataset.changes = String(Number(el.dataset.changes || 0) + 1);
    el.classList.remove("pulse", "pulse-up", "pulse-down");
    void el.offsetWidth; // restart the animation
    el.classList.add("pulse", "pulse-" + direction);
    clearTimeout(el._pulseTimer);
    el._pulseTimer = setTimeout(() => el.classList.remove("pulse", "pulse-up", "pulse-down"), 1000);
  }

  function renderCard(c, entry, previous) {
    const d = entry.data && typeof entry.data === "object" ? entry.data : {};
    let changed = false;
    for (const [id, text] of Object.entries(c.fields)) {
      const el = $(id);
      // A missing value shows "–"; a missing qualitative label shows nothing.
      const next = text(d) ?? (el.classList.contains("label") ? "" : "–");
      if (el.textContent !== next) {
        changed = changed || (el.textContent !== "–" && el.textContent !== "");
        el.textContent = next;
      }
    }
    if (c.extra) c.extra(d);
    if (c.meter) {
      const v = c.meter(d);
      c.el.style.setProperty("--meter", fmt.isNum(v) ? Math.min(100, Math.max(0, v)).toFixed(1) : "0");
    }
    if (c.tone) c.el.dataset.tone = c.tone(d);
    if (changed && previous) {
      const was = c.primary(previous.data || {}), now = c.primary(d);
      pulse(c.el, fmt.isNum(was) && fmt.isNum(now) && now < was ? "down" : "up");
    }
  }

  function renderStale(channel) {
    const stale = !!(shown[channel] && shown[channel].stale);
    for (const c of CARDS) {
      if (c.channel !== channel) continue;
      c.el.classList.toggle("is-stale", stale);
      c.el.querySelector(".stale-badge").hidden = !stale;
    }
  }

  function renderAges() {
    const now = Date.now();
    for (const c of CARDS) {
      const e = shown[c.channel];
      const text = (e && fmt.age(now - e.ts)) || "–";
      const el = c.el.querySelector(".age");
      if (el.textContent !== text) el.textContent = text;
      if (e && fmt.isNum(e.ts)) el.title = "observed " + new Date(e.ts).toLocaleString();
    }
  }

  // ---- The BTC sparkline: the last MAX_POINTS updates by seq, drawn at the SVG's pixel size.
  const MAX_POINTS = 60;
  const spark = { epoch: null, points: [] }; // points: { seq, price }, ascending seq

  function sparkAdd(updates) {
    const bySeq = new Map(spark.points.map((p) => [p.seq, p]));
    for (const u of updates) {
      const price = u && u.data && u.data.price_usd;
      if (fmt.isNum(u.seq) && fmt.isNum(price)) bySeq.set(u.seq, { seq: u.seq, price });
    }
    spark.points = [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-MAX_POINTS);
    renderSparkline();
  }

  /** The btc channel's storage generation (from `subscribed`): a new one makes the old seqs
   *  meaningless, so the line restarts from the value shown. */
  function sparkSetEpoch(epoch) {
    if (!epoch || spark.epoch === epoch) return;
    const known = spark.epoch !== null;
    spark.epoch = epoch;
    if (known) {
      spark.points = [];
      sparkAdd(shown.btc ? [shown.btc] : []);
    }
  }

  /** Seeds from `/api/history`; a page from another epoch than the socket's is ignored. */
  function sparkSeed(epoch, updates) {
    if (spark.epoch !== null && epoch !== spark.epoch) return;
    spark.epoch = epoch || null;
    sparkAdd(Array.isArray(updates) ? updates : []);
  }

  function renderSparkline() {
    const svg = $("sparkline");
    const pts = spark.points;
    const w = Math.max(1, Math.round(svg.clientWidth || 300));
    const h = Math.max(1, Math.round(svg.clientHeight || 80));
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("data-points", String(pts.length));
    const [line, area, dot] = ["spark-line", "spark-area", "spark-dot"].map((k) => svg.querySelector("." + k));
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
    const last = xy[xy.length - 1];
    dot.setAttribute("cx", last[0]);
    dot.setAttribute("cy", last[1]);
    dot.setAttribute("r", "3.5");
    svg.dataset.trend = prices[prices.length - 1] < prices[0] ? "down" : "up";
    $("spark-caption").textContent =
      pts.length === 1 ? "1 update" : `${pts.length} updates · low ${fmt.price(lo)} · high ${fmt.price(hi)}`;
  }
  window.addEventListener("resize", renderSparkline);

  tw.view = {
    setStatus,
    renderAges,

    /** What a channel's cards show now (or undefined). */
    current: (channel) => shown[channel],

    /** Shows a channel's value: { seq, ts (ms), stale, data }. */
    show(channel, entry) {
      const previous = shown[channel];
      shown[channel] = entry;
      for (const c of CARDS) if (c.channel === channel) renderCard(c, entry, previous);
      renderStale(channel);
      renderAges();
    },

    /** Updates only the stale flag of the value shown. */
    setStale(channel, stale) {
      if (!shown[channel]) return;
      shown[channel].stale = !!stale;
      renderStale(channel);
    },

    /** Sets the tooltip of the stale badges from the server's `stale_after_seconds`. */
    setStaleAfter(seconds) {
      if (!fmt.isNum(seconds)) return;
      for (const b of document.querySelectorAll(".stale-badge")) {
        b.title = `Its source has not confirmed this value for over ${seconds} s`;
      }
    },

    sparkline: { add: sparkAdd, setEpoch: sparkSetEpoch, seed: sparkSeed },
  };
})((window.tickwire = window.tickwire || {}));
