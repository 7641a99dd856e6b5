//! Handlers of the `/oauth20/` family: each extracts, calls one service method, and maps
//! the result.

pub(crate) mod access_tokens;
pub(crate) mod introspect;
pub(crate) mod revoke;
pub(crate) mod session_token;
#[cfg(test)]
mod test_lookup;
pub(crate) mod token;
