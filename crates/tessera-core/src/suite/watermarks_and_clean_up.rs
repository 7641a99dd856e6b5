//! Behaviour checks of `SessionAdminStore`: revocation watermarks and their tidy-up,
//! one-session reads and changes, and expiry clean-up. Re-exported by the suite.
//!
//! Clean-up deletes every dead row of the store, other checks' too, so these checks assert
//! on their own rows and count the rest only as "at least".

use super::{T0, at, confidential_client, looked_up, random_hash, stored_session};
use crate::client::ClientRecord;
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::id::{new_session_id, new_session_tag, new_user_id};
use crate::migration::MigrationBatch;
use crate::session::{SessionRecord, TokenRecord};
use crate::session_admin::{DeletedRows, SessionOwner, TidyUp};
use crate::store::Store;
use crate::token::{TokenHash, TokenKind};

/// A session of `client` for `user_id`, created at `created`, ending at `expires`, with an
/// access token expiring an hour after `created` (or with the session, if sooner) and a
/// refresh token expiring with the session.
fn session_at(
    client: &ClientRecord,
    user_id: Option<&str>,
    created: Timestamp,
    expires: Timestamp,
) -> Result<(SessionRecord, Vec<TokenRecord>), StoreError> {
    let access = random_hash()?;
    let session = SessionRecord {
        id: new_session_id()?,
        client_id: client.id.clone(),
        user_id: user_id.map(str::to_owned),
        external_reference_id: None,
        authenticated: user_id.is_some(),
        locale: "en_US".to_owned(),
        currency: "USD".to_owned(),
        cart_id: None,
        client_ip: "192.0.2.1".to_owned(),
        session_tag: new_session_tag()?,
        created_at: created,
        last_accessed: created,
        expires_at: expires,
        newest_access: access,
        revoked_at: None,
    };
    let token = |hash, kind, expires_at| TokenRecord {
        hash,
        kind,
        session_id: session.id.clone(),
        client_id: client.id.clone(),
        issued_at: created,
        expires_at,
        revoked_at: None,
        consumed_at: None,
    };
    let tokens = vec![
        token(
            access,
            TokenKind::Access,
            created.plus_seconds(3600).min(expires),
        ),
        token(random_hash()?, TokenKind::Refresh, expires),
    ];
    Ok((session, tokens))
}

async fn stored_client(store: &dyn Store) -> Result<ClientRecord, StoreError> {
    let client = confidential_client()?;
    store.insert_client(&client).await?;
    Ok(client)
}

/// Stores a session made by [`session_at`].
async fn stored_at(
    store: &dyn Store,
    client: &ClientRecord,
    user_id: Option<&str>,
    created: Timestamp,
    expires: Timestamp,
) -> Result<(SessionRecord, Vec<TokenRecord>), StoreError> {
    let (session, tokens) = session_at(client, user_id, created, expires)?;
    store.insert_session(&session, &tokens).await?;
    Ok((session, tokens))
}

async fn pending_for(store: &dyn Store, owner: &SessionOwner) -> Result<Vec<TidyUp>, StoreError> {
    Ok(store
        .pending_tidy_ups(u32::MAX)
        .await?
        .into_iter()
        .filter(|t| &t.owner == owner)
        .collect())
}

/// A shopper's watermark comes back with every lookup of a token of theirs and with
/// `session_by_id`, only ever moves forward, touches no other shopper, and records a
/// pending tidy-up.
pub async fn shopper_watermarks_are_read_with_lookups_and_only_move_forward(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let client = stored_client(store).await?;
    let user = new_user_id()?;
    let other_user = new_user_id()?;
    let (session, tokens) = stored_at(store, &client, Some(&user), T0, at(86_400)).await?;
    let (other, _) = stored_at(store, &client, Some(&other_user), T0, at(86_400)).await?;
    let (client_token, _) = stored_at(store, &client, None, T0, at(86_400)).await?;
    let owner = SessionOwner::Shopper(user.clone());

    assert_eq!(
        looked_up(store, &tokens[0].hash)
            .await?
            .shopper_sessions_revoked_before,
        None
    );
    assert!(store.revoke_sessions_before(&owner, at(100)).await?);
    for token in &tokens {
        let found = looked_up(store, &token.hash).await?;
        assert_eq!(found.shopper_sessions_revoked_before, Some(at(100)));
        // The session row itself is untouched: the watermark alone ends it.
        assert_eq!(found.session, session);
    }
    let pending = pending_for(store, &owner).await?;
    assert_eq!(
        pending,
        vec![TidyUp {
            owner: owner.clone(),
            before: at(100)
        }]
    );

    // Never backwards; forwards moves the pending tidy-up too.
    assert!(store.revoke_sessions_before(&owner, at(50)).await?);
    assert_eq!(
        looked_up(store, &tokens[0].hash)
            .await?
            .shopper_sessions_revoked_before,
        Some(at(100))
    );
    assert!(store.revoke_sessions_before(&owner, at(200)).await?);
    let found = store.session_by_id(&session.id).await?;
    assert_eq!(
        found.map(|f| f.shopper_sessions_revoked_before),
        Some(Some(at(200)))
    );
    assert_eq!(pending_for(store, &owner).await?[0].before, at(200));

    for untouched in [&other.id, &client_token.id] {
        let found = store.session_by_id(untouched).await?;
        assert_eq!(found.map(|f| f.shopper_sessions_revoked_before), Some(None));
    }
    Ok(())
}

/// A client's watermark comes back on its record, with every lookup and with
/// `session_by_id`, only ever moves forward, and is refused for an unknown client. It
/// records no tidy-up: the session sweep deletes the sessions it covers.
pub async fn client_watermarks_are_read_with_lookups_and_only_move_forward(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let client = stored_client(store).await?;
    let other = stored_client(store).await?;
    let (session, tokens) = stored_at(store, &client, None, T0, at(86_400)).await?;
    let owner = SessionOwner::Client(client.id.clone());

    assert!(store.revoke_sessions_before(&owner, at(100)).await?);
    assert!(store.revoke_sessions_before(&owner, at(40)).await?);
    let expected = ClientRecord {
        sessions_revoked_before: Some(at(100)),
        ..client.clone()
    };
    assert_eq!(store.client(&client.id).await?, Some(expected.clone()));
    assert_eq!(looked_up(store, &tokens[1].hash).await?.client, expected);
    assert_eq!(
        store.session_by_id(&session.id).await?.map(|f| f.client),
        Some(expected)
    );
    assert_eq!(store.client(&other.id).await?, Some(other));
    assert!(pending_for(store, &owner).await?.is_empty());

    let unknown = SessionOwner::Client(crate::id::new_client_id()?);
    assert!(!store.revoke_sessions_before(&unknown, at(100)).await?);
    assert!(pending_for(store, &unknown).await?.is_empty());
    Ok(())
}

/// The tidy-up marks revoked, batch by batch, exactly the sessions a shopper's watermark
/// covers, and
/// finishes its pending record only once none is left, and only if no newer watermark
/// replaced it.
pub async fn tidy_up_marks_covered_sessions_in_batches(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let client = stored_client(store).await?;
    let other_client = stored_client(store).await?;
    let user = new_user_id()?;
    let mut covered = Vec::new();
    for seconds in [10, 20, 30] {
        covered.push(stored_at(store, &client, Some(&user), at(seconds), at(86_400)).await?);
    }
    let (later, _) = stored_at(store, &client, Some(&user), at(101), at(86_400)).await?;
    let (elsewhere, _) = stored_at(
        store,
        &other_client,
        Some(&new_user_id()?),
        at(10),
        at(86_400),
    )
    .await?;
    let owner = SessionOwner::Shopper(user.clone());
    assert!(store.revoke_sessions_before(&owner, at(100)).await?);
    let tidy = TidyUp {
        owner: owner.clone(),
        before: at(100),
    };

    assert_eq!(store.tidy_up_batch(&tidy, at(500), 2).await?, 2);
    assert_eq!(pending_for(store, &owner).await?, vec![tidy.clone()]);
    assert_eq!(store.tidy_up_batch(&tidy, at(501), 2).await?, 1);
    assert!(pending_for(store, &owner).await?.is_empty());
    for (session, _) in &covered {
        let found = store.session_by_id(&session.id).await?;
        let revoked = found.and_then(|f| f.session.revoked_at);
        assert!(
            revoked == Some(at(500)) || revoked == Some(at(501)),
            "{revoked:?}"
        );
    }
    for untouched in [&later, &elsewhere] {
        let found = store.session_by_id(&untouched.id).await?;
        assert_eq!(found.map(|f| f.session), Some(untouched.clone()));
    }

    // A client's pending tidy-up, as an earlier release recorded them, is finished
    // without marking anything: the session sweep deletes what it covers.
    let owner = SessionOwner::Client(other_client.id.clone());
    assert!(store.revoke_sessions_before(&owner, at(100)).await?);
    let recorded = TidyUp {
        owner: owner.clone(),
        before: at(100),
    };
    store
        .import_rows(&MigrationBatch::PendingTidyUps(vec![recorded.clone()]))
        .await?;
    assert_eq!(pending_for(store, &owner).await?, vec![recorded.clone()]);
    assert_eq!(store.tidy_up_batch(&recorded, at(600), 10).await?, 0);
    assert!(pending_for(store, &owner).await?.is_empty());
    let found = store.session_by_id(&elsewhere.id).await?;
    assert_eq!(found.and_then(|f| f.session.revoked_at), None);
    Ok(())
}

/// `session_by_id` reads one session with its client and watermark; an unknown id finds
/// nothing.
pub async fn session_by_id_reads_a_session_with_its_client(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let (client, session, _) = stored_session(store).await?;
    let found = store.session_by_id(&session.id).await?;
    let found = found.unwrap_or_else(|| panic!("a stored session must be found by its id"));
    assert_eq!(found.session, session);
    assert_eq!(found.client, client);
    assert_eq!(found.shopper_sessions_revoked_before, None);
    assert_eq!(store.session_by_id(&new_session_id()?).await?, None);
    Ok(())
}

/// `shopper_sessions` lists, oldest first, only the shopper's sessions that are neither
/// revoked, nor expired, nor covered by the shopper's watermark, up to the limit.
pub async fn shopper_sessions_lists_sessions_that_may_be_live(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let client = stored_client(store).await?;
    let user = new_user_id()?;
    let (covered, _) = stored_at(store, &client, Some(&user), at(10), at(86_400)).await?;
    let (second, _) = stored_at(store, &client, Some(&user), at(300), at(86_400)).await?;
    let (first, _) = stored_at(store, &client, Some(&user), at(200), at(86_400)).await?;
    let (expired, _) = stored_at(store, &client, Some(&user), at(250), at(1000)).await?;
    let (revoked, _) = stored_at(store, &client, Some(&user), at(260), at(86_400)).await?;
    stored_at(store, &client, Some(&new_user_id()?), at(200), at(86_400)).await?;
    assert!(store.revoke_session(&revoked.id, at(270)).await?);
    assert!(
        store
            .revoke_sessions_before(&SessionOwner::Shopper(user.clone()), at(100))
            .await?
    );

    let listed = store.shopper_sessions(&user, at(1000), 10).await?;
    let ids: Vec<&str> = listed.iter().map(|f| f.session.id.as_str()).collect();
    assert_eq!(ids, vec![first.id.as_str(), second.id.as_str()]);
    assert_eq!(listed[0].client, client);
    assert!(!ids.contains(&covered.id.as_str()) && !ids.contains(&expired.id.as_str()));

    let limited = store.shopper_sessions(&user, at(1000), 1).await?;
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].session, first);
    assert!(
        store
            .shopper_sessions(&new_user_id()?, at(1000), 10)
            .await?
            .is_empty()
    );
    Ok(())
}

/// `set_session_cart` sets and clears the cart id of a session that is not revoked, and
/// reports `false` otherwise.
pub async fn set_session_cart_sets_and_clears(store: &dyn Store) -> Result<(), StoreError> {
    let (_, session, tokens) = stored_session(store).await?;
    assert!(store.set_session_cart(&session.id, Some("cart-99")).await?);
    let found = looked_up(store, &tokens[0].hash).await?;
    assert_eq!(
        found.session,
        SessionRecord {
            cart_id: Some("cart-99".to_owned()),
            ..session.clone()
        }
    );
    assert!(store.set_session_cart(&session.id, None).await?);
    assert_eq!(
        looked_up(store, &tokens[0].hash).await?.session.cart_id,
        None
    );

    assert!(
        !store
            .set_session_cart(&new_session_id()?, Some("x"))
            .await?
    );
    assert!(store.revoke_session(&session.id, at(60)).await?);
    assert!(!store.set_session_cart(&session.id, Some("late")).await?);
    assert_eq!(
        looked_up(store, &tokens[0].hash).await?.session.cart_id,
        None
    );
    Ok(())
}

/// Session clean-up deletes revoked sessions, at most `limit` a batch, and only those:
/// live sessions stay, and so do expired ones and those a watermark covers (left to the
/// sweep). The deleted sessions' tokens are never found again.
pub async fn delete_revoked_sessions_deletes_only_revoked_sessions(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let created = at(-20 * 86_400);
    let client = stored_client(store).await?;
    let mut revoked = Vec::new();
    for _ in 0..3 {
        let (session, tokens) = stored_at(store, &client, None, created, at(86_400)).await?;
        assert!(
            store
                .revoke_session(&session.id, created.plus_seconds(5))
                .await?
        );
        revoked.push((session, tokens));
    }
    let (expired, _) = stored_at(store, &client, None, created, created.plus_seconds(60)).await?;
    let (live, live_tokens) = stored_at(store, &client, None, created, at(86_400)).await?;

    let mut total = DeletedRows::default();
    loop {
        let batch = store.delete_revoked_sessions(2).await?;
        assert!(batch.sessions + batch.tokens <= 2, "{batch:?}");
        if batch.sessions + batch.tokens == 0 {
            break;
        }
        total.sessions += batch.sessions;
        total.tokens += batch.tokens;
    }
    assert!(total.sessions >= 3, "{total:?}");
    for (session, tokens) in &revoked {
        assert_eq!(store.session_by_id(&session.id).await?, None);
        for token in tokens {
            assert_eq!(store.lookup_token(&token.hash).await?, None);
        }
    }
    assert!(store.session_by_id(&expired.id).await?.is_some());
    assert!(store.session_by_id(&live.id).await?.is_some());
    assert_eq!(looked_up(store, &live_tokens[1].hash).await?.session, live);
    Ok(())
}

/// Sweeps every session of `store` in batches of `limit`, checking each batch's bounds;
/// returns how many sessions it deleted.
async fn sweep_every_session(
    store: &dyn Store,
    now: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    let mut after: Option<String> = None;
    let mut deleted = 0;
    loop {
        let batch = store.sweep_sessions(after.as_deref(), now, limit).await?;
        assert!(batch.examined <= u64::from(limit), "{batch:?}");
        assert!(batch.deleted.sessions <= batch.examined, "{batch:?}");
        if let Some(next) = &batch.next {
            assert_eq!(batch.examined, u64::from(limit), "{batch:?}");
            assert!(
                after.as_ref().is_none_or(|after| next != after),
                "the sweep goes forward"
            );
        }
        deleted += batch.deleted.sessions;
        after = batch.next;
        if after.is_none() {
            return Ok(deleted);
        }
    }
}

/// The session sweep deletes, in batches of at most `limit` sessions looked at, every
/// session that expired, was revoked, or that its client's or its shopper's watermark
/// covers, and keeps every other one; it ends. Their tokens are never found again, and the
/// token sweep then deletes what the store left of them.
pub async fn sweep_sessions_deletes_only_dead_sessions(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let created = at(-40 * 86_400);
    let now = created.plus_seconds(86_400);
    let client = stored_client(store).await?;
    let watermarked_client = stored_client(store).await?;
    let shopper = new_user_id()?;
    let (expired, expired_tokens) =
        stored_at(store, &client, None, created, created.plus_seconds(60)).await?;
    let (revoked, revoked_tokens) = stored_at(store, &client, None, created, at(86_400)).await?;
    assert!(
        store
            .revoke_session(&revoked.id, created.plus_seconds(5))
            .await?
    );
    let (by_client, by_client_tokens) =
        stored_at(store, &watermarked_client, None, created, at(86_400)).await?;
    let (by_shopper, by_shopper_tokens) =
        stored_at(store, &client, Some(&shopper), created, at(86_400)).await?;
    let (after_watermarks, after_tokens) = stored_at(
        store,
        &watermarked_client,
        Some(&shopper),
        created.plus_seconds(20),
        at(86_400),
    )
    .await?;
    let (live, live_tokens) = stored_at(store, &client, None, created, at(86_400)).await?;
    for owner in [
        SessionOwner::Client(watermarked_client.id.clone()),
        SessionOwner::Shopper(shopper.clone()),
    ] {
        assert!(
            store
                .revoke_sessions_before(&owner, created.plus_seconds(10))
                .await?
        );
    }

    let deleted = sweep_every_session(store, now, 2).await?;
    assert!(deleted >= 4, "expired, revoked and two covered: {deleted}");
    let dead = [
        (&expired, &expired_tokens),
        (&revoked, &revoked_tokens),
        (&by_client, &by_client_tokens),
        (&by_shopper, &by_shopper_tokens),
    ];
    for (session, tokens) in dead {
        assert_eq!(store.session_by_id(&session.id).await?, None);
        for token in tokens {
            assert_eq!(store.lookup_token(&token.hash).await?, None);
        }
    }
    for (session, tokens) in [(&after_watermarks, &after_tokens), (&live, &live_tokens)] {
        assert!(store.session_by_id(&session.id).await?.is_some());
        assert_eq!(looked_up(store, &tokens[1].hash).await?.session, *session);
    }
    sweep_everything(store, now, 3).await?;
    for (session, tokens) in [(&after_watermarks, &after_tokens), (&live, &live_tokens)] {
        assert_eq!(looked_up(store, &tokens[1].hash).await?.session, *session);
    }
    // Nothing left to delete: a second sweep deletes nothing of these.
    assert_eq!(sweep_every_session(store, now, 2).await?, 0);
    Ok(())
}

/// Sweeps every token of `store` in batches of `limit`, checking each batch's bounds;
/// returns how many it deleted.
async fn sweep_everything(
    store: &dyn Store,
    now: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    let mut after = None;
    let mut deleted = 0;
    loop {
        let batch = store.sweep_tokens(after.as_ref(), now, limit).await?;
        assert!(batch.examined <= u64::from(limit), "{batch:?}");
        assert!(batch.deleted.tokens <= batch.examined, "{batch:?}");
        if batch.next.is_some() {
            assert_eq!(batch.examined, u64::from(limit), "{batch:?}");
            let key = |at: Option<TokenHash>| at.map(|k| k.0);
            assert!(key(batch.next) > key(after), "the sweep goes forward");
        }
        deleted += batch.deleted.tokens;
        after = batch.next;
        if after.is_none() {
            return Ok(deleted);
        }
    }
}

/// The token sweep deletes, in batches of at most `limit` tokens looked at, every token
/// that expired or whose session was revoked, and keeps every other one, a live session's
/// consumed refresh token included; it goes forward in key order and ends.
pub async fn sweep_tokens_deletes_only_dead_tokens(store: &dyn Store) -> Result<(), StoreError> {
    let created = at(-30 * 86_400);
    let now = created.plus_seconds(7200);
    let client = stored_client(store).await?;
    // Expired: the session ended a second before `now`, its tokens with it.
    let (_, expired) = stored_at(store, &client, None, created, now.plus_seconds(-1)).await?;
    // An access token expired an hour after `created`, in a session still live.
    let (older, older_tokens) = stored_at(store, &client, None, created, at(86_400)).await?;
    // A revoked session, not expired.
    let (revoked, revoked_tokens) = stored_at(store, &client, None, created, at(86_400)).await?;
    assert!(
        store
            .revoke_session(&revoked.id, created.plus_seconds(5))
            .await?
    );
    // A live session whose refresh token was consumed: kept, for reuse detection.
    let fresh = now.plus_seconds(-60);
    let (live, mut live_tokens) = session_at(&client, None, fresh, at(86_400))?;
    live_tokens[1].consumed_at = Some(fresh.plus_seconds(10));
    store.insert_session(&live, &live_tokens).await?;
    for token in expired.iter().chain(&revoked_tokens) {
        looked_up(store, &token.hash).await?;
    }

    let deleted = sweep_everything(store, now, 2).await?;
    assert!(
        deleted >= 5,
        "expired 2, older access 1, revoked 2: {deleted}"
    );
    for gone in expired
        .iter()
        .chain(&revoked_tokens)
        .chain(std::iter::once(&older_tokens[0]))
    {
        assert_eq!(store.lookup_token(&gone.hash).await?, None);
    }
    assert_eq!(
        looked_up(store, &older_tokens[1].hash).await?.token,
        older_tokens[1]
    );
    assert_eq!(
        looked_up(store, &older_tokens[1].hash).await?.session,
        older
    );
    for kept in &live_tokens {
        assert_eq!(looked_up(store, &kept.hash).await?.token, kept.clone());
    }
    // Nothing left to delete: a second sweep deletes nothing of these.
    assert_eq!(sweep_everything(store, now, 2).await?, 0);
    Ok(())
}
