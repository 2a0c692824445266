//! What protects each upstream: a token bucket and `Retry-After` per provider (CoinGecko's
//! endpoints share one limit), and a circuit breaker per source. Pure state machines on
//! millisecond timestamps, persisted by the hub so they survive restarts and isolate changes.

use serde::{Deserialize, Serialize};

/// A token bucket holding up to `per_minute` tokens, refilled continuously at that rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TokenBucket {
    /// None until first used: a new bucket starts full.
    pub tokens: Option<f64>,
    pub updated_at: u64,
}

impl TokenBucket {
    pub fn try_take(&mut self, now: u64, per_minute: u32) -> bool {
        let cap = f64::from(per_minute.max(1));
        let elapsed = now.saturating_sub(self.updated_at) as f64;
        let tokens = self.tokens.map_or(cap, |t| (t + elapsed * cap / 60_000.0).min(cap));
        self.updated_at = now;
        if tokens >= 1.0 {
            self.tokens = Some(tokens - 1.0);
            true
        } else {
            self.tokens = Some(tokens);
            false
        }
    }
}

/// A provider's request budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProviderLimit {
    pub bucket: TokenBucket,
    /// No request before this time (ms), set by a 429's `Retry-After`.
    pub retry_after_until: Option<u64>,
}

/// How long to hold off after a 429 that gave no `Retry-After`.
pub const DEFAULT_RETRY_AFTER_SECONDS: u64 = 60;

impl ProviderLimit {
    /// Whether a request may go now; takes a token if so.
    pub fn admit(&mut self, now: u64, per_minute: u32) -> bool {
        if self.retry_after_until.is_some_and(|t| now < t) {
            return false;
        }
        self.bucket.try_take(now, per_minute)
    }

    pub fn too_many_requests(&mut self, now: u64, retry_after_seconds: Option<u64>) {
        let wait = retry_after_seconds.unwrap_or(DEFAULT_RETRY_AFTER_SECONDS).min(3_600);
        self.retry_after_until = Some(now + wait * 1000);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    #[default]
    Closed,
    Open,
    /// One probe request is allowed through; its result closes or re-opens the breaker.
    HalfOpen,
}

impl BreakerState {
    pub fn label(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The `tickwire_upstream_breaker_state` value.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

/// Breaker settings (`BREAKER_FAILURES`, `BREAKER_COOLDOWN_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failures: u32,
    pub cooldown_ms: u64,
    pub max_cooldown_ms: u64,
    /// A half-open probe whose result never came back frees the slot after this long.
    pub probe_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Breaker {
    pub state: BreakerState,
    pub failures: u32,
    /// While open: when the next probe may go (ms).
    pub open_until: u64,
    /// The cooldown of the current or last opening; doubles on each re-open.
    pub cooldown_ms: u64,
    pub probe_started: u64,
}

impl Breaker {
    /// Whether a request may go now. An open breaker whose cooldown has passed lets exactly one
    /// probe through (half-open).
    pub fn permit(&mut self, now: u64, cfg: &BreakerConfig) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open if now >= self.open_until => {
                self.state = BreakerState::HalfOpen;
                self.probe_started = now;
                true
            }
            BreakerState::Open => false,
            BreakerState::HalfOpen if now.saturating_sub(self.probe_started) >= cfg.probe_timeout_ms => {
                self.probe_started = now;
                true
            }
            BreakerState::HalfOpen => false,
        }
    }

    /// Records a request's result: a success closes the breaker; `failures` failures in a row
    /// (or a failed probe) open it, the cooldown doubling on each re-open up to the maximum.
    pub fn record(&mut self, now: u64, success: bool, cfg: &BreakerConfig) {
        if success {
            *self = Breaker::default();
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let reopen = self.state == BreakerState::HalfOpen;
        if reopen || self.failures >= cfg.failures {
            self.cooldown_ms = if reopen {
                (self.cooldown_ms.max(cfg.cooldown_ms) * 2).min(cfg.max_cooldown_ms)
            } else {
                cfg.cooldown_ms
            };
            self.state = BreakerState::Open;
            self.open_until = now + self.cooldown_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};

    const CFG: BreakerConfig =
        BreakerConfig { failures: 3, cooldown_ms: 60_000, max_cooldown_ms: 900_000, probe_timeout_ms: 30_000 };

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let clock = FakeClock::at(1_000_000);
        let mut b = TokenBucket::default();
        let taken = (0..40).filter(|_| b.try_take(clock.now_ms(), 30)).count();
        assert_eq!(taken, 30, "starts full: one minute's worth");
        assert!(!b.try_take(clock.now_ms(), 30));
        clock.advance(2_000); // 30/min = one token per 2 s
        assert!(b.try_take(clock.now_ms(), 30));
        assert!(!b.try_take(clock.now_ms(), 30));
        clock.advance(600_000);
        assert_eq!((0..40).filter(|_| b.try_take(clock.now_ms(), 30)).count(), 30, "refill is capped");
    }

    #[test]
    fn retry_after_blocks_the_provider() {
        let mut p = ProviderLimit::default();
        assert!(p.admit(0, 30));
        p.too_many_requests(1_000, Some(30));
        assert!(!p.admit(30_999, 30));
        assert!(p.admit(31_000, 30));
        p.too_many_requests(40_000, None);
        assert_eq!(p.retry_after_until, Some(40_000 + DEFAULT_RETRY_AFTER_SECONDS * 1000));
    }

    #[test]
    fn breaker_opens_half_opens_and_closes() {
        let clock = FakeClock::at(0);
        let mut b = Breaker::default();
        for _ in 0..2 {
            assert!(b.permit(clock.now_ms(), &CFG));
            b.record(clock.now_ms(), false, &CFG);
            assert_eq!(b.state, BreakerState::Closed);
        }
        b.record(clock.now_ms(), false, &CFG);
        assert_eq!((b.state, b.open_until), (BreakerState::Open, 60_000));
        clock.advance(59_999);
        assert!(!b.permit(clock.now_ms(), &CFG), "no request while open");
        clock.advance(1);
        assert!(b.permit(clock.now_ms(), &CFG), "cooldown over: one probe");
        assert_eq!(b.state, BreakerState::HalfOpen);
        assert!(!b.permit(clock.now_ms(), &CFG), "only one probe at a time");
        b.record(clock.now_ms(), true, &CFG);
        assert_eq!(b, Breaker::default());
    }

    #[test]
    fn failed_probes_double_the_cooldown_up_to_the_cap() {
        let clock = FakeClock::at(0);
        let mut b = Breaker::default();
        for _ in 0..3 {
            b.record(clock.now_ms(), false, &CFG);
        }
        let mut cooldowns = vec![b.cooldown_ms];
        for _ in 0..6 {
            clock.0.set(b.open_until);
            assert!(b.permit(clock.now_ms(), &CFG));
            b.record(clock.now_ms(), false, &CFG);
            assert_eq!(b.state, BreakerState::Open);
            cooldowns.push(b.cooldown_ms);
        }
        assert_eq!(cooldowns, [60_000, 120_000, 240_000, 480_000, 900_000, 900_000, 900_000]);
        // A success resets everything, including the cooldown.
        clock.0.set(b.open_until);
        b.permit(clock.now_ms(), &CFG);
        b.record(clock.now_ms(), true, &CFG);
        for _ in 0..3 {
            b.record(clock.now_ms(), false, &CFG);
        }
        assert_eq!(b.cooldown_ms, 60_000);
    }

    #[test]
    fn a_lost_probe_does_not_wedge_the_breaker() {
        let mut b = Breaker { state: BreakerState::HalfOpen, probe_started: 1_000, ..Breaker::default() };
        assert!(!b.permit(10_000, &CFG));
        assert!(b.permit(31_000, &CFG));
    }
}
