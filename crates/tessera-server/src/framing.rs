//! Refusing a request that declares both `Content-Length` and `Transfer-Encoding` (RFC 9112
//! §6.3; a request-smuggling attempt). hyper reads such a request by its chunked framing
//! alone, closes the connection after answering, and drops `Content-Length` before any
//! layer can see it. [`FramingWatch`] follows the framing of an HTTP/1 connection's
//! requests on their way into hyper, with `httparse` (the parser hyper itself uses), and
//! records which request declared both; the service answers that request 400 instead of
//! handling it.
//!
//! The watch only ever adds a refusal. Where it cannot follow the bytes (HTTP/2, a head
//! hyper refuses anyway, a chunk it cannot read) it stops watching and hyper's own handling
//! stands, which already closes the connection after such a request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// No request of the connection declared both framings.
const NONE: u64 = u64::MAX;

/// Capacity a connection's head buffer keeps between requests.
const RETAINED_BUFFER_BYTES: usize = 1024;

/// Bytes of a chunk-size line (size and extensions) the watch buffers before it gives up.
const MAX_CHUNK_SIZE_LINE: usize = 4096;

/// Shared between a connection's [`FramingWatch`] and its service: the index (from 0, in
/// arrival order) of the request that declared both framings, and how many requests the
/// service has been handed.
#[derive(Debug)]
pub(crate) struct AmbiguousFraming {
    flagged: AtomicU64,
    handed_out: AtomicU64,
}

impl AmbiguousFraming {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            flagged: AtomicU64::new(NONE),
            handed_out: AtomicU64::new(0),
        })
    }

    /// Called once per request the service receives, in order: whether that request is
    /// the one that declared both framings. hyper hands HTTP/1 requests over one at a
    /// time in arrival order, after their heads went through the watch.
    pub(crate) fn next_request_is_ambiguous(&self) -> bool {
        let index = self.handed_out.fetch_add(1, Ordering::AcqRel);
        index == self.flagged.load(Ordering::Acquire)
    }

    fn flag(&self, index: u64) {
        self.flagged.store(index, Ordering::Release);
    }
}

/// An I/O stream that passes every byte through unchanged while it follows the request
/// framing of what is read.
#[derive(Debug)]
pub(crate) struct FramingWatch<I> {
    inner: I,
    reader: FramingReader,
    verdict: Arc<AmbiguousFraming>,
}

impl<I> FramingWatch<I> {
    /// `max_head_bytes` bounds the request head the watch buffers; hyper refuses a longer
    /// one itself.
    pub(crate) fn new(inner: I, max_head_bytes: usize, verdict: Arc<AmbiguousFraming>) -> Self {
        Self {
            inner,
            reader: FramingReader::new(max_head_bytes),
            verdict,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FramingWatch<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Some(index) = this.reader.read(&buf.filled()[before..]) {
            this.verdict.flag(index);
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FramingWatch<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Where in the request stream the next byte falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// A request head (buffered in `pending` while incomplete).
    Head,
    /// A `Content-Length` body, with this many bytes left.
    Body(u64),
    /// A chunk-size line (buffered in `pending` while incomplete).
    ChunkSize,
    /// A chunk's data and its closing CRLF, with this many bytes left.
    ChunkData(u64),
    /// The trailer section after the last chunk; `line_bytes` of the current line seen.
    Trailers { line_bytes: usize },
    /// Not following any more: passing bytes through.
    Stopped,
}

/// The framing state machine, apart from I/O so it can be fed any split of the bytes.
#[derive(Debug)]
struct FramingReader {
    position: Position,
    pending: Vec<u8>,
    requests: u64,
    max_head_bytes: usize,
}

impl FramingReader {
    fn new(max_head_bytes: usize) -> Self {
        Self {
            position: Position::Head,
            pending: Vec::new(),
            requests: 0,
            max_head_bytes,
        }
    }

    /// Follows `bytes`, the next bytes of the connection; returns the index of a request
    /// whose head declared both framings, after which it stops (hyper closes the
    /// connection after that request).
    fn read(&mut self, mut bytes: &[u8]) -> Option<u64> {
        while !bytes.is_empty() {
            match self.position {
                Position::Stopped => return None,
                Position::Head => {
                    let (consumed, framing) = self.buffer_until_complete(
                        bytes,
                        self.max_head_bytes,
                        head_may_end,
                        parse_head,
                    )?;
                    bytes = &bytes[consumed..];
                    let index = self.requests;
                    self.requests += 1;
                    self.position = match framing {
                        Framing::Both => {
                            self.stop();
                            return Some(index);
                        }
                        Framing::Chunked => Position::ChunkSize,
                        Framing::Length(0) | Framing::None => Position::Head,
                        Framing::Length(length) => Position::Body(length),
                        Framing::Unknown => Position::Stopped,
                    };
                }
                Position::Body(left) => {
                    self.position = skip(&mut bytes, left, Position::Body, Position::Head);
                }
                Position::ChunkSize => {
                    let (consumed, size) = self.buffer_until_complete(
                        bytes,
                        MAX_CHUNK_SIZE_LINE,
                        |new| new.contains(&b'\n'),
                        parse_chunk_size_line,
                    )?;
                    bytes = &bytes[consumed..];
                    self.position = match size {
                        0 => Position::Trailers { line_bytes: 0 },
                        // The data, then its closing CRLF.
                        size => size
                            .checked_add(2)
                            .map_or(Position::Stopped, Position::ChunkData),
                    };
                }
                Position::ChunkData(left) => {
                    self.position =
                        skip(&mut bytes, left, Position::ChunkData, Position::ChunkSize);
                }
                Position::Trailers { mut line_bytes } => {
                    let mut consumed = bytes.len();
                    let mut ended = false;
                    for (at, &byte) in bytes.iter().enumerate() {
                        match byte {
                            b'\n' if line_bytes == 0 => {
                                consumed = at + 1;
                                ended = true;
                                break;
                            }
                            b'\n' => line_bytes = 0,
                            b'\r' => {}
                            _ => line_bytes += 1,
                        }
                    }
                    self.position = if ended {
                        Position::Head
                    } else {
                        Position::Trailers { line_bytes }
                    };
                    bytes = &bytes[consumed..];
                }
            }
        }
        None
    }

    /// Moves bytes into `pending` up to the end of the element being buffered (a head or
    /// a chunk-size line, at most `bound` bytes) and returns how many of `bytes` it took
    /// with what `parse` made of the element, or `None` while it is incomplete
    /// (everything taken) or once the watch stopped (past the bound, or not parseable).
    /// `may_end` says whether newly buffered bytes can complete the element, so a head
    /// sent a byte at a time is not parsed again for every byte.
    fn buffer_until_complete<T>(
        &mut self,
        bytes: &[u8],
        bound: usize,
        may_end: impl Fn(&[u8]) -> bool,
        parse: impl Fn(&[u8]) -> Parsed<T>,
    ) -> Option<(usize, T)> {
        if self.pending.is_empty() {
            // The usual case, a whole head or line in one read: parsed where it lies, so
            // pipelined requests are not copied over and over.
            match parse(bytes) {
                Parsed::Complete(end, value) => return Some((end, value)),
                Parsed::Invalid => {
                    self.stop();
                    return None;
                }
                Parsed::Partial => {}
            }
            if bytes.len() > bound {
                self.stop();
            } else {
                self.pending.extend_from_slice(bytes);
            }
            return None;
        }
        let buffered = self.pending.len();
        // Three bytes back, so an end split over two reads (`\r\n` | `\r\n`) is seen.
        let recheck_from = buffered.saturating_sub(3);
        let take = bytes.len().min(bound.saturating_sub(buffered) + 1);
        self.pending.extend_from_slice(&bytes[..take]);
        let parsed = if may_end(&self.pending[recheck_from..]) {
            parse(&self.pending)
        } else {
            Parsed::Partial
        };
        match parsed {
            Parsed::Complete(end, value) => {
                self.pending.clear();
                // An idle connection keeps no large buffer from one long head.
                self.pending.shrink_to(RETAINED_BUFFER_BYTES);
                Some((end - buffered, value))
            }
            Parsed::Partial if self.pending.len() <= bound => None,
            Parsed::Partial | Parsed::Invalid => {
                self.stop();
                None
            }
        }
    }

    fn stop(&mut self) {
        self.position = Position::Stopped;
        self.pending = Vec::new();
    }
}

/// Takes up to `left` bytes off the front of `bytes`; returns `unfinished` with what is
/// left to take, or `finished` once nothing is.
fn skip(
    bytes: &mut &[u8],
    left: u64,
    unfinished: fn(u64) -> Position,
    finished: Position,
) -> Position {
    let skipped = left.min(bytes.len() as u64);
    // `skipped` is at most `bytes.len()`, so it fits a `usize`.
    *bytes = &bytes[usize::try_from(skipped).unwrap_or(bytes.len())..];
    match left - skipped {
        0 => finished,
        left => unfinished(left),
    }
}

/// What a buffered element turned out to be.
enum Parsed<T> {
    /// Complete, ending this many bytes into the buffer.
    Complete(usize, T),
    Partial,
    /// Something hyper refuses itself (it answers 4xx and closes the connection).
    Invalid,
}

fn parse_head(buffer: &[u8]) -> Parsed<Framing> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_WATCHED_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buffer) {
        // A successful CONNECT turns the connection into a tunnel: no framing to follow.
        Ok(httparse::Status::Complete(_)) if request.method == Some("CONNECT") => Parsed::Invalid,
        Ok(httparse::Status::Complete(length)) => {
            Parsed::Complete(length, Framing::of(request.headers))
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

fn parse_chunk_size_line(buffer: &[u8]) -> Parsed<u64> {
    match httparse::parse_chunk_size(buffer) {
        Ok(httparse::Status::Complete((length, size))) => Parsed::Complete(length, size),
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

/// Header fields parsed per head: more than hyper's default limit (100), so a head hyper
/// accepts is never one the watch cannot read.
const MAX_WATCHED_HEADERS: usize = 128;

/// Whether bytes newly added to a head can end it: a head ends at an empty line.
fn head_may_end(new: &[u8]) -> bool {
    new.windows(2).any(|pair| pair == b"\n\n") || new.windows(3).any(|w| w == b"\n\r\n")
}

/// How a request head says its body is framed.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Both,
    /// Something hyper refuses or handles apart (a malformed or conflicting length,
    /// `CONNECT`): the watch stops.
    Unknown,
}

impl Framing {
    fn of(headers: &[httparse::Header<'_>]) -> Self {
        let mut transfer_encoding = false;
        let mut length: Option<u64> = None;
        let mut content_length = false;
        let mut unreadable_length = false;
        for header in headers {
            if header.name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoding = true;
            } else if header.name.eq_ignore_ascii_case("content-length") {
                content_length = true;
                for value in header.value.split(|&b| b == b',') {
                    let value = value.trim_ascii();
                    let parsed = std::str::from_utf8(value)
                        .ok()
                        .filter(|digits| {
                            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                        })
                        .and_then(|digits| digits.parse::<u64>().ok());
                    match (parsed, length) {
                        (Some(parsed), Some(seen)) if parsed != seen => unreadable_length = true,
                        (Some(parsed), _) => length = Some(parsed),
                        (None, _) => unreadable_length = true,
                    }
                }
            }
        }
        match (transfer_encoding, content_length, length) {
            (true, true, _) => Self::Both,
            (true, false, _) => Self::Chunked,
            (false, true, _) if unreadable_length => Self::Unknown,
            (false, _, Some(length)) => Self::Length(length),
            (false, true, None) => Self::Unknown,
            (false, false, _) => Self::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFLICTING: &[u8] = b"POST /t HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\
        Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";

    fn stream() -> Vec<u8> {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\nGET /a HTTP/1.1\r\nHost: t\r\n\r\n");
        stream.extend_from_slice(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n");
        // A body that looks like a conflicting head must not be read as one.
        stream.extend_from_slice(b"TE\r\nCL: 1\r\n");
        stream.extend_from_slice(
            b"POST /c HTTP/1.1\r\nHost: t\r\ntransfer-encoding: chunked\r\n\r\n\
              1b;ext=1\r\nContent-Length: 4\r\n\r\nabcdef\r\n0\r\nX-Trailer: 1\r\n\r\n",
        );
        stream.extend_from_slice(b"GET /d HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n");
        stream.extend_from_slice(CONFLICTING);
        stream
    }

    /// Feeds `bytes` split at every `step` bytes and returns what the reader reported.
    fn fed_in_pieces(bytes: &[u8], step: usize) -> Vec<u64> {
        let mut reader = FramingReader::new(64 * 1024);
        bytes
            .chunks(step)
            .filter_map(|piece| reader.read(piece))
            .collect()
    }

    #[test]
    fn the_request_declaring_both_framings_is_found_however_the_bytes_are_split() {
        let bytes = stream();
        for step in 1..=bytes.len() {
            assert_eq!(
                fed_in_pieces(&bytes, step),
                vec![4],
                "split every {step} bytes"
            );
        }
    }

    #[test]
    fn requests_with_one_framing_each_are_never_flagged() {
        let mut bytes = stream();
        bytes.truncate(bytes.len() - CONFLICTING.len());
        bytes.extend_from_slice(
            b"POST /e HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcdGET /f HTTP/1.1\r\n\r\n",
        );
        for step in [1, 2, 3, 7, bytes.len()] {
            assert!(
                fed_in_pieces(&bytes, step).is_empty(),
                "split every {step} bytes"
            );
        }
    }

    #[test]
    fn either_header_order_and_any_letter_case_is_flagged() {
        for head in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\ncontent-length: 4\r\nTRANSFER-ENCODING: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert_eq!(fed_in_pieces(head, head.len()), vec![0]);
        }
    }

    #[test]
    fn what_hyper_refuses_itself_stops_the_watch() {
        for bytes in [
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nPOST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(fed_in_pieces(bytes, 5).is_empty());
        }
    }

    #[test]
    fn an_endless_head_is_not_buffered_past_its_bound() {
        let mut reader = FramingReader::new(1024);
        assert_eq!(reader.read(b"GET / HTTP/1.1\r\n"), None);
        for _ in 0..1000 {
            assert_eq!(
                reader.read(b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"),
                None
            );
        }
        assert_eq!(reader.position, Position::Stopped);
        assert!(reader.pending.capacity() == 0);
    }
}
