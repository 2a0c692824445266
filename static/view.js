// tickwire dashboard: the view. Keeps the value shown for each channel and renders the cards,
// the coin table and the connection status (the BTC chart: chart.js). Knows nothing about
// sockets or HTTP (app.js).
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
    {
      card: "coins",
      channel: "market",
      fields: {},
      primary: () => null,
      extra: (d) => renderCoins(d.coins),
    },
  ];
  for (const c of CARDS) c.el = document.querySelector(`.card[data-card="${c.card}"]`);

  // ---- The coin table: one row per coin in `market.coins` (the server's COINS), largest first.
  const SYMBOLS = { bitcoin: "BTC", ethereum: "ETH", solana: "SOL", tether: "USDT", ripple: "XRP", binancecoin: "BNB",
    "usd-coin": "USDC", dogecoin: "DOGE", cardano: "ADA", tron: "TRX", "avalanche-2": "AVAX", litecoin: "LTC" };
  const COIN_FIELDS = {
    "coin-price": (c) => fmt.price(c.price_usd),
    "coin-change": (c) => fmt.signedPct(c.change_24h_pct),
    "coin-cap": (c) => fmt.compactUsd(c.market_cap_usd),
    "coin-volume": (c) => fmt.compactUsd(c.volume_24h_usd),
  };
  const coinName = (id) => id.split("-").map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(" ");

  function coinRow(id) {
    const row = document.createElement("div");
    row.className = "coin";
    row.setAttribute("role", "row");
    row.dataset.coin = id;
    const name = document.createElement("span");
    name.className = "coin-name";
    name.setAttribute("role", "cell");
    name.append(document.createElement("b"), document.createElement("span"));
    name.firstChild.textContent = coinName(id);
    name.lastChild.className = "coin-sym";
    name.lastChild.textContent = SYMBOLS[id] || "";
    // Shown while the coin is stale: the upstream's latest answers had no usable quote for it,
    // so its row holds the last good one (its age: renderAges).
    const badge = document.createElement("span");
    badge.className = "stale-badge coin-stale";
    badge.hidden = true;
    name.append(badge);
    row.append(name);
    for (const [cls, label] of [["coin-price", "Price"], ["coin-change", "24 h"], ["coin-cap", "Cap"], ["coin-volume", "Vol"]]) {
      const cell = document.createElement("span");
      cell.className = cls;
      cell.setAttribute("role", "cell");
      cell.dataset.short = label; // the label phones show before the value
      cell.textContent = "–";
      row.append(cell);
    }
    return row;
  }

  function renderCoins(coins) {
    const box = $("coins");
    const entries = Object.entries(coins && typeof coins === "object" ? coins : {})
      .filter(([id, c]) => typeof id === "string" && c && typeof c === "object")
      .sort(([, a], [, b]) => (fmt.isNum(b.market_cap_usd) ? b.market_cap_usd : -1) - (fmt.isNum(a.market_cap_usd) ? a.market_cap_usd : -1));
    const rows = new Map([...box.querySelectorAll(".coin[data-coin]")].map((r) => [r.dataset.coin, r]));
    entries.forEach(([id, c], i) => {
      const row = rows.get(id) || coinRow(id);
      rows.delete(id);
      if (box.children[i] !== row) box.insertBefore(row, box.children[i] || null);
      const before = row.querySelector(".coin-price").textContent;
      for (const [cls, text] of Object.entries(COIN_FIELDS)) {
        const el = row.querySelector("." + cls);
        const next = text(c) ?? "–";
        if (el.textContent !== next) el.textContent = next;
      }
      const pct = c.change_24h_pct; // null: unknown, shown as "–", neither up nor down
      const down = fmt.isNum(pct) && Math.round(pct * 100) < 0;
      row.querySelector(".coin-change").classList.toggle("up", fmt.isNum(pct) && !down);
      row.querySelector(".coin-change").classList.toggle("down", down);
      const stale = c.stale === true;
      row.classList.toggle("is-stale", stale);
      const badge = row.querySelector(".coin-stale");
      badge.hidden = !stale;
      if (stale && fmt.isNum(c.quoted_at)) badge.dataset.quotedAt = String(c.quoted_at);
      else delete badge.dataset.quotedAt;
      renderCoinAge(badge, Date.now());
      const price = row.querySelector(".coin-price").textContent;
      if (before !== "–" && before !== price) {
        row.classList.remove("flash");
        void row.offsetWidth; // restart the animation
        row.classList.add("flash");
      }
    });
    for (const gone of rows.values()) gone.remove();
    box.dataset.coins = String(entries.length);
  }

  /** A stale coin's badge: "stale", with how long ago its last good quote came when known. */
  function renderCoinAge(badge, now) {
    const at = Number(badge.dataset.quotedAt);
    const age = badge.dataset.quotedAt ? fmt.age(now - at) : null;
    const text = age ? "stale · " + age : "stale";
    if (badge.textContent !== text) badge.textContent = text;
    badge.title = age ? "No quote for this coin since " + new Date(at).toLocaleString() : "No quote for this coin lately";
  }

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
    for (const badge of document.querySelectorAll("#coins .coin-stale:not([hidden])")) renderCoinAge(badge, now);
  }

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

  };
})((window.tickwire = window.tickwire || {}));
