// tickwire dashboard: the client. Keeps a WebSocket to /ws (wire protocol v1, see README.md),
// resumes where it left off, and falls back to polling /api/snapshot while the socket is down.
// Dependency-free on purpose: the page must work offline and without a build step.
//
// Connection states (shown by #status):
//   connecting       the first socket is being opened
//   live             a socket is open and its `welcome` arrived
//   reconnecting     a live socket closed; the next attempt is pending
//   offline-polling  an attempt failed: /api/snapshot is polled every POLL_MS until one succeeds
// Reconnects use exponential backoff with full jitter: attempt n waits
// random(0, min(30 s, 0.5 s × 2^n)); n resets once a socket is live. A poll that succeeds after
// one that failed means the server is back, so the next attempt is made at once.
//
// Page URL options (for tests and debugging):
//   ?poll_ms=N   the snapshot poll period while the socket is down (default 15000)
"use strict";

(function (tw) {
  const view = tw.view;
  const params = new URLSearchParams(location.search);
  const positiveInt = (s, dflt) => (/^[1-9][0-9]*$/.test(s || "") ? Number(s) : dflt);

  const POLL_MS = positiveInt(params.get("poll_ms"), 15000);
  const REFRESH_MS = 60000; // while live: staleness and ages from /api/snapshot
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 30000;
  const CONNECT_TIMEOUT_MS = 10000; // no `welcome` by then: the attempt failed
  const SPARK_POINTS = 60;

  // channel -> { seq, epoch }: the last position seen, for `?since=` on reconnect.
  const positions = {};
  let socket = null;
  let attempt = 0;
  let reconnectTimer = 0;
  let pollTimer = 0;
  let refreshTimer = 0;
  let lastPollOk = true;

  // Read-only state for debugging and tests (window.tickwire.debug).
  const debug = (tw.debug = { positions, subscribed: {}, connects: 0, lastUrl: "", pollMs: POLL_MS });

  // ---- Frames

  function handle(frame, conn) {
    if (!frame || typeof frame !== "object") return;
    switch (frame.type) {
      case "batch":
        for (const f of Array.isArray(frame.frames) ? frame.frames : []) handle(f, conn);
        break;
      case "welcome":
        view.setStaleAfter(frame.stale_after_seconds);
        conn.onWelcome();
        break;
      case "update":
        onUpdate(frame);
        break;
      case "subscribed":
        positions[frame.channel] = { seq: frame.seq, epoch: frame.epoch };
        debug.subscribed[frame.channel] = frame;
        if (frame.channel === "btc") view.sparkline.setEpoch(frame.epoch);
        break;
      case "unsubscribed":
        delete positions[frame.channel];
        break;
      case "error":
        console.warn("tickwire: server error", frame.code, frame.message);
        break;
      default:
        break; // newer protocol frames: ignore
    }
  }

  function onUpdate(u) {
    if (typeof u.channel !== "string" || typeof u.seq !== "number") return;
    const known = positions[u.channel];
    positions[u.channel] = { seq: u.seq, epoch: known && known.epoch };
    // Updates come in seq order (catch-up first), and a newer one is fresh unless it says stale.
    view.show(u.channel, { seq: u.seq, ts: u.ts, stale: u.stale === true, data: u.data });
    if (u.channel === "btc") view.sparkline.add([u]);
  }

  // ---- The socket

  function wsUrl() {
    const since = Object.keys(positions)
      .filter((c) => positions[c].seq > 0)
      .map((c) => `${c}:${positions[c].seq}` + (positions[c].epoch ? `@${positions[c].epoch}` : ""))
      .join(",");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/ws` + (since ? "?since=" + encodeURIComponent(since) : "");
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    if (socket) return;
    const url = wsUrl();
    debug.lastUrl = url;
    debug.connects += 1;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      console.warn("tickwire: cannot open socket:", e.message);
      onDown(false);
      return;
    }
    socket = ws;
    const conn = {
      welcomed: false,
      onWelcome() {
        if (conn.welcomed) return;
        conn.welcomed = true;
        clearTimeout(timeout);
        onLive();
      },
    };
    const timeout = setTimeout(() => conn.welcomed || ws.close(), CONNECT_TIMEOUT_MS);
    ws.onmessage = (ev) => {
      if (socket !== ws || typeof ev.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (e) {
        if (ev.data !== "pong") console.warn("tickwire: frame is not JSON:", ev.data.slice(0, 80));
        return;
      }
      handle(frame, conn);
    };
    ws.onclose = () => {
      clearTimeout(timeout);
      if (socket !== ws) return;
      socket = null;
      onDown(conn.welcomed);
    };
  }

  function onLive() {
    attempt = 0;
    lastPollOk = true;
    clearInterval(pollTimer);
    pollTimer = 0;
    view.setStatus("live");
    clearInterval(refreshTimer);
    refreshTimer = setInterval(fetchSnapshot, REFRESH_MS);
  }

  /** The socket closed (`wasLive`) or an attempt failed: poll, and try again after a backoff. */
  function onDown(wasLive) {
    clearInterval(refreshTimer);
    refreshTimer = 0;
    view.setStatus(wasLive ? "reconnecting" : "offline-polling");
    if (!pollTimer) pollTimer = setInterval(poll, POLL_MS);
    const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
    attempt = Math.min(attempt + 1, 30);
    reconnectTimer = setTimeout(connect, delay);
  }

  function reconnectNow() {
    if (!socket) connect();
  }

  async function poll() {
    const ok = await fetchSnapshot();
    if (ok && !lastPollOk) reconnectNow();
    lastPollOk = ok;
  }

  // ---- HTTP

  async function getJson(path) {
    const r = await fetch(path, { cache: "no-store", headers: { accept: "application/json" } });
    if (r.status === 404) return null;
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  /** Shows `/api/snapshot`: newer values than shown, and the stale flag of the value shown. */
  async function fetchSnapshot() {
    let snap;
    try {
      snap = await getJson("/api/snapshot");
    } catch (e) {
      console.warn("tickwire: snapshot failed:", e.message);
      return false;
    }
    for (const [channel, e] of Object.entries((snap && snap.channels) || {})) {
      if (!e || typeof e.seq !== "number") continue;
      const cur = view.current(channel);
      if (!cur || e.seq > cur.seq) {
        const entry = { seq: e.seq, ts: Date.parse(e.fetched_at), stale: e.stale === true, data: e.data };
        view.show(channel, entry);
        if (channel === "btc") view.sparkline.add([entry]);
      } else if (e.seq === cur.seq) {
        view.setStale(channel, e.stale === true);
      }
    }
    return true;
  }

  /** Seeds the sparkline with the last SPARK_POINTS retained btc updates. */
  async function seedSparkline() {
    try {
      let page = await getJson(`/api/history?channel=btc&limit=${SPARK_POINTS}`);
      if (!page) return; // 404 unknown_channel: no btc value yet
      const updates = Array.isArray(page.updates) ? page.updates : [];
      const last = updates.length ? updates[updates.length - 1].seq : 0;
      if (page.seq > last) {
        // The page starts at the oldest retained update; ask for the newest ones instead.
        const since = Math.max(0, page.seq - SPARK_POINTS);
        page = await getJson(`/api/history?channel=btc&limit=${SPARK_POINTS}&since=${since}`);
        if (!page) return;
      }
      view.sparkline.seed(page.epoch, page.updates);
    } catch (e) {
      console.warn("tickwire: history failed:", e.message);
    }
  }

  // ---- Start

  view.setStatus("connecting");
  connect();
  fetchSnapshot();
  seedSparkline();
  setInterval(view.renderAges, 1000);
  window.addEventListener("online", reconnectNow);
})((window.tickwire = window.tickwire || {}));
