//! End-to-end tests against a real `wrangler dev` with a fixture upstream.
//! Run through `scripts/test` (it builds the Worker first); `cargo test --features e2e --test e2e`.

mod abuse;
mod api;
mod app_channels;
mod channel_list;
mod churn;
mod cli;
mod client_library;
mod conflation;
mod dashboard;
mod deltas;
mod fast_stream;
mod faults;
mod feeds;
mod feeds_timing;
mod frames;
mod group_commit;
mod harness;
mod hub;
mod live_path;
mod logs;
mod metrics;
mod monitoring;
mod presence;
mod private_channels;
mod replays;
mod shard_load;
mod watch_flap;
