//! The only way to write: every write of the store is handed, whole, to one OS thread that
//! owns the single writer connection (a plain `rusqlite` connection), and [`Writer::write`]
//! returns only once the write is on disk (the durability barrier) and, for a write other
//! processes must hear of, once the `-changes` counter has been bumped.
//!
//! The thread runs every write of a batch inside one `BEGIN IMMEDIATE` transaction, then
//! commits once and answers each write. One hand-off per batch replaces the four to six
//! round trips per write that a driver running one statement at a time costs, and the
//! batch's rows share one commit's WAL frames.
//!
//! A write whose statement fails (a uniqueness conflict) must be undone alone while the
//! others stay. A savepoint around every write would do that, at the price of copying
//! every page each write touches into SQLite's sub-journal first (a tenth of the thread's
//! time), for failures that hardly ever happen. So a batch runs without savepoints; when
//! one of its writes fails, the thread rolls the whole transaction back and runs the
//! batch again, each write in a savepoint of its own this time. Writes are therefore
//! closures that may run twice: each run starts from the same committed state, and only
//! the value of the run that commits is answered.
//!
//! The connection runs with `synchronous=NORMAL`, so a commit in WAL mode does not fsync.
//! Instead the thread hands every write of a batch, the moment the batch committed, to
//! the sync thread, which fsyncs the `-wal` file once for all of them and answers them
//! (group commit): one fsync per batch, started after its commit. SQLite itself syncs the
//! WAL before each checkpoint and the database after it, so a commit that a checkpoint
//! moved out of the WAL is on disk too.
//!
//! While an fsync runs, the thread gathers the writes that arrive instead of committing
//! them in batches of their own: they could not be answered before the next fsync anyway,
//! and every commit writes the newest page of each b-tree it touched to the WAL again, so
//! three small commits in one fsync's time wrote (and the fsync flushed) about three times
//! the pages one larger commit does. The sync thread tells the thread when it goes idle.
//! Each gathered write runs as soon as it arrives, inside the batch's transaction (begun
//! by its first write): the statements run while the disk is busy with the fsync, and
//! only the commit waits for it.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tessera_core::StoreError;
use tokio::sync::oneshot;

use super::changes::ChangeFile;
use super::checkpoint::Checkpoints;
use super::error::rusqlite_error;
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

/// The most writes one transaction takes: bounds how long the first of them waits for the
/// last.
const MOST_PER_BATCH: usize = 512;

/// Statements the thread keeps prepared: every write statement of the store, and then some.
const PREPARED_STATEMENTS: usize = 128;

/// How the writer thread opens (and, after a failure, reopens) its connection.
#[derive(Debug, Clone)]
pub(super) struct Opener {
    pub(super) path: PathBuf,
    pub(super) busy_timeout: Duration,
    pub(super) journal_size_limit: u64,
}

impl Opener {
    fn open(&self) -> rusqlite::Result<Connection> {
        // No CREATE: a file deleted under a running store must not come back empty.
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(self.busy_timeout)?;
        connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        // Checkpoints run beside the writer, not inside its commits (`checkpoint.rs`); a
        // WAL that grew during a burst is cut back to `journal_size_limit` when it starts
        // again.
        connection.execute_batch(&format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {}",
            self.journal_size_limit
        ))?;
        let journal: String =
            connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        let synchronous: i64 = connection.query_row(sql::SYNCHRONOUS, [], |row| row.get(0))?;
        let foreign_keys: i64 = connection.query_row(sql::FOREIGN_KEYS, [], |row| row.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") || synchronous != 1 || foreign_keys != 1 {
            return Err(own_error(
                "the writer connection refused journal_mode=WAL, synchronous=NORMAL or \
                 foreign_keys=ON",
            ));
        }
        // SQLite opens a file it cannot open for writing (`chattr +i`, a read-only mount)
        // read-only without a word, and such a writer would refuse every write for good,
        // even after the file became writable. A write transaction fails at once on a
        // read-only connection: the thread then drops it and opens a fresh one at the next
        // batch, which answers 503 in the meantime.
        connection.execute_batch(sql::PROBE_WRITE_LOCK)?;
        Ok(connection)
    }
}

/// The writer thread's queue, the durability barrier and the checkpoint task.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    barrier: Arc<SyncBarrier>,
    checkpoints: Checkpoints,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Stops the thread once every `Writer` is gone: the sync thread holds a sender of the
    /// queue too, so the queue alone would never tell the thread that no one is left.
    stop: mpsc::Sender<Job>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.stop.send(Job::Stop);
    }
}

impl Writer {
    /// Starts the writer thread, which opens its connection at once: an error opening it
    /// is returned here. `checkpoint` is the checkpoint task's own connection.
    pub(super) async fn start(
        opener: Opener,
        changes: Option<Arc<ChangeFile>>,
        checkpoint: sqlx::SqlitePool,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let (opened, first) = oneshot::channel();
        let barrier = Arc::new(SyncBarrier::new(&opener.path));
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn({
                let barrier = Arc::clone(&barrier);
                let idle = jobs.clone();
                move || {
                    let syncer = std::thread::Builder::new()
                        .name("sqlite-sync".to_owned())
                        .spawn({
                            let barrier = Arc::clone(&barrier);
                            move || barrier.run(&idle)
                        });
                    let syncer = match syncer {
                        Ok(syncer) => syncer,
                        Err(error) => {
                            let _ = opened.send(Some(StoreError::Unavailable(format!(
                                "cannot start the sync thread: {error}"
                            ))));
                            return;
                        }
                    };
                    let connection = opener.open();
                    let failed = connection.as_ref().err().map(rusqlite_error);
                    let _ = opened.send(failed);
                    if let Ok(connection) = connection {
                        WriterThread {
                            barrier: Arc::clone(&barrier),
                            opener,
                            connection: Some(connection),
                            changes,
                        }
                        .run(&queue);
                    }
                    // Every committed write is registered by now; the sync thread answers
                    // them all before it stops.
                    barrier.stop();
                    let _ = syncer.join();
                }
            })
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot start the writer thread: {error}"))
            })?;
        let failed = first.await.unwrap_or_else(|_| {
            Some(StoreError::Unavailable(
                "the writer thread stopped".to_owned(),
            ))
        });
        if let Some(error) = failed {
            let _ = thread.join();
            checkpoint.close().await;
            return Err(error);
        }
        let checkpoints = Checkpoints::start(checkpoint, Runner { jobs: jobs.clone() });
        Ok(Self {
            shared: Arc::new(Shared {
                barrier,
                checkpoints,
                closed: AtomicBool::new(false),
                thread: Mutex::new(Some(thread)),
                stop: jobs.clone(),
            }),
            jobs,
        })
    }

    /// Runs `work` on the writer connection inside the thread's current transaction and
    /// returns its value once the transaction committed and is on disk. `work` answers its
    /// value and whether it changed a row; an error undoes its statements alone. A
    /// precondition that no longer holds is a value like any other, and waits for the disk
    /// all the same: it rests on rows an earlier write committed.
    pub(super) async fn write<T, F>(&self, notify: Notify, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<(T, bool)> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job = Job::Write(Box::new(Queued {
            work,
            value: None,
            notify,
            answer,
        }));
        self.jobs.send(job).map_err(|_| closed())?;
        let value = answered.await.map_err(|_| stopped())??;
        self.shared.checkpoints.written();
        Ok(value)
    }

    /// Waits until every write committed so far is on disk.
    pub(super) async fn sync(&self) -> Result<(), StoreError> {
        self.shared.barrier.wait().await
    }

    pub(super) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    pub(super) async fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.checkpoints.stop().await;
        // The thread answers what is queued before the stop, then closes the connection:
        // when the last connection closes, SQLite checkpoints the whole WAL and removes it.
        let _ = self.jobs.send(Job::Stop);
        let thread = lock(&self.shared.thread).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".to_owned())
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the writer thread stopped".to_owned())
}

/// Runs a closure on the writer connection outside any write: the checkpoint that must
/// not race the writer's appends.
#[derive(Debug, Clone)]
pub(super) struct Runner {
    jobs: mpsc::Sender<Job>,
}

impl Runner {
    /// `PRAGMA wal_checkpoint(PASSIVE)` on the writer connection; the frames in the WAL and
    /// how many of them are now in the database file.
    pub(super) async fn checkpoint(&self) -> Result<(i64, i64), StoreError> {
        let (answer, answered) = oneshot::channel();
        let job = Job::Run(Box::new(move |connection: &Connection| {
            let done = connection
                .query_row(sql::WAL_CHECKPOINT_PASSIVE, [], |row| {
                    Ok((row.get(1)?, row.get(2)?))
                })
                .map_err(|error| rusqlite_error(&error));
            let _ = answer.send(done);
        }));
        self.jobs.send(job).map_err(|_| closed())?;
        answered.await.map_err(|_| stopped())?
    }
}

enum Job {
    Write(Box<dyn QueuedWrite>),
    /// Run between batches, outside any transaction; not run when the connection cannot
    /// be opened.
    Run(Box<dyn FnOnce(&Connection) + Send>),
    /// The sync thread went idle: writes gathered while it synced may commit now.
    SyncIdle,
    Stop,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Write(_) => "Job::Write",
            Self::Run(_) => "Job::Run",
            Self::SyncIdle => "Job::SyncIdle",
            Self::Stop => "Job::Stop",
        })
    }
}

/// A write waiting in the queue, its value kept from when it ran until its batch commits.
trait QueuedWrite: Send {
    /// Runs the write's statements; whether other processes must hear of it. A later run
    /// (after the batch was rolled back) replaces the value of an earlier one.
    fn run(&mut self, connection: &Connection) -> rusqlite::Result<bool>;
    /// Answers the write: with its value once the fsync after its commit succeeded, or
    /// with the error that failed it.
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>);
}

struct Queued<T, F> {
    work: F,
    value: Option<T>,
    notify: Notify,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> QueuedWrite for Queued<T, F>
where
    T: Send,
    F: Fn(&Connection) -> rusqlite::Result<(T, bool)> + Send,
{
    fn run(&mut self, connection: &Connection) -> rusqlite::Result<bool> {
        self.value = None;
        let (value, changed) = (self.work)(connection)?;
        self.value = Some(value);
        Ok(changed && self.notify == Notify::OtherProcesses)
    }

    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) {
        let answer = match (outcome, self.value) {
            (Ok(()), Some(value)) => Ok(value),
            (Ok(_), None) => Err(StoreError::Unavailable(
                "a write was answered before it ran".to_owned(),
            )),
            (Err(error), _) => Err(error),
        };
        // A caller that went away no longer needs its answer; its write stands.
        let _ = self.answer.send(answer);
    }
}

struct WriterThread {
    /// Where committed writes wait for their fsync.
    barrier: Arc<SyncBarrier>,
    opener: Opener,
    /// `None` after a failure that may have left the connection unusable; reopened at the
    /// next batch.
    connection: Option<Connection>,
    changes: Option<Arc<ChangeFile>>,
}

impl WriterThread {
    fn run(mut self, queue: &mpsc::Receiver<Job>) {
        let mut stop = false;
        while !stop {
            let Ok(first) = queue.recv() else {
                return;
            };
            let mut batch = OpenBatch::default();
            let mut runs = Vec::new();
            let mut next = Some(first);
            while let Some(job) = next {
                match job {
                    Job::Write(write) => self.run_in_batch(&mut batch, write),
                    Job::Run(run) => runs.push(run),
                    Job::SyncIdle => {}
                    Job::Stop => stop = true,
                }
                next = if batch.writes.len() >= MOST_PER_BATCH {
                    None
                } else if let Ok(job) = queue.try_recv() {
                    Some(job)
                } else if !stop && !batch.writes.is_empty() && self.barrier.is_syncing() {
                    // The next job, or the news that the fsync in progress is over.
                    queue.recv().ok()
                } else {
                    None
                };
            }
            if !batch.writes.is_empty() {
                self.commit_batch(batch);
            }
            for run in runs {
                if let Ok(connection) = self.connection() {
                    run(connection);
                }
            }
        }
    }

    fn connection(&mut self) -> Result<&Connection, StoreError> {
        if self.connection.is_none() {
            let opened = self.opener.open().map_err(|error| {
                tracing::warn!(%error, "cannot open the SQLite writer connection");
                rusqlite_error(&error)
            })?;
            self.connection = Some(opened);
        }
        self.connection.as_ref().ok_or_else(stopped)
    }

    /// Adds `write` to the batch and, unless a write of it failed, runs it at once inside
    /// the batch's transaction (begun by its first write): the batch's statements run
    /// while the fsync of the previous one is in progress, and only its commit waits.
    fn run_in_batch(&mut self, batch: &mut OpenBatch, mut write: Box<dyn QueuedWrite>) {
        let started = Instant::now();
        if matches!(batch.progress, Progress::Empty) {
            batch.progress = match self.connection() {
                Ok(connection) => match execute(connection, sql::BEGIN_IMMEDIATE) {
                    Ok(()) => Progress::Running,
                    Err(error) => Progress::Unavailable {
                        // A lock held elsewhere past `busy_timeout` leaves this connection
                        // as good as it was.
                        keep_connection: is_busy(&error),
                        error: rusqlite_error(&error),
                    },
                },
                Err(error) => Progress::Unavailable {
                    error,
                    keep_connection: false,
                },
            };
        }
        if let (Progress::Running, Some(connection)) = (&batch.progress, &self.connection) {
            match write.run(connection) {
                Ok(told) => batch.told.push(told),
                Err(error) => batch.progress = Progress::WriteFailed(error),
            }
        }
        batch.writes.push(write);
        batch.busy += started.elapsed();
    }

    /// Commits the batch and answers its writes; if a write failed, first rolls back and
    /// runs the batch again with a savepoint per write.
    fn commit_batch(&mut self, batch: OpenBatch) {
        let started = Instant::now();
        let OpenBatch {
            writes,
            told,
            progress,
            busy,
        } = batch;
        let size = writes.len();
        let outcome = match (progress, &self.connection) {
            (Progress::Running, Some(connection)) => {
                Self::commit(connection, writes.into_iter().zip(told).collect())
            }
            (Progress::WriteFailed(error), Some(connection)) => {
                if connection.is_autocommit() || may_break_the_connection(&error) {
                    // The transaction is gone, or the file refuses writes: every write of
                    // the batch would meet the same.
                    failed_batch(connection, &error, writes)
                } else if let Err(undo) = execute(connection, sql::ROLLBACK) {
                    failed_batch(connection, &undo, writes)
                } else {
                    Self::transaction_with_savepoints(connection, writes)
                }
            }
            (
                Progress::Unavailable {
                    error,
                    keep_connection,
                },
                _,
            ) => Batch::Failed {
                error,
                writes,
                keep_connection,
            },
            (Progress::Empty | Progress::Running | Progress::WriteFailed(_), _) => Batch::Failed {
                error: stopped(),
                writes,
                keep_connection: false,
            },
        };
        // Recorded before any write is answered, so that whoever saw an answer sees its
        // batch counted.
        metrics::histogram!("tessera_sqlite_write_batch_size").record(size as f64);
        metrics::histogram!("tessera_sqlite_write_batch_seconds")
            .record((busy + started.elapsed()).as_secs_f64());
        self.settle(outcome);
    }

    /// Answers the writes of a committed or failed batch.
    fn settle(&mut self, outcome: Batch) {
        match outcome {
            Batch::Committed { written } => {
                let told = written.iter().filter(|(_, told)| *told).count() as u64;
                let bumped = match &self.changes {
                    Some(changes) if told > 0 => changes.bump(told),
                    _ => Ok(()),
                };
                // Handed to the sync thread all in one go, so that one fsync, started after
                // this commit, covers the whole batch; the sync thread answers them, so each
                // caller is woken once, when its write is on disk.
                let mut waiters = Vec::with_capacity(written.len());
                for (write, told) in written {
                    match (&bumped, told) {
                        (Err(error), true) => write.answer(Err(error.clone())),
                        _ => waiters.push(Waiter::Write(write)),
                    }
                }
                self.barrier.register(waiters);
            }
            Batch::Failed {
                error,
                writes,
                keep_connection,
            } => {
                if !keep_connection {
                    // SQLite may have rolled back on its own (a full disk, an I/O error)
                    // or left the file read-only; a fresh connection starts clean.
                    self.connection = None;
                }
                for write in writes {
                    write.answer(Err(error.clone()));
                }
            }
        }
    }

    /// Runs every write in one transaction, each in a savepoint so that a failing write is
    /// undone alone, and commits it.
    fn transaction_with_savepoints(
        connection: &Connection,
        writes: Vec<Box<dyn QueuedWrite>>,
    ) -> Batch {
        let writes = match Self::begin(connection, writes) {
            Ok(writes) => writes,
            Err(failed) => return failed,
        };
        let mut written = Vec::with_capacity(writes.len());
        let mut writes = writes.into_iter();
        while let Some(mut write) = writes.next() {
            let ran =
                execute(connection, sql::SAVEPOINT_WRITE).and_then(|()| write.run(connection));
            match ran {
                Ok(told) => {
                    if let Err(error) = execute(connection, sql::RELEASE_WRITE) {
                        return failed(connection, &error, written, write, writes);
                    }
                    written.push((write, told));
                }
                Err(error) if connection.is_autocommit() => {
                    // SQLite rolled the whole transaction back: the writes before this one
                    // are gone with it.
                    return failed(connection, &error, written, write, writes);
                }
                Err(error) if may_break_the_connection(&error) => {
                    // A read-only file, an I/O error, a full disk: the other writes of the
                    // batch would meet it too, and the connection may never write again
                    // (one opened during a `chattr +i` answered every later write
                    // SQLITE_READONLY once the file was writable, although its
                    // `BEGIN IMMEDIATE` succeeded). Fail the batch, start afresh.
                    return failed(connection, &error, written, write, writes);
                }
                Err(error) => {
                    if let Err(undo) = execute(connection, sql::ROLLBACK_TO_WRITE)
                        .and_then(|()| execute(connection, sql::RELEASE_WRITE))
                    {
                        return failed(connection, &undo, written, write, writes);
                    }
                    write.answer(Err(rusqlite_error(&error)));
                }
            }
        }
        Self::commit(connection, written)
    }

    /// Opens the batch's `BEGIN IMMEDIATE` transaction, or fails the whole batch.
    fn begin(
        connection: &Connection,
        writes: Vec<Box<dyn QueuedWrite>>,
    ) -> Result<Vec<Box<dyn QueuedWrite>>, Batch> {
        match execute(connection, sql::BEGIN_IMMEDIATE) {
            Ok(()) => Ok(writes),
            Err(error) => Err(Batch::Failed {
                // A lock held elsewhere past `busy_timeout` leaves this connection as good
                // as it was.
                keep_connection: is_busy(&error),
                error: rusqlite_error(&error),
                writes,
            }),
        }
    }

    fn commit(connection: &Connection, written: Vec<(Box<dyn QueuedWrite>, bool)>) -> Batch {
        if let Err(error) = execute(connection, sql::COMMIT) {
            let _ = execute(connection, sql::ROLLBACK);
            return Batch::Failed {
                error: rusqlite_error(&error),
                writes: written.into_iter().map(|(write, _)| write).collect(),
                keep_connection: false,
            };
        }
        Batch::Committed { written }
    }
}

enum Batch {
    Committed {
        /// Each write, and whether other processes must hear of it.
        written: Vec<(Box<dyn QueuedWrite>, bool)>,
    },
    Failed {
        error: StoreError,
        writes: Vec<Box<dyn QueuedWrite>>,
        keep_connection: bool,
    },
}

/// The batch being gathered.
#[derive(Default)]
struct OpenBatch {
    writes: Vec<Box<dyn QueuedWrite>>,
    /// For each write that ran, whether other processes must hear of it.
    told: Vec<bool>,
    progress: Progress,
    /// Time spent beginning the transaction and running the writes.
    busy: Duration,
}

#[derive(Default)]
enum Progress {
    /// No write yet, so no transaction.
    #[default]
    Empty,
    /// The transaction is open and every write so far ran.
    Running,
    /// A write failed: the writes after it were only queued, and the batch runs again
    /// with savepoints before it commits.
    WriteFailed(rusqlite::Error),
    /// No transaction could be begun: every write of the batch fails with this.
    Unavailable {
        error: StoreError,
        keep_connection: bool,
    },
}

/// A failure that ends the whole transaction: rolls back what is left of it and fails
/// every write of the batch.
fn failed(
    connection: &Connection,
    error: &rusqlite::Error,
    written: Vec<(Box<dyn QueuedWrite>, bool)>,
    current: Box<dyn QueuedWrite>,
    rest: impl Iterator<Item = Box<dyn QueuedWrite>>,
) -> Batch {
    let writes = written
        .into_iter()
        .map(|(write, _)| write)
        .chain(std::iter::once(current))
        .chain(rest)
        .collect();
    failed_batch(connection, error, writes)
}

/// A failure that ends the whole transaction before any write was set apart: rolls back
/// what is left of it and fails every write of the batch.
fn failed_batch(
    connection: &Connection,
    error: &rusqlite::Error,
    writes: Vec<Box<dyn QueuedWrite>>,
) -> Batch {
    if !connection.is_autocommit() {
        let _ = execute(connection, sql::ROLLBACK);
    }
    Batch::Failed {
        error: rusqlite_error(error),
        writes,
        keep_connection: false,
    }
}

/// An error of the writer's own, reported as SQLite's generic error.
fn own_error(message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
        Some(message.to_owned()),
    )
}

fn execute(connection: &Connection, statement: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(statement)?.execute([])?;
    Ok(())
}

/// Whether a failed statement may have left the connection unable to write again, as
/// opposed to a refusal that leaves it as it was (a broken uniqueness rule).
fn may_break_the_connection(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::DiskFull
                | rusqlite::ErrorCode::CannotOpen
        )
    )
}

fn is_busy(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

type SyncAnswer = Result<(), String>;

/// What waits for the next fsync.
enum Waiter {
    /// A committed write, answered with its value once the fsync succeeded.
    Write(Box<dyn QueuedWrite>),
    /// A caller of [`Writer::sync`].
    Sync(oneshot::Sender<SyncAnswer>),
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Write(_) => "Waiter::Write",
            Self::Sync(_) => "Waiter::Sync",
        })
    }
}

impl Waiter {
    fn answer(self, synced: &SyncAnswer) {
        match self {
            Self::Write(write) => {
                write.answer(synced.clone().map_err(StoreError::Unavailable));
            }
            // A waiter that went away no longer needs its answer.
            Self::Sync(waiter) => {
                let _ = waiter.send(synced.clone());
            }
        }
    }
}

/// Group commit: the writer thread registers every write of a batch the moment the batch
/// committed; the sync thread takes everything registered, fsyncs, and answers it all, so
/// a write is only ever answered by an fsync that started after its commit.
#[derive(Debug)]
struct SyncBarrier {
    database: PathBuf,
    wal: PathBuf,
    state: Mutex<BarrierState>,
    /// Wakes the sync thread: something was registered, or it is to stop.
    wake: Condvar,
    /// The WAL file the last fsync found (device, inode). A WAL file new since then
    /// (SQLite removes it when the last connection closes) needs its folder entry synced
    /// once, or a crash could lose the whole file.
    last_wal: Mutex<Option<(u64, u64)>>,
}

#[derive(Debug, Default)]
struct BarrierState {
    waiting: Vec<Waiter>,
    syncing: bool,
    stopping: bool,
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
            wake: Condvar::new(),
            last_wal: Mutex::default(),
        }
    }

    /// Hands `waiters` to the next fsync.
    fn register(&self, waiters: Vec<Waiter>) {
        if waiters.is_empty() {
            return;
        }
        lock(&self.state).waiting.extend(waiters);
        self.wake.notify_one();
    }

    /// Whether an fsync is running or about to.
    fn is_syncing(&self) -> bool {
        let state = lock(&self.state);
        state.syncing || !state.waiting.is_empty()
    }

    /// Returns once an fsync that started after this call has finished.
    async fn wait(&self) -> Result<(), StoreError> {
        let (waiter, synced) = oneshot::channel();
        self.register(vec![Waiter::Sync(waiter)]);
        match synced.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Unavailable(message)),
            Err(_) => Err(StoreError::Unavailable(
                "the database file sync stopped".to_owned(),
            )),
        }
    }

    /// Ends the sync thread once it has answered everything registered.
    fn stop(&self) {
        lock(&self.state).stopping = true;
        self.wake.notify_one();
    }

    /// The sync thread: fsyncs whenever something is registered, and tells the writer
    /// thread (`idle`) each time it has nothing left to sync.
    fn run(&self, idle: &mpsc::Sender<Job>) {
        loop {
            let batch = {
                let mut state = lock(&self.state);
                loop {
                    if !state.waiting.is_empty() {
                        state.syncing = true;
                        break std::mem::take(&mut state.waiting);
                    }
                    if std::mem::replace(&mut state.syncing, false) {
                        // A writer thread that stopped needs no news.
                        let _ = idle.send(Job::SyncIdle);
                    }
                    if state.stopping {
                        return;
                    }
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let started = Instant::now();
            let synced = self.sync_files();
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
                waiter.answer(&synced);
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
