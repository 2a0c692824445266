// TypeScript declarations of tickwire-client.js (the package @tickwire/client): every export, option,
// callback, method, event, error code and server frame the library hands to an app. They follow the
// module by hand; tests/client-package/check.mjs type-checks a strict program against them and
// compares them with what the module exports at run time. Wire protocol v1: README.md.

// ---- Values and names

/** Any JSON value, as the server sends a channel's `data`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A JSON object. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** The built-in channels, filled by tickwire's own feeds. Any other valid name is an app channel. */
export type BuiltinChannel = "btc" | "market" | "sentiment" | "indicators";
/** Channels that need a token: `private-*` and `presence-*` (a presence channel is private too). */
export type PrivateChannel = `private-${string}` | `presence-${string}`;
/** The conflation intervals the server offers, in ms. */
export type EveryMs = 250 | 1000 | 5000 | 30000;

/** `idle` until the first `connect()`; `closed` after `close()`. */
export type Status = "idle" | "connecting" | "live" | "reconnecting" | "offline-polling" | "closed";

/** Codes of the server's `error` frames (`durable/src/wire/protocol.rs`, `ErrorCode`). */
export type ServerErrorCode =
  | "bad_json"
  | "unknown_op"
  | "invalid_channel"
  | "too_many_subscriptions"
  | "invalid_since"
  | "invalid_delta"
  | "invalid_every"
  | "rate_limited"
  | "unauthorized"
  | "forbidden"
  | "token_expired"
  | "payload_too_large"
  | "channel_reserved"
  | "too_many_channels"
  | "overloaded"
  | "unavailable";

/** Codes the library gives its own errors: `token_unavailable` (getToken failed or did not answer
 *  within connectTimeoutMs), `token_expired` (a private channel ended by expiry, being resumed),
 *  `not_connected` (a publish with no live socket), `disconnected` (the socket closed before a
 *  publish was answered: it may have been applied), `bad_answer` (a `published` frame without a seq). */
export type ClientErrorCode = "token_unavailable" | "token_expired" | "not_connected" | "disconnected" | "bad_answer";

// ---- Frames the server sends (wire protocol v1)

export interface WelcomeFrame {
  type: "welcome";
  /** This connection's id, 16 hex digits. */
  conn: string;
  protocol: 1;
  /** The built-in channels (app channels are not listed). */
  channels: BuiltinChannel[];
  stale_after_seconds: number;
}

export interface UpdateFrame {
  type: "update";
  channel: string;
  /** 1 for a channel's first update, +1 per update. */
  seq: number;
  /** When the value was observed, ms since the Unix epoch. */
  ts: number;
  stale: boolean;
  data: JsonValue;
  /** On a conflated frame only: the updates it stands for besides its own. */
  skipped?: number;
}

export interface DeltaFrame {
  type: "delta";
  channel: string;
  seq: number;
  ts: number;
  stale: boolean;
  /** An RFC 7386 merge patch against the value at `seq - 1 - (skipped ?? 0)`. */
  patch: JsonValue;
  skipped?: number;
}

/** Ends a channel's catch-up. */
export interface SubscribedFrame {
  type: "subscribed";
  channel: string;
  /** The channel's current seq, 0 if nothing yet. */
  seq: number;
  /** The channel's storage generation ("" before its first publish). */
  epoch: string;
  /** True: the updates before this frame are exactly what the client missed. */
  recovered: boolean;
}

export interface UnsubscribedFrame {
  type: "unsubscribed";
  channel: string;
  /** Present when the hub ended the subscription. */
  reason?: "token_expired" | "forbidden";
}

/** A token was accepted: whose (`sub`) and until when (`exp`, Unix seconds). */
export interface AuthedFrame {
  type: "authed";
  sub: string;
  exp: number;
}

export interface PublishedFrame {
  type: "published";
  channel: string;
  seq: number;
  id?: string;
}

export interface ErrorFrame {
  type: "error";
  code: ServerErrorCode;
  message: string;
  /** The refused `publish`'s id. */
  id?: string;
  /** The channel a refused `subscribe` or `publish` named. */
  channel?: string;
}

export interface BatchFrame {
  type: "batch";
  /** Handled in order, as if sent one by one. */
  frames: ServerFrame[];
}

/** A presence channel's member as lists show it: its token's `sub` and `info`. */
export interface MemberFrame {
  sub: string;
  info?: JsonObject;
}

/** A presence channel's member list, once per subscribe; `members` is left out past the server's bound. */
export interface PresenceFrame {
  type: "presence";
  channel: string;
  members?: MemberFrame[];
  count: number;
}

/** A member's first socket arrived (`sub` and `info` left out past the bound). */
export interface JoinFrame {
  type: "join";
  channel: string;
  sub?: string;
  info?: JsonObject;
  count: number;
}

/** A member's last socket went (`sub` left out past the bound). */
export interface LeaveFrame {
  type: "leave";
  channel: string;
  sub?: string;
  count: number;
}

export type ServerFrame =
  | WelcomeFrame
  | UpdateFrame
  | DeltaFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | AuthedFrame
  | PublishedFrame
  | ErrorFrame
  | BatchFrame
  | PresenceFrame
  | JoinFrame
  | LeaveFrame;
export type ServerFrameType = ServerFrame["type"];

// ---- What callbacks get

/** A channel's new value, always in full (a delta frame is applied before the app sees it). */
export type Update = SocketUpdate | PolledUpdate;
interface UpdateBase {
  channel: string;
  seq: number;
  epoch: string;
  ts: number;
  stale: boolean;
  data: JsonValue;
}
export interface SocketUpdate extends UpdateBase {
  source: "socket";
  /** Whether it arrived as a `delta` frame. */
  delta: boolean;
  /** How many updates a conflated frame skipped (0 otherwise). */
  skipped: number;
}
/** Read over HTTP: by polling (`pollMs`, `poll()`) while the socket is down (`/api/snapshot`,
 *  `/api/history`), and, while it is live, from `/api/history` when a `subscribed` frame counts
 *  updates the socket did not send (they are fetched before the socket's next ones are shown). */
export interface PolledUpdate extends UpdateBase {
  source: "poll";
  delta: false;
  skipped: 0;
}

/** A value whose stale flag changed, seen by a poll (`refreshMs`). */
export interface StaleChange {
  channel: string;
  seq: number;
  stale: boolean;
}

/** The server ended a channel: it is no longer followed. `reason`: a private channel was refused
 *  or no longer granted (not retried); none: the channel was deleted. */
export interface UnsubscribedInfo {
  byServer: true;
  reason?: "forbidden" | "unauthorized";
}

export interface Member {
  sub: string;
  info: JsonObject | null;
}

/** A presence channel's members after a `presence` list, a `join` or a `leave`; `listed: false`
 *  past the server's bound, when only `count` is known. */
export interface PresenceUpdate {
  members: Member[];
  count: number;
  listed: boolean;
  /** `sub`: the member who joined or left (undefined past the bound, and for a list). */
  change: { type: "presence"; sub: undefined } | { type: "join" | "leave"; sub: string | undefined };
}
/** The socket closed: the list is unknown until the next socket brings a fresh one. */
export interface PresenceReset {
  members: [];
  count: null;
  listed: false;
  change: { type: "reset" };
}
/** Told apart by `count`: null after a reset. */
export type PresenceChange = PresenceUpdate | PresenceReset;

/** An Error the library made, with a stable `code`. */
export interface TickwireError extends Error {
  code: ServerErrorCode | ClientErrorCode;
  channel?: string;
  id?: string;
  frame?: ErrorFrame | PublishedFrame;
}
/** How `publish()` rejects (besides a TypeError for a bad channel name or a value JSON cannot hold):
 *  the server's refusal, or `not_connected`, `disconnected`, `bad_answer`. */
export interface PublishError extends TickwireError {
  code: ServerErrorCode | "not_connected" | "disconnected" | "bad_answer";
  channel: string;
}
/** What `onError` gets from the library itself about tokens. */
export interface TokenError extends TickwireError {
  code: "token_unavailable" | "token_expired";
}

/** Every event, by name, with its listener. */
export interface ClientEvents {
  update: (update: Update) => void;
  status: (state: Exclude<Status, "idle">, previous: Status) => void;
  subscribed: (frame: SubscribedFrame) => void;
  unsubscribed: (channel: string, info: UnsubscribedInfo) => void;
  /** The server's `error` frames, the library's TokenErrors, and Errors it caught (a socket that
   *  could not be made or written, a frame that broke a handler, a failed history read). */
  error: (error: ErrorFrame | TokenError | Error) => void;
  stale: (change: StaleChange) => void;
  welcome: (frame: WelcomeFrame) => void;
  authed: (frame: AuthedFrame) => void;
  presence: (channel: string, presence: PresenceChange) => void;
}
export type ClientEvent = keyof ClientEvents;

// ---- Options

/** A handler the client installs on its socket; bivariant in its event, as the DOM's own are. */
type SocketHandler<E> = { handler(event: E): void }["handler"];

/** What the client needs of a WebSocket (the browser's fits). */
export interface WebSocketLike {
  onopen: SocketHandler<unknown> | null;
  onmessage: SocketHandler<{ data: unknown }> | null;
  onclose: SocketHandler<unknown> | null;
  onerror: SocketHandler<unknown> | null;
  send(data: string): void;
  close(code?: number): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** What the client needs of fetch's answer (the browser's Response fits). */
export interface ResponseLike {
  readonly status: number;
  readonly ok: boolean;
  json(): Promise<unknown>;
}
export type FetchFunction = (
  url: string,
  init: { cache: "no-store"; headers: Record<string, string> },
) => Promise<ResponseLike>;

export interface ClientOptions {
  /** Channels to follow (default none), checked like the server does: a bad name throws TypeError. */
  channels?: string | Iterable<string>;
  /** Connect with `?delta=merge` (smaller frames; callbacks still get full values). */
  delta?: boolean;
  /** Conflated delivery: a channel at most once per interval. */
  every?: Readonly<Record<string, EveryMs>>;
  /** HTTP polling period while the socket is down (15000; 0: no polling). */
  pollMs?: number;
  /** While live, re-read `/api/snapshot` this often for stale flags (0: never, the default). */
  refreshMs?: number;
  /** Keep-alive `ping` period (25000). */
  pingMs?: number;
  /** Nothing received this long after a ping: the socket is dead (10000). */
  pongTimeoutMs?: number;
  /** Reconnect attempt n waits random(0, min(backoffCapMs, backoffBaseMs * 2^n)) (500, 30000). */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** No `welcome` in this time: the attempt failed (10000). Also getToken's time limit. */
  connectTimeoutMs?: number;
  /** Replaces the global WebSocket (tests, runtimes without one). */
  WebSocket?: WebSocketConstructor | null;
  /** Replaces the global fetch. */
  fetch?: FetchFunction | null;
  /** A JWT for private channels and publishing; never refreshed (see setToken). */
  token?: string | null;
  /** Returns a fresh token; called at connect when needed and before the held one's exp. */
  getToken?: (() => string | Promise<string>) | null;
  onUpdate?: ClientEvents["update"];
  onStatus?: ClientEvents["status"];
  onSubscribed?: ClientEvents["subscribed"];
  onUnsubscribed?: ClientEvents["unsubscribed"];
  onError?: ClientEvents["error"];
  onStale?: ClientEvents["stale"];
  onWelcome?: ClientEvents["welcome"];
  onAuthed?: ClientEvents["authed"];
  onPresence?: ClientEvents["presence"];
}

// ---- The client

/** Where a channel stands: the last update seen. */
export interface Position {
  seq: number;
  epoch: string;
}
/** A resume position as `formatSince` and `socketUrl` read it. */
export interface SincePosition {
  seq: number;
  epoch?: string;
}
/** A presence channel's live member set (`sub` -> the token's `info`). */
export interface PresenceState {
  members: ReadonlyMap<string, JsonObject | null>;
  count: number;
  listed: boolean;
}
export interface Endpoints {
  /** The socket, e.g. `wss://host/prefix/ws`. */
  ws: string;
  /** The HTTP base, e.g. `https://host/prefix`. */
  http: string;
}
export interface ClientStats {
  connects: number;
  resyncs: number;
  deltas: number;
  polls: number;
}

export declare class TickwireClient {
  /** `url`: the service's base (http(s) or ws(s); a path is kept as a prefix; omitted in a page:
   *  the page's origin). Throws TypeError for a bad channel name or `every` interval. */
  constructor(url?: string | null, options?: ClientOptions);
  /** The options given, over the defaults. */
  readonly options: Readonly<ClientOptions>;
  readonly endpoints: Readonly<Endpoints>;
  /** The latest value (`data`) per channel. */
  readonly values: { readonly [channel: string]: JsonValue | undefined };
  /** The last update seen per channel. */
  readonly positions: { readonly [channel: string]: Readonly<Position> | undefined };
  readonly status: Status;
  readonly stats: Readonly<ClientStats>;
  /** The last connect URL (it never holds a token). */
  readonly lastUrl: string;
  /** Presence channels' member sets, while the socket that brought them is open. */
  readonly presence: { readonly [channel: string]: Readonly<PresenceState> | undefined };
  /** The channels followed. */
  get channels(): string[];
  /** Adds a listener; returns a function that removes it. Throws TypeError for an unknown event. */
  on<E extends ClientEvent>(event: E, listener: ClientEvents[E]): () => void;
  /** Opens (and keeps open) the socket. */
  connect(): this;
  /** Closes the socket and stops every timer; `connect()` starts again. */
  close(): void;
  /** Makes the next attempt now (no-op while a socket is open or the client is idle or closed). */
  reconnect(): void;
  subscribe(channels: string | Iterable<string>): void;
  unsubscribe(channels: string | Iterable<string>): void;
  /** Publishes a JSON value over the live socket; resolves to the seq the hub gave it, rejects
   *  with a PublishError (never queued, never re-sent). */
  publish(channel: string, data: JsonValue | object): Promise<number>;
  /** Replaces the token: sent as `auth` on the open socket. Throws TypeError for an empty one. */
  setToken(token: string): void;
  /** Sends `channel` at most once per `ms` (0 or null: every update); a live channel is
   *  resubscribed with `since`, so nothing is lost. Throws TypeError for another interval. */
  setEvery(channel: string, ms: EveryMs | 0 | null): void;
  /** Reads the followed channels over HTTP once; resolves to whether the server answered. */
  poll(): Promise<boolean>;
}

// ---- Helpers the client is built from

export declare const BUILTIN_CHANNELS: readonly ["btc", "market", "sentiment", "indicators"];
export declare const EVERY_MS: readonly [250, 1000, 5000, 30000];
/** RFC 7386: `patch` applied to `target`, as a new value (neither input changes). */
export declare function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue;
/** Full-jitter backoff: attempt n (0-based) waits random(0, min(capMs, baseMs * 2^n)) ms. */
export declare function backoffDelay(attempt: number, baseMs?: number, capMs?: number, random?: () => number): number;
export declare function isPrivateChannel(channel: unknown): channel is PrivateChannel;
/** The `exp` claim (Unix seconds) of a JWT, read without verifying it; null if unreadable. */
export declare function tokenExpiry(token: string): number | null;
/** When to refresh a token with `remainingMs` left, in ms (at least 1000). */
export declare function refreshDelay(remainingMs: number, random?: () => number): number;
/** The `since` URL form for `channels` with a known position: `a:12@epoch,b:0`. */
export declare function formatSince(
  positions: { readonly [channel: string]: SincePosition | undefined },
  channels: readonly string[],
): string;
/** The socket and HTTP bases of a service URL (`origin`: what a relative or missing one is against). */
export declare function endpoints(url?: string | null, origin?: string): Endpoints;
/** The connect URL: `<wsBase>?channels=a,b&since=...&delta=merge&every=a:1000`. */
export declare function socketUrl(
  wsBase: string,
  channels: readonly string[],
  positions: { readonly [channel: string]: SincePosition | undefined },
  delta: boolean,
  every?: { readonly [channel: string]: EveryMs | undefined },
): string;
/** The names as a list; throws TypeError for one the server would refuse. */
export declare function checkChannels(channels?: string | Iterable<string> | null): string[];

// Only the names exported above are the package's (UpdateBase and SocketHandler are not).
export {};
