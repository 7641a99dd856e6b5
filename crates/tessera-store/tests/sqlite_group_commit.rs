//! Group commit on SQLite, read from the store's own metrics: every batch of writes is
//! made durable by exactly one fsync, started after its commit, however the writes arrive.
//! A test binary of its own, because the metrics recorder is global to the process and
//! every other store in it would count too.

use std::error::Error;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use tempfile::TempDir;
use tessera_core::admin::{Admin, NewClient};
use tessera_core::suite::full_session;
use tessera_core::{Store, StoreError, SystemClock};
use tessera_store::StoreOptions;

/// Concurrent writers, and the writes each makes one after another.
const WRITERS: usize = 50;
const WRITES_EACH: usize = 20;

/// The value of the unlabelled series `name` in a Prometheus text page; 0 when absent.
fn series(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_batch_of_writes_is_made_durable_by_one_fsync() -> Result<(), Box<dyn Error>> {
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let dir = TempDir::new()?;
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let store: Arc<dyn Store> = tessera_store::open(&url, &StoreOptions::default()).await?;
    let (client, _) = Admin::new(Arc::clone(&store), Arc::new(SystemClock))
        .create_client(NewClient::named("group commit"))
        .await?;

    let before = metrics.render();
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let store = Arc::clone(&store);
        let client = client.clone();
        writers.spawn(async move {
            for _ in 0..WRITES_EACH {
                let (session, tokens) = full_session(&client)?;
                store.insert_session(&session, &tokens).await?;
            }
            Ok::<_, StoreError>(())
        });
    }
    while let Some(done) = writers.join_next().await {
        done??;
    }
    let after = metrics.render();
    let grown = |name: &str| series(&after, name) - series(&before, name);

    let writes = (WRITERS * WRITES_EACH) as f64;
    assert_eq!(grown("tessera_sqlite_write_batch_size_sum"), writes);
    assert_eq!(
        grown("tessera_sqlite_sync_batch_size_sum"),
        writes,
        "every acknowledged write waited for an fsync"
    );
    let batches = grown("tessera_sqlite_write_batch_size_count");
    assert!(batches >= 1.0);
    assert_eq!(
        grown("tessera_sqlite_sync_seconds_count"),
        batches,
        "one fsync per batch: a batch's writes never straggle into a second fsync"
    );
    store.close().await;
    Ok(())
}
