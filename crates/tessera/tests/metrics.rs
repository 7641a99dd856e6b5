//! `GET /metrics` of the real `tessera serve`: the recorder the binary installs, the
//! requests its router counts, the tokens its core issues and the store operations its
//! metered store times, all on one page in the Prometheus text format.

mod common;

use anyhow::{Context as _, ensure};
use tempfile::TempDir;

use common::PATIENCE;

fn tessera() -> tokio::process::Command {
    common::tessera("warn")
}

#[tokio::test]
async fn the_server_serves_its_metrics_page() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let database_url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let key_file = dir.path().join("keys").display().to_string();
    let (client_id, client_secret) =
        common::create_client(tessera(), &database_url, "metrics").await?;
    let (_server, base, http) = common::serve(tessera(), &database_url, &key_file, &[]).await?;

    let issued = http
        .post(format!("{base}/oauth20/token"))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[("grant_type", "password")])
        .send()
        .await?;
    ensure!(issued.status() == 200, "token: {}", issued.status());
    let token: serde_json::Value = issued.json().await?;
    let access = token["access_token"].as_str().context("access_token")?;
    let session = http
        .get(format!("{base}/oauth20/access-tokens"))
        .bearer_auth(access)
        .send()
        .await?;
    ensure!(session.status() == 200, "session: {}", session.status());

    let page = tokio::time::timeout(PATIENCE, http.get(format!("{base}/metrics")).send())
        .await
        .context("no answer from /metrics")??;
    ensure!(page.status() == 200, "metrics: {}", page.status());
    let content_type = page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        content_type == "text/plain; version=0.0.4",
        "{content_type}"
    );
    let text = page.text().await?;
    for line in [
        r#"tessera_http_requests_total{route="/oauth20/token",method="POST",status="200"} 1"#,
        r#"tessera_http_requests_total{route="/oauth20/access-tokens",method="GET",status="200"} 1"#,
        r#"tessera_tokens_issued_total{grant="anonymous"} 1"#,
        r#"tessera_store_operation_duration_seconds_count{operation="insert_session",outcome="ok"} 1"#,
        "# TYPE tessera_http_request_duration_seconds histogram",
        "# TYPE tessera_store_operation_duration_seconds histogram",
    ] {
        ensure!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    ensure!(!text.contains(access), "the token appears on the page");
    Ok(())
}
