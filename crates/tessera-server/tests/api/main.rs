//! API tests: the real router served on port 0, over a real SQLite store in a temporary
//! folder, with a manual clock.

mod client_auth;
mod fail_closed;
mod helpers;
mod login;
mod logout_everywhere;
mod methods;
mod model;
mod refresh;
mod refresh_concurrency;
mod revocation;
mod session_details;
mod shoppers;
mod storage;
mod token_endpoint;
mod upgrade;
