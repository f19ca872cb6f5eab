//! CPU time of the server under test, from /proc (Linux): tells a server that is saturated
//! apart from one that waits, and gives the cost of a request independent of the machine.

use std::time::Duration;

use serde::Serialize;

/// `USER_HZ`: the unit of utime/stime in /proc/<pid>/stat, 100 on every Linux architecture
/// we run on (it is fixed by the kernel ABI, not by the kernel's own tick rate).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU used by the server during the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuFigures {
    /// Average cores busy (1.0 = one core all the time).
    pub cores: f64,
    /// CPU time per 2xx response, in µs.
    pub us_per_request: f64,
}

impl CpuFigures {
    pub fn new(cpu: Duration, window: Duration, requests: u64) -> Option<CpuFigures> {
        let window = window.as_secs_f64();
        (window > 0.0 && requests > 0).then(|| CpuFigures {
            cores: cpu.as_secs_f64() / window,
            us_per_request: cpu.as_secs_f64() * 1e6 / requests as f64,
        })
    }
}

/// User + system time of `pid` and its direct children (nginx's workers), so far.
pub fn process_tree_cpu(pid: u32) -> Option<Duration> {
    let mut ticks = own_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    for child in children(pid) {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) {
            ticks += own_ticks(&stat).unwrap_or(0);
        }
    }
    Some(Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND))
}

/// utime + stime from the text of /proc/<pid>/stat.
fn own_ticks(stat: &str) -> Option<u64> {
    let fields = after_comm(stat)?;
    // After `pid (comm)`: state is field 3, utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The fields after `pid (comm)`; the command name may itself hold spaces and parentheses.
fn after_comm(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat[close + 1..].split_whitespace().collect())
}

fn parent_of(stat: &str) -> Option<u32> {
    after_comm(stat)?.get(1)?.parse().ok()
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| {
            std::fs::read_to_string(format!("/proc/{candidate}/stat"))
                .ok()
                .and_then(|s| parent_of(&s))
                == Some(pid)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194624 120 0 0 0 250 50 0 0 20 0 1 0 100 0 0";

    #[test]
    fn reads_cpu_ticks_and_parent_even_with_parentheses_in_the_name() {
        assert_eq!(own_ticks(STAT), Some(300));
        assert_eq!(parent_of(STAT), Some(4241));
    }

    #[test]
    fn cpu_figures_are_cores_and_cost_per_request() {
        let f = CpuFigures::new(Duration::from_secs(3), Duration::from_secs(2), 30_000).unwrap();
        assert_eq!(f.cores, 1.5);
        assert_eq!(f.us_per_request, 100.0);
        assert!(CpuFigures::new(Duration::from_secs(1), Duration::from_secs(2), 0).is_none());
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        assert!(process_tree_cpu(std::process::id()).is_some());
    }
}
