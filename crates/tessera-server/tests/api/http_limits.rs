//! The HTTP limits of RELIABILITY P15, over raw TCP against the real server: slow heads are
//! cut off by the header read timeout, oversized heads and bodies are refused at once,
//! connections and requests in flight are capped, and malformed HTTP gets a 4xx or a
//! closed connection, never a 5xx or a hang. Ceilings below only bound a wait; nothing
//! asserts how long anything took.

use std::time::Duration;

use tessera_server::HttpLimits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Bound on any wait below; generous because CI shares two cores with compilers.
const CEILING: Duration = Duration::from_secs(30);

/// A limit short enough that tests reach it quickly, and far below [`CEILING`].
const SHORT: Duration = Duration::from_millis(300);

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Reads until the server closes the connection: what it sent, or `None` if it was still
/// open at the ceiling. A reset counts as closed.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(CEILING, read_all).await.ok()?;
    Some(String::from_utf8_lossy(&received).into_owned())
}

/// Sends `bytes` on a new connection (ignoring a write the server cut short) and reads
/// to the close.
async fn exchange(app: &TestApp, bytes: &[u8]) -> Option<String> {
    let mut stream = connect(app).await;
    let _ = stream.write_all(bytes).await;
    read_until_closed(&mut stream).await
}

fn status_of(reply: &str) -> Option<u16> {
    reply
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

fn header_in<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    let head = reply.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn body_of(reply: &str) -> serde_json::Value {
    reply
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn a_64_kib_header_is_refused_with_431() {
    let app = spawn_app().await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let reply = exchange(&app, request.as_bytes()).await;
    let reply = reply.unwrap_or_else(|| panic!("the connection was not closed"));
    assert_eq!(status_of(&reply), Some(431), "{reply}");
}

#[tokio::test]
async fn a_one_mebibyte_body_is_refused_with_413_on_any_path_before_it_is_sent() {
    let app = spawn_app().await;
    for (path, oauth_shape) in [
        ("/oauth20/introspect", true),
        ("/v1/shoppers/me", false),
        ("/healthz", false),
        ("/nowhere", false),
    ] {
        // Only the head is sent: the refusal must not wait for the body.
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\ngrant_type=",
            1 << 20
        );
        let reply = exchange(&app, request.as_bytes())
            .await
            .unwrap_or_else(|| panic!("{path}: the connection was not closed"));
        assert_eq!(status_of(&reply), Some(413), "{path}: {reply}");
        assert_eq!(header_in(&reply, "x-content-type-options"), Some("nosniff"));
        let body = body_of(&reply);
        if oauth_shape {
            assert_eq!(body["error"], "invalid_request", "{path}: {reply}");
        } else {
            assert_eq!(body["errors"]["error"][0]["relation"], path, "{reply}");
        }
    }
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_off_at_introspection_and_revocation() {
    let app = spawn_app().await;
    for path in ["/oauth20/introspect", "/oauth20/revoke"] {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
            app.client.basic()
        )
        .into_bytes();
        // 128 KiB of chunks and no last chunk: the answer must come before any end.
        for _ in 0..128 {
            request.extend_from_slice(b"400\r\n");
            request.extend_from_slice(&[b'a'; 1024]);
            request.extend_from_slice(b"\r\n");
        }
        let mut stream = connect(&app).await;
        let _ = stream.write_all(&request).await;
        let mut head = vec![0u8; 12];
        let read = tokio::time::timeout(CEILING, stream.read_exact(&mut head)).await;
        assert!(
            matches!(read, Ok(Ok(_))),
            "{path}: no answer to an endless body"
        );
        assert_eq!(&head, b"HTTP/1.1 413", "{path}");
    }
}

#[tokio::test]
async fn a_slow_request_head_is_cut_off_by_the_header_read_timeout() {
    let app = spawn_app_with_http_limits(HttpLimits {
        header_read_timeout: SHORT,
        ..HttpLimits::default()
    })
    .await;
    let mut stream = connect(&app).await;
    // Half a request line, then nothing: a slowloris client.
    stream
        .write_all(b"POST /oauth20/to")
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let reply = read_until_closed(&mut stream)
        .await
        .unwrap_or_else(|| panic!("the header read timeout never closed the connection"));
    assert!(
        reply.is_empty() || status_of(&reply) == Some(408),
        "{reply}"
    );
    // The server itself still answers.
    let health = app.request(app.http.get(app.url("/healthz"))).await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn a_request_over_the_request_timeout_is_answered_503_with_retry_after() {
    let app = spawn_app_with_http_limits(HttpLimits {
        request_timeout: SHORT,
        ..HttpLimits::default()
    })
    .await;
    // The body is announced and never sent, so the handler waits for it.
    let request = format!(
        "POST /oauth20/token HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
        app.client.basic()
    );
    let mut stream = connect(&app).await;
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let answered = tokio::time::timeout(CEILING, async {
        while !String::from_utf8_lossy(&received).contains("}") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(answered.is_ok(), "the request timeout never fired");
    let reply = String::from_utf8_lossy(&received).into_owned();
    assert_eq!(status_of(&reply), Some(503), "{reply}");
    assert_eq!(header_in(&reply, "retry-after"), Some("1"), "{reply}");
    assert_eq!(header_in(&reply, "x-content-type-options"), Some("nosniff"));
    assert_eq!(
        body_of(&reply)["error"],
        "temporarily_unavailable",
        "{reply}"
    );
}

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_are_shed_with_503_and_retry_after() {
    let app = spawn_app_with_http_limits(HttpLimits {
        max_in_flight_requests: 1,
        ..HttpLimits::default()
    })
    .await;
    let form = format!("grant_type=password&pad={}", "a".repeat(80));
    let request = format!(
        "POST /oauth20/token HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        app.client.basic(),
        form.len()
    );
    // The one request in flight: its handler waits for a body that is held back.
    let mut held = connect(&app).await;
    held.write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));

    // The held request reaches its handler at some moment; from then on others are shed.
    let shed = tokio::time::timeout(CEILING, async {
        loop {
            let answer = app.request(app.http.get(app.url("/healthz"))).await;
            if answer.status == 503 {
                return answer;
            }
            assert_eq!(answer.status, 200, "{}", answer.text);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no request was ever shed"));
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert_eq!(shed.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(shed.dr_code(), Some("service-unavailable"), "{}", shed.text);
    let token = app.token("grant_type=password").await;
    assert_eq!(token.status, 503, "{}", token.text);
    assert_eq!(token.header("retry-after"), Some("1"));
    assert_eq!(token.error_code(), Some("temporarily_unavailable"));

    // The held request completes normally once its body comes, and the slot frees.
    held.write_all(form.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let reply = read_until_closed(&mut held)
        .await
        .unwrap_or_else(|| panic!("the held request was never answered"));
    assert_eq!(status_of(&reply), Some(200), "{reply}");
    assert_eq!(app.token("grant_type=password").await.status, 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once_and_slots_come_back() {
    let app = spawn_app_with_http_limits(HttpLimits {
        max_connections: 2,
        header_read_timeout: CEILING * 2,
        ..HttpLimits::default()
    })
    .await;
    // Two connections that hold their slots with an unfinished head.
    let mut first = connect(&app).await;
    let mut second = connect(&app).await;
    for stream in [&mut first, &mut second] {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
    }
    let request = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let third = exchange(&app, request)
        .await
        .unwrap_or_else(|| panic!("a connection over the cap was left waiting"));
    assert_eq!(third, "", "a connection over the cap was served");

    drop(first);
    let served = tokio::time::timeout(CEILING, async {
        loop {
            if let Some(reply) = exchange(&app, request).await
                && status_of(&reply) == Some(200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "the freed slot never came back");
    drop(second);
}

#[tokio::test]
async fn malformed_http_gets_a_4xx_or_a_closed_connection_never_a_5xx_or_a_hang() {
    let app = spawn_app().await;
    let form_head = "POST /oauth20/token HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
                     Content-Type: application/x-www-form-urlencoded\r\n";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "Content-Length and chunked",
            format!(
                "{form_head}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
                 d\r\ngrant_type=no\r\n0\r\n\r\n"
            )
            .into_bytes(),
        ),
        (
            "two different Content-Lengths",
            format!("{form_head}Content-Length: 13\r\nContent-Length: 4\r\n\r\ngrant_type=no")
                .into_bytes(),
        ),
        (
            "obsolete line folding",
            format!("{form_head}X-Folded: a\r\n b\r\nContent-Length: 13\r\n\r\ngrant_type=no")
                .into_bytes(),
        ),
        (
            "bare CR in a header value",
            format!("{form_head}X-Bad: a\rb\r\nContent-Length: 13\r\n\r\ngrant_type=no")
                .into_bytes(),
        ),
        (
            "NUL in a header value",
            format!("{form_head}X-Bad: a\0b\r\nContent-Length: 13\r\n\r\ngrant_type=no")
                .into_bytes(),
        ),
        (
            "a 64 KiB request line",
            format!(
                "GET /healthz?pad={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                "a".repeat(64 * 1024)
            )
            .into_bytes(),
        ),
    ];
    for (case, request) in cases {
        let reply = exchange(&app, &request)
            .await
            .unwrap_or_else(|| panic!("{case}: the connection hung"));
        if reply.is_empty() {
            continue;
        }
        let status = status_of(&reply);
        assert!(
            status.is_some_and(|s| (400..500).contains(&s)),
            "{case}: {reply}"
        );
    }
}

/// Reads until the server closes the connection and counts the bytes; `None` if it was
/// still open at the ceiling.
async fn count_until_closed(stream: &mut TcpStream) -> Option<usize> {
    let mut received = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n,
            }
        }
    };
    tokio::time::timeout(CEILING, read_all).await.ok()?;
    Some(received)
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_by_the_response_write_timeout() {
    const LARGE_FILE: &str = "/docs/swagger-ui-bundle.js";
    const PIPELINED: usize = 64;
    let app = spawn_app_with_http_limits(HttpLimits {
        response_write_timeout: SHORT,
        ..HttpLimits::default()
    })
    .await;
    let whole = app
        .http
        .get(format!("{}{LARGE_FILE}", app.address))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {LARGE_FILE}: {e}"));
    assert_eq!(whole.status(), 200);
    let size = whole.bytes().await.map_or(0, |body| body.len());
    assert!(size > 100_000, "{LARGE_FILE} is only {size} bytes");

    // Far more answer than the sockets' buffers hold, asked for and then not read: the
    // server's writes stall.
    let mut stream = connect(&app).await;
    let request = format!("GET {LARGE_FILE} HTTP/1.1\r\nHost: t\r\n\r\n").repeat(PIPELINED);
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    tokio::time::sleep(SHORT * 10).await;

    // Reading again finds the connection closed before every answer was sent; a server
    // without the timeout would resume and keep the connection open.
    let received = count_until_closed(&mut stream)
        .await
        .unwrap_or_else(|| panic!("the stalled connection was still open at the ceiling"));
    assert!(
        received < PIPELINED * size,
        "received {received} bytes, every answer ({} bytes)",
        PIPELINED * size
    );
}
