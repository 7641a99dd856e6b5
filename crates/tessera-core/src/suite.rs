//! The storage behaviour suite: what every [`Store`] must do, written once against the
//! traits and run by each backend's tests (`cargo test -p tessera-store`).
//!
//! Each check is a public async function taking a store, fails with a plain `assert!`, and
//! passes store errors it did not expect back to the caller. Each uses fresh random ids, so
//! the checks can share one store and run in any order; [`run_all`] runs them all.

use crate::client::{ClientRecord, ClientSecretHash, Grant, GrantSet, PasswordEncoding};
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::id::{new_client_id, new_session_id, new_session_tag, new_user_id, random_bytes};
use crate::logout::{LoggedOut, Logout};
use crate::rotation::{RefreshExchange, RefreshOutcome};
use crate::secret::Secret;
use crate::session::{Rendered, SessionRecord, TokenLookup, TokenRecord};
use crate::session_token::{SessionTokenLookup, SessionTokenRecord};
use crate::shopper::ShopperRecord;
use crate::store::Store;
use crate::token::{TokenHash, TokenKind};

mod migration;
mod watermarks_and_clean_up;

pub use self::migration::{
    migration_exports_what_should_move_in_key_order, migration_imports_rows_as_they_are_once,
};
pub use self::watermarks_and_clean_up::{
    client_watermarks_are_read_with_lookups_and_only_move_forward,
    delete_revoked_sessions_deletes_only_revoked_sessions,
    session_by_id_reads_a_session_with_its_client, set_session_cart_sets_and_clears,
    shopper_sessions_lists_sessions_that_may_be_live,
    shopper_watermarks_are_read_with_lookups_and_only_move_forward,
    sweep_sessions_deletes_only_dead_sessions, sweep_tokens_deletes_only_dead_tokens,
    tidy_up_marks_covered_sessions_in_batches,
};

/// The instant the suite's records are created at: 2026-05-28T20:26:40Z.
const T0: Timestamp = Timestamp(1_780_000_000_000);

fn at(seconds: i64) -> Timestamp {
    T0.plus_seconds(seconds)
}

fn random_hash() -> Result<TokenHash, StoreError> {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes)?;
    Ok(TokenHash(bytes))
}

/// A confidential client with every field set.
fn confidential_client() -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id: new_client_id()?,
        name: "Suite storefront ünïcode".to_owned(),
        secret_hash: Some(ClientSecretHash::new(&Secret::new("tcs_suite-secret"))?),
        grants: GrantSet::all(),
        disabled: false,
        access_token_ttl: 3600,
        refresh_token_ttl: 365 * 24 * 3600,
        default_locale: "de_DE".to_owned(),
        default_currency: "EUR".to_owned(),
        theme_id: Some("theme-7".to_owned()),
        created_at: T0,
        sessions_revoked_before: None,
        password_encoding: PasswordEncoding::Base64,
        resource_server: true,
    })
}

/// A public, disabled client with every optional field empty.
fn public_client() -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id: new_client_id()?,
        name: "Suite public client".to_owned(),
        secret_hash: None,
        grants: GrantSet::from_grants([Grant::Anonymous]),
        disabled: true,
        access_token_ttl: 60,
        refresh_token_ttl: 120,
        default_locale: "en_US".to_owned(),
        default_currency: "USD".to_owned(),
        theme_id: None,
        created_at: at(1),
        sessions_revoked_before: None,
        password_encoding: PasswordEncoding::Plain,
        resource_server: false,
    })
}

fn shopper() -> Result<ShopperRecord, StoreError> {
    let id = new_user_id()?;
    Ok(ShopperRecord {
        external_reference_id: Some(format!("partner-{id}")),
        username: Some(format!("ann-{id}@example.com")),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned()),
        locale: Some("fr_FR".to_owned()),
        currency: Some("EUR".to_owned()),
        created_at: T0,
        first_name: Some("Ann".to_owned()),
        last_name: Some("Müller".to_owned()),
        email: Some(format!("ann-{id}@example.com")),
        id,
    })
}

fn bare_shopper() -> Result<ShopperRecord, StoreError> {
    Ok(ShopperRecord {
        id: new_user_id()?,
        external_reference_id: None,
        username: None,
        password_hash: None,
        locale: None,
        currency: None,
        created_at: at(2),
        first_name: None,
        last_name: None,
        email: None,
    })
}

/// A live shopper session of `client` with every field set, its access token and its
/// refresh token, all with fresh random ids and hashes (not stored).
pub fn full_session(
    client: &ClientRecord,
) -> Result<(SessionRecord, Vec<TokenRecord>), StoreError> {
    let access = random_hash()?;
    let session = SessionRecord {
        id: new_session_id()?,
        client_id: client.id.clone(),
        user_id: Some(new_user_id()?),
        external_reference_id: Some("partner-ref-1".to_owned()),
        authenticated: true,
        locale: "de_DE".to_owned(),
        currency: "EUR".to_owned(),
        cart_id: Some("cart-42".to_owned()),
        client_ip: "2001:db8::1".to_owned(),
        session_tag: new_session_tag()?,
        created_at: T0,
        last_accessed: T0,
        expires_at: at(365 * 24 * 3600),
        newest_access: access,
        revoked_at: None,
    };
    let tokens = vec![
        TokenRecord {
            hash: access,
            kind: TokenKind::Access,
            session_id: session.id.clone(),
            client_id: client.id.clone(),
            issued_at: T0,
            expires_at: at(3600),
            revoked_at: None,
            consumed_at: None,
        },
        TokenRecord {
            hash: random_hash()?,
            kind: TokenKind::Refresh,
            session_id: session.id.clone(),
            client_id: client.id.clone(),
            issued_at: T0,
            expires_at: session.expires_at,
            revoked_at: None,
            consumed_at: None,
        },
    ];
    Ok((session, tokens))
}

/// A client-token session (no shopper) whose optional fields are empty, whose revocation
/// times are set, and whose only token is a consumed, revoked refresh token: every
/// `Option` takes its other value.
fn sparse_session(client: &ClientRecord) -> Result<(SessionRecord, Vec<TokenRecord>), StoreError> {
    let session = SessionRecord {
        id: new_session_id()?,
        client_id: client.id.clone(),
        user_id: None,
        external_reference_id: None,
        authenticated: false,
        locale: "en_US".to_owned(),
        currency: "USD".to_owned(),
        cart_id: None,
        client_ip: "192.0.2.7".to_owned(),
        session_tag: new_session_tag()?,
        created_at: at(10),
        last_accessed: at(20),
        expires_at: at(30),
        newest_access: random_hash()?,
        revoked_at: Some(at(25)),
    };
    let token = TokenRecord {
        hash: random_hash()?,
        kind: TokenKind::Refresh,
        session_id: session.id.clone(),
        client_id: client.id.clone(),
        issued_at: at(10),
        expires_at: at(30),
        revoked_at: Some(at(22)),
        consumed_at: Some(at(21)),
    };
    Ok((session, vec![token]))
}

/// A client and one live session of it, stored.
async fn stored_session(
    store: &dyn Store,
) -> Result<(ClientRecord, SessionRecord, Vec<TokenRecord>), StoreError> {
    let client = confidential_client()?;
    store.insert_client(&client).await?;
    let (session, tokens) = full_session(&client)?;
    store.insert_session(&session, &tokens).await?;
    Ok((client, session, tokens))
}

async fn looked_up(store: &dyn Store, hash: &TokenHash) -> Result<TokenLookup, StoreError> {
    let Some(found) = store.lookup_token(hash).await? else {
        panic!("a stored token must be found by its hash");
    };
    Ok(found)
}

/// Clients come back exactly as stored, by id and in the listing, oldest first.
pub async fn clients_round_trip(store: &dyn Store) -> Result<(), StoreError> {
    let confidential = confidential_client()?;
    let public = public_client()?;
    // Inserted newest first, so the listing's order cannot come from insertion order alone.
    store.insert_client(&public).await?;
    store.insert_client(&confidential).await?;

    assert_eq!(
        store.client(&confidential.id).await?,
        Some(confidential.clone())
    );
    assert_eq!(store.client(&public.id).await?, Some(public.clone()));
    assert_eq!(store.client(&new_client_id()?).await?, None);

    let ours: Vec<ClientRecord> = store
        .clients()
        .await?
        .into_iter()
        .filter(|c| c.id == confidential.id || c.id == public.id)
        .collect();
    assert_eq!(ours, vec![confidential, public]);
    Ok(())
}

/// The resource-server flag comes back as stored: by id, in the listing, and with the
/// client a token lookup returns.
pub async fn resource_server_flag_round_trips(store: &dyn Store) -> Result<(), StoreError> {
    let server = ClientRecord {
        resource_server: true,
        ..confidential_client()?
    };
    let ordinary = ClientRecord {
        resource_server: false,
        ..confidential_client()?
    };
    store.insert_client(&server).await?;
    store.insert_client(&ordinary).await?;
    assert_eq!(store.client(&server.id).await?, Some(server.clone()));
    assert_eq!(store.client(&ordinary.id).await?, Some(ordinary.clone()));
    let listed: Vec<(String, bool)> = store
        .clients()
        .await?
        .into_iter()
        .filter(|c| c.id == server.id || c.id == ordinary.id)
        .map(|c| (c.id, c.resource_server))
        .collect();
    assert_eq!(
        listed,
        vec![(server.id.clone(), true), (ordinary.id.clone(), false)]
    );
    let (session, tokens) = full_session(&server)?;
    store.insert_session(&session, &tokens).await?;
    assert!(
        looked_up(store, &tokens[0].hash)
            .await?
            .client
            .resource_server
    );
    Ok(())
}

/// A second client with a taken id is a conflict and leaves the first untouched.
pub async fn duplicate_client_id_conflicts(store: &dyn Store) -> Result<(), StoreError> {
    let first = confidential_client()?;
    store.insert_client(&first).await?;
    let mut second = public_client()?;
    second.id = first.id.clone();
    let result = store.insert_client(&second).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
    assert_eq!(store.client(&first.id).await?, Some(first));
    Ok(())
}

/// Secret rotation and disabling change only their field, and say `false` for an unknown
/// client.
pub async fn client_secret_and_disabled_updates(store: &dyn Store) -> Result<(), StoreError> {
    let mut client = confidential_client()?;
    store.insert_client(&client).await?;

    let rotated = ClientSecretHash::new(&Secret::new("tcs_rotated"))?;
    assert!(store.set_client_secret(&client.id, &rotated).await?);
    client.secret_hash = Some(rotated.clone());
    assert_eq!(store.client(&client.id).await?, Some(client.clone()));

    assert!(store.set_client_disabled(&client.id, true).await?);
    client.disabled = true;
    assert_eq!(store.client(&client.id).await?, Some(client.clone()));
    // Disabling twice still finds the client.
    assert!(store.set_client_disabled(&client.id, true).await?);

    assert!(store.set_client_disabled(&client.id, false).await?);
    client.disabled = false;
    assert_eq!(store.client(&client.id).await?, Some(client));

    let missing = new_client_id()?;
    assert!(!store.set_client_secret(&missing, &rotated).await?);
    assert!(!store.set_client_disabled(&missing, true).await?);
    assert!(!store.set_client_disabled(&missing, false).await?);
    assert_eq!(store.client(&missing).await?, None);
    Ok(())
}

/// Shoppers come back exactly as stored, by id and by external reference id; shoppers
/// without an external reference id or username never conflict with each other.
pub async fn shoppers_round_trip(store: &dyn Store) -> Result<(), StoreError> {
    let full = shopper()?;
    let bare = bare_shopper()?;
    let also_bare = bare_shopper()?;
    store.insert_shopper(&full).await?;
    store.insert_shopper(&bare).await?;
    store.insert_shopper(&also_bare).await?;

    assert_eq!(store.shopper(&full.id).await?, Some(full.clone()));
    assert_eq!(store.shopper(&bare.id).await?, Some(bare));
    assert_eq!(store.shopper(&also_bare.id).await?, Some(also_bare));
    assert_eq!(store.shopper(&new_user_id()?).await?, None);

    let reference = full.external_reference_id.clone().unwrap_or_default();
    assert_eq!(
        store.shopper_by_external_reference(&reference).await?,
        Some(full)
    );
    assert_eq!(
        store
            .shopper_by_external_reference(&format!("unknown-{}", new_user_id()?))
            .await?,
        None
    );
    Ok(())
}

/// A shopper whose external reference id is taken is a conflict.
pub async fn duplicate_shopper_external_reference_conflicts(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let first = shopper()?;
    store.insert_shopper(&first).await?;
    let second = ShopperRecord {
        external_reference_id: first.external_reference_id.clone(),
        ..shopper()?
    };
    let result = store.insert_shopper(&second).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
    assert_eq!(store.shopper(&second.id).await?, None);
    Ok(())
}

/// A shopper whose username is taken is a conflict.
pub async fn duplicate_shopper_username_conflicts(store: &dyn Store) -> Result<(), StoreError> {
    let first = shopper()?;
    store.insert_shopper(&first).await?;
    let second = ShopperRecord {
        username: first.username.clone(),
        ..shopper()?
    };
    let result = store.insert_shopper(&second).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
    assert_eq!(store.shopper(&second.id).await?, None);
    Ok(())
}

/// A shopper whose id is taken is a conflict.
pub async fn duplicate_shopper_id_conflicts(store: &dyn Store) -> Result<(), StoreError> {
    let first = shopper()?;
    store.insert_shopper(&first).await?;
    let second = ShopperRecord {
        id: first.id.clone(),
        ..shopper()?
    };
    let result = store.insert_shopper(&second).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
    assert_eq!(store.shopper(&first.id).await?, Some(first));
    Ok(())
}

/// Shoppers are found by their stored username, compared exactly: normalising names is the
/// core's job, so the store must neither fold case nor trim.
pub async fn shoppers_are_found_by_username(store: &dyn Store) -> Result<(), StoreError> {
    let full = shopper()?;
    let other = shopper()?;
    store.insert_shopper(&full).await?;
    store.insert_shopper(&other).await?;
    store.insert_shopper(&bare_shopper()?).await?;

    let username = full.username.clone().unwrap_or_default();
    assert_eq!(store.shopper_by_username(&username).await?, Some(full));
    assert_eq!(
        store.shopper_by_username(&username.to_uppercase()).await?,
        None
    );
    assert_eq!(
        store.shopper_by_username(&format!(" {username}")).await?,
        None
    );
    assert_eq!(
        store
            .shopper_by_username(&format!("nobody-{}@example.com", new_user_id()?))
            .await?,
        None
    );
    assert_eq!(store.shopper_by_username("").await?, None);
    Ok(())
}

/// Every token of a stored session looks up to itself, its session and its client, with
/// every field as stored, whichever value each optional field has.
pub async fn session_and_tokens_round_trip(store: &dyn Store) -> Result<(), StoreError> {
    let (client, session, tokens) = stored_session(store).await?;
    for token in &tokens {
        let expected = TokenLookup {
            token: token.clone(),
            session: session.clone(),
            client: client.clone(),
            shopper_sessions_revoked_before: None,
            rendered: Rendered::default(),
        };
        assert_eq!(looked_up(store, &token.hash).await?, expected);
    }
    let kinds: Vec<TokenKind> = tokens.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, vec![TokenKind::Access, TokenKind::Refresh]);

    let other_client = public_client()?;
    store.insert_client(&other_client).await?;
    let (sparse, sparse_tokens) = sparse_session(&other_client)?;
    store.insert_session(&sparse, &sparse_tokens).await?;
    for token in &sparse_tokens {
        let expected = TokenLookup {
            token: token.clone(),
            session: sparse.clone(),
            client: other_client.clone(),
            shopper_sessions_revoked_before: None,
            rendered: Rendered::default(),
        };
        assert_eq!(looked_up(store, &token.hash).await?, expected);
    }
    Ok(())
}

/// A session whose tokens cannot all be stored is not stored at all; a taken session id is
/// a conflict.
pub async fn insert_session_is_all_or_nothing(store: &dyn Store) -> Result<(), StoreError> {
    let (client, _, tokens) = stored_session(store).await?;

    // A new session whose refresh token reuses a stored token's hash.
    let (session, mut new_tokens) = full_session(&client)?;
    new_tokens[1].hash = tokens[0].hash;
    let result = store.insert_session(&session, &new_tokens).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
    assert_eq!(
        store.lookup_token(&new_tokens[0].hash).await?,
        None,
        "the first token of a failed insert must not be stored"
    );
    // The failed session's id is still free.
    let (_, fresh_tokens) = full_session(&client)?;
    let fresh_tokens: Vec<TokenRecord> = fresh_tokens
        .into_iter()
        .map(|t| TokenRecord {
            session_id: session.id.clone(),
            ..t
        })
        .collect();
    let retry = SessionRecord {
        newest_access: fresh_tokens[0].hash,
        ..session.clone()
    };
    store.insert_session(&retry, &fresh_tokens).await?;
    assert_eq!(
        looked_up(store, &fresh_tokens[0].hash).await?.session,
        retry
    );

    // Now it is taken.
    let (_, more_tokens) = full_session(&client)?;
    let more_tokens: Vec<TokenRecord> = more_tokens
        .into_iter()
        .map(|t| TokenRecord {
            session_id: session.id.clone(),
            ..t
        })
        .collect();
    let result = store.insert_session(&retry, &more_tokens).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
    assert_eq!(store.lookup_token(&more_tokens[0].hash).await?, None);
    Ok(())
}

/// A hash no token has finds nothing.
pub async fn unknown_hash_is_not_found(store: &dyn Store) -> Result<(), StoreError> {
    stored_session(store).await?;
    assert_eq!(store.lookup_token(&random_hash()?).await?, None);
    assert_eq!(store.lookup_token(&TokenHash([0u8; 32])).await?, None);
    Ok(())
}

/// Logout with the newest access token ends the session exactly once.
pub async fn end_session_if_newest_ends_once(store: &dyn Store) -> Result<(), StoreError> {
    let (_, session, tokens) = stored_session(store).await?;
    let access = session.newest_access;

    assert!(
        store
            .end_session_if_newest(&session.id, &access, at(60))
            .await?
    );
    assert!(
        !store
            .end_session_if_newest(&session.id, &access, at(61))
            .await?
    );

    for token in &tokens {
        let found = looked_up(store, &token.hash).await?;
        assert_eq!(found.session.revoked_at, Some(at(60)));
        // Ending the session leaves its tokens' own rows alone.
        assert_eq!(found.token.revoked_at, None);
    }
    Ok(())
}

/// Logout with anything but the newest access token, or for another session, ends
/// nothing.
pub async fn end_session_if_newest_needs_the_newest_token(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let (_, session, tokens) = stored_session(store).await?;
    let refresh = tokens[1].hash;
    assert!(
        !store
            .end_session_if_newest(&session.id, &refresh, at(60))
            .await?
    );
    assert!(
        !store
            .end_session_if_newest(&session.id, &random_hash()?, at(60))
            .await?
    );

    let (_, other, _) = stored_session(store).await?;
    assert!(
        !store
            .end_session_if_newest(&other.id, &session.newest_access, at(60))
            .await?
    );
    assert!(
        !store
            .end_session_if_newest(&new_session_id()?, &session.newest_access, at(60))
            .await?
    );

    assert_eq!(looked_up(store, &refresh).await?.session.revoked_at, None);
    assert_eq!(
        looked_up(store, &other.newest_access)
            .await?
            .session
            .revoked_at,
        None
    );
    Ok(())
}

/// A token is revoked exactly once; the first revocation's time stays.
pub async fn revoke_token_revokes_once(store: &dyn Store) -> Result<(), StoreError> {
    let (_, session, tokens) = stored_session(store).await?;
    let access = tokens[0].hash;
    let refresh = tokens[1].hash;

    assert!(store.revoke_token(&access, at(60)).await?);
    assert!(!store.revoke_token(&access, at(61)).await?);
    assert!(!store.revoke_token(&random_hash()?, at(61)).await?);

    let found = looked_up(store, &access).await?;
    assert_eq!(found.token.revoked_at, Some(at(60)));
    // Only that token: its session and its sibling stay live.
    assert_eq!(found.session.revoked_at, None);
    assert_eq!(found.session, session);
    assert_eq!(looked_up(store, &refresh).await?.token.revoked_at, None);

    // Once the session has ended, its tokens are dead: there is nothing left to revoke.
    assert!(
        store
            .end_session_if_newest(&session.id, &session.newest_access, at(70))
            .await?
    );
    assert!(!store.revoke_token(&refresh, at(71)).await?);
    assert_eq!(looked_up(store, &refresh).await?.token.revoked_at, None);
    Ok(())
}

/// `touch_session` moves `last_accessed` forward and never back; an unknown session is no
/// error.
pub async fn touch_session_only_moves_forward(store: &dyn Store) -> Result<(), StoreError> {
    let (_, session, tokens) = stored_session(store).await?;
    let access = tokens[0].hash;

    store.touch_session(&session.id, at(120)).await?;
    assert_eq!(
        looked_up(store, &access).await?.session.last_accessed,
        at(120)
    );

    store.touch_session(&session.id, at(90)).await?;
    assert_eq!(
        looked_up(store, &access).await?.session.last_accessed,
        at(120)
    );

    store.touch_session(&session.id, at(120)).await?;
    store.touch_session(&session.id, at(180)).await?;
    let found = looked_up(store, &access).await?;
    assert_eq!(found.session.last_accessed, at(180));
    // Nothing else about the session moved.
    assert_eq!(
        found.session,
        SessionRecord {
            last_accessed: at(180),
            ..session
        }
    );

    store.touch_session(&new_session_id()?, at(200)).await?;
    Ok(())
}

/// `revoke_session` ends a live session exactly once, keeps the first time, leaves the
/// token rows and other sessions alone, and reports `false` for an unknown session.
pub async fn revoke_session_revokes_once(store: &dyn Store) -> Result<(), StoreError> {
    let (_, session, tokens) = stored_session(store).await?;
    let (_, other, _) = stored_session(store).await?;

    assert!(store.revoke_session(&session.id, at(60)).await?);
    assert!(!store.revoke_session(&session.id, at(61)).await?);
    assert!(!store.revoke_session(&new_session_id()?, at(61)).await?);

    for token in &tokens {
        let found = looked_up(store, &token.hash).await?;
        assert_eq!(found.session.revoked_at, Some(at(60)));
        assert_eq!(found.token.revoked_at, None);
    }
    assert_eq!(
        looked_up(store, &other.newest_access)
            .await?
            .session
            .revoked_at,
        None
    );
    Ok(())
}

/// Successor tokens for a refresh of `session`, issued at `seconds`.
fn successors(
    client: &ClientRecord,
    session: &SessionRecord,
    seconds: i64,
) -> Result<(TokenRecord, TokenRecord), StoreError> {
    let token = |hash, kind, expires_at| TokenRecord {
        hash,
        kind,
        session_id: session.id.clone(),
        client_id: client.id.clone(),
        issued_at: at(seconds),
        expires_at,
        revoked_at: None,
        consumed_at: None,
    };
    Ok((
        token(random_hash()?, TokenKind::Access, at(seconds + 3600)),
        token(random_hash()?, TokenKind::Refresh, session.expires_at),
    ))
}

/// `rotate_refresh` consumes a live refresh token once, stores both successors and makes
/// the new access token the session's newest; a second rotation of the same token writes
/// nothing.
pub async fn rotate_refresh_rotates_once(store: &dyn Store) -> Result<(), StoreError> {
    let (client, session, tokens) = stored_session(store).await?;
    let old_refresh = tokens[1].hash;
    let (access, refresh) = successors(&client, &session, 60)?;

    assert!(
        store
            .rotate_refresh(&old_refresh, at(60), &access, &refresh)
            .await?
    );
    let consumed = looked_up(store, &old_refresh).await?;
    assert_eq!(consumed.token.consumed_at, Some(at(60)));
    assert_eq!(consumed.token.revoked_at, None);
    assert_eq!(
        consumed.session,
        SessionRecord {
            newest_access: access.hash,
            ..session.clone()
        }
    );
    assert_eq!(looked_up(store, &access.hash).await?.token, access);
    assert_eq!(looked_up(store, &refresh.hash).await?.token, refresh);
    // The old access token stays as it was: only logout or DELETE touch it.
    assert_eq!(looked_up(store, &tokens[0].hash).await?.token, tokens[0]);

    // The loser of a race: nothing is written, the winner's state stays.
    let (late_access, late_refresh) = successors(&client, &session, 61)?;
    assert!(
        !store
            .rotate_refresh(&old_refresh, at(61), &late_access, &late_refresh)
            .await?
    );
    assert_eq!(store.lookup_token(&late_access.hash).await?, None);
    assert_eq!(store.lookup_token(&late_refresh.hash).await?, None);
    let after = looked_up(store, &old_refresh).await?;
    assert_eq!(after.token.consumed_at, Some(at(60)));
    assert_eq!(after.session.newest_access, access.hash);

    // The successor refresh token rotates in turn.
    let (next_access, next_refresh) = successors(&client, &session, 120)?;
    assert!(
        store
            .rotate_refresh(&refresh.hash, at(120), &next_access, &next_refresh)
            .await?
    );
    assert_eq!(
        looked_up(store, &next_refresh.hash)
            .await?
            .session
            .newest_access,
        next_access.hash
    );
    Ok(())
}

/// Asserts that rotating `hash` into fresh successors for `session` is refused and stores
/// neither successor.
async fn assert_rotation_refused(
    store: &dyn Store,
    hash: TokenHash,
    client: &ClientRecord,
    session: &SessionRecord,
) -> Result<(), StoreError> {
    let (access, refresh) = successors(client, session, 60)?;
    let rotated = store
        .rotate_refresh(&hash, at(60), &access, &refresh)
        .await?;
    assert!(!rotated, "a dead token must not rotate");
    assert_eq!(store.lookup_token(&access.hash).await?, None);
    assert_eq!(store.lookup_token(&refresh.hash).await?, None);
    Ok(())
}

/// `rotate_refresh` refuses, writing nothing, a revoked refresh token, a token of a revoked
/// session, an access token, a token named with another session, and an unknown hash.
pub async fn rotate_refresh_refuses_dead_tokens(store: &dyn Store) -> Result<(), StoreError> {
    // A refresh token revoked on its own.
    let (client, session, tokens) = stored_session(store).await?;
    assert!(store.revoke_token(&tokens[1].hash, at(30)).await?);
    assert_rotation_refused(store, tokens[1].hash, &client, &session).await?;
    assert_eq!(
        looked_up(store, &tokens[1].hash).await?.token.consumed_at,
        None
    );

    // A refresh token of a revoked session.
    let (client, session, tokens) = stored_session(store).await?;
    assert!(store.revoke_session(&session.id, at(30)).await?);
    assert_rotation_refused(store, tokens[1].hash, &client, &session).await?;
    let found = looked_up(store, &tokens[1].hash).await?;
    assert_eq!(found.token.consumed_at, None);
    assert_eq!(found.session.newest_access, session.newest_access);

    // An access token.
    let (client, session, tokens) = stored_session(store).await?;
    assert_rotation_refused(store, tokens[0].hash, &client, &session).await?;
    assert_eq!(looked_up(store, &tokens[0].hash).await?.token, tokens[0]);

    // A live refresh token, but the successors name another session.
    let (client, session, tokens) = stored_session(store).await?;
    let (_, other, _) = stored_session(store).await?;
    assert_rotation_refused(store, tokens[1].hash, &client, &other).await?;
    let found = looked_up(store, &tokens[1].hash).await?;
    assert_eq!(found.token.consumed_at, None);
    assert_eq!(found.session, session);

    // No such token.
    assert_rotation_refused(store, random_hash()?, &client, &session).await?;
    Ok(())
}

/// A rotation whose successors cannot be stored leaves everything as it was: the old
/// refresh token unconsumed and the session's newest access token unchanged.
pub async fn rotate_refresh_is_all_or_nothing(store: &dyn Store) -> Result<(), StoreError> {
    let (client, session, tokens) = stored_session(store).await?;
    let (access, mut refresh) = successors(&client, &session, 60)?;
    // The new refresh token's hash is taken (by the old access token).
    refresh.hash = tokens[0].hash;
    let result = store
        .rotate_refresh(&tokens[1].hash, at(60), &access, &refresh)
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
    assert_eq!(store.lookup_token(&access.hash).await?, None);
    let found = looked_up(store, &tokens[1].hash).await?;
    assert_eq!(found.token, tokens[1]);
    assert_eq!(found.session, session);

    // The token still rotates afterwards.
    let (access, refresh) = successors(&client, &session, 61)?;
    assert!(
        store
            .rotate_refresh(&tokens[1].hash, at(61), &access, &refresh)
            .await?
    );
    Ok(())
}

/// A presentation of `presented` by `client` at `seconds`, with fresh successor hashes.
fn exchange_of(
    presented: TokenHash,
    client: &ClientRecord,
    seconds: i64,
) -> Result<RefreshExchange, StoreError> {
    Ok(RefreshExchange {
        presented,
        client_id: client.id.clone(),
        access_token_ttl: client.access_token_ttl,
        now: at(seconds),
        access: random_hash()?,
        refresh: random_hash()?,
    })
}

/// Asserts that neither successor of `exchange` was stored.
async fn assert_no_successors(
    store: &dyn Store,
    exchange: &RefreshExchange,
) -> Result<(), StoreError> {
    assert_eq!(store.lookup_token(&exchange.access).await?, None);
    assert_eq!(store.lookup_token(&exchange.refresh).await?, None);
    Ok(())
}

/// `exchange_refresh` rotates a live refresh token of the presenting client once: both
/// successors stored, the old token consumed, the new access token the session's newest.
/// The same token presented again ends the session, once; the successor rotates in turn.
pub async fn exchange_refresh_rotates_then_detects_reuse(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let (client, session, tokens) = stored_session(store).await?;
    let old_refresh = tokens[1].hash;

    let first = exchange_of(old_refresh, &client, 60)?;
    let outcome = store.exchange_refresh(&first).await?;
    assert_eq!(
        outcome,
        RefreshOutcome::Rotated {
            session: session.clone(),
            access_expires_at: at(60 + client.access_token_ttl),
        }
    );
    let consumed = looked_up(store, &old_refresh).await?;
    assert_eq!(consumed.token.consumed_at, Some(at(60)));
    assert_eq!(consumed.session.newest_access, first.access);
    let successor = |hash, kind, expires_at| TokenRecord {
        hash,
        kind,
        session_id: session.id.clone(),
        client_id: client.id.clone(),
        issued_at: at(60),
        expires_at,
        revoked_at: None,
        consumed_at: None,
    };
    assert_eq!(
        looked_up(store, &first.access).await?.token,
        successor(
            first.access,
            TokenKind::Access,
            at(60 + client.access_token_ttl)
        )
    );
    // The session's absolute end does not move.
    assert_eq!(
        looked_up(store, &first.refresh).await?.token,
        successor(first.refresh, TokenKind::Refresh, session.expires_at)
    );

    // The consumed token again: the session ends, and nothing new is stored.
    let replay = exchange_of(old_refresh, &client, 61)?;
    let RefreshOutcome::ReuseDetected {
        session: seen,
        ended,
    } = store.exchange_refresh(&replay).await?
    else {
        panic!("a consumed refresh token presented again is a reuse");
    };
    assert!(ended);
    assert_eq!(seen.id, session.id);
    assert_no_successors(store, &replay).await?;
    assert_eq!(
        looked_up(store, &first.refresh).await?.session.revoked_at,
        Some(at(61))
    );
    // Once ended, it stays ended at its first time.
    let again = exchange_of(old_refresh, &client, 62)?;
    assert!(matches!(
        store.exchange_refresh(&again).await?,
        RefreshOutcome::ReuseDetected { ended: false, .. }
    ));
    assert_eq!(
        looked_up(store, &old_refresh).await?.session.revoked_at,
        Some(at(61))
    );
    // The successor of an ended session no longer rotates.
    let late = exchange_of(first.refresh, &client, 63)?;
    assert_eq!(
        store.exchange_refresh(&late).await?,
        RefreshOutcome::Refused
    );
    assert_no_successors(store, &late).await?;

    // A fresh chain: the successor rotates in turn.
    let (client, _, tokens) = stored_session(store).await?;
    let first = exchange_of(tokens[1].hash, &client, 60)?;
    assert!(matches!(
        store.exchange_refresh(&first).await?,
        RefreshOutcome::Rotated { .. }
    ));
    let next = exchange_of(first.refresh, &client, 120)?;
    assert!(matches!(
        store.exchange_refresh(&next).await?,
        RefreshOutcome::Rotated { .. }
    ));
    assert_eq!(
        looked_up(store, &next.refresh).await?.session.newest_access,
        next.access
    );
    Ok(())
}

/// `exchange_refresh` refuses, writing nothing, an unknown hash, an access token, another
/// client's refresh token, a revoked one, one of a revoked session and one past its end;
/// and an access lifetime never outlasts the session.
pub async fn exchange_refresh_refuses_without_writing(store: &dyn Store) -> Result<(), StoreError> {
    let (client, session, tokens) = stored_session(store).await?;
    let refused = |outcome: RefreshOutcome| assert_eq!(outcome, RefreshOutcome::Refused);

    let unknown = exchange_of(random_hash()?, &client, 60)?;
    refused(store.exchange_refresh(&unknown).await?);
    assert_no_successors(store, &unknown).await?;

    let access = exchange_of(tokens[0].hash, &client, 60)?;
    refused(store.exchange_refresh(&access).await?);
    assert_no_successors(store, &access).await?;

    // Another client presents this session's live refresh token: refused untouched.
    let other_client = confidential_client()?;
    store.insert_client(&other_client).await?;
    let stolen = exchange_of(tokens[1].hash, &other_client, 60)?;
    refused(store.exchange_refresh(&stolen).await?);
    assert_no_successors(store, &stolen).await?;
    let found = looked_up(store, &tokens[1].hash).await?;
    assert_eq!(found.token, tokens[1]);
    assert_eq!(found.session, session);

    // At or past its end.
    let late = exchange_of(tokens[1].hash, &client, 365 * 24 * 3600)?;
    refused(store.exchange_refresh(&late).await?);
    assert_no_successors(store, &late).await?;
    assert_eq!(looked_up(store, &tokens[1].hash).await?.token, tokens[1]);

    // Revoked on its own, and of a revoked session.
    assert!(store.revoke_token(&tokens[1].hash, at(30)).await?);
    let revoked = exchange_of(tokens[1].hash, &client, 60)?;
    refused(store.exchange_refresh(&revoked).await?);
    assert_no_successors(store, &revoked).await?;
    let (client, session, tokens) = stored_session(store).await?;
    assert!(store.revoke_session(&session.id, at(30)).await?);
    let ended = exchange_of(tokens[1].hash, &client, 60)?;
    refused(store.exchange_refresh(&ended).await?);
    assert_no_successors(store, &ended).await?;
    assert_eq!(looked_up(store, &tokens[1].hash).await?.token, tokens[1]);

    // An hour before the session's end, a two-hour access lifetime stops at the end.
    let (mut client, session, tokens) = stored_session(store).await?;
    client.access_token_ttl = 7200;
    let near_end = exchange_of(tokens[1].hash, &client, 365 * 24 * 3600 - 3600)?;
    assert_eq!(
        store.exchange_refresh(&near_end).await?,
        RefreshOutcome::Rotated {
            session: session.clone(),
            access_expires_at: session.expires_at,
        }
    );
    Ok(())
}

/// An exchange whose successors cannot be stored leaves everything as it was: the old
/// refresh token unconsumed and the session's newest access token unchanged.
pub async fn exchange_refresh_is_all_or_nothing(store: &dyn Store) -> Result<(), StoreError> {
    let (client, session, tokens) = stored_session(store).await?;
    let mut clash = exchange_of(tokens[1].hash, &client, 60)?;
    // The new refresh token's hash is taken (by the old access token).
    clash.refresh = tokens[0].hash;
    let result = store.exchange_refresh(&clash).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
    assert_eq!(store.lookup_token(&clash.access).await?, None);
    let found = looked_up(store, &tokens[1].hash).await?;
    assert_eq!(found.token, tokens[1]);
    assert_eq!(found.session, session);

    // The token still rotates afterwards.
    let retry = exchange_of(tokens[1].hash, &client, 61)?;
    assert!(matches!(
        store.exchange_refresh(&retry).await?,
        RefreshOutcome::Rotated { .. }
    ));
    Ok(())
}

/// `log_out` with an access token that is no longer its session's newest revokes that
/// token alone; with the newest, it ends the whole session. Each answers with the lookup
/// as it was before the logout, and the same token again finds nothing to end.
pub async fn log_out_ends_the_token_or_its_whole_session(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let (client, session, tokens) = stored_session(store).await?;
    let older = tokens[0].hash;
    let rotation = exchange_of(tokens[1].hash, &client, 60)?;
    assert!(matches!(
        store.exchange_refresh(&rotation).await?,
        RefreshOutcome::Rotated { .. }
    ));

    let before = looked_up(store, &older).await?;
    let logout = Logout {
        presented: older,
        now: at(70),
    };
    assert_eq!(
        store.log_out(&logout).await?,
        Some(LoggedOut {
            found: before,
            session_ended: false,
        })
    );
    let revoked = looked_up(store, &older).await?;
    assert_eq!(revoked.token.revoked_at, Some(at(70)));
    assert_eq!(revoked.session.revoked_at, None);
    assert_eq!(
        looked_up(store, &rotation.access).await?.token.revoked_at,
        None
    );
    let again = Logout {
        presented: older,
        now: at(71),
    };
    assert_eq!(store.log_out(&again).await?, None);
    assert_eq!(
        looked_up(store, &older).await?.token.revoked_at,
        Some(at(70))
    );

    let before = looked_up(store, &rotation.access).await?;
    let newest = Logout {
        presented: rotation.access,
        now: at(80),
    };
    assert_eq!(
        store.log_out(&newest).await?,
        Some(LoggedOut {
            found: before,
            session_ended: true,
        })
    );
    let ended = looked_up(store, &rotation.refresh).await?;
    assert_eq!(ended.session.id, session.id);
    assert_eq!(ended.session.revoked_at, Some(at(80)));
    let again = Logout {
        presented: rotation.access,
        now: at(81),
    };
    assert_eq!(store.log_out(&again).await?, None);
    assert_eq!(
        looked_up(store, &rotation.access).await?.session.revoked_at,
        Some(at(80))
    );
    Ok(())
}

/// `log_out` ends nothing and writes nothing for an unknown hash, a refresh token, an
/// expired access token or one of an ended session.
pub async fn log_out_refuses_without_writing(store: &dyn Store) -> Result<(), StoreError> {
    let (_, session, tokens) = stored_session(store).await?;
    let logout_of = |presented, seconds| Logout {
        presented,
        now: at(seconds),
    };
    assert_eq!(store.log_out(&logout_of(random_hash()?, 60)).await?, None);

    assert_eq!(store.log_out(&logout_of(tokens[1].hash, 60)).await?, None);
    let refresh = looked_up(store, &tokens[1].hash).await?;
    assert_eq!(refresh.token, tokens[1]);
    assert_eq!(refresh.session, session);

    let expired = logout_of(tokens[0].hash, 365 * 24 * 3600);
    assert_eq!(store.log_out(&expired).await?, None);
    let access = looked_up(store, &tokens[0].hash).await?;
    assert_eq!(access.token, tokens[0]);
    assert_eq!(access.session, session);

    assert!(store.revoke_session(&session.id, at(30)).await?);
    assert_eq!(store.log_out(&logout_of(tokens[0].hash, 60)).await?, None);
    let ended = looked_up(store, &tokens[0].hash).await?;
    assert_eq!(ended.token, tokens[0]);
    assert_eq!(ended.session.revoked_at, Some(at(30)));
    Ok(())
}

/// A session token round-trips, unbound at first; an unknown hash is not found.
pub async fn session_tokens_round_trip(store: &dyn Store) -> Result<(), StoreError> {
    let client = confidential_client()?;
    store.insert_client(&client).await?;
    let record = SessionTokenRecord {
        hash: random_hash()?,
        client_id: client.id.clone(),
        session_id: None,
        created_at: T0,
        expires_at: at(3600),
    };
    store.insert_session_token(&record).await?;
    let found = store.lookup_session_token(&record.hash).await?;
    assert_eq!(
        found,
        Some(SessionTokenLookup {
            record: record.clone(),
            bound: None
        })
    );
    assert_eq!(store.lookup_session_token(&random_hash()?).await?, None);
    assert!(matches!(
        store.insert_session_token(&record).await,
        Err(StoreError::Conflict(_))
    ));
    Ok(())
}

/// Binding a session token is conditional on its current binding: the first binder wins,
/// a stale binder writes nothing, and the bound session is seen through the token.
pub async fn insert_bound_session_binds_once(store: &dyn Store) -> Result<(), StoreError> {
    let client = confidential_client()?;
    store.insert_client(&client).await?;
    let hash = random_hash()?;
    store
        .insert_session_token(&SessionTokenRecord {
            hash,
            client_id: client.id.clone(),
            session_id: None,
            created_at: T0,
            expires_at: at(3600),
        })
        .await?;
    let (first, first_tokens) = full_session(&client)?;
    assert!(
        store
            .insert_bound_session(&hash, None, &first, &first_tokens)
            .await?
    );
    let (second, second_tokens) = full_session(&client)?;
    assert!(
        !store
            .insert_bound_session(&hash, None, &second, &second_tokens)
            .await?
    );
    assert_eq!(store.lookup_token(&second_tokens[0].hash).await?, None);
    let found = store.lookup_session_token(&hash).await?;
    let bound = found.and_then(|f| f.bound).map(|b| b.session);
    assert_eq!(bound, Some(first.clone()));
    // Rebinding from the session seen is allowed once.
    assert!(
        store
            .insert_bound_session(&hash, Some(&first.id), &second, &second_tokens)
            .await?
    );
    let found = store.lookup_session_token(&hash).await?;
    assert_eq!(
        found.and_then(|f| f.record.session_id),
        Some(second.id.clone())
    );
    Ok(())
}

/// Adding tokens to a session makes the new access token its newest, only while it lives.
pub async fn add_session_tokens_needs_a_live_session(store: &dyn Store) -> Result<(), StoreError> {
    let (client, session, _) = stored_session(store).await?;
    let added = TokenRecord {
        hash: random_hash()?,
        kind: TokenKind::Access,
        session_id: session.id.clone(),
        client_id: client.id.clone(),
        issued_at: at(10),
        expires_at: at(3610),
        revoked_at: None,
        consumed_at: None,
    };
    assert!(
        store
            .add_session_tokens(&session.id, &added.hash, std::slice::from_ref(&added))
            .await?
    );
    let found = looked_up(store, &added.hash).await?;
    assert_eq!(found.token, added);
    assert_eq!(found.session.newest_access, added.hash);
    assert!(store.revoke_session(&session.id, at(20)).await?);
    let late = TokenRecord {
        hash: random_hash()?,
        ..added
    };
    assert!(
        !store
            .add_session_tokens(&session.id, &late.hash, std::slice::from_ref(&late))
            .await?
    );
    assert_eq!(store.lookup_token(&late.hash).await?, None);
    Ok(())
}

/// An upgrade ends a live anonymous session, stores the new one and moves its session
/// tokens, once; an authenticated or ended session is not upgraded.
pub async fn upgrade_session_upgrades_anonymous_sessions_once(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let client = confidential_client()?;
    store.insert_client(&client).await?;
    let (mut anonymous, anonymous_tokens) = full_session(&client)?;
    anonymous.authenticated = false;
    let hash = random_hash()?;
    store
        .insert_session_token(&SessionTokenRecord {
            hash,
            client_id: client.id.clone(),
            session_id: None,
            created_at: T0,
            expires_at: at(3600),
        })
        .await?;
    assert!(
        store
            .insert_bound_session(&hash, None, &anonymous, &anonymous_tokens)
            .await?
    );
    let (shopper_session, shopper_tokens) = full_session(&client)?;
    assert!(
        store
            .upgrade_session(&anonymous.id, at(30), &shopper_session, &shopper_tokens)
            .await?
    );
    assert_eq!(
        looked_up(store, &anonymous_tokens[0].hash)
            .await?
            .session
            .revoked_at,
        Some(at(30))
    );
    assert_eq!(
        looked_up(store, &shopper_tokens[0].hash).await?.session,
        shopper_session
    );
    let moved = store.lookup_session_token(&hash).await?;
    assert_eq!(
        moved.and_then(|m| m.record.session_id),
        Some(shopper_session.id.clone())
    );
    let (again, again_tokens) = full_session(&client)?;
    assert!(
        !store
            .upgrade_session(&anonymous.id, at(40), &again, &again_tokens)
            .await?,
        "an ended session is not upgraded twice"
    );
    assert!(
        !store
            .upgrade_session(&shopper_session.id, at(40), &again, &again_tokens)
            .await?,
        "an authenticated session is not upgraded"
    );
    assert_eq!(store.lookup_token(&again_tokens[0].hash).await?, None);
    Ok(())
}

/// Expired session tokens are deleted in batches; live ones stay.
pub async fn expired_session_tokens_are_deleted(store: &dyn Store) -> Result<(), StoreError> {
    let client = confidential_client()?;
    store.insert_client(&client).await?;
    let mut expired = Vec::new();
    for _ in 0..3 {
        let record = SessionTokenRecord {
            hash: random_hash()?,
            client_id: client.id.clone(),
            session_id: None,
            created_at: T0,
            expires_at: at(60),
        };
        store.insert_session_token(&record).await?;
        expired.push(record.hash);
    }
    let live = SessionTokenRecord {
        hash: random_hash()?,
        client_id: client.id.clone(),
        session_id: None,
        created_at: T0,
        expires_at: at(3600),
    };
    store.insert_session_token(&live).await?;
    let mut deleted = 0;
    loop {
        let batch = store.delete_expired_session_tokens(at(60), 2).await?;
        assert!(batch <= 2);
        deleted += batch;
        if batch == 0 {
            break;
        }
    }
    assert!(deleted >= 3);
    for hash in expired {
        assert_eq!(store.lookup_session_token(&hash).await?, None);
    }
    assert!(store.lookup_session_token(&live.hash).await?.is_some());
    Ok(())
}

/// Every check above, one after another, on one store.
pub async fn run_all(store: &dyn Store) -> Result<(), StoreError> {
    clients_round_trip(store).await?;
    resource_server_flag_round_trips(store).await?;
    duplicate_client_id_conflicts(store).await?;
    client_secret_and_disabled_updates(store).await?;
    shoppers_round_trip(store).await?;
    duplicate_shopper_external_reference_conflicts(store).await?;
    duplicate_shopper_username_conflicts(store).await?;
    duplicate_shopper_id_conflicts(store).await?;
    shoppers_are_found_by_username(store).await?;
    session_and_tokens_round_trip(store).await?;
    insert_session_is_all_or_nothing(store).await?;
    unknown_hash_is_not_found(store).await?;
    end_session_if_newest_ends_once(store).await?;
    end_session_if_newest_needs_the_newest_token(store).await?;
    revoke_token_revokes_once(store).await?;
    touch_session_only_moves_forward(store).await?;
    revoke_session_revokes_once(store).await?;
    rotate_refresh_rotates_once(store).await?;
    rotate_refresh_refuses_dead_tokens(store).await?;
    rotate_refresh_is_all_or_nothing(store).await?;
    exchange_refresh_rotates_then_detects_reuse(store).await?;
    exchange_refresh_refuses_without_writing(store).await?;
    exchange_refresh_is_all_or_nothing(store).await?;
    log_out_ends_the_token_or_its_whole_session(store).await?;
    log_out_refuses_without_writing(store).await?;
    session_tokens_round_trip(store).await?;
    insert_bound_session_binds_once(store).await?;
    add_session_tokens_needs_a_live_session(store).await?;
    upgrade_session_upgrades_anonymous_sessions_once(store).await?;
    expired_session_tokens_are_deleted(store).await?;
    shopper_watermarks_are_read_with_lookups_and_only_move_forward(store).await?;
    client_watermarks_are_read_with_lookups_and_only_move_forward(store).await?;
    tidy_up_marks_covered_sessions_in_batches(store).await?;
    session_by_id_reads_a_session_with_its_client(store).await?;
    shopper_sessions_lists_sessions_that_may_be_live(store).await?;
    set_session_cart_sets_and_clears(store).await?;
    migration_exports_what_should_move_in_key_order(store).await?;
    migration_imports_rows_as_they_are_once(store).await?;
    // Clean-up last: it deletes every dead row in the store, other checks' too.
    sweep_sessions_deletes_only_dead_sessions(store).await?;
    delete_revoked_sessions_deletes_only_revoked_sessions(store).await?;
    sweep_tokens_deletes_only_dead_tokens(store).await?;
    Ok(())
}
