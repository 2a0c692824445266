// tickwire-client.js: a dependency-free ES module for apps that follow tickwire channels.
// Speaks wire protocol v1 (README.md), resumes without gaps, and polls over HTTP while the
// socket is down. No build step: import it from a copy on the app's origin (tickwire serves
// it at /tickwire-client.js, without CORS headers, so a cross-origin import is refused).
//
//   const tw = new TickwireClient("https://tickwire.example.workers.dev", {
//     channels: ["btc", "orders"],       // built-in or app channels (an app channel may not exist yet)
//     delta: true,                        // opt in to merge-patch `delta` frames (smaller frames)
//     onUpdate: (u) => render(u.channel, u.data),   // u: {channel, seq, epoch, ts, stale, data, delta, source}
//     onStatus: (state) => pill(state),   // connecting | live | reconnecting | offline-polling | closed
//   });
//   tw.connect();  tw.subscribe(["news"]);  tw.unsubscribe(["btc"]);  tw.close();
//   tw.values.orders     // latest value (`data`) per channel
//   tw.positions.orders  // {seq, epoch}: the last update seen per channel
//
// Constructor: `new TickwireClient(url, options)`. `url` is the service's base URL (http(s) or
// ws(s); a path other than `/` is kept as a prefix; `/ws` at its end is the socket itself);
// omitted in a page: the page's own origin. Options (all optional):
//   channels        names to follow (default: none); validated like the server does
//   delta           true: connect with `?delta=merge`; a `delta` frame is applied as an RFC 7386
//                   merge patch to the previous value, and a seq gap makes the client resubscribe
//                   that channel with `since` rather than guess. Callbacks always get full values
//   onUpdate, onStatus(state, previous), onSubscribed(frame), onUnsubscribed(channel, {byServer}),
//   onError(errorFrameOrError), onStale({channel, seq, stale}), onWelcome(frame): callbacks; the
//                   same events can be followed with `tw.on("update", fn)` (returns an off function)
//   pollMs          HTTP polling period while the socket is down (15000): `/api/snapshot` for
//                   built-in channels, `/api/history?since=` for app channels (every update)
//   refreshMs       while live, re-read `/api/snapshot` this often for stale flags (0: never)
//   pingMs          keep-alive `ping` period (25000); pongTimeoutMs (10000): nothing received
//                   that long after a ping means the socket is dead, and the client reconnects
//   backoffBaseMs, backoffCapMs   reconnect attempt n waits random(0, min(cap, base * 2^n))
//                   (500, 30000); n resets once a socket is live
//   connectTimeoutMs  no `welcome` in this time: the attempt failed (10000)
//   WebSocket, fetch  replacements for the globals (tests, non-browser runtimes)
// A poll that succeeds after one that failed (the server is back) and the browser's `online`
// event make the next attempt at once. No callback error or odd frame stops the client.

export const BUILTIN_CHANNELS = Object.freeze(["btc", "market", "sentiment", "indicators"]);
const CHANNEL_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const EVENTS = ["update", "status", "subscribed", "unsubscribed", "error", "stale", "welcome"];
const DEFAULTS = {
  channels: [], delta: false, pollMs: 15000, refreshMs: 0, pingMs: 25000, pongTimeoutMs: 10000,
  backoffBaseMs: 500, backoffCapMs: 30000, connectTimeoutMs: 10000, WebSocket: null, fetch: null,
};

const isObj = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
const isSeq = (x) => Number.isSafeInteger(x) && x >= 0;

/** RFC 7386: `patch` applied to `target`, without changing either (a new value is returned).
 * Every key is an own data property, `__proto__` and `constructor` included, as in the value
 * `JSON.parse` gives a full client: `out[k] = v` would change the prototype instead (and read
 * inherited members), and a delta client would hold another value than a full one. */
export function mergePatch(target, patch) {
  if (!isObj(patch)) return patch;
  const out = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else {
      const value = mergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v);
      Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

/** Full-jitter backoff: attempt n (0-based) waits random(0, min(cap, base * 2^n)) ms. */
export function backoffDelay(attempt, baseMs = 500, capMs = 30000, random = Math.random) {
  const n = Math.max(0, Math.min(Number(attempt) || 0, 40));
  return random() * Math.min(capMs, baseMs * 2 ** n);
}

/** The `since` URL form for `channels` with a known position: `a:12@epoch,b:0`. */
export function formatSince(positions, channels) {
  return channels
    .filter((c) => positions[c] && isSeq(positions[c].seq))
    .map((c) => `${c}:${positions[c].seq}` + (positions[c].epoch ? `@${positions[c].epoch}` : ""))
    .join(",");
}

/** The socket and HTTP bases of a service URL: {ws: "wss://h/p/ws", http: "https://h/p"}. */
export function endpoints(url, origin) {
  const u = new URL(url || origin || "", origin || undefined);
  const secure = u.protocol === "https:" || u.protocol === "wss:";
  const path = u.pathname.replace(/\/+$/, "").replace(/\/ws$/, "");
  return { ws: `${secure ? "wss" : "ws"}://${u.host}${path}/ws`, http: `${secure ? "https" : "http"}://${u.host}${path}` };
}

/** The connect URL: `/ws?channels=a,b&since=a:12@e&delta=merge` (`channels=` empty: none). */
export function socketUrl(wsBase, channels, positions, delta) {
  const q = new URLSearchParams({ channels: channels.join(",") });
  const since = formatSince(positions, channels);
  if (since) q.set("since", since);
  if (delta) q.set("delta", "merge");
  return `${wsBase}?${q}`;
}

export function checkChannels(channels) {
  const list = typeof channels === "string" ? [channels] : Array.from(channels || []);
  for (const c of list) if (typeof c !== "string" || !CHANNEL_RE.test(c)) throw new TypeError(`tickwire: invalid channel name ${JSON.stringify(c)}`);
  return list;
}

export class TickwireClient {
  constructor(url, options = {}) {
    const origin = typeof location !== "undefined" ? location.origin : undefined;
    this.options = { ...DEFAULTS, ...options };
    this.endpoints = endpoints(url, origin);
    this.values = {};
    this.positions = {};
    this.status = "idle";
    this.stats = { connects: 0, resyncs: 0, deltas: 0, polls: 0 };
    this.lastUrl = "";
    this._wanted = new Set(checkChannels(this.options.channels));
    this._sync = new Map(); // channel -> buffered full updates while its catch-up runs
    this._stale = {};
    this._listeners = Object.fromEntries(EVENTS.map((e) => [e, []]));
    for (const e of EVENTS) {
      const cb = this.options["on" + e[0].toUpperCase() + e.slice(1)];
      if (typeof cb === "function") this.on(e, cb);
    }
    this._ws = null;
    this._attempt = 0;
    this._lastPollOk = true;
    this._timers = {};
    this._onOnline = () => this.reconnect();
  }

  on(event, fn) {
    const list = this._listeners[event];
    if (!list) throw new TypeError(`tickwire: no event ${JSON.stringify(event)}`);
    list.push(fn);
    return () => list.splice(list.indexOf(fn) >>> 0, 1);
  }

  /** The channels followed. */
  get channels() {
    return [...this._wanted];
  }

  connect() {
    if (this.status === "idle" || this.status === "closed") {
      this._setStatus("connecting");
      globalThis.addEventListener?.("online", this._onOnline);
    }
    this._clear("reconnect");
    if (this._ws) return this;
    const WS = this.options.WebSocket || globalThis.WebSocket;
    const channels = this.channels;
    const url = socketUrl(this.endpoints.ws, channels, this.positions, this.options.delta);
    this.lastUrl = url;
    this.stats.connects += 1;
    let ws;
    try {
      ws = new WS(url);
    } catch (e) {
      this._emit("error", e);
      this._down(false);
      return this;
    }
    const conn = { ws, live: false, lastRx: Date.now(), channels };
    this._ws = conn;
    this._sync = new Map(channels.map((c) => [c, []]));
    this._timers.welcome = setTimeout(() => conn.live || this._dead(conn), this.options.connectTimeoutMs);
    ws.onmessage = (ev) => this._message(conn, ev);
    ws.onclose = () => this._closed(conn);
    ws.onerror = () => {}; // a close follows
    return this;
  }

  /** Closes the socket and stops every timer; `connect()` starts again. */
  close() {
    const conn = this._ws;
    this._ws = null;
    for (const k of Object.keys(this._timers)) this._clear(k);
    globalThis.removeEventListener?.("online", this._onOnline);
    if (conn) this._detach(conn, 1000);
    this._setStatus("closed");
  }

  /** Makes the next attempt now (no-op while a socket is open or the client is closed). */
  reconnect() {
    if (!this._ws && this.status !== "closed" && this.status !== "idle") this.connect();
  }

  subscribe(channels) {
    const fresh = checkChannels(channels).filter((c) => !this._wanted.has(c));
    for (const c of fresh) this._wanted.add(c);
    if (fresh.length) this._sendSubscribe(fresh);
  }

  unsubscribe(channels) {
    const gone = checkChannels(channels).filter((c) => this._wanted.delete(c));
    for (const c of gone) this._forget(c);
    if (gone.length && this._ws?.live) this._send({ op: "unsubscribe", channels: gone });
  }

  // ---- Frames

  _message(conn, ev) {
    if (this._ws !== conn || typeof ev.data !== "string") return;
    conn.lastRx = Date.now();
    if (ev.data === "pong") return;
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    this._frame(conn, frame, 0);
  }

  _frame(conn, f, depth) {
    if (!isObj(f) || this._ws !== conn) return;
    try {
      if (f.type === "batch") {
        if (depth < 4 && Array.isArray(f.frames)) for (const g of f.frames) this._frame(conn, g, depth + 1);
      } else if (f.type === "welcome") this._live(conn, f);
      else if (f.type === "update") this._update(f);
      else if (f.type === "delta") this._delta(f);
      else if (f.type === "subscribed") this._subscribed(f);
      else if (f.type === "unsubscribed") this._unsubscribed(f);
      else if (f.type === "error") this._emit("error", f);
      // any other type: a newer frame, ignored
    } catch (e) {
      this._emit("error", e);
    }
  }

  _update(f) {
    if (!this._wanted.has(f.channel) || !isSeq(f.seq) || f.seq === 0) return;
    const buffer = this._sync.get(f.channel);
    if (buffer) buffer.push(f); // catching up: held until `subscribed` says which epoch it is
    else this._apply(f, "socket", false);
  }

  _delta(f) {
    const c = f.channel;
    if (!this._wanted.has(c) || this._sync.has(c) || !isSeq(f.seq)) return; // a catch-up replays it
    const pos = this.positions[c];
    if (!pos || pos.seq !== f.seq - 1 || !(c in this.values)) return this._resync(c);
    this.stats.deltas += 1;
    this._apply({ ...f, data: mergePatch(this.values[c], f.patch) }, "socket", true);
  }

  _subscribed(f) {
    const c = f.channel;
    if (!this._wanted.has(c) || !isSeq(f.seq)) return;
    const buffered = this._sync.get(c) || [];
    this._sync.delete(c);
    const pos = this.positions[c];
    const epoch = typeof f.epoch === "string" ? f.epoch : "";
    // Another epoch: the channel was recreated or its storage reset; its seqs start over.
    if (pos && pos.epoch && epoch && pos.epoch !== epoch) pos.seq = 0;
    this.positions[c] = { seq: pos ? pos.seq : 0, epoch: epoch || (pos && pos.epoch) || "" };
    for (const u of buffered) this._apply(u, "socket", false);
    this._emit("subscribed", f);
    // The server counts more than it sent (e.g. a resubscribe it answered without a replay):
    // fetch the missing updates rather than apply later deltas to an old value.
    if (f.seq > this.positions[c].seq) this._fill(c);
  }

  _unsubscribed(f) {
    const c = f.channel;
    if (typeof c !== "string" || !this._wanted.has(c)) return; // one we asked for
    this._wanted.delete(c); // the server ended it (the channel was deleted)
    this._forget(c);
    this._emit("unsubscribed", c, { byServer: true });
  }

  /** Shows a full update unless it is one already seen (same epoch, seq not ahead). */
  _apply(f, source, delta) {
    const c = f.channel;
    const pos = this.positions[c];
    if (pos && f.seq <= pos.seq) return false;
    const stale = f.stale === true;
    this.values[c] = f.data;
    this.positions[c] = { seq: f.seq, epoch: (pos && pos.epoch) || "" };
    this._stale[c] = stale;
    const ts = Number.isFinite(f.ts) ? f.ts : Date.now();
    this._emit("update", { channel: c, seq: f.seq, epoch: this.positions[c].epoch, ts, stale, data: f.data, delta, source });
    return true;
  }

  /** A delta that does not follow what we hold: ask for the channel again from our position. */
  _resync(c) {
    if (this._sync.has(c) || !this._ws?.live) return;
    this.stats.resyncs += 1;
    this._sync.set(c, []);
    this._sendSubscribe([c]);
  }

  _sendSubscribe(channels) {
    if (!this._ws?.live) return; // the next connect asks for them
    const since = {};
    for (const c of channels) {
      const p = this.positions[c];
      if (p && isSeq(p.seq)) since[c] = p.epoch ? { seq: p.seq, epoch: p.epoch } : p.seq;
      if (!this._sync.has(c)) this._sync.set(c, []);
    }
    this._send({ op: "subscribe", channels, since });
  }

  _send(op) {
    try {
      this._ws?.ws.send(typeof op === "string" ? op : JSON.stringify(op));
    } catch (e) {
      this._emit("error", e);
    }
  }

  _forget(c) {
    delete this.values[c];
    delete this.positions[c];
    delete this._stale[c];
    this._sync.delete(c);
  }

  // ---- Connection life

  _live(conn, welcome) {
    if (conn.live) return;
    conn.live = true;
    this._clear("welcome");
    this._attempt = 0;
    this._lastPollOk = true;
    this._clear("poll");
    this._emit("welcome", welcome);
    this._setStatus("live");
    // Channels (un)followed while this socket was opening.
    const extra = this.channels.filter((c) => !conn.channels.includes(c));
    const dropped = conn.channels.filter((c) => !this._wanted.has(c));
    if (extra.length) this._sendSubscribe(extra);
    if (dropped.length) this._send({ op: "unsubscribe", channels: dropped });
    if (this.options.refreshMs > 0) this._timers.refresh = setInterval(() => this.poll(), this.options.refreshMs);
    this._timers.ping = setInterval(() => this._ping(conn), this.options.pingMs);
  }

  _ping(conn) {
    const sent = Date.now();
    this._send("ping");
    if (this._timers.pong) return; // the earlier ping's deadline still runs
    this._timers.pong = setTimeout(() => {
      delete this._timers.pong;
      if (conn.lastRx < sent) this._dead(conn);
    }, this.options.pongTimeoutMs);
  }

  /** No welcome, or no answer to a ping: give the socket up without waiting for its close. */
  _dead(conn) {
    if (this._ws !== conn) return;
    this._detach(conn, 4000);
    this._closed(conn);
  }

  _detach(conn, code) {
    conn.ws.onmessage = conn.ws.onclose = null;
    try {
      conn.ws.close(code);
    } catch {
      // already closed
    }
  }

  _closed(conn) {
    if (this._ws !== conn) return;
    this._ws = null;
    this._sync = new Map();
    for (const k of ["welcome", "ping", "pong", "refresh"]) this._clear(k);
    this._down(conn.live);
  }

  /** The socket closed (`wasLive`) or an attempt failed: poll, and try again after a backoff. */
  _down(wasLive) {
    if (this.status === "closed") return;
    this._setStatus(wasLive ? "reconnecting" : "offline-polling");
    if (!this._timers.poll && this.options.pollMs > 0) this._timers.poll = setInterval(() => this._pollTick(), this.options.pollMs);
    const delay = backoffDelay(this._attempt, this.options.backoffBaseMs, this.options.backoffCapMs);
    this._attempt = Math.min(this._attempt + 1, 30);
    this._clear("reconnect");
    this._timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  async _pollTick() {
    const ok = await this.poll();
    if (ok && !this._lastPollOk) this.reconnect();
    this._lastPollOk = ok;
  }

  _clear(name) {
    clearTimeout(this._timers[name]);
    clearInterval(this._timers[name]);
    delete this._timers[name];
  }

  _setStatus(state) {
    if (this.status === state) return;
    const previous = this.status;
    this.status = state;
    this._emit("status", state, previous);
  }

  _emit(event, ...args) {
    for (const fn of this._listeners[event].slice()) {
      try {
        fn(...args);
      } catch (e) {
        console.error(`tickwire: ${event} callback threw`, e);
      }
    }
  }

  // ---- HTTP

  async _get(path) {
    const f = this.options.fetch || globalThis.fetch;
    const r = await f(this.endpoints.http + path, { cache: "no-store", headers: { accept: "application/json" } });
    if (r.status === 404) return null;
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  /** Reads the followed channels over HTTP once. While the socket is down, newer values are
   *  shown (every update of an app channel, the latest of a built-in one); while live, only the
   *  stale flags of the values shown. Resolves to whether the server answered. */
  async poll() {
    this.stats.polls += 1;
    const wanted = this.channels;
    let ok = true;
    try {
      if (wanted.some((c) => BUILTIN_CHANNELS.includes(c))) this._snapshot(await this._get("/api/snapshot"));
    } catch (e) {
      ok = false;
    }
    for (const c of wanted.filter((c) => !BUILTIN_CHANNELS.includes(c))) {
      if (this._ws?.live) break; // the socket has them
      if (!(await this._history(c).catch(() => false))) ok = false;
    }
    return ok;
  }

  _snapshot(snap) {
    const live = !!this._ws?.live; // as the answer arrives: a live socket's frames come first
    for (const [c, e] of Object.entries((snap && snap.channels) || {})) {
      if (!this._wanted.has(c) || !isObj(e) || !isSeq(e.seq)) continue;
      const pos = this.positions[c];
      const stale = e.stale === true;
      if (!live && (!pos || e.seq > pos.seq)) {
        this._apply({ channel: c, seq: e.seq, ts: Date.parse(e.fetched_at), stale, data: e.data }, "poll", false);
      } else if (pos && e.seq === pos.seq && this._stale[c] !== stale) {
        this._stale[c] = stale;
        this._emit("stale", { channel: c, seq: e.seq, stale });
      }
    }
  }

  /** The updates of channel `c` after our position (without one: its latest), a few pages at most. */
  async _history(c) {
    const path = (since, limit) => `/api/history?${new URLSearchParams({ channel: c, since: String(since), limit: String(limit) })}`;
    let since = this.positions[c] ? this.positions[c].seq : null;
    if (since === null) {
      const head = await this._get(path(0, 1));
      if (!head || !isSeq(head.seq)) return true; // not published yet
      since = Math.max(0, head.seq - 1);
    }
    for (let page = 0; page < 5; page++) {
      const h = await this._get(path(since, 100));
      if (!h || !this._wanted.has(c) || (this._ws?.live && !this._sync.has(c))) return true; // gone, unwanted, or live
      const pos = this.positions[c];
      if (pos && pos.epoch && h.epoch && pos.epoch !== h.epoch) {
        this.positions[c] = { seq: 0, epoch: h.epoch }; // recreated: every update of the new one
        since = 0;
        continue;
      }
      for (const u of Array.isArray(h.updates) ? h.updates : []) {
        if (isObj(u) && isSeq(u.seq)) this._apply({ ...u, channel: c }, "poll", false);
      }
      const p = this.positions[c];
      if (p && !p.epoch && typeof h.epoch === "string") p.epoch = h.epoch;
      if (!isSeq(h.next)) return true;
      since = h.next;
    }
    return true;
  }

  /** Fetches what the socket said exists and did not send; deltas wait until it is in. */
  async _fill(c) {
    const sync = this._sync;
    if (sync.has(c)) return;
    sync.set(c, []);
    try {
      await this._history(c);
    } catch (e) {
      this._emit("error", e);
    }
    if (this._sync !== sync) return; // the socket closed meanwhile; its successor resumes
    const buffered = sync.get(c) || [];
    sync.delete(c);
    for (const u of buffered) this._apply(u, "socket", false);
  }
}
