//! The one log line per request: method, route template, status and latency; and, when
//! the router serves metrics, the same request counted and timed in
//! `tessera_http_requests_total` and `tessera_http_request_duration_seconds`. The URI is
//! never logged nor used as a label, because older clients put tokens in the query string.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response, StatusCode};
use metrics::{Counter, Histogram};
use tower::{Layer, Service};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnRequest, OnResponse, TraceLayer,
};
use tracing::Span;

type MakeSpan = fn(&Request<Body>) -> Span;

/// The request-logging layer.
pub(crate) fn layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    MakeSpan,
    DefaultOnRequest,
    LogResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
> {
    TraceLayer::new_for_http()
        .make_span_with(request_span as MakeSpan)
        .on_response(LogResponse)
}

fn request_span(request: &Request<Body>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str);
    tracing::info_span!("request", method = %request.method(), route = %route)
}

/// Logs the request's end, whatever the body type the layers below it give.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogResponse;

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = latency.as_secs_f64() * 1000.0,
            "request finished"
        );
    }
}

/// The route label of a request no route matched (a 404).
const UNMATCHED: &str = "unmatched";

/// The layer that counts and times every request, when `enabled` (the router serves
/// `/metrics`); otherwise it only passes requests on.
pub(crate) fn request_metrics(enabled: bool) -> RequestMetricsLayer {
    RequestMetricsLayer { enabled }
}

/// See [`request_metrics`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestMetricsLayer {
    enabled: bool,
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            enabled: self.enabled,
        }
    }
}

/// The service of [`RequestMetricsLayer`].
#[derive(Clone, Debug)]
pub(crate) struct RequestMetrics<S> {
    inner: S,
    enabled: bool,
}

/// What is known of a request when it arrives.
struct Arrival {
    route: Option<MatchedPath>,
    method: &'static str,
    at: Instant,
}

impl<S, B, R> Service<Request<B>> for RequestMetrics<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = MeasuredResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let arrival = self.enabled.then(|| Arrival {
            route: request.extensions().get::<MatchedPath>().cloned(),
            method: method_label(request.method()),
            at: Instant::now(),
        });
        MeasuredResponse {
            inner: self.inner.call(request),
            arrival,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's response future; records the request once the response is
    /// ready.
    pub(crate) struct MeasuredResponse<F> {
        #[pin]
        inner: F,
        arrival: Option<Arrival>,
    }
}

impl<F, R, E> Future for MeasuredResponse<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(arrival)) = (&output, this.arrival.take()) {
            let route = arrival
                .route
                .as_ref()
                .map_or(UNMATCHED, MatchedPath::as_str);
            record(
                route,
                arrival.method,
                response.status(),
                arrival.at.elapsed().as_secs_f64(),
            );
        }
        Poll::Ready(output)
    }
}

/// The method as a label from a fixed set, so that invented methods cannot create series.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// The two series of one route, method and status.
struct Series {
    requests: Counter,
    duration: Histogram,
}

impl Series {
    fn register(route: &str, method: &'static str, status: StatusCode) -> Self {
        let labels = [
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.as_str().to_owned()),
        ];
        Self {
            requests: metrics::counter!("tessera_http_requests_total", &labels),
            duration: metrics::histogram!("tessera_http_request_duration_seconds", &labels),
        }
    }
}

/// (method, status) → series. The keys come from the code, never from a request as
/// sent, so a fast hasher without protection against chosen collisions is safe here; the
/// default one cost a tenth of what recording a request costs.
type SeriesByStatus = HashMap<(&'static str, u16), Series, foldhash::fast::RandomState>;
/// Route template → (method, status) → series.
type SeriesByRoute = HashMap<Box<str>, SeriesByStatus, foldhash::fast::RandomState>;

thread_local! {
    /// The series handles this thread has used. Registering a series builds its labels and
    /// looks it up in the recorder; a handle found here is only incremented. There are at
    /// most routes × methods × statuses of them, all known to the code.
    static SERIES: RefCell<SeriesByRoute> = RefCell::new(SeriesByRoute::default());
}

fn record(route: &str, method: &'static str, status: StatusCode, seconds: f64) {
    let count = |by_status: &mut SeriesByStatus| {
        let one = by_status
            .entry((method, status.as_u16()))
            .or_insert_with(|| Series::register(route, method, status));
        one.requests.increment(1);
        one.duration.record(seconds);
    };
    SERIES.with_borrow_mut(|series| match series.get_mut(route) {
        Some(by_status) => count(by_status),
        None => count(series.entry(route.into()).or_default()),
    });
}
