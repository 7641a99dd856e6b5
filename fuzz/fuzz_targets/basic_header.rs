//! The `Authorization` header parser, fed `Basic ` and the input (the client credentials
//! of the token, introspection and revocation endpoints), and the raw input as a whole
//! header value (any scheme, any case, any spacing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::parsers::parse_authorization;

fuzz_target!(|data: &[u8]| {
    let mut value = b"Basic ".to_vec();
    value.extend_from_slice(data);
    let _ = parse_authorization(&value);
    let _ = parse_authorization(data);
});
