// Host tests of static/client/tickwire-client.js (scripts/test runs `node --test` on this file): its
// pure parts (merge patch, backoff, the resume URL, token expiry and refresh points) and the
// client's frame handling, tokens and publishing, driven through a stand-in for the browser's
// WebSocket and fetch (and node's fake timers where time matters). The real server is exercised by the
// e2e tests (tests/e2e/client_library.rs) in Chromium.
import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import {
  TickwireClient, backoffDelay, endpoints, formatSince, mergePatch, socketUrl, checkChannels,
  isPrivateChannel, refreshDelay, tokenExpiry,
} from "../../static/client/tickwire-client.js";

// ---- Pure parts

test("merge patch: the RFC 7386 appendix A examples", () => {
  const cases = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [["a", "b"], ["c", "d"], ["c", "d"]],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, want] of cases) {
    assert.deepEqual(mergePatch(target, patch), want, `${JSON.stringify(target)} + ${JSON.stringify(patch)}`);
  }
});

test("merge patch leaves its inputs alone", () => {
  const target = { coins: { bitcoin: { price_usd: 1, change_24h_pct: 2 }, ethereum: { price_usd: 3 } } };
  const before = structuredClone(target);
  const out = mergePatch(target, { coins: { bitcoin: { price_usd: 5 }, ethereum: null } });
  assert.deepEqual(target, before);
  assert.deepEqual(out, { coins: { bitcoin: { price_usd: 5, change_24h_pct: 2 } } });
});

test("merge patch keeps __proto__, constructor and prototype as own keys, like JSON.parse", () => {
  const target = JSON.parse('{"a":{"__proto__":{"x":1},"keep":true}}');
  const patch = JSON.parse('{"a":{"__proto__":{"y":2},"constructor":{"z":3},"prototype":{"w":4}},"__proto__":{"polluted":true}}');
  const out = mergePatch(target, patch);
  const want = JSON.parse('{"a":{"__proto__":{"x":1,"y":2},"keep":true,"constructor":{"z":3},"prototype":{"w":4}},"__proto__":{"polluted":true}}');
  assert.deepEqual(out, want);
  assert.ok(Object.hasOwn(out, "__proto__") && Object.getPrototypeOf(out) === Object.prototype);
  assert.ok(Object.hasOwn(out.a, "constructor") && Object.getPrototypeOf(out.a) === Object.prototype);
  assert.equal(out.polluted, undefined);
  assert.equal({}.polluted, undefined, "Object.prototype is untouched");
  assert.equal(Object.prototype.y, undefined);
  // Removing them removes the own keys only.
  const gone = mergePatch(out, JSON.parse('{"__proto__":null,"a":{"constructor":null}}'));
  assert.ok(!Object.hasOwn(gone, "__proto__") && !Object.hasOwn(gone.a, "constructor"));
  assert.equal(gone.a.constructor, Object, "the inherited member is back, not a stored value");
});

test("backoff: full jitter between 0 and min(cap, base * 2^n)", () => {
  for (let n = 0; n < 12; n++) {
    const bound = Math.min(30000, 500 * 2 ** n);
    assert.equal(backoffDelay(n, 500, 30000, () => 0), 0);
    assert.equal(backoffDelay(n, 500, 30000, () => 0.5), bound / 2);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(n);
      assert.ok(d >= 0 && d < bound, `attempt ${n}: ${d} outside [0, ${bound})`);
    }
  }
  assert.equal(backoffDelay(1e9, 500, 30000, () => 0.999), 0.999 * 30000, "huge attempts stay capped");
  assert.equal(backoffDelay(-3, 500, 30000, () => 1), 500);
});

test("the resume URL names seq and epoch per channel", () => {
  const positions = { a: { seq: 12, epoch: "9f2c" }, b: { seq: 0, epoch: "" }, gone: { seq: 4, epoch: "x" } };
  assert.equal(formatSince(positions, ["a", "b", "c"]), "a:12@9f2c,b:0");
  const url = new URL(socketUrl("ws://h:1/ws", ["a", "b", "c"], positions, true));
  assert.equal(url.origin + url.pathname, "ws://h:1/ws");
  assert.equal(url.searchParams.get("channels"), "a,b,c");
  assert.equal(url.searchParams.get("since"), "a:12@9f2c,b:0");
  assert.equal(url.searchParams.get("delta"), "merge");
  assert.ok(url.search.includes("since=a%3A12%409f2c%2Cb%3A0"), url.search);
  const plain = new URL(socketUrl("ws://h/ws", [], {}, false));
  assert.equal(plain.search, "?channels=", "no channels: `channels=` empty, no since, no delta");
});

test("endpoints from the service URL", () => {
  assert.deepEqual(endpoints("https://t.example.dev"), { ws: "wss://t.example.dev/ws", http: "https://t.example.dev" });
  assert.deepEqual(endpoints("ws://127.0.0.1:8787/ws"), { ws: "ws://127.0.0.1:8787/ws", http: "http://127.0.0.1:8787" });
  assert.deepEqual(endpoints("/edge/", "http://h:3"), { ws: "ws://h:3/edge/ws", http: "http://h:3/edge" });
  assert.deepEqual(endpoints(undefined, "https://p.dev"), { ws: "wss://p.dev/ws", http: "https://p.dev" });
});

test("channel names are checked like the server does", () => {
  assert.deepEqual(checkChannels(["btc", "a-b_9", "x".repeat(32)]), ["btc", "a-b_9", "x".repeat(32)]);
  for (const bad of ["", "A", "-x", "x".repeat(33), "a.b", 7]) assert.throws(() => checkChannels([bad]), TypeError);
});

// ---- The client, with a stand-in socket

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = null;
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(text); }
  open() { this.onopen?.({}); }
  close(code) { this.closed = code; }
  recv(frame) { this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) }); }
  drop() { this.onclose?.({ code: 1006 }); }
  ops() { return this.sent.filter((t) => t !== "ping").map((t) => JSON.parse(t)); }
}
const last = () => FakeSocket.all[FakeSocket.all.length - 1];
const welcome = { type: "welcome", conn: "0000000000000001", protocol: 1, channels: [], stale_after_seconds: 180 };
const up = (channel, seq, data, extra = {}) => ({ type: "update", channel, seq, ts: 1700000000000 + seq, stale: false, data, ...extra });
const sub = (channel, seq, epoch = "e1", recovered = false) => ({ type: "subscribed", channel, seq, epoch, recovered });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const noFetch = async () => { throw new Error("offline"); };

const opened = []; // every client a test made: closed after it, so a failed assertion cannot leave timers running
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

function client(options = {}) {
  const seen = [];
  const statuses = [];
  const errors = [];
  const c = new TickwireClient("http://h:1", {
    WebSocket: FakeSocket, fetch: noFetch, backoffBaseMs: 1, backoffCapMs: 5, pollMs: 0,
    onUpdate: (u) => seen.push(u), onStatus: (s) => statuses.push(s), onError: (e) => errors.push(e),
    ...options,
  });
  opened.push(c);
  return { c, seen, statuses, errors };
}

test("a batch is handled frame by frame; catch-up updates wait for `subscribed`", () => {
  const { c, seen, statuses } = client({ channels: ["btc", "orders"] });
  c.connect();
  const ws = last();
  assert.equal(ws.url, "ws://h:1/ws?channels=btc%2Corders");
  ws.recv({ type: "batch", frames: [welcome, up("btc", 5, { p: 1 }), { type: "batch", frames: [up("btc", 6, { p: 2 })] }] });
  assert.equal(seen.length, 0, "held until btc's subscribed");
  ws.recv({ type: "batch", frames: [sub("btc", 6), sub("orders", 0, "")] });
  assert.deepEqual(seen.map((u) => [u.channel, u.seq, u.data.p, u.source]), [["btc", 5, 1, "socket"], ["btc", 6, 2, "socket"]]);
  assert.deepEqual(c.positions, { btc: { seq: 6, epoch: "e1" }, orders: { seq: 0, epoch: "" } });
  assert.deepEqual(statuses, ["connecting", "live"]);
  // Live updates: duplicates and other channels' frames are ignored.
  ws.recv(up("orders", 1, { id: 1 }));
  ws.recv(up("orders", 1, { id: 1 }));
  ws.recv(up("news", 1, {}));
  assert.deepEqual(seen.map((u) => u.seq), [5, 6, 1]);
  assert.deepEqual(c.values.orders, { id: 1 });
  c.close();
});

test("a delta in step is applied; a gap resubscribes with since and waits for the replay", () => {
  const { c, seen } = client({ channels: ["market"], delta: true });
  c.connect();
  const ws = last();
  assert.ok(ws.url.endsWith("&delta=merge"), ws.url);
  const full = { coins: { bitcoin: { price_usd: 100, change_24h_pct: 1 }, ethereum: { price_usd: 10, change_24h_pct: 2 } }, total_market_cap_usd: 5 };
  ws.recv({ type: "batch", frames: [welcome, up("market", 7, full), sub("market", 7, "ep")] });
  const delta = (seq, patch) => ({ type: "delta", channel: "market", seq, ts: 1700000009000, stale: false, patch });
  ws.recv(delta(8, { coins: { bitcoin: { price_usd: 101 } } }));
  assert.deepEqual(c.values.market.coins.bitcoin, { price_usd: 101, change_24h_pct: 1 });
  assert.equal(seen.at(-1).delta, true);
  assert.equal(seen.at(-1).ts, 1700000009000);
  assert.deepEqual(seen.at(-1).data, c.values.market, "callbacks get the full value");
  assert.equal(seen[0].data.coins.bitcoin.price_usd, 100, "the earlier value was not changed in place");

  // Seq 9 never arrived: 10 must not be applied to 8's value.
  ws.recv(delta(10, { total_market_cap_usd: 6 }));
  assert.equal(c.values.market.total_market_cap_usd, 5);
  assert.equal(c.positions.market.seq, 8);
  assert.deepEqual(ws.ops(), [{ op: "subscribe", channels: ["market"], since: { market: { seq: 8, epoch: "ep" } } }]);
  assert.equal(c.stats.resyncs, 1);
  ws.recv(delta(11, { total_market_cap_usd: 7 })); // in flight before the server saw the op
  assert.equal(ws.ops().length, 1, "one resubscribe while it is pending");
  // The replay: full updates 9..11, then subscribed.
  const v = (cap) => ({ ...full, total_market_cap_usd: cap });
  ws.recv({ type: "batch", frames: [up("market", 9, v(55)), up("market", 10, v(6)), up("market", 11, v(7)), sub("market", 11, "ep", true)] });
  assert.deepEqual(seen.map((u) => u.seq), [7, 8, 9, 10, 11]);
  ws.recv(delta(12, { total_market_cap_usd: 8, coins: { ethereum: null } }));
  assert.deepEqual(c.values.market, { coins: { bitcoin: { price_usd: 100, change_24h_pct: 1 } }, total_market_cap_usd: 8 });
  assert.equal(c.positions.market.seq, 12);
  c.close();
});

test("a delta with __proto__ and constructor gives the value a full client gets", () => {
  const full = client({ channels: ["orders"] });
  const delta = client({ channels: ["orders"], delta: true });
  full.c.connect();
  const fws = last();
  delta.c.connect();
  const dws = last();
  const v1 = '{"id":1,"meta":{"a":1}}';
  const v2 = '{"id":2,"meta":{"a":1,"__proto__":{"isAdmin":true}},"constructor":{"prototype":{"p":1}},"__proto__":{"b":2}}';
  const patch = '{"id":2,"meta":{"__proto__":{"isAdmin":true}},"constructor":{"prototype":{"p":1}},"__proto__":{"b":2}}';
  const frame = (kind, seq, body) =>
    `{"type":"${kind}","channel":"orders","seq":${seq},"ts":1,"stale":false,"${kind === "delta" ? "patch" : "data"}":${body}}`;
  try {
    for (const ws of [fws, dws]) {
      ws.recv(`{"type":"batch","frames":[${JSON.stringify(welcome)},${frame("update", 1, v1)},${JSON.stringify(sub("orders", 1, "ep"))}]}`);
    }
    fws.recv(frame("update", 2, v2));
    dws.recv(frame("delta", 2, patch));
    assert.deepEqual(delta.seen.map((u) => [u.seq, u.delta]), [[1, false], [2, true]], "applied as a delta");
    assert.deepEqual(delta.c.values.orders, full.c.values.orders);
    assert.deepEqual(delta.c.values.orders, JSON.parse(v2));
    const got = delta.c.values.orders;
    assert.ok(Object.hasOwn(got, "__proto__") && Object.hasOwn(got.meta, "__proto__") && Object.hasOwn(got, "constructor"));
    assert.equal(got.meta.isAdmin, undefined, "no prototype change");
    assert.equal({}.isAdmin, undefined, "Object.prototype is untouched");
  } finally {
    full.c.close();
    delta.c.close();
  }
});

test("a delta for a channel without a value resubscribes", () => {
  const { c, seen } = client({ channels: ["orders"], delta: true });
  c.connect();
  const ws = last();
  ws.recv({ type: "batch", frames: [welcome, sub("orders", 0, "")] });
  ws.recv({ type: "delta", channel: "orders", seq: 1, ts: 1, stale: false, patch: { a: 1 } });
  assert.equal(seen.length, 0);
  assert.deepEqual(ws.ops(), [{ op: "subscribe", channels: ["orders"], since: { orders: 0 } }]);
  c.close();
});

test("reconnects with since after a drop, and a new epoch starts the channel over", async () => {
  const { c, seen, statuses } = client({ channels: ["orders"] });
  c.connect();
  let ws = last();
  ws.recv({ type: "batch", frames: [welcome, up("orders", 3, "c"), sub("orders", 3, "old")] });
  ws.drop();
  assert.equal(c.status, "reconnecting");
  await sleep(20);
  ws = last();
  assert.equal(new URL(ws.url).searchParams.get("since"), "orders:3@old");
  // Storage was reset: the server sends its latest (seq 1 of a new epoch), then says so.
  ws.recv({ type: "batch", frames: [welcome, up("orders", 1, "new"), sub("orders", 1, "new")] });
  assert.deepEqual(seen.map((u) => [u.seq, u.data]), [[3, "c"], [1, "new"]]);
  assert.deepEqual(c.positions.orders, { seq: 1, epoch: "new" });
  assert.deepEqual(statuses, ["connecting", "live", "reconnecting", "live"]);
  c.close();
  assert.equal(c.status, "closed");
});

test("a failed attempt backs off and counts as offline-polling", async () => {
  const { c, statuses } = client({ channels: ["btc"] });
  c.connect();
  last().drop(); // refused before welcome
  assert.equal(c.status, "offline-polling");
  await sleep(20);
  assert.ok(FakeSocket.all.length >= 2);
  assert.deepEqual(statuses.slice(0, 2), ["connecting", "offline-polling"]);
  c.close();
});

test("keep-alive: pings, and a socket that answers nothing is given up", async () => {
  const { c } = client({ channels: [], pingMs: 10, pongTimeoutMs: 15 });
  c.connect();
  const quiet = last();
  quiet.recv(welcome);
  await sleep(60);
  assert.ok(quiet.sent.includes("ping"), "pinged");
  assert.equal(quiet.closed, 4000, "closed as dead");
  assert.notEqual(last(), quiet, "and replaced");
  const chatty = last();
  chatty.recv(welcome);
  for (let i = 0; i < 8; i++) {
    await sleep(8);
    chatty.recv("pong");
  }
  assert.equal(chatty.closed, null, "a socket that answers stays");
  c.close();
  assert.equal(chatty.closed, 1000);
});

test("odd frames and throwing callbacks do not break the client", () => {
  const origError = console.error;
  console.error = () => {};
  try {
    const { c, seen } = client({ channels: ["x"] });
    c.on("update", () => { throw new Error("app bug"); });
    c.connect();
    const ws = last();
    for (const f of ["not json", "null", "[1,2]", "42", '{"type":7}', '{"type":"batch","frames":"no"}',
      '{"type":"update","channel":"x","seq":-1}', '{"type":"update","channel":"x","seq":"2"}', '{"type":"subscribed"}',
      '{"type":"delta","channel":"x"}', '{"type":"unsubscribed","channel":{}}', '{"type":"welcome"}']) {
      ws.onmessage({ data: f });
    }
    ws.onmessage({ data: new ArrayBuffer(2) });
    ws.recv(sub("x", 0));
    ws.recv(up("x", 1, { ok: true }));
    assert.deepEqual(seen.map((u) => u.data), [{ ok: true }], "still works after all that");
    c.close();
  } finally {
    console.error = origError;
  }
});

test("subscribe and unsubscribe while live; the server ending a channel is reported", () => {
  const { c } = client({ channels: ["a"] });
  const ended = [];
  c.on("unsubscribed", (ch, info) => ended.push([ch, info.byServer]));
  c.connect();
  const ws = last();
  ws.recv({ type: "batch", frames: [welcome, up("a", 2, 1), sub("a", 2)] });
  c.subscribe(["b", "a"]);
  c.unsubscribe("a");
  assert.deepEqual(ws.ops(), [
    { op: "subscribe", channels: ["b"], since: {} },
    { op: "unsubscribe", channels: ["a"] },
  ]);
  assert.deepEqual(c.positions, {});
  ws.recv({ type: "unsubscribed", channel: "a" }); // the answer: nothing to report
  ws.recv({ type: "unsubscribed", channel: "b" }); // unasked: deleted on the server
  assert.deepEqual(ended, [["b", true]]);
  assert.deepEqual(c.channels, []);
  c.close();
});

test("while down, polling shows snapshot values and every app channel update", async () => {
  const asked = [];
  const fetch = async (url) => {
    const u = new URL(url);
    asked.push(u.pathname + u.search);
    const json = (v) => ({ ok: true, status: 200, json: async () => v });
    if (u.pathname === "/api/snapshot") {
      return json({ channels: { btc: { channel: "btc", seq: 4, data: { price_usd: 2 }, fetched_at: "2026-01-01T00:00:00.000Z", stale: true }, market: null } });
    }
    const since = Number(u.searchParams.get("since"));
    const all = [1, 2, 3].map((s) => ({ channel: "orders", seq: s, ts: s, stale: false, data: { n: s } }));
    const updates = all.filter((x) => x.seq > since).slice(0, Number(u.searchParams.get("limit")));
    return json({ channel: "orders", epoch: "ep", seq: 3, updates, next: null });
  };
  const { c, seen } = client({ channels: ["btc", "orders"], fetch });
  c.connect();
  const ws = last();
  ws.recv({ type: "batch", frames: [welcome, up("orders", 1, { n: 1 }), sub("orders", 1, "ep"), sub("btc", 0, "b")] });
  c.close(); // stop the socket; poll by hand as the down state would
  c._wanted = new Set(["btc", "orders"]);
  assert.equal(await c.poll(), true);
  assert.deepEqual(asked, ["/api/snapshot", "/api/history?channel=orders&since=1&limit=100"]);
  assert.deepEqual(seen.map((u) => [u.channel, u.seq, u.source]), [["orders", 1, "socket"], ["btc", 4, "poll"], ["orders", 2, "poll"], ["orders", 3, "poll"]]);
  assert.equal(seen[1].stale, true);
  assert.equal(seen[1].ts, Date.parse("2026-01-01T00:00:00.000Z"));
  assert.deepEqual(c.positions.orders, { seq: 3, epoch: "ep" });
  assert.equal(await c.poll(), true);
  assert.equal(seen.length, 4, "nothing twice");
});

// ---- Tokens and private channels

const b64u = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
const jwt = (claims) => `${b64u({ alg: "HS256", typ: "JWT" })}.${b64u(claims)}.c2lnbmF0dXJl`;
const T0 = 1_700_000_000_000; // the fake clock's start
const tokenAt = (sub, expMs) => jwt({ sub, exp: Math.floor(expMs / 1000), caps: { "private-*": ["subscribe", "history", "publish"] } });
const authed = (token) => ({ type: "authed", sub: "u1", exp: tokenExpiry(token) });
const flush = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};
const auths = (ws) => ws.ops().filter((o) => o.op === "auth");
/** Every URL a test's sockets and fetches used: a token must never be in one. */
function assertNoTokenInUrls(urls, tokens) {
  for (const u of urls) for (const t of tokens) assert.ok(!u.includes(t) && !u.includes(encodeURIComponent(t)), `token in ${u}`);
  for (const u of urls) assert.ok(!/[?&](token|access_token|jwt)=/.test(u), `a token parameter in ${u}`);
}
/** Runs `fn` with Math.random fixed (the refresh point's and the backoff's jitter). */
async function withRandom(value, fn) {
  const orig = Math.random;
  Math.random = () => value;
  try {
    return await fn();
  } finally {
    Math.random = orig;
  }
}

test("token expiry is read from the JWT payload; anything else is unreadable", () => {
  assert.equal(tokenExpiry(jwt({ sub: "u1", exp: 1765000000 })), 1765000000);
  assert.equal(tokenExpiry(jwt({ sub: "ü ✓ 😀", exp: 1765000001, info: { name: "Zoë" } })), 1765000001, "UTF-8 claims");
  for (const n of [1, 2, 3]) assert.equal(tokenExpiry(jwt({ exp: 1765000000, pad: "x".repeat(n) })), 1765000000, "any padding length");
  for (const bad of ["", "abc", "a.b.c", "a..c", jwt({ sub: "u1" }), jwt({ exp: "1765000000" }), jwt({ exp: -5 }), `x.${b64u([1])}.y`, null, 42]) {
    assert.equal(tokenExpiry(bad), null, String(bad));
  }
  assert.ok(isPrivateChannel("private-u1") && isPrivateChannel("presence-room"));
  assert.ok(!isPrivateChannel("privatex") && !isPrivateChannel("btc") && !isPrivateChannel("orders"));
});

test("refresh points: 60% to 85% of a long lifetime, ending 30 s before exp, capped for setTimeout", () => {
  const hour = 3600_000;
  assert.equal(refreshDelay(hour, () => 0), 0.6 * hour);
  assert.equal(Math.round(refreshDelay(hour, () => 1)), 0.85 * hour);
  assert.equal(refreshDelay(100_000, () => 1), 70_000, "not later than 30 s before exp");
  assert.equal(refreshDelay(20_000, () => 1), 10_000, "a short token: half its lifetime at most");
  assert.equal(refreshDelay(0, () => 0.5), 1000, "at least 1 s");
  assert.equal(refreshDelay(10 * 365 * 24 * hour, () => 1), 2 ** 31 - 1, "a far exp does not overflow setTimeout");
  for (const r of [5_000, 20_000, 59_000, 60_000, 100_000, 200_000, 600_000, hour, 24 * hour]) {
    const hi = Math.max(Math.min(0.85 * r, r - 30_000), 0.5 * r);
    const seen = new Set();
    for (let i = 0; i < 300; i++) {
      const d = refreshDelay(r);
      seen.add(Math.round(d / 10));
      assert.ok(d >= Math.max(1000, hi * (0.6 / 0.85)) - 1e-6 && d <= hi + 1e-6, `${r}: ${d} outside the window`);
      assert.ok(d < r, `${r}: ${d} not before exp`);
      if (r >= 60_000) assert.ok(d <= r - 30_000 + 1e-6, `${r}: ${d} later than 30 s before exp`);
    }
    assert.ok(seen.size > 20, `${r}: jittered (${seen.size} distinct points)`);
  }
});

test("auth is the first frame; private channels subscribe after `authed`, never in the URL", () => {
  const token = jwt({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 3600 });
  const { c } = client({ channels: ["btc", "private-u1"], token });
  const authedSeen = [];
  c.on("authed", (f) => authedSeen.push(f.sub));
  c.connect();
  const ws = last();
  assert.equal(ws.url, "ws://h:1/ws?channels=btc", "public channels only, no token");
  c.subscribe(["news", "private-u2"]); // before the socket is even open
  assert.deepEqual(ws.sent, []);
  ws.open();
  ws.recv(welcome);
  assert.deepEqual(ws.ops()[0], { op: "auth", token });
  assert.deepEqual(ws.ops().slice(1), [{ op: "subscribe", channels: ["news"], since: {} }], "no private subscribe before authed");
  ws.recv(authed(token));
  assert.deepEqual(ws.ops().slice(2), [{ op: "subscribe", channels: ["private-u1", "private-u2"], since: {} }]);
  assert.deepEqual(authedSeen, ["u1"]);
  ws.recv({ type: "batch", frames: [up("private-u1", 3, { a: 1 }), sub("private-u1", 3, "p1")] });
  assert.deepEqual(c.values["private-u1"], { a: 1 });
  c.close();
  assertNoTokenInUrls([ws.url], [token]);
});

test("auth goes first even when getToken answers after the socket opened", async () => {
  let give;
  const token = jwt({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 3600 });
  const { c } = client({ channels: ["btc", "private-u1"], getToken: () => new Promise((r) => (give = r)) });
  c.connect();
  const ws = last();
  ws.open();
  ws.recv(welcome);
  c.subscribe(["news"]);
  c.unsubscribe(["btc"]);
  assert.deepEqual(ws.sent, [], "frames wait behind the auth frame");
  give(token);
  await flush();
  assert.deepEqual(ws.ops(), [
    { op: "auth", token },
    { op: "subscribe", channels: ["news"], since: {} },
    { op: "unsubscribe", channels: ["btc"] },
  ]);
  ws.recv(authed(token));
  assert.deepEqual(ws.ops().at(-1), { op: "subscribe", channels: ["private-u1"], since: {} });
  c.close();
});

test("the token is refreshed at a jittered point before exp, on the open socket, without a resubscribe", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: T0 });
  for (const [random, lo, hi] of [[0, 0.6, 0.6], [0.999999, 0.85, 0.85]]) {
    await withRandom(random, async () => {
      t.mock.timers.setTime(T0);
      const first = tokenAt("u1", T0 + 3600_000);
      const given = [];
      const getToken = async () => {
        const tok = tokenAt("u1", Date.now() + 3600_000);
        given.push(tok);
        return tok;
      };
      const { c, seen } = client({ channels: ["private-u1"], token: first, getToken, pingMs: 1e9 });
      c.connect();
      const ws = last();
      ws.open();
      ws.recv(welcome);
      ws.recv(authed(first));
      ws.recv({ type: "batch", frames: [up("private-u1", 1, "a"), sub("private-u1", 1, "p1")] });
      const before = ws.ops().length;
      t.mock.timers.tick(Math.floor(lo * 3600_000) - 1000);
      await flush();
      assert.deepEqual(given, [], `random ${random}: not refreshed before ${lo * 100}% of the lifetime`);
      t.mock.timers.tick(Math.ceil((hi - lo) * 3600_000) + 1001);
      await flush();
      assert.equal(given.length, 1, `random ${random}: refreshed by ${hi * 100}% of the lifetime`);
      assert.deepEqual(ws.ops().slice(before), [{ op: "auth", token: given[0] }], "only the auth: no resubscribe");
      ws.recv(authed(given[0]));
      ws.recv(up("private-u1", 2, "b")); // the stream goes on
      assert.deepEqual(ws.ops().slice(before + 1), [], "still no resubscribe after authed");
      assert.deepEqual(seen.map((u) => u.seq), [1, 2]);
      // The next refresh is planned from the new token.
      t.mock.timers.tick(Math.ceil(0.86 * 3600_000));
      await flush();
      assert.equal(given.length, 2, "refreshed again");
      c.close();
    });
  }
});

test("a fixed token is never refreshed, and an unreadable one only on error", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: T0 });
  const fixed = client({ channels: ["private-u1"], token: tokenAt("u1", T0 + 60_000), pingMs: 1e9 });
  fixed.c.connect();
  const ws = last();
  ws.open();
  ws.recv(welcome);
  ws.recv(authed(tokenAt("u1", T0 + 60_000)));
  t.mock.timers.tick(120_000);
  await flush();
  assert.equal(auths(ws).length, 1);
  fixed.c.close();
  let calls = 0;
  const opaque = client({ channels: ["private-u1"], getToken: async () => (calls++, "opaque-token"), pingMs: 1e9 });
  opaque.c.connect();
  const ws2 = last();
  ws2.open();
  await flush();
  ws2.recv(welcome);
  ws2.recv({ type: "authed", sub: "u1", exp: Math.floor(T0 / 1000) + 60 });
  t.mock.timers.tick(3600_000);
  await flush();
  assert.equal(calls, 1, "no timed refresh without a readable exp");
  ws2.recv({ type: "unsubscribed", channel: "private-u1", reason: "token_expired" });
  await flush();
  assert.equal(calls, 2, "renewed after the expiry");
  opaque.c.close();
});

test("expiry: a new token, auth, then subscribe with since; every update once", async () => {
  const tokens = [jwt({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 3600 }), jwt({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 7200 })];
  let n = 0;
  const { c, seen, errors } = client({ channels: ["btc", "private-u1"], getToken: async () => tokens[n++] });
  const ended = [];
  c.on("unsubscribed", (ch) => ended.push(ch));
  c.connect();
  const ws = last();
  ws.open();
  await flush();
  ws.recv(welcome);
  ws.recv(authed(tokens[0]));
  ws.recv({ type: "batch", frames: [up("private-u1", 4, "d"), sub("private-u1", 4, "p1"), up("private-u1", 5, "e")] });
  const before = ws.ops().length;
  ws.recv({ type: "unsubscribed", channel: "private-u1", reason: "token_expired" });
  ws.recv(up("btc", 1, {}));
  await flush();
  assert.deepEqual(ws.ops().slice(before), [{ op: "auth", token: tokens[1] }], "auth with the new token, nothing else yet");
  assert.deepEqual(c.channels, ["btc", "private-u1"], "still followed");
  assert.deepEqual(ended, [], "not reported as ended");
  assert.deepEqual(errors.filter((e) => e instanceof Error).map((e) => [e.code, e.channel]), [["token_expired", "private-u1"]]);
  ws.recv(authed(tokens[1]));
  assert.deepEqual(ws.ops().slice(before + 1), [{ op: "subscribe", channels: ["private-u1"], since: { "private-u1": { seq: 5, epoch: "p1" } } }]);
  // The replay (6, 7) and a duplicate of 5 the server might repeat: each update once.
  ws.recv({ type: "batch", frames: [up("private-u1", 6, "f"), up("private-u1", 7, "g"), sub("private-u1", 7, "p1", true)] });
  ws.recv(up("private-u1", 7, "g"));
  ws.recv(up("private-u1", 8, "h"));
  assert.deepEqual(seen.filter((u) => u.channel === "private-u1").map((u) => u.seq), [4, 5, 6, 7, 8]);
  c.close();
});

test("forbidden: reported, dropped, and not subscribed again", () => {
  const token = jwt({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 3600 });
  const { c, errors } = client({ channels: ["private-a", "private-b", "private-c"], token });
  const ended = [];
  c.on("unsubscribed", (ch, info) => ended.push([ch, info.byServer, info.reason]));
  c.connect();
  const ws = last();
  ws.open();
  ws.recv(welcome);
  ws.recv(authed(token));
  ws.recv({ type: "error", code: "forbidden", message: "no subscribe capability", channel: "private-b" });
  ws.recv({ type: "batch", frames: [sub("private-a", 0, ""), sub("private-c", 0, "")] });
  ws.recv({ type: "unsubscribed", channel: "private-c", reason: "forbidden" }); // a refresh without it
  assert.deepEqual(ended, [["private-b", true, "forbidden"], ["private-c", true, "forbidden"]]);
  assert.deepEqual(errors.map((e) => e.code), ["forbidden"], "the error frame reaches the app");
  assert.deepEqual(c.channels, ["private-a"]);
  const before = ws.ops().length;
  ws.recv(authed(token)); // a later refresh does not bring them back
  assert.equal(ws.ops().length, before);
  c.close();
});

test("reconnect: auth (with a fresh token once the old one is due) before the private subscribe", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: T0 });
  const given = [];
  const getToken = async () => {
    const tok = tokenAt("u1", Date.now() + 100_000);
    given.push(tok);
    return tok;
  };
  const fetched = [];
  const fetch = async (url, init) => {
    fetched.push([url, init.headers.authorization]);
    return { ok: true, status: 200, json: async () => ({ channel: "private-u1", epoch: "p1", seq: 3, updates: [], next: null }) };
  };
  const { c } = client({ channels: ["btc", "private-u1"], getToken, fetch, pingMs: 1e9 });
  c.connect();
  let ws = last();
  ws.open();
  await flush();
  ws.recv(welcome);
  ws.recv(authed(given[0]));
  ws.recv({ type: "batch", frames: [up("private-u1", 3, "c"), sub("private-u1", 3, "p1")] });
  // A drop soon after: the token is still good and is sent again.
  ws.drop();
  t.mock.timers.tick(10);
  await flush();
  ws = last();
  ws.open();
  await flush();
  assert.equal(given.length, 1, "no new token needed");
  assert.deepEqual(ws.ops(), [{ op: "auth", token: given[0] }]);
  ws.recv(welcome);
  assert.deepEqual(ws.ops().length, 1, "the private channel waits for authed");
  ws.recv(authed(given[0]));
  assert.deepEqual(ws.ops()[1], { op: "subscribe", channels: ["private-u1"], since: { "private-u1": { seq: 3, epoch: "p1" } } });
  assert.equal(new URL(ws.url).searchParams.get("channels"), "btc");
  // A drop long after (the refresh point has passed while down): a new token first.
  ws.drop();
  t.mock.timers.setTime(Date.now() + 90_000);
  await c.poll(); // the HTTP fallback reads the private channel with the token in a header
  assert.deepEqual(fetched.map(([u, a]) => [new URL(u).pathname, a]), [["/api/snapshot", undefined], ["/api/history", `Bearer ${given[0]}`]],
    "the token only where a private channel is read, in a header");
  t.mock.timers.tick(10);
  await flush();
  ws = last();
  ws.open();
  await flush();
  assert.equal(given.length, 2, "a fresh token for the new socket");
  assert.deepEqual(ws.ops(), [{ op: "auth", token: given[1] }]);
  ws.recv(welcome);
  ws.recv(authed(given[1]));
  assert.deepEqual(ws.ops()[1].op, "subscribe");
  c.close();
  assertNoTokenInUrls([...FakeSocket.all.map((s) => s.url), ...fetched.map(([u]) => u)], given);
});

test("publish resolves to the seq, rejects with the error's code, and on a close", async () => {
  const { c, errors } = client({ channels: [] });
  await assert.rejects(c.publish("orders", { a: 1 }), (e) => e.code === "not_connected");
  c.connect();
  let ws = last();
  await assert.rejects(c.publish("orders", 1), (e) => e.code === "not_connected", "not live before welcome");
  ws.recv(welcome);
  const p1 = c.publish("orders", { qty: 2 });
  const p2 = c.publish("private-x", "hi");
  await assert.rejects(c.publish("Bad Name", 1), TypeError);
  await assert.rejects(c.publish("orders", undefined), TypeError);
  const ops = ws.ops();
  assert.equal(ops.length, 2);
  assert.deepEqual({ ...ops[0], id: undefined }, { op: "publish", channel: "orders", data: { qty: 2 }, id: undefined });
  assert.ok(typeof ops[0].id === "string" && ops[0].id.length <= 64 && ops[0].id !== ops[1].id, "a unique id per call");
  ws.recv({ type: "error", code: "forbidden", message: "no publish capability", channel: "private-x", id: ops[1].id });
  ws.recv({ type: "published", channel: "orders", seq: 42, id: ops[0].id });
  assert.equal(await p1, 42);
  await assert.rejects(p2, (e) => e.code === "forbidden" && e.channel === "private-x" && /no publish capability/.test(e.message));
  assert.deepEqual(errors, [], "a publish's error goes to its promise only");
  // A close with a publish unanswered: rejected, and not sent again on the next socket.
  const p3 = c.publish("orders", 3);
  ws.drop();
  await assert.rejects(p3, (e) => e.code === "disconnected");
  await sleep(20);
  ws = last();
  ws.recv(welcome);
  assert.deepEqual(ws.ops(), [], "nothing re-sent");
  const p4 = c.publish("orders", 4);
  c.close();
  await assert.rejects(p4, (e) => e.code === "disconnected");
});

test("with a token, a publish waits for the socket's auth answer", async () => {
  const token = jwt({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 3600 });
  const { c } = client({ channels: [], token });
  c.connect();
  const ws = last();
  ws.open();
  ws.recv(welcome);
  const p = c.publish("private-u1", { n: 1 });
  assert.deepEqual(ws.ops(), [{ op: "auth", token }], "held until authed");
  ws.recv(authed(token));
  const pub = ws.ops()[1];
  assert.equal(pub.op, "publish");
  ws.recv({ type: "published", channel: "private-u1", seq: 1, id: pub.id });
  assert.equal(await p, 1);
  c.close();
});

test("getToken failures back off; public channels go on meanwhile", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: T0 });
  await withRandom(0.999, async () => {
    const calls = [];
    const getToken = async () => {
      calls.push(Date.now() - T0);
      throw new Error("token endpoint down");
    };
    const { c, errors } = client({ channels: ["btc", "private-u1"], getToken, backoffBaseMs: 100, backoffCapMs: 1000, pingMs: 1e9 });
    c.connect();
    const ws = last();
    ws.open();
    ws.recv(welcome);
    await flush();
    c.subscribe(["news"]);
    assert.deepEqual(ws.ops(), [{ op: "subscribe", channels: ["news"], since: {} }], "no auth, public channels unblocked");
    for (let i = 0; i < 100; i++) {
      t.mock.timers.tick(50);
      await flush();
    }
    // At once, then waits of about 100, 200, 400, 800 ms and then 1 s each (random fixed near 1).
    assert.ok(calls.length >= 6 && calls.length <= 10, `${calls.length} calls in 5 s: ${calls}`);
    const gaps = calls.slice(1).map((x, i) => x - calls[i]);
    for (let i = 2; i < gaps.length; i++) assert.ok(gaps[i] >= gaps[i - 1] - 50, `gaps grow: ${gaps}`);
    assert.ok(gaps.at(-1) >= 900, `capped near backoffCapMs: ${gaps}`);
    assert.ok(errors.every((e) => e.code === "token_unavailable") && errors.length === calls.length);
    assert.deepEqual(auths(ws), []);
    c.close();
    const after = calls.length;
    t.mock.timers.tick(10_000);
    await flush();
    assert.equal(calls.length, after, "closing stops the retries");
  });
});

test("a server that keeps refusing auth is retried with backoff, not in a loop", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: T0 });
  await withRandom(0.999, async () => {
    let n = 0;
    const getToken = async () => tokenAt(`u${n++}`, Date.now() + 3600_000);
    const { c, errors } = client({ channels: ["private-u1"], getToken, backoffBaseMs: 100, backoffCapMs: 1000, pingMs: 1e9 });
    c.connect();
    const ws = last();
    ws.open();
    ws.recv(welcome);
    await flush();
    let answered = 0;
    for (let i = 0; i < 100; i++) {
      while (answered < auths(ws).length) {
        answered += 1;
        ws.recv({ type: "error", code: "unauthorized", message: "bad signature" });
      }
      t.mock.timers.tick(50);
      await flush();
    }
    assert.ok(answered >= 5 && answered <= 10, `${answered} auths in 5 s`);
    assert.equal(errors.filter((e) => e.code === "unauthorized").length, answered, "each refusal reported");
    assert.ok(!ws.ops().some((o) => o.op === "subscribe"), "no private subscribe without a token");
    c.close();
  });
});

test("without a token a private channel is asked for by op and dropped when refused; setToken resumes one", () => {
  const anon = client({ channels: ["btc", "private-u1"] });
  const ended = [];
  anon.c.on("unsubscribed", (ch, info) => ended.push([ch, info.reason]));
  anon.c.connect();
  let ws = last();
  assert.equal(ws.url, "ws://h:1/ws?channels=btc");
  ws.recv(welcome);
  assert.deepEqual(ws.ops(), [{ op: "subscribe", channels: ["private-u1"], since: {} }], "no auth op without a token");
  ws.recv({ type: "error", code: "unauthorized", message: "no token", channel: "private-u1" });
  assert.deepEqual(ended, [["private-u1", "unauthorized"]]);
  assert.deepEqual(anon.c.channels, ["btc"]);
  anon.c.close();

  const old = jwt({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 60 });
  const fixed = client({ channels: ["private-u1"], token: old });
  fixed.c.connect();
  ws = last();
  ws.open();
  ws.recv(welcome);
  ws.recv(authed(old));
  ws.recv({ type: "batch", frames: [up("private-u1", 9, "i"), sub("private-u1", 9, "p1")] });
  ws.recv({ type: "unsubscribed", channel: "private-u1", reason: "token_expired" });
  const before = ws.ops().length;
  assert.deepEqual(fixed.c.channels, ["private-u1"], "still followed, waiting for a token");
  const fresh = jwt({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 3600 });
  fixed.c.setToken(fresh);
  ws.recv(authed(fresh));
  assert.deepEqual(ws.ops().slice(before), [
    { op: "auth", token: fresh },
    { op: "subscribe", channels: ["private-u1"], since: { "private-u1": { seq: 9, epoch: "p1" } } },
  ]);
  fixed.c.close();
});

// ---- Conflated delivery and presence (issue 26)

test("every: the connect URL names each channel's interval, subscribe ops carry every_ms per class", () => {
  const url = new URL(socketUrl("ws://h/ws", ["market", "btc", "news"], {}, false, { market: 5000, btc: 1000, news: 7 }));
  assert.equal(url.searchParams.get("every"), "market:5000,btc:1000", "only the offered intervals");
  assert.throws(() => client({ channels: ["btc"], every: { btc: 1234 } }), TypeError);
  const { c } = client({ channels: ["btc"], every: { btc: 1000 } });
  c.connect();
  const ws = last();
  assert.ok(ws.url.endsWith("&every=btc%3A1000"), ws.url);
  ws.recv({ type: "batch", frames: [welcome, sub("btc", 0, "")] });
  c.subscribe(["news", "orders"]);
  c.setEvery("trades", 250); // not followed yet: its subscribe will carry the interval
  c.subscribe(["trades"]);
  assert.deepEqual(ws.ops(), [
    { op: "subscribe", channels: ["news", "orders"], since: {} },
    { op: "subscribe", channels: ["trades"], since: {}, every_ms: 250 },
  ]);
  ws.recv({ type: "batch", frames: [sub("news", 0, ""), sub("orders", 2, "e")] });
  ws.recv(up("orders", 2, { a: 1 }));
  // Moving a live channel to another interval: unsubscribe, then subscribe with since and the
  // new every_ms; the server's plain `unsubscribed` does not drop it.
  c.setEvery("news", 5000);
  const ops = ws.ops().slice(2);
  assert.deepEqual(ops, [
    { op: "unsubscribe", channels: ["news"] },
    { op: "subscribe", channels: ["news"], since: { news: 0 }, every_ms: 5000 },
  ]);
  ws.recv({ type: "unsubscribed", channel: "news" });
  assert.ok(c.channels.includes("news"), "still followed");
  c.close();
});

test("a conflated update reports what it skipped, and its delta applies to the value last received", () => {
  const { c, seen } = client({ channels: ["ticks"], delta: true, every: { ticks: 1000 } });
  c.connect();
  const ws = last();
  ws.recv({ type: "batch", frames: [welcome, up("ticks", 10, { p: 1, q: 1 }), sub("ticks", 10, "e")] });
  ws.recv(up("ticks", 60, { p: 50, q: 1 }, { skipped: 49 }));
  const delta = { type: "delta", channel: "ticks", seq: 110, ts: 1, stale: false, patch: { p: 99 }, skipped: 49 };
  ws.recv(delta);
  assert.deepEqual(seen.map((u) => [u.seq, u.skipped, u.data.p]), [[10, 0, 1], [60, 49, 50], [110, 49, 99]]);
  assert.equal(c.stats.resyncs, 0, "skipped updates are no gap");
  // A delta whose base is not the value held (it says it skipped fewer) is never applied.
  ws.recv({ ...delta, seq: 170, skipped: 10, patch: { p: -1 } });
  assert.equal(c.values.ticks.p, 99);
  assert.equal(c.stats.resyncs, 1);
  c.close();
});

test("presence: the list once, then joins and leaves; a reconnect resets it until a fresh list", () => {
  const events = [];
  const { c } = client({ channels: ["presence-room"], token: "a.b.c", onPresence: (ch, p) => events.push([ch, p]) });
  c.connect();
  let ws = last();
  ws.open();
  ws.recv({ type: "batch", frames: [welcome, { type: "authed", sub: "me", exp: 4102444800 }] });
  ws.recv({ type: "join", channel: "presence-room", sub: "early", count: 1 }); // before the list: ignored
  ws.recv({ type: "presence", channel: "presence-room", members: [{ sub: "me", info: { n: "Me" } }, { sub: "ann", info: null }], count: 2 });
  ws.recv({ type: "join", channel: "presence-room", sub: "bob", info: { n: "Bob" }, count: 3 });
  ws.recv({ type: "leave", channel: "presence-room", sub: "ann", count: 2 });
  assert.deepEqual([...c.presence["presence-room"].members.keys()], ["me", "bob"]);
  assert.deepEqual(events.map(([, p]) => [p.change.type, p.count]), [["presence", 2], ["join", 3], ["leave", 2]]);
  assert.deepEqual(events.at(-1)[1].members, [{ sub: "me", info: { n: "Me" } }, { sub: "bob", info: { n: "Bob" } }]);
  ws.drop();
  assert.equal(c.presence["presence-room"], undefined, "no stale list survives the socket");
  assert.deepEqual(events.at(-1)[1], { members: [], count: null, listed: false, change: { type: "reset" } });
  // Past the server's bound: counts only.
  c.reconnect();
  ws = last();
  ws.open();
  ws.recv({ type: "batch", frames: [welcome, { type: "authed", sub: "me", exp: 4102444800 }] });
  ws.recv({ type: "presence", channel: "presence-room", count: 500 });
  ws.recv({ type: "join", channel: "presence-room", sub: "zed", count: 501 });
  assert.deepEqual([c.presence["presence-room"].count, c.presence["presence-room"].members.size], [501, 0]);
  c.close();
});
