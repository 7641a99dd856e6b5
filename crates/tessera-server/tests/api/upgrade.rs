//! Upgrades and session-aware tokens (API.md §2 "Upgrade" and "Session-aware"): a limited
//! token's anonymous session moves to the shopper, and session tokens join requests into
//! one session.

use reqwest::header::AUTHORIZATION;
use tessera_core::admin::NewClient;

use crate::helpers::*;

async fn session_token(app: &TestApp) -> String {
    let answer = app
        .request(
            app.http
                .get(app.url("/oauth20/session-token"))
                .header(AUTHORIZATION, app.client.basic()),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.str("session_token")
}

#[tokio::test]
async fn a_limited_token_upgrade_moves_the_anonymous_session_to_the_shopper() {
    let app = spawn_app().await;
    let user_id = app.shopper("upgrade-me").await;
    let (limited, limited_refresh) = app.anonymous_tokens().await;
    let before = app.get_session(&limited).await;
    let upgraded = app
        .token(&format!(
            "grant_type=client_credentials&dr_external_reference_id=upgrade-me&dr_limited_token={limited}"
        ))
        .await;
    assert_eq!(upgraded.status, 200, "{}", upgraded.text);
    let session = app.get_session(&upgraded.str("access_token")).await;
    assert_eq!(session.status, 200);
    assert_eq!(session.body["authenticated"], "true");
    assert_eq!(session.str("userId"), user_id);
    assert_eq!(session.body["externalReferenceId"], "upgrade-me");
    // The anonymous session's locale and currency travel with it, over the shopper's own.
    assert_eq!(session.body["locale"], before.body["locale"]);
    assert_eq!(session.body["currency"], before.body["currency"]);
    assert_eq!(session.body["cartId"], before.body["cartId"]);
    // The limited token and its refresh token are gone.
    assert_eq!(app.get_session(&limited).await.status, 401);
    let refresh = app
        .token(&format!(
            "grant_type=refresh_token&refresh_token={limited_refresh}"
        ))
        .await;
    assert_eq!(refresh.status, 400, "{}", refresh.text);
    // And it cannot be upgraded twice.
    let again = app
        .token(&format!(
            "grant_type=client_credentials&dr_external_reference_id=upgrade-me&dr_limited_token={limited}"
        ))
        .await;
    assert_eq!(again.error_code(), Some("dr_limited_token_invalid"));
}

#[tokio::test]
async fn bad_limited_tokens_are_dr_limited_token_invalid() {
    let app = spawn_app().await;
    app.shopper("bad-limited").await;
    let (full, _) = {
        let answer = app
            .token("grant_type=client_credentials&dr_external_reference_id=bad-limited")
            .await;
        (answer.str("access_token"), answer.str("refresh_token"))
    };
    let other_client = app
        .client_with(&[tessera_core::client::Grant::Anonymous])
        .await;
    let foreign = app
        .token_with(Some(&other_client.basic()), "grant_type=password")
        .await
        .str("access_token");
    let (revoked, refresh) = app.anonymous_tokens().await;
    assert_eq!(app.delete_session(&revoked).await.status, 200);
    for (case, limited) in [
        ("garbage", "garbage".to_owned()),
        ("a full token", full),
        ("another client's limited token", foreign),
        ("a revoked limited token", revoked),
        ("a refresh token", refresh),
    ] {
        let answer = app
            .token(&format!(
                "grant_type=client_credentials&dr_external_reference_id=bad-limited&dr_limited_token={limited}"
            ))
            .await;
        assert_eq!(answer.status, 400, "{case}: {}", answer.text);
        assert_eq!(
            answer.error_code(),
            Some("dr_limited_token_invalid"),
            "{case}"
        );
    }
}

#[tokio::test]
async fn a_limited_token_only_upgrades_to_a_shopper_token() {
    let app = spawn_app().await;
    let (limited, _) = app.anonymous_tokens().await;
    for form in [
        format!("grant_type=password&dr_limited_token={limited}"),
        format!("grant_type=client_credentials&dr_limited_token={limited}"),
    ] {
        let answer = app.token(&form).await;
        assert_eq!(answer.status, 400, "{form}: {}", answer.text);
        assert_eq!(answer.error_code(), Some("invalid_request"), "{form}");
    }
    assert_eq!(
        app.get_session(&limited).await.status,
        200,
        "nothing was revoked"
    );
}

#[tokio::test]
async fn a_session_token_is_minted_for_an_authenticated_client_only() {
    let app = spawn_app().await;
    let token = session_token(&app).await;
    assert_eq!(token.len(), 32);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    );
    let unauthenticated = app
        .request(app.http.get(app.url("/oauth20/session-token")))
        .await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.error_code(), Some("invalid_client"));
    let wrong = Credentials {
        id: app.client.id.clone(),
        secret: "tcs_wrong".to_owned(),
    };
    let wrong = app
        .request(
            app.http
                .get(app.url("/oauth20/session-token"))
                .header(AUTHORIZATION, wrong.basic()),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let post = app
        .request(app.http.post(app.url("/oauth20/session-token")))
        .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET,HEAD"));
}

#[tokio::test]
async fn requests_with_one_session_token_share_one_session_under_every_alias() {
    let app = spawn_app().await;
    let token = session_token(&app).await;
    let first = app
        .token(&format!("grant_type=password&dr_session_token={token}"))
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = app
        .token(&format!("grant_type=password&sessionToken={token}"))
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let third = app
        .token_at(
            &format!("/oauth20/token?session_token={token}"),
            Some(&app.client.basic()),
            "grant_type=password",
        )
        .await;
    assert_eq!(third.status, 200, "{}", third.text);
    let sessions: Vec<String> = [&first, &second, &third]
        .iter()
        .map(|a| a.str("access_token"))
        .collect();
    let mut ids = Vec::new();
    for access in &sessions {
        let session = app.get_session(access).await;
        assert_eq!(session.status, 200);
        ids.push(session.str("sessionId"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one session");
    // The newest token is the third: deleting the first only rotates it out.
    assert_eq!(app.delete_session(&sessions[0]).await.status, 200);
    assert_eq!(app.get_session(&sessions[2]).await.status, 200);
    assert_eq!(app.delete_session(&sessions[2]).await.status, 200);
    assert_eq!(
        app.get_session(&sessions[1]).await.status,
        401,
        "logout ends all"
    );
}

#[tokio::test]
async fn a_shopper_grant_with_an_anonymous_sessions_token_upgrades_that_session() {
    let app = spawn_app().await;
    let user_id = app.shopper("joins-later").await;
    let token = session_token(&app).await;
    let anonymous = app
        .token(&format!("grant_type=password&dr_session_token={token}"))
        .await
        .str("access_token");
    let shopper = app
        .token(&format!(
            "grant_type=client_credentials&dr_external_reference_id=joins-later&dr_session_token={token}"
        ))
        .await;
    assert_eq!(shopper.status, 200, "{}", shopper.text);
    assert_eq!(
        app.get_session(&anonymous).await.status,
        401,
        "limited token revoked"
    );
    let session = app.get_session(&shopper.str("access_token")).await;
    assert_eq!(session.str("userId"), user_id);
    assert_eq!(session.body["authenticated"], "true");
    // Later requests of the same shopper join the upgraded session.
    let again = app
        .token(&format!(
            "grant_type=client_credentials&externalReferenceId=joins-later&dr_session_token={token}"
        ))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    let joined = app.get_session(&again.str("access_token")).await;
    assert_eq!(joined.body["sessionId"], session.body["sessionId"]);
    // But an anonymous request never gets into the shopper's session, nor another shopper.
    let anonymous_again = app
        .token(&format!("grant_type=password&dr_session_token={token}"))
        .await;
    assert_eq!(anonymous_again.error_code(), Some("invalid_grant"));
    app.shopper("someone-else").await;
    let other_shopper = app
        .token(&format!(
            "grant_type=client_credentials&dr_external_reference_id=someone-else&dr_session_token={token}"
        ))
        .await;
    assert_eq!(other_shopper.error_code(), Some("invalid_grant"));
}

#[tokio::test]
async fn session_tokens_tessera_did_not_mint_for_this_client_are_refused() {
    let app = spawn_app().await;
    let mut other = NewClient::named("other");
    other.public = false;
    let (other, secret) = app
        .admin
        .create_client(other)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let other = Credentials {
        id: other.id,
        secret: secret.map(|s| s.expose().to_owned()).unwrap_or_default(),
    };
    let foreign = app
        .request(
            app.http
                .get(app.url("/oauth20/session-token"))
                .header(AUTHORIZATION, other.basic()),
        )
        .await
        .str("session_token");
    let minted = session_token(&app).await;
    for (case, presented) in [
        (
            "never minted",
            "0123456789ABCDEF0123456789ABCDEF".to_owned(),
        ),
        ("lower case", minted.to_ascii_lowercase()),
        ("truncated", minted[..31].to_owned()),
        ("another client's", foreign),
    ] {
        let answer = app
            .token(&format!("grant_type=password&dr_session_token={presented}"))
            .await;
        assert_eq!(answer.status, 400, "{case}: {}", answer.text);
        assert_eq!(answer.error_code(), Some("invalid_grant"), "{case}");
    }
}

#[tokio::test]
async fn a_session_token_cannot_be_combined_with_a_limited_token_refresh_or_client_token() {
    let app = spawn_app().await;
    let token = session_token(&app).await;
    let (limited, refresh) = app.anonymous_tokens().await;
    app.shopper("combo").await;
    for form in [
        format!(
            "grant_type=client_credentials&dr_external_reference_id=combo&dr_session_token={token}&dr_limited_token={limited}"
        ),
        format!("grant_type=refresh_token&refresh_token={refresh}&dr_session_token={token}"),
        format!("grant_type=client_credentials&dr_session_token={token}"),
    ] {
        let answer = app.token(&form).await;
        assert_eq!(answer.status, 400, "{form}: {}", answer.text);
        assert_eq!(answer.error_code(), Some("invalid_request"), "{form}");
    }
}

#[tokio::test]
async fn parallel_first_uses_of_a_session_token_end_in_one_session() {
    let app = spawn_app().await;
    let token = session_token(&app).await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = app
            .http
            .post(app.url("/oauth20/token"))
            .header(AUTHORIZATION, app.client.basic())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=password&dr_session_token={token}"));
        requests.spawn(async move {
            answer(request.send().await.unwrap_or_else(|e| panic!("{e}"))).await
        });
    }
    let mut sessions = Vec::new();
    while let Some(done) = requests.join_next().await {
        let issued = done.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(issued.status, 200, "{}", issued.text);
        let session = app.get_session(&issued.str("access_token")).await;
        if session.status == 200 {
            sessions.push(session.str("sessionId"));
        }
    }
    sessions.sort();
    sessions.dedup();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
}

/// A client allowed anonymous tokens and shopper login, and a shopper with a password.
async fn login_setup(app: &TestApp) -> Credentials {
    let client = app
        .client_with(&[
            tessera_core::client::Grant::Anonymous,
            tessera_core::client::Grant::Password,
        ])
        .await;
    app.admin
        .create_shopper(tessera_core::admin::NewShopper {
            external_reference_id: Some("bearer-login".to_owned()),
            username: Some("bea@example.com".to_owned()),
            password: Some(tessera_core::Secret::new("correct horse")),
            ..tessera_core::admin::NewShopper::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
}

async fn bearer_login(app: &TestApp, bearer: &str, form: &str) -> Answer {
    app.request(
        app.http
            .post(app.url("/oauth20/token"))
            .header(AUTHORIZATION, format!("Bearer {bearer}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned()),
    )
    .await
}

const LOGIN: &str = "grant_type=password&username=bea%40example.com&password=correct+horse";

#[tokio::test]
async fn a_login_with_the_limited_token_as_bearer_upgrades_its_session() {
    let app = spawn_app().await;
    let client = login_setup(&app).await;
    let limited = app
        .token_with(Some(&client.basic()), "grant_type=password")
        .await
        .str("access_token");
    app.clock.advance_seconds(5);
    let answer = bearer_login(&app, &limited, LOGIN).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let session = app.get_session(&answer.str("access_token")).await;
    assert_eq!(session.body["authenticated"], "true");
    assert_eq!(session.body["externalReferenceId"], "bearer-login");
    assert_eq!(
        app.get_session(&limited).await.status,
        401,
        "the limited token is spent"
    );
    // Naming the same token again as dr_limited_token is fine; a different one is not.
    let (other, _) = {
        let answer = app
            .token_with(Some(&client.basic()), "grant_type=password")
            .await;
        (answer.str("access_token"), ())
    };
    let same = bearer_login(&app, &other, &format!("{LOGIN}&dr_limited_token={other}")).await;
    assert_eq!(same.status, 200, "{}", same.text);
    let (third, _) = {
        let answer = app
            .token_with(Some(&client.basic()), "grant_type=password")
            .await;
        (answer.str("access_token"), ())
    };
    let differs = bearer_login(&app, &third, &format!("{LOGIN}&dr_limited_token={other}")).await;
    assert_eq!(
        differs.error_code(),
        Some("invalid_request"),
        "{}",
        differs.text
    );
}

#[tokio::test]
async fn a_bearer_at_the_token_endpoint_qualifies_only_as_a_live_limited_token_for_login() {
    let app = spawn_app().await;
    let client = login_setup(&app).await;
    app.shopper("partner-bearer").await;
    let limited = app
        .token_with(Some(&client.basic()), "grant_type=password")
        .await
        .str("access_token");
    let full = app
        .token("grant_type=client_credentials&dr_external_reference_id=partner-bearer")
        .await
        .str("access_token");
    let (revoked, _) = app.anonymous_tokens().await;
    assert_eq!(app.delete_session(&revoked).await.status, 200);
    let cases = [
        (
            "a partner-shopper grant",
            limited.clone(),
            "grant_type=client_credentials&dr_external_reference_id=partner-bearer".to_owned(),
        ),
        (
            "an anonymous grant",
            limited.clone(),
            "grant_type=password".to_owned(),
        ),
        ("a full token", full, LOGIN.to_owned()),
        ("a revoked limited token", revoked, LOGIN.to_owned()),
        ("garbage", "tsa_nothing".to_owned(), LOGIN.to_owned()),
    ];
    for (case, bearer, form) in cases {
        let answer = bearer_login(&app, &bearer, &form).await;
        assert_eq!(answer.status, 401, "{case}: {}", answer.text);
        assert_eq!(answer.error_code(), Some("invalid_client"), "{case}");
    }
    assert_eq!(
        app.get_session(&limited).await.status,
        200,
        "nothing was spent"
    );
    let with_body_credentials = bearer_login(
        &app,
        &limited,
        &format!(
            "{LOGIN}&client_id={}&client_secret={}",
            client.id, client.secret
        ),
    )
    .await;
    assert_eq!(with_body_credentials.error_code(), Some("invalid_request"));
    // A limited token of a client that may not log shoppers in.
    let (not_allowed, _) = app.anonymous_tokens().await;
    let answer = bearer_login(&app, &not_allowed, LOGIN).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("unauthorized_client"));
}
