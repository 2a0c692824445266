// Broadcast benchmark: N WebSocket clients on an app channel, M publishes through the HTTP
// API; prints delivery throughput and publish-to-receive latency. Rerun with scripts/bench.
// Usage: node scripts/bench-broadcast.mjs BASE_URL TOKEN CLIENTS MESSAGES BYTES
import WebSocket from "ws";

const [base, token, clients, messages, bytes] = process.argv.slice(2);
const N = Number(clients), M = Number(messages), pad = "x".repeat(Number(bytes));
const wsBase = base.replace(/^http/, "ws");

async function publish(data) {
  const r = await fetch(base + "/api/publish", {
    method: "POST",
    headers: { authorization: "Bearer " + token, "content-type": "application/json" },
    body: JSON.stringify({ channel: "bench", data }),
  });
  if (r.status !== 202) throw new Error("publish: " + r.status + " " + (await r.text()));
  return (await r.json()).seq;
}

const firstSeq = (await publish({ warmup: true })) + 1; // the channel exists from here on
const sent = []; // message index -> time its publish was sent
const latencies = [];
let delivered = 0, done;
const finished = new Promise((r) => (done = r));

const sockets = [];
for (let i = 0; i < N; i++) {
  const ws = new WebSocket(wsBase + "/ws?channels=bench");
  await new Promise((res, rej) => { ws.once("open", res); ws.once("error", rej); });
  ws.on("message", (raw) => {
    const f = JSON.parse(raw);
    for (const u of f.type === "batch" ? f.frames : [f]) {
      if (u.type !== "update" || u.seq < firstSeq) continue;
      latencies.push(performance.now() - sent[u.data.i]);
      if (++delivered === N * M) done();
    }
  });
  sockets.push(ws);
}
await new Promise((r) => setTimeout(r, 500)); // let the catch-up frames pass

const start = performance.now();
for (let i = 0; i < M; i++) {
  // Recorded before sending: the update can reach a socket before the publish is answered.
  sent[i] = performance.now();
  await publish({ i, pad });
}
const timeout = setTimeout(() => done(), 60_000);
await finished;
clearTimeout(timeout);
const secs = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]?.toFixed(1);
console.log(JSON.stringify({
  clients: N, messages: M, payload_bytes: Number(bytes), delivered, expected: N * M,
  seconds: +secs.toFixed(2), deliveries_per_second: Math.round(delivered / secs),
  latency_ms: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: latencies.at(-1)?.toFixed(1) },
}));
for (const ws of sockets) ws.terminate();
