//! `tessera session revoke|list` and `tessera gc`: each opens the store, calls one
//! [`SessionAdmin`] method, prints the result for a person or, with `--json`, for a script,
//! and closes the store. They work beside a running server on the same store: a revocation
//! takes effect at the server's next lookup.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tessera_core::session::SessionRecord;
use tessera_core::session_admin::SessionAdmin;
use tessera_core::{AdminError, Store, SystemClock};

use crate::cli::{Cli, SessionCommand, SessionListArgs, SessionRevokeArgs};
use crate::output::{print, print_json};

/// Runs a `tessera session` command.
pub async fn session(cli: &Cli, command: &SessionCommand) -> anyhow::Result<()> {
    let (store, admin) = open(cli).await?;
    let result = match command {
        SessionCommand::Revoke(args) => revoke(&admin, args).await,
        SessionCommand::List(args) => list(&admin, args).await,
    };
    store.close().await;
    result
}

/// Runs `tessera gc`.
pub async fn gc(cli: &Cli) -> anyhow::Result<()> {
    let (store, admin) = open(cli).await?;
    let result = clean_up(&admin).await;
    store.close().await;
    result
}

async fn open(cli: &Cli) -> anyhow::Result<(Arc<dyn Store>, SessionAdmin)> {
    let store = crate::store::open(cli).await?;
    // No background tidy-up: the process exits when the command is done, so the command
    // tidies up itself before it does.
    let admin = SessionAdmin::new(Arc::clone(&store), Arc::new(SystemClock));
    Ok((store, admin))
}

async fn revoke(admin: &SessionAdmin, args: &SessionRevokeArgs) -> anyhow::Result<()> {
    if let Some(session_id) = &args.session {
        let revoked = admin.revoke_session(session_id).await.map_err(|e| {
            failure(
                e,
                &format!("no session has the id `{session_id}`"),
                "end the session",
            )
        })?;
        return if args.json {
            print_json(&json!({ "session_id": session_id, "revoked": revoked }))
        } else if revoked {
            print(&format!(
                "Ended session {session_id}: none of its tokens works any more.\n"
            ))
        } else {
            print(&format!("Session {session_id} had already ended.\n"))
        };
    }
    let (key, what, id, before) = match (&args.shopper, &args.client) {
        (Some(user_id), _) => {
            let before = admin.revoke_shopper_sessions(user_id).await.map_err(|e| {
                failure(
                    e,
                    &format!("no shopper has the user id `{user_id}`"),
                    "revoke the shopper's sessions",
                )
            })?;
            ("user_id", "shopper", user_id, before)
        }
        (None, Some(client_id)) => {
            let before = admin.revoke_client_sessions(client_id).await.map_err(|e| {
                failure(
                    e,
                    &format!("no client has the id `{client_id}` (see `tessera client list`)"),
                    "revoke the client's sessions",
                )
            })?;
            ("client_id", "client", client_id, before)
        }
        // clap requires exactly one of the three.
        (None, None) => bail!("name --shopper, --client or --session"),
    };
    // The revocation is done and durable; marking the sessions only lets clean-up delete
    // them sooner, and the next clean-up run finishes it if this fails.
    let marked = match admin.tidy_up().await {
        Ok(marked) => Some(marked),
        Err(error) => {
            tracing::warn!(%error, "could not mark the sessions revoked yet; gc will");
            None
        }
    };
    if args.json {
        print_json(&json!({
            key: id,
            "sessions_revoked_before": before.to_iso8601(),
        }))
    } else {
        let mut text = format!(
            "Ended every session of {what} {id} created until {}: none of their tokens works \
             any more. New sessions work as usual.\n",
            before.to_iso8601()
        );
        if let Some(marked) = marked {
            text.push_str(&format!("Marked {marked} sessions revoked for clean-up.\n"));
        }
        print(&text)
    }
}

async fn list(admin: &SessionAdmin, args: &SessionListArgs) -> anyhow::Result<()> {
    let user_id = &args.shopper;
    let sessions = admin.shopper_sessions(user_id).await.map_err(|e| {
        failure(
            e,
            &format!("no shopper has the user id `{user_id}`"),
            "list the sessions",
        )
    })?;
    if args.json {
        let listed: Vec<serde_json::Value> = sessions.iter().map(session_json).collect();
        return print_json(&serde_json::Value::Array(listed));
    }
    if sessions.is_empty() {
        return print(&format!("Shopper {user_id} has no live session.\n"));
    }
    let header = [
        "SESSION_ID",
        "CLIENT_ID",
        "CREATED",
        "LAST_ACCESSED",
        "EXPIRES",
        "AUTHENTICATED",
    ];
    let rows: Vec<[String; 6]> = sessions
        .iter()
        .map(|s| {
            [
                s.id.clone(),
                s.client_id.clone(),
                s.created_at.to_iso8601(),
                s.last_accessed.to_iso8601(),
                s.expires_at.to_iso8601(),
                s.authenticated.to_string(),
            ]
        })
        .collect();
    print(&table(header, &rows))
}

/// A session as `session list --json` shows it: never a token, nor a token's hash.
fn session_json(session: &SessionRecord) -> serde_json::Value {
    json!({
        "session_id": session.id,
        "client_id": session.client_id,
        "created_on": session.created_at.to_iso8601(),
        "last_accessed": session.last_accessed.to_iso8601(),
        "expires_on": session.expires_at.to_iso8601(),
        "authenticated": session.authenticated,
    })
}

async fn clean_up(admin: &SessionAdmin) -> anyhow::Result<()> {
    let started = Instant::now();
    let spinner = std::io::stderr().is_terminal().then(|| {
        let spinner = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} gc: {msg} ({elapsed})") {
            spinner.set_style(style);
        }
        spinner.set_message("starting");
        spinner.enable_steady_tick(Duration::from_millis(100));
        spinner
    });
    let result = admin
        .clean_up(|report| {
            if let Some(spinner) = &spinner {
                spinner.set_message(format!(
                    "deleted {} tokens and {} sessions so far",
                    report.tokens_deleted, report.sessions_deleted
                ));
            }
        })
        .await;
    if let Some(spinner) = &spinner {
        spinner.finish_and_clear();
    }
    let report = result.context("the clean-up stopped; what it deleted so far stays deleted")?;
    print(&format!(
        "gc: deleted {} tokens, {} sessions and {} session tokens in {} ms\n",
        report.tokens_deleted,
        report.sessions_deleted,
        report.session_tokens_deleted,
        started.elapsed().as_millis()
    ))
}

/// Turns an admin failure into a message for a person.
fn failure(error: AdminError, not_found: &str, doing: &str) -> anyhow::Error {
    match error {
        AdminError::NotFound(_) => anyhow::anyhow!("{not_found}"),
        other => anyhow::Error::new(other).context(format!("cannot {doing}")),
    }
}

/// Left-aligned columns separated by two spaces.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header_cells = header.map(str::to_owned);
    for row in std::iter::once(&header_cells).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use tessera_core::Timestamp;

    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let rows = [["a".to_owned(), "long cell".to_owned()]];
        assert_eq!(table(["ID", "X"], &rows), "ID  X\na   long cell\n");
    }

    #[test]
    fn a_session_listing_carries_no_token_hash() {
        let session = SessionRecord {
            id: "s1".to_owned(),
            client_id: "c1".to_owned(),
            user_id: Some("u1".to_owned()),
            external_reference_id: None,
            authenticated: true,
            locale: "en_US".to_owned(),
            currency: "USD".to_owned(),
            cart_id: None,
            client_ip: "127.0.0.1".to_owned(),
            session_tag: "t".to_owned(),
            created_at: Timestamp(0),
            last_accessed: Timestamp(0),
            expires_at: Timestamp(1000),
            newest_access: tessera_core::token::TokenHash([7; 32]),
            revoked_at: None,
        };
        let json = session_json(&session);
        assert_eq!(json.as_object().map(|o| o.len()), Some(6));
        assert_eq!(json["expires_on"], "1970-01-01T00:00:01.000Z");
    }
}
