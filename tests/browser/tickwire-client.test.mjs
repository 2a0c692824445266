// Host tests of static/tickwire-client.js (scripts/test runs `node --test` on this file): its
// pure parts (merge patch, backoff, the resume URL) and the client's frame handling, driven
// through a stand-in for the browser's WebSocket and fetch. The real server is exercised by the
// e2e tests (tests/e2e/client_library.rs) in Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  TickwireClient, backoffDelay, endpoints, formatSince, mergePatch, socketUrl, checkChannels,
} from "../../static/tickwire-client.js";

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

function client(options = {}) {
  const seen = [];
  const statuses = [];
  const errors = [];
  const c = new TickwireClient("http://h:1", {
    WebSocket: FakeSocket, fetch: noFetch, backoffBaseMs: 1, backoffCapMs: 5, pollMs: 0,
    onUpdate: (u) => seen.push(u), onStatus: (s) => statuses.push(s), onError: (e) => errors.push(e),
    ...options,
  });
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
