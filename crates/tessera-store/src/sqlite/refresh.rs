//! The refresh-token exchange as one job of the writer thread: the token is read on the
//! writer connection inside the batch's transaction, the core's rules decide, and the
//! rotation or the end of the session is written in the same transaction. No other write
//! of any process can come between the read and the write (the transaction holds SQLite's
//! write lock), and the exchange costs no separate read through the read pool before it.

use rusqlite::Connection;
use tessera_core::StoreError;
use tessera_core::rotation::{RefreshExchange, RefreshOutcome, RefreshStep};
use tessera_core::session::SessionRecord;

use super::rows::on_writer;
use super::{params, sql};

/// What the exchange answers, and whether it changed a row.
type Exchanged = (Result<RefreshOutcome, StoreError>, bool);

/// Runs `exchange` on the writer connection, inside the writer's transaction.
pub(super) fn exchange(
    connection: &Connection,
    exchange: &RefreshExchange,
) -> rusqlite::Result<Exchanged> {
    let found = match on_writer::lookup_token(connection, &exchange.presented)? {
        None => return Ok((Ok(RefreshOutcome::Refused), false)),
        Some(Err(corrupt)) => return Ok((Err(corrupt), false)),
        Some(Ok(found)) => found,
    };
    match exchange.decide(&found) {
        RefreshStep::Refuse => Ok((Ok(RefreshOutcome::Refused), false)),
        RefreshStep::EndSession => end_session(connection, exchange, found.session),
        RefreshStep::Rotate { access, refresh } => {
            let consume = [
                params::millis(exchange.now),
                params::hash(&exchange.presented),
                params::id(&found.session.id),
            ];
            // The read above found the token live in this same transaction, so this
            // matches; were it not to, the token was spent, as when a parallel exchange wins.
            if params::run(connection, sql::CONSUME_REFRESH, &consume)? != 1 {
                return end_session(connection, exchange, found.session);
            }
            params::insert_tokens(
                connection,
                &[params::token(&access), params::token(&refresh)],
            )?;
            let newest = [params::hash(&access.hash), params::id(&access.session_id)];
            params::run(connection, sql::SET_NEWEST_ACCESS, &newest)?;
            let rotated = RefreshOutcome::Rotated {
                session: found.session,
                access_expires_at: access.expires_at,
            };
            Ok((Ok(rotated), true))
        }
    }
}

/// A consumed refresh token came back: its session ends.
fn end_session(
    connection: &Connection,
    exchange: &RefreshExchange,
    session: SessionRecord,
) -> rusqlite::Result<Exchanged> {
    let revoke = [params::millis(exchange.now), params::id(&session.id)];
    let ended = params::run(connection, sql::REVOKE_SESSION, &revoke)? == 1;
    Ok((Ok(RefreshOutcome::ReuseDetected { session, ended }), ended))
}
