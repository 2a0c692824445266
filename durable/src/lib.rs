//! tickwire's Durable Objects and the wire protocol they speak, linked into the Worker's wasm.
//!
//! The modules compiled on every target are plain Rust, tested on the host; the wasm32-only
//! ones (`body`, `hub_object`, `hub`, `hub_alarm`, `hub_channels`,
//! `hub_commit`, `hub_socket`, `hub_feeds`, `fanout`, `upstream`) are the thin Durable Object
//! shell around [`hub_core::HubCore`] and its adapters to the Workers API.

pub mod channel;
pub mod clock;
pub mod commit;
pub mod feed_round;
pub mod feeds;
pub mod guard;
pub mod history_budget;
pub mod hub_core;
pub mod internal;
pub mod kv;
pub mod protocol;
pub mod publish;
pub mod replica_backoff;
pub mod route;
pub mod rsi;
pub mod session;
pub mod settings;
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
mod hub_alarm;
#[cfg(target_arch = "wasm32")]
mod hub_channels;
#[cfg(target_arch = "wasm32")]
mod hub_commit;
#[cfg(target_arch = "wasm32")]
mod hub_feeds;
#[cfg(target_arch = "wasm32")]
mod hub_object;
#[cfg(target_arch = "wasm32")]
mod hub_socket;
#[cfg(target_arch = "wasm32")]
mod upstream;
#[cfg(target_arch = "wasm32")]
pub use hub_object::HubObject;
