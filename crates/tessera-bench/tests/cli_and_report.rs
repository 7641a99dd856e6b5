//! The benchmark's argument parsing and results files. The benchmark itself is a command,
//! not a test: nothing here runs load or looks at timings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use clap::Parser as _;
use tessera_bench::cli::{Cli, Internal, ScenarioKind, StoreKind};
use tessera_bench::report::{Machine, ReliabilityFigures, Report, ScenarioResult, ratio_target};

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("tessera-bench").chain(args.iter().copied())).unwrap()
}

#[test]
fn defaults_run_every_scenario_but_the_reliability_ones_on_sqlite_for_ten_seconds() {
    let cli = parse(&[]);
    assert!(cli.command.is_none());
    let expected: Vec<_> = ScenarioKind::ALL
        .into_iter()
        .filter(|kind| !kind.is_reliability())
        .collect();
    assert_eq!(cli.run.scenarios_to_run(), expected);
    assert!(!expected.contains(&ScenarioKind::PasswordFlood));
    assert_eq!(cli.run.connections, 50);
    assert_eq!(cli.run.duration, Duration::from_secs(10));
    assert_eq!(cli.run.warmup, Duration::from_secs(2));
    assert_eq!(cli.run.store, StoreKind::Sqlite);
    assert_eq!(cli.run.results.to_str(), Some("bench-results"));
    assert!(cli.run.scale.is_empty());
}

#[test]
fn chosen_scenarios_run_in_order_after_the_ceiling() {
    let cli = parse(&[
        "--scenario",
        "issue",
        "--scenario",
        "session",
        "--store",
        "postgres",
        "--duration",
        "0.5",
        "--scale",
        "10000,1000000",
    ]);
    assert_eq!(
        cli.run.scenarios_to_run(),
        vec![
            ScenarioKind::Ceiling,
            ScenarioKind::Session,
            ScenarioKind::Issue
        ]
    );
    assert_eq!(cli.run.store, StoreKind::Postgres);
    assert_eq!(cli.run.duration, Duration::from_millis(500));
    assert_eq!(cli.run.scale, vec![10_000, 1_000_000]);
}

#[test]
fn the_hidden_ceiling_server_subcommand_parses_and_bad_values_are_refused() {
    let cli = parse(&["ceiling-server", "--listen", "127.0.0.1:0"]);
    assert!(matches!(cli.command, Some(Internal::CeilingServer { .. })));
    for bad in [
        &["--scenario", "nope"][..],
        &["--connections", "0"],
        &["--duration", "-1"],
        &["--scale", "ten"],
    ] {
        let args = std::iter::once("tessera-bench").chain(bad.iter().copied());
        assert!(Cli::try_parse_from(args).is_err(), "{bad:?} was accepted");
    }
}

fn result(scenario: ScenarioKind, requests_per_s: f64, p99_ms: f64) -> ScenarioResult {
    ScenarioResult {
        scenario,
        connections: 50,
        sessions: None,
        requests: (requests_per_s * 10.0) as u64,
        requests_per_s,
        pairs_per_s: None,
        p50_ms: p99_ms / 4.0,
        p99_ms,
        p999_ms: p99_ms * 2.0,
        non_2xx: 0,
        errors: 0,
        error_samples: Vec::new(),
        server_cpu_cores: Some(1.0),
        peak_rss_mib: Some(20.0),
        ratio: None,
        target: None,
        met: None,
        p99_vs_ceiling: None,
        p99_target: None,
        p99_met: None,
        reliability: None,
    }
}

#[test]
fn results_are_judged_against_the_ceiling_and_written_as_json_and_markdown() -> anyhow::Result<()> {
    let ceiling = result(ScenarioKind::Ceiling, 50_000.0, 2.0);
    let mut session = result(ScenarioKind::Session, 40_000.0, 5.0);
    let mut issue = result(ScenarioKind::Issue, 10_000.0, 9.0);
    session.judge(&ceiling, StoreKind::Sqlite);
    issue.judge(&ceiling, StoreKind::Sqlite);
    assert_eq!(session.ratio, Some(0.8));
    assert_eq!(session.met, Some(true));
    // 5 ms against a 2 ms ceiling p99 is 2.5 times: over the SQLite bound of 2.
    assert_eq!(session.p99_met, Some(false));
    assert_eq!(issue.met, Some(false));
    assert_eq!(
        ratio_target(ScenarioKind::Issue, StoreKind::Postgres),
        Some(0.20)
    );
    assert_eq!(ratio_target(ScenarioKind::Login, StoreKind::Sqlite), None);

    let report = Report {
        label: "baseline".to_owned(),
        started_at: "2026-01-01T00:00:00Z".to_owned(),
        command_line: "tessera-bench --scenario session".to_owned(),
        store: StoreKind::Sqlite,
        machine: Machine::read(),
        connections: 50,
        warmup_s: 2.0,
        duration_s: 10.0,
        scenarios: vec![ceiling, session, issue],
        scale: Vec::new(),
    };
    let folder = tempfile::tempdir()?;
    let (json, markdown) = report.write(&folder.path().join("results"))?;
    assert!(json.ends_with("sqlite.json"));
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    assert_eq!(written["scenarios"][1]["scenario"], "session");
    assert_eq!(written["scenarios"][1]["target"], 0.75);
    assert_eq!(written["scenarios"][2]["met"], false);
    assert_eq!(written["command_line"], "tessera-bench --scenario session");
    assert!(written["machine"]["cores"].as_u64().unwrap() >= 1);
    let text = std::fs::read_to_string(&markdown)?;
    assert!(text.contains("| session | 50 | 40000 |"), "{text}");
    assert!(text.contains("NOT met"), "{text}");
    assert!(report.to_text().contains("baseline"));
    Ok(())
}

#[test]
fn the_reliability_scenarios_run_only_when_named_and_report_their_own_figures() {
    let cli = parse(&[
        "--scenario",
        "slow-clients",
        "--scenario",
        "password-flood",
        "--flood-connections",
        "16",
        "--slow-connections",
        "200",
        "--paced-rate",
        "500",
    ]);
    assert_eq!(
        cli.run.scenarios_to_run(),
        vec![
            ScenarioKind::Ceiling,
            ScenarioKind::PasswordFlood,
            ScenarioKind::SlowClients
        ]
    );
    assert_eq!(
        (
            cli.run.flood_connections,
            cli.run.slow_connections,
            cli.run.paced_rate
        ),
        (16, 200, 500)
    );
    assert!(
        Cli::try_parse_from(["tessera-bench", "--slow-connections", "2"]).is_err(),
        "fewer attackers than kinds of attack"
    );

    let ceiling = result(ScenarioKind::Ceiling, 50_000.0, 2.0);
    let mut flood = result(ScenarioKind::PasswordFlood, 500.0, 6.0);
    flood.judge(&ceiling, StoreKind::Sqlite);
    assert_eq!(
        flood.ratio, None,
        "a paced scenario has no throughput ratio"
    );
    flood.reliability = Some(ReliabilityFigures {
        paced_rate: 500,
        baseline_p99_ms: 2.0,
        p99_vs_baseline: 3.0,
        legitimate_success_pct: 100.0,
        rss_before_mib: Some(30.0),
        flood_connections: Some(16),
        flood_logins_per_s: Some(45.0),
        flood_errors: Some(0),
        slow_connections: None,
        attack: None,
        target: "p99 ≤ 2× alone (3.00×)".to_owned(),
        met: false,
    });
    let report = Report {
        label: String::new(),
        started_at: "2026-01-01T00:00:00Z".to_owned(),
        command_line: "tessera-bench --scenario password-flood".to_owned(),
        store: StoreKind::Sqlite,
        machine: Machine::read(),
        connections: 50,
        warmup_s: 2.0,
        duration_s: 10.0,
        scenarios: vec![ceiling, flood],
        scale: Vec::new(),
    };
    let text = report.to_text();
    assert!(text.contains("p99 ≤ 2× alone (3.00×): NOT met"), "{text}");
    assert!(text.contains("45 logins/s"), "{text}");
    assert!(report.to_markdown().contains("- password-flood: "));
}
