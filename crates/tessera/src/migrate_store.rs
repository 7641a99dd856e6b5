//! `tessera migrate-store --from URL --to URL`: moves what a store holds into another store
//! (in practice from one node's SQLite file to PostgreSQL), kind by kind, then checks that
//! every row that should have moved is in the destination.
//!
//! The moving itself is `tessera_core::migration`, written against the storage traits, so
//! any pair of backends works. Rows move as they are, so the destination must be served
//! with the same token key file. Running it again, or after an interruption, moves what is
//! missing and changes nothing else.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tessera_core::migration::{MIGRATION_BATCH, MigrationKind, copy_kind, verify_kind};
use tessera_core::{Clock as _, Store, SystemClock};
use tessera_store::PostgresUrl;

use crate::cli::{Cli, MigrateStoreArgs};
use crate::output::print;
use crate::store::{create_private_folder, options, redacted};

/// Runs `tessera migrate-store`.
pub async fn run(cli: &Cli, args: &MigrateStoreArgs) -> anyhow::Result<()> {
    if same_store(&args.from, &args.to) {
        bail!(
            "--from and --to name the same store ({}); give the store to move into as --to",
            redacted(&args.to)
        );
    }
    if tessera_store::sqlite_path(&args.from).is_some_and(|path| !path.exists()) {
        bail!("the source store {} does not exist", redacted(&args.from));
    }

    // The destination first: opening it creates its schema or brings it up to date.
    let to = open(cli, &args.to, "destination").await?;
    let from = match open(cli, &args.from, "source").await {
        Ok(from) => from,
        Err(error) => {
            to.close().await;
            return Err(error);
        }
    };
    let result = migrate(from.as_ref(), to.as_ref()).await;
    from.close().await;
    to.close().await;
    result
}

/// Copies every kind, then checks the counts.
async fn migrate(from: &dyn Store, to: &dyn Store) -> anyhow::Result<()> {
    // One instant decides, for the whole run, which sessions and tokens are live.
    let now = SystemClock.now();
    for kind in MigrationKind::ALL {
        let started = Instant::now();
        let total = from
            .count_to_move(kind, now)
            .await
            .with_context(|| format!("cannot count the {} to move", kind.name()))?;
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| progress_bar(kind, total));
        let copied = copy_kind(from, to, kind, now, MIGRATION_BATCH, &mut |read| {
            if let Some(bar) = &bar {
                bar.inc(read);
            }
        })
        .await;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let report = copied.with_context(|| {
            format!(
                "moving the {} stopped; what was moved stays moved, so run the same command \
                 again to finish",
                kind.name()
            )
        })?;
        print(&format!(
            "migrate-store: {}: {} to move, {} written, {} already there ({} ms)\n",
            kind.name(),
            report.read,
            report.written,
            report.read - report.written.min(report.read),
            started.elapsed().as_millis()
        ))?;
    }

    let mut mismatches = Vec::new();
    for kind in MigrationKind::ALL {
        let check = verify_kind(from, to, kind, now, MIGRATION_BATCH)
            .await
            .with_context(|| format!("cannot check the {} moved", kind.name()))?;
        if check.present != check.expected {
            mismatches.push(format!(
                "{}: {} in the source, {} of them in the destination",
                kind.name(),
                check.expected,
                check.present
            ));
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "the counts do not match ({}); a row whose username or external reference id \
             is already taken in the destination by another row is not moved",
            mismatches.join("; ")
        );
    }
    print("migrate-store: check passed: every row that should move is in the destination\n")
}

fn progress_bar(kind: MigrationKind, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(kind.name());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Opens one side, creating a SQLite destination's folder first.
async fn open(cli: &Cli, url: &str, side: &str) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(folder) = tessera_store::sqlite_path(url)
        .as_deref()
        .and_then(Path::parent)
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        create_private_folder(folder)?;
    }
    tessera_store::open(url, &options(cli))
        .await
        .with_context(|| format!("cannot open the {side} store {}", redacted(url)))
}

/// Whether two URLs name one store: the same text, the same SQLite file, or the same
/// PostgreSQL host, port and database.
fn same_store(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    if let (Some(a), Some(b)) = (
        tessera_store::sqlite_path(from),
        tessera_store::sqlite_path(to),
    ) {
        return match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
    }
    match (PostgresUrl::parse(from), PostgresUrl::parse(to)) {
        (Ok(a), Ok(b)) => database_of(&a) == database_of(&b),
        _ => false,
    }
}

/// `host:port/database` of a PostgreSQL URL, without the user.
fn database_of(url: &PostgresUrl) -> String {
    let shown = url.to_string();
    let rest = shown
        .split_once("://")
        .map_or(shown.as_str(), |(_, rest)| rest);
    rest.rsplit_once('@')
        .map_or(rest, |(_, rest)| rest)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_store_is_recognised_however_it_is_written() {
        assert!(same_store("sqlite://a/t.db", "sqlite://a/t.db"));
        assert!(same_store("sqlite://a/t.db", "sqlite:a/t.db"));
        assert!(same_store(
            "postgres://a:x@db/tessera",
            "postgresql://b@db:5432/tessera"
        ));
        assert!(!same_store("sqlite://a/t.db", "sqlite://b/t.db"));
        assert!(!same_store(
            "postgres://a@db/tessera",
            "postgres://a@db/other"
        ));
        assert!(!same_store("sqlite://a/t.db", "postgres://a@db/tessera"));
    }
}
