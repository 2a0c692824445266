//! tickwire's Durable Objects and the wire protocol they speak, linked into the Worker's wasm.
//!
//! Module map. Plain Rust, compiled and unit-tested on the host:
//! - the wire protocol: `protocol` (frames, channel names, seqs), `session` (one socket's
//!   attachment, limits and close reasons), `channel` (one channel's sequence and history),
//!   `merge_patch` (the `delta` frames' RFC 7386 patches);
//! - the hub's state machine: `hub_core` (with `catchup`, `counters`, `feeds` and `sync`), `commit`
//!   (group commit), `catchup_cache` (catch-ups shared between sockets), `publish` (an app
//!   publish's checks), `history_budget`, `replica_backoff`, `replica_sync` (when a replica
//!   vouches for its state and heals), `upkeep` (what the alarm does), `storage_key` (the
//!   storage schema), `stats` (what `/stats` reports);
//! - `frame_size` (a client frame judged by its size before it is copied into wasm memory) and
//!   `btc_watch` (a replica's debounced `btc` watching, which spares the sequencer writes);
//! - the internal API between the Worker and the shards: `hub_api` (binding, shard names,
//!   routes, bodies), `route` (client routes forwarded unchanged, URL splitting);
//! - the feeds: `feeds` (each upstream's parsing), `feed_round` (what a round fetches), `guard`
//!   (rate limits and breakers), `upstream_status`, `rsi`, `kv` (the KV mirror);
//! - `settings` (typed wrangler vars) and `clock` (the one clock seam).
//!
//! Workers glue, wasm32 only: `hub` (the Durable Object: `object` is the class the runtime
//! calls, `mod.rs` its router, then `socket`, `commit` (writes and fan-out), `channels`,
//! `feeds`, `alarm`), `hub_stub` (reaching a shard), `fanout` (the JS send loop), `body`
//! (capped body reads), `upstream` (HTTP to upstream APIs).

pub mod btc_watch;
pub mod catchup_cache;
pub mod channel;
pub mod clock;
pub mod commit;
pub mod feed_round;
pub mod feeds;
pub mod frame_size;
pub mod guard;
pub mod history_budget;
pub mod hub_api;
pub mod hub_core;
pub mod kv;
pub mod merge_patch;
pub mod protocol;
pub mod publish;
pub mod replica_backoff;
pub mod replica_sync;
pub mod route;
pub mod rsi;
pub mod session;
pub mod settings;
pub mod stats;
pub mod storage_key;
pub mod upkeep;
pub mod upstream_status;

#[cfg(target_arch = "wasm32")]
pub mod body;
#[cfg(target_arch = "wasm32")]
mod fanout;
#[cfg(target_arch = "wasm32")]
mod hub;
#[cfg(target_arch = "wasm32")]
pub mod hub_stub;
#[cfg(target_arch = "wasm32")]
mod upstream;
#[cfg(target_arch = "wasm32")]
pub use hub::object::HubObject;
