//! The one clock seam: wall-clock milliseconds from `worker::Date` on wasm, a settable fake in tests.
//!
//! `std::time::Instant`/`SystemTime` panic on wasm32-unknown-unknown, so nothing else reads time:
//! the pure modules take `now` as an argument, and the glue passes them [`now_ms`].

/// Milliseconds since the Unix epoch.
pub trait Clock {
    fn now_ms(&self) -> u64;
}

/// The runtime's clock (Workers freeze it during a request; that is fine for ages and timestamps).
#[cfg(target_arch = "wasm32")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(target_arch = "wasm32")]
impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        worker::Date::now().as_millis()
    }
}

/// Now on the runtime's clock: what the Durable Object glue hands the core as `now`.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> u64 {
    SystemClock.now_ms()
}

/// A clock tests set by hand.
#[derive(Debug, Default)]
pub struct FakeClock(pub std::cell::Cell<u64>);

impl FakeClock {
    pub fn at(ms: u64) -> Self {
        FakeClock(std::cell::Cell::new(ms))
    }
    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}
