//! tickwire's Durable Objects and the wire protocol they speak, linked into the Worker's wasm.
//!
//! Everything but `hub` is plain Rust, tested on the host; `hub` is the thin Durable Object
//! shell around [`hub_core::HubCore`] and exists only on wasm32.

pub mod channel;
pub mod clock;
pub mod feed_round;
pub mod feeds;
pub mod guard;
pub mod hub_core;
pub mod index;
pub mod internal;
pub mod kv;
pub mod protocol;
pub mod rsi;
pub mod session;
pub mod settings;

#[cfg(target_arch = "wasm32")]
mod hub;
#[cfg(target_arch = "wasm32")]
mod hub_feeds;
#[cfg(target_arch = "wasm32")]
mod upstream;
#[cfg(target_arch = "wasm32")]
pub use hub::Hub;
