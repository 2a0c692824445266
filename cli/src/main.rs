//! The `tickwire` binary: the command line of the library (`lib.rs` has the module map). Empty
//! when built for wasm32, like the library.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    tickwire_cli::run()
}

#[cfg(target_arch = "wasm32")]
fn main() {}
