//! Group commit on SQLite, read from the store's own metrics: every batch of writes is
//! made durable by exactly one fsync, started after its commit, however the writes arrive.
//! A test binary of its own, because the metrics recorder is global to the process and
//! every other store in it would count too.

use std::error::Error;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use tempfile::TempDir;
use tessera_core::admin::{Admin, NewClient};
use tessera_core::id::{new_session_id, new_session_tag, random_bytes};
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::token::{TokenHash, TokenKind};
use tessera_core::{Store, StoreError, SystemClock, Timestamp};
use tessera_store::StoreOptions;

const NOW: Timestamp = Timestamp(1_780_000_000_000);

/// Concurrent writers, and the writes each makes one after another.
const WRITERS: usize = 50;
const WRITES_EACH: usize = 20;

fn random_hash() -> Result<TokenHash, StoreError> {
    let mut hash = [0u8; 32];
    random_bytes(&mut hash)?;
    Ok(TokenHash(hash))
}

/// An anonymous session of `client_id` with its access token.
fn session(client_id: &str) -> Result<(SessionRecord, TokenRecord), StoreError> {
    let access = random_hash()?;
    let session = SessionRecord {
        id: new_session_id()?,
        client_id: client_id.to_owned(),
        user_id: None,
        external_reference_id: None,
        authenticated: false,
        locale: "en_US".to_owned(),
        currency: "USD".to_owned(),
        cart_id: None,
        client_ip: "127.0.0.1".to_owned(),
        session_tag: new_session_tag()?,
        created_at: NOW,
        last_accessed: NOW,
        expires_at: NOW.plus_seconds(86_400),
        newest_access: access,
        revoked_at: None,
    };
    let token = TokenRecord {
        hash: access,
        kind: TokenKind::Access,
        session_id: session.id.clone(),
        client_id: client_id.to_owned(),
        issued_at: NOW,
        expires_at: NOW.plus_seconds(3600),
        revoked_at: None,
        consumed_at: None,
    };
    Ok((session, token))
}

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
        let client_id = client.id.clone();
        writers.spawn(async move {
            for _ in 0..WRITES_EACH {
                let (session, token) = session(&client_id)?;
                store.insert_session(&session, &[token]).await?;
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
