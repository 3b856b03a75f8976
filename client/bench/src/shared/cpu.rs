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

/// Time on CPU of each thread of process `pid` so far, by thread name,
/// microseconds (threads of one name summed).
pub fn threads_us(pid: u32) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let name = name.trim().to_owned();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v += ns / 1000,
            None => out.push((name, ns / 1000)),
        }
    }
    out
}

/// Per-thread CPU between two [`threads_us`] readings, per `ops`.
pub fn per_op(before: &[(String, u64)], after: &[(String, u64)], ops: u64) -> Vec<(String, f64)> {
    after
        .iter()
        .map(|(name, a)| {
            let b = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, v)| *v);
            (name.clone(), a.saturating_sub(b) as f64 / ops.max(1) as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_loop_shows_in_both_measures() {
        // Spin until this thread has used 30 ms of CPU (however long that
        // takes on a loaded machine); the process measure must see it too.
        let (a, p) = (self_us(), process_us(std::process::id()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut x = 0u64;
        while self_us() - a < 30_000 {
            assert!(std::time::Instant::now() < deadline, "no CPU time counted");
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        assert!(x > 0);
        if let (Some(p), Some(q)) = (p, process_us(std::process::id())) {
            // schedstat adds a running thread's time at ticks and switches:
            // each reading may lag by a scheduler tick (up to 10 ms).
            assert!(q - p >= 10_000, "{} µs", q - p);
        }
    }
}
