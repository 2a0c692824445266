//! The cron job: asks hub shard 0 to run one refresh round (it owns the feeds' rate limits and
//! breakers, so their state lives in one place and survives restarts) and logs what happened.
//! It never panics and never fails the trigger: a failed round is logged and the next tick
//! tries again.

use crate::hub_client;
use tickwire_hub::log::{self, Event, Level};
use worker::*;

pub async fn run(env: &Env) {
    // The hub would run on defaults; an operator who set a var wrongly wants it fixed, not
    // silently ignored.
    if let Err(e) = crate::bindings::settings(env) {
        log::worker(Level::Error, Event::CronFailed)
            .kind("settings")
            .detail(format_args!("{e}; skipping this round"))
            .emit();
        return;
    }
    match hub_client::refresh(env).await {
        Ok(report) => {
            let published: Vec<String> = report.published.iter().map(|(c, s)| format!("{c}#{s}")).collect();
            let skipped: Vec<String> = report.skipped.iter().map(|(s, o)| format!("{s}:{}", o.label())).collect();
            log::worker(Level::Info, Event::CronRound)
                .detail(format_args!(
                    "fetched {} source(s); published [{}]; skipped [{}]",
                    report.fetched.len(),
                    published.join(" "),
                    skipped.join(" ")
                ))
                .emit();
        }
        Err(e) => log::worker(Level::Error, Event::CronFailed)
            .kind(e.code())
            .detail(format_args!("refresh round failed: {}", e.detail().unwrap_or(e.code())))
            .emit(),
    }
}
