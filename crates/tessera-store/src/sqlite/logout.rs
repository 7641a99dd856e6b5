//! Logout (API.md §4) as one job of the writer thread: the presented access token is read
//! on the writer connection inside the batch's transaction, the core checks it is live,
//! and its session, or the token alone, is ended in the same transaction. `DELETE
//! /oauth20/access-tokens` costs no separate read through the read pool before its write,
//! and no write of any process can come between the check and the end.

use rusqlite::Connection;
use tessera_core::StoreError;
use tessera_core::logout::{LoggedOut, Logout};

use super::rows::on_writer;
use super::{params, sql};

/// What the logout answers, and whether it changed a row.
type Ended = (Result<Option<LoggedOut>, StoreError>, bool);

/// Runs `logout` on the writer connection, inside the writer's transaction.
pub(super) fn log_out(connection: &Connection, logout: &Logout) -> rusqlite::Result<Ended> {
    let found = match on_writer::lookup_token(connection, &logout.presented)? {
        None => return Ok((Ok(None), false)),
        Some(Err(corrupt)) => return Ok((Err(corrupt), false)),
        Some(Ok(found)) => found,
    };
    if !logout.admits(&found) {
        return Ok((Ok(None), false));
    }
    // The same conditional statements as the separate writes, so the rule has one
    // definition in SQL; inside this transaction the token read live above matches one.
    let end_session = [
        params::millis(logout.now),
        params::id(&found.session.id),
        params::hash(&logout.presented),
    ];
    let session_ended = params::run(connection, sql::END_SESSION_IF_NEWEST, &end_session)? == 1;
    let ended = session_ended || {
        let revoke = [params::millis(logout.now), params::hash(&logout.presented)];
        params::run(connection, sql::REVOKE_TOKEN, &revoke)? == 1
    };
    let logged_out = ended.then_some(LoggedOut {
        found,
        session_ended,
    });
    Ok((Ok(logged_out), ended))
}
