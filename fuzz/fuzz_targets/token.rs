//! The token format check (`TokenKeys::verify`): prefix, key id, base64url payload, MAC.
//! The key file is fixed, so the input may name its key id `k1`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tessera_core::token::TokenKeys;

static KEYS: LazyLock<Option<TokenKeys>> = LazyLock::new(|| {
    TokenKeys::parse(
        "k2 QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE\n\
         k1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
    )
    .ok()
});

fuzz_target!(|data: &[u8]| {
    if let (Some(keys), Ok(token)) = (KEYS.as_ref(), std::str::from_utf8(data)) {
        let _ = keys.verify(token);
    }
});
