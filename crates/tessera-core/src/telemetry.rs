//! The core's metrics, through the `metrics` facade: whatever recorder the process installed
//! (Prometheus in `tessera serve`) receives them, and without one they cost next to nothing.
//! Every label value is a literal, so each series' key is a `static` and counting allocates
//! nothing.

/// A grant that issued tokens (`tessera_tokens_issued_total{grant}`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum IssuedBy {
    Anonymous,
    PartnerShopper,
    ClientToken,
    Refresh,
    ShopperLogin,
}

/// What a successful revocation ended (`tessera_tokens_revoked_total{scope}`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Revoked {
    /// A session, through the logout of its newest access token.
    Session,
    /// One access token that was not its session's newest.
    Token,
    /// A session, through the RFC 7009 revocation of its refresh token.
    Refresh,
    /// A session, because one of its consumed refresh tokens was presented again.
    RefreshReuse,
    /// A session an operator ended.
    AdminSession,
    /// Every session of a shopper or client, through a watermark.
    Owner,
}

/// Counts one successful issuance.
pub(crate) fn count_issued(grant: IssuedBy) {
    let counter = match grant {
        IssuedBy::Anonymous => {
            metrics::counter!("tessera_tokens_issued_total", "grant" => "anonymous")
        }
        IssuedBy::PartnerShopper => {
            metrics::counter!("tessera_tokens_issued_total", "grant" => "partner_shopper")
        }
        IssuedBy::ClientToken => {
            metrics::counter!("tessera_tokens_issued_total", "grant" => "client_token")
        }
        IssuedBy::Refresh => metrics::counter!("tessera_tokens_issued_total", "grant" => "refresh"),
        IssuedBy::ShopperLogin => {
            metrics::counter!("tessera_tokens_issued_total", "grant" => "shopper_login")
        }
    };
    counter.increment(1);
}

/// Counts a logout that took effect: it ended its session, or revoked the token alone.
pub(crate) fn count_logout(session_ended: bool) {
    count_revoked(if session_ended {
        Revoked::Session
    } else {
        Revoked::Token
    });
}

/// Counts one revocation that took effect (a write that changed something).
pub(crate) fn count_revoked(scope: Revoked) {
    let counter = match scope {
        Revoked::Session => metrics::counter!("tessera_tokens_revoked_total", "scope" => "session"),
        Revoked::Token => metrics::counter!("tessera_tokens_revoked_total", "scope" => "token"),
        Revoked::Refresh => metrics::counter!("tessera_tokens_revoked_total", "scope" => "refresh"),
        Revoked::RefreshReuse => {
            metrics::counter!("tessera_tokens_revoked_total", "scope" => "refresh_reuse")
        }
        Revoked::AdminSession => {
            metrics::counter!("tessera_tokens_revoked_total", "scope" => "admin_session")
        }
        Revoked::Owner => metrics::counter!("tessera_tokens_revoked_total", "scope" => "owner"),
    };
    counter.increment(1);
}

/// Counts one request refused by a limit (`tessera_limit_trips_total{limit}`).
pub(crate) fn count_limit_trip(limit: crate::limits::Limit) {
    use crate::limits::Limit;
    let counter = match limit {
        Limit::LoginPerUsername => {
            metrics::counter!("tessera_limit_trips_total", "limit" => "login_per_username")
        }
        Limit::LoginPerClientAddress => {
            metrics::counter!("tessera_limit_trips_total", "limit" => "login_per_client_address")
        }
        Limit::ClientAuthPerClientAddress => metrics::counter!(
            "tessera_limit_trips_total",
            "limit" => "client_auth_per_client_address"
        ),
        Limit::ClientAuthPerAddress => {
            metrics::counter!("tessera_limit_trips_total", "limit" => "client_auth_per_address")
        }
        Limit::RatePerClient => {
            metrics::counter!("tessera_limit_trips_total", "limit" => "rate_per_client")
        }
        Limit::RatePerAddress => {
            metrics::counter!("tessera_limit_trips_total", "limit" => "rate_per_address")
        }
    };
    counter.increment(1);
}
