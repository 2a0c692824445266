// Every declaration of @tickwire/client pinned in full, each with an exact Equal<>, so a wrong
// field type, a field made optional or required, a readonly dropped or a method's signature changed
// fails `tsc --noEmit` (tests/client-package/check.mjs type-checks this file, and fails when an
// exported name is not on the left of some Equal here). The right-hand sides are written from the
// run time, not copied from tickwire-client.d.ts: what tickwire-client.js emits, reads and returns,
// and the frames the hub serialises (durable/src/wire/protocol.rs, presence.rs, every.rs for
// `skipped`, batch.rs). Type-checked only, never run.
import {
  BUILTIN_CHANNELS, EVERY_MS, TickwireClient, backoffDelay, checkChannels, endpoints, formatSince,
  isPrivateChannel, mergePatch, refreshDelay, socketUrl, tokenExpiry,
} from "@tickwire/client";
import type {
  AuthedFrame, BatchFrame, BuiltinChannel, ClientErrorCode, ClientEvent, ClientEvents, ClientOptions,
  ClientStats, DeltaFrame, Endpoints, ErrorFrame, EveryMs, FetchFunction, JoinFrame, JsonObject, JsonValue,
  LeaveFrame, Member, MemberFrame, PolledUpdate, Position, PresenceChange, PresenceFrame, PresenceReset,
  PresenceState, PresenceUpdate, PrivateChannel, PublishError, PublishedFrame, ResponseLike, ServerErrorCode,
  ServerFrame, ServerFrameType, SincePosition, SocketUpdate, StaleChange, Status, SubscribedFrame, TickwireError,
  TokenError, UnsubscribedFrame, UnsubscribedInfo, Update, UpdateFrame, WebSocketConstructor, WebSocketLike,
  WelcomeFrame,
} from "@tickwire/client";

/** True only when A and B are the same type (optionality and readonly included). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <T extends true>(): void => {};
/** A type's members as one object type (an interface's inherited ones, a class's methods and
 *  accessors as properties), modifiers kept: what Equal compares against a literal. */
type Flat<T> = { [K in keyof T]: T[K] };

// ---- Values and names (the module's constants, checkChannels, EVERY_MS)

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
same<Equal<JsonValue, Json>>();
same<Equal<JsonObject, { [key: string]: JsonValue }>>();
same<Equal<typeof BUILTIN_CHANNELS, readonly ["btc", "market", "sentiment", "indicators"]>>();
same<Equal<BuiltinChannel, "btc" | "market" | "sentiment" | "indicators">>();
same<Equal<typeof EVERY_MS, readonly [250, 1000, 5000, 30000]>>();
same<Equal<EveryMs, 250 | 1000 | 5000 | 30000>>();
same<Equal<PrivateChannel, `private-${string}` | `presence-${string}`>>(); // isPrivateChannel
// _setStatus's states; the constructor starts at idle.
same<Equal<Status, "idle" | "connecting" | "live" | "reconnecting" | "offline-polling" | "closed">>();
// protocol.rs ErrorCode::label (check.mjs also compares this union with protocol.rs).
same<Equal<ServerErrorCode,
  | "bad_json" | "unknown_op" | "invalid_channel" | "too_many_subscriptions" | "invalid_since" | "invalid_delta"
  | "invalid_every" | "rate_limited" | "unauthorized" | "forbidden" | "token_expired" | "payload_too_large"
  | "channel_reserved" | "too_many_channels" | "overloaded" | "unavailable">>();
// Every codedError(...) in the module.
same<Equal<ClientErrorCode, "token_unavailable" | "token_expired" | "not_connected" | "disconnected" | "bad_answer">>();

// ---- Frames, as protocol.rs serialises them (Option + skip_serializing_if: an optional field;
// #[serde(default)] alone, like Update.stale, is still always sent)

same<Equal<WelcomeFrame, { type: "welcome"; conn: string; protocol: 1; channels: BuiltinChannel[]; stale_after_seconds: number }>>();
// every.rs with_skipped appends `skipped` to a conflated update or delta.
same<Equal<UpdateFrame, { type: "update"; channel: string; seq: number; ts: number; stale: boolean; data: JsonValue; skipped?: number }>>();
same<Equal<DeltaFrame, { type: "delta"; channel: string; seq: number; ts: number; stale: boolean; patch: JsonValue; skipped?: number }>>();
same<Equal<SubscribedFrame, { type: "subscribed"; channel: string; seq: number; epoch: string; recovered: boolean }>>();
same<Equal<UnsubscribedFrame, { type: "unsubscribed"; channel: string; reason?: "token_expired" | "forbidden" }>>(); // EndReason
same<Equal<AuthedFrame, { type: "authed"; sub: string; exp: number }>>();
same<Equal<PublishedFrame, { type: "published"; channel: string; seq: number; id?: string }>>();
same<Equal<ErrorFrame, { type: "error"; code: ServerErrorCode; message: string; id?: string; channel?: string }>>();
same<Equal<BatchFrame, { type: "batch"; frames: ServerFrame[] }>>(); // batch.rs
// presence.rs: Member, PresenceFrame::{Presence, Join, Leave}.
same<Equal<MemberFrame, { sub: string; info?: JsonObject }>>();
same<Equal<PresenceFrame, { type: "presence"; channel: string; members?: MemberFrame[]; count: number }>>();
same<Equal<JoinFrame, { type: "join"; channel: string; sub?: string; info?: JsonObject; count: number }>>();
same<Equal<LeaveFrame, { type: "leave"; channel: string; sub?: string; count: number }>>();
same<Equal<ServerFrame,
  | WelcomeFrame | UpdateFrame | DeltaFrame | SubscribedFrame | UnsubscribedFrame | AuthedFrame | PublishedFrame
  | ErrorFrame | BatchFrame | PresenceFrame | JoinFrame | LeaveFrame>>();
same<Equal<ServerFrameType,
  "welcome" | "update" | "delta" | "subscribed" | "unsubscribed" | "authed" | "published" | "error" | "batch"
  | "presence" | "join" | "leave">>();

// ---- What the events carry (the module's _emit calls)

// _apply: {channel, seq, epoch, ts, stale, data, delta, source, skipped}; a poll's come from
// _snapshot and _history (source "poll", delta false, no skipped field to read: 0).
same<Equal<Flat<SocketUpdate>, {
  channel: string; seq: number; epoch: string; ts: number; stale: boolean; data: JsonValue;
  source: "socket"; delta: boolean; skipped: number;
}>>();
same<Equal<Flat<PolledUpdate>, {
  channel: string; seq: number; epoch: string; ts: number; stale: boolean; data: JsonValue;
  source: "poll"; delta: false; skipped: 0;
}>>();
same<Equal<Update, SocketUpdate | PolledUpdate>>();
same<Equal<StaleChange, { channel: string; seq: number; stale: boolean }>>(); // _snapshot
// _drop: {byServer: true} or {byServer: true, reason}, reason an EndReason or a refused subscribe's code.
same<Equal<UnsubscribedInfo, { byServer: true; reason?: "forbidden" | "unauthorized" }>>();
same<Equal<Member, { sub: string; info: JsonObject | null }>>(); // _presence: m.info ?? null
same<Equal<PresenceUpdate, {
  members: Member[]; count: number; listed: boolean;
  change: { type: "presence"; sub: undefined } | { type: "join" | "leave"; sub: string | undefined };
}>>();
same<Equal<PresenceReset, { members: []; count: null; listed: false; change: { type: "reset" } }>>(); // _closed
same<Equal<PresenceChange, PresenceUpdate | PresenceReset>>();
// codedError(code, message, {channel, id, frame}): an Error with those own fields.
type Fields = { channel?: string; id?: string; frame?: ErrorFrame | PublishedFrame };
same<Equal<Flat<TickwireError>, Flat<Error & Fields & { code: ServerErrorCode | ClientErrorCode }>>>();
// publish() rejects with the server's code (_error) or its own, always with the channel.
same<Equal<Flat<PublishError>, Flat<Error & Omit<Fields, "channel"> & {
  code: ServerErrorCode | "not_connected" | "disconnected" | "bad_answer"; channel: string;
}>>>();
same<Equal<Flat<TokenError>, Flat<Error & Fields & { code: "token_unavailable" | "token_expired" }>>>();
same<Equal<ClientEvents, {
  update: (update: Update) => void;
  status: (state: Exclude<Status, "idle">, previous: Status) => void;
  subscribed: (frame: SubscribedFrame) => void;
  unsubscribed: (channel: string, info: UnsubscribedInfo) => void;
  error: (error: ErrorFrame | TokenError | Error) => void;
  stale: (change: StaleChange) => void;
  welcome: (frame: WelcomeFrame) => void;
  authed: (frame: AuthedFrame) => void;
  presence: (channel: string, presence: PresenceChange) => void;
}>>();
same<Equal<ClientEvent, "update" | "status" | "subscribed" | "unsubscribed" | "error" | "stale" | "welcome" | "authed" | "presence">>();

// ---- Options (DEFAULTS, `every`, an on<Event> per event) and what the client needs of its host

same<Equal<ClientOptions, {
  channels?: string | Iterable<string>;
  delta?: boolean;
  every?: Readonly<Record<string, EveryMs>>;
  pollMs?: number;
  refreshMs?: number;
  pingMs?: number;
  pongTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  connectTimeoutMs?: number;
  WebSocket?: WebSocketConstructor | null;
  fetch?: FetchFunction | null;
  token?: string | null;
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
}>>();
// connect() sets on{open,message,close,error} and calls send(text) and close(code).
type Handler<E> = { handler(event: E): void }["handler"]; // bivariant, as the DOM's handlers are
same<Equal<WebSocketLike, {
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<unknown> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number): void;
}>>();
same<Equal<WebSocketConstructor, new (url: string) => WebSocketLike>>();
// _get: f(url, {cache: "no-store", headers}), then r.status, r.ok, r.json().
same<Equal<ResponseLike, { readonly status: number; readonly ok: boolean; json(): Promise<unknown> }>>();
same<Equal<FetchFunction, (url: string, init: { cache: "no-store"; headers: Record<string, string> }) => Promise<ResponseLike>>>();

// ---- The client: every property, accessor and method

same<Equal<Position, { seq: number; epoch: string }>>();
same<Equal<SincePosition, { seq: number; epoch?: string }>>(); // formatSince reads positions[c].epoch only if set
same<Equal<PresenceState, { members: ReadonlyMap<string, JsonObject | null>; count: number; listed: boolean }>>();
same<Equal<Endpoints, { ws: string; http: string }>>();
same<Equal<ClientStats, { connects: number; resyncs: number; deltas: number; polls: number }>>();
same<Equal<ConstructorParameters<typeof TickwireClient>, [url?: string | null | undefined, options?: ClientOptions | undefined]>>();
same<Equal<Flat<TickwireClient>, {
  readonly options: Readonly<ClientOptions>;
  readonly endpoints: Readonly<Endpoints>;
  readonly values: { readonly [channel: string]: JsonValue | undefined };
  readonly positions: { readonly [channel: string]: Readonly<Position> | undefined };
  readonly status: Status;
  readonly stats: Readonly<ClientStats>;
  readonly lastUrl: string;
  readonly presence: { readonly [channel: string]: Readonly<PresenceState> | undefined };
  readonly channels: string[]; // a getter
  on: <E extends ClientEvent>(event: E, listener: ClientEvents[E]) => () => void;
  connect: () => TickwireClient;
  close: () => void;
  reconnect: () => void;
  subscribe: (channels: string | Iterable<string>) => void;
  unsubscribe: (channels: string | Iterable<string>) => void;
  publish: (channel: string, data: JsonValue | object) => Promise<number>;
  setToken: (token: string) => void;
  setEvery: (channel: string, ms: EveryMs | 0 | null) => void;
  poll: () => Promise<boolean>;
}>>();
// The same methods one by one, so that tsc's message names the one that differs.
same<Equal<TickwireClient["connect"], () => TickwireClient>>();
same<Equal<TickwireClient["close"], () => void>>();
same<Equal<TickwireClient["reconnect"], () => void>>();
same<Equal<TickwireClient["subscribe"], (channels: string | Iterable<string>) => void>>();
same<Equal<TickwireClient["unsubscribe"], (channels: string | Iterable<string>) => void>>();
same<Equal<TickwireClient["publish"], (channel: string, data: JsonValue | object) => Promise<number>>>();
same<Equal<TickwireClient["setToken"], (token: string) => void>>();
same<Equal<TickwireClient["setEvery"], (channel: string, ms: EveryMs | 0 | null) => void>>();
same<Equal<TickwireClient["poll"], () => Promise<boolean>>>();

// ---- The helpers (their defaults: optional parameters)

same<Equal<typeof mergePatch, (target: JsonValue | undefined, patch: JsonValue) => JsonValue>>();
same<Equal<typeof backoffDelay, (attempt: number, baseMs?: number, capMs?: number, random?: () => number) => number>>();
same<Equal<typeof isPrivateChannel, (channel: unknown) => channel is PrivateChannel>>();
same<Equal<typeof tokenExpiry, (token: string) => number | null>>();
same<Equal<typeof refreshDelay, (remainingMs: number, random?: () => number) => number>>();
type Positions = { readonly [channel: string]: SincePosition | undefined };
same<Equal<typeof formatSince, (positions: Positions, channels: readonly string[]) => string>>();
same<Equal<typeof endpoints, (url?: string | null, origin?: string) => Endpoints>>();
same<Equal<typeof socketUrl, (
  wsBase: string, channels: readonly string[], positions: Positions, delta: boolean,
  every?: { readonly [channel: string]: EveryMs | undefined },
) => string>>();
same<Equal<typeof checkChannels, (channels?: string | Iterable<string> | null) => string[]>>();
