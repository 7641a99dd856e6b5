//! The logout rule of API.md §4 as one store operation ([`SessionStore::log_out`]): the
//! store finds the presented access token, checks with [`Logout::admits`] that it is
//! live, and ends the whole session if the token is still its newest access token,
//! otherwise only the token.
//!
//! As with the refresh exchange ([`crate::rotation`]), the rule stays in the core and only
//! where it runs changes. A store with a single writer reads the token and writes the end
//! in one job of its write transaction: `DELETE /oauth20/access-tokens` then costs one
//! write and no separate read in front of it, and no other write can come between the
//! check and the end. Any other store takes [`log_out_in_steps`]: a read, then conditional
//! writes of which a parallel logout of the same token cannot win both.
//!
//! [`SessionStore::log_out`]: crate::store::SessionStore::log_out

use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::service::is_live;
use crate::session::TokenLookup;
use crate::store::SessionStore;
use crate::token::{TokenHash, TokenKind};

/// One logout with an access token whose MAC has been checked.
#[derive(Clone, Copy, Debug)]
pub struct Logout {
    /// The hash of the presented access token.
    pub presented: TokenHash,
    /// The time of the logout.
    pub now: Timestamp,
}

/// What a logout ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedOut {
    /// The token's lookup as read, before the logout wrote anything.
    pub found: TokenLookup,
    /// `true`: the token was its session's newest access token, and the whole session
    /// ended. `false`: only the token was revoked.
    pub session_ended: bool,
}

impl Logout {
    /// Whether the row the store found for [`Logout::presented`] may be logged out with:
    /// a live access token. Anything else (a refresh token's row, an expired or revoked
    /// token, an ended session) is refused with nothing written.
    pub fn admits(&self, found: &TokenLookup) -> bool {
        is_live(found, TokenKind::Access, self.now)
    }
}

/// The logout as a read followed by conditional writes, for stores that cannot run it as
/// one job. Both writes match only a session, or a token, not revoked yet: of parallel
/// logouts of one token one wins, and every other finds nothing to end (`None`), as it
/// would had it come after.
pub async fn log_out_in_steps<S>(
    store: &S,
    logout: &Logout,
) -> Result<Option<LoggedOut>, StoreError>
where
    S: SessionStore + ?Sized,
{
    let Some(found) = store.lookup_token(&logout.presented).await? else {
        return Ok(None);
    };
    if !logout.admits(&found) {
        return Ok(None);
    }
    let session_ended = store
        .end_session_if_newest(&found.session.id, &logout.presented, logout.now)
        .await?;
    if !session_ended && !store.revoke_token(&logout.presented, logout.now).await? {
        return Ok(None);
    }
    Ok(Some(LoggedOut {
        found,
        session_ended,
    }))
}
