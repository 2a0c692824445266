//! CPU time and resident memory of processes from /proc: the server (with its descendants), the
//! dev proxy, and this client.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

/// Clock ticks per second of /proc/PID/stat times.
fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

pub fn ticks_to_secs(ticks: u64) -> f64 {
    ticks as f64 / clk_tck()
}

/// (ppid, utime + stime) from a /proc/PID/stat text.
fn parse_stat(stat: &str) -> Option<(i32, u64)> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let f: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    Some((f.get(1)?.parse().ok()?, f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?))
}

fn stat(pid: &str) -> Option<(i32, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

pub fn self_ticks() -> u64 {
    stat("self").map_or(0, |s| s.1)
}

/// The given processes and all their descendants (those alive now).
pub fn with_descendants(roots: &[i32]) -> Vec<i32> {
    if roots.is_empty() {
        return Vec::new();
    }
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if let Some((ppid, _)) = stat(&pid.to_string()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = roots.to_vec();
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c.iter().filter(|p| !roots.contains(p)));
        }
        i += 1;
    }
    out
}

fn ticks_sum(pids: &[i32]) -> u64 {
    pids.iter().filter_map(|p| stat(&p.to_string())).map(|s| s.1).sum()
}

pub fn rss_kb_sum(pids: &[i32]) -> u64 {
    let rss = |pid: &i32| -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
    };
    pids.iter().filter_map(rss).sum()
}

/// Open file descriptors of some processes, summed: a leak shows here before the open-file limit
/// makes the server refuse connections.
pub fn fds_sum(pids: &[i32]) -> u64 {
    pids.iter().filter_map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok()).map(|d| d.count() as u64).sum()
}

/// CPU seconds and percent of one core of some processes over a window.
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    pub secs: f64,
    pub pct: f64,
}

pub struct CpuWindow {
    pids: Vec<i32>,
    start: u64,
}

impl CpuWindow {
    /// Starts measuring `roots` (with descendants when asked); None when there are no roots.
    pub fn start(roots: &[i32], descendants: bool) -> Option<CpuWindow> {
        if roots.is_empty() {
            return None;
        }
        let pids = if descendants { with_descendants(roots) } else { roots.to_vec() };
        Some(CpuWindow { start: ticks_sum(&pids), pids })
    }
}

pub trait FinishCpu {
    fn finish(self, wall: Duration) -> Option<Cpu>;
}

impl FinishCpu for Option<CpuWindow> {
    fn finish(self, wall: Duration) -> Option<Cpu> {
        let w = self?;
        let secs = ticks_to_secs(ticks_sum(&w.pids).saturating_sub(w.start));
        Some(Cpu { secs, pct: 100.0 * secs / wall.as_secs_f64().max(1e-9) })
    }
}

/// Samples the summed VmRSS of the server processes every 200 ms on its own thread.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kb: Arc<AtomicU64>,
}

impl RssSampler {
    pub fn start(roots: Vec<i32>) -> Self {
        let (stop, peak_kb) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        if !roots.is_empty() {
            let (stop, peak_kb) = (stop.clone(), peak_kb.clone());
            std::thread::spawn(move || {
                let mut pids = Vec::new();
                for i in 0u64.. {
                    if stop.load(Acquire) {
                        break;
                    }
                    if i % 10 == 0 {
                        pids = with_descendants(&roots); // new children are rare: rescan every 2 s
                    }
                    peak_kb.fetch_max(rss_kb_sum(&pids), AcqRel);
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
        RssSampler { stop, peak_kb }
    }

    /// Stops sampling; the peak in kB.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Release);
        self.peak_kb.load(Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let s = "42 (wo rk) d) S 7 42 42 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 3 0 100 1000 50";
        assert_eq!(parse_stat(s), Some((7, 175)));
        assert!(self_ticks() < u64::MAX && !with_descendants(&[std::process::id() as i32]).is_empty());
    }
}
