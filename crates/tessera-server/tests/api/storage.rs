//! What the store holds (API.md §7, RELIABILITY.md P2): hashes, never tokens; and a row
//! written straight into the store mints nothing.

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
    let now = app.clock_now();
    let session = SessionRecord {
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
        expires_at: now.plus_seconds(3600),
        newest_access: TokenHash::of_token(&forged),
        revoked_at: None,
    };
    let row = TokenRecord {
        hash: TokenHash::of_token(&forged),
        kind: TokenKind::Access,
        session_id: session.id.clone(),
        client_id: app.client.id.clone(),
        issued_at: now,
        expires_at: now.plus_seconds(3600),
        revoked_at: None,
        consumed_at: None,
    };
    app.store.insert_session(&session, &[row]).await?;
    let answer = app.get_session(&forged).await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    Ok(())
}
