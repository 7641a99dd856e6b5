//! Failed-login limits (RELIABILITY P12): at most a configured number of failed shopper
//! logins per username, and per client and peer address, in any one hour, timed by the
//! injected [`Clock`](crate::Clock) so tests drive them with a manual clock.
//!
//! Each limiter keeps, per key, the times of the failures of the last hour and the number
//! of attempts in flight. An attempt *reserves* a place before the password is verified
//! (so a limited key costs no Argon2 work, and concurrent attempts cannot overshoot the
//! limit), and then either records a failure or gives the place back: only failures count.
//! A key may be admitted while `failures + in_flight < limit`, so in any one-hour window at
//! most `limit` failures are admitted, exactly, and each failure stops counting one hour
//! after it happened.
//!
//! Why not the `governor` crate: its GCRA cannot reserve a cell and give it back, so either
//! successful logins would be charged too, or attempts checked concurrently would all pass
//! before any failure was recorded. And its "N per hour" admits a burst of N and then one
//! more every hour/N, up to 2N - 1 in the first hour, where the promise is at most N.
//!
//! Keys are SHA-256 digests (a long username costs 32 bytes here), and a key is forgotten
//! once its last failure is an hour old: a sweep every minute of clock time drops such
//! keys. So the tables hold at most the failures of the last hour, which the password
//! verifier's bounded concurrency (each failure costs one Argon2id verification) bounds in
//! turn, plus the attempts in flight.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::service::ServiceConfig;

/// The window a limit counts failures over.
const WINDOW_MILLIS: i64 = 3_600_000;

/// How often (in clock time) a limiter drops keys whose failures have all expired.
const SWEEP_INTERVAL_MILLIS: i64 = 60_000;

/// What a limiter keys on: a digest, so keys have a fixed size whatever was sent.
type LimitKey = [u8; 32];

fn key(kind: &str, parts: &[&str]) -> LimitKey {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    for part in parts {
        // Length-prefixed, so no two different tuples hash the same input.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// One key's recent failures and attempts in flight.
#[derive(Debug, Default)]
struct Window {
    /// Times of the failures not yet an hour old, oldest first.
    failures: VecDeque<Timestamp>,
    /// Reserved attempts not yet settled.
    in_flight: usize,
}

impl Window {
    /// Forgets failures that are an hour old or older.
    fn expire(&mut self, now: Timestamp) {
        while self
            .failures
            .front()
            .is_some_and(|at| at.millis() + WINDOW_MILLIS <= now.millis())
        {
            self.failures.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.failures.is_empty() && self.in_flight == 0
    }

    /// Whole seconds until an attempt would be admitted, given that it is not now.
    fn retry_after_seconds(&self, limit: usize, now: Timestamp) -> u64 {
        // This many places must free up before one is available.
        let needed = self.failures.len() + self.in_flight + 1 - limit;
        let Some(freed_at) = self.failures.get(needed - 1) else {
            // Attempts in flight hold the places; they settle within moments.
            return 1;
        };
        let millis = (freed_at.millis() + WINDOW_MILLIS - now.millis()).max(1);
        u64::try_from(millis).map_or(1, |m| m.div_ceil(1000))
    }
}

#[derive(Debug)]
struct State {
    windows: HashMap<LimitKey, Window>,
    next_sweep: Option<Timestamp>,
}

/// At most `limit` failures per key in any one hour.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    limit: usize,
    state: Mutex<State>,
}

impl FailureLimiter {
    /// A limiter admitting `limit` failures per key per hour (at least one).
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit: usize::try_from(limit.max(1)).unwrap_or(usize::MAX),
            state: Mutex::new(State {
                windows: HashMap::new(),
                next_sweep: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it: every change is
        // a single counter or queue operation.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves a place for an attempt, or says in how many seconds one may be had.
    fn reserve(&self, key: &LimitKey, now: Timestamp) -> Result<(), u64> {
        let mut state = self.lock();
        state.sweep(now);
        let window = state.windows.entry(*key).or_default();
        window.expire(now);
        if window.failures.len() + window.in_flight >= self.limit {
            return Err(window.retry_after_seconds(self.limit, now));
        }
        window.in_flight += 1;
        Ok(())
    }

    /// Settles a reserved attempt: a failure at `now` counts for the next hour; anything
    /// else gives the place back.
    fn settle(&self, key: &LimitKey, failed_at: Option<Timestamp>) {
        let mut state = self.lock();
        let Some(window) = state.windows.get_mut(key) else {
            return;
        };
        window.in_flight = window.in_flight.saturating_sub(1);
        if let Some(at) = failed_at {
            // Kept in order even if the clock stepped back: a failure then counts a little
            // longer, never shorter.
            let at = window.failures.back().map_or(at, |last| at.max(*last));
            window.failures.push_back(at);
        }
        if window.is_empty() {
            state.windows.remove(key);
        }
    }

    #[cfg(test)]
    fn tracked_keys(&self) -> usize {
        self.lock().windows.len()
    }
}

impl State {
    /// Drops keys with nothing left to count, at most once a minute of clock time.
    fn sweep(&mut self, now: Timestamp) {
        if self.next_sweep.is_some_and(|next| now < next) {
            return;
        }
        self.next_sweep = Some(now.plus_seconds(SWEEP_INTERVAL_MILLIS / 1000));
        self.windows.retain(|_, window| {
            window.expire(now);
            !window.is_empty()
        });
        if self.windows.capacity() > 64 && self.windows.capacity() > 4 * self.windows.len() {
            self.windows.shrink_to_fit();
        }
    }
}

/// The two limits on failed shopper logins.
#[derive(Debug)]
pub(crate) struct LoginLimits {
    per_username: FailureLimiter,
    per_client_address: FailureLimiter,
}

impl LoginLimits {
    /// The limits `config` sets.
    pub(crate) fn new(config: &ServiceConfig) -> Self {
        Self {
            per_username: FailureLimiter::new(config.login_failures_per_hour_per_username),
            per_client_address: FailureLimiter::new(
                config.login_failures_per_hour_per_client_address,
            ),
        }
    }

    /// Reserves a login attempt for `username` (already normalised) by `client_id` from
    /// `address`, or says how many whole seconds to wait: the longer of the two waits when
    /// both limits are reached.
    pub(crate) fn reserve(
        &self,
        username: &str,
        client_id: &str,
        address: &str,
        now: Timestamp,
    ) -> Result<LoginAttempt<'_>, u64> {
        let username = key("username", &[username]);
        let client_address = key("client-address", &[client_id, address]);
        let by_username = self.per_username.reserve(&username, now);
        let by_client_address = self.per_client_address.reserve(&client_address, now);
        match (by_username, by_client_address) {
            (Ok(()), Ok(())) => Ok(LoginAttempt {
                limits: self,
                username,
                client_address,
                settled: false,
            }),
            (Ok(()), Err(wait)) => {
                self.per_username.settle(&username, None);
                Err(wait)
            }
            (Err(wait), Ok(())) => {
                self.per_client_address.settle(&client_address, None);
                Err(wait)
            }
            (Err(a), Err(b)) => Err(a.max(b)),
        }
    }
}

/// A reserved login attempt. Settle it with [`LoginAttempt::failed`] or
/// [`LoginAttempt::succeeded`]; dropped unsettled (a store error, a cancelled request) it
/// gives its place back, since no password was found wrong.
#[derive(Debug)]
pub(crate) struct LoginAttempt<'a> {
    limits: &'a LoginLimits,
    username: LimitKey,
    client_address: LimitKey,
    settled: bool,
}

impl LoginAttempt<'_> {
    /// The password was wrong (or the shopper unknown): count a failure at `now` against
    /// both limits.
    pub(crate) fn failed(mut self, now: Timestamp) {
        self.settle(Some(now));
    }

    /// The shopper logged in: nothing is counted.
    pub(crate) fn succeeded(mut self) {
        self.settle(None);
    }

    fn settle(&mut self, failed_at: Option<Timestamp>) {
        if self.settled {
            return;
        }
        self.settled = true;
        self.limits.per_username.settle(&self.username, failed_at);
        self.limits
            .per_client_address
            .settle(&self.client_address, failed_at);
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        self.settle(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_780_000_000_000);

    fn at(seconds: i64) -> Timestamp {
        T0.plus_seconds(seconds)
    }

    fn limits(per_username: u32, per_client_address: u32) -> LoginLimits {
        let mut config = ServiceConfig::new("test");
        config.login_failures_per_hour_per_username = per_username;
        config.login_failures_per_hour_per_client_address = per_client_address;
        LoginLimits::new(&config)
    }

    fn fail(limits: &LoginLimits, username: &str, address: &str, now: Timestamp) {
        match limits.reserve(username, "client", address, now) {
            Ok(attempt) => attempt.failed(now),
            Err(wait) => panic!("attempt refused, retry after {wait} s"),
        }
    }

    #[test]
    fn exactly_the_limit_of_failures_is_admitted_per_username_per_hour() {
        let limits = limits(3, 100);
        for second in 0..3 {
            fail(&limits, "ann", "192.0.2.1", at(second * 600));
        }
        // The oldest failure (at 0 s) frees its place at 3600 s.
        assert_eq!(
            limits.reserve("ann", "client", "192.0.2.9", at(1800)).err(),
            Some(1800)
        );
        assert_eq!(
            limits.reserve("ann", "client", "192.0.2.9", at(3599)).err(),
            Some(1)
        );
        // Another username is not affected.
        assert!(
            limits
                .reserve("bob", "client", "192.0.2.1", at(1800))
                .is_ok()
        );
        // An hour after the first failure, exactly one place is free again.
        fail(&limits, "ann", "192.0.2.1", at(3600));
        assert_eq!(
            limits.reserve("ann", "client", "192.0.2.1", at(3600)).err(),
            Some(600)
        );
    }

    #[test]
    fn successes_and_abandoned_attempts_count_nothing() {
        let limits = limits(2, 100);
        for _ in 0..10 {
            let attempt = limits.reserve("ann", "client", "192.0.2.1", at(0));
            assert!(attempt.is_ok());
            if let Ok(attempt) = attempt {
                attempt.succeeded();
            }
        }
        for _ in 0..10 {
            let attempt = limits.reserve("ann", "client", "192.0.2.1", at(0));
            assert!(attempt.is_ok());
            drop(attempt);
        }
        fail(&limits, "ann", "192.0.2.1", at(0));
        fail(&limits, "ann", "192.0.2.1", at(0));
        assert!(limits.reserve("ann", "client", "192.0.2.1", at(0)).is_err());
    }

    #[test]
    fn attempts_in_flight_hold_their_places() {
        let limits = limits(2, 100);
        let first = limits.reserve("ann", "client", "192.0.2.1", at(0));
        let second = limits.reserve("ann", "client", "192.0.2.2", at(0));
        assert!(first.is_ok() && second.is_ok());
        // Both places are reserved: a third concurrent attempt waits for them to settle.
        assert_eq!(
            limits.reserve("ann", "client", "192.0.2.3", at(0)).err(),
            Some(1)
        );
        if let Ok(first) = first {
            first.succeeded();
        }
        assert!(limits.reserve("ann", "client", "192.0.2.3", at(0)).is_ok());
    }

    #[test]
    fn the_client_and_address_limit_counts_over_all_usernames() {
        let limits = limits(100, 3);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            fail(&limits, name, "192.0.2.1", at(i as i64));
        }
        assert_eq!(
            limits.reserve("d", "client", "192.0.2.1", at(10)).err(),
            Some(3590)
        );
        // Another address, or another client from the same address, is not affected.
        assert!(limits.reserve("d", "client", "192.0.2.2", at(10)).is_ok());
        assert!(limits.reserve("d", "other", "192.0.2.1", at(10)).is_ok());
    }

    #[test]
    fn a_refusal_by_one_limit_reserves_nothing_in_the_other() {
        let refused = limits(1, 1);
        fail(&refused, "x", "192.0.2.1", at(0));
        assert!(refused.reserve("y", "client", "192.0.2.1", at(0)).is_err());
        assert!(refused.reserve("y", "client", "192.0.2.2", at(0)).is_ok());
    }

    #[test]
    fn when_both_limits_are_reached_the_longer_wait_is_given() {
        let limits = limits(1, 2);
        fail(&limits, "bob", "192.0.2.1", at(0));
        fail(&limits, "ann", "192.0.2.1", at(1000));
        assert_eq!(
            limits.reserve("ann", "client", "192.0.2.1", at(1000)).err(),
            Some(3600)
        );
    }

    #[test]
    fn keys_whose_failures_expired_are_forgotten() {
        let limits = limits(5, 1000);
        for i in 0..50 {
            fail(&limits, &format!("user-{i}"), "192.0.2.1", at(0));
        }
        assert_eq!(limits.per_username.tracked_keys(), 50);
        assert_eq!(limits.per_client_address.tracked_keys(), 1);
        // The next reservation after an hour sweeps every expired key away.
        let attempt = limits.reserve("new", "client", "192.0.2.1", at(3600));
        assert!(attempt.is_ok());
        assert_eq!(limits.per_username.tracked_keys(), 1);
        assert_eq!(limits.per_client_address.tracked_keys(), 1);
        // Settled without a failure, it leaves nothing behind.
        drop(attempt);
        assert_eq!(limits.per_username.tracked_keys(), 0);
        assert_eq!(limits.per_client_address.tracked_keys(), 0);
    }

    #[test]
    fn keys_do_not_collide_across_parts() {
        assert_ne!(
            key("client-address", &["ab", "c"]),
            key("client-address", &["a", "bc"])
        );
        assert_ne!(key("username", &["x"]), key("client-address", &["x"]));
    }
}
