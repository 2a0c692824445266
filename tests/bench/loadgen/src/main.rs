//! tickwire-loadgen: opens N WebSockets on one channel, publishes M updates over HTTP and prints
//! one JSON line of delivery, latency, CPU and memory results (scripts/bench runs it); or, with
//! `--mode soak`, holds them under churn for minutes and counts lost deliveries (scripts/soak);
//! or, with `--mode churn`, closes them all at once and times the server's close handling; or,
//! with `--mode storm`, drops them all at once and times their reconnect and catch-up.
//! A host tool: built for wasm32 (the workspace's Worker checks cover every member) it is empty.
#[cfg(not(target_arch = "wasm32"))]
mod churn;
#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod http;
#[cfg(not(target_arch = "wasm32"))]
mod procstat;
#[cfg(not(target_arch = "wasm32"))]
mod publish;
#[cfg(not(target_arch = "wasm32"))]
mod report;
#[cfg(not(target_arch = "wasm32"))]
mod resume;
#[cfg(not(target_arch = "wasm32"))]
mod soak;
#[cfg(not(target_arch = "wasm32"))]
mod sockets;
#[cfg(not(target_arch = "wasm32"))]
mod storm;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    cli::main();
}

#[cfg(target_arch = "wasm32")]
fn main() {}
