//! The strict `application/x-www-form-urlencoded` decoder, and the introspection and
//! revocation form built on it (duplicates, credentials in the body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::parsers::{parse_form, parse_token_form};

fuzz_target!(|data: &[u8]| {
    let _ = parse_form(data);
    let _ = parse_token_form(None, data);
});
