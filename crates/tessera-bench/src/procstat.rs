//! Server CPU time and resident memory, read from `/proc` while a scenario runs.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::load::Window;

/// How often resident memory is sampled.
const RSS_INTERVAL: Duration = Duration::from_millis(100);

/// What the sampler saw of one process during the measured window.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessUsage {
    /// CPU seconds (user + system) divided by wall seconds: cores kept busy.
    pub cpu_cores: Option<f64>,
    /// The highest resident set size sampled, in MiB.
    pub peak_rss_mib: Option<f64>,
}

/// Samples a process on its own thread, so it never competes with the load generator's
/// runtime.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<ProcessUsage>,
}

impl Sampler {
    /// Starts sampling `pid` over `window`.
    pub fn start(pid: u32, window: Window) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || sample(pid, window, &stopped));
        Sampler { stop, thread }
    }

    /// Waits for the window's end (or stops early) and returns what was seen.
    pub fn finish(self) -> ProcessUsage {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn sample(pid: u32, window: Window, stop: &AtomicBool) -> ProcessUsage {
    sleep_until(window.measure_from, stop);
    let start_wall = Instant::now();
    let start_cpu = cpu_seconds(pid);
    let mut peak_kib = rss_kib(pid);
    while Instant::now() < window.until {
        let next = (Instant::now() + RSS_INTERVAL).min(window.until);
        sleep_until(next, stop);
        peak_kib = peak_kib.max(rss_kib(pid));
    }
    let end_cpu = cpu_seconds(pid);
    let wall = start_wall.elapsed().as_secs_f64();
    ProcessUsage {
        cpu_cores: match (start_cpu, end_cpu) {
            (Some(start), Some(end)) if wall > 0.0 => Some((end - start) / wall),
            _ => None,
        },
        peak_rss_mib: peak_kib.map(|kib| kib as f64 / 1024.0),
    }
}

/// Sleeps until `deadline` unless the sampler is told to stop, in which case the window
/// ends with the caller anyway.
fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    let now = Instant::now();
    if deadline > now && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(deadline - now);
    }
}

/// The process's user + system CPU seconds, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), so utime (14) and stime (15) are at 11, 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks_per_second())
}

/// The process's resident set size in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// `CLK_TCK`, asked of `getconf` once (100 on every common Linux).
fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|ticks: &f64| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}
