// A strict TypeScript app on the installed package @tickwire/client (tests/client-package/check.mjs
// copies it into a scratch project): it uses every export, option, callback, method, event and
// frame type, and lists misuse under @ts-expect-error, so an `any` or a declaration too loose fails
// `tsc --noEmit` (exact-types.ts pins each declared type in full). Node then runs it against the
// module: a stand-in socket plays the server, and each callback checks what it got.
import {
  BUILTIN_CHANNELS, EVERY_MS, TickwireClient, backoffDelay, checkChannels, endpoints, formatSince,
  isPrivateChannel, mergePatch, refreshDelay, socketUrl, tokenExpiry,
} from "@tickwire/client";
import type {
  AuthedFrame, BatchFrame, ClientEvent, ClientOptions, ClientStats, DeltaFrame, Endpoints, ErrorFrame,
  EveryMs, FetchFunction, JoinFrame, JsonObject, JsonValue, LeaveFrame, Member, MemberFrame, Position,
  PresenceChange, PresenceFrame, PresenceReset, PresenceUpdate, PrivateChannel, PublishError, PublishedFrame,
  ResponseLike, ServerErrorCode, ServerFrame, SincePosition, SocketUpdate, StaleChange, SubscribedFrame,
  TokenError, UnsubscribedFrame, UnsubscribedInfo, Update, UpdateFrame, WebSocketConstructor, WebSocketLike,
  WelcomeFrame,
} from "@tickwire/client";

// Every server error code, no more (a missing or extra key fails).
const serverCodes: Record<ServerErrorCode, true> = {
  bad_json: true, unknown_op: true, invalid_channel: true, too_many_subscriptions: true, invalid_since: true,
  invalid_delta: true, invalid_every: true, rate_limited: true, unauthorized: true, forbidden: true,
  token_expired: true, payload_too_large: true, channel_reserved: true, too_many_channels: true,
  overloaded: true, unavailable: true,
};

/** What a frame says, by type: the switch covers the union exactly (`never` at the end). */
function describe(frame: ServerFrame): string {
  switch (frame.type) {
    case "welcome": return `welcome ${frame.conn} v${frame.protocol} ${frame.channels.join(",")} ${frame.stale_after_seconds}`;
    case "update": return `update ${frame.channel}#${frame.seq} ${frame.ts} ${frame.stale} ${frame.skipped ?? 0}`;
    case "delta": return `delta ${frame.channel}#${frame.seq} ${JSON.stringify(frame.patch)}`;
    case "subscribed": return `subscribed ${frame.channel}#${frame.seq}@${frame.epoch} ${frame.recovered}`;
    case "unsubscribed": return `unsubscribed ${frame.channel} ${frame.reason ?? ""}`;
    case "authed": return `authed ${frame.sub} ${frame.exp}`;
    case "published": return `published ${frame.channel}#${frame.seq} ${frame.id ?? ""}`;
    case "error": return `error ${frame.code} ${frame.message} ${frame.channel ?? ""} ${frame.id ?? ""}`;
    case "batch": return frame.frames.map(describe).join("; ");
    case "presence": return `presence ${frame.channel} ${frame.count} ${(frame.members ?? []).map((m: MemberFrame) => m.sub)}`;
    case "join": return `join ${frame.channel} ${frame.sub ?? "?"} ${frame.count}`;
    case "leave": return `leave ${frame.channel} ${frame.sub ?? "?"} ${frame.count}`;
    default: {
      const none: never = frame;
      return none;
    }
  }
}

// ---- Misuse the declarations must refuse (never called: type-checked only)

export function misuse(tw: TickwireClient, frame: ServerFrame, update: Update, change: PresenceChange): void {
  // @ts-expect-error an option of the wrong type
  new TickwireClient("https://tw.example", { pollMs: "15000" });
  // @ts-expect-error an option that does not exist
  new TickwireClient("https://tw.example", { chanels: ["btc"] });
  // @ts-expect-error an interval the server does not offer
  new TickwireClient("https://tw.example", { every: { market: 2000 } });
  // @ts-expect-error a callback that takes the wrong argument
  new TickwireClient("https://tw.example", { onUpdate: (u: string) => u });
  // @ts-expect-error a status callback that expects a state never reported
  new TickwireClient("https://tw.example", { onStatus: (state: "idle") => state });
  // @ts-expect-error getToken returns a token, not an object
  new TickwireClient("https://tw.example", { getToken: async () => ({ token: "t" }) });
  // @ts-expect-error a listener wanting more arguments than the event has
  tw.on("update", (u: Update, extra: string) => [u, extra]);
  // @ts-expect-error an event that does not exist
  tw.on("updates", () => {});
  // @ts-expect-error the presence event's listener gets (channel, presence), not the frame
  tw.on("presence", (frame: PresenceFrame) => frame);
  // @ts-expect-error an interval the server does not offer
  tw.setEvery("btc", 2000);
  // @ts-expect-error publish needs a JSON value
  void tw.publish("orders", undefined);
  // @ts-expect-error publish resolves to the seq, a number
  void tw.publish("orders", 1).then((seq: string) => seq);
  // @ts-expect-error setToken takes the token itself
  tw.setToken({ token: "t" });
  // @ts-expect-error the status is the client's, not the app's
  tw.status = "live";
  // @ts-expect-error values are the client's
  tw.values["btc"] = 1;
  // @ts-expect-error a frame type the server never sends
  const tick: ServerFrame = { type: "tick", channel: "btc" };
  // @ts-expect-error a frame type the server never sends
  if (frame.type === "tick") return;
  // @ts-expect-error data is JSON, not any: narrow it before reading a member
  void update.data.price_usd;
  // @ts-expect-error a reset's count is null: narrow on it first
  void change.count.toFixed();
  // @ts-expect-error a code the server never sends
  const code: ServerErrorCode = "too_large";
  // @ts-expect-error not a private channel's name
  const open: PrivateChannel = "btc";
  // @ts-expect-error the error event also gets frames and plain Errors, which have no code
  tw.on("error", (e) => e.code);
  void [tick, code, open];
}

// ---- The module, driven by a stand-in server

// The console, without the DOM or Node's types (the nodenext check loads neither).
declare const console: { log(...data: unknown[]): void; error(...data: unknown[]): void };

let failures = 0;
function check(ok: boolean, what: string): void {
  if (!ok) {
    failures += 1;
    console.error(`not ok: ${what}`);
  }
}
const json = (x: unknown): string => JSON.stringify(x);

const sockets: FakeSocket[] = [];
class FakeSocket implements WebSocketLike {
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  sent: string[] = [];
  url: string;
  constructor(url: string) {
    this.url = url;
    sockets.push(this);
  }
  send(data: string): void {
    this.sent.push(data);
  }
  close(_code?: number): void {}
  receive(frame: ServerFrame): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  /** The last op this socket sent, parsed. */
  last(): JsonObject {
    const op: JsonValue = JSON.parse(this.sent[this.sent.length - 1] ?? "null");
    return typeof op === "object" && op !== null && !Array.isArray(op) ? op : {};
  }
}
const Socket: WebSocketConstructor = FakeSocket;

const snapshot = { channels: { btc: { seq: 6, stale: true, data: { p: 2 }, fetched_at: "2026-01-01T00:00:00Z" } } };
const fetched: string[] = [];
const answer: ResponseLike = { status: 200, ok: true, json: async () => snapshot };
const fakeFetch: FetchFunction = async (url, init) => {
  fetched.push(`${url} ${init.cache} ${init.headers["accept"] ?? ""}`);
  return answer;
};

// header {"alg":"HS256","typ":"JWT"}, claims {"sub":"me","exp":4102444800,"caps":["*"]}; not verified here.
const TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtZSIsImV4cCI6NDEwMjQ0NDgwMCwiY2FwcyI6WyIqIl19.c2ln";

const updates: Update[] = [];
const statuses: string[] = [];
const errors: (ErrorFrame | TokenError | Error)[] = [];
const presences: [string, PresenceChange][] = [];
const ended: [string, UnsubscribedInfo][] = [];
const stales: StaleChange[] = [];
const seen: { welcome?: WelcomeFrame; authed?: AuthedFrame; subscribed: SubscribedFrame[] } = { subscribed: [] };

const options: ClientOptions = {
  channels: ["btc", "orders", "presence-room", "private-feed"],
  delta: true,
  every: { orders: 1000 },
  pollMs: 0,
  refreshMs: 0,
  pingMs: 25000,
  pongTimeoutMs: 10000,
  backoffBaseMs: 500,
  backoffCapMs: 30000,
  connectTimeoutMs: 10000,
  WebSocket: Socket,
  fetch: fakeFetch,
  token: TOKEN,
  getToken: null,
  onUpdate: (u) => {
    updates.push(u);
    if (u.source === "socket") check(u.skipped >= 0 && typeof u.delta === "boolean", "a socket update's delta and skipped");
  },
  onStatus: (state, previous) => statuses.push(`${previous}>${state}`),
  onSubscribed: (frame) => seen.subscribed.push(frame),
  onUnsubscribed: (channel, info) => ended.push([channel, info]),
  onError: (e) => errors.push(e),
  onStale: (change) => stales.push(change),
  onWelcome: (frame) => (seen.welcome = frame),
  onAuthed: (frame) => (seen.authed = frame),
  onPresence: (channel, presence) => presences.push([channel, presence]),
};

const tw = new TickwireClient("https://tw.example/base", options);
check(tw.status === "idle" && json(tw.endpoints) === json({ ws: "wss://tw.example/base/ws", http: "https://tw.example/base" }), "a new client");
check(tw.connect() === tw, "connect() returns the client");
const ws = sockets[0];
if (!ws) throw new Error("connect() made no socket");
check(!ws.url.includes("presence-room") && !ws.url.includes(TOKEN) && ws.url.includes("every=orders%3A1000"), `the connect URL ${ws.url}`);
ws.onopen?.({});
check(json(ws.last()) === json({ op: "auth", token: TOKEN }), "auth goes first");

const welcome: WelcomeFrame = { type: "welcome", conn: "0000000000000001", protocol: 1, channels: [...BUILTIN_CHANNELS], stale_after_seconds: 180 };
const first: BatchFrame = {
  type: "batch",
  frames: [
    welcome,
    { type: "update", channel: "btc", seq: 5, ts: 1, stale: false, data: { p: 1 } },
    { type: "subscribed", channel: "btc", seq: 5, epoch: "e1", recovered: false },
    { type: "subscribed", channel: "orders", seq: 0, epoch: "", recovered: false },
  ],
};
ws.receive(first);
check(tw.status === "live" && seen.welcome?.conn === welcome.conn && seen.subscribed.length === 2, "live after the welcome");
const authed: AuthedFrame = { type: "authed", sub: "me", exp: 4102444800 };
ws.receive(authed);
check(seen.authed?.sub === "me", "onAuthed");
check(json(ws.last()) === json({ op: "subscribe", channels: ["presence-room", "private-feed"], since: {} }), "private channels after authed");

const list: PresenceFrame = { type: "presence", channel: "presence-room", members: [{ sub: "me", info: { name: "Me" } }], count: 1 };
const join: JoinFrame = { type: "join", channel: "presence-room", sub: "bob", info: { name: "Bob" }, count: 2 };
const leave: LeaveFrame = { type: "leave", channel: "presence-room", sub: "me", count: 1 };
for (const frame of [list, join, leave]) ws.receive(frame);
const room = tw.presence["presence-room"];
check(room !== undefined && room.count === 1 && room.listed && json([...room.members]) === json([["bob", { name: "Bob" }]]), "presence[channel]");
const last = presences[presences.length - 1]?.[1];
if (last && last.count !== null) {
  const change: PresenceUpdate = last; // a count: not a reset
  const members: Member[] = change.members;
  check(change.change.type === "leave" && change.change.sub === "me" && members.length === 1, "onPresence after a leave");
} else check(false, "onPresence after a leave");

const delta: DeltaFrame = { type: "delta", channel: "btc", seq: 6, ts: 2, stale: false, patch: { p: 2 } };
ws.receive(delta);
const conflated: UpdateFrame = { type: "update", channel: "orders", seq: 3, ts: 3, stale: false, data: [1, 2], skipped: 2 };
ws.receive(conflated);
const socketUpdates = updates.filter((u): u is SocketUpdate => u.source === "socket");
check(json(socketUpdates.map((u) => [u.channel, u.seq, u.delta, u.skipped, u.epoch])) === json([["btc", 5, false, 0, "e1"], ["btc", 6, true, 0, "e1"], ["orders", 3, false, 2, ""]]), "updates, a delta applied");
check(json(tw.values["btc"]) === json({ p: 2 }) && tw.positions["btc"]?.seq === 6, "values and positions");

const publishing = tw.publish("orders", { n: 1 });
const id = ws.last()["id"];
check(typeof id === "string", "a publish carries an id");
const published: PublishedFrame = { type: "published", channel: "orders", seq: 4, id: String(id) };
ws.receive(published);
const seq: number = await publishing;
check(seq === 4, "publish resolves to the seq");
const refused = tw.publish("btc", 1).then(() => null, (e: PublishError) => e);
const refusal: ErrorFrame = { type: "error", code: "channel_reserved", message: "built-in", id: String(ws.last()["id"]), channel: "btc" };
ws.receive(refusal);
const publishError = await refused;
check(publishError?.code === "channel_reserved" && publishError.channel === "btc", "a refused publish rejects with the server's code");

ws.receive({ type: "error", code: "invalid_every", message: "no such interval", channel: "orders" });
const frameError = errors.find((e): e is ErrorFrame => "type" in e);
check(frameError?.code === "invalid_every", "onError gets error frames");
const ending: UnsubscribedFrame = { type: "unsubscribed", channel: "private-feed", reason: "forbidden" };
ws.receive(ending);
check(json(ended) === json([["private-feed", { byServer: true, reason: "forbidden" }]]) && !tw.channels.includes("private-feed"), "onUnsubscribed");

check((await tw.poll()) && stales.length === 1 && stales[0]?.stale === true, "poll() reads stale flags");
check(fetched[0] === "https://tw.example/base/api/snapshot no-store application/json", `fetched ${fetched[0]}`);
tw.setEvery("btc", 5000);
check(json(ws.last()) === json({ op: "subscribe", channels: ["btc"], since: { btc: { seq: 6, epoch: "e1" } }, every_ms: 5000 }), "setEvery resubscribes");
tw.setEvery("btc", null);
tw.subscribe("news");
tw.unsubscribe(["news"]);
tw.setToken(TOKEN);
check(json(ws.last()) === json({ op: "auth", token: TOKEN }), "setToken sends auth");
tw.reconnect(); // a socket is open: nothing to do
check(sockets.length === 1 && tw.options.delta === true && tw.options.pollMs === 0, "reconnect() while live, options");
const off = tw.on("status", () => {});
off();

const pending = tw.publish("orders", 2).then(() => null, (e: PublishError) => e.code);
ws.onclose?.({});
check((await pending) === "disconnected", "a publish the socket closed on");
const reset = presences[presences.length - 1]?.[1];
if (reset && reset.count === null) {
  const cleared: PresenceReset = reset;
  check(cleared.count === null && !cleared.listed, "a closed socket resets the members");
} else check(false, "a closed socket resets the members");
tw.close();
const notConnected = await tw.publish("orders", 3).then(() => null, (e: PublishError) => e.code);
check(notConnected === "not_connected" && tw.status === "closed", "publish needs a live socket");
check(statuses.join(" ") === "idle>connecting connecting>live live>reconnecting reconnecting>closed", statuses.join(" "));
const stats: ClientStats = tw.stats;
check(stats.connects === 1 && stats.deltas === 1 && stats.polls === 1 && tw.lastUrl === ws.url, "stats and lastUrl");

// ---- The helpers

const throws = (f: () => unknown): boolean => {
  try {
    f();
    return false;
  } catch (e) {
    return e instanceof TypeError;
  }
};
check(throws(() => new TickwireClient("https://tw.example", { every: { market: Number("2000") as EveryMs } })), "a bad interval throws");
check(throws(() => tw.on("no-such" as ClientEvent, () => {})), "an unknown event throws");
check(json(mergePatch({ a: 1, b: { c: 2 } }, { b: { c: null }, d: [1] })) === json({ a: 1, b: {}, d: [1] }), "mergePatch");
check(backoffDelay(3, 500, 30000, () => 0.5) === 2000, "backoffDelay");
const name: string = "presence-room";
if (isPrivateChannel(name)) {
  const priv: PrivateChannel = name;
  check(priv === "presence-room", "isPrivateChannel narrows");
} else check(false, "isPrivateChannel");
check(tokenExpiry(TOKEN) === 4102444800 && tokenExpiry("nope") === null, "tokenExpiry");
const delay = refreshDelay(100000, () => 1);
check(Math.abs(delay - 70000) < 1e-6, `refreshDelay ${delay}`);
const since: Record<string, SincePosition> = { a: { seq: 12, epoch: "e" }, b: { seq: 0 } };
check(formatSince(since, ["a", "b", "c"]) === "a:12@e,b:0", "formatSince");
const ends: Endpoints = endpoints("ws://h:1/x/ws");
check(ends.http === "http://h:1/x", "endpoints");
const url = socketUrl(ends.ws, ["a", "b"], since, true, { b: 250 });
check(url === "ws://h:1/x/ws?channels=a%2Cb&since=a%3A12%40e%2Cb%3A0&delta=merge&every=b%3A250", url);
check(json(checkChannels("btc")) === json(["btc"]) && throws(() => checkChannels(["Bad!"])), "checkChannels");
check(EVERY_MS.every((ms) => Object.isFrozen(EVERY_MS) && ms > 0) && Object.keys(serverCodes).length === 16, "constants");
check(describe(first).startsWith("welcome 0000000000000001 v1"), "describe");

const unused: [Position | undefined, JsonObject, typeof answer] = [tw.positions["btc"], {}, answer];
void unused;
if (failures > 0) throw new Error(`${failures} checks failed`);
console.log("client package: the typed app ran against the installed module");
