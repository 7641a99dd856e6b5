//! Tessera's domain: tokens, clients, shoppers, sessions and grants, the clock, and the
//! storage traits every backend implements. Nothing here knows HTTP or SQL: the server
//! crate adapts requests into these types, and store crates implement [`store::Store`].

pub mod admin;
pub mod audit;
pub mod client;
pub mod clock;
pub mod error;
pub mod grants;
pub mod id;
pub mod introspection;
pub mod limits;
pub mod logout;
pub mod lookup_cache;
pub mod migration;
pub mod password;
mod revocation;
pub mod rotation;
pub mod secret;
pub mod service;
pub mod session;
pub mod session_admin;
pub mod session_token;
mod sessions;
pub mod shopper;
pub mod shoppers;
pub mod store;
pub mod suite;
mod telemetry;
pub mod token;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{AdminError, BearerError, StoreError, TokenError};
pub use secret::Secret;
pub use service::{ServiceConfig, TokenService};
pub use store::Store;
