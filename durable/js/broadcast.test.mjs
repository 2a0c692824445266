// Host tests of the subscriber index in broadcast.js (scripts/test runs `node --test` on this file).
// Linear time is shown by counting work, not by timing it: every Map broadcast.js creates counts
// its lookups, writes, deletes and iterated entries, and connecting then closing 32,768 sockets
// must cost the same per subscription as 4,096 sockets, about two Map operations each, and no
// iteration at all (a close that scanned subscribers would iterate).
import { test } from "node:test";
import assert from "node:assert/strict";

const RealMap = globalThis.Map;
const work = { ops: 0, iterated: 0 };
class CountingMap extends RealMap {
  get(k) { work.ops++; return super.get(k); }
  set(k, v) { work.ops++; return super.set(k, v); }
  delete(k) { work.ops++; return super.delete(k); }
  has(k) { work.ops++; return super.has(k); }
  *entries() { for (const e of super.entries()) { work.iterated++; yield e; } }
  *values() { for (const v of super.values()) { work.iterated++; yield v; } }
  *keys() { for (const k of super.keys()) { work.iterated++; yield k; } }
  [Symbol.iterator]() { return this.entries(); }
}
// broadcast.js looks `Map` up when it runs, so its maps are counting ones while this is installed.
globalThis.Map = CountingMap;
const { Subscribers } = await import("./broadcast.js");
globalThis.Map = RealMap;
const counting = (f) => {
  globalThis.Map = CountingMap;
  try { return f(); } finally { globalThis.Map = RealMap; }
};

class FakeSocket {
  constructor(id) { this.id = id; this.got = []; this.closed = false; }
  send(m) { if (this.closed) throw new Error("closed"); this.got.push(m); }
}

const CHANNELS = ["btc", "market", "news", "fng"];
// Socket i subscribes to one or two channels, as real connects do.
const channelsOf = (i) => (i % 3 === 0 ? [CHANNELS[i % 4], CHANNELS[(i + 1) % 4]] : [CHANNELS[i % 4]]);
const pairs = (n) => Array.from({ length: n }, (_, i) => channelsOf(i).length).reduce((a, b) => a + b, 0);
// A fixed shuffle (closes come in any order, not the connect order).
function shuffled(n) {
  const order = Array.from({ length: n }, (_, i) => i);
  let seed = 12345;
  for (let i = n - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

// Connects n sockets, then closes them all in shuffled order; returns the work each half did.
function churn(n) {
  return counting(() => {
    const f = new Subscribers();
    const sockets = Array.from({ length: n }, (_, i) => new FakeSocket(i));
    work.ops = 0; work.iterated = 0;
    sockets.forEach((ws, i) => channelsOf(i).forEach((c) => f.add(c, `c${i}`, ws)));
    const connect = { ...work };
    work.ops = 0; work.iterated = 0;
    for (const i of shuffled(n)) channelsOf(i).forEach((c) => f.remove(c, `c${i}`));
    const close = { ...work };
    const left = CHANNELS.map((c) => f.count(c));
    return { connect, close, left, subs: f.subs.size };
  });
}

test("connects and closes of 32,768 sockets cost linear work and leave nothing behind", () => {
  const small = churn(4096);
  const t = process.hrtime.bigint();
  const big = churn(32768);
  const ms = Number(process.hrtime.bigint() - t) / 1e6; // printed only: counting maps included
  for (const r of [small, big]) {
    assert.deepEqual(r.left, [0, 0, 0, 0]);
    assert.equal(r.subs, 0, "empty channels are dropped");
    assert.equal(r.connect.iterated + r.close.iterated, 0, "no connect or close iterates subscribers");
  }
  // The work per (socket, channel) pair is the same at 4,096 and 32,768 sockets, and small.
  for (const half of ["connect", "close"]) {
    const per = (r, n) => r[half].ops / pairs(n);
    assert.ok(per(big, 32768) <= 2.01, `${half}: ${per(big, 32768)} ops per subscription`);
    assert.ok(Math.abs(per(big, 32768) - per(small, 4096)) < 0.01, JSON.stringify({ half, small, big }));
  }
  console.log(`32,768 sockets: ${big.connect.ops} ops to connect, ${big.close.ops} to close, ${ms.toFixed(1)} ms`);
});

test("a broadcast reaches exactly the current subscribers, once each", () => {
  const f = new Subscribers();
  const n = 32768;
  const sockets = Array.from({ length: n }, (_, i) => new FakeSocket(i));
  sockets.forEach((ws, i) => channelsOf(i).forEach((c) => f.add(c, `c${i}`, ws)));
  // Re-adding a held channel does not add a second entry.
  f.add("btc", "c0", sockets[0]);
  // Close every even socket; one odd socket's send fails.
  for (let i = 0; i < n; i += 2) channelsOf(i).forEach((c) => f.remove(c, `c${i}`));
  sockets[1].closed = true;
  const want = sockets.filter((_, i) => i % 2 === 1 && channelsOf(i).includes("market"));
  const [failed, reached, sent] = f.sendOne("market", "m1");
  assert.deepEqual(failed, want.includes(sockets[1]) ? [sockets[1]] : []);
  const ok = new Set(want.filter((ws) => !ws.closed));
  assert.deepEqual(reached, [ok.size]);
  assert.equal(sent, ok.size);
  for (const ws of sockets) assert.deepEqual(ws.got, ok.has(ws) ? ["m1"] : [], `socket ${ws.id}`);
});

test("several channels: one message per socket, shared by sockets of the same set", () => {
  const f = new Subscribers();
  const a = new FakeSocket("a"), b = new FakeSocket("b"), c = new FakeSocket("c");
  f.add("btc", "a", a);
  f.add("btc", "b", b); f.add("news", "b", b);
  f.add("news", "c", c);
  const [failed, reached, sent] = f.sendMany(["btc", "news"], ["B", "N"], ["b", "n"], "[", "]");
  assert.deepEqual(failed, []);
  assert.deepEqual(reached, [2, 2]);
  assert.equal(sent, 3);
  assert.deepEqual([a.got, b.got, c.got], [["B"], ["[b,n]"], ["N"]]);
  f.remove("btc", "b"); f.remove("news", "b");
  assert.equal(f.count("btc"), 1);
  assert.equal(f.count("news"), 1);
  f.remove("news", "c");
  assert.equal(f.count("news"), 0);
  assert.equal(f.subs.has("news"), false);
});

test("a private channel's subscriber past its expiry gets nothing and is reported, others go on", () => {
  const f = new Subscribers();
  const early = new FakeSocket("early"), late = new FakeSocket("late"), pub = new FakeSocket("pub");
  f.add("private-a", "early", early, 100);
  f.add("private-a", "late", late, 200);
  f.add("news", "early", early, -1);
  f.add("news", "pub", pub, -1);
  // A private subscriber with expiry 0 (no grant) is expired, never public.
  const none = new FakeSocket("none");
  f.add("private-a", "none", none, 0);
  // At 100 both are in time (expired means strictly past the expiry).
  let [failed, reached, sent, expired] = f.sendOne("private-a", "p1", 100);
  assert.deepEqual([failed, reached, sent, expired], [[], [2], 2, [none]]);
  f.remove("private-a", "none");
  [failed, reached, sent, expired] = f.sendOne("private-a", "p2", 101);
  assert.deepEqual([failed, reached, sent, expired], [[], [1], 1, [early]]);
  assert.deepEqual([early.got, late.got], [["p1"], ["p1", "p2"]]);
  // Public channels ignore expiries: the expired socket still gets news.
  [failed, reached, sent, expired] = f.sendOne("news", "n1", 500);
  assert.deepEqual([reached, expired], [[2], []]);
  // Several channels at once: the expired socket gets only its public part.
  [failed, reached, sent, expired] = f.sendMany(["private-a", "news"], ["P", "N"], ["p", "n"], "[", "]", 150);
  assert.deepEqual([reached, sent, expired], [[1, 2], 3, [early]]);
  assert.deepEqual([early.got.at(-1), late.got.at(-1), pub.got.at(-1)], ["N", "P", "N"]);
  // A refreshed grant (re-added with a later expiry) is sent to again; removing leaves nothing.
  f.add("private-a", "early", early, 300);
  [, reached, , expired] = f.sendOne("private-a", "p3", 250);
  assert.deepEqual([reached, expired], [[1], [late]]);
  f.remove("private-a", "early"); f.remove("private-a", "late");
  assert.equal(f.expiries.size, 0);
});

test("a conflated class's tick: one message for the class, fresh sockets their own count, then in step", () => {
  const s = new Subscribers();
  const [a, d, f1, f2, f3, plain] = [1, 2, 3, 4, 5, 6].map((i) => new FakeSocket(i));
  s.add("news", "p", plain, -1);
  s.addConflated("news", "news@1000", "a", a, -1, false, -1);
  s.addConflated("news", "news@1000", "d", d, -1, true, -1);
  s.addConflated("news", "news@1000", "f1", f1, -1, false, 7);
  s.addConflated("news", "news@1000", "f2", f2, -1, true, 7);
  s.addConflated("news", "news@1000", "f3", f3, -1, false, 10);
  assert.deepEqual(s.classesOf(["news", "btc"]), ["news@1000"]);
  assert.equal(s.total("news"), 6);
  const [failed, reached, built, expired, left] = s.tick("news@1000", "FULL", "DELTA", "{\"s\":", "}", 10, 0);
  assert.deepEqual([failed.length, reached, built, expired.length, left], [0, 4, 1, 0, 5]);
  assert.deepEqual([a.got, d.got, f1.got, f2.got, f3.got, plain.got], [["FULL"], ["DELTA"], ['{"s":2}'], ['{"s":2}'], [], []]);
  // Now all in step: delta sockets get the patch, full ones the update.
  s.tick("news@1000", "F2", "", "", "", 11, 0);
  assert.deepEqual([d.got.at(-1), f2.got.at(-1), f1.got.at(-1), f3.got.at(-1)], ["F2", "F2", "F2", "F2"]);
  s.tick("news@1000", "F3", "D3", "", "", 12, 0);
  assert.deepEqual([d.got.at(-1), f2.got.at(-1), f1.got.at(-1), a.got.at(-1)], ["D3", "D3", "F3", "F3"]);
  // Leaving: from wherever the socket sits; the class goes with its last socket.
  // (a close or unsubscribe removes the channel's own key, which finds the class too)
  for (const c of ["a", "f1"]) s.remove("news", c);
  for (const c of ["d", "f2"]) s.remove("news+delta", c);
  assert.equal(s.total("news"), 2);
  s.removeConflated("news", "f3");
  assert.deepEqual(s.classesOf(["news"]), []);
  assert.equal(s.tick("news@1000", "X", "", "", "", 13, 0)[4], 0);
});

test("a conflated private subscription past its expiry gets nothing, wherever it sits", () => {
  const s = new Subscribers();
  const [old, fresh, ok] = [1, 2, 3].map((i) => new FakeSocket(i));
  s.addConflated("private-x", "private-x@250", "old", old, 100, false, -1);
  s.addConflated("private-x", "private-x@250", "fresh", fresh, 100, false, 3);
  s.addConflated("private-x", "private-x@250", "ok", ok, 100, false, -1);
  s.reexpire("private-x", "ok", 500);
  const [, reached, , expired] = s.tick("private-x@250", "F", "", "{\"s\":", "}", 5, 200);
  assert.equal(reached, 1);
  assert.deepEqual(expired.map((w) => w.id).sort(), [1, 2]);
  assert.deepEqual([old.got, fresh.got, ok.got], [[], [], ["F"]]);
});

test("a fresh conflated socket holding a seq from before an epoch reset gets the full value, not a patch", () => {
  const s = new Subscribers();
  const [inStep, stale] = [1, 2].map((i) => new FakeSocket(i));
  s.addConflated("news", "news@1000", "i", inStep, -1, true, -1);
  s.addConflated("news", "news@1000", "old", stale, -1, true, 100); // held seq 100 of the old epoch
  s.tick("news@1000", "FULL", "DELTA", "{\"s\":", "}", 5, 0);
  assert.deepEqual([inStep.got, stale.got], [["DELTA"], ['{"s":0}']]);
  s.tick("news@1000", "F6", "D6", "", "", 6, 0);
  assert.deepEqual(stale.got.at(-1), "D6", "in step from there: it holds the tick's value");
});
