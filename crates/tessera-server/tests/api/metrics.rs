//! `GET /metrics` (API.md "Metrics"): the Prometheus page of the process's one recorder,
//! scraped through the real router after real requests. Every test of this binary shares
//! the recorder, and other tests' routers and stores record into it at the same time, so
//! figures are compared as differences between two scrapes, and each is a lower bound.

use std::collections::{BTreeMap, HashMap};

use tessera_core::Secret;
use tessera_core::admin::NewShopper;
use tessera_core::client::Grant;
use tessera_server::{Metrics, ServerConfig};

use crate::helpers::{TestApp, TestResult, spawn_app, spawn_app_with_server_config};
use crate::lookup_cache::caches_lookups;

/// One sample line: `name{labels} value`.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One scrape, parsed.
struct Page {
    text: String,
    samples: Vec<Sample>,
    /// Metric name → its `# TYPE`.
    types: HashMap<String, String>,
}

impl Page {
    /// The value of the sample `name` whose labels are exactly `labels`; 0 when there is
    /// none yet (a series appears with its first recording).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|sample| sample.name == name && sample.labels == wanted)
            .map_or(0.0, |sample| sample.value)
    }

    fn kind(&self, name: &str) -> Option<&str> {
        self.types.get(name).map(String::as_str)
    }
}

/// Parses the text exposition format (version 0.0.4).
fn parse(text: &str) -> Result<Page, String> {
    let mut samples = Vec::new();
    let mut types = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        samples.push(parse_sample(line).ok_or(format!("bad sample: {line}"))?);
    }
    Ok(Page {
        text: text.to_owned(),
        samples,
        types,
    })
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after_key) = inner.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after_key.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.insert(key.to_owned(), value);
            inner = after_key[end + 1..].trim_start_matches(',');
        }
    }
    let value = rest.trim().split(' ').next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

async fn scrape(app: &TestApp) -> Result<Page, String> {
    let answer = app.request(app.http.get(app.url("/metrics"))).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    parse(&answer.text)
}

const REQUESTS: &str = "tessera_http_requests_total";
const DURATION: &str = "tessera_http_request_duration_seconds";
const ISSUED: &str = "tessera_tokens_issued_total";
const REVOKED: &str = "tessera_tokens_revoked_total";
const STORE: &str = "tessera_store_operation_duration_seconds";

#[tokio::test]
async fn the_page_counts_requests_tokens_revocations_and_store_operations() -> TestResult {
    let app = spawn_app_with_server_config(ServerConfig {
        metrics: Some(Metrics::install()?),
        ..ServerConfig::default()
    })
    .await;
    let before = scrape(&app).await?;

    // Issue (anonymous, refresh, client token), look up, log out, fail, revoke (RFC 7009).
    let (_, refresh) = app.anonymous_tokens().await;
    let rotated = app
        .token(&format!("grant_type=refresh_token&refresh_token={refresh}"))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let access = rotated.str("access_token");
    let client_token = app.token("grant_type=client_credentials").await;
    assert_eq!(client_token.status, 200, "{}", client_token.text);
    assert_eq!(app.get_session(&access).await.status, 200);
    let by_query = app
        .request(
            app.http
                .get(app.url(&format!("/oauth20/access-tokens?token={access}"))),
        )
        .await;
    assert_eq!(by_query.status, 200, "{}", by_query.text);
    assert_eq!(app.delete_session(&access).await.status, 200);
    assert_eq!(app.get_session(&access).await.status, 401);
    let (_, other_refresh) = app.anonymous_tokens().await;
    assert_eq!(app.revoke(&app.client, &other_refresh).await.status, 200);
    // A partner's shopper, and a shopper's login; a failed login too.
    app.shopper("ext-metrics").await;
    let partner = app
        .token("grant_type=client_credentials&dr_external_reference_id=ext-metrics")
        .await;
    assert_eq!(partner.status, 200, "{}", partner.text);
    app.admin
        .create_shopper(NewShopper {
            username: Some("metrics@example.com".to_owned()),
            password: Some(Secret::new("right")),
            ..NewShopper::default()
        })
        .await?;
    let storefront = app.client_with(&[Grant::Password]).await;
    let login = |password: &str| {
        format!("grant_type=password&username=metrics%40example.com&password={password}")
    };
    let logged_in = app
        .token_with(Some(&storefront.basic()), &login("right"))
        .await;
    assert_eq!(logged_in.status, 200, "{}", logged_in.text);
    let refused = app
        .token_with(Some(&storefront.basic()), &login("wrong"))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    // A path no route matches, with a secret-looking query.
    let nowhere = app
        .request(app.http.get(app.url("/nowhere/at-all?token=never-a-label")))
        .await;
    assert_eq!(nowhere.status, 404);

    let after = scrape(&app).await?;
    let requests = |route: &str, method: &str, status: &str| {
        let labels = [("route", route), ("method", method), ("status", status)];
        after.value(REQUESTS, &labels) - before.value(REQUESTS, &labels)
    };
    assert!(requests("/oauth20/token", "POST", "200") >= 6.0);
    assert!(requests("/oauth20/token", "POST", "400") >= 1.0);
    assert!(requests("/oauth20/access-tokens", "GET", "200") >= 2.0);
    assert!(requests("/oauth20/access-tokens", "GET", "401") >= 1.0);
    assert!(requests("/oauth20/access-tokens", "DELETE", "200") >= 1.0);
    assert!(requests("/oauth20/revoke", "POST", "200") >= 1.0);
    assert!(requests("unmatched", "GET", "404") >= 1.0);
    // The first scrape, counted once its answer was ready.
    assert!(requests("/metrics", "GET", "200") >= 1.0);

    // Durations are histograms with the same labels, with buckets.
    assert_eq!(after.kind(REQUESTS), Some("counter"));
    assert_eq!(after.kind(DURATION), Some("histogram"));
    for (route, method, status) in [
        ("/oauth20/token", "POST", "200"),
        ("/oauth20/access-tokens", "GET", "401"),
        ("/oauth20/access-tokens", "DELETE", "200"),
        ("unmatched", "GET", "404"),
    ] {
        let labels = [("route", route), ("method", method), ("status", status)];
        let count = format!("{DURATION}_count");
        assert!(
            after.value(&count, &labels) - before.value(&count, &labels) >= 1.0,
            "{route} {method} {status}"
        );
        let every = [
            ("route", route),
            ("method", method),
            ("status", status),
            ("le", "+Inf"),
        ];
        let bucket = format!("{DURATION}_bucket");
        assert_eq!(
            after.value(&bucket, &every),
            after.value(&count, &labels),
            "{route} {method} {status}"
        );
    }

    // Tokens issued per grant and revocations per scope.
    let issued = |grant: &str| {
        after.value(ISSUED, &[("grant", grant)]) - before.value(ISSUED, &[("grant", grant)])
    };
    assert!(issued("anonymous") >= 2.0);
    assert!(issued("refresh") >= 1.0);
    assert!(issued("client_token") >= 1.0);
    assert!(issued("partner_shopper") >= 1.0);
    assert!(issued("shopper_login") >= 1.0);
    let revoked = |scope: &str| {
        after.value(REVOKED, &[("scope", scope)]) - before.value(REVOKED, &[("scope", scope)])
    };
    assert!(
        revoked("session") >= 1.0,
        "logout of the newest access token"
    );
    assert!(
        revoked("refresh") >= 1.0,
        "RFC 7009 revocation of a refresh token"
    );

    // Store operations, timed by the metered store with their outcome.
    assert_eq!(after.kind(STORE), Some("histogram"));
    let operations = |operation: &str| {
        let labels = [("operation", operation), ("outcome", "ok")];
        let count = format!("{STORE}_count");
        after.value(&count, &labels) - before.value(&count, &labels)
    };
    assert!(operations("insert_session") >= 3.0);
    // The rotated token read before its logout and again after it (the logout dropped it
    // from the cache; its lookup by query in between was a hit), and the revoked refresh
    // token (refresh tokens are never cached).
    assert!(operations("lookup_token") >= 3.0);
    assert!(operations("exchange_refresh") >= 1.0);
    assert!(operations("log_out") >= 1.0);
    assert!(operations("revoke_session") >= 1.0);
    assert!(operations("shopper_by_username") >= 2.0);
    assert!(operations("shopper_by_external_reference") >= 1.0);
    assert!(operations("client") >= 1.0);

    assert_eq!(
        after.kind("tessera_password_hash_queue_depth"),
        Some("gauge")
    );

    // The caches' hits and misses, where the store has the caches (SQLite): the rotated
    // token's first lookup read the store, its lookup by query was answered from the
    // cache; the one client authenticated many times, and the partner's shopper was read
    // once.
    if caches_lookups(&app) {
        let cached = |name: &str, result: &str| {
            after.value(name, &[("result", result)]) - before.value(name, &[("result", result)])
        };
        assert!(cached("tessera_lookup_cache_requests_total", "miss") >= 1.0);
        assert!(cached("tessera_lookup_cache_requests_total", "hit") >= 1.0);
        assert!(cached("tessera_client_cache_requests_total", "hit") >= 1.0);
        assert!(cached("tessera_shopper_cache_requests_total", "miss") >= 1.0);
    }

    // Route templates only: no token, query or unmatched path is ever a label.
    for secret in [
        access.as_str(),
        refresh.as_str(),
        "never-a-label",
        "/nowhere",
    ] {
        assert!(!after.text.contains(secret), "{secret} appears on the page");
    }
    Ok(())
}

#[tokio::test]
async fn a_router_without_the_recorder_has_no_metrics_page() -> TestResult {
    let app = spawn_app().await;
    let answer = app.request(app.http.get(app.url("/metrics"))).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    Ok(())
}
