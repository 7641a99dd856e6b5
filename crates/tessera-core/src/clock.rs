//! What time it is. Every rule that depends on time asks a [`Clock`] passed in, so tests can
//! drive expiry with a [`ManualClock`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::iso8601::{self, EncodedConfig, Iso8601};

/// Milliseconds since the Unix epoch, UTC. Stored as-is by every backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

const ISO_MILLIS: EncodedConfig = iso8601::Config::DEFAULT
    .set_time_precision(iso8601::TimePrecision::Second {
        decimal_digits: std::num::NonZeroU8::new(3),
    })
    .encode();

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (RFC 7662 `exp` and `iat`).
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant plus a number of seconds, saturating rather than overflowing.
    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(1000)))
    }

    /// Whole seconds from `self` until `later`, never negative.
    pub fn seconds_until(self, later: Timestamp) -> i64 {
        (later.0.saturating_sub(self.0)).max(0) / 1000
    }

    /// ISO-8601 in UTC with milliseconds, e.g. `2026-11-27T11:41:52.123Z`.
    pub fn to_iso8601(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&Iso8601::<ISO_MILLIS>).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp(i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to; cheap to clone, all clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.0)))
    }

    /// Moves the clock forward.
    pub fn advance_seconds(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_iso8601_with_milliseconds_in_utc() {
        assert_eq!(
            Timestamp(1_795_866_112_123).to_iso8601(),
            "2026-11-28T11:41:52.123Z"
        );
        assert_eq!(Timestamp(0).to_iso8601(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn seconds_until_never_goes_negative() {
        assert_eq!(Timestamp(5_000).seconds_until(Timestamp(1_000)), 0);
        assert_eq!(Timestamp(1_000).seconds_until(Timestamp(4_999)), 3);
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new(Timestamp(10_000));
        assert_eq!(clock.now(), Timestamp(10_000));
        clock.advance_seconds(5);
        assert_eq!(clock.now(), Timestamp(15_000));
    }
}
