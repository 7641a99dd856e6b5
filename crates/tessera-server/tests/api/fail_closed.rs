//! Fail closed (API.md §4, RELIABILITY.md P11): while another process holds SQLite's write
//! lock, issuance and revocation answer 503 with `Retry-After`, never 200; once the lock
//! is released they work again.

use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use tessera_store::StoreOptions;

use crate::helpers::*;

#[tokio::test]
async fn a_held_write_lock_turns_writes_into_503_and_they_recover_after() -> TestResult {
    let app = spawn_app_with(StoreOptions {
        busy_timeout: Duration::from_millis(200),
        ..StoreOptions::default()
    })
    .await;
    let (access, _) = app.anonymous_tokens().await;

    let mut holder =
        SqliteConnectOptions::from_str(&format!("sqlite://{}", app.database.display()))?
            .connect()
            .await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await?;

    let issue = app.token("grant_type=password").await;
    assert_eq!(issue.status, 503, "{}", issue.text);
    assert_eq!(issue.header("retry-after"), Some("1"));
    assert_eq!(issue.error_code(), Some("temporarily_unavailable"));
    assert!(issue.body.get("access_token").is_none());

    let delete = app.delete_session(&access).await;
    assert_eq!(delete.status, 503, "{}", delete.text);
    assert_eq!(delete.header("retry-after"), Some("1"));
    assert_eq!(delete.dr_code(), Some("service-unavailable"));

    // Reads do not need the write lock, and the refused DELETE changed nothing.
    assert_eq!(app.get_session(&access).await.status, 200);

    sqlx::query("COMMIT").execute(&mut holder).await?;
    assert_eq!(app.delete_session(&access).await.status, 200);
    assert_eq!(app.get_session(&access).await.status, 401);
    assert_eq!(app.token("grant_type=password").await.status, 200);
    Ok(())
}
