//! The storage half of the reliability suite (docs/RELIABILITY.md, "The reliability
//! suite"): the real binary on real SQLite files.
//!
//! - P2: a store that issued 1,000 tokens holds none of them, nor their random parts, in
//!   any column of any table, and a row written into it mints no token.
//! - P6: writes the server acknowledged survive `kill -9` at a random moment under load,
//!   and the file passes `PRAGMA integrity_check` after every crash.
//! - P7: under `strace`, every acknowledged write's response leaves after an fsync of the
//!   WAL that started after the request arrived.
//! - P11: a full disk and an immutable database file turn writes into 503, never 200,
//!   while reads keep answering; the server recovers when the fault clears.
//!
//! Each test prints `figure ...` lines, which `scripts/reliability` collects. The short
//! version runs in `cargo test`; `TESSERA_RELIABILITY_LONG=1` runs the long one.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, Connection as _};
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::token::{TokenHash, TokenKind};
use tessera_core::{Clock as _, SystemClock};
use tessera_store::test_support::TestDatabase;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use common::PATIENCE;

/// The binary, logging warnings only: nothing here reads its logs.
fn tessera() -> Command {
    common::tessera("warn")
}

/// Whether the long version was asked for (`scripts/reliability --long`).
fn long_run() -> bool {
    std::env::var("TESSERA_RELIABILITY_LONG").is_ok_and(|value| value == "1")
}

/// A uniformly drawn number below `bound` (a small bound, so the modulo bias is nil).
fn random_below(bound: u64) -> anyhow::Result<u64> {
    Ok(getrandom::u64()? % bound.max(1))
}

/// A database file on disk (or on a mount the test made), its key file and a
/// confidential client created with the CLI, allowed every default grant.
struct Files {
    database: PathBuf,
    database_url: String,
    key_file: PathBuf,
    client: (String, String),
}

impl Files {
    /// The database in `database_dir`, the key file in `key_dir` (apart, so a fault made
    /// to the database's file system leaves the key alone).
    async fn create(database_dir: &Path, key_dir: &Path) -> anyhow::Result<Self> {
        let database = database_dir.join("tessera.db");
        let database_url = format!("sqlite://{}", database.display());
        Self::on(database_url, database, key_dir).await
    }

    /// On the store at `database_url`, whose SQLite file is `database` (none for
    /// PostgreSQL: an empty path), with the key file in `key_dir`.
    async fn on(database_url: String, database: PathBuf, key_dir: &Path) -> anyhow::Result<Self> {
        let client = common::create_client(tessera(), &database_url, "reliability").await?;
        Ok(Self {
            database,
            database_url,
            key_file: key_dir.join("tessera.key"),
            client,
        })
    }

    /// The file beside the database with `suffix` appended to its name (`-wal`).
    fn beside(&self, suffix: &str) -> PathBuf {
        let mut name = self.database.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    }
}

/// A running `tessera serve` on [`Files`], killed when dropped.
struct Node {
    child: Child,
    api: Api,
}

impl Node {
    async fn start(files: &Files) -> anyhow::Result<Self> {
        Self::start_with(tessera(), files, &[]).await
    }

    /// Starts the server run by `command` (a fresh command from [`tessera`] or
    /// [`common::tessera_under`]) with `extra` arguments.
    async fn start_with(command: Command, files: &Files, extra: &[&str]) -> anyhow::Result<Self> {
        let key_file = files.key_file.to_str().context("key file path")?;
        let (child, base, http) =
            common::serve(command, &files.database_url, key_file, extra).await?;
        Ok(Self {
            child,
            api: Api {
                http,
                base,
                client: files.client.clone(),
            },
        })
    }

    /// `kill -9`, and waits until the process is gone.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .context("the server did not die")??;
        Ok(())
    }
}

/// The HTTP API of one server, as its client calls it.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    client: (String, String),
}

/// One access token and the refresh token issued with it.
#[derive(Clone, Debug)]
struct Pair {
    access: String,
    refresh: String,
}

impl Pair {
    fn from_body(body: &Value) -> anyhow::Result<Self> {
        let field = |name: &str| {
            body[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no {name} in {body}"))
        };
        Ok(Self {
            access: field("access_token")?,
            refresh: field("refresh_token")?,
        })
    }
}

impl Api {
    /// A client-authenticated form POST: the status and the body (JSON, or `Null` when
    /// empty). A transport error means no complete answer arrived.
    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.client.0, Some(&self.client.1))
            .form(form)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// An anonymous visitor's access and refresh token.
    async fn issue(&self) -> Result<(StatusCode, Value), reqwest::Error> {
        self.post("/oauth20/token", &[("grant_type", "password")])
            .await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<(StatusCode, Value), reqwest::Error> {
        self.post(
            "/oauth20/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// RFC 7009 revocation: an access token that is its session's newest, or any refresh
    /// token, ends the whole session.
    async fn revoke(&self, token: &str) -> Result<(StatusCode, Value), reqwest::Error> {
        self.post("/oauth20/revoke", &[("token", token)]).await
    }

    /// Whether introspection calls the token active. Introspection only reads.
    async fn active(&self, token: &str) -> anyhow::Result<bool> {
        let (status, body) = self
            .post("/oauth20/introspect", &[("token", token)])
            .await?;
        ensure!(
            status == StatusCode::OK,
            "introspection answered {status}: {body}"
        );
        body["active"]
            .as_bool()
            .with_context(|| format!("no `active` in {body}"))
    }

    /// A new session's tokens, which must be issued.
    async fn issued(&self) -> anyhow::Result<Pair> {
        let (status, body) = self.issue().await?;
        ensure!(
            status == StatusCode::OK,
            "issuance answered {status}: {body}"
        );
        Pair::from_body(&body)
    }
}

/// `PRAGMA integrity_check` of the SQLite file at `path`: its rows joined, `ok` when sound.
async fn integrity_check(path: &Path) -> anyhow::Result<String> {
    let options = SqliteConnectOptions::new().filename(path);
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut connection)
        .await?;
    connection.close().await?;
    Ok(rows.join("; "))
}

/// The processes that have `path` open, from `/proc/*/fd`.
fn processes_holding(path: &Path) -> Vec<u32> {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    processes
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let holds = std::fs::read_dir(entry.path().join("fd"))
                .ok()?
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path));
            holds.then_some(pid)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// P6: kill -9 loop
// ---------------------------------------------------------------------------------------

/// A session as the traffic saw it: every acknowledged generation of its tokens, oldest
/// first, and what became of it.
#[derive(Debug)]
struct TrackedSession {
    generations: Vec<Pair>,
    /// A revocation was acknowledged: every token of the session must be dead.
    revoked: bool,
    /// A rotation or revocation was sent and not answered (the crash cut it off, or a
    /// 503): it may or may not have happened, so the newest generation proves nothing.
    uncertain: bool,
}

impl TrackedSession {
    fn newest(&self) -> Option<&Pair> {
        self.generations.last()
    }
}

/// Concurrent clients of one server per crash cycle.
const CRASH_WORKERS: usize = 4;

/// Sends issuances, rotations and revocations one after another until the server stops
/// answering, and returns the sessions as acknowledged. A 5xx is a refusal to write (the
/// write may still have happened: a request timeout can answer before the store does), so
/// it makes its session uncertain; any other non-2xx is a bug.
async fn crash_traffic(api: Api) -> anyhow::Result<Vec<TrackedSession>> {
    let mut sessions: Vec<TrackedSession> = Vec::new();
    loop {
        let live: Vec<usize> = (0..sessions.len())
            .filter(|&i| !sessions[i].revoked && !sessions[i].uncertain)
            .collect();
        let roll = random_below(100)?;
        if live.is_empty() || roll < 40 {
            match api.issue().await {
                Ok((StatusCode::OK, body)) => sessions.push(TrackedSession {
                    generations: vec![Pair::from_body(&body)?],
                    revoked: false,
                    uncertain: false,
                }),
                Ok((status, _)) if status.is_server_error() => {}
                Ok((status, body)) => bail!("issuance answered {status}: {body}"),
                Err(_) => return Ok(sessions),
            }
            continue;
        }
        let pick = usize::try_from(random_below(live.len() as u64)?)?;
        let session = &mut sessions[live[pick]];
        let newest = session.newest().context("a session has tokens")?.clone();
        if roll < 75 {
            match api.refresh(&newest.refresh).await {
                Ok((StatusCode::OK, body)) => session.generations.push(Pair::from_body(&body)?),
                Ok((status, _)) if status.is_server_error() => session.uncertain = true,
                Ok((status, body)) => bail!("a rotation answered {status}: {body}"),
                Err(_) => {
                    session.uncertain = true;
                    return Ok(sessions);
                }
            }
        } else {
            // Either token of the newest generation ends the whole session.
            let token = if roll % 2 == 0 {
                &newest.refresh
            } else {
                &newest.access
            };
            match api.revoke(token).await {
                Ok((StatusCode::OK, _)) => session.revoked = true,
                Ok((status, _)) if status.is_server_error() => session.uncertain = true,
                Ok((status, body)) => bail!("a revocation answered {status}: {body}"),
                Err(_) => {
                    session.uncertain = true;
                    return Ok(sessions);
                }
            }
        }
    }
}

/// Checks every acknowledged write of `sessions` against the restarted server: returns
/// how many writes were checked, and pushes onto `lost` a line for each one that is gone.
///
/// - an acknowledged revocation: every token of the session is inactive;
/// - an acknowledged rotation: its predecessor refresh token is consumed (inactive), and
///   unless a later request on the session went unanswered, the successor is active;
/// - an acknowledged issuance never rotated nor revoked: both tokens are active.
async fn check_acknowledged(
    api: &Api,
    sessions: &[TrackedSession],
    lost: &mut Vec<String>,
) -> anyhow::Result<u64> {
    let mut checked = 0;
    for (index, session) in sessions.iter().enumerate() {
        if session.revoked {
            for (generation, pair) in session.generations.iter().enumerate() {
                for token in [&pair.access, &pair.refresh] {
                    if api.active(token).await? {
                        lost.push(format!(
                            "session {index}: a token of generation {generation} is active \
                             after an acknowledged revocation"
                        ));
                    }
                }
            }
            checked += 1;
            continue;
        }
        let Some((newest, older)) = session.generations.split_last() else {
            continue;
        };
        for (generation, pair) in older.iter().enumerate() {
            if api.active(&pair.refresh).await? {
                lost.push(format!(
                    "session {index}: the refresh token of generation {generation} is active \
                     after an acknowledged rotation"
                ));
            }
        }
        if session.uncertain {
            continue;
        }
        for token in [&newest.access, &newest.refresh] {
            if !api.active(token).await? {
                lost.push(format!(
                    "session {index}: generation {} is inactive although acknowledged \
                     and neither rotated nor revoked since",
                    older.len()
                ));
            }
        }
        checked += session.generations.len() as u64;
    }
    Ok(checked)
}

/// The crash image of `files` (database and WAL, as the killed process left them),
/// copied into `scratch` and checked there: opening the copy replays its WAL, so the
/// restarted server still has to recover from the very image the crash left.
async fn integrity_of_crash_image(files: &Files, scratch: &Path) -> anyhow::Result<String> {
    let canonical = std::fs::canonicalize(&files.database)?;
    let holders = processes_holding(&canonical);
    ensure!(
        holders.is_empty(),
        "{} is still open in processes {holders:?}",
        canonical.display()
    );
    let copy = scratch.join("crash-image.db");
    for suffix in ["", "-wal", "-shm"] {
        let mut name = copy.clone().into_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    std::fs::copy(&files.database, &copy)?;
    let wal = files.beside("-wal");
    if wal.exists() {
        let mut copy_wal = copy.clone().into_os_string();
        copy_wal.push("-wal");
        std::fs::copy(&wal, PathBuf::from(copy_wal))?;
    }
    integrity_check(&copy).await
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_at_random_moments() -> anyhow::Result<()> {
    let cycles = if long_run() { 500 } else { 3 };
    let dir = tempfile::tempdir()?;
    let scratch = tempfile::tempdir()?;
    let files = Files::create(dir.path(), dir.path()).await?;

    let mut unverified: Vec<TrackedSession> = Vec::new();
    let mut checked = 0;
    let mut lost = Vec::new();
    let mut integrity_failures = Vec::new();
    for cycle in 0..=cycles {
        // Each start is the restart after the previous cycle's crash.
        let node = Node::start(&files).await?;
        checked += check_acknowledged(&node.api, &unverified, &mut lost).await?;
        if cycle == cycles {
            node.kill().await?;
            break;
        }
        let mut workers = JoinSet::new();
        for _ in 0..CRASH_WORKERS {
            workers.spawn(crash_traffic(node.api.clone()));
        }
        // A random moment while every worker has a request in flight or about to be.
        tokio::time::sleep(Duration::from_millis(20 + random_below(400)?)).await;
        node.kill().await?;
        unverified.clear();
        while let Some(sessions) = workers.join_next().await {
            unverified.extend(sessions??);
        }
        let integrity = integrity_of_crash_image(&files, scratch.path()).await?;
        if integrity != "ok" {
            integrity_failures.push(format!("cycle {cycle}: {integrity}"));
        }
    }
    let integrity = integrity_check(&files.database).await?;
    if integrity != "ok" {
        integrity_failures.push(format!("after the last restart: {integrity}"));
    }
    println!(
        "figure P6: cycles={cycles} acked_writes_checked={checked} acked_writes_lost={} \
         integrity_failures={}",
        lost.len(),
        integrity_failures.len()
    );
    ensure!(lost.is_empty(), "acknowledged writes lost: {lost:#?}");
    ensure!(
        integrity_failures.is_empty(),
        "integrity_check failed: {integrity_failures:#?}"
    );
    ensure!(checked > 0, "no acknowledged write was checked");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// P7: fsync before acknowledge, under strace
// ---------------------------------------------------------------------------------------

/// Whether `strace` can be run; the test fails with this message when not.
async fn strace_available() -> anyhow::Result<()> {
    let found = Command::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success());
    ensure!(
        found,
        "strace is not installed: the P7 test needs it (`apt-get install strace`; .ci/run \
         installs it)"
    );
    Ok(())
}

/// The pid of a child process of `parent` (the traced server under strace).
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let after_comm = &stat[stat.rfind(')')? + 1..];
            let ppid = after_comm.split_whitespace().nth(1)?.parse::<u32>().ok()?;
            (ppid == parent).then_some(pid)
        })
}

/// A process killed with SIGKILL when dropped: a traced server outlives a killed strace.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// What the trace shows, in order.
#[derive(Debug, PartialEq)]
enum Traced {
    /// A socket read that returned the start of an HTTP request.
    RequestRead,
    /// An fsync or fdatasync of the database or its WAL began (by this thread).
    SyncStarted { pid: String },
    /// That thread's sync returned 0.
    SyncDone { pid: String },
    /// A socket write that starts an HTTP response, with its status.
    ResponseWritten { status: u16 },
}

/// Reads an `strace -f -tt -yy -s N` trace into events. A syscall another thread
/// interrupted is printed as `<unfinished ...>` then `<... name resumed>`: it started at
/// the first line and returned at the second.
fn traced_events(trace: &str, database: &str) -> Vec<Traced> {
    let wal_fd = format!("{database}-wal>");
    let database_fd = format!("{database}>");
    let mut unfinished: std::collections::HashMap<String, String> =
        std::collections::HashMap::new();
    let mut events = Vec::new();
    for line in trace.lines() {
        // `PID TIME CALL`, the pid padded with spaces.
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((_time, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let (name, call, started, finished) = if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            let head = unfinished.remove(pid).unwrap_or_default();
            (name.to_owned(), format!("{head}{tail}"), false, true)
        } else if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            unfinished.insert(pid.to_owned(), head.to_owned());
            let name = head.split('(').next().unwrap_or_default().to_owned();
            (name, head.to_owned(), true, false)
        } else {
            let name = rest.split('(').next().unwrap_or_default().to_owned();
            (name, rest.to_owned(), true, true)
        };
        let on_socket = call.contains("<TCP");
        match name.as_str() {
            "fsync" | "fdatasync" if call.contains(&wal_fd) || call.contains(&database_fd) => {
                if started {
                    events.push(Traced::SyncStarted {
                        pid: pid.to_owned(),
                    });
                }
                if finished && call.trim_end().ends_with("= 0") {
                    events.push(Traced::SyncDone {
                        pid: pid.to_owned(),
                    });
                }
            }
            "read" | "recvfrom" | "readv" | "recvmsg"
                if on_socket
                    && finished
                    && ["\"POST ", "\"DELETE ", "\"GET ", "\"PUT "]
                        .iter()
                        .any(|method| call.contains(method)) =>
            {
                events.push(Traced::RequestRead);
            }
            "write" | "writev" | "sendto" | "sendmsg" if on_socket && started => {
                if let Some(at) = call.find("\"HTTP/1.1 ") {
                    let code = call.get(at + 10..at + 13).and_then(|c| c.parse().ok());
                    events.push(Traced::ResponseWritten {
                        status: code.unwrap_or(0),
                    });
                }
            }
            _ => {}
        }
    }
    events
}

/// `(acknowledged writes, of them answered before an fsync of the WAL that started after
/// the request was read)` for requests sent one at a time.
fn acknowledgements(events: &[Traced]) -> (u64, u64) {
    let mut request: u64 = 0;
    // The request being served, and whether a sync started after it has returned.
    let mut pending: Option<(u64, bool)> = None;
    let mut syncing: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let (mut acknowledged, mut before_fsync) = (0, 0);
    for event in events {
        match event {
            Traced::RequestRead => {
                request += 1;
                pending = Some((request, false));
            }
            Traced::SyncStarted { pid } => {
                if let Some((current, _)) = pending {
                    syncing.insert(pid, current);
                }
            }
            Traced::SyncDone { pid } => {
                if let (Some(started_for), Some((current, synced))) =
                    (syncing.remove(pid.as_str()), pending.as_mut())
                    && started_for == *current
                {
                    *synced = true;
                }
            }
            Traced::ResponseWritten { status } => {
                if let Some((_, synced)) = pending.take()
                    && (200..300).contains(status)
                {
                    acknowledged += 1;
                    if !synced {
                        before_fsync += 1;
                    }
                }
            }
        }
    }
    (acknowledged, before_fsync)
}

#[tokio::test]
async fn every_acknowledged_write_is_answered_after_an_fsync_of_the_wal() -> anyhow::Result<()> {
    strace_available().await?;
    let rounds = if long_run() { 100 } else { 8 };
    let dir = tempfile::tempdir()?;
    let files = Files::create(dir.path(), dir.path()).await?;
    let trace_path = dir.path().join("strace.txt");
    let wrapper: Vec<&OsStr> = [
        "strace",
        "-f",
        "-tt",
        // File paths, and the addresses of TCP sockets.
        "-yy",
        "-s",
        "48",
        "-e",
        "trace=fdatasync,fsync,write,writev,sendto,sendmsg,read,readv,recvfrom,recvmsg",
        "-o",
    ]
    .into_iter()
    .map(OsStr::new)
    .chain([trace_path.as_os_str()])
    .collect();
    let mut node = Node::start_with(common::tessera_under(&wrapper, "warn"), &files, &[]).await?;
    let strace_pid = node.child.id().context("strace has no pid")?;
    let server = KillOnDrop(child_of(strace_pid).context("no server under strace")?);

    // One request at a time, so the trace reads as request, sync, response.
    let mut acknowledged_by_client = 0;
    for _ in 0..rounds {
        let first = node.api.issued().await?;
        let (status, body) = node.api.refresh(&first.refresh).await?;
        ensure!(
            status == StatusCode::OK,
            "refresh answered {status}: {body}"
        );
        let second = Pair::from_body(&body)?;
        let (status, body) = node.api.revoke(&second.refresh).await?;
        ensure!(
            status == StatusCode::OK,
            "revocation answered {status}: {body}"
        );
        acknowledged_by_client += 3;
    }
    // SIGTERM to the server: strace writes out its trace and exits with it.
    let stopped = Command::new("kill")
        .args(["-TERM", &server.0.to_string()])
        .status()
        .await?;
    ensure!(stopped.success(), "kill -TERM failed");
    tokio::time::timeout(PATIENCE, node.child.wait())
        .await
        .context("strace did not exit")??;
    drop(server);

    let trace = std::fs::read_to_string(&trace_path)?;
    let database = std::fs::canonicalize(&files.database)?;
    let events = traced_events(&trace, &database.to_string_lossy());
    let (acknowledged, before_fsync) = acknowledgements(&events);
    println!("figure P7: acknowledged_writes={acknowledged} acks_before_fsync={before_fsync}");
    ensure!(
        acknowledged == acknowledged_by_client,
        "the trace shows {acknowledged} acknowledged writes, the client got \
         {acknowledged_by_client}: the trace was not read right"
    );
    ensure!(
        before_fsync == 0,
        "{before_fsync} writes were acknowledged before an fsync of the WAL"
    );
    Ok(())
}

#[test]
fn the_trace_reader_orders_syncs_and_responses_across_threads() {
    let db = "/tmp/x/tessera.db";
    let trace = format!(
        "10    12:00:00.000001 recvfrom(9<TCP:[127.0.0.1:1->127.0.0.1:2]>, \"POST /oauth20/token HTTP\"..., 8192, 0, NULL, NULL) = 200\n\
         11 12:00:00.000002 fdatasync(7<{db}-wal> <unfinished ...>\n\
         10 12:00:00.000003 write(3<anon_inode:[eventfd]>, \"\\1\\0\\0\\0\\0\\0\\0\\0\", 8) = 8\n\
         11 12:00:00.000004 <... fdatasync resumed>) = 0\n\
         10 12:00:00.000005 writev(9<TCP:[127.0.0.1:1->127.0.0.1:2]>, [{{iov_base=\"HTTP/1.1 200 OK\\r\\n\"...}}], 2) = 300\n\
         10 12:00:00.000006 recvfrom(9<TCP:[127.0.0.1:1->127.0.0.1:2]>, \"POST /oauth20/revoke HTTP\"..., 8192, 0, NULL, NULL) = 200\n\
         10 12:00:00.000007 sendto(9<TCP:[127.0.0.1:1->127.0.0.1:2]>, \"HTTP/1.1 200 OK\\r\\n\"..., 100, MSG_NOSIGNAL, NULL, 0) = 100\n\
         11 12:00:00.000008 fdatasync(7<{db}-wal>) = 0\n"
    );
    let events = traced_events(&trace, db);
    assert_eq!(
        events,
        vec![
            Traced::RequestRead,
            Traced::SyncStarted { pid: "11".into() },
            Traced::SyncDone { pid: "11".into() },
            Traced::ResponseWritten { status: 200 },
            Traced::RequestRead,
            Traced::ResponseWritten { status: 200 },
            Traced::SyncStarted { pid: "11".into() },
            Traced::SyncDone { pid: "11".into() },
        ]
    );
    // The second write was answered before its sync: the reader must say so.
    assert_eq!(acknowledgements(&events), (2, 1));
}

// ---------------------------------------------------------------------------------------
// P11: a full disk and an immutable file
// ---------------------------------------------------------------------------------------

/// A tmpfs mounted for one test; unmounted when dropped, whatever happened.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> anyhow::Result<Self> {
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .context("cannot run mount")?;
        ensure!(
            status.success(),
            "mount -t tmpfs failed (the P11 tests run as root)"
        );
        Ok(Self {
            path: path.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a server killed on drop may not have closed its files yet.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Files made immutable (`chattr +i`); made mutable again when dropped, whatever
/// happened, so the temporary directory can be removed.
struct Immutable {
    paths: Vec<PathBuf>,
}

impl Immutable {
    fn set(paths: &[PathBuf]) -> anyhow::Result<Self> {
        let mut guard = Self { paths: Vec::new() };
        for path in paths {
            chattr("+i", path)?;
            guard.paths.push(path.clone());
        }
        Ok(guard)
    }

    fn clear(mut self) -> anyhow::Result<()> {
        for path in std::mem::take(&mut self.paths) {
            chattr("-i", &path)?;
        }
        Ok(())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = chattr("-i", path);
        }
    }
}

fn chattr(flag: &str, path: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .context("cannot run chattr")?;
    ensure!(status.success(), "chattr {flag} {} failed", path.display());
    Ok(())
}

/// Tokens made before the fault: a live session, to attempt rotation and revocation on,
/// and a revoked one, to read.
struct BeforeFault {
    live: Pair,
    revoked: Pair,
    /// For each attempt during the fault, a session to rotate and one to revoke, so that
    /// a write the store could still take changes nothing the other checks rely on.
    to_rotate: Vec<Pair>,
    to_revoke: Vec<Pair>,
}

impl BeforeFault {
    async fn prepare(api: &Api, attempts: u32) -> anyhow::Result<Self> {
        let live = api.issued().await?;
        let revoked = api.issued().await?;
        let (status, body) = api.revoke(&revoked.refresh).await?;
        ensure!(
            status == StatusCode::OK,
            "revocation answered {status}: {body}"
        );
        let mut to_rotate = Vec::new();
        let mut to_revoke = Vec::new();
        for _ in 0..attempts {
            to_rotate.push(api.issued().await?);
            to_revoke.push(api.issued().await?);
        }
        Ok(Self {
            live,
            revoked,
            to_rotate,
            to_revoke,
        })
    }
}

/// What the writes during a fault were answered, checked against what the store then
/// holds.
#[derive(Debug, Default)]
struct FaultAnswers {
    refused: u32,
    /// Writes answered 200: real ones, whose change introspection then shows (a write
    /// can still fit into space a full disk's WAL already holds).
    taken: u32,
    /// Writes answered 200 whose change is not there.
    false_200s: u32,
}

/// While the store cannot write: issuance, rotation and revocation, once per prepared
/// session each. Every answer must be 503 or a 200 whose change introspection shows (a
/// false 200 otherwise); reads that need no write still answer truthfully.
async fn writes_during_fault(api: &Api, before: &BeforeFault) -> anyhow::Result<FaultAnswers> {
    let mut answers = FaultAnswers::default();
    for (rotated, revoked) in before.to_rotate.iter().zip(&before.to_revoke) {
        let (status, body) = api.issue().await?;
        let issued_is_real = match status {
            StatusCode::OK => api.active(&Pair::from_body(&body)?.access).await?,
            _ => true,
        };
        let (rotation, rotation_body) = api.refresh(&rotated.refresh).await?;
        let rotation_is_real = match rotation {
            StatusCode::OK => {
                let successor = Pair::from_body(&rotation_body)?;
                api.active(&successor.refresh).await? && !api.active(&rotated.refresh).await?
            }
            _ => true,
        };
        let (revocation, revocation_body) = api.revoke(&revoked.access).await?;
        let revocation_is_real = match revocation {
            StatusCode::OK => !api.active(&revoked.access).await?,
            _ => true,
        };
        for (what, status, body, real) in [
            ("issuance", status, body, issued_is_real),
            ("rotation", rotation, rotation_body, rotation_is_real),
            (
                "revocation",
                revocation,
                revocation_body,
                revocation_is_real,
            ),
        ] {
            match status {
                StatusCode::OK if real => answers.taken += 1,
                StatusCode::OK => answers.false_200s += 1,
                StatusCode::SERVICE_UNAVAILABLE => {
                    ensure!(
                        body["error"] == "temporarily_unavailable",
                        "{what} answered 503 with {body}"
                    );
                    answers.refused += 1;
                }
                status => bail!("{what} during the fault answered {status}: {body}"),
            }
        }
    }
    ensure!(
        api.active(&before.live.access).await? && api.active(&before.live.refresh).await?,
        "the live session changed during the fault, or introspection stopped answering"
    );
    ensure!(
        !api.active(&before.revoked.access).await?,
        "a revoked token reads as active during the fault"
    );
    // An unknown token needs no write: its revocation is still a 200.
    let (status, body) = api.revoke("garbage").await?;
    ensure!(
        status == StatusCode::OK,
        "revoking an unknown token during the fault answered {status}: {body}"
    );
    Ok(answers)
}

/// After the fault clears: the seconds until an issuance is answered 200 again; then the
/// session the fault kept rotation and revocation from touching rotates and is revoked.
async fn recovery(api: &Api, before: &BeforeFault) -> anyhow::Result<f64> {
    let cleared = Instant::now();
    loop {
        match api.issue().await? {
            (StatusCode::OK, _) => break,
            (StatusCode::SERVICE_UNAVAILABLE, _) if cleared.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (status, body) => bail!("issuance after the fault answered {status}: {body}"),
        }
    }
    let seconds = cleared.elapsed().as_secs_f64();
    let (status, body) = api.refresh(&before.live.refresh).await?;
    ensure!(
        status == StatusCode::OK,
        "the refresh token refused during the fault answered {status}: {body}"
    );
    let rotated = Pair::from_body(&body)?;
    let (status, body) = api.revoke(&rotated.access).await?;
    ensure!(
        status == StatusCode::OK,
        "revocation answered {status}: {body}"
    );
    ensure!(
        !api.active(&rotated.refresh).await?,
        "the revocation after recovery did not end the session"
    );
    Ok(seconds)
}

#[tokio::test]
async fn a_full_disk_turns_writes_into_503_and_freeing_space_recovers() -> anyhow::Result<()> {
    let attempts = if long_run() { 20 } else { 3 };
    let dir = tempfile::tempdir()?;
    let mount_point = dir.path().join("tmpfs");
    std::fs::create_dir(&mount_point)?;
    let mount = Tmpfs::mount(&mount_point, "16m")?;
    let files = Files::create(&mount.path, dir.path()).await?;
    let node = Node::start(&files).await?;
    let before = BeforeFault::prepare(&node.api, attempts).await?;
    let mut spares = Vec::new();
    for _ in 0..50 {
        spares.push(node.api.issued().await?);
    }

    // Fill the file system to the last byte. A commit then needs new pages for the WAL,
    // unless a background checkpoint has just copied the WAL into the database: the next
    // writes then start the WAL again over the pages it already has, and succeed (real,
    // durable 200s). The fault begins with the first write the store cannot take.
    let filler_path = mount.path.join("filler");
    {
        use std::io::Write as _;
        let mut filler = std::fs::File::create(&filler_path)?;
        let chunk = vec![0u8; 64 * 1024];
        for size in [chunk.len(), 4096, 1] {
            while filler.write_all(&chunk[..size]).is_ok() {}
        }
    }
    // Until a round of issuance, rotation and revocation all answer 503, writes may still
    // land in pages the WAL or a failed write left allocated; each uses a spare session, so
    // the session `before` holds stays untouched for the checks that follow.
    let mut full = false;
    for spare in &spares {
        let round = [
            node.api.issue().await?,
            node.api.refresh(&spare.refresh).await?,
            node.api.revoke(&spare.access).await?,
        ];
        if round
            .iter()
            .all(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
        {
            full = true;
            break;
        }
        if let Some((status, body)) = round.iter().find(|(status, _)| {
            *status != StatusCode::OK && *status != StatusCode::SERVICE_UNAVAILABLE
        }) {
            bail!("a write on the filling disk answered {status}: {body}");
        }
    }
    ensure!(
        full,
        "writes still succeeded after {} rounds on a full disk",
        spares.len()
    );
    let answers = writes_during_fault(&node.api, &before).await?;
    std::fs::remove_file(&filler_path)?;
    let seconds = recovery(&node.api, &before).await?;
    println!(
        "figure P11: fault=full_disk false_200s={} refused={} taken={} recovery_seconds={seconds:.3}",
        answers.false_200s, answers.refused, answers.taken
    );
    ensure!(
        answers.false_200s == 0,
        "{} writes were answered 200 on a full disk and did not land",
        answers.false_200s
    );
    // Once full, the disk must refuse most writes: a few may still fit in what the WAL
    // already holds.
    ensure!(
        answers.refused > answers.taken,
        "the full disk refused only {} writes of {}",
        answers.refused,
        answers.refused + answers.taken
    );
    node.kill().await?;
    let integrity = integrity_check(&files.database).await?;
    ensure!(
        integrity == "ok",
        "integrity_check after the fault: {integrity}"
    );
    Ok(())
}

#[tokio::test]
async fn an_immutable_database_turns_writes_into_503_and_chattr_minus_i_recovers()
-> anyhow::Result<()> {
    let attempts = if long_run() { 20 } else { 3 };
    let dir = tempfile::tempdir()?;
    // On the ordinary disk: the file system the database normally lives on.
    let files = Files::create(dir.path(), dir.path()).await?;
    // While the file cannot be opened for writing, a write waits for a writable
    // connection as long as for a held lock before its 503.
    let node = Node::start_with(tessera(), &files, &["--store-busy-timeout-ms", "300"]).await?;
    let before = BeforeFault::prepare(&node.api, attempts).await?;
    let wal = files.beside("-wal");
    ensure!(wal.exists(), "the server runs without a WAL file");

    let immutable = Immutable::set(&[files.database.clone(), wal])?;
    let answers = writes_during_fault(&node.api, &before).await?;
    immutable.clear()?;
    let seconds = recovery(&node.api, &before).await?;
    println!(
        "figure P11: fault=immutable_file false_200s={} refused={} taken={} recovery_seconds={seconds:.3}",
        answers.false_200s, answers.refused, answers.taken
    );
    // Nothing can be written to an immutable file: every write is refused.
    ensure!(
        answers.false_200s == 0 && answers.taken == 0,
        "writes were answered 200 on an immutable file: {answers:?}"
    );
    node.kill().await?;
    let integrity = integrity_check(&files.database).await?;
    ensure!(
        integrity == "ok",
        "integrity_check after the fault: {integrity}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// P2: 1,000 tokens, every table dumped
// ---------------------------------------------------------------------------------------

/// Workers issuing tokens at once; each issues `TOKENS_PER_WORKER`.
const DUMP_WORKERS: usize = 4;
/// Each round issues ten tokens: an anonymous pair, its rotation, a partner shopper's
/// pair, two client tokens (no refresh token) and another anonymous pair.
const ROUNDS_PER_WORKER: usize = 25;

/// One worker's share of the 1,000 tokens, of every grant that issues tokens.
async fn issue_mixed(api: Api, reference: String) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    let take = |tokens: &mut Vec<String>, status: StatusCode, body: &Value| {
        ensure!(status == StatusCode::OK, "token answered {status}: {body}");
        for field in ["access_token", "refresh_token"] {
            if let Some(token) = body[field].as_str() {
                tokens.push(token.to_owned());
            }
        }
        Ok(())
    };
    for _ in 0..ROUNDS_PER_WORKER {
        let (status, body) = api.issue().await?;
        take(&mut tokens, status, &body)?;
        let (status, body) = api.refresh(&Pair::from_body(&body)?.refresh).await?;
        take(&mut tokens, status, &body)?;
        let (status, body) = api
            .post(
                "/oauth20/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("dr_external_reference_id", &reference),
                ],
            )
            .await?;
        take(&mut tokens, status, &body)?;
        for _ in 0..2 {
            let (status, body) = api
                .post("/oauth20/token", &[("grant_type", "client_credentials")])
                .await?;
            take(&mut tokens, status, &body)?;
        }
        let (status, body) = api.issue().await?;
        take(&mut tokens, status, &body)?;
    }
    Ok(tokens)
}

/// Every value of every column of every table, as bytes (`CAST(... AS BLOB)`: text as
/// its UTF-8, blobs as they are, numbers as their decimal text).
async fn every_stored_value(database: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let options = SqliteConnectOptions::new().filename(database);
    let mut connection = SqliteConnection::connect_with(&options).await?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .fetch_all(&mut connection)
            .await?;
    let mut values = Vec::new();
    for table in &tables {
        let quoted_table = format!("\"{}\"", table.replace('"', "\"\""));
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(table)
            .fetch_all(&mut connection)
            .await?;
        for column in columns {
            let quoted_column = format!("\"{}\"", column.replace('"', "\"\""));
            // Names read from the file's own schema, quoted as identifiers.
            let column_values: Vec<Option<Vec<u8>>> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT CAST({quoted_column} AS BLOB) FROM {quoted_table}"
            )))
            .fetch_all(&mut connection)
            .await?;
            values.extend(column_values.into_iter().flatten());
        }
    }
    connection.close().await?;
    ensure!(tables.len() > 3, "only tables {tables:?} were found");
    Ok(values)
}

/// What must never be found in the store for one token: the token, the text of its
/// random part, and the random bytes themselves, raw and in hex.
fn needles(token: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let payload = token
        .splitn(3, '_')
        .nth(2)
        .context("a token is prefix_kid_payload")?;
    let decoded = URL_SAFE_NO_PAD.decode(payload)?;
    let random = decoded.get(..32).context("a token holds 32 random bytes")?;
    let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(vec![
        token.as_bytes().to_vec(),
        // Its first 42 characters encode random bits only.
        payload.as_bytes()[..42].to_vec(),
        random.to_vec(),
        hex.as_bytes().to_vec(),
        hex.to_uppercase().into_bytes(),
    ])
}

/// Issues 1,000 tokens from a server on `files`, then writes rows for forged tokens into
/// its store and presents them: the tokens, and how often a forged one was accepted. The
/// server is killed before this returns, so the store can be read at rest.
async fn thousand_tokens_and_forged_rows(files: &Files) -> anyhow::Result<(Vec<String>, u32)> {
    let reference = "reliability-dump";
    let (ok, _, stderr) = common::run(
        tessera()
            .args(["shopper", "create", "--external-reference-id", reference])
            .args(["--database-url", &files.database_url]),
    )
    .await?;
    ensure!(ok, "shopper create failed: {stderr}");
    let node = Node::start(files).await?;

    let mut workers = JoinSet::new();
    for _ in 0..DUMP_WORKERS {
        workers.spawn(issue_mixed(node.api.clone(), reference.to_owned()));
    }
    let mut tokens = Vec::new();
    while let Some(issued) = workers.join_next().await {
        tokens.extend(issued??);
    }
    ensure!(tokens.len() == 1000, "{} tokens were issued", tokens.len());

    // A row written into the store, as by someone who stole write access to the file:
    // a session whose newest access token is a token of the right shape and key id,
    // with a MAC made without the key.
    let kid = tokens[0]
        .split('_')
        .nth(1)
        .context("a token names its key")?;
    // Six time bytes, 32 random bytes and a 16-byte tag, as a current token's payload.
    let mut payload = [0u8; 54];
    getrandom::fill(&mut payload)?;
    let forged = format!("tsa_{kid}_{}", URL_SAFE_NO_PAD.encode(payload));
    let forged_refresh = format!("tsr_{kid}_{}", URL_SAFE_NO_PAD.encode(payload));
    let store =
        tessera_store::open(&files.database_url, &tessera_store::StoreOptions::default()).await?;
    let now = SystemClock.now();
    let session = SessionRecord {
        id: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
        client_id: files.client.0.clone(),
        user_id: Some("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_owned()),
        external_reference_id: None,
        authenticated: true,
        locale: "en_US".to_owned(),
        currency: "USD".to_owned(),
        cart_id: None,
        client_ip: "127.0.0.1".to_owned(),
        session_tag: "cccccccccccccccccccccccccccccccc".to_owned(),
        created_at: now,
        last_accessed: now,
        expires_at: now.plus_seconds(3600),
        newest_access: TokenHash::of_token(&forged),
        revoked_at: None,
    };
    let row = |token: &str, kind| TokenRecord {
        hash: TokenHash::of_token(token),
        kind,
        session_id: session.id.clone(),
        client_id: files.client.0.clone(),
        issued_at: now,
        expires_at: now.plus_seconds(3600),
        revoked_at: None,
        consumed_at: None,
    };
    store
        .insert_session(
            &session,
            &[
                row(&forged, TokenKind::Access),
                row(&forged_refresh, TokenKind::Refresh),
            ],
        )
        .await?;
    drop(store);
    let mut forged_accepted = 0;
    let bearer = node
        .api
        .http
        .get(format!("{}/oauth20/access-tokens", node.api.base))
        .bearer_auth(&forged)
        .send()
        .await?
        .status();
    if bearer != StatusCode::UNAUTHORIZED {
        forged_accepted += 1;
    }
    for token in [&forged, &forged_refresh] {
        if node.api.active(token).await? {
            forged_accepted += 1;
        }
    }
    let (status, _) = node.api.refresh(&forged_refresh).await?;
    if status != StatusCode::BAD_REQUEST {
        forged_accepted += 1;
    }
    node.kill().await?;
    Ok((tokens, forged_accepted))
}

/// How many of `values` hold a token of `tokens` or a part of one ([`needles`]).
fn hits(tokens: &[String], values: &[Vec<u8>]) -> anyhow::Result<usize> {
    let mut hits = 0;
    for token in tokens {
        for needle in needles(token)? {
            hits += values
                .iter()
                .filter(|value| value.windows(needle.len()).any(|window| window == needle))
                .count();
        }
    }
    Ok(hits)
}

#[tokio::test]
async fn a_thousand_tokens_leave_no_trace_in_any_table_and_a_forged_row_mints_none()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let files = Files::create(dir.path(), dir.path()).await?;
    let (tokens, forged_accepted) = thousand_tokens_and_forged_rows(&files).await?;
    let values = every_stored_value(&files.database).await?;
    let hits = hits(&tokens, &values)?;
    println!(
        "figure P2: tokens={} hits={hits} forged_accepted={forged_accepted} store=sqlite \
         stored_values={}",
        tokens.len(),
        values.len()
    );
    ensure!(
        hits == 0,
        "{hits} stored values hold a token or its random part"
    );
    ensure!(
        forged_accepted == 0,
        "a forged row was accepted {forged_accepted} times"
    );
    Ok(())
}

/// Every value of every column of every table of the PostgreSQL database at `url`, as
/// text (`bytea` as `\x` and hex digits).
async fn every_stored_postgres_value(url: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut connection = sqlx::PgConnection::connect(url).await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut connection)
    .await?;
    let mut values = Vec::new();
    for table in &tables {
        let quoted_table = format!("\"{}\"", table.replace('"', "\"\""));
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(table)
        .fetch_all(&mut connection)
        .await?;
        for column in columns {
            let quoted_column = format!("\"{}\"", column.replace('"', "\"\""));
            // Names read from the database's own catalogue, quoted as identifiers.
            let column_values: Vec<Option<String>> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT CAST({quoted_column} AS text) FROM {quoted_table}"
            )))
            .fetch_all(&mut connection)
            .await?;
            values.extend(column_values.into_iter().flatten().map(String::into_bytes));
        }
    }
    connection.close().await?;
    ensure!(tables.len() > 3, "only tables {tables:?} were found");
    Ok(values)
}

#[tokio::test]
async fn a_thousand_tokens_leave_no_trace_in_any_postgres_table_and_a_forged_row_mints_none()
-> anyhow::Result<()> {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let files = Files::on(database.url().to_owned(), PathBuf::new(), dir.path()).await?;
    let (tokens, forged_accepted) = thousand_tokens_and_forged_rows(&files).await?;
    let values = every_stored_postgres_value(database.url()).await?;
    let hits = hits(&tokens, &values)?;
    println!(
        "figure P2: tokens={} hits={hits} forged_accepted={forged_accepted} store=postgresql \
         stored_values={}",
        tokens.len(),
        values.len()
    );
    ensure!(
        hits == 0,
        "stored values hold a token or its random part {hits} times"
    );
    ensure!(
        forged_accepted == 0,
        "a forged row was accepted {forged_accepted} times"
    );
    Ok(())
}

#[test]
fn the_search_finds_a_token_its_random_part_and_its_random_bytes_raw_or_in_hex() {
    let random: Vec<u8> = (0u8..32).map(|byte| byte.wrapping_mul(37)).collect();
    let mut payload = random.clone();
    payload.extend([7u8; 16]);
    let token = format!("tsa_k1_{}", URL_SAFE_NO_PAD.encode(&payload));
    let random_hex: String = random.iter().map(|byte| format!("{byte:02X}")).collect();
    let tokens = [token.clone()];
    for stored in [
        format!("x{token}y").into_bytes(),
        token.as_bytes()[7..49].to_vec(),
        [b"\x00".as_slice(), &random, b"\x01"].concat(),
        format!("\\x{}", random_hex.to_lowercase()).into_bytes(),
        random_hex.into_bytes(),
    ] {
        let found = hits(&tokens, std::slice::from_ref(&stored));
        assert!(found.is_ok_and(|hits| hits >= 1), "{stored:?}");
    }
    // One character short of the random part's text is no hit.
    assert_eq!(
        hits(&tokens, &[token.as_bytes()[7..48].to_vec()]).ok(),
        Some(0)
    );
}
