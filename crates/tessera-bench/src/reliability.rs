//! The reliability scenarios: RELIABILITY.md P14 (`password-flood`) and P15
//! (`slow-clients`). Each measures session lookups sent at a fixed rate (`--paced-rate`
//! over `--connections`) twice: alone, then while the attack runs on other connections.
//! The row of the table is the lookups under attack; the baseline and the attack's own
//! figures go into [`ReliabilityFigures`].

use std::sync::Arc;

use crate::attack;
use crate::cli::{RunArgs, ScenarioKind};
use crate::load::{Stats, Window, drive};
use crate::procstat::{Sampler, rss_kib};
use crate::report::{
    FLOOD_P99_TARGET, LEGITIMATE_SUCCESS_TARGET_PCT, ReliabilityFigures, ScenarioResult,
};
use crate::run::{SETTLE, scenario_result};
use crate::scenarios::{Fixtures, ScenarioUser};
use crate::server::Process;

/// P14: paced lookups alone, then while `--flood-connections` log in as fast as they can
/// (the right password, so that no failure limit stops the flood: every request costs a
/// full Argon2id hash).
pub async fn password_flood(
    server: &Process,
    fixtures: &Arc<Fixtures>,
    args: &RunArgs,
) -> anyhow::Result<ScenarioResult> {
    let kind = ScenarioKind::PasswordFlood;
    let baseline = baseline(kind, server, fixtures, args).await?;
    eprintln!(
        "{}: the same lookups while {} connections flood the password grant ...",
        kind.name(),
        args.flood_connections
    );
    let rss_before_mib = rss_before(server)?;
    let window = Window::after(args.warmup, args.duration);
    let sampler = Sampler::start(server.pid()?, window);
    let lookups = ScenarioUser::paced(kind, fixtures, args.connections as usize, args.paced_rate);
    let flood = ScenarioUser::crowd(
        ScenarioKind::Login,
        fixtures,
        args.flood_connections as usize,
    );
    let (measured, flooded) = tokio::join!(
        drive(server.address, lookups, window),
        drive(server.address, flood, window)
    );
    let usage = sampler.finish();
    let (measured, flooded) = (measured?, flooded?);
    let mut result = scenario_result(kind, args.connections, &measured, usage, args.duration);
    let p99_vs_baseline = ratio(result.p99_ms, baseline.p99_ms);
    result.reliability = Some(ReliabilityFigures {
        paced_rate: args.paced_rate,
        baseline_p99_ms: baseline.p99_ms,
        p99_vs_baseline,
        legitimate_success_pct: success_pct(&measured),
        rss_before_mib,
        flood_connections: Some(args.flood_connections),
        flood_logins_per_s: Some(flooded.ok as f64 / args.duration.as_secs_f64().max(1e-9)),
        flood_errors: Some(flooded.errors()),
        slow_connections: None,
        attack: None,
        target: format!("p99 ≤ {FLOOD_P99_TARGET:.0}× alone ({p99_vs_baseline:.2}×)"),
        met: p99_vs_baseline <= FLOOD_P99_TARGET,
    });
    Ok(result)
}

/// P15: paced lookups alone, then while `--slow-connections` misbehave (see
/// [`attack`]).
pub async fn slow_clients(
    server: &Process,
    fixtures: &Arc<Fixtures>,
    args: &RunArgs,
) -> anyhow::Result<ScenarioResult> {
    let kind = ScenarioKind::SlowClients;
    let baseline = baseline(kind, server, fixtures, args).await?;
    eprintln!(
        "{}: the same lookups while {} connections send slowly or too much ...",
        kind.name(),
        args.slow_connections
    );
    let rss_before_mib = rss_before(server)?;
    let window = Window::after(args.warmup, args.duration);
    let sampler = Sampler::start(server.pid()?, window);
    let lookups = ScenarioUser::paced(kind, fixtures, args.connections as usize, args.paced_rate);
    let (measured, attack) = tokio::join!(
        drive(server.address, lookups, window),
        attack::run(server.address, args.slow_connections, window)
    );
    let usage = sampler.finish();
    let measured = measured?;
    let mut result = scenario_result(kind, args.connections, &measured, usage, args.duration);
    let success = success_pct(&measured);
    result.reliability = Some(ReliabilityFigures {
        paced_rate: args.paced_rate,
        baseline_p99_ms: baseline.p99_ms,
        p99_vs_baseline: ratio(result.p99_ms, baseline.p99_ms),
        legitimate_success_pct: success,
        rss_before_mib,
        flood_connections: None,
        flood_logins_per_s: None,
        flood_errors: None,
        slow_connections: Some(args.slow_connections),
        attack: Some(attack),
        target: format!("success ≥ {LEGITIMATE_SUCCESS_TARGET_PCT:.0}% ({success:.3}%)"),
        met: success >= LEGITIMATE_SUCCESS_TARGET_PCT,
    });
    Ok(result)
}

/// The paced lookups alone.
async fn baseline(
    kind: ScenarioKind,
    server: &Process,
    fixtures: &Arc<Fixtures>,
    args: &RunArgs,
) -> anyhow::Result<ScenarioResult> {
    eprintln!(
        "{}: {} session lookups/s over {} connections alone, {:.0} s warm-up + {:.0} s ...",
        kind.name(),
        args.paced_rate,
        args.connections,
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;
    let window = Window::after(args.warmup, args.duration);
    let sampler = Sampler::start(server.pid()?, window);
    let users = ScenarioUser::paced(kind, fixtures, args.connections as usize, args.paced_rate);
    let stats = drive(server.address, users, window).await?;
    let usage = sampler.finish();
    let result = scenario_result(kind, args.connections, &stats, usage, args.duration);
    anyhow::ensure!(
        stats.errors() == 0,
        "{}: lookups failed without any attack: {:?}",
        kind.name(),
        stats.error_samples
    );
    tokio::time::sleep(SETTLE).await;
    Ok(result)
}

fn rss_before(server: &Process) -> anyhow::Result<Option<f64>> {
    Ok(rss_kib(server.pid()?).map(|kib| kib as f64 / 1024.0))
}

/// Answers as expected, in % of every lookup that ended in the window.
fn success_pct(stats: &Stats) -> f64 {
    let all = stats.ok + stats.errors();
    if all == 0 {
        return 0.0;
    }
    stats.ok as f64 * 100.0 / all as f64
}

fn ratio(value: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        value / baseline
    } else {
        f64::INFINITY
    }
}
