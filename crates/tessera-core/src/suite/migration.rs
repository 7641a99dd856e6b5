//! Behaviour checks of `MigrationStore`: what `tessera migrate-store` reads out of a store
//! and writes into one. Re-exported by the suite.
//!
//! Exports cover the whole store, other checks' rows too, so these checks look for their
//! own rows and compare counts only with what the same store exports.

use super::{T0, at, confidential_client, full_session, random_hash, shopper, sparse_session};
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::id::new_user_id;
use crate::migration::{MigrationBatch, MigrationKey, MigrationKind, ShopperWatermark};
use crate::session::{Rendered, TokenLookup};
use crate::session_admin::{SessionOwner, TidyUp};
use crate::session_token::SessionTokenRecord;
use crate::store::Store;
use crate::token::TokenKind;

/// The instant these checks export at: after the suite's short-lived rows expire, before
/// its long-lived ones do.
fn now() -> Timestamp {
    at(7200)
}

/// Every batch of `kind` at `now`, read `limit` rows at a time.
async fn export_all(
    store: &dyn Store,
    kind: MigrationKind,
    limit: u32,
) -> Result<Vec<MigrationBatch>, StoreError> {
    let mut batches = Vec::new();
    let mut after: Option<MigrationKey> = None;
    loop {
        let batch = store
            .export_rows(kind, after.as_ref(), now(), limit)
            .await?;
        if batch.is_empty() {
            return Ok(batches);
        }
        assert!(
            batch.len() <= limit as usize,
            "a batch holds at most `limit` rows"
        );
        let last = batch.last_key();
        assert_ne!(last, after, "each batch starts after the previous one");
        after = last;
        batches.push(batch);
    }
}

/// Exports read, in primary-key order and in batches after a key, every client, shopper,
/// watermark and pending tidy-up, every session neither revoked nor expired, the unexpired
/// tokens of those sessions (consumed and revoked ones included), and unexpired session
/// tokens; and count exactly what they read.
pub async fn migration_exports_what_should_move_in_key_order(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let client = confidential_client()?;
    store.insert_client(&client).await?;
    let person = shopper()?;
    store.insert_shopper(&person).await?;

    // A live session whose access token has expired and whose refresh token was consumed
    // by a rotation: the consumed refresh token must move, the expired access token not.
    let (live, mut live_tokens) = full_session(&client)?;
    live_tokens[1].consumed_at = Some(at(60));
    let mut successor = live_tokens[1].clone();
    successor.hash = random_hash()?;
    successor.consumed_at = None;
    live_tokens.push(successor);
    store.insert_session(&live, &live_tokens).await?;
    // Revoked and expired: neither it nor its tokens move.
    let (dead, dead_tokens) = sparse_session(&client)?;
    store.insert_session(&dead, &dead_tokens).await?;

    let user_id = new_user_id()?;
    assert!(
        store
            .revoke_sessions_before(&SessionOwner::Shopper(user_id.clone()), at(5))
            .await?
    );
    let bound = SessionTokenRecord {
        hash: random_hash()?,
        client_id: client.id.clone(),
        session_id: Some(live.id.clone()),
        created_at: T0,
        expires_at: at(24 * 3600),
    };
    store.insert_session_token(&bound).await?;
    let expired = SessionTokenRecord {
        hash: random_hash()?,
        client_id: client.id.clone(),
        session_id: None,
        created_at: T0,
        expires_at: at(60),
    };
    store.insert_session_token(&expired).await?;

    let mut clients = Vec::new();
    let mut shoppers = Vec::new();
    let mut watermarks = Vec::new();
    let mut tidy_ups = Vec::new();
    let mut sessions = Vec::new();
    let mut tokens = Vec::new();
    let mut session_tokens = Vec::new();
    for kind in MigrationKind::ALL {
        let batches = export_all(store, kind, 2).await?;
        let read: usize = batches.iter().map(MigrationBatch::len).sum();
        assert_eq!(
            store.count_to_move(kind, now()).await?,
            read as u64,
            "{}: the count matches the export",
            kind.name()
        );
        for batch in batches {
            match batch {
                MigrationBatch::Clients(rows) => clients.extend(rows),
                MigrationBatch::Shoppers(rows) => shoppers.extend(rows),
                MigrationBatch::ShopperWatermarks(rows) => watermarks.extend(rows),
                MigrationBatch::PendingTidyUps(rows) => tidy_ups.extend(rows),
                MigrationBatch::Sessions(rows) => sessions.extend(rows),
                MigrationBatch::Tokens(rows) => tokens.extend(rows),
                MigrationBatch::SessionTokens(rows) => session_tokens.extend(rows),
            }
        }
    }

    assert!(clients.contains(&client));
    assert!(shoppers.contains(&person));
    assert!(watermarks.contains(&ShopperWatermark {
        user_id: user_id.clone(),
        before: at(5),
    }));
    assert!(tidy_ups.contains(&TidyUp {
        owner: SessionOwner::Shopper(user_id),
        before: at(5),
    }));
    assert!(sessions.contains(&live));
    assert!(!sessions.iter().any(|s| s.id == dead.id));
    assert!(!tokens.contains(&live_tokens[0]), "an expired access token");
    assert!(tokens.contains(&live_tokens[1]), "a consumed refresh token");
    assert!(tokens.contains(&live_tokens[2]));
    assert!(!tokens.iter().any(|t| t.session_id == dead.id));
    assert!(tokens.iter().all(|t| t.expires_at > now()));
    assert!(session_tokens.contains(&bound));
    assert!(!session_tokens.contains(&expired));

    // Primary-key order, whatever order the rows were written in.
    assert!(clients.windows(2).all(|w| w[0].id < w[1].id));
    assert!(sessions.windows(2).all(|w| w[0].id < w[1].id));
    assert!(tokens.windows(2).all(|w| w[0].hash.0 < w[1].hash.0));
    assert!(session_tokens.windows(2).all(|w| w[0].hash.0 < w[1].hash.0));
    Ok(())
}

/// Imports write rows exactly as given (hashes, times, consumed and revoked marks), skip
/// rows whose key is present without changing them, and report what they wrote; presence
/// counts only the keys that are there.
pub async fn migration_imports_rows_as_they_are_once(store: &dyn Store) -> Result<(), StoreError> {
    let client = confidential_client()?;
    let person = shopper()?;
    let (session, mut tokens) = full_session(&client)?;
    tokens[1].consumed_at = Some(at(60));
    tokens[0].revoked_at = Some(at(61));
    let watermark = ShopperWatermark {
        user_id: new_user_id()?,
        before: at(9),
    };
    let tidy_up = TidyUp {
        owner: SessionOwner::Client(client.id.clone()),
        before: at(8),
    };
    let session_token = SessionTokenRecord {
        hash: random_hash()?,
        client_id: client.id.clone(),
        session_id: Some(session.id.clone()),
        created_at: T0,
        expires_at: at(24 * 3600),
    };
    let batches = [
        MigrationBatch::Clients(vec![client.clone()]),
        MigrationBatch::Shoppers(vec![person.clone()]),
        MigrationBatch::ShopperWatermarks(vec![watermark.clone()]),
        MigrationBatch::PendingTidyUps(vec![tidy_up.clone()]),
        MigrationBatch::Sessions(vec![session.clone()]),
        MigrationBatch::Tokens(tokens.clone()),
        MigrationBatch::SessionTokens(vec![session_token.clone()]),
    ];
    for batch in &batches {
        assert_eq!(store.count_present(batch).await?, 0);
        assert_eq!(store.import_rows(batch).await?, batch.len() as u64);
        assert_eq!(store.count_present(batch).await?, batch.len() as u64);
    }

    assert_eq!(store.client(&client.id).await?.as_ref(), Some(&client));
    assert_eq!(store.shopper(&person.id).await?.as_ref(), Some(&person));
    for token in &tokens {
        assert_eq!(
            store.lookup_token(&token.hash).await?,
            Some(TokenLookup {
                token: token.clone(),
                session: session.clone(),
                client: client.clone(),
                shopper_sessions_revoked_before: None,
                rendered: Rendered::default(),
            })
        );
    }
    let found = store.lookup_session_token(&session_token.hash).await?;
    assert_eq!(found.map(|f| f.record), Some(session_token.clone()));
    assert!(store.pending_tidy_ups(u32::MAX).await?.contains(&tidy_up));

    // Again, with every row changed but its key: nothing is written, nothing changes.
    let mut renamed = client.clone();
    renamed.name = "Renamed".to_owned();
    let mut reconsumed = tokens[1].clone();
    reconsumed.consumed_at = None;
    let mut moved_watermark = watermark.clone();
    moved_watermark.before = at(99);
    let again = [
        MigrationBatch::Clients(vec![renamed]),
        MigrationBatch::ShopperWatermarks(vec![moved_watermark]),
        MigrationBatch::Tokens(vec![reconsumed]),
    ];
    for batch in &again {
        assert_eq!(store.import_rows(batch).await?, 0);
    }
    for batch in &batches {
        assert_eq!(store.import_rows(batch).await?, 0);
    }
    assert_eq!(store.client(&client.id).await?.as_ref(), Some(&client));
    let refresh = store.lookup_token(&tokens[1].hash).await?.map(|l| l.token);
    assert_eq!(refresh.as_ref(), Some(&tokens[1]));
    assert_eq!(refresh.map(|t| t.kind), Some(TokenKind::Refresh));

    // A shopper whose username is taken under another id is skipped, not an error, and
    // its key is then missing.
    let mut clash = shopper()?;
    clash.username = person.username.clone();
    let clash = MigrationBatch::Shoppers(vec![clash]);
    assert_eq!(store.import_rows(&clash).await?, 0);
    assert_eq!(store.count_present(&clash).await?, 0);
    Ok(())
}
