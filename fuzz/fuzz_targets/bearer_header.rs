//! The bearer token of a session request: the input up to its first newline is the
//! `Authorization` header value, the rest (when UTF-8) the query string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::parsers::parse_bearer_request;

fuzz_target!(|data: &[u8]| {
    let (header, query) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], std::str::from_utf8(&data[at + 1..]).ok()),
        None => (data, None),
    };
    let _ = parse_bearer_request(Some(header), query);
    let _ = parse_bearer_request(None, std::str::from_utf8(data).ok());
});
