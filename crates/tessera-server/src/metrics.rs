//! Prometheus metrics: the process's one recorder, which every `metrics::counter!`,
//! `gauge!` and `histogram!` of Tessera's crates reports to, and `GET /metrics`, which
//! renders it in the text exposition format. The exporter has no listener of its own: the
//! public router serves the page, when its [`ServerConfig`](crate::ServerConfig) carries
//! a [`Metrics`].

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;
use crate::openapi::NoStore;

/// Where the page is served.
pub(crate) const PATH: &str = "/metrics";

/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Bucket bounds of every `*_seconds` histogram: from 100 µs (a cached lookup, a read by
/// primary key) to 10 s (the longest a store operation may wait before it fails).
const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Bucket bounds of every `*_batch_size` histogram (writes committed together).
const BATCH_SIZE_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// How often recorded histogram samples are folded into their buckets. Until then each
/// sample is held on its own, so this bounds the memory a busy minute without scrapes takes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The process's metrics recorder, for rendering `/metrics`. Cloning is cheap, and every
/// clone renders the same, process-wide figures.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// The recorder could not be installed: another recorder was installed in this process
/// first, or the bucket settings were refused.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct MetricsError(String);

/// The outcome of the one installation attempt of this process.
static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

impl Metrics {
    /// The process-wide Prometheus recorder, installed by the first call (which also
    /// starts a thread that folds histogram samples into buckets every second); later
    /// calls return the same recorder, so every router built in one process renders the
    /// same figures.
    pub fn install() -> Result<Self, MetricsError> {
        match RECORDER.get_or_init(install_recorder) {
            Ok(handle) => Ok(Self {
                handle: handle.clone(),
            }),
            Err(message) => Err(MetricsError(message.clone())),
        }
    }

    /// `GET /metrics`.
    pub(crate) fn routes(&self) -> MethodRouter<AppState> {
        let metrics = self.clone();
        get(move || scrape(metrics.clone()))
    }
}

fn install_recorder() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Suffix("_batch_size".to_owned()),
                &BATCH_SIZE_BUCKETS,
            )
        })
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| error.to_string())?;
    describe();
    let upkept = handle.clone();
    let upkeep = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkept.run_upkeep();
            }
        });
    if let Err(error) = upkeep {
        // Each scrape still folds the samples in; only memory between scrapes grows.
        tracing::warn!(%error, "cannot start the metrics upkeep thread");
    }
    Ok(handle)
}

/// The `# HELP` lines of the metrics Tessera's own crates record.
fn describe() {
    ::metrics::describe_counter!(
        "tessera_http_requests_total",
        "HTTP requests answered by the public listener, by route template, method and status."
    );
    ::metrics::describe_histogram!(
        "tessera_http_request_duration_seconds",
        ::metrics::Unit::Seconds,
        "Time from a request's arrival to its response's headers, by route template, method \
         and status."
    );
    ::metrics::describe_counter!(
        "tessera_tokens_issued_total",
        "Token responses issued by the token endpoint, by grant."
    );
    ::metrics::describe_counter!(
        "tessera_tokens_revoked_total",
        "Revocations that took effect, by what they ended."
    );
    ::metrics::describe_histogram!(
        "tessera_store_operation_duration_seconds",
        ::metrics::Unit::Seconds,
        "Duration of store operations, by operation and outcome."
    );
    ::metrics::describe_gauge!(
        "tessera_password_hash_queue_depth",
        "Password hashings and verifications waiting for or holding an Argon2 permit."
    );
}

/// The figures of every metric this process recorded.
///
/// They hold counts, durations and gauges only; labels name route templates (never a
/// request's path or query), methods, statuses, grants and store operations, so the page
/// carries no token, secret or identifier.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getMetrics",
    tag = "operations",
    responses(
        (status = 200, description = "Every metric, in the Prometheus text exposition format \
            0.0.4.", content_type = "text/plain; version=0.0.4", body = inline(String),
            headers(("Cache-Control" = inline(NoStore)))),
    ),
)]
async fn scrape(metrics: Metrics) -> Response {
    let page = metrics.handle.render();
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        page,
    )
        .into_response()
}
