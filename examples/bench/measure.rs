//! Process measurements read from `/proc`: CPU time, peak RSS, the machine description; the
//! calling thread's CPU clock ([`thread_cpu`], the only figure that needs `libc`); and [`Meter`], a wall + CPU stopwatch that can be paused so that the bench's
//! own bookkeeping (checking whether a workload is done) is not charged to witan.

use std::time::{Duration, Instant};

/// `AT_CLKTCK` in the auxiliary vector: the unit of `utime`/`stime` in `/proc/self/stat`.
const AT_CLKTCK: u64 = 17;

/// Clock ticks per second of `/proc/self/stat` (100 on every Linux we know of).
fn clock_ticks_per_second() -> u64 {
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 100;
    };
    for pair in auxv.chunks_exact(16) {
        let (key, value) = pair.split_at(8);
        let key = u64::from_ne_bytes(key.try_into().unwrap_or([0; 8]));
        let value = u64::from_ne_bytes(value.try_into().unwrap_or([0; 8]));
        if key == AT_CLKTCK && value > 0 {
            return value;
        }
    }
    100
}

/// The process's user + system CPU time (`utime + stime` of `/proc/self/stat`).
pub fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // The command name may contain spaces; the fields after it are space-separated.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 14 (utime) and 15 (stime), counting from 1 with pid and comm as 1 and 2.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let total = ticks(11) + ticks(12);
    Duration::from_nanos(total * 1_000_000_000 / clock_ticks_per_second())
}

/// CPU time of every thread of the process in nanoseconds (`/proc/self/task/*/schedstat`),
/// a finer-grained companion of [`process_cpu`] (whose unit is a 10 ms tick).
pub fn process_cpu_precise() -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            if let Ok(s) = std::fs::read_to_string(path) {
                total += s
                    .split_whitespace()
                    .next()
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(total)
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`: nanoseconds, up to date at
/// the call, unlike `schedstat`, which a running thread updates only at ticks). The bench
/// drives every client from one thread, so the difference around a call is that call's CPU.
pub fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; the clock id is a constant Linux defines.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// What the kernel reports of the calling thread so far (`getrusage(RUSAGE_THREAD)`).
#[derive(Default, Debug, Clone, Copy)]
pub struct ThreadUsage {
    /// Page faults that needed no disk (`ru_minflt`): mostly fresh pages of a growing heap,
    /// each zeroed by the kernel.
    pub page_faults: u64,
    /// CPU spent in the kernel on the thread's behalf (`ru_stime`): its system calls (the
    /// database's writes) and its page faults. The kernel splits a thread's exact run time
    /// between user and system by its tick samples, so one short call's share is coarse;
    /// summed over a member's calls it is not.
    pub system: Duration,
}

/// The calling thread's [`ThreadUsage`] so far (zero if the kernel refuses).
pub fn thread_usage() -> ThreadUsage {
    // SAFETY: all-zero is a valid `rusage` (integers and timevals).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; the selector is a constant Linux defines.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return ThreadUsage::default();
    }
    let micros = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    ThreadUsage {
        page_faults: usage.ru_minflt.max(0) as u64,
        system: micros(usage.ru_stime),
    }
}

/// Peak resident set size of this process (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// "N cores, <model>, load average a b c".
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, {model}, load average {}", load.join(" "))
}

/// Wall and CPU time accumulated over the segments between `resume` and `pause`.
#[derive(Debug, Default)]
pub struct Meter {
    wall: Duration,
    cpu: Duration,
    cpu_precise: Duration,
    running: Option<(Instant, Duration, Duration)>,
}

impl Meter {
    /// A running meter.
    pub fn started() -> Meter {
        let mut m = Meter::default();
        m.resume();
        m
    }

    pub fn resume(&mut self) {
        if self.running.is_none() {
            self.running = Some((Instant::now(), process_cpu(), process_cpu_precise()));
        }
    }

    pub fn pause(&mut self) {
        if let Some((wall, cpu, precise)) = self.running.take() {
            self.wall += wall.elapsed();
            self.cpu += process_cpu().saturating_sub(cpu);
            self.cpu_precise += process_cpu_precise().saturating_sub(precise);
        }
    }

    /// (wall, CPU from `/proc/self/stat`, CPU from schedstat), pausing the meter.
    pub fn finish(mut self) -> (Duration, Duration, Duration) {
        self.pause();
        (self.wall, self.cpu, self.cpu_precise)
    }
}
