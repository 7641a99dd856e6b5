//! The misbehaving clients of the `slow-clients` scenario (RELIABILITY P15), on raw TCP
//! so that they can do what no HTTP client library does: dribble a request head a byte at a
//! time, dribble a body, never read answers, declare a 1 MiB body, send a 64 KiB header.
//! Each attacker repeats its attack until the window ends, reconnecting whenever the server
//! answers or closes, and records how each attempt ended and how long that took.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::load::Window;

/// How often a slow client sends its next byte.
const DRIBBLE: Duration = Duration::from_millis(500);
/// The pause between two oversized requests of one attacker, so that they probe the
/// limits rather than flood the loopback.
const OVERSIZED_PAUSE: Duration = Duration::from_millis(200);
/// The body a `big-body` attacker declares and tries to send.
const BIG_BODY: usize = 1024 * 1024;
/// The header a `big-header` attacker sends.
const BIG_HEADER: usize = 64 * 1024;
/// The body a `slow-body` attacker declares: under the 16 KiB form limit, so it is read.
const SLOW_BODY: usize = 8 * 1024;
/// Requests a `slow-read` attacker pipelines without reading an answer: a large static
/// file (the Swagger UI bundle, about 1.4 MB), so that the server's writes stall on full
/// socket buffers rather than on rendering.
const SLOW_READ_REQUESTS: usize = 4;
const SLOW_READ_PATH: &str = "/docs/swagger-ui-bundle.js";
/// Time to an answer or close is recorded in microseconds, up to this bound.
const BOUND_MICROS: u64 = 600_000_000;

/// The five ways to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Slowloris,
    SlowBody,
    SlowRead,
    BigBody,
    BigHeader,
}

impl Kind {
    /// Attacker `index` of ten: four slowloris, two slow bodies, two slow reads, one
    /// oversized body, one oversized header.
    fn of(index: usize) -> Self {
        match index % 10 {
            0..=3 => Kind::Slowloris,
            4 | 5 => Kind::SlowBody,
            6 | 7 => Kind::SlowRead,
            8 => Kind::BigBody,
            _ => Kind::BigHeader,
        }
    }
}

/// How one kind of attack fared during the measured window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KindFigures {
    /// Attacking connections of this kind.
    pub connections: u32,
    /// Attempts that ended inside the window: answered, or closed by the server.
    pub ended: u64,
    /// The statuses of the answered attempts.
    pub statuses: BTreeMap<u16, u64>,
    /// Attempts the server closed without an answer.
    pub closed_without_answer: u64,
    /// Median time from the attempt's first byte to its answer or close, ms.
    pub end_p50_ms: Option<f64>,
    /// Longest such time, ms.
    pub end_max_ms: Option<f64>,
    /// Attempts still open when the window ended.
    pub open_at_end: u64,
    /// Connections the server refused or reset before the attempt began.
    pub connect_errors: u64,
}

/// Every kind's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AttackFigures {
    /// Request heads dribbled a byte every 500 ms.
    pub slowloris: KindFigures,
    /// An 8 KiB form body dribbled a byte every 500 ms after a complete head.
    pub slow_body: KindFigures,
    /// 4 pipelined `GET /docs/swagger-ui-bundle.js` (about 1.4 MB each), no answer ever
    /// read.
    pub slow_read: KindFigures,
    /// `POST /oauth20/token` declaring and sending 1 MiB.
    pub big_body: KindFigures,
    /// `GET /healthz` with a 64 KiB header.
    pub big_header: KindFigures,
}

impl AttackFigures {
    fn kind_mut(&mut self, kind: Kind) -> &mut KindFigures {
        match kind {
            Kind::Slowloris => &mut self.slowloris,
            Kind::SlowBody => &mut self.slow_body,
            Kind::SlowRead => &mut self.slow_read,
            Kind::BigBody => &mut self.big_body,
            Kind::BigHeader => &mut self.big_header,
        }
    }
}

/// How one attempt ended.
enum Ending {
    /// The server answered with this status.
    Answered(u16),
    /// The server closed the connection (or reset it) without an answer.
    Closed,
    /// The window ended first.
    StillOpen,
}

/// What one attacker saw.
struct Tally {
    kind: Kind,
    ended: u64,
    statuses: BTreeMap<u16, u64>,
    closed: u64,
    open_at_end: u64,
    connect_errors: u64,
    durations: Histogram<u64>,
}

/// Runs `connections` attackers against `address` until the window ends.
pub async fn run(address: SocketAddr, connections: u32, window: Window) -> AttackFigures {
    let mut tasks = Vec::new();
    for index in 0..connections as usize {
        tasks.push(tokio::spawn(attacker(address, Kind::of(index), window)));
    }
    let mut figures = AttackFigures::default();
    let mut durations: BTreeMap<u8, Histogram<u64>> = BTreeMap::new();
    for task in tasks {
        let Ok(Some(tally)) = task.await else {
            continue;
        };
        let key = tally.kind as u8;
        match durations.get_mut(&key) {
            Some(histogram) => {
                let _ = histogram.add(&tally.durations);
            }
            None => {
                durations.insert(key, tally.durations.clone());
            }
        }
        let figures = figures.kind_mut(tally.kind);
        figures.connections += 1;
        figures.ended += tally.ended;
        figures.closed_without_answer += tally.closed;
        figures.open_at_end += tally.open_at_end;
        figures.connect_errors += tally.connect_errors;
        for (status, count) in tally.statuses {
            *figures.statuses.entry(status).or_default() += count;
        }
    }
    for kind in [
        Kind::Slowloris,
        Kind::SlowBody,
        Kind::SlowRead,
        Kind::BigBody,
        Kind::BigHeader,
    ] {
        if let Some(histogram) = durations.get(&(kind as u8))
            && !histogram.is_empty()
        {
            let figures = figures.kind_mut(kind);
            figures.end_p50_ms = Some(histogram.value_at_quantile(0.5) as f64 / 1000.0);
            figures.end_max_ms = Some(histogram.max() as f64 / 1000.0);
        }
    }
    figures
}

async fn attacker(address: SocketAddr, kind: Kind, window: Window) -> Option<Tally> {
    let mut tally = Tally {
        kind,
        ended: 0,
        statuses: BTreeMap::new(),
        closed: 0,
        open_at_end: 0,
        connect_errors: 0,
        durations: Histogram::new_with_bounds(1, BOUND_MICROS, 3).ok()?,
    };
    while Instant::now() < window.until {
        let Ok(stream) = TcpStream::connect(address).await else {
            if window.contains(Instant::now()) {
                tally.connect_errors += 1;
            }
            tokio::time::sleep(OVERSIZED_PAUSE).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let started = Instant::now();
        let ending = tokio::time::timeout_at(window.until.into(), attempt(stream, kind))
            .await
            .unwrap_or(Ending::StillOpen);
        let finished = Instant::now();
        if matches!(ending, Ending::StillOpen) {
            tally.open_at_end += 1;
            continue;
        }
        if !window.contains(finished) {
            continue;
        }
        tally.ended += 1;
        match ending {
            Ending::Answered(status) => *tally.statuses.entry(status).or_default() += 1,
            Ending::Closed => tally.closed += 1,
            Ending::StillOpen => {}
        }
        let micros =
            u64::try_from(finished.duration_since(started).as_micros()).unwrap_or(u64::MAX);
        tally
            .durations
            .saturating_record(micros.clamp(1, BOUND_MICROS));
        if matches!(kind, Kind::BigBody | Kind::BigHeader) {
            tokio::time::sleep(OVERSIZED_PAUSE).await;
        }
    }
    Some(tally)
}

/// One attempt on a fresh connection; ends when the server answers or closes.
async fn attempt(mut stream: TcpStream, kind: Kind) -> Ending {
    match kind {
        Kind::Slowloris => {
            let head = "GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Slow: ";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return Ending::Closed;
            }
            dribble(stream).await
        }
        Kind::SlowBody => {
            let head = format!(
                "POST /oauth20/token HTTP/1.1\r\nHost: bench\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {SLOW_BODY}\r\n\r\ngrant_type=password&x="
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return Ending::Closed;
            }
            dribble(stream).await
        }
        Kind::SlowRead => {
            let request = format!("GET {SLOW_READ_PATH} HTTP/1.1\r\nHost: bench\r\n\r\n");
            let pipelined = request.repeat(SLOW_READ_REQUESTS);
            // The writes stop making progress once both sides' buffers are full; the
            // attempt then waits, never reading, until the server gives up or the window
            // ends.
            let _ = stream.write_all(pipelined.as_bytes()).await;
            std::future::pending::<()>().await;
            Ending::StillOpen
        }
        Kind::BigBody => {
            let head = format!(
                "POST /oauth20/token HTTP/1.1\r\nHost: bench\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {BIG_BODY}\r\n\r\n"
            );
            let (mut reader, mut writer) = stream.into_split();
            let writing = tokio::spawn(async move {
                if writer.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'a'; 64 * 1024];
                for _ in 0..BIG_BODY / chunk.len() {
                    if writer.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
            let ending = read_status(&mut reader).await;
            writing.abort();
            ending
        }
        Kind::BigHeader => {
            let request = format!(
                "GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Big: {}\r\n\r\n",
                "a".repeat(BIG_HEADER)
            );
            let (mut reader, mut writer) = stream.into_split();
            let writing = tokio::spawn(async move {
                let _ = writer.write_all(request.as_bytes()).await;
                // Keep the write half open until the answer is read.
                std::future::pending::<()>().await;
            });
            let ending = read_status(&mut reader).await;
            writing.abort();
            ending
        }
    }
}

/// Sends one more byte every [`DRIBBLE`] until the server answers or closes.
async fn dribble(mut stream: TcpStream) -> Ending {
    let mut buffer = [0u8; 512];
    let mut seen = Vec::new();
    loop {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return status_of(&seen).map_or(Ending::Closed, Ending::Answered),
                Ok(n) => {
                    seen.extend_from_slice(&buffer[..n]);
                    if let Some(status) = status_of(&seen) {
                        return Ending::Answered(status);
                    }
                }
            },
            () = tokio::time::sleep(DRIBBLE) => {
                if stream.write_all(b"a").await.is_err() {
                    return status_of(&seen).map_or(Ending::Closed, Ending::Answered);
                }
            }
        }
    }
}

/// Reads until the status line is complete, or the server closes.
async fn read_status(reader: &mut tokio::net::tcp::OwnedReadHalf) -> Ending {
    let mut buffer = [0u8; 512];
    let mut seen = Vec::new();
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return status_of(&seen).map_or(Ending::Closed, Ending::Answered),
            Ok(n) => {
                seen.extend_from_slice(&buffer[..n]);
                if let Some(status) = status_of(&seen) {
                    return Ending::Answered(status);
                }
            }
        }
    }
}

/// The status of `HTTP/1.1 NNN ...` once its first line is complete.
fn status_of(seen: &[u8]) -> Option<u16> {
    let line_end = seen.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&seen[..line_end]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}
