//! The processes behind a running `wrangler dev`, found in /proc: workerd's own port for the
//! Worker (without wrangler's proxy in front, which needs several descriptors per socket and
//! so cannot carry thousands of sockets under the open-file limit).

use super::{agent, Wrangler};
use std::collections::BTreeSet;

/// Every descendant of `pid` (children, their children, ...).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing paren.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let me = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == me).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

fn is_workerd(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "workerd")
}

/// The TCP ports `pid` listens on at 127.0.0.1: its socket inodes matched against the
/// listening sockets of /proc/<pid>/net/tcp.
fn listen_ports(pid: u32) -> Vec<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is "0100007F:1F90" (127.0.0.1:8080); st 0A is LISTEN.
            let (addr, port) = cols.get(1)?.split_once(':')?;
            (addr == "0100007F" && *cols.get(3)? == "0A" && inodes.contains(*cols.get(9)?))
                .then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

impl Wrangler {
    /// The PIDs of the workerd processes of this instance.
    pub fn workerd_pids(&self) -> Vec<u32> {
        self.pid().map(descendants).unwrap_or_default().into_iter().filter(|p| is_workerd(*p)).collect()
    }

    /// workerd's own port for the Worker: the one, other than wrangler's, whose `/health`
    /// answers as tickwire's does.
    pub fn direct_port(&self) -> u16 {
        for pid in self.workerd_pids() {
            for port in listen_ports(pid).into_iter().filter(|p| *p != self.port) {
                let url = format!("http://127.0.0.1:{port}/health");
                if let Ok(mut r) = agent().get(&url).call() {
                    if r.body_mut().read_to_string().is_ok_and(|b| b.contains("\"status\"")) {
                        return port;
                    }
                }
            }
        }
        panic!("no workerd port of this instance answers /health like tickwire:\n{}", self.log());
    }
}
