//! Starting the real `tessera serve` and the ceiling as child processes, the fresh store
//! they run on, and the benchmark client and shoppers created with the `tessera` CLI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;
use sqlx::Connection as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::cli::{RunArgs, StoreKind};

/// How long a child may take to start or a CLI command to finish.
const PATIENCE: Duration = Duration::from_secs(120);

/// The first line `tessera serve` prints, followed by its base URL.
const SERVER_PREFIX: &str = "tessera listening on ";

/// The `tessera` binary: `--server-binary`, else the one beside this executable.
pub fn server_binary(args: &RunArgs) -> anyhow::Result<PathBuf> {
    let path = match &args.server_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("cannot find this executable")?
            .with_file_name("tessera"),
    };
    ensure!(
        path.is_file(),
        "no tessera binary at {} (build it with `cargo build --release -p tessera`, use \
         scripts/bench, or pass --server-binary)",
        path.display()
    );
    Ok(path)
}

/// A child process that printed its address; killed when dropped.
pub struct Process {
    child: Child,
    /// The address it listens on.
    pub address: SocketAddr,
}

impl Process {
    /// Starts `command` and waits for its first stdout line, `prefix` then `http://ADDR`.
    /// Stdout is drained in the background so the child never blocks on a full pipe.
    pub async fn start(mut command: Command, prefix: &str) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the process")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .context("the process printed nothing")??
            .context("the process exited before listening")?;
        let base = first
            .strip_prefix(prefix)
            .with_context(|| format!("unexpected first line {first:?}"))?;
        let address: SocketAddr = base
            .strip_prefix("http://")
            .unwrap_or(base)
            .parse()
            .with_context(|| format!("unexpected address in {first:?}"))?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Process { child, address })
    }

    /// The process id, for `/proc`.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the process has exited")
    }

    /// Asks the process to stop (SIGTERM) and waits for it; kills it if it takes too long.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        self.child.kill().await.context("cannot kill the process")
    }
}

/// The ceiling: this executable's hidden `ceiling-server` subcommand.
pub async fn start_ceiling() -> anyhow::Result<Process> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["ceiling-server", "--listen", "127.0.0.1:0"]);
    Process::start(command, crate::ceiling::LISTENING_PREFIX).await
}

/// The store the server runs on: a temporary folder (key file, SQLite file) and, for
/// PostgreSQL, a fresh database dropped by [`Store::remove`].
pub struct Store {
    /// What kind.
    pub kind: StoreKind,
    /// `--database-url` for the server and the CLI.
    pub database_url: String,
    /// The token key file.
    pub key_file: PathBuf,
    /// The SQLite database file.
    pub sqlite_file: Option<PathBuf>,
    postgres: Option<PostgresDatabase>,
    _folder: tempfile::TempDir,
}

impl Store {
    /// A fresh, empty store of `args.store`'s kind.
    pub async fn create(args: &RunArgs) -> anyhow::Result<Self> {
        let folder = tempfile::Builder::new()
            .prefix("tessera-bench-")
            .tempdir()
            .context("cannot create a temporary folder")?;
        let key_file = folder.path().join("tessera.key");
        let (database_url, sqlite_file, postgres) = match args.store {
            StoreKind::Sqlite => {
                let file = folder.path().join("tessera.db");
                (format!("sqlite://{}", file.display()), Some(file), None)
            }
            StoreKind::Postgres => {
                let database = PostgresDatabase::create(&args.postgres_url).await?;
                (database.url.clone(), None, Some(database))
            }
        };
        Ok(Store {
            kind: args.store,
            database_url,
            key_file,
            sqlite_file,
            postgres,
            _folder: folder,
        })
    }

    /// Bytes the database takes: the SQLite file with its WAL, or `pg_database_size`.
    pub async fn size_bytes(&self) -> anyhow::Result<u64> {
        if let Some(file) = &self.sqlite_file {
            let mut total = 0;
            for suffix in ["", "-wal"] {
                let path = PathBuf::from(format!("{}{suffix}", file.display()));
                total += std::fs::metadata(&path).map_or(0, |m| m.len());
            }
            return Ok(total);
        }
        match &self.postgres {
            Some(database) => database.size_bytes().await,
            None => Ok(0),
        }
    }

    /// Drops the PostgreSQL database, if any; the folder goes when this is dropped.
    pub async fn remove(self) -> anyhow::Result<()> {
        if let Some(database) = &self.postgres {
            database.drop_database().await?;
        }
        Ok(())
    }
}

/// A database `tessera_bench_<random>` on a PostgreSQL server.
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("tessera_bench_{}", tessera_core::id::random_hex(8)?);
        let mut connection = sqlx::PgConnection::connect(admin_url)
            .await
            .context("cannot connect to PostgreSQL (see --postgres-url)")?;
        // The name is hex digits after a fixed prefix: nothing to quote.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .context("cannot create the benchmark database")?;
        let _ = connection.close().await;
        let url = with_database(admin_url, &name)?;
        Ok(PostgresDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    async fn size_bytes(&self) -> anyhow::Result<u64> {
        let mut connection = sqlx::PgConnection::connect(&self.url).await?;
        let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut connection)
            .await?;
        let _ = connection.close().await;
        Ok(u64::try_from(size).unwrap_or(0))
    }

    async fn drop_database(&self) -> anyhow::Result<()> {
        let mut connection = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut connection)
        .await
        .with_context(|| format!("cannot drop the database {}", self.name))?;
        let _ = connection.close().await;
        Ok(())
    }
}

/// The server URL with its database name replaced.
pub fn with_database(server_url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let Some(authority_start) = base.find("://").map(|i| i + 3) else {
        bail!("--postgres-url is not a URL");
    };
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

/// The `tessera` binary, logging at `log`, with no stray `TESSERA_*` setting.
pub fn tessera(binary: &Path, log: &str) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TESSERA_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", log);
    command
}

/// Runs a CLI command to its end, with `stdin` as its input; its stdout.
async fn run_cli(mut command: Command, stdin: Option<&str>) -> anyhow::Result<String> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run tessera")?;
    let mut input = child.stdin.take().context("no stdin pipe")?;
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await?;
    }
    drop(input);
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .context("the tessera command did not finish")??;
    ensure!(
        output.status.success(),
        "the tessera command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// The benchmark client's credentials.
pub struct ClientCredentials {
    /// `client_id`.
    pub id: String,
    /// `client_secret`.
    pub secret: String,
}

/// Creates the benchmark client, allowed every grant, with the CLI.
pub async fn create_client(
    binary: &Path,
    store: &Store,
    log: &str,
) -> anyhow::Result<ClientCredentials> {
    let mut command = tessera(binary, log);
    command
        .args(["client", "create", "--name", "bench", "--json"])
        .args([
            "--grant",
            "anonymous,client_credentials,password,refresh_token",
        ])
        .args(["--database-url", &store.database_url]);
    let stdout = run_cli(command, None).await?;
    let json: Value = serde_json::from_str(stdout.trim())?;
    Ok(ClientCredentials {
        id: json["client_id"]
            .as_str()
            .context("no client_id")?
            .to_owned(),
        secret: json["client_secret"]
            .as_str()
            .context("no client_secret")?
            .to_owned(),
    })
}

/// Creates a shopper with the CLI: a partner's shopper by external id, or, with a username,
/// one who logs in with `password`.
pub async fn create_shopper(
    binary: &Path,
    store: &Store,
    log: &str,
    external_reference_id: &str,
    login: Option<(&str, &str)>,
) -> anyhow::Result<()> {
    let mut command = tessera(binary, log);
    command
        .args(["shopper", "create", "--json"])
        .args(["--external-reference-id", external_reference_id])
        .args(["--database-url", &store.database_url]);
    let stdin = match login {
        Some((username, password)) => {
            command.args(["--username", username, "--password-stdin"]);
            Some(password)
        }
        None => None,
    };
    run_cli(command, stdin).await?;
    Ok(())
}

/// Starts `tessera serve` on the store, on a free port, without a bootstrap client.
pub async fn start_server(binary: &Path, store: &Store, args: &RunArgs) -> anyhow::Result<Process> {
    let mut command = tessera(binary, &args.server_log);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--no-bootstrap-client"])
        .args(["--database-url", &store.database_url])
        .arg("--token-key-file")
        .arg(&store.key_file)
        .args(&args.server_args);
    Process::start(command, SERVER_PREFIX)
        .await
        .context("cannot start tessera serve")
}
