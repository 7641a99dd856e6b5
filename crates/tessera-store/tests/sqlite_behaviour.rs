//! The storage behaviour suite (`tessera_core::suite`) against SQLite: one test per check,
//! each on its own fresh database file, and the whole suite once more on a single store.

use std::error::Error;
use std::sync::Arc;

use tempfile::TempDir;
use tessera_core::Store;
use tessera_store::StoreOptions;

#[macro_use]
mod suite_checks;

type TestResult = Result<(), Box<dyn Error>>;

async fn fresh_store(dir: &TempDir) -> Result<Arc<dyn Store>, Box<dyn Error>> {
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    Ok(tessera_store::open(&url, &StoreOptions::default()).await?)
}

macro_rules! suite_tests {
    ($($check:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $check() -> TestResult {
            let dir = TempDir::new()?;
            let store = fresh_store(&dir).await?;
            tessera_core::suite::$check(store.as_ref()).await?;
            store.close().await;
            Ok(())
        }
    )+};
}

for_each_suite_check!(suite_tests);

#[tokio::test]
async fn the_whole_suite_passes_on_one_store() -> TestResult {
    let dir = TempDir::new()?;
    let store = fresh_store(&dir).await?;
    tessera_core::suite::run_all(store.as_ref()).await?;
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn the_whole_suite_passes_through_a_metered_store() -> TestResult {
    let dir = TempDir::new()?;
    let store = tessera_store::MeteredStore::wrap(fresh_store(&dir).await?);
    tessera_core::suite::run_all(store.as_ref()).await?;
    store.close().await;
    Ok(())
}
