//! One keep-alive HTTP/1.1 connection (hyper 1), and the requests the scenarios send.

use std::net::SocketAddr;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::net::TcpStream;

/// A request as the scenarios describe it.
#[derive(Clone, Debug)]
pub struct Call {
    /// GET, POST or DELETE.
    pub method: Method,
    /// The path, with any query string.
    pub path: &'static str,
    /// The `Authorization` header.
    pub authorization: Option<HeaderValue>,
    /// An `application/x-www-form-urlencoded` body.
    pub form: Option<String>,
}

impl Call {
    /// `GET path` with no authorization.
    pub fn get(path: &'static str) -> Self {
        Call {
            method: Method::GET,
            path,
            authorization: None,
            form: None,
        }
    }

    /// A request carrying `Authorization: Bearer token`.
    pub fn bearer(method: Method, path: &'static str, token: &str) -> anyhow::Result<Self> {
        Ok(Call {
            method,
            path,
            authorization: Some(HeaderValue::from_str(&format!("Bearer {token}"))?),
            form: None,
        })
    }

    /// `POST path` with a form body and client Basic authentication.
    pub fn form_post(path: &'static str, basic: &HeaderValue, form: String) -> Self {
        Call {
            method: Method::POST,
            path,
            authorization: Some(basic.clone()),
            form: Some(form),
        }
    }
}

/// The `Authorization: Basic` value of a client.
pub fn basic_authorization(client_id: &str, client_secret: &str) -> anyhow::Result<HeaderValue> {
    let encoded = STANDARD.encode(format!(
        "{}:{}",
        form_encode(client_id),
        form_encode(client_secret)
    ));
    Ok(HeaderValue::from_str(&format!("Basic {encoded}"))?)
}

/// Percent-encodes a form value.
pub fn form_encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// One open keep-alive connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Connection {
    /// Connects and completes the HTTP/1.1 handshake; the connection task runs on the
    /// current runtime.
    pub async fn open(address: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("cannot connect to {address}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the peer closes or the sender is dropped; a failure shows up as the
            // next request's error, where it is counted.
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            host: HeaderValue::from_str(&address.to_string())?,
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(call.path)
            .header(HOST, self.host.clone());
        if let Some(authorization) = &call.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let body = match &call.form {
            Some(form) => {
                builder = builder.header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                Full::new(Bytes::from(form.clone()))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self.sender.send_request(builder.body(body)?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}
