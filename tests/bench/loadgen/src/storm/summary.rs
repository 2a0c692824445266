//! The storm's result from every socket's outcome: counts, verdicts and times.
use super::round;
use super::socket::Outcome;
use crate::cli::Args;
use crate::report::percentiles;
use crate::resume::Verdict;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The per-socket part of the result.
pub(super) fn summary(
    args: &Args,
    outcomes: &[Outcome],
    t0: Instant,
    wall: Duration,
    all_back: bool,
) -> serde_json::Value {
    let mut kinds = BTreeMap::<String, usize>::new();
    let mut reconnect_kinds = BTreeMap::<String, usize>::new();
    let mut positions = BTreeMap::<String, usize>::new();
    let (mut verdicts, mut sums) = (BTreeMap::<&str, usize>::new(), [0u64; 6]);
    let (mut back_us, mut handshakes, mut closed_early, mut closed_after) = (Vec::new(), 0, 0, 0);
    let (mut last_handshake, mut last_back) = (Duration::ZERO, Duration::ZERO);
    for o in outcomes {
        if let Some(e) = &o.connect_error {
            *kinds.entry(e.clone()).or_default() += 1;
            continue;
        }
        closed_early += usize::from(o.closed_early);
        closed_after += usize::from(o.closed_after);
        *positions.entry(o.position.since(&args.channel)).or_default() += 1;
        if let Some(e) = &o.reconnect_error {
            *reconnect_kinds.entry(e.clone()).or_default() += 1;
        }
        if let Some(h) = o.handshake_at {
            handshakes += 1;
            last_handshake = last_handshake.max(h - t0);
        }
        if let Some(b) = o.back_at {
            back_us.push((b - t0).as_micros().min(u32::MAX as u128) as u32);
            last_back = last_back.max(b - t0);
        }
        if let Some(r) = &o.resume {
            let v = match r.verdict() {
                Verdict::Exact => "exact",
                Verdict::NotRecovered => "not_recovered",
                Verdict::Inexact => "inexact",
                Verdict::Incomplete => "incomplete",
            };
            *verdicts.entry(v).or_default() += 1;
            for (s, x) in sums.iter_mut().zip([r.updates, r.duplicates, r.mismatches, r.missing, r.after, r.errors]) {
                *s += x;
            }
        }
    }
    let connected = outcomes.len() - kinds.values().sum::<usize>();
    let back = back_us.len();
    let seconds = if all_back && back == connected { last_back } else { wall };
    let resume = !args.reconnect_only;
    let count = |v: &str| resume.then(|| verdicts.get(v).copied().unwrap_or(0));
    json!({
        "label": args.label, "mode": "storm", "kind": if resume { "catchup" } else { "reconnect" },
        "sockets": args.sockets, "missed": args.publishes, "connected": connected,
        "connect_errors": kinds.values().sum::<usize>(), "connect_error_kinds": kinds,
        "closed_early": closed_early, "positions": positions,
        "reconnected": handshakes, "reconnect_errors": reconnect_kinds.values().sum::<usize>(),
        "reconnect_error_kinds": reconnect_kinds,
        "reconnect_seconds": round(last_handshake.as_secs_f64(), 3),
        "back": back, "timed_out": !all_back, "seconds": round(seconds.as_secs_f64(), 3),
        "back_ms": percentiles(&mut back_us),
        "exact": count("exact"), "not_recovered": count("not_recovered"), "inexact": count("inexact"),
        "incomplete": count("incomplete"), "updates": sums[0], "duplicates": sums[1], "mismatches": sums[2],
        "missing": sums[3], "after_subscribed": sums[4], "frame_errors": sums[5], "closed_after": closed_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resume::{Position, Resume};
    use std::collections::HashMap;

    fn args(extra: &str) -> Args {
        let line = format!("--url http://h:1 --token t --sockets 4 --mode storm --publishes 1 {extra}");
        crate::cli::parse_args(line.split_whitespace().map(String::from)).expect("args")
    }

    /// A socket that resumed from seq 1 to 2 and ended with `recovered`.
    fn resumed(t0: Instant, ms: u64, recovered: bool) -> Outcome {
        let at = Position { seq: 1, epoch: "e".into() };
        let mut r = Resume::new("bench", &at, 2);
        let marks = HashMap::from([(2, "n:1".to_string())]);
        r.on_text(
            &format!(
                r#"{{"type":"batch","frames":[{{"type":"update","channel":"bench","seq":2,"data":{{"bench":"n:1"}}}},
                {{"type":"subscribed","channel":"bench","seq":2,"epoch":"e","recovered":{recovered}}}]}}"#
            ),
            &marks,
        );
        let back = t0 + Duration::from_millis(ms);
        Outcome { position: at, handshake_at: Some(back), back_at: Some(back), resume: Some(r), ..Default::default() }
    }

    #[test]
    fn every_failure_is_counted_and_the_time_is_only_a_success_time_when_all_are_back() {
        let t0 = Instant::now();
        let wall = Duration::from_secs(5);
        let failed = Outcome { connect_error: Some("HTTP 429".into()), ..Default::default() };
        let lost = Outcome { reconnect_error: Some("handshake timeout".into()), ..Default::default() };
        let all = [failed, resumed(t0, 20, true), resumed(t0, 30, false), lost];
        let r = summary(&args(""), &all, t0, wall, true);
        assert_eq!(
            (r["connected"].clone(), r["connect_errors"].clone(), r["reconnect_errors"].clone()),
            (json!(3), json!(1), json!(1))
        );
        assert_eq!((r["exact"].clone(), r["not_recovered"].clone(), r["back"].clone()), (json!(1), json!(1), json!(2)));
        assert_eq!(r["seconds"], json!(5.0), "one socket never came back: the wall time, not the last back");

        let r = summary(&args(""), &[resumed(t0, 20, true), resumed(t0, 35, true)], t0, wall, true);
        assert_eq!(
            (r["exact"].clone(), r["seconds"].clone(), r["kind"].clone()),
            (json!(2), json!(0.035), json!("catchup"))
        );
        assert_eq!(r["positions"], json!({"bench:1@e": 2}));

        let back =
            Outcome { handshake_at: Some(t0), back_at: Some(t0 + Duration::from_millis(7)), ..Default::default() };
        let r = summary(&args("--reconnect-only"), &[back], t0, wall, true);
        assert_eq!(
            (r["exact"].clone(), r["seconds"].clone(), r["kind"].clone()),
            (json!(null), json!(0.007), json!("reconnect"))
        );
    }
}
