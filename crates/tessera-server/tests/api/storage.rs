//! What the store holds (API.md §7, RELIABILITY.md P2): hashes, never tokens; and a row
//! written straight into the store mints nothing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit as _, Mac as _};
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::token::{TokenHash, TokenKind};

use crate::helpers::*;

#[tokio::test]
async fn the_database_files_hold_no_issued_token_nor_its_random_part() -> TestResult {
    let app = spawn_app().await;
    app.shopper("dump-check").await;
    let mut issued = Vec::new();
    for form in [
        "grant_type=password",
        "grant_type=client_credentials",
        "grant_type=client_credentials&dr_external_reference_id=dump-check",
    ] {
        for _ in 0..20 {
            let answer = app.token(form).await;
            assert_eq!(answer.status, 200, "{}", answer.text);
            issued.push(answer.str("access_token"));
            if answer.body.get("refresh_token").is_some() {
                issued.push(answer.str("refresh_token"));
            }
        }
    }
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", app.database.display());
        if let Ok(content) = std::fs::read(&path) {
            bytes.extend(content);
        }
    }
    assert!(bytes.len() > 4096, "the database was written");
    let haystack = String::from_utf8_lossy(&bytes);
    for token in &issued {
        // The payload after `tsa_<kid>_`; after 8 characters of minting time, the next 42
        // are purely random bits.
        let payload = token.splitn(3, '_').nth(2).unwrap_or(token);
        let random_part = payload.get(8..50).unwrap_or_default();
        assert_eq!(random_part.len(), 42);
        assert!(!haystack.contains(token.as_str()));
        assert!(
            !haystack.contains(random_part),
            "random part found in the store"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_row_written_into_the_store_cannot_mint_a_token() -> TestResult {
    let app = spawn_app().await;
    let forged = format!("tsa_{}_{}", app.keys.signing_key_id(), "A".repeat(72));
    let session = session_of(&app, TokenHash::of_token(&forged));
    let row = token_of(
        &app,
        &session,
        TokenHash::of_token(&forged),
        TokenKind::Access,
    );
    app.store.insert_session(&session, &[row]).await?;
    let answer = app.get_session(&forged).await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    Ok(())
}

/// A live session of the app's client, written straight into the store.
fn session_of(app: &TestApp, newest_access: TokenHash) -> SessionRecord {
    let now = app.clock_now();
    SessionRecord {
        id: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
        client_id: app.client.id.clone(),
        user_id: Some("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_owned()),
        external_reference_id: None,
        authenticated: true,
        locale: "en_US".to_owned(),
        currency: "USD".to_owned(),
        cart_id: None,
        client_ip: "127.0.0.1".to_owned(),
        session_tag: "cccccccccccccccccccccccccccccccc".to_owned(),
        created_at: now,
        last_accessed: now,
        expires_at: now.plus_seconds(86_400),
        newest_access,
        revoked_at: None,
    }
}

/// A live token of `session`, stored under `hash`.
fn token_of(
    app: &TestApp,
    session: &SessionRecord,
    hash: TokenHash,
    kind: TokenKind,
) -> TokenRecord {
    let now = app.clock_now();
    TokenRecord {
        hash,
        kind,
        session_id: session.id.clone(),
        client_id: app.client.id.clone(),
        issued_at: now,
        expires_at: now.plus_seconds(3600),
        revoked_at: None,
        consumed_at: None,
    }
}

/// A token as Tessera minted them before the payload carried the minting time: 32 random
/// bytes and the first 16 bytes of HMAC-SHA256 over `<prefix>_<kid>_<random>`.
fn untimed_token(app: &TestApp, prefix: &str) -> Result<String, Box<dyn std::error::Error>> {
    let line = app
        .key_file
        .expose()
        .lines()
        .find(|line| !line.starts_with('#') && !line.trim().is_empty())
        .ok_or("the key file names a key")?;
    let (kid, key) = line.split_once(' ').ok_or("a key line is `<kid> <key>`")?;
    let mut random = [0u8; 32];
    tessera_core::id::random_bytes(&mut random)?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&URL_SAFE_NO_PAD.decode(key)?)?;
    mac.update(format!("{prefix}_{kid}_").as_bytes());
    mac.update(&random);
    let tag = mac.finalize().into_bytes();
    let mut payload = random.to_vec();
    payload.extend_from_slice(&tag[..16]);
    Ok(format!(
        "{prefix}_{kid}_{}",
        URL_SAFE_NO_PAD.encode(payload)
    ))
}

/// `access` looks up its session, `session_id`.
async fn assert_looks_up(app: &TestApp, access: &str, session_id: &str) {
    let looked_up = app.get_session(access).await;
    assert_eq!(looked_up.status, 200, "{}", looked_up.text);
    assert_eq!(looked_up.str("sessionId"), session_id);
}

#[tokio::test]
async fn tokens_minted_before_the_payload_carried_the_time_keep_working() -> TestResult {
    let app = spawn_app().await;
    let access = untimed_token(&app, "tsa")?;
    let refresh = untimed_token(&app, "tsr")?;
    assert_eq!(access.splitn(3, '_').nth(2).map(str::len), Some(64));
    // Stored as an earlier version stored them: under the plain SHA-256 of the token.
    let session = session_of(&app, TokenHash::of(&access));
    let tokens = [
        token_of(&app, &session, TokenHash::of(&access), TokenKind::Access),
        token_of(&app, &session, TokenHash::of(&refresh), TokenKind::Refresh),
    ];
    app.store.insert_session(&session, &tokens).await?;

    assert_looks_up(&app, &access, &session.id).await;

    // Its refresh token rotates into tokens of the current shape, for the same session.
    let rotated = app
        .token(&format!("grant_type=refresh_token&refresh_token={refresh}"))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_access = rotated.str("access_token");
    assert_eq!(new_access.splitn(3, '_').nth(2).map(str::len), Some(72));
    assert_looks_up(&app, &new_access, &session.id).await;
    let replayed = app
        .token(&format!("grant_type=refresh_token&refresh_token={refresh}"))
        .await;
    assert_eq!(replayed.status, 400, "{}", replayed.text);

    // An untimed token with a good MAC that the store never held is no token.
    let second = untimed_token(&app, "tsa")?;
    assert_eq!(app.get_session(&second).await.status, 401);
    Ok(())
}
