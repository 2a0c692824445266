// tickwire-client.js: a dependency-free ES module for apps that follow tickwire channels.
// Speaks wire protocol v1 (README.md), resumes without gaps, and polls over HTTP while the
// socket is down. No build step: import it from a copy on the app's origin (tickwire serves
// it at /tickwire-client.js, without CORS headers, so a cross-origin import is refused), or
// install this folder as the npm package @tickwire/client (typed: tickwire-client.d.ts).
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
//   token           a JWT for private channels (`private-*`, `presence-*`); getToken: an async
//                   function returning a fresh one (called at connect when the token held is
//                   missing or past its refresh point, before exp, and after an expiry or refusal).
//                   Either one: each socket sends `{"op":"auth","token"}` as its FIRST frame (other
//                   frames wait for it, at most connectTimeoutMs), and subscribes private channels
//                   with a `subscribe` op (with `since`) once `authed` arrives. The token never
//                   goes into a URL; HTTP polling of a private channel sends it as
//                   `Authorization: Bearer`. With getToken the token is refreshed at a random
//                   point (refreshDelay) before its `exp` (read from the JWT, not verified; a token
//                   without a readable exp is renewed only after an error) on the open socket: no
//                   resubscribe, no gap. A private channel ended with reason `token_expired` is
//                   resumed (new token, `auth`, `subscribe` with since); renewals that keep failing
//                   back off like reconnects. A fixed `token` is never refreshed: `setToken(t)`.
// Publishing: `tw.publish(channel, data)` resolves to the seq the hub gave the update, rejects
// with an Error carrying `.code` (the server's `forbidden`, `unauthorized`, `payload_too_large`,
// `rate_limited`, `overloaded`...; `not_connected` when no socket is live: publishes are never
// queued; `disconnected` when the socket closed before the answer: never re-sent, since the
// publish may have been applied; the app decides whether to retry).
// Auth events: onAuthed(frame) after each accepted `auth`; onError gets the server's `error`
// frames (codes `unauthorized`, `forbidden`, `token_expired`...) and Errors with `.code`
// (`token_unavailable`: getToken failed or timed out; `token_expired`: a private channel ended by
// expiry, being resumed); onUnsubscribed(channel, {byServer: true, reason: "forbidden"|
// "unauthorized"}) when the server refuses or ends a private channel: it is not retried.
// A poll that succeeds after one that failed (the server is back) and the browser's `online`
// event make the next attempt at once. No callback error or odd frame stops the client.

export const BUILTIN_CHANNELS = Object.freeze(["btc", "market", "sentiment", "indicators"]);
const CHANNEL_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const EVENTS = ["update", "status", "subscribed", "unsubscribed", "error", "stale", "welcome", "authed", "presence"];
/** The conflation intervals the server offers (ms): a channel is sent at most once per interval. */
export const EVERY_MS = Object.freeze([250, 1000, 5000, 30000]);
const DEFAULTS = {
  channels: [], delta: false, pollMs: 15000, refreshMs: 0, pingMs: 25000, pongTimeoutMs: 10000,
  backoffBaseMs: 500, backoffCapMs: 30000, connectTimeoutMs: 10000, WebSocket: null, fetch: null,
  token: null, getToken: null,
};
const AUTH_CODES = ["unauthorized", "forbidden", "token_expired"];
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout fires at once beyond this
const MIN_REFRESH_LEAD_MS = 5000; // a token that looks this close to exp is renewed only on error

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

/** Channels that need a token: `private-*` and `presence-*`. */
export const isPrivateChannel = (c) => typeof c === "string" && (c.startsWith("private-") || c.startsWith("presence-"));

/** The `exp` claim (unix seconds) of a JWT, read without verifying it; null if unreadable. */
export function tokenExpiry(token) {
  try {
    const part = String(token).split(".")[1] || "";
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (ch) => ch.charCodeAt(0));
    const exp = JSON.parse(new TextDecoder().decode(bytes)).exp;
    return Number.isFinite(exp) && exp > 0 ? exp : null;
  } catch {
    return null;
  }
}

/** When to refresh a token with `remainingMs` left: a random point in [0.706 hi, hi], hi being
 *  85% of the lifetime, moved to 30 s before exp when that is earlier, but never below half of
 *  it. A long token: 60% to 85%; 100 s: 49 to 70 s; 20 s: 7 to 10 s. At least 1 s. */
export function refreshDelay(remainingMs, random = Math.random) {
  const r = Math.max(0, Number(remainingMs) || 0);
  const hi = Math.max(Math.min(0.85 * r, r - 30000), 0.5 * r);
  const delay = hi * (0.6 / 0.85 + (0.25 / 0.85) * random());
  return Math.min(MAX_TIMER_MS, Math.max(1000, delay));
}

const codedError = (code, message, extra = {}) => Object.assign(new Error(`tickwire: ${message}`), { code, ...extra });

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

/** The connect URL: `/ws?channels=a,b&since=a:12@e&delta=merge&every=a:1000` (`channels=`
 *  empty: none); `every` maps a channel to its conflation interval (ms). */
export function socketUrl(wsBase, channels, positions, delta, every = {}) {
  const q = new URLSearchParams({ channels: channels.join(",") });
  const since = formatSince(positions, channels);
  if (since) q.set("since", since);
  if (delta) q.set("delta", "merge");
  const classes = channels.filter((c) => EVERY_MS.includes(every[c])).map((c) => `${c}:${every[c]}`);
  if (classes.length) q.set("every", classes.join(","));
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
    this._token = null; // the token held, and when to refresh it (ms; null: only after an error)
    this._refreshAt = null;
    this._fetching = null; // the getToken() call in flight
    this._renewAttempt = 0; // renewals after errors back off like reconnects
    this._renewTroubleAt = 0;
    this._every = { ...(this.options.every || {}) }; // channel -> conflation interval (ms)
    for (const [c, ms] of Object.entries(this._every)) {
      if (!EVERY_MS.includes(ms)) throw new TypeError(`tickwire: every for ${c} must be one of ${EVERY_MS.join(", ")} ms`);
    }
    this._reclass = new Set(); // channels unsubscribed to move them to another interval
    this.presence = {}; // presence channel -> {members: Map(sub -> info), count}
    this._pubIds = 0;
    this._pubPrefix = Math.random().toString(36).slice(2, 10);
    if (typeof this.options.token === "string" && this.options.token) this._setToken(this.options.token);
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
    const channels = this.channels.filter((c) => !isPrivateChannel(c)); // private ones: after `authed`
    const url = socketUrl(this.endpoints.ws, channels, this.positions, this.options.delta, this._every);
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
    const auth = this._hasAuth();
    const conn = {
      ws, live: false, lastRx: Date.now(), channels,
      opened: false, token: null, authSent: false, authsInFlight: 0,
      authState: auth ? "waiting" : "none", // waiting for the first auth's answer: ok | failed
      gate: auth, queue: [], // while the gate is shut, frames wait behind the auth frame
      afterAuth: [], pubs: new Map(), privSubs: new Set(),
    };
    this._ws = conn;
    this._sync = new Map(channels.map((c) => [c, []]));
    this._timers.welcome = setTimeout(() => conn.live || this._dead(conn), this.options.connectTimeoutMs);
    if (auth) {
      if (!this.options.getToken || this._tokenFresh()) conn.token = this._token; // sent on open
      else {
        this._fetchToken().then((t) => {
          conn.token = t;
          if (conn.opened && !conn.authSent) this._authWith(conn, t);
        }, (e) => this._tokenTrouble(e));
      }
      this._timers.gate = setTimeout(() => {
        if (this._ws !== conn || conn.authSent) return;
        this._emit("error", codedError("token_unavailable", "getToken() did not answer in time"));
        this._authOutcome(conn, false);
      }, this.options.connectTimeoutMs);
    }
    ws.onopen = () => this._opened(conn);
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
    if (conn) {
      this._detach(conn, 1000);
      this._failPublishes(conn);
    }
    this._setStatus("closed");
  }

  /** Makes the next attempt now (no-op while a socket is open or the client is closed). */
  reconnect() {
    if (!this._ws && this.status !== "closed" && this.status !== "idle") this.connect();
  }

  subscribe(channels) {
    const fresh = checkChannels(channels).filter((c) => !this._wanted.has(c));
    for (const c of fresh) this._wanted.add(c);
    const open = fresh.filter((c) => !isPrivateChannel(c));
    if (open.length) this._sendSubscribe(open);
    if (this._ws) this._subscribePrivate(this._ws);
  }

  unsubscribe(channels) {
    const gone = checkChannels(channels).filter((c) => this._wanted.delete(c));
    for (const c of gone) {
      this._forget(c);
      this._ws?.privSubs.delete(c);
    }
    if (gone.length && this._ws?.live) this._send({ op: "unsubscribe", channels: gone });
  }

  /** Publishes `data` (any JSON value) to `channel` over the socket: resolves to its seq. Needs a
   *  live socket (rejects with code `not_connected` otherwise); waits for the socket's first
   *  `auth` answer when a token is configured; rejects with code `disconnected` if the socket
   *  closes before the answer (not re-sent: it may have been applied). */
  publish(channel, data) {
    return new Promise((resolve, reject) => {
      checkChannels([channel]);
      if (data === undefined) throw new TypeError("tickwire: publish needs a JSON value");
      const conn = this._ws;
      if (!conn || !conn.live) throw codedError("not_connected", "publish needs a live socket", { channel });
      const id = `${this._pubPrefix}-${++this._pubIds}`;
      const text = JSON.stringify({ op: "publish", channel, data, id }); // throws for BigInt, cycles
      conn.pubs.set(id, { resolve, reject, channel });
      if (conn.authState === "waiting") conn.afterAuth.push(text);
      else this._send(text);
    });
  }

  /** Replaces the token (e.g. a fixed `token` about to expire): sent as `auth` on the open socket. */
  setToken(token) {
    if (typeof token !== "string" || !token) throw new TypeError("tickwire: setToken needs a token string");
    this._setToken(token);
    const conn = this._ws;
    if (conn) {
      conn.token = token;
      if (conn.opened) this._authWith(conn, token);
    }
  }

  // ---- Tokens

  _hasAuth() {
    return typeof this.options.getToken === "function" || !!this._token;
  }

  /** Held and not yet due for a refresh (a token without a readable exp always is). */
  _tokenFresh() {
    return !!this._token && (this._refreshAt === null || Date.now() < this._refreshAt);
  }

  _setToken(token) {
    const now = Date.now();
    const exp = tokenExpiry(token);
    this._token = token;
    if (exp === null) this._refreshAt = null; // renewed only after an error
    else if (exp * 1000 - now < MIN_REFRESH_LEAD_MS) this._refreshAt = now; // due: no timer, a new one at the next connect
    else this._refreshAt = now + refreshDelay(exp * 1000 - now);
  }

  /** One getToken() call at a time; its token becomes the one held. */
  _fetchToken() {
    if (!this._fetching) {
      this._fetching = (async () => {
        const token = await this.options.getToken();
        if (typeof token !== "string" || !token) throw new TypeError("getToken() returned no token");
        this._setToken(token);
        return token;
      })().finally(() => {
        this._fetching = null;
      });
    }
    return this._fetching;
  }

  /** Sends `auth` on an open socket, then lets the frames that waited behind it go. */
  _authWith(conn, token) {
    if (this._ws !== conn || !conn.opened) return;
    conn.token = token;
    conn.authSent = true;
    conn.authsInFlight += 1;
    try {
      conn.ws.send(JSON.stringify({ op: "auth", token }));
    } catch (e) {
      this._emit("error", e);
    }
    this._clear("gate");
    this._openGate(conn);
  }

  _openGate(conn) {
    if (!conn.gate) return;
    conn.gate = false;
    const queued = conn.queue.splice(0);
    for (const op of queued) this._send(op, conn);
  }

  /** The first auth's answer (or its failure to happen): publishes and private channels go. */
  _authOutcome(conn, ok) {
    if (this._ws !== conn) return;
    this._openGate(conn);
    if (ok) conn.authState = "ok";
    else if (conn.authState === "waiting") conn.authState = "failed";
    else return;
    for (const text of conn.afterAuth.splice(0)) this._send(text, conn);
    if (ok) this._subscribePrivate(conn);
  }

  _authed(conn, f) {
    conn.authsInFlight = Math.max(0, conn.authsInFlight - 1);
    this._authOutcome(conn, true);
    this._clear("token");
    if (this.options.getToken && this._refreshAt > Date.now() && this._token === conn.token) {
      this._timers.token = setTimeout(() => this._refresh(), Math.min(MAX_TIMER_MS, Math.max(0, this._refreshAt - Date.now())));
    }
    this._emit("authed", f);
  }

  /** The refresh timer: a new token on the open socket (none open: the next connect gets one). */
  _refresh() {
    delete this._timers.token;
    if (this._ws?.opened) this._renew();
  }

  async _renew() {
    this._clear("renew");
    if (typeof this.options.getToken !== "function" || this.status === "closed") return;
    let token;
    try {
      token = await this._fetchToken();
    } catch (e) {
      return this._tokenTrouble(e);
    }
    const conn = this._ws;
    if (!conn) return;
    if (conn.opened) this._authWith(conn, token);
    else conn.token = token;
  }

  /** A renewal after an error (expiry, refusal, getToken failure): the first at once, then
   *  backing off as reconnects do; the count starts over after a quiet spell. */
  _renewSoon() {
    if (typeof this.options.getToken !== "function" || this._timers.renew || this._fetching || this.status === "closed") return;
    const now = Date.now();
    if (now - this._renewTroubleAt > 2 * this.options.backoffCapMs) this._renewAttempt = 0;
    this._renewTroubleAt = now;
    const n = this._renewAttempt;
    this._renewAttempt = Math.min(n + 1, 30);
    if (n === 0) return void this._renew(); // sets _fetching at once: a batch's other expiries wait for it
    const delay = backoffDelay(n - 1, this.options.backoffBaseMs, this.options.backoffCapMs);
    this._timers.renew = setTimeout(() => this._renew(), delay);
  }

  _tokenTrouble(e) {
    this._emit("error", codedError("token_unavailable", `getToken() failed: ${e?.message || e}`, { cause: e }));
    const conn = this._ws;
    if (conn && !conn.authSent) this._authOutcome(conn, false); // public channels go on without
    this._renewSoon();
  }

  /** Subscribes the private channels this socket does not carry yet, once it may. */
  _subscribePrivate(conn) {
    if (this._ws !== conn || !conn.live || conn.authState === "waiting" || conn.authState === "failed") return;
    const need = this.channels.filter((c) => isPrivateChannel(c) && !conn.privSubs.has(c));
    for (const c of need) conn.privSubs.add(c);
    if (need.length) this._sendSubscribe(need);
  }

  _opened(conn) {
    if (this._ws !== conn || conn.opened) return;
    conn.opened = true;
    if (conn.token && !conn.authSent) this._authWith(conn, conn.token);
  }

  _failPublishes(conn) {
    for (const p of conn.pubs.values()) p.reject(codedError("disconnected", "the socket closed before the publish was answered", { channel: p.channel }));
    conn.pubs.clear();
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
      else if (f.type === "error") this._error(conn, f);
      else if (f.type === "authed") this._authed(conn, f);
      else if (f.type === "published") this._published(conn, f);
      else if (f.type === "presence" || f.type === "join" || f.type === "leave") this._presence(f);
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
    // The patch is against the value last received: seq - 1, or further back on a conflated
    // channel, whose frame says how many updates it skipped.
    const skipped = Number.isInteger(f.skipped) && f.skipped > 0 ? f.skipped : 0;
    if (!pos || pos.seq !== f.seq - 1 - skipped || !(c in this.values)) return this._resync(c);
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
    if (!f.reason && this._reclass.delete(c)) return; // moved to another interval: resubscribed
    if (f.reason === "token_expired") return this._expired(c);
    this._drop(c, typeof f.reason === "string" ? f.reason : undefined); // deleted, or no longer granted
  }

  /** The server ended channel `c` for good: no longer followed, reported. */
  _drop(c, reason) {
    this._wanted.delete(c);
    this._forget(c);
    this._ws?.privSubs.delete(c);
    this._emit("unsubscribed", c, reason ? { byServer: true, reason } : { byServer: true });
  }

  /** A private channel ended by its token's expiry: still followed; resumed with `since` after
   *  a new token's `authed` (nothing is lost: the position is kept). */
  _expired(c) {
    this._ws?.privSubs.delete(c);
    this._sync.delete(c);
    this._emit("error", codedError("token_expired", `the token expired; resuming ${c}`, { channel: c }));
    this._renewSoon(); // one renewal however many channels expire (an auth on its way also resumes them)
  }

  _error(conn, f) {
    const pub = typeof f.id === "string" ? conn.pubs.get(f.id) : undefined;
    if (pub) {
      conn.pubs.delete(f.id);
      const message = typeof f.message === "string" ? f.message : String(f.code);
      return pub.reject(codedError(String(f.code), message, { channel: pub.channel, id: f.id, frame: f }));
    }
    this._emit("error", f);
    if (!AUTH_CODES.includes(f.code) || f.id !== undefined) return; // an id: someone else's publish
    const c = f.channel;
    if (typeof c === "string") {
      // A subscribe refused: retried after a renewal when the token had expired, else dropped.
      if (!this._wanted.has(c)) return;
      if (f.code === "token_expired") this._expired(c);
      else this._drop(c, f.code);
    } else if (conn.authsInFlight > 0) {
      // An `auth` refused: the socket keeps its public channels (and any earlier token).
      conn.authsInFlight -= 1;
      if (this.options.getToken) this._refreshAt = 0; // the token held is no good: a new one next
      this._authOutcome(conn, false);
      this._renewSoon();
    }
  }

  _published(conn, f) {
    const pub = typeof f.id === "string" ? conn.pubs.get(f.id) : undefined;
    if (!pub) return;
    conn.pubs.delete(f.id);
    if (isSeq(f.seq)) pub.resolve(f.seq);
    else pub.reject(codedError("bad_answer", "a `published` frame without a seq", { channel: pub.channel, frame: f }));
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
    const skipped = Number.isInteger(f.skipped) && f.skipped > 0 ? f.skipped : 0;
    this._emit("update", { channel: c, seq: f.seq, epoch: this.positions[c].epoch, ts, stale, data: f.data, delta, source, skipped });
    return true;
  }

  /** A delta that does not follow what we hold: ask for the channel again from our position. */
  _resync(c) {
    if (this._sync.has(c) || !this._ws?.live) return;
    this.stats.resyncs += 1;
    this._sync.set(c, []);
    this._sendSubscribe([c]);
  }

  /** One `subscribe` op per conflation interval (`every_ms`), each with its channels' `since`. */
  _sendSubscribe(channels) {
    if (!this._ws?.live) return; // the next connect asks for them
    const classes = new Map();
    for (const c of channels) {
      const ms = EVERY_MS.includes(this._every[c]) ? this._every[c] : 0;
      if (!classes.has(ms)) classes.set(ms, []);
      classes.get(ms).push(c);
    }
    for (const [ms, list] of classes) {
      const since = {};
      for (const c of list) {
        const p = this.positions[c];
        if (p && isSeq(p.seq)) since[c] = p.epoch ? { seq: p.seq, epoch: p.epoch } : p.seq;
        if (!this._sync.has(c)) this._sync.set(c, []);
      }
      this._send(ms ? { op: "subscribe", channels: list, since, every_ms: ms } : { op: "subscribe", channels: list, since });
    }
  }

  /** Sends `channel` at most once per `ms` (one of EVERY_MS; 0 or null: every update). On a live
   *  socket the channel is unsubscribed and subscribed again with `since`: nothing is lost. */
  setEvery(channel, ms) {
    checkChannels([channel]);
    if (ms && !EVERY_MS.includes(ms)) throw new TypeError(`tickwire: every must be one of ${EVERY_MS.join(", ")} ms`);
    if ((this._every[channel] || 0) === (ms || 0)) return;
    if (ms) this._every[channel] = ms;
    else delete this._every[channel];
    const conn = this._ws;
    if (!this._wanted.has(channel) || !conn?.live) return; // the next connect or subscribe asks
    if (isPrivateChannel(channel) && !conn.privSubs.has(channel)) return; // subscribed after `authed`
    this._reclass.add(channel);
    this._send({ op: "unsubscribe", channels: [channel] });
    this._sendSubscribe([channel]);
  }

  // ---- Presence

  /** `presence` (the member list, once per subscribe), `join`, `leave`: the live member set of a
   *  presence channel. Past the server's bound the list is omitted and only `count` is kept. */
  _presence(f) {
    const c = f.channel;
    if (typeof c !== "string" || !this._wanted.has(c)) return;
    let p = this.presence[c];
    if (f.type === "presence") {
      p = this.presence[c] = { members: new Map(), count: 0, listed: Array.isArray(f.members) };
      for (const m of Array.isArray(f.members) ? f.members : []) if (isObj(m) && typeof m.sub === "string") p.members.set(m.sub, m.info ?? null);
    } else if (!p) {
      return; // a join or leave before the list: the list that follows includes it
    } else if (typeof f.sub === "string" && p.listed) {
      if (f.type === "join") p.members.set(f.sub, f.info ?? null);
      else p.members.delete(f.sub);
    }
    p.count = Number.isInteger(f.count) ? f.count : p.members.size;
    const members = [...p.members].map(([sub, info]) => ({ sub, info }));
    this._emit("presence", c, { members, count: p.count, listed: p.listed, change: { type: f.type, sub: f.sub } });
  }

  _send(op, conn = this._ws) {
    if (!conn) return;
    if (conn.gate) return void conn.queue.push(op); // the auth frame goes first
    try {
      conn.ws.send(typeof op === "string" ? op : JSON.stringify(op));
    } catch (e) {
      this._emit("error", e);
    }
  }

  _forget(c) {
    delete this.presence[c];
    delete this.values[c];
    delete this.positions[c];
    delete this._stale[c];
    this._sync.delete(c);
  }

  // ---- Connection life

  _live(conn, welcome) {
    if (conn.live) return;
    this._opened(conn); // a socket that speaks is open (a stand-in may have no open event)
    conn.live = true;
    this._clear("welcome");
    this._attempt = 0;
    this._lastPollOk = true;
    this._clear("poll");
    this._emit("welcome", welcome);
    this._setStatus("live");
    // Channels (un)followed while this socket was opening.
    const extra = this.channels.filter((c) => !isPrivateChannel(c) && !conn.channels.includes(c));
    const dropped = conn.channels.filter((c) => !this._wanted.has(c));
    if (extra.length) this._sendSubscribe(extra);
    if (dropped.length) this._send({ op: "unsubscribe", channels: dropped });
    this._subscribePrivate(conn); // without a token: at once (and refused); with one: after `authed`
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
    // Member lists are only true while the socket is: the next one brings fresh lists.
    for (const c of Object.keys(this.presence)) {
      delete this.presence[c];
      this._emit("presence", c, { members: [], count: null, listed: false, change: { type: "reset" } });
    }
    this._reclass.clear();
    for (const k of ["welcome", "ping", "pong", "refresh", "gate"]) this._clear(k);
    this._failPublishes(conn);
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

  async _get(path, token) {
    const f = this.options.fetch || globalThis.fetch;
    const headers = { accept: "application/json" };
    if (token) headers.authorization = `Bearer ${token}`; // never in the URL
    const r = await f(this.endpoints.http + path, { cache: "no-store", headers });
    if (r.status === 404 || r.status === 401 || r.status === 403) return null; // nothing we may read
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
    const token = isPrivateChannel(c) ? this._token : null;
    if (isPrivateChannel(c) && !token) return true; // nothing it may read
    let since = this.positions[c] ? this.positions[c].seq : null;
    if (since === null) {
      const head = await this._get(path(0, 1), token);
      if (!head || !isSeq(head.seq)) return true; // not published yet
      since = Math.max(0, head.seq - 1);
    }
    for (let page = 0; page < 5; page++) {
      const h = await this._get(path(since, 100), token);
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
