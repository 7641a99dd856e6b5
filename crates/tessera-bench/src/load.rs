//! The load generator: one task per virtual user, each with its own keep-alive connection,
//! counting only answers that complete inside the measured window and only with the status
//! the scenario expects.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::StatusCode;

use crate::http::{Call, Connection};

/// Latencies are recorded in microseconds, up to this bound.
const LATENCY_BOUND_MICROS: u64 = 60_000_000;

/// How many error descriptions are kept for the report.
const ERROR_SAMPLES: usize = 5;

/// When a scenario's answers start and stop counting.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// The end of the warm-up.
    pub measure_from: Instant,
    /// The end of the run.
    pub until: Instant,
}

impl Window {
    /// A window that starts after `warmup` from now and lasts `duration`.
    pub fn after(warmup: Duration, duration: Duration) -> Self {
        let measure_from = Instant::now() + warmup;
        Window {
            measure_from,
            until: measure_from + duration,
        }
    }

    /// Whether `instant` falls inside the measured part.
    pub fn contains(&self, instant: Instant) -> bool {
        instant >= self.measure_from && instant <= self.until
    }
}

/// What the virtual users saw during the measured window.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Answers with the expected status.
    pub ok: u64,
    /// Answers with another status (never counted as throughput).
    pub wrong_status: u64,
    /// Answers whose status was not 2xx.
    pub non_2xx: u64,
    /// Requests that got no answer (connection refused, reset, ...).
    pub transport_errors: u64,
    /// Completed scenario-specific units (issue-then-revoke pairs).
    pub pairs: u64,
    /// Latency of the expected answers, in microseconds.
    pub latency: Histogram<u64>,
    /// The first few errors, for the report.
    pub error_samples: Vec<String>,
}

impl Stats {
    fn new() -> anyhow::Result<Self> {
        Ok(Stats {
            ok: 0,
            wrong_status: 0,
            non_2xx: 0,
            transport_errors: 0,
            pairs: 0,
            latency: Histogram::new_with_bounds(1, LATENCY_BOUND_MICROS, 3)?,
            error_samples: Vec::new(),
        })
    }

    fn merge(&mut self, other: &Stats) -> anyhow::Result<()> {
        self.ok += other.ok;
        self.wrong_status += other.wrong_status;
        self.non_2xx += other.non_2xx;
        self.transport_errors += other.transport_errors;
        self.pairs += other.pairs;
        self.latency.add(&other.latency)?;
        for sample in &other.error_samples {
            if self.error_samples.len() < ERROR_SAMPLES {
                self.error_samples.push(sample.clone());
            }
        }
        Ok(())
    }

    /// Every request that did not get its expected answer.
    pub fn errors(&self) -> u64 {
        self.wrong_status + self.transport_errors
    }

    fn note_error(&mut self, text: String) {
        if self.error_samples.len() < ERROR_SAMPLES {
            self.error_samples.push(text);
        }
    }
}

/// One virtual user's connection and counters.
pub struct VirtualUser {
    /// The user's number, from 0.
    pub index: usize,
    address: SocketAddr,
    connection: Option<Connection>,
    window: Window,
    stats: Stats,
}

impl VirtualUser {
    /// Sends `call`; returns the body when the status is `expected`, `None` otherwise (the
    /// failure is counted if it ends inside the window).
    pub async fn call(&mut self, call: &Call, expected: StatusCode) -> Option<Bytes> {
        if self.connection.is_none() {
            match Connection::open(self.address).await {
                Ok(connection) => self.connection = Some(connection),
                Err(e) => {
                    self.count_transport_error(format!("connect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return None;
                }
            }
        }
        let connection = self.connection.as_mut()?;
        let started = Instant::now();
        let answer = connection.send(call).await;
        let finished = Instant::now();
        match answer {
            Err(e) => {
                self.connection = None;
                self.count_transport_error(format!("{} {}: {e:#}", call.method, call.path));
                None
            }
            Ok((status, body)) => {
                let counted = self.window.contains(finished);
                if status == expected {
                    if counted {
                        self.stats.ok += 1;
                        let micros = u64::try_from(finished.duration_since(started).as_micros())
                            .unwrap_or(u64::MAX);
                        self.stats
                            .latency
                            .saturating_record(micros.clamp(1, LATENCY_BOUND_MICROS));
                    }
                    Some(body)
                } else {
                    if counted {
                        self.stats.wrong_status += 1;
                        if !status.is_success() {
                            self.stats.non_2xx += 1;
                        }
                        let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
                        self.stats.note_error(format!(
                            "{} {}: {status} (expected {expected}): {text}",
                            call.method, call.path
                        ));
                    }
                    None
                }
            }
        }
    }

    /// Counts one completed pair (for scenarios measured in pairs).
    pub fn count_pair(&mut self) {
        if self.window.contains(Instant::now()) {
            self.stats.pairs += 1;
        }
    }

    fn count_transport_error(&mut self, text: String) {
        if self.window.contains(Instant::now()) {
            self.stats.transport_errors += 1;
            self.stats.note_error(text);
        }
    }
}

/// What one virtual user does again and again.
pub trait Behaviour: Send + 'static {
    /// One unit of work: one or more requests through `user`.
    fn step(&mut self, user: &mut VirtualUser) -> impl Future<Output = ()> + Send;
}

/// Drives `behaviours.len()` virtual users against `address` until the window ends, and
/// merges what they saw.
pub async fn drive<B: Behaviour>(
    address: SocketAddr,
    behaviours: Vec<B>,
    window: Window,
) -> anyhow::Result<Stats> {
    let mut tasks = Vec::with_capacity(behaviours.len());
    for (index, mut behaviour) in behaviours.into_iter().enumerate() {
        let mut user = VirtualUser {
            index,
            address,
            connection: None,
            window,
            stats: Stats::new()?,
        };
        tasks.push(tokio::spawn(async move {
            while Instant::now() < window.until {
                behaviour.step(&mut user).await;
            }
            user.stats
        }));
    }
    let mut total = Stats::new()?;
    for task in tasks {
        total.merge(&task.await?)?;
    }
    Ok(total)
}
