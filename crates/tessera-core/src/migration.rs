//! Moving a store's contents into another store (`tessera migrate-store`): clients,
//! shoppers, revocation watermarks, pending tidy-ups, live sessions with their unexpired
//! tokens (consumed refresh tokens included, so reuse detection survives the move) and live
//! session tokens.
//!
//! Rows move as they are, hashes and timestamps included: nothing is minted again, so the
//! same key file verifies the moved tokens. Each kind is read in primary-key order in
//! batches after the last key read (keyset pagination) and written one transaction per
//! batch, skipping rows whose key already exists, so a second run, or a run after an
//! interruption, writes what is missing and changes nothing else. Which rows should move is
//! decided once per run by one `now`.

use async_trait::async_trait;

use crate::client::ClientRecord;
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::session::{SessionRecord, TokenRecord};
use crate::session_admin::{SessionOwner, TidyUp};
use crate::session_token::SessionTokenRecord;
use crate::shopper::ShopperRecord;
use crate::store::Store;
use crate::token::TokenHash;

/// Rows read and written per batch by [`copy_kind`] and [`verify_kind`].
pub const MIGRATION_BATCH: u32 = 500;

/// One kind of row that moves, in the order they must move (a row's references first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationKind {
    /// Every client, with its revocation watermark.
    Clients,
    /// Every shopper.
    Shoppers,
    /// Every shopper revocation watermark.
    ShopperWatermarks,
    /// Every pending tidy-up.
    PendingTidyUps,
    /// Sessions not revoked and not expired.
    Sessions,
    /// Unexpired tokens of the sessions that move, revoked and consumed ones included.
    Tokens,
    /// Unexpired session tokens.
    SessionTokens,
}

impl MigrationKind {
    /// Every kind, in the order they move.
    pub const ALL: [MigrationKind; 7] = [
        MigrationKind::Clients,
        MigrationKind::Shoppers,
        MigrationKind::ShopperWatermarks,
        MigrationKind::PendingTidyUps,
        MigrationKind::Sessions,
        MigrationKind::Tokens,
        MigrationKind::SessionTokens,
    ];

    /// A name for people: `clients`, `shopper watermarks`, ...
    pub fn name(self) -> &'static str {
        match self {
            MigrationKind::Clients => "clients",
            MigrationKind::Shoppers => "shoppers",
            MigrationKind::ShopperWatermarks => "shopper watermarks",
            MigrationKind::PendingTidyUps => "pending tidy-ups",
            MigrationKind::Sessions => "sessions",
            MigrationKind::Tokens => "tokens",
            MigrationKind::SessionTokens => "session tokens",
        }
    }
}

/// A shopper's revocation watermark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShopperWatermark {
    /// The shopper's user id.
    pub user_id: String,
    /// Sessions created at or before this instant are ended.
    pub before: Timestamp,
}

/// The primary key of a row that moves: where the next batch starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationKey {
    /// A client id, shopper id, user id or session id.
    Id(String),
    /// A pending tidy-up's owner, ordered by kind name then id.
    Owner(SessionOwner),
    /// A token or session token hash, ordered bytewise.
    Hash(TokenHash),
}

/// Rows of one kind, in primary-key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationBatch {
    /// Clients.
    Clients(Vec<ClientRecord>),
    /// Shoppers.
    Shoppers(Vec<ShopperRecord>),
    /// Shopper watermarks.
    ShopperWatermarks(Vec<ShopperWatermark>),
    /// Pending tidy-ups.
    PendingTidyUps(Vec<TidyUp>),
    /// Sessions.
    Sessions(Vec<SessionRecord>),
    /// Tokens.
    Tokens(Vec<TokenRecord>),
    /// Session tokens.
    SessionTokens(Vec<SessionTokenRecord>),
}

impl MigrationBatch {
    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            MigrationBatch::Clients(rows) => rows.len(),
            MigrationBatch::Shoppers(rows) => rows.len(),
            MigrationBatch::ShopperWatermarks(rows) => rows.len(),
            MigrationBatch::PendingTidyUps(rows) => rows.len(),
            MigrationBatch::Sessions(rows) => rows.len(),
            MigrationBatch::Tokens(rows) => rows.len(),
            MigrationBatch::SessionTokens(rows) => rows.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key of the last row, where the next batch starts; `None` for an empty batch.
    pub fn last_key(&self) -> Option<MigrationKey> {
        match self {
            MigrationBatch::Clients(rows) => rows.last().map(|r| MigrationKey::Id(r.id.clone())),
            MigrationBatch::Shoppers(rows) => rows.last().map(|r| MigrationKey::Id(r.id.clone())),
            MigrationBatch::ShopperWatermarks(rows) => {
                rows.last().map(|r| MigrationKey::Id(r.user_id.clone()))
            }
            MigrationBatch::PendingTidyUps(rows) => {
                rows.last().map(|r| MigrationKey::Owner(r.owner.clone()))
            }
            MigrationBatch::Sessions(rows) => rows.last().map(|r| MigrationKey::Id(r.id.clone())),
            MigrationBatch::Tokens(rows) => rows.last().map(|r| MigrationKey::Hash(r.hash)),
            MigrationBatch::SessionTokens(rows) => rows.last().map(|r| MigrationKey::Hash(r.hash)),
        }
    }
}

/// Reading a store's rows out and writing another store's rows in, for `migrate-store`.
#[async_trait]
pub trait MigrationStore: Send + Sync {
    /// How many rows of `kind` should move at `now` (see [`MigrationKind`]).
    async fn count_to_move(&self, kind: MigrationKind, now: Timestamp) -> Result<u64, StoreError>;
    /// Up to `limit` rows of `kind` that should move at `now`, in primary-key order,
    /// starting after `after` (from the first row when `None`).
    async fn export_rows(
        &self,
        kind: MigrationKind,
        after: Option<&MigrationKey>,
        now: Timestamp,
        limit: u32,
    ) -> Result<MigrationBatch, StoreError>;
    /// Writes the rows as they are in one transaction, skipping every row whose primary
    /// key (or other unique value) is already taken; returns how many were written.
    async fn import_rows(&self, batch: &MigrationBatch) -> Result<u64, StoreError>;
    /// How many of the rows' primary keys are present.
    async fn count_present(&self, batch: &MigrationBatch) -> Result<u64, StoreError>;
}

/// What [`copy_kind`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows read from the source.
    pub read: u64,
    /// Rows written to the destination (the rest were there already).
    pub written: u64,
}

/// What [`verify_kind`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows of the source that should move.
    pub expected: u64,
    /// How many of their keys the destination has.
    pub present: u64,
}

/// Copies every row of `kind` that should move at `now` from `from` to `to`, `batch` rows
/// per transaction, calling `progress` with the rows read after each batch.
pub async fn copy_kind(
    from: &dyn Store,
    to: &dyn Store,
    kind: MigrationKind,
    now: Timestamp,
    batch: u32,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<CopyReport, StoreError> {
    let mut report = CopyReport::default();
    let mut after = None;
    loop {
        let rows = from
            .export_rows(kind, after.as_ref(), now, batch.max(1))
            .await?;
        if rows.is_empty() {
            return Ok(report);
        }
        report.written += to.import_rows(&rows).await?;
        report.read += rows.len() as u64;
        progress(rows.len() as u64);
        after = rows.last_key();
    }
}

/// Reads every row of `kind` that should move at `now` from `from` again and counts how
/// many of their keys `to` has.
pub async fn verify_kind(
    from: &dyn Store,
    to: &dyn Store,
    kind: MigrationKind,
    now: Timestamp,
    batch: u32,
) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let mut after = None;
    loop {
        let rows = from
            .export_rows(kind, after.as_ref(), now, batch.max(1))
            .await?;
        if rows.is_empty() {
            return Ok(report);
        }
        report.present += to.count_present(&rows).await?;
        report.expected += rows.len() as u64;
        after = rows.last_key();
    }
}
