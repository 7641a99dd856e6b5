//! API tests: the real router served on port 0, over a real SQLite store in a temporary
//! folder (or, with `TESSERA_TEST_STORE=postgres`, a fresh PostgreSQL database), with a
//! manual clock.

mod bad_inputs;
mod client_auth;
mod cors;
mod fail_closed;
mod helpers;
mod http_limits;
mod introspection;
mod login;
mod logout_everywhere;
mod lookup_cache;
mod metadata;
mod methods;
mod metrics;
mod model;
mod openapi;
mod refresh;
mod refresh_concurrency;
mod request_limits;
mod revocation;
mod revocation_rfc7009;
mod rfc_errors;
mod session_details;
mod shoppers;
mod standards_helpers;
mod storage;
mod token_endpoint;
mod upgrade;
