//! API tests: the real router served on port 0, over a real SQLite store in a temporary
//! folder, with a manual clock.

mod client_auth;
mod fail_closed;
mod helpers;
mod methods;
mod revocation;
mod session_details;
mod storage;
mod token_endpoint;
