//! The only way to write: every write statement and write transaction of the store runs
//! through [`Writer`], whose methods return only once the write is on disk (the
//! durability barrier) and, for a write other processes must hear of, once the `-changes`
//! counter has been bumped.
//!
//! The connection runs with `synchronous=NORMAL`, so a commit in WAL mode does not fsync.
//! Instead each acknowledged write waits for the next `fdatasync` of the `-wal` file, and
//! one fsync answers every write that committed before it started (group commit): a
//! request never waits for more than the fsync in progress plus its own, and concurrent
//! writers share the cost. SQLite itself syncs the WAL before each checkpoint and the
//! database after it, so a commit that a checkpoint moved out of the WAL is on disk too.

use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool, SqliteQueryResult};
use sqlx::{Sqlite, query::Query};
use tessera_core::StoreError;
use tokio::sync::oneshot;

use super::changes::ChangeFile;
use super::checkpoint::Checkpoints;
use super::error::{self, store_error};
use super::sql;

/// Whether other processes on the same file must hear of a write (`ChangeSignal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Notify {
    /// The write may end, revoke or change rows another process may have looked up and
    /// cached.
    OtherProcesses,
    /// The write only adds new rows, records a lookup time, or deletes rows no lookup
    /// answers from any more: nothing another process cached becomes wrong.
    Nobody,
}

/// The single writer connection, the durability barrier and the change counter.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    /// Exactly one connection: SQLite admits one writer at a time anyway, and queueing in
    /// the pool is cheaper and fairer than SQLite's busy-wait.
    pool: SqlitePool,
    barrier: Arc<SyncBarrier>,
    changes: Option<Arc<ChangeFile>>,
    checkpoints: Arc<Checkpoints>,
}

impl Writer {
    pub(super) fn new(
        pool: SqlitePool,
        database: &Path,
        changes: Option<Arc<ChangeFile>>,
        checkpoints: Checkpoints,
    ) -> Self {
        Self {
            pool,
            barrier: Arc::new(SyncBarrier::new(database)),
            changes,
            checkpoints: Arc::new(checkpoints),
        }
    }

    /// Runs one write statement in autocommit mode, which takes the write lock before it
    /// starts as `BEGIN IMMEDIATE` does.
    pub(super) async fn execute(
        &self,
        query: Query<'_, Sqlite, SqliteArguments>,
        notify: Notify,
    ) -> Result<SqliteQueryResult, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(store_error)?;
        let done = match query.execute(&mut *connection).await {
            Ok(done) => done,
            Err(error) => {
                if error::may_break_the_connection(&error) {
                    // See `WriteTx`: the connection may never write again.
                    connection.close_on_drop();
                }
                return Err(store_error(error));
            }
        };
        // Free for the next write before this one waits for its fsync.
        drop(connection);
        // A statement that matched no row changed nothing another process could miss.
        let changed = done.rows_affected() > 0;
        self.acknowledge(notify, changed).await?;
        Ok(done)
    }

    /// Opens a `BEGIN IMMEDIATE` transaction; dropping it rolls it back.
    pub(super) async fn begin(&self) -> Result<WriteTx<'_>, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(store_error)?;
        sqlx::raw_sql(sql::BEGIN_IMMEDIATE)
            .execute(&mut *connection)
            .await
            .map_err(store_error)?;
        Ok(WriteTx {
            connection,
            finished: false,
            writer: self,
        })
    }

    /// Waits until every write committed so far is on disk, and tells other processes
    /// about a change; either failing fails the write (it may be lost, or other processes
    /// may keep serving what it changed).
    async fn acknowledge(&self, notify: Notify, changed: bool) -> Result<(), StoreError> {
        self.checkpoints.written();
        let bumped = async {
            match (&self.changes, notify, changed) {
                (Some(changes), Notify::OtherProcesses, true) => changes.bump().await,
                _ => Ok(()),
            }
        };
        let (bumped, synced) = tokio::join!(bumped, self.barrier.wait());
        synced.and(bumped)
    }

    /// Waits until every write committed so far is on disk.
    pub(super) async fn sync(&self) -> Result<(), StoreError> {
        self.barrier.wait().await
    }

    pub(super) fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    pub(super) async fn close(&self) {
        // The writer's connection last: when the last connection closes, SQLite
        // checkpoints the whole WAL and removes it.
        self.checkpoints.stop().await;
        self.pool.close().await;
    }
}

/// A write transaction on the writer connection. Finish it with [`WriteTx::commit`], or
/// with [`WriteTx::roll_back`] when its precondition no longer holds.
///
/// Dropped unfinished (an error, or a request that went away), it closes its connection,
/// which rolls the transaction back, and the next write opens a fresh one. After some
/// faults a connection can no longer write even once the fault clears: one that SQLite
/// opened during a `chattr +i` can answer every later write `SQLITE_READONLY`, although its
/// `BEGIN IMMEDIATE` succeeds. Replacing the connection after any failed write costs a
/// reconnect on a path that is already failing, and writes recover as soon as the file
/// does.
pub(super) struct WriteTx<'w> {
    connection: PoolConnection<Sqlite>,
    finished: bool,
    writer: &'w Writer,
}

impl WriteTx<'_> {
    /// Commits, then waits for the barrier (and bumps the change counter).
    pub(super) async fn commit(mut self, notify: Notify) -> Result<(), StoreError> {
        self.end(sql::COMMIT).await?;
        let writer = self.writer;
        // Free for the next write before this one waits for its fsync.
        drop(self);
        writer.acknowledge(notify, true).await
    }

    /// Rolls back a transaction that wrote nothing, then waits for the barrier all the
    /// same: its answer ("no longer holds") rests on rows another write committed, and
    /// must not go out before they are on disk.
    pub(super) async fn roll_back(mut self) -> Result<(), StoreError> {
        self.end(sql::ROLLBACK).await?;
        let writer = self.writer;
        // Free for the next write before this one waits for its fsync.
        drop(self);
        writer.sync().await
    }

    /// Runs `COMMIT` or `ROLLBACK`; a failure leaves the transaction unfinished, so the
    /// connection is closed when `self` is dropped.
    async fn end(&mut self, statement: &'static str) -> Result<(), StoreError> {
        sqlx::raw_sql(statement)
            .execute(&mut *self.connection)
            .await
            .map_err(store_error)?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.connection.close_on_drop();
        }
    }
}

impl Deref for WriteTx<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.connection
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.connection
    }
}

type SyncAnswer = Result<(), String>;

/// Group commit: writers register after their commit returned; one loop at a time takes
/// every registered writer, fsyncs, and answers them all, so a writer is only ever
/// answered by an fsync that started after it registered.
#[derive(Debug)]
struct SyncBarrier {
    database: PathBuf,
    wal: PathBuf,
    state: Mutex<BarrierState>,
    /// The WAL file the last fsync found (device, inode). A WAL file new since then
    /// (SQLite removes it when the last connection closes) needs its folder entry synced
    /// once, or a crash could lose the whole file.
    last_wal: Mutex<Option<(u64, u64)>>,
}

#[derive(Debug, Default)]
struct BarrierState {
    waiting: Vec<oneshot::Sender<SyncAnswer>>,
    syncing: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent at every point a panic could unwind through.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SyncBarrier {
    fn new(database: &Path) -> Self {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        Self {
            database: database.to_owned(),
            wal: PathBuf::from(wal),
            state: Mutex::default(),
            last_wal: Mutex::default(),
        }
    }

    /// Returns once an fsync that started after this call has finished.
    async fn wait(self: &Arc<Self>) -> Result<(), StoreError> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut state = lock(&self.state);
            state.waiting.push(answer);
            !std::mem::replace(&mut state.syncing, true)
        };
        if start {
            // A task of its own, so that a writer whose request is dropped mid-wait does
            // not strand the others.
            tokio::spawn(Arc::clone(self).sync_loop());
        }
        match answered.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Unavailable(message)),
            Err(_) => Err(StoreError::Unavailable(
                "the database file sync stopped".to_owned(),
            )),
        }
    }

    async fn sync_loop(self: Arc<Self>) {
        loop {
            let batch = {
                let mut state = lock(&self.state);
                if state.waiting.is_empty() {
                    state.syncing = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            let started = Instant::now();
            let barrier = Arc::clone(&self);
            let synced = tokio::task::spawn_blocking(move || barrier.sync_files())
                .await
                .unwrap_or_else(|_| Err("the database file sync stopped".to_owned()));
            metrics::histogram!("tessera_sqlite_sync_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("tessera_sqlite_sync_batch_size").record(batch.len() as f64);
            if let Err(message) = &synced {
                tracing::error!(
                    error = %message,
                    writes = batch.len(),
                    "a database file sync failed; answering its writes as unavailable"
                );
            }
            for waiter in batch {
                // A waiter that went away no longer needs its answer.
                let _ = waiter.send(synced.clone());
            }
        }
    }

    /// `fdatasync` of the WAL, opened anew each time so that a WAL file SQLite removed and
    /// recreated is the one synced; with no WAL file (checkpointed and removed, so already
    /// synced into the database by SQLite) the database file instead.
    fn sync_files(&self) -> SyncAnswer {
        let describe =
            |what: &Path, error: std::io::Error| format!("cannot sync {}: {error}", what.display());
        let wal = match File::open(&self.wal) {
            Ok(wal) => wal,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let database =
                    File::open(&self.database).map_err(|e| describe(&self.database, e))?;
                return database
                    .sync_data()
                    .map_err(|e| describe(&self.database, e));
            }
            Err(error) => return Err(describe(&self.wal, error)),
        };
        wal.sync_data().map_err(|e| describe(&self.wal, e))?;

        let metadata = wal.metadata().map_err(|e| describe(&self.wal, e))?;
        let identity = (metadata.dev(), metadata.ino());
        let mut last_wal = lock(&self.last_wal);
        if *last_wal != Some(identity) {
            if let Some(folder) = self.wal.parent() {
                let folder = if folder.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    folder
                };
                File::open(folder)
                    .and_then(|folder| folder.sync_all())
                    .map_err(|e| describe(folder, e))?;
            }
            *last_wal = Some(identity);
        }
        Ok(())
    }
}
