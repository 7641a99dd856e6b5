//! The ceiling: a trivial handler on the server's own HTTP stack (axum served by
//! `tessera_server::serve` on a multi-thread tokio runtime), run as a separate process so
//! that it competes with the load generator exactly as the real server does.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

/// The fixed body, about the size of a small JSON answer.
const BODY: &str = r#"{"status":"ok","service":"ceiling"}"#;

/// The first line the ceiling prints, followed by its base URL.
pub const LISTENING_PREFIX: &str = "ceiling listening on ";

/// Serves the ceiling until killed.
pub fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(format!("{LISTENING_PREFIX}http://{address}\n").as_bytes())?;
        stdout.flush()?;
        drop(stdout);
        let router = Router::new().route(
            "/",
            get(|| async { ([(CONTENT_TYPE, "application/json")], BODY) }),
        );
        tessera_server::serve(listener, router, std::future::pending())
            .await
            .context("the ceiling's HTTP server failed")
    })
}
