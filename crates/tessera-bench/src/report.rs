//! The results: targets of docs/PERFORMANCE.md, the printed table, and the JSON and
//! Markdown files under the results folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::cli::{ScenarioKind, StoreKind};

/// One scenario's figures.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: ScenarioKind,
    /// Connections (virtual users) that drove it.
    pub connections: u32,
    /// Live sessions in the store when it ran (scale mode), else `None`.
    pub sessions: Option<u64>,
    /// Answers with the expected status in the window.
    pub requests: u64,
    /// `requests` per second of the window.
    pub requests_per_s: f64,
    /// Completed issue-then-revoke pairs per second (`revoke` only).
    pub pairs_per_s: Option<f64>,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// 99.9th percentile latency, ms.
    pub p999_ms: f64,
    /// Answers that were not 2xx.
    pub non_2xx: u64,
    /// Answers with another status than expected, plus requests that got no answer.
    pub errors: u64,
    /// The first few errors.
    pub error_samples: Vec<String>,
    /// Cores the server (or, for the ceiling, the ceiling process) kept busy.
    pub server_cpu_cores: Option<f64>,
    /// Its highest resident memory during the window, MiB.
    pub peak_rss_mib: Option<f64>,
    /// `requests_per_s` divided by the ceiling's.
    pub ratio: Option<f64>,
    /// The ratio docs/PERFORMANCE.md asks for, if it sets one.
    pub target: Option<f64>,
    /// Whether `ratio` reaches `target`.
    pub met: Option<bool>,
    /// `p99_ms` divided by the ceiling's p99 (`session` only).
    pub p99_vs_ceiling: Option<f64>,
    /// The most `p99_vs_ceiling` may be (`session` only).
    pub p99_target: Option<f64>,
    /// Whether `p99_vs_ceiling` stays within `p99_target`.
    pub p99_met: Option<bool>,
}

impl ScenarioResult {
    /// Fills in ratio, target and verdicts against the ceiling measured in the same run.
    pub fn judge(&mut self, ceiling: &ScenarioResult, store: StoreKind) {
        if self.scenario == ScenarioKind::Ceiling {
            return;
        }
        if ceiling.requests_per_s > 0.0 {
            self.ratio = Some(self.requests_per_s / ceiling.requests_per_s);
        }
        self.target = ratio_target(self.scenario, store);
        self.met = match (self.ratio, self.target) {
            (Some(ratio), Some(target)) => Some(ratio >= target),
            _ => None,
        };
        if self.scenario == ScenarioKind::Session {
            if ceiling.p99_ms > 0.0 {
                self.p99_vs_ceiling = Some(self.p99_ms / ceiling.p99_ms);
            }
            self.p99_target = Some(session_p99_target(store));
            self.p99_met = self
                .p99_vs_ceiling
                .zip(self.p99_target)
                .map(|(ratio, target)| ratio <= target);
        }
    }
}

/// The ratio to the ceiling docs/PERFORMANCE.md sets for a scenario on a store; `None` for
/// the ones it reports without a target (`login`, `mixed`, the ceiling itself).
pub fn ratio_target(scenario: ScenarioKind, store: StoreKind) -> Option<f64> {
    let (sqlite, postgres) = match scenario {
        ScenarioKind::Session | ScenarioKind::Introspect => (0.75, 0.35),
        ScenarioKind::Issue | ScenarioKind::Revoke => (0.30, 0.20),
        ScenarioKind::Refresh => (0.25, 0.15),
        ScenarioKind::Ceiling | ScenarioKind::Login | ScenarioKind::Mixed => return None,
    };
    Some(match store {
        StoreKind::Sqlite => sqlite,
        StoreKind::Postgres => postgres,
    })
}

/// The most the `session` p99 may be, as a multiple of the ceiling's p99.
pub fn session_p99_target(store: StoreKind) -> f64 {
    match store {
        StoreKind::Sqlite => 2.0,
        StoreKind::Postgres => 3.0,
    }
}

/// One size of the scale mode.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleResult {
    /// Live sessions in the store (pre-loaded plus created by earlier runs).
    pub sessions: u64,
    /// Database bytes (SQLite file + WAL, or `pg_database_size` growth) per session.
    pub bytes_per_session: f64,
    /// Server resident memory right after start, MiB.
    pub idle_rss_mib: Option<f64>,
    /// `session` at this size.
    pub session: ScenarioResult,
    /// `issue` at this size.
    pub issue: ScenarioResult,
}

/// Facts about the machine the figures come from.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `nproc`.
    pub cores: usize,
    /// The CPU's model name.
    pub cpu_model: String,
    /// The kernel release.
    pub kernel: String,
    /// `/proc/loadavg` when the run started: other work on the machine skews the figures.
    pub load_average: String,
}

impl Machine {
    /// Reads them from `/proc`.
    pub fn read() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|text| text.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .map(|text| {
                text.split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|_| "unknown".to_owned());
        Machine {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            kernel,
            load_average,
        }
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `--label`.
    pub label: String,
    /// When the run started (UTC, ISO 8601).
    pub started_at: String,
    /// The exact command line.
    pub command_line: String,
    /// The store the server ran on.
    pub store: StoreKind,
    /// The machine.
    pub machine: Machine,
    /// Connections per scenario (`login` uses its own count).
    pub connections: u32,
    /// Warm-up seconds per scenario.
    pub warmup_s: f64,
    /// Measured seconds per scenario.
    pub duration_s: f64,
    /// The scenarios, the ceiling first.
    pub scenarios: Vec<ScenarioResult>,
    /// Scale mode, one entry per size.
    pub scale: Vec<ScaleResult>,
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "—",
    }
}

fn target_text(result: &ScenarioResult) -> String {
    let mut text = match result.target {
        Some(target) => format!("≥ {target:.2}: {}", verdict(result.met)),
        None => "—".to_owned(),
    };
    if let (Some(target), Some(ratio)) = (result.p99_target, result.p99_vs_ceiling) {
        let _ = write!(
            text,
            "; p99 ≤ {target:.0}× ceiling's ({ratio:.1}×): {}",
            verdict(result.p99_met)
        );
    }
    text
}

fn requests_text(result: &ScenarioResult) -> String {
    match result.pairs_per_s {
        Some(pairs) => format!("{:.0} ({pairs:.0} pairs/s)", result.requests_per_s),
        None => format!("{:.0}", result.requests_per_s),
    }
}

const SCENARIO_HEADER: [&str; 11] = [
    "scenario",
    "conns",
    "requests/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "non-2xx / errors",
    "server CPU",
    "peak RSS MiB",
    "ratio",
    "target",
];

fn scenario_row(result: &ScenarioResult) -> Vec<String> {
    vec![
        result.scenario.name().to_owned(),
        result.connections.to_string(),
        requests_text(result),
        format!("{:.2}", result.p50_ms),
        format!("{:.2}", result.p99_ms),
        format!("{:.2}", result.p999_ms),
        format!("{} / {}", result.non_2xx, result.errors),
        optional(result.server_cpu_cores, 2),
        optional(result.peak_rss_mib, 1),
        optional(result.ratio, 3),
        target_text(result),
    ]
}

const SCALE_HEADER: [&str; 10] = [
    "sessions",
    "DB bytes/session",
    "idle RSS MiB",
    "session req/s",
    "session ratio",
    "session p99 ms",
    "issue req/s",
    "issue ratio",
    "peak RSS MiB",
    "vs smallest",
];

fn scale_rows(scale: &[ScaleResult]) -> Vec<Vec<String>> {
    let first = scale.first();
    scale
        .iter()
        .map(|size| {
            let kept = first.map(|first| {
                format!(
                    "session {:.2}, issue {:.2}",
                    size.session.requests_per_s
                        / first.session.requests_per_s.max(f64::MIN_POSITIVE),
                    size.issue.requests_per_s / first.issue.requests_per_s.max(f64::MIN_POSITIVE)
                )
            });
            let peak = size
                .session
                .peak_rss_mib
                .into_iter()
                .chain(size.issue.peak_rss_mib)
                .reduce(f64::max);
            vec![
                size.sessions.to_string(),
                format!("{:.0}", size.bytes_per_session),
                optional(size.idle_rss_mib, 1),
                format!("{:.0}", size.session.requests_per_s),
                optional(size.session.ratio, 3),
                format!("{:.2}", size.session.p99_ms),
                format!("{:.0}", size.issue.requests_per_s),
                optional(size.issue.ratio, 3),
                optional(peak, 1),
                kept.unwrap_or_default(),
            ]
        })
        .collect()
}

fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut text = format!("| {} |\n", header.join(" | "));
    let _ = writeln!(text, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let _ = writeln!(text, "| {} |", row.join(" | "));
    }
    text
}

fn plain_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        text.push_str(&line(row.clone()));
    }
    text
}

impl Report {
    fn heading(&self) -> String {
        let label = if self.label.is_empty() {
            String::new()
        } else {
            format!(" [{}]", self.label)
        };
        format!(
            "tessera-bench{label}: {} store, {} connections, {:.0} s warm-up + {:.0} s per scenario, \
             {} ({} cores, {}, kernel {}, load average {}), {}",
            self.store.label(),
            self.connections,
            self.warmup_s,
            self.duration_s,
            self.machine.cpu_model,
            self.machine.cores,
            std::env::consts::ARCH,
            self.machine.kernel,
            self.machine.load_average,
            self.started_at,
        )
    }

    /// The table printed to stdout.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}\n\n", self.heading());
        if !self.scenarios.is_empty() {
            let rows: Vec<_> = self.scenarios.iter().map(scenario_row).collect();
            text.push_str(&plain_table(&SCENARIO_HEADER, &rows));
        }
        if !self.scale.is_empty() {
            text.push('\n');
            text.push_str(&plain_table(&SCALE_HEADER, &scale_rows(&self.scale)));
        }
        for result in self.scenarios.iter().chain(
            self.scale
                .iter()
                .flat_map(|size| [&size.session, &size.issue]),
        ) {
            for sample in &result.error_samples {
                let _ = writeln!(text, "{} error: {sample}", result.scenario.name());
            }
        }
        text
    }

    /// results.md.
    pub fn to_markdown(&self) -> String {
        let mut text = format!(
            "# Benchmark results\n\n{}\n\nCommand: `{}`\n\n",
            self.heading(),
            self.command_line
        );
        if !self.scenarios.is_empty() {
            let rows: Vec<_> = self.scenarios.iter().map(scenario_row).collect();
            text.push_str(&markdown_table(&SCENARIO_HEADER, &rows));
        }
        if !self.scale.is_empty() {
            text.push_str("\n## Scale\n\n");
            text.push_str(&markdown_table(&SCALE_HEADER, &scale_rows(&self.scale)));
        }
        text
    }

    /// The results files' name without extension: the store, and `-scale` in scale mode,
    /// so that runs on each store, and scale runs, keep their own files.
    pub fn file_stem(&self) -> String {
        let store = match self.store {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        };
        if self.scale.is_empty() {
            store.to_owned()
        } else {
            format!("{store}-scale")
        }
    }

    /// Writes `STEM.json` and `STEM.md` (see [`Report::file_stem`]) into `folder`; returns
    /// their paths.
    pub fn write(&self, folder: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let stem = self.file_stem();
        let json = folder.join(format!("{stem}.json"));
        let markdown = folder.join(format!("{stem}.md"));
        std::fs::write(&json, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("cannot write {}", json.display()))?;
        std::fs::write(&markdown, self.to_markdown())
            .with_context(|| format!("cannot write {}", markdown.display()))?;
        Ok((json, markdown))
    }
}
