//! The cron job: asks hub shard 0 to run one refresh round (it owns the feeds' rate limits and
//! breakers, so their state lives in one place and survives restarts) and logs what happened.
//! It never panics and never fails the trigger: a failed round is logged and the next tick
//! tries again.

use crate::hub_client;
use worker::*;

pub async fn run(env: &Env) {
    // The hub would run on defaults; an operator who set a var wrongly wants it fixed, not
    // silently ignored.
    if let Err(e) = crate::bindings::settings(env) {
        console_error!("cron: {e}; skipping this round");
        return;
    }
    match hub_client::refresh(env).await {
        Ok(report) => {
            let published: Vec<String> = report.published.iter().map(|(c, s)| format!("{c}#{s}")).collect();
            let skipped: Vec<String> = report.skipped.iter().map(|(s, o)| format!("{s}:{}", o.label())).collect();
            console_log!(
                "cron: fetched {} source(s); published [{}]; skipped [{}]",
                report.fetched.len(),
                published.join(" "),
                skipped.join(" ")
            );
        }
        Err(e) => console_error!("cron: refresh round failed: {}", e.detail().unwrap_or(e.code())),
    }
}
