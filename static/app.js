// tickwire dashboard client: connects to /ws, shows each channel's latest value, reconnects.
// Dependency-free on purpose: the page must work offline and without a build step.
"use strict";

const statusEl = document.getElementById("status");
const latest = {}; // channel -> last update frame

const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });

function setStatus(state) {
  statusEl.dataset.state = state;
  statusEl.textContent = state;
}

function render(update) {
  if (update.channel !== "btc") return;
  const d = update.data || {};
  document.getElementById("btc-price").textContent = Number.isFinite(d.price_usd) ? usd.format(d.price_usd) : "–";
  const ch = document.getElementById("btc-change");
  if (Number.isFinite(d.change_24h_pct)) {
    ch.textContent = (d.change_24h_pct >= 0 ? "▲ +" : "▼ ") + d.change_24h_pct.toFixed(2) + "% 24h";
    ch.className = "change " + (d.change_24h_pct >= 0 ? "up" : "down");
  }
  document.getElementById("btc-seq").textContent = "seq " + update.seq;
  renderAges();
}

function renderAges() {
  const u = latest.btc;
  if (!u) return;
  const age = Math.max(0, Math.round((Date.now() - u.ts) / 1000));
  document.getElementById("btc-age").textContent = "· " + age + " s ago";
}

function handle(frame) {
  switch (frame.type) {
    case "batch":
      (frame.frames || []).forEach(handle);
      break;
    case "update":
      latest[frame.channel] = frame;
      render(frame);
      break;
    case "welcome":
      setStatus("live");
      break;
    case "error":
      console.warn("tickwire:", frame.code, frame.message);
      break;
  }
}

let attempt = 0;
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/ws");
  ws.onopen = () => { attempt = 0; };
  ws.onmessage = (ev) => {
    try { handle(JSON.parse(ev.data)); } catch (e) { console.warn("tickwire: bad frame", e); }
  };
  ws.onclose = () => {
    setStatus("reconnecting");
    // Exponential backoff with full jitter, 0.5 s to 30 s.
    const cap = Math.min(30000, 500 * 2 ** attempt++);
    setTimeout(connect, Math.random() * cap);
  };
}

setInterval(renderAges, 1000);
connect();
