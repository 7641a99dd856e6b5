//! Parsing of headers, query strings and bodies into the core's types. Handlers see only
//! validated values; every malformed input is refused here with a 4xx.

pub(crate) mod admin_auth;
pub(crate) mod bearer;
pub(crate) mod client_auth;
pub(crate) mod form;
pub(crate) mod params;
pub(crate) mod peer;
pub(crate) mod token_param;
