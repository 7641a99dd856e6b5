//! WAL checkpoints off the write path.
//!
//! Left to itself, SQLite checkpoints inside the commit that takes the WAL past 1,000
//! frames: the committing write then copies every page of the WAL into the database file
//! and waits for two fsyncs (the WAL before the copy, the database after it), and every
//! other writer queues behind it on the single writer connection. Instead the writer runs
//! with `wal_autocheckpoint=0` and this task checkpoints on a connection of its own:
//!
//! - a `PASSIVE` checkpoint, a moment after writes were reported, copies what it can while
//!   the writer goes on appending (it takes no write lock and never waits for one);
//! - once the WAL holds more than [`RESET_FRAMES`], a second `PASSIVE` checkpoint runs on
//!   the writer connection itself, between two batches of the writer thread, so no write
//!   can append meanwhile: it copies only the frames the first one left and so completes,
//!   after which the next write starts the WAL again from its beginning (and
//!   `journal_size_limit` truncates the file).
//!
//! The second one runs even when the first reported every frame copied. Under continuous
//! writes the writer thread is inside a transaction while the first one runs, and commits
//! more frames the moment it returns; SQLite starts the WAL again only at a write that
//! begins with every frame copied, which only a checkpoint between two batches ensures.
//! Without it the WAL grew by about 100 MB a second under the `issue` benchmark and only
//! started again when writes paused; and an fsync of a file that grew costs about twice
//! one of a file overwritten in place.
//!
//! Durability is SQLite's own: a checkpoint syncs the WAL before it copies from it and the
//! database file after it copied everything, and only then may a writer overwrite the WAL.

use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use super::sql;
use super::writer::Runner;

/// Once the WAL holds this many frames (4 KiB pages: 16 MiB), the checkpoint finishes on the
/// writer connection.
const RESET_FRAMES: i64 = 4096;

/// How long reported writes gather before a checkpoint: a page written many times in that
/// while is copied once.
const GATHER: Duration = Duration::from_millis(100);

/// The running checkpoint task; it stops when [`Checkpoints::stop`] is called or when this
/// is dropped.
#[derive(Debug)]
pub(super) struct Checkpoints {
    written: std::sync::Arc<Notify>,
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    connection: SqlitePool,
}

impl Checkpoints {
    /// Starts the task: `connection` is its own read-write connection, `writer` runs a
    /// checkpoint on the writer thread.
    pub(super) fn start(connection: SqlitePool, writer: Runner) -> Self {
        let written = std::sync::Arc::new(Notify::new());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(
            connection.clone(),
            writer,
            std::sync::Arc::clone(&written),
            stopped,
        ));
        Self {
            written,
            stop: std::sync::Mutex::new(Some(stop)),
            task: tokio::sync::Mutex::new(Some(task)),
            connection,
        }
    }

    /// Tells the task the WAL grew.
    pub(super) fn written(&self) {
        self.written.notify_one();
    }

    /// Stops the task, waiting for a checkpoint in progress, and closes its connection.
    pub(super) async fn stop(&self) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.lock().await.take() {
            // A task that panicked has nothing left to stop.
            let _ = task.await;
        }
        self.connection.close().await;
    }
}

async fn run(
    connection: SqlitePool,
    writer: Runner,
    written: std::sync::Arc<Notify>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            () = written.notified() => {}
        }
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(GATHER) => {}
        }
        let started = std::time::Instant::now();
        match checkpoint(&connection).await {
            Ok(wal_frames) if wal_frames >= RESET_FRAMES => {
                if let Err(error) = writer.checkpoint().await {
                    tracing::warn!(%error, "the WAL checkpoint on the writer connection failed");
                }
            }
            Ok(_) => {}
            // The WAL keeps every commit until a later checkpoint succeeds; nothing is lost.
            Err(error) => tracing::warn!(%error, "a WAL checkpoint failed"),
        }
        metrics::histogram!("tessera_sqlite_checkpoint_seconds")
            .record(started.elapsed().as_secs_f64());
    }
}

/// `PRAGMA wal_checkpoint(PASSIVE)`; returns the frames in the WAL.
async fn checkpoint(connection: &SqlitePool) -> Result<i64, sqlx::Error> {
    let (_busy, wal_frames, _copied): (i64, i64, i64) = sqlx::query_as(sql::WAL_CHECKPOINT_PASSIVE)
        .fetch_one(connection)
        .await?;
    Ok(wal_frames)
}
