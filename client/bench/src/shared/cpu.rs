//! CPU time, the figure that holds still on a noisy machine: a request's
//! cost is the user and system time of every process in the run divided
//! by the requests acknowledged.

/// User plus system time of this process so far, microseconds.
pub fn self_us() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as u64 * 1_000_000 + tv.tv_usec() as u64;
        t(u.user_time()) + t(u.system_time())
    })
}

/// Time on CPU of every thread of process `pid` so far, microseconds
/// (Linux: `/proc/PID/task/*/schedstat`, nanosecond resolution); `None`
/// where it cannot be read.
pub fn process_us(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns = 0u64;
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_loop_shows_in_both_measures() {
        let (a, p) = (self_us(), process_us(std::process::id()));
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(self_us() - a >= 30_000);
        if let (Some(p), Some(q)) = (p, process_us(std::process::id())) {
            assert!(q - p >= 30_000);
        }
    }
}
