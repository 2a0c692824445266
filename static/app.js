// tickwire dashboard: the connection, through the client library (tickwire-client.js, the same
// module apps use): it keeps a WebSocket to /ws, resumes with seq and epoch, reconnects with
// backoff and full jitter (0.5 s to 30 s), takes merge-patch deltas, and polls /api/snapshot
// while the socket is down. This file wires its events to the view (view.js, chart.js).
//
// Connection states (shown by #status):
//   connecting       the first socket is being opened
//   live             a socket is open and its `welcome` arrived
//   reconnecting     a live socket closed; the next attempt is pending
//   offline-polling  an attempt failed: /api/snapshot is polled every POLL_MS until one succeeds
//
// Page URL options (for tests and debugging):
//   ?poll_ms=N   the snapshot poll period while the socket is down (default 15000)
//   ?delta=0     full updates only (default: merge-patch deltas)
// While the page is hidden, `market` is conflated to one frame per 5 s (HIDDEN_EVERY).
import { TickwireClient, BUILTIN_CHANNELS } from "/tickwire-client.js";

const tw = (window.tickwire = window.tickwire || {});
const { view, chart } = tw;
const params = new URLSearchParams(location.search);
const positiveInt = (s, dflt) => (/^[1-9][0-9]*$/.test(s || "") ? Number(s) : dflt);

const POLL_MS = positiveInt(params.get("poll_ms"), 15000);
const SPARK_POINTS = 60;

const subscribed = {};
const client = new TickwireClient(location.origin, {
  channels: BUILTIN_CHANNELS,
  delta: params.get("delta") !== "0",
  pollMs: POLL_MS,
  refreshMs: 60000, // while live: stale flags from /api/snapshot
  onStatus: (state) => view.setStatus(state === "closed" || state === "idle" ? "connecting" : state),
  onWelcome: (w) => view.setStaleAfter(w.stale_after_seconds),
  onUpdate: (u) => {
    view.show(u.channel, { seq: u.seq, ts: u.ts, stale: u.stale, data: u.data });
    if (u.channel === "btc") chart.addLive([u]);
    if (u.channel === "indicators") chart.setHourly(u.data && u.data.hourly_closes);
  },
  onSubscribed: (f) => {
    subscribed[f.channel] = f;
    if (f.channel === "btc") chart.setEpoch(f.epoch, view.current("btc"));
  },
  onStale: (s) => view.setStale(s.channel, s.stale),
  onError: (e) => console.warn("tickwire:", e && e.code ? `${e.code}: ${e.message}` : e),
});

// Read-only state for debugging and tests.
tw.client = client;
tw.debug = {
  positions: client.positions,
  subscribed,
  get connects() {
    return client.stats.connects;
  },
  get lastUrl() {
    return client.lastUrl;
  },
  pollMs: POLL_MS,
};

/** Seeds the chart's live part with the last SPARK_POINTS retained btc updates. */
async function seedChart() {
  const get = async (q) => {
    const r = await fetch(`/api/history?channel=btc&limit=${SPARK_POINTS}${q}`, { cache: "no-store" });
    if (r.status === 404) return null; // no btc value yet
    if (!r.ok) throw new Error(`/api/history: HTTP ${r.status}`);
    return r.json();
  };
  try {
    let page = await get("");
    if (!page) return;
    const updates = Array.isArray(page.updates) ? page.updates : [];
    const last = updates.length ? updates[updates.length - 1].seq : 0;
    if (page.seq > last) {
      // The page starts at the oldest retained update; ask for the newest ones instead.
      page = await get(`&since=${Math.max(0, page.seq - SPARK_POINTS)}`);
      if (!page) return;
    }
    chart.seed(page.epoch, page.updates);
  } catch (e) {
    console.warn("tickwire: history failed:", e.message);
  }
}

// A hidden page wants the market table at most every 5 s, not every update (conflated delivery;
// switching back and forth resubscribes with `since`, so nothing is lost); btc keeps the chart live.
const HIDDEN_EVERY = { market: 5000 };
document.addEventListener("visibilitychange", () => {
  for (const [channel, ms] of Object.entries(HIDDEN_EVERY)) client.setEvery(channel, document.hidden ? ms : 0);
});

view.setStatus("connecting");
client.connect();
client.poll(); // first paint from the snapshot while the socket opens
seedChart();
setInterval(view.renderAges, 1000);
