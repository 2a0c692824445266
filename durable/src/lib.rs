//! tickwire's Durable Objects and the wire protocol they speak, linked into the Worker's wasm.
//!
//! Module map: one folder per layer, and a folder uses only those listed before it
//! (`tests/structure.py` checks it: `LAYERS`, and no cycle between files).
//! - `clock` (the one clock seam), `settings` (typed wrangler vars, the hub's limits) and `log`
//!   (one log line as one JSON object, for the Worker and the hub);
//! - `wire/`, what clients decode: `protocol` (the server's frames, channel names, seqs),
//!   `client_op` (the client's frames, decoded), `batch` (a `batch` frame from frames already
//!   serialised), `merge_patch` (the `delta` frames' RFC 7386 patches), `every` (conflated
//!   delivery's intervals and `skipped` count), `presence` (presence frames and members),
//!   `frame_size` (a client frame judged by its size before it is copied into wasm memory),
//!   `values` (the built-in channels' values), `bodies` (JSON answers and what shards exchange)
//!   and `error_body` (the API's JSON error body);
//! - `auth/`, tokens: `jwt` (HS256 compact JWS, verified in constant time), `claims` (`sub`,
//!   the time window with its leeway, `info`), `caps` (what a token grants on which channels)
//!   and `access` (who may do what with a channel: a token's grant against its class);
//! - `feeds/`, the upstreams: each one's parser (`alternative_me`, `coingecko`, the shared
//!   checks in `mod.rs`), `settings` (the feeds' vars), `round` (what a round fetches), `guard`
//!   (rate limits and breakers), `status` (what tickwire knows about its upstreams), `rsi`,
//!   `kv` (the KV mirror), and wasm32 only `upstream` (HTTP to upstream APIs);
//! - `core/`, the hub's state machine, plain Rust: `mod.rs` (`HubCore`, with `catchup`,
//!   `counters`, `feeds`, `read` and `sync`); a socket: `socket` (its attachment, limits and
//!   frames), `close` (how a connection ends), `grant` (its token: the `auth` op, expiry);
//!   channels: `channel` (one channel's sequence and history), `commit` (the group-commit
//!   queue), `publish` (an app publish's checks), `catchup_cache` (catch-ups shared between
//!   sockets), `history_budget`; conflated delivery: `conflation` (a socket's intervals and the
//!   core's side of the classes) and `classes` (what a tick sends); presence: `presence` (one
//!   shard's members), `presence_table` (shard 0's global table), `presence_mirror` (a shard's
//!   copy of the list), `presence_state` (the three together); shards: `replica_backoff`,
//!   `replica_sync` (when a replica vouches for its state and heals), `btc_watch` (a replica's
//!   debounced `btc` watching); and `upkeep` (what the alarm does), `storage_key` (the storage
//!   schema), `stats` (what `/stats` reports);
//! - `api/`, the internal API between the Worker and the shards: `mod.rs` (binding, shard
//!   names, routes, the bodies only they use, refusals), `route` (client routes forwarded
//!   unchanged, URL splitting), and wasm32 only `stub` (reaching a shard) and `body` (capped
//!   body reads);
//! - `hub/`, the Durable Object, Workers glue, wasm32 only: `object` (the class the runtime
//!   calls), `mod.rs` (the struct), `load` (loading it), `router`, a file per route: `publish`,
//!   `connect`, `socket` (a socket's frames and close), `delete` (deleting an app channel),
//!   `apply` (a replica's `/apply`), `read` (`/snapshot`, `/history` and history reads), `feeds`
//!   (rounds and the KV mirror), `upkeep` (the alarm), `heal` (a replica's pull from shard 0),
//!   `presence` and `presence_sync` (members, and the table's reports and events between
//!   shards), `conflation` (placing a socket in its class, and the classes' ticks); then
//!   `write` (the write path: an event's writes, group commit's flush, fan-out to the other
//!   shards), `answer` (HTTP answers) and `broadcast` (the subscriber index and send loop in
//!   `js/broadcast.js`).
//!
//! Words: "broadcast" is sending to this object's sockets, "fan-out" is replicating to the
//! other shards, "commit" is the group-commit queue, "write path" is `hub/write.rs`.

pub mod api;
pub mod auth;
pub mod clock;
pub mod core;
pub mod feeds;
pub mod log;
pub mod settings;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod hub;
#[cfg(target_arch = "wasm32")]
pub use hub::object::HubObject;
