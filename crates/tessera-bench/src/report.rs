//! The results: targets of docs/PERFORMANCE.md, the printed table, and the JSON and
//! Markdown files under the results folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::attack::{AttackFigures, KindFigures};
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
    /// The reliability scenarios' own figures (`password-flood`, `slow-clients`).
    pub reliability: Option<ReliabilityFigures>,
}

/// What `password-flood` and `slow-clients` measure besides their lookups' row: those
/// lookups alone first (the baseline), then under attack (the row).
#[derive(Clone, Debug, Serialize)]
pub struct ReliabilityFigures {
    /// The fixed rate of the measured lookups, requests/s.
    pub paced_rate: u32,
    /// Their p99 alone, ms.
    pub baseline_p99_ms: f64,
    /// Their p99 under attack over `baseline_p99_ms`.
    pub p99_vs_baseline: f64,
    /// Lookups answered as expected under attack, % of all that ended in the window.
    pub legitimate_success_pct: f64,
    /// The server's resident memory just before the attack, MiB.
    pub rss_before_mib: Option<f64>,
    /// `password-flood`: connections flooding the password grant.
    pub flood_connections: Option<u32>,
    /// `password-flood`: logins answered 200 per second during the flood.
    pub flood_logins_per_s: Option<f64>,
    /// `password-flood`: flood requests without their 200 (429, 503, errors).
    pub flood_errors: Option<u64>,
    /// `slow-clients`: attacking connections.
    pub slow_connections: Option<u32>,
    /// `slow-clients`: how each kind of attack ended.
    pub attack: Option<AttackFigures>,
    /// The target of RELIABILITY.md: p99 at most 2× the baseline (P14), or at least 99%
    /// legitimate success (P15).
    pub target: String,
    /// Whether it is met.
    pub met: bool,
}

/// P14: the lookups' p99 under a login flood is at most this multiple of their p99 alone.
pub const FLOOD_P99_TARGET: f64 = 2.0;
/// P15: at least this share of legitimate requests succeeds under slow and oversized ones.
pub const LEGITIMATE_SUCCESS_TARGET_PCT: f64 = 99.0;

impl ReliabilityFigures {
    /// The lines printed under the table.
    fn lines(&self, scenario: ScenarioKind) -> Vec<String> {
        let mut lines = vec![format!(
            "{}: lookups at {}/s: p99 alone {:.2} ms, under attack {:.2}× that; legitimate success {:.3}%; server RSS before {} MiB",
            scenario.name(),
            self.paced_rate,
            self.baseline_p99_ms,
            self.p99_vs_baseline,
            self.legitimate_success_pct,
            optional(self.rss_before_mib, 1),
        )];
        if let (Some(connections), Some(logins)) = (self.flood_connections, self.flood_logins_per_s)
        {
            lines.push(format!(
                "{}: {connections} connections flooding the password grant: {logins:.0} logins/s, {} without their 200",
                scenario.name(),
                self.flood_errors.unwrap_or(0)
            ));
        }
        if let Some(attack) = &self.attack {
            for (label, kind) in [
                ("slowloris head", &attack.slowloris),
                ("slow body", &attack.slow_body),
                ("slow read", &attack.slow_read),
                ("1 MiB body", &attack.big_body),
                ("64 KiB header", &attack.big_header),
            ] {
                lines.push(format!("{}: {label}: {}", scenario.name(), kind_text(kind)));
            }
        }
        lines
    }
}

fn kind_text(kind: &KindFigures) -> String {
    let statuses: Vec<String> = kind
        .statuses
        .iter()
        .map(|(status, count)| format!("{count}× {status}"))
        .collect();
    format!(
        "{} connections; ended {} ({}{} closed without answer) after p50 {} ms, max {} ms; open at the end {}; refused connects {}",
        kind.connections,
        kind.ended,
        if statuses.is_empty() {
            String::new()
        } else {
            format!("{}, ", statuses.join(", "))
        },
        kind.closed_without_answer,
        optional(kind.end_p50_ms, 1),
        optional(kind.end_max_ms, 1),
        kind.open_at_end,
        kind.connect_errors,
    )
}

impl ScenarioResult {
    /// Fills in ratio, target and verdicts against the ceiling measured in the same run.
    pub fn judge(&mut self, ceiling: &ScenarioResult, store: StoreKind) {
        // The reliability scenarios send a fixed rate, so a throughput ratio means nothing.
        if self.scenario == ScenarioKind::Ceiling || self.scenario.is_reliability() {
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
        ScenarioKind::Ceiling
        | ScenarioKind::Login
        | ScenarioKind::Mixed
        | ScenarioKind::PasswordFlood
        | ScenarioKind::SlowClients => return None,
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
    if let Some(reliability) = &result.reliability {
        return format!("{}: {}", reliability.target, verdict(Some(reliability.met)));
    }
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
        text.push_str(&self.reliability_text(""));
        text
    }

    /// The reliability scenarios' lines, each after `bullet`.
    fn reliability_text(&self, bullet: &str) -> String {
        let mut text = String::new();
        for result in &self.scenarios {
            if let Some(reliability) = &result.reliability {
                for line in reliability.lines(result.scenario) {
                    let _ = writeln!(text, "{bullet}{line}");
                }
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
            let reliability = self.reliability_text("- ");
            if !reliability.is_empty() {
                text.push('\n');
                text.push_str(&reliability);
            }
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
