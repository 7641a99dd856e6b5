//! Background work of `tessera serve`: expiry clean-up every --gc-interval-secs, off the
//! request path, with one summary log line per run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::session_admin::SessionAdmin;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// Starts the periodic clean-up; `None` when the interval is 0 (off). The first run comes
/// one interval after start-up, so starting stays quick. Abort the task to stop it: a
/// batch cut short is rolled back whole.
pub fn spawn_clean_up(admin: Arc<SessionAdmin>, interval_seconds: u64) -> Option<JoinHandle<()>> {
    if interval_seconds == 0 {
        tracing::info!("background clean-up is off (--gc-interval-secs 0)");
        return None;
    }
    let period = Duration::from_secs(interval_seconds);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        // A run that takes longer than the interval is not followed by a burst of runs.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let started = Instant::now();
            match admin.clean_up(|_| {}).await {
                Ok(report) => tracing::info!(
                    tokens_deleted = report.tokens_deleted,
                    sessions_deleted = report.sessions_deleted,
                    session_tokens_deleted = report.session_tokens_deleted,
                    sessions_tidied = report.sessions_tidied,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "clean-up finished"
                ),
                // Lookups never depend on it: try again next time.
                Err(error) => tracing::warn!(%error, "clean-up stopped early"),
            }
        }
    }))
}
