//! Where this machine's CPU went during a measured window, from /proc: how busy all cores
//! were, and the share of the processes of a run (its PostgreSQL cluster, its servers, this
//! tool, pgbench); the rest is "other" (other work on a shared machine, the kernel's).
//! Says whether CPU is what bounds a figure.

use std::collections::HashMap;
use std::time::Duration;

/// A process as /proc/<pid>/stat shows it.
pub struct Proc<'a> {
    pub pid: u32,
    pub ppid: u32,
    pub comm: &'a str,
}

/// A group of processes reported together: a label, and which processes belong to it.
pub type Group = (&'static str, Box<dyn Fn(&Proc) -> bool + Send + Sync>);

/// The usual groups: the PostgreSQL cluster whose postmaster is `postmaster` (it and its
/// children), the `servers` (by pid), this tool, and the pgbench it runs.
pub fn groups(postmaster: Option<u32>, servers: Vec<u32>) -> Vec<Group> {
    let me = std::process::id();
    vec![
        (
            "postgres",
            Box::new(move |p: &Proc| postmaster.is_some_and(|m| p.pid == m || p.ppid == m)),
        ),
        (
            "servers",
            Box::new(move |p: &Proc| servers.contains(&p.pid)),
        ),
        ("load tool", Box::new(move |p: &Proc| p.pid == me)),
        (
            "pgbench",
            Box::new(move |p: &Proc| p.ppid == me && p.comm == "pgbench"),
        ),
    ]
}

/// CPU use over a window, each figure a fraction of all the machine's cores.
pub struct Usage {
    pub busy: f64,
    pub cores: usize,
    /// (group, fraction), for the groups that used any.
    pub groups: Vec<(&'static str, f64)>,
}

impl Usage {
    /// "96% of 2 cores: postgres 41%, servers 30%, load tool 24%, other 1%".
    pub fn describe(&self) -> String {
        let other = self.busy - self.groups.iter().map(|(_, f)| f).sum::<f64>();
        let groups = self
            .groups
            .iter()
            .copied()
            .chain(std::iter::once(("other", other.max(0.0))))
            .map(|(g, f)| format!("{g} {:.0}%", f * 100.0))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{:.0}% of {} cores: {groups}",
            self.busy * 100.0,
            self.cores
        )
    }
}

struct Snapshot {
    busy: u64,
    total: u64,
    /// (pid, group index) -> user + system ticks.
    procs: HashMap<(u32, usize), u64>,
}

fn snapshot(groups: &[Group]) -> Option<Snapshot> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    if cpu.len() < 8 {
        return None;
    }
    // user nice system idle iowait irq softirq steal
    let total: u64 = cpu.iter().sum();
    let busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6];
    let mut procs = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Fields 4, 14 and 15 of the line (ppid, utime, stime) are 1, 11 and 12 after
        // the comm.
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
        let (Some(ppid), Some(user), Some(system)) = (field(1), field(11), field(12)) else {
            continue;
        };
        let proc = Proc {
            pid,
            ppid: ppid as u32,
            comm: &stat[open + 1..close],
        };
        if let Some(group) = groups.iter().position(|(_, member)| member(&proc)) {
            procs.insert((pid, group), user + system);
        }
    }
    Some(Snapshot { busy, total, procs })
}

fn usage(groups: &[Group], before: &Snapshot, after: &Snapshot) -> Option<Usage> {
    let total = after.total.checked_sub(before.total)?.max(1) as f64;
    let mut ticks = vec![0u64; groups.len()];
    for (&(pid, group), &t) in &after.procs {
        let earlier = before.procs.get(&(pid, group)).copied().unwrap_or(0);
        ticks[group] += t.saturating_sub(earlier);
    }
    Some(Usage {
        busy: after.busy.saturating_sub(before.busy) as f64 / total,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        groups: groups
            .iter()
            .zip(ticks)
            .filter(|(_, t)| *t > 0)
            .map(|((label, _), t)| (*label, t as f64 / total))
            .collect(),
    })
}

/// Measures CPU use from `skip` from now for `duration` (a load run's measured window when
/// started with it), in the background. `None` when /proc cannot be read.
pub fn during(
    groups: Vec<Group>,
    skip: Duration,
    duration: Duration,
) -> tokio::task::JoinHandle<Option<Usage>> {
    tokio::spawn(async move {
        tokio::time::sleep(skip).await;
        let before = snapshot(&groups)?;
        tokio::time::sleep(duration).await;
        let after = snapshot(&groups)?;
        usage(&groups, &before, &after)
    })
}
