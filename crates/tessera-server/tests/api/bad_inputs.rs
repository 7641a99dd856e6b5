//! The bad inputs of RELIABILITY.md that no other file sends as such: each gets the exact
//! 4xx and error code API.md documents, over real HTTP against the real router, and the
//! answer never echoes the bad value.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::AUTHORIZATION;
use tessera_core::admin::{NewClient, NewShopper};
use tessera_core::client::{Grant, GrantSet};
use tessera_core::secret::Secret;

use crate::helpers::*;
use crate::token_endpoint::urlencode;

/// Bound on a raw exchange; generous because CI shares two cores with compilers.
const CEILING: Duration = Duration::from_secs(30);

const SQL: &str = "' OR '1'='1' --";

fn assert_not_echoed(answer: &Answer, value: &str, case: &str) {
    assert!(
        !answer.text.contains(value),
        "{case}: the answer echoes the bad value: {}",
        answer.text
    );
    for (name, header) in &answer.headers {
        let header = String::from_utf8_lossy(header.as_bytes());
        assert!(!header.contains(value), "{case}: header {name} echoes it");
    }
}

fn assert_oauth_error(answer: &Answer, status: u16, error: &str, case: &str) {
    assert_eq!(answer.status, status, "{case}: {}", answer.text);
    assert_eq!(answer.error_code(), Some(error), "{case}: {}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{case}");
}

/// A confidential client allowed every grant.
async fn every_grant_client(app: &TestApp) -> Credentials {
    let new = NewClient {
        grants: GrantSet::from_grants(Grant::ALL.iter().copied()),
        ..NewClient::named("every grant")
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

#[tokio::test]
async fn form_encoded_special_characters_in_basic_id_and_secret_are_decoded_or_refused() {
    let app = spawn_app().await;
    let id = app.client.id.clone();
    let secret = app.client.secret.clone();
    // Every byte percent-encoded: form-decoding gives back the real credentials.
    let every_byte =
        |value: &str| -> String { value.bytes().map(|b| format!("%{b:02X}")).collect() };
    let header = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", every_byte(&id), every_byte(&secret)))
    );
    let answer = app.token_with(Some(&header), "grant_type=password").await;
    assert_eq!(answer.status, 200, "every byte encoded: {}", answer.text);

    // Special characters, raw or encoded, that decode to something else than the secret.
    let cases: Vec<(&str, String, String)> = vec![
        (
            "`+` for a space in the secret",
            id.clone(),
            format!("{secret}+x"),
        ),
        (
            "`&` and `=` in the secret",
            id.clone(),
            format!("{secret}&a=b"),
        ),
        (
            "encoded `&` and `=`",
            id.clone(),
            format!("{secret}%26a%3Db"),
        ),
        (
            "malformed percent-encoding",
            id.clone(),
            format!("{secret}%zz"),
        ),
        ("an encoded NUL", id.clone(), format!("{secret}%00")),
        (
            "an encoded colon in the id",
            format!("{id}%3A"),
            secret.clone(),
        ),
        (
            "special characters in the id",
            format!("{id}&+=%25"),
            secret.clone(),
        ),
        (
            "overlong UTF-8 in the id",
            format!("{id}%C0%AF"),
            secret.clone(),
        ),
    ];
    for (case, id_part, secret_part) in cases {
        let header = format!(
            "Basic {}",
            STANDARD.encode(format!("{id_part}:{secret_part}"))
        );
        let answer = app.token_with(Some(&header), "grant_type=password").await;
        assert_oauth_error(&answer, 401, "invalid_client", case);
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Basic realm=\"tessera\""),
            "{case}"
        );
        assert_not_echoed(&answer, &secret_part, case);
        assert_not_echoed(&answer, &secret, case);
    }
    // The real client still works: none of the above locked it out.
    assert_eq!(app.token("grant_type=password").await.status, 200);
}

#[tokio::test]
async fn sql_looking_and_nul_carrying_values_in_every_token_field_are_refused_and_not_echoed() {
    let app = spawn_app().await;
    let client = every_grant_client(&app).await;
    app.shopper("ext-sql").await;
    let basic = Some(client.basic());
    let sql = urlencode(SQL);
    // (field, form with the SQL-looking value, Basic?, status, error)
    let sql_cases: Vec<(&str, String, bool, u16, &str)> = vec![
        (
            "grant_type",
            format!("grant_type={sql}"),
            true,
            400,
            "unsupported_grant_type",
        ),
        (
            "username",
            format!("grant_type=password&username={sql}&password=x"),
            true,
            400,
            "invalid_grant",
        ),
        (
            "password",
            format!("grant_type=password&username=ann&password={sql}"),
            true,
            400,
            "invalid_grant",
        ),
        (
            "refresh_token",
            format!("grant_type=refresh_token&refresh_token={sql}"),
            true,
            400,
            "invalid_grant",
        ),
        (
            "dr_external_reference_id",
            format!("grant_type=client_credentials&dr_external_reference_id={sql}"),
            true,
            400,
            "invalid_grant",
        ),
        (
            "dr_session_token",
            format!("grant_type=password&dr_session_token={sql}"),
            true,
            400,
            "invalid_grant",
        ),
        (
            "dr_limited_token",
            format!(
                "grant_type=client_credentials&dr_external_reference_id=ext-sql&dr_limited_token={sql}"
            ),
            true,
            400,
            "dr_limited_token_invalid",
        ),
        (
            "scope",
            format!("grant_type=client_credentials&scope={sql}"),
            true,
            400,
            "invalid_scope",
        ),
        (
            "client_id",
            format!("grant_type=password&client_id={sql}"),
            false,
            401,
            "invalid_client",
        ),
        (
            "client_secret",
            format!(
                "grant_type=password&client_id={}&client_secret={sql}",
                client.id
            ),
            false,
            401,
            "invalid_client",
        ),
    ];
    for (field, form, with_basic, status, error) in &sql_cases {
        let authorization = if *with_basic { basic.as_deref() } else { None };
        let answer = app.token_with(authorization, form).await;
        let case = format!("SQL in {field}");
        assert_oauth_error(&answer, *status, error, &case);
        assert_not_echoed(&answer, SQL, &case);
        assert_not_echoed(&answer, "1'='1", &case);
    }

    // A NUL in any field is refused by the form parser, before anything else.
    let nul_forms = [
        ("grant_type", "grant_type=pass%00word".to_owned()),
        ("username", "grant_type=password&username=a%00nn&password=x".to_owned()),
        ("password", "grant_type=password&username=ann&password=x%00y".to_owned()),
        ("refresh_token", "grant_type=refresh_token&refresh_token=tsr_%00".to_owned()),
        (
            "dr_external_reference_id",
            "grant_type=client_credentials&dr_external_reference_id=a%00b".to_owned(),
        ),
        ("dr_session_token", "grant_type=password&dr_session_token=a%00b".to_owned()),
        (
            "dr_limited_token",
            "grant_type=client_credentials&dr_external_reference_id=ext-sql&dr_limited_token=tsa_%00"
                .to_owned(),
        ),
        ("scope", "grant_type=client_credentials&scope=a%00b".to_owned()),
        ("client_id", format!("grant_type=password&client_id={}%00", client.id)),
        ("a parameter name", "grant_type=password&user%00name=ann".to_owned()),
    ];
    for (field, form) in &nul_forms {
        let answer = app.token_with(basic.as_deref(), form).await;
        let case = format!("NUL in {field}");
        assert_oauth_error(&answer, 400, "invalid_request", &case);
        assert_not_echoed(&answer, "\0", &case);
        assert_not_echoed(&answer, "\\u0000", &case);
    }

    // Nothing above touched the store's contents: the client still gets tokens.
    let answer = app
        .token_with(basic.as_deref(), "grant_type=password")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn a_thousand_wrong_passwords_for_one_user_admit_the_username_limit_and_no_more() {
    const PASSWORD: &str = "correct horse battery staple";
    const LIMIT: u32 = 10;
    let mut config = service_config();
    config.login_failures_per_hour_per_username = LIMIT;
    let app = spawn_app_with_config(config).await;
    let client = every_grant_client(&app).await;
    app.admin
        .create_shopper(NewShopper {
            username: Some("target@example.com".to_owned()),
            password: Some(Secret::new(PASSWORD.to_owned())),
            ..NewShopper::default()
        })
        .await
        .unwrap_or_else(|e| panic!("shopper: {e}"));
    let login = |password: String| {
        let app = &app;
        let basic = client.basic();
        async move {
            let form = format!(
                "grant_type=password&username=target%40example.com&password={}",
                utf8_percent_encode(&password, NON_ALPHANUMERIC)
            );
            app.token_with(Some(&basic), &form).await
        }
    };
    let before = login(PASSWORD.to_owned()).await;
    assert_eq!(before.status, 200, "{}", before.text);

    let (mut failed, mut limited) = (0, 0);
    for attempt in 0..1000 {
        let guess = format!("guess-{attempt}");
        let answer = login(guess.clone()).await;
        match answer.status {
            400 => {
                assert_oauth_error(&answer, 400, "invalid_grant", "admitted guess");
                failed += 1;
            }
            429 => {
                assert_oauth_error(&answer, 429, "invalid_grant", "refused guess");
                assert!(answer.header("retry-after").is_some(), "no Retry-After");
                limited += 1;
            }
            other => panic!("guess {attempt}: {other} {}", answer.text),
        }
        assert_not_echoed(&answer, &guess, "guess");
        assert_not_echoed(&answer, "target@example.com", "guess");
    }
    assert_eq!((failed, limited), (LIMIT, 1000 - LIMIT));

    // Past the limit even the right password waits; the earlier session is untouched.
    assert_eq!(login(PASSWORD.to_owned()).await.status, 429);
    assert_eq!(
        app.get_session(&before.str("access_token")).await.status,
        200
    );
}

#[tokio::test]
async fn oversized_credentials_and_tokens_get_431() {
    let app = spawn_app().await;
    let big_basic = format!("Basic {}", "A".repeat(64 * 1024));
    let reply = app
        .raw(
            format!(
                "POST /oauth20/token HTTP/1.1\r\nHost: t\r\nAuthorization: {big_basic}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 19\r\n\r\n\
                 grant_type=password"
            )
            .as_bytes(),
            CEILING,
        )
        .await;
    assert!(
        reply.starts_with("HTTP/1.1 431 "),
        "64 KiB Basic: {}",
        head(&reply)
    );
    assert!(!reply.contains("AAAAAAAA"), "64 KiB Basic echoed");

    let huge = "a".repeat(1 << 20);
    let answer = app
        .request(
            app.http
                .get(app.url("/oauth20/access-tokens"))
                .header(AUTHORIZATION, format!("Bearer {huge}")),
        )
        .await;
    assert_eq!(answer.status, 431, "1 MiB bearer header");
    assert!(!answer.text.contains("aaaaaaaa"), "1 MiB token echoed");

    let reply = app
        .raw(
            format!("GET /oauth20/access-tokens?token={huge} HTTP/1.1\r\nHost: t\r\n\r\n")
                .as_bytes(),
            CEILING,
        )
        .await;
    assert!(
        reply.starts_with("HTTP/1.1 431 "),
        "1 MiB query token: {}",
        head(&reply)
    );
    assert!(!reply.contains("aaaaaaaa"), "1 MiB query token echoed");
}

fn head(reply: &str) -> &str {
    reply.get(..reply.len().min(120)).unwrap_or(reply)
}

#[tokio::test]
async fn malformed_http_framing_gets_an_exact_4xx_and_never_reaches_a_handler() {
    let app = spawn_app().await;
    let form_head = "POST /oauth20/token HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
                     Content-Type: application/x-www-form-urlencoded\r\n";
    let secret_marker = "tcs_framing_marker";
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "two different Content-Lengths",
            format!("{form_head}Content-Length: 13\r\nContent-Length: 4\r\n\r\ngrant_type=no"),
            400,
        ),
        (
            "obsolete line folding",
            format!(
                "{form_head}X-Folded: {secret_marker}\r\n b\r\nContent-Length: 13\r\n\r\ngrant_type=no"
            ),
            400,
        ),
        (
            "bare CR in a header value",
            format!(
                "{form_head}X-Bad: {secret_marker}\rb\r\nContent-Length: 13\r\n\r\ngrant_type=no"
            ),
            400,
        ),
        (
            "NUL in a header value",
            format!(
                "{form_head}X-Bad: {secret_marker}\0b\r\nContent-Length: 13\r\n\r\ngrant_type=no"
            ),
            400,
        ),
        (
            "a 64 KiB request line",
            format!(
                "GET /healthz?pad={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                "a".repeat(64 * 1024)
            ),
            431,
        ),
    ];
    for (case, request, status) in cases {
        let reply = app.raw(request.as_bytes(), CEILING).await;
        assert!(
            reply.starts_with(&format!("HTTP/1.1 {status} ")),
            "{case}: {}",
            head(&reply)
        );
        // The HTTP layer answers with an empty body: no handler's JSON error.
        assert!(
            reply.to_ascii_lowercase().contains("content-length: 0\r\n"),
            "{case}: {}",
            head(&reply)
        );
        assert!(!reply.contains(secret_marker), "{case}: echoed");
        assert!(!reply.contains("aaaaaaaa"), "{case}: echoed");
    }
}

#[tokio::test]
async fn content_length_beside_chunked_is_refused_with_400_and_the_connection_closed() {
    let app = spawn_app().await;
    // RFC 9112 §6.3: such a request may be a request-smuggling attempt; it is refused
    // whatever its body, and the connection closes after the answer, so nothing behind
    // the body is read as a second request. No `Connection: close` from the client.
    let grant = |framing: &str| {
        format!(
            "POST /oauth20/token HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\
             13\r\ngrant_type=password\r\n0\r\n\r\n\
             GET /oauth20/smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
            app.client.basic(),
        )
    };
    let lookup = format!(
        "GET /oauth20/access-tokens HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Transfer-Encoding: chunked\r\ncontent-length: 0\r\n\r\n0\r\n\r\n\
         GET /oauth20/smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
        app.anonymous_tokens().await.0,
    );
    let cases = [
        (
            "Content-Length first",
            grant("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
            "\"error\":\"invalid_request\"",
        ),
        (
            "Transfer-Encoding first",
            grant("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"),
            "\"error\":\"invalid_request\"",
        ),
        ("on a bearer lookup", lookup, "\"code\":\"invalid_request\""),
    ];
    for (case, request, error) in cases {
        let reply = app.raw(request.as_bytes(), CEILING).await;
        assert!(
            reply.starts_with("HTTP/1.1 400 "),
            "{case}: {}",
            head(&reply)
        );
        assert!(reply.contains(error), "{case}: {reply}");
        assert!(
            !reply.contains("access_token"),
            "{case}: a token was issued: {reply}"
        );
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("\r\nconnection: close\r\n"),
            "{case}: {reply}"
        );
        assert_eq!(
            reply.matches("HTTP/1.1 ").count(),
            1,
            "{case}: a second answer: {reply}"
        );
        assert!(!reply.contains("smuggled"), "{case}: {reply}");
        assert!(
            !reply.contains(&app.client.secret),
            "{case}: the secret is echoed"
        );
    }
}

#[tokio::test]
async fn content_length_beside_chunked_is_refused_behind_earlier_requests_on_the_connection() {
    let app = spawn_app().await;
    let token = app.anonymous_tokens().await.0;
    // The requests before it, framed each way, are answered; the refusal falls on the
    // request that declared both, however far into the connection it comes. Their bodies
    // (a lookup ignores its body) carry text shaped like a conflicting head, which must be
    // read as body.
    let lookup = |framing: &str, body: &str| {
        format!(
            "GET /oauth20/access-tokens HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
             {framing}\r\n{body}"
        )
    };
    let decoy = "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunked_decoy = format!(
        "{:x};ext=1\r\n{decoy}\r\n0\r\nX-Trailer: 1\r\n\r\n",
        decoy.len()
    );
    let mut connection = lookup(&format!("Content-Length: {}\r\n", decoy.len()), decoy);
    connection.push_str(&lookup("Transfer-Encoding: chunked\r\n", &chunked_decoy));
    connection.push_str(&format!(
        "POST /oauth20/token HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
         13\r\ngrant_type=password\r\n0\r\n\r\n",
        app.client.basic()
    ));
    connection.push_str(&lookup("", ""));
    let reply = app.raw(connection.as_bytes(), CEILING).await;
    let statuses: Vec<&str> = reply
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|answer| &answer[..3])
        .collect();
    assert_eq!(statuses, ["200", "200", "400"], "{reply}");
    assert_eq!(reply.matches("\"sessionId\"").count(), 2, "{reply}");
    assert!(reply.contains("\"error\":\"invalid_request\""), "{reply}");
    assert!(!reply.contains("access_token"), "{reply}");
}
