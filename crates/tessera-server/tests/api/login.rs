//! Shopper login, `grant_type=password` with `username` and `password` (API.md §2;
//! RELIABILITY.md P12, P13 and the "Passwords" bad inputs): the session it opens, the one
//! username rule, per-client password encodings, identical failures, and the failed-login
//! limits per username and per client and address, driven with the manual clock.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use tessera_core::ServiceConfig;
use tessera_core::admin::{NewClient, NewShopper};
use tessera_core::client::{Grant, GrantSet, PasswordEncoding};
use tessera_core::secret::Secret;

use crate::helpers::*;

const PASSWORD: &str = "correct horse battery staple";

/// A form body with every name and value percent-encoded.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                utf8_percent_encode(name, NON_ALPHANUMERIC),
                utf8_percent_encode(value, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn login_form(username: &str, password: &str) -> String {
    form(&[
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ])
}

/// A confidential client allowed shopper login (and refresh), sending passwords as
/// `encoding` says.
async fn login_client(app: &TestApp, encoding: PasswordEncoding) -> Credentials {
    let new = NewClient {
        grants: GrantSet::from_grants([Grant::Password, Grant::RefreshToken]),
        password_encoding: encoding,
        ..NewClient::named("login storefront")
    };
    let (record, secret) = app
        .admin
        .create_client(new)
        .await
        .unwrap_or_else(|e| panic!("client: {e}"));
    Credentials {
        id: record.id,
        secret: secret.map(|s| s.expose().to_owned()).unwrap_or_default(),
    }
}

/// A shopper with a username and, if given, a password; returns its user id.
async fn shopper(app: &TestApp, username: &str, password: Option<&str>) -> String {
    app.admin
        .create_shopper(NewShopper {
            username: Some(username.to_owned()),
            password: password.map(Secret::new),
            ..NewShopper::default()
        })
        .await
        .unwrap_or_else(|e| panic!("shopper: {e}"))
        .id
}

async fn login(app: &TestApp, client: &Credentials, username: &str, password: &str) -> Answer {
    app.token_with(Some(&client.basic()), &login_form(username, password))
        .await
}

/// The answer of a failed login: 400 `invalid_grant`, with the usual token headers.
fn assert_login_failed(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 400, "{case}: {}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_grant"), "{case}");
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{case}");
    assert_eq!(answer.header("pragma"), Some("no-cache"), "{case}");
}

/// The answer past a failed-login limit; returns its `Retry-After` in seconds.
fn assert_limited(answer: &Answer, case: &str) -> u64 {
    assert_eq!(answer.status, 429, "{case}: {}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_grant"), "{case}");
    assert_eq!(
        answer.str("error_description"),
        "too many failed attempts; retry later",
        "{case}"
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{case}");
    let retry_after = answer
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{case}: no numeric Retry-After in {:?}", answer.headers));
    assert!((1..=3600).contains(&retry_after), "{case}: {retry_after}");
    retry_after
}

fn is_lower_hex(value: &str, len: usize) -> bool {
    value.len() == len
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn a_shopper_logs_in_with_username_and_password_and_gets_a_full_session() {
    let app = spawn_app().await;
    let client = login_client(&app, PasswordEncoding::Plain).await;
    let shopper = app
        .admin
        .create_shopper(NewShopper {
            external_reference_id: Some("ext-ann".to_owned()),
            username: Some("ann@example.com".to_owned()),
            password: Some(Secret::new(PASSWORD)),
            locale: Some("fr_FR".to_owned()),
            currency: Some("EUR".to_owned()),
            ..NewShopper::default()
        })
        .await
        .unwrap_or_else(|e| panic!("shopper: {e}"));

    let answer = login(&app, &client, "ann@example.com", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    assert_eq!(answer.body["token_type"], "bearer");
    assert_eq!(answer.body["expires_in"].as_i64(), Some(3600));
    let access = answer.str("access_token");
    assert!(access.starts_with("tsa_"), "{}", answer.text);
    assert!(answer.str("refresh_token").starts_with("tsr_"));

    let session = app.get_session(&access).await;
    assert_eq!(session.status, 200, "{}", session.text);
    let body = &session.body;
    assert!(is_lower_hex(&session.str("sessionId"), 32), "{body}");
    assert_eq!(body["userId"], shopper.id.as_str());
    assert_eq!(body["externalReferenceId"], "ext-ann");
    assert_eq!(body["authenticated"], "true");
    assert_eq!(body["locale"], "fr_FR");
    assert_eq!(body["currency"], "EUR");
    assert!(body["cartId"].is_null(), "{body}");
    assert_eq!(body["clientIpAddress"], "127.0.0.1");
    assert_eq!(body["domain"], NODE_NAME);
    assert_eq!(body["expiresIn"].as_i64(), Some(3600));
    assert!(body["themeId"].is_null(), "{body}");
    assert!(is_lower_hex(&session.str("sessionTag"), 32), "{body}");
    assert_eq!(body["createdOn"], START.to_iso8601().as_str());
    assert_eq!(body["lastAccessed"], START.to_iso8601().as_str());
    assert_eq!(body["accessToken"], access.as_str());

    // A shopper with no locale or currency of their own gets the client's.
    let plain_id = shopper_with_defaults(&app).await;
    let answer = login(&app, &client, "plain@example.com", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let session = app.get_session(&answer.str("access_token")).await;
    assert_eq!(session.body["userId"], plain_id.as_str());
    assert!(session.body["externalReferenceId"].is_null());
    assert_eq!(session.body["locale"], "en_US");
    assert_eq!(session.body["currency"], "USD");
    assert_eq!(session.body["authenticated"], "true");
}

async fn shopper_with_defaults(app: &TestApp) -> String {
    shopper(app, "plain@example.com", Some(PASSWORD)).await
}

#[tokio::test]
async fn a_wrong_password_an_unknown_user_and_a_user_without_password_get_one_answer() {
    let app = spawn_app().await;
    let client = login_client(&app, PasswordEncoding::Plain).await;
    shopper(&app, "ann@example.com", Some(PASSWORD)).await;
    shopper(&app, "nopassword@example.com", None).await;

    let wrong = login(
        &app,
        &client,
        "ann@example.com",
        "Correct horse battery staple",
    )
    .await;
    let unknown = login(&app, &client, "nobody@example.com", PASSWORD).await;
    let without = login(&app, &client, "nopassword@example.com", PASSWORD).await;
    let empty_name = login(&app, &client, "   ", PASSWORD).await;
    for (case, answer) in [
        ("wrong password", &wrong),
        ("unknown user", &unknown),
        ("user without password", &without),
        ("blank username", &empty_name),
    ] {
        assert_login_failed(answer, case);
        assert_eq!(answer.text, wrong.text, "{case}");
        let mut names: Vec<&str> = answer
            .headers
            .keys()
            .map(|n| n.as_str())
            .filter(|n| *n != "date")
            .collect();
        names.sort_unstable();
        let mut expected: Vec<&str> = wrong
            .headers
            .keys()
            .map(|n| n.as_str())
            .filter(|n| *n != "date")
            .collect();
        expected.sort_unstable();
        assert_eq!(names, expected, "{case}");
    }
    assert_eq!(
        wrong.body,
        serde_json::json!({
            "error": "invalid_grant",
            "error_description": "the username or password is wrong"
        })
    );
    // Nothing of the request is echoed.
    assert!(!unknown.text.contains("nobody"));
    assert!(!wrong.text.contains("horse"));
}

#[tokio::test]
async fn usernames_are_trimmed_lower_cased_and_nfc_normalised() {
    let app = spawn_app().await;
    let client = login_client(&app, PasswordEncoding::Plain).await;
    // Created with a precomposed é and Ü, mixed case and surrounding spaces.
    let id = shopper(&app, "  Jos\u{e9}.\u{dc}nal@Example.com ", Some(PASSWORD)).await;
    let stored = app
        .store
        .shopper(&id)
        .await
        .unwrap_or_else(|e| panic!("read back: {e}"))
        .and_then(|s| s.username);
    assert_eq!(stored.as_deref(), Some("jos\u{e9}.\u{fc}nal@example.com"));

    for presented in [
        "jos\u{e9}.\u{fc}nal@example.com",
        "JOS\u{c9}.\u{dc}NAL@EXAMPLE.COM",
        // Decomposed: e + combining acute accent, U + combining diaeresis (macOS input).
        "Jose\u{301}.U\u{308}nal@example.com",
        // Unicode white space around it (a tab would be refused as a control character).
        "\u{2003} jose\u{301}.u\u{308}nal@example.com \u{a0}",
    ] {
        let answer = login(&app, &client, presented, PASSWORD).await;
        assert_eq!(answer.status, 200, "{presented:?}: {}", answer.text);
        let session = app.get_session(&answer.str("access_token")).await;
        assert_eq!(session.body["userId"], id.as_str(), "{presented:?}");
    }
}

#[tokio::test]
async fn a_unicode_look_alike_username_is_another_user() {
    let app = spawn_app().await;
    let client = login_client(&app, PasswordEncoding::Plain).await;
    shopper(&app, "anna@example.com", Some(PASSWORD)).await;
    let wrong = login(&app, &client, "anna@example.com", "not it").await;

    // Cyrillic а (U+0430) for the first Latin a; and a full-width Ａ, which NFKC (but not
    // NFC) would fold into A.
    for look_alike in ["\u{430}nna@example.com", "\u{ff21}nna@example.com"] {
        let answer = login(&app, &client, look_alike, PASSWORD).await;
        assert_login_failed(&answer, look_alike);
        assert_eq!(answer.text, wrong.text);
    }
    // The same look-alike name can be registered as a shopper of its own.
    let other = shopper(&app, "\u{430}nna@example.com", Some("other password")).await;
    let answer = login(&app, &client, "\u{430}nna@example.com", "other password").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let session = app.get_session(&answer.str("access_token")).await;
    assert_eq!(session.body["userId"], other.as_str());
}

#[tokio::test]
async fn passwords_with_form_special_characters_work_when_form_encoded() {
    let app = spawn_app().await;
    let client = login_client(&app, PasswordEncoding::Plain).await;
    let password = "p&ss=w+rd %41 \u{e9}";
    shopper(&app, "ann@example.com", Some(password)).await;

    let answer = login(&app, &client, "ann@example.com", password).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // Sent without encoding, `+` is a space and `&` starts another parameter: not the
    // password, so a clean failure.
    let raw = app
        .token_with(
            Some(&client.basic()),
            "grant_type=password&username=ann%40example.com&password=p+ss",
        )
        .await;
    assert_login_failed(&raw, "unencoded +");
}

#[tokio::test]
async fn a_one_mebibyte_password_is_refused_by_the_body_limit_and_a_long_one_just_fails() {
    let app = spawn_app().await;
    let client = login_client(&app, PasswordEncoding::Plain).await;
    shopper(&app, "ann@example.com", Some(PASSWORD)).await;

    let huge = "x".repeat(1024 * 1024);
    let answer = login(&app, &client, "ann@example.com", &huge).await;
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_request"));

    let long = "y".repeat(10 * 1024);
    let answer = login(&app, &client, "ann@example.com", &long).await;
    assert_login_failed(&answer, "10 KiB password");

    // The shopper can still log in.
    let answer = login(&app, &client, "ann@example.com", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn a_base64_client_takes_base64_passwords_and_a_plain_client_plain_ones() {
    let app = spawn_app().await;
    let base64_client = login_client(&app, PasswordEncoding::Base64).await;
    let plain_client = login_client(&app, PasswordEncoding::Plain).await;
    let password = "p\u{e4}ss:w+rd/=";
    shopper(&app, "ann@example.com", Some(password)).await;
    let encoded = STANDARD.encode(password);
    let wrong = login(&app, &plain_client, "ann@example.com", "wrong").await;

    let answer = login(&app, &base64_client, "ann@example.com", &encoded).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    // Padding is optional.
    let unpadded = encoded.trim_end_matches('=');
    let answer = login(&app, &base64_client, "ann@example.com", unpadded).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    for (case, client, sent) in [
        (
            "plain password to a base64 client",
            &base64_client,
            password,
        ),
        ("not base64 at all", &base64_client, "%%% not base64 %%%"),
        ("base64 of bytes that are not UTF-8", &base64_client, "/w=="),
        ("base64 password to a plain client", &plain_client, &encoded),
    ] {
        let answer = login(&app, client, "ann@example.com", sent).await;
        assert_login_failed(&answer, case);
        assert_eq!(answer.text, wrong.text, "{case}");
    }

    let answer = login(&app, &plain_client, "ann@example.com", password).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn a_client_not_allowed_the_password_grant_is_unauthorized() {
    let app = spawn_app().await;
    shopper(&app, "ann@example.com", Some(PASSWORD)).await;
    // The default client has every grant except shopper login.
    let answer = app.token(&login_form("ann@example.com", PASSWORD)).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("unauthorized_client"));
    // Anonymous tokens, through the same grant type, still work for it.
    let anonymous = app.token("grant_type=password").await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.text);

    let other = app
        .client_with(&[Grant::Anonymous, Grant::RefreshToken])
        .await;
    let answer = login(&app, &other, "ann@example.com", PASSWORD).await;
    assert_eq!(answer.error_code(), Some("unauthorized_client"));
}

#[tokio::test]
async fn a_password_in_the_query_string_is_refused() {
    let app = spawn_app().await;
    let client = login_client(&app, PasswordEncoding::Plain).await;
    shopper(&app, "ann@example.com", Some(PASSWORD)).await;
    let answer = app
        .request(
            app.http
                .post(app.url("/oauth20/token?password=correct"))
                .header(AUTHORIZATION, client.basic())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("grant_type=password&username=ann%40example.com"),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_request"));
    assert!(!answer.text.contains("correct"));

    let no_password = app
        .token_with(
            Some(&client.basic()),
            "grant_type=password&username=ann%40example.com",
        )
        .await;
    assert_eq!(no_password.error_code(), Some("invalid_request"));
}

/// Settings with small failure limits.
fn limited(per_username: u32, per_client_address: u32) -> ServiceConfig {
    let mut config = service_config();
    config.login_failures_per_hour_per_username = per_username;
    config.login_failures_per_hour_per_client_address = per_client_address;
    config
}

/// Sends `count` logins at once, each on its own connection with its own
/// `X-Forwarded-For`, and returns the answers.
async fn concurrent_logins(
    app: &TestApp,
    client: &Credentials,
    count: usize,
    username_of: impl Fn(usize) -> String,
    password: &str,
) -> Vec<Answer> {
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"));
        let request = http
            .post(app.url("/oauth20/token"))
            .header(AUTHORIZATION, client.basic())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            // Documentation addresses (RFC 5737): never contacted, only claimed.
            .header("X-Forwarded-For", format!("203.0.113.{}", i % 250))
            .body(login_form(&username_of(i), password));
        tasks.push(tokio::spawn(async move {
            answer(
                request
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("request failed: {e}")),
            )
            .await
        }));
    }
    let mut answers = Vec::with_capacity(count);
    for task in tasks {
        answers.push(task.await.unwrap_or_else(|e| panic!("task: {e}")));
    }
    answers
}

#[tokio::test]
async fn the_username_limit_admits_exactly_its_failures_an_hour_whatever_the_connections() {
    let app = spawn_app_with_config(limited(5, 1000)).await;
    let client = login_client(&app, PasswordEncoding::Plain).await;
    shopper(&app, "victim@example.com", Some(PASSWORD)).await;

    // The shopper's own session, from before the attack.
    let before = login(&app, &client, "victim@example.com", PASSWORD).await;
    assert_eq!(before.status, 200, "{}", before.text);
    let access = before.str("access_token");
    let refresh_token = before.str("refresh_token");

    // 40 wrong passwords at once, from 40 connections claiming 40 addresses, with the
    // username written several ways: one username after normalisation.
    let spellings = [
        "victim@example.com",
        "VICTIM@example.com",
        " victim@Example.COM ",
    ];
    let answers = concurrent_logins(
        &app,
        &client,
        40,
        |i| spellings[i % spellings.len()].to_owned(),
        "guess",
    )
    .await;
    let failed = answers.iter().filter(|a| a.status == 400).count();
    let limited_count = answers.iter().filter(|a| a.status == 429).count();
    assert_eq!((failed, limited_count), (5, 35));
    for answer in &answers {
        if answer.status == 400 {
            assert_login_failed(answer, "admitted guess");
        } else {
            assert_limited(answer, "refused guess");
        }
    }

    // Now even the right password waits: the limit is checked before the password, and
    // the first failure is an hour from expiring.
    let blocked = login(&app, &client, "victim@example.com", PASSWORD).await;
    assert_eq!(
        assert_limited(&blocked, "right password while limited"),
        3600
    );

    // The shopper's existing session is untouched: it looks up, and it refreshes.
    let session = app.get_session(&access).await;
    assert_eq!(session.status, 200, "{}", session.text);
    assert_eq!(session.body["authenticated"], "true");
    let refreshed = app
        .token_with(
            Some(&client.basic()),
            &form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ]),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let refreshed_session = app.get_session(&refreshed.str("access_token")).await;
    assert_eq!(refreshed_session.status, 200, "{}", refreshed_session.text);

    // Other shoppers of the same client, from the same address, log in as usual; and the
    // client's other grants are not limited.
    shopper(&app, "bystander@example.com", Some(PASSWORD)).await;
    let bystander = login(&app, &client, "bystander@example.com", PASSWORD).await;
    assert_eq!(bystander.status, 200, "{}", bystander.text);
    let anonymous = app.token("grant_type=password").await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.text);

    // Half an hour on, still limited, and Retry-After counts down.
    app.clock.advance_seconds(1800);
    let blocked = login(&app, &client, "victim@example.com", PASSWORD).await;
    assert_eq!(assert_limited(&blocked, "after half an hour"), 1800);

    // An hour after the failures, the right password works again.
    app.clock.advance_seconds(1800);
    let after = login(&app, &client, "victim@example.com", PASSWORD).await;
    assert_eq!(after.status, 200, "{}", after.text);
}

#[tokio::test]
async fn successful_logins_do_not_count_against_the_limit() {
    let app = spawn_app_with_config(limited(2, 2)).await;
    let client = login_client(&app, PasswordEncoding::Plain).await;
    shopper(&app, "ann@example.com", Some(PASSWORD)).await;
    for _ in 0..4 {
        let answer = login(&app, &client, "ann@example.com", PASSWORD).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    for _ in 0..2 {
        let answer = login(&app, &client, "ann@example.com", "wrong").await;
        assert_login_failed(&answer, "within the limit");
    }
    let answer = login(&app, &client, "ann@example.com", "wrong").await;
    assert_limited(&answer, "past the limit");
}

#[tokio::test]
async fn the_client_and_address_limit_trips_over_many_usernames_but_spares_other_clients() {
    let app = spawn_app_with_config(limited(100, 4)).await;
    let stuffer = login_client(&app, PasswordEncoding::Plain).await;
    let neighbour = login_client(&app, PasswordEncoding::Plain).await;
    shopper(&app, "ann@example.com", Some(PASSWORD)).await;

    // Credential stuffing: one guess each for 12 usernames, from one client and address.
    let answers = concurrent_logins(
        &app,
        &stuffer,
        12,
        |i| format!("user-{i}@example.com"),
        PASSWORD,
    )
    .await;
    let failed = answers.iter().filter(|a| a.status == 400).count();
    let limited_count = answers.iter().filter(|a| a.status == 429).count();
    assert_eq!((failed, limited_count), (4, 8));
    for answer in answers.iter().filter(|a| a.status == 429) {
        assert_limited(answer, "stuffing");
    }

    // That client, from this address, is limited for every username, real ones too.
    let blocked = login(&app, &stuffer, "ann@example.com", PASSWORD).await;
    assert_eq!(
        assert_limited(&blocked, "a real shopper via the limited client"),
        3600
    );
    // Another client from the same address keeps getting tokens, and so does the default
    // client.
    let answer = login(&app, &neighbour, "ann@example.com", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let anonymous = app.token("grant_type=password").await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.text);

    app.clock.advance_seconds(3600);
    let answer = login(&app, &stuffer, "ann@example.com", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}
