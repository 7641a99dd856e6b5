//! Limits (RELIABILITY P12). Failure limits: at most a configured number of failed shopper
//! logins per username, and per client and peer address, and of failed client
//! authentications per presented client id and address, and per address, in any one hour,
//! timed by the injected [`Clock`](crate::Clock) so tests drive them with a manual clock.
//! Request-rate limits (`RateLimits`, `governor`), off unless configured. And the one
//! report of every refusal (`report`): an audit event and a metric.
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
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::service::ServiceConfig;

/// The window a limit counts failures over.
const WINDOW_MILLIS: i64 = 3_600_000;

/// How often (in clock time) a limiter drops keys whose failures have all expired.
const SWEEP_INTERVAL_MILLIS: i64 = 60_000;

/// The most keys one limiter tracks (about 150 MiB). Past it, attempts under new keys are
/// admitted without being tracked: a node must not run out of memory because an attacker
/// has many addresses, and what such an attacker gains is untracked guesses.
const MAX_TRACKED_KEYS: usize = 1 << 20;

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

/// The keys one client authentication counts under: the presented `client_id` (known or
/// not: the answer must not tell) with the address, and the address alone. Computed once
/// per authentication, for its check before the store is read and its reservation after.
pub(crate) struct ClientAuthKeys([LimitKey; 2]);

impl ClientAuthKeys {
    pub(crate) fn new(client_id: &str, address: &str) -> Self {
        Self([
            key("client-address", &[client_id, address]),
            key("address", &[address]),
        ])
    }
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

    /// Whether another attempt fits under `limit` now, once failures an hour old are
    /// forgotten, or in how many seconds one will.
    fn room(&mut self, limit: usize, now: Timestamp) -> Result<(), u64> {
        self.expire(now);
        if self.failures.len() + self.in_flight >= limit {
            return Err(self.retry_after_seconds(limit, now));
        }
        Ok(())
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
    /// Whether the log has said, since the last sweep, that the limiter is full.
    told_full: bool,
}

/// At most `limit` failures per key in any one hour.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    limit: usize,
    max_keys: usize,
    state: Mutex<State>,
}

impl FailureLimiter {
    /// A limiter admitting `limit` failures per key per hour (at least one).
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit: usize::try_from(limit.max(1)).unwrap_or(usize::MAX),
            max_keys: MAX_TRACKED_KEYS,
            state: Mutex::new(State {
                windows: HashMap::new(),
                next_sweep: None,
                told_full: false,
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
        if state.windows.len() >= self.max_keys && !state.windows.contains_key(key) {
            // Untracked: its settlement finds no window and counts nothing.
            if !state.told_full {
                state.told_full = true;
                tracing::warn!(
                    tracked = state.windows.len(),
                    "a failure limiter is full; attempts under new keys go untracked"
                );
            }
            return Ok(());
        }
        let window = state.windows.entry(*key).or_default();
        window.room(self.limit, now)?;
        window.in_flight += 1;
        Ok(())
    }

    /// Whether an attempt under `key` would be admitted now, or in how many seconds one
    /// may be: what [`Self::reserve`] would say, without reserving (an untracked key is
    /// not tracked by asking).
    fn admits(&self, key: &LimitKey, now: Timestamp) -> Result<(), u64> {
        self.lock()
            .windows
            .get_mut(key)
            .map_or(Ok(()), |window| window.room(self.limit, now))
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
        self.told_full = false;
        self.windows.retain(|_, window| {
            window.expire(now);
            !window.is_empty()
        });
        if self.windows.capacity() > 64 && self.windows.capacity() > 4 * self.windows.len() {
            self.windows.shrink_to_fit();
        }
    }
}

/// A limit that can refuse a request: the `limit` of the audit event and of
/// `tessera_limit_trips_total` when it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Failed shopper logins per (normalised) username.
    LoginPerUsername,
    /// Failed shopper logins per client and peer address, over all usernames.
    LoginPerClientAddress,
    /// Failed client authentications per presented client id and peer address.
    ClientAuthPerClientAddress,
    /// Failed client authentications per peer address, over all client ids.
    ClientAuthPerAddress,
    /// Requests per authenticated client (token, introspection, revocation).
    RatePerClient,
    /// Requests per peer address (token, introspection, revocation).
    RatePerAddress,
}

impl Limit {
    /// Every limit, in the order names are listed.
    pub const ALL: [Limit; 6] = [
        Limit::LoginPerUsername,
        Limit::LoginPerClientAddress,
        Limit::ClientAuthPerClientAddress,
        Limit::ClientAuthPerAddress,
        Limit::RatePerClient,
        Limit::RatePerAddress,
    ];

    /// The name in audit events and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Limit::LoginPerUsername => "login_per_username",
            Limit::LoginPerClientAddress => "login_per_client_address",
            Limit::ClientAuthPerClientAddress => "client_auth_per_client_address",
            Limit::ClientAuthPerAddress => "client_auth_per_address",
            Limit::RatePerClient => "rate_per_client",
            Limit::RatePerAddress => "rate_per_address",
        }
    }
}

/// A request a limit refused, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The limit that refused (the one with the longer wait when two did).
    pub limit: Limit,
    /// Whole seconds until a request may be admitted again (at least 1).
    pub retry_after_seconds: u64,
}

/// Tells of a refusal: one audit event and one count.
pub(crate) fn report(refusal: Refusal, client_id: &str, peer: &str) {
    crate::audit::limit_tripped(
        refusal.limit.name(),
        client_id,
        peer,
        refusal.retry_after_seconds,
    );
    crate::telemetry::count_limit_trip(refusal.limit);
}

/// Two failure limiters checked together: an attempt is admitted only when both have a
/// place, and then holds a place in both until it settles.
#[derive(Debug)]
pub(crate) struct FailureLimits {
    limiters: [(Limit, FailureLimiter); 2],
}

impl FailureLimits {
    /// The two limits on failed shopper logins that `config` sets: per username, and per
    /// client and address.
    pub(crate) fn login(config: &ServiceConfig) -> Self {
        Self {
            limiters: [
                (
                    Limit::LoginPerUsername,
                    FailureLimiter::new(config.login_failures_per_hour_per_username),
                ),
                (
                    Limit::LoginPerClientAddress,
                    FailureLimiter::new(config.login_failures_per_hour_per_client_address),
                ),
            ],
        }
    }

    /// The two limits on failed client authentications that `config` sets: per presented
    /// client id and address, and per address over all client ids.
    pub(crate) fn client_authentication(config: &ServiceConfig) -> Self {
        Self {
            limiters: [
                (
                    Limit::ClientAuthPerClientAddress,
                    FailureLimiter::new(config.client_auth_failures_per_hour_per_client_address),
                ),
                (
                    Limit::ClientAuthPerAddress,
                    FailureLimiter::new(config.client_auth_failures_per_hour_per_address),
                ),
            ],
        }
    }

    /// Reserves a login attempt for `username` (already normalised) by `client_id` from
    /// `address`, or says how many whole seconds to wait: the longer of the two waits when
    /// both limits are reached.
    pub(crate) fn reserve_login(
        &self,
        username: &str,
        client_id: &str,
        address: &str,
        now: Timestamp,
    ) -> Result<Attempt<'_>, Refusal> {
        self.reserve(
            [
                key("username", &[username]),
                key("client-address", &[client_id, address]),
            ],
            now,
        )
    }

    /// Reserves a client authentication under `keys`.
    pub(crate) fn reserve_client_authentication(
        &self,
        keys: &ClientAuthKeys,
        now: Timestamp,
    ) -> Result<Attempt<'_>, Refusal> {
        self.reserve(keys.0, now)
    }

    /// Whether a client authentication under `keys` would be admitted now, reserving
    /// nothing: the same answer as [`Self::reserve_client_authentication`], without
    /// adding and removing a place in both limiters.
    pub(crate) fn check_client_authentication(
        &self,
        keys: &ClientAuthKeys,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let [(_, first), (_, second)] = &self.limiters;
        let [first_key, second_key] = &keys.0;
        self.refusal(first.admits(first_key, now), second.admits(second_key, now))
    }

    fn reserve(&self, keys: [LimitKey; 2], now: Timestamp) -> Result<Attempt<'_>, Refusal> {
        let [(_, first), (_, second)] = &self.limiters;
        let reserved = (first.reserve(&keys[0], now), second.reserve(&keys[1], now));
        match reserved {
            (Ok(()), Ok(())) => {}
            (Ok(()), Err(_)) => first.settle(&keys[0], None),
            (Err(_), Ok(())) => second.settle(&keys[1], None),
            (Err(_), Err(_)) => {}
        }
        self.refusal(reserved.0, reserved.1).map(|()| Attempt {
            limits: self,
            keys,
            settled: false,
        })
    }

    /// The refusal of the two limiters' answers, if either refused: the one with the
    /// longer wait when both did.
    fn refusal(&self, first: Result<(), u64>, second: Result<(), u64>) -> Result<(), Refusal> {
        let [(first_limit, _), (second_limit, _)] = &self.limiters;
        let refusal = |limit: &Limit, retry_after_seconds| Refusal {
            limit: *limit,
            retry_after_seconds,
        };
        match (first, second) {
            (Ok(()), Ok(())) => Ok(()),
            (Ok(()), Err(wait)) => Err(refusal(second_limit, wait)),
            (Err(wait), Ok(())) => Err(refusal(first_limit, wait)),
            (Err(a), Err(b)) if b > a => Err(refusal(second_limit, b)),
            (Err(a), Err(_)) => Err(refusal(first_limit, a)),
        }
    }
}

/// A reserved attempt. Settle it with [`Attempt::failed`] or [`Attempt::succeeded`];
/// dropped unsettled (a store error, a cancelled request) it gives its places back, since
/// nothing was found wrong.
#[derive(Debug)]
pub(crate) struct Attempt<'a> {
    limits: &'a FailureLimits,
    keys: [LimitKey; 2],
    settled: bool,
}

impl Attempt<'_> {
    /// The credentials were wrong (or named no one): count a failure at `now` against
    /// both limits.
    pub(crate) fn failed(mut self, now: Timestamp) {
        self.settle(Some(now));
    }

    /// The credentials were right: nothing is counted.
    pub(crate) fn succeeded(mut self) {
        self.settle(None);
    }

    fn settle(&mut self, failed_at: Option<Timestamp>) {
        if self.settled {
            return;
        }
        self.settled = true;
        for ((_, limiter), key) in self.limits.limiters.iter().zip(&self.keys) {
            limiter.settle(key, failed_at);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.settle(None);
    }
}

/// A request rate: `per_second` on average, with bursts of up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestRate {
    /// Requests admitted per second, sustained.
    pub per_second: NonZeroU32,
    /// Requests admitted at once after a quiet spell.
    pub burst: NonZeroU32,
}

type KeyedLimiter = governor::DefaultKeyedRateLimiter<String>;

/// How many checks pass between sweeps of keys whose limit has fully recovered.
const RATE_SWEEP_EVERY: u64 = 4096;

/// Plain request-rate limits (GCRA, from `governor`): per authenticated client and per
/// peer address, each off unless configured. Unlike the failure limits, these count every
/// request, and run on the monotonic clock of the process.
#[derive(Debug)]
pub(crate) struct RateLimits {
    per_client: Option<KeyedLimiter>,
    per_address: Option<KeyedLimiter>,
    checks: AtomicU64,
}

impl RateLimits {
    /// The rate limits `config` sets.
    pub(crate) fn new(config: &ServiceConfig) -> Self {
        let limiter = |rate: Option<RequestRate>| {
            rate.map(|rate| {
                governor::RateLimiter::keyed(
                    governor::Quota::per_second(rate.per_second).allow_burst(rate.burst),
                )
            })
        };
        Self {
            per_client: limiter(config.requests_per_client),
            per_address: limiter(config.requests_per_address),
            checks: AtomicU64::new(0),
        }
    }

    /// Admits one request from `address`, or refuses it.
    pub(crate) fn check_address(&self, address: &str) -> Result<(), Refusal> {
        self.check(self.per_address.as_ref(), Limit::RatePerAddress, address)
    }

    /// Admits one request of the authenticated client `client_id`, or refuses it.
    pub(crate) fn check_client(&self, client_id: &str) -> Result<(), Refusal> {
        self.check(self.per_client.as_ref(), Limit::RatePerClient, client_id)
    }

    fn check(
        &self,
        limiter: Option<&KeyedLimiter>,
        limit: Limit,
        key: &str,
    ) -> Result<(), Refusal> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % RATE_SWEEP_EVERY == RATE_SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        let key = key.to_owned();
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
            Refusal {
                limit,
                retry_after_seconds: whole_seconds_at_least_one(wait),
            }
        })
    }
}

/// `Retry-After` in whole seconds, rounded up: never 0, which would invite an immediate
/// retry that is refused again.
fn whole_seconds_at_least_one(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_780_000_000_000);

    fn at(seconds: i64) -> Timestamp {
        T0.plus_seconds(seconds)
    }

    fn limits(per_username: u32, per_client_address: u32) -> FailureLimits {
        let mut config = ServiceConfig::new("test");
        config.login_failures_per_hour_per_username = per_username;
        config.login_failures_per_hour_per_client_address = per_client_address;
        FailureLimits::login(&config)
    }

    fn fail(limits: &FailureLimits, username: &str, address: &str, now: Timestamp) {
        match limits.reserve_login(username, "client", address, now) {
            Ok(attempt) => attempt.failed(now),
            Err(refusal) => panic!("attempt refused: {refusal:?}"),
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
            limits
                .reserve_login("ann", "client", "192.0.2.9", at(1800))
                .err()
                .map(|r| r.retry_after_seconds),
            Some(1800)
        );
        assert_eq!(
            limits
                .reserve_login("ann", "client", "192.0.2.9", at(3599))
                .err()
                .map(|r| r.retry_after_seconds),
            Some(1)
        );
        // Another username is not affected.
        assert!(
            limits
                .reserve_login("bob", "client", "192.0.2.1", at(1800))
                .is_ok()
        );
        // An hour after the first failure, exactly one place is free again.
        fail(&limits, "ann", "192.0.2.1", at(3600));
        assert_eq!(
            limits
                .reserve_login("ann", "client", "192.0.2.1", at(3600))
                .err()
                .map(|r| r.retry_after_seconds),
            Some(600)
        );
    }

    #[test]
    fn successes_and_abandoned_attempts_count_nothing() {
        let limits = limits(2, 100);
        for _ in 0..10 {
            let attempt = limits.reserve_login("ann", "client", "192.0.2.1", at(0));
            assert!(attempt.is_ok());
            if let Ok(attempt) = attempt {
                attempt.succeeded();
            }
        }
        for _ in 0..10 {
            let attempt = limits.reserve_login("ann", "client", "192.0.2.1", at(0));
            assert!(attempt.is_ok());
            drop(attempt);
        }
        fail(&limits, "ann", "192.0.2.1", at(0));
        fail(&limits, "ann", "192.0.2.1", at(0));
        assert!(
            limits
                .reserve_login("ann", "client", "192.0.2.1", at(0))
                .is_err()
        );
    }

    #[test]
    fn attempts_in_flight_hold_their_places() {
        let limits = limits(2, 100);
        let first = limits.reserve_login("ann", "client", "192.0.2.1", at(0));
        let second = limits.reserve_login("ann", "client", "192.0.2.2", at(0));
        assert!(first.is_ok() && second.is_ok());
        // Both places are reserved: a third concurrent attempt waits for them to settle.
        assert_eq!(
            limits
                .reserve_login("ann", "client", "192.0.2.3", at(0))
                .err()
                .map(|r| r.retry_after_seconds),
            Some(1)
        );
        if let Ok(first) = first {
            first.succeeded();
        }
        assert!(
            limits
                .reserve_login("ann", "client", "192.0.2.3", at(0))
                .is_ok()
        );
    }

    #[test]
    fn the_client_and_address_limit_counts_over_all_usernames() {
        let limits = limits(100, 3);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            fail(&limits, name, "192.0.2.1", at(i as i64));
        }
        assert_eq!(
            limits
                .reserve_login("d", "client", "192.0.2.1", at(10))
                .err()
                .map(|r| r.retry_after_seconds),
            Some(3590)
        );
        // Another address, or another client from the same address, is not affected.
        assert!(
            limits
                .reserve_login("d", "client", "192.0.2.2", at(10))
                .is_ok()
        );
        assert!(
            limits
                .reserve_login("d", "other", "192.0.2.1", at(10))
                .is_ok()
        );
    }

    #[test]
    fn a_refusal_by_one_limit_reserves_nothing_in_the_other() {
        let refused = limits(1, 1);
        fail(&refused, "x", "192.0.2.1", at(0));
        assert!(
            refused
                .reserve_login("y", "client", "192.0.2.1", at(0))
                .is_err()
        );
        assert!(
            refused
                .reserve_login("y", "client", "192.0.2.2", at(0))
                .is_ok()
        );
    }

    #[test]
    fn when_both_limits_are_reached_the_longer_wait_is_given() {
        let limits = limits(1, 2);
        fail(&limits, "bob", "192.0.2.1", at(0));
        fail(&limits, "ann", "192.0.2.1", at(1000));
        assert_eq!(
            limits
                .reserve_login("ann", "client", "192.0.2.1", at(1000))
                .err()
                .map(|r| r.retry_after_seconds),
            Some(3600)
        );
    }

    #[test]
    fn keys_whose_failures_expired_are_forgotten() {
        let limits = limits(5, 1000);
        for i in 0..50 {
            fail(&limits, &format!("user-{i}"), "192.0.2.1", at(0));
        }
        assert_eq!(limits.limiters[0].1.tracked_keys(), 50);
        assert_eq!(limits.limiters[1].1.tracked_keys(), 1);
        // The next reservation after an hour sweeps every expired key away.
        let attempt = limits.reserve_login("new", "client", "192.0.2.1", at(3600));
        assert!(attempt.is_ok());
        assert_eq!(limits.limiters[0].1.tracked_keys(), 1);
        assert_eq!(limits.limiters[1].1.tracked_keys(), 1);
        // Settled without a failure, it leaves nothing behind.
        drop(attempt);
        assert_eq!(limits.limiters[0].1.tracked_keys(), 0);
        assert_eq!(limits.limiters[1].1.tracked_keys(), 0);
    }

    #[test]
    fn the_longer_wait_names_its_limit() {
        let limits = limits(1, 2);
        fail(&limits, "bob", "192.0.2.1", at(0));
        fail(&limits, "ann", "192.0.2.1", at(1000));
        assert_eq!(
            limits
                .reserve_login("ann", "client", "192.0.2.1", at(1000))
                .err(),
            Some(Refusal {
                limit: Limit::LoginPerUsername,
                retry_after_seconds: 3600
            })
        );
        assert_eq!(
            limits
                .reserve_login("carol", "client", "192.0.2.1", at(1000))
                .err(),
            Some(Refusal {
                limit: Limit::LoginPerClientAddress,
                retry_after_seconds: 2600
            })
        );
    }

    fn client_auth(per_client_address: u32, per_address: u32) -> FailureLimits {
        let mut config = ServiceConfig::new("test");
        config.client_auth_failures_per_hour_per_client_address = per_client_address;
        config.client_auth_failures_per_hour_per_address = per_address;
        FailureLimits::client_authentication(&config)
    }

    #[test]
    fn client_authentication_failures_are_limited_per_client_and_address_then_per_address() {
        let limits = client_auth(2, 3);
        let fail_auth = |client: &str, address: &str, now: Timestamp| match limits
            .reserve_client_authentication(&ClientAuthKeys::new(client, address), now)
        {
            Ok(attempt) => attempt.failed(now),
            Err(refusal) => panic!("refused: {refusal:?}"),
        };
        fail_auth("known", "192.0.2.1", at(0));
        fail_auth("known", "192.0.2.1", at(10));
        assert_eq!(
            limits
                .reserve_client_authentication(&ClientAuthKeys::new("known", "192.0.2.1"), at(20))
                .err(),
            Some(Refusal {
                limit: Limit::ClientAuthPerClientAddress,
                retry_after_seconds: 3580
            })
        );
        // Another address with the same client id is not affected, and successes count
        // nothing.
        for _ in 0..5 {
            let keys = ClientAuthKeys::new("known", "192.0.2.2");
            match limits.reserve_client_authentication(&keys, at(20)) {
                Ok(attempt) => attempt.succeeded(),
                Err(refusal) => panic!("refused: {refusal:?}"),
            }
        }
        // A third client id from the first address trips the per-address limit.
        fail_auth("scanned-1", "192.0.2.1", at(30));
        assert_eq!(
            limits
                .reserve_client_authentication(
                    &ClientAuthKeys::new("scanned-2", "192.0.2.1"),
                    at(40)
                )
                .err()
                .map(|r| r.limit),
            Some(Limit::ClientAuthPerAddress)
        );
    }

    #[test]
    fn a_client_authentication_check_answers_as_a_reservation_would_and_reserves_nothing() {
        let limits = client_auth(2, 3);
        let keys = ClientAuthKeys::new("known", "192.0.2.1");
        let tracked = || {
            limits
                .limiters
                .iter()
                .map(|(_, l)| l.tracked_keys())
                .sum::<usize>()
        };
        let reserve = |now: Timestamp| match limits.reserve_client_authentication(&keys, now) {
            Ok(attempt) => attempt,
            Err(refusal) => panic!("refused: {refusal:?}"),
        };

        assert_eq!(limits.check_client_authentication(&keys, at(0)), Ok(()));
        assert_eq!(tracked(), 0, "a check of an untracked key tracks it");

        // One failure and one attempt in flight fill the per-client-and-address limit.
        reserve(at(0)).failed(at(0));
        let in_flight = reserve(at(1));
        let checked = limits.check_client_authentication(&keys, at(2));
        assert_eq!(
            checked,
            Err(Refusal {
                limit: Limit::ClientAuthPerClientAddress,
                retry_after_seconds: 3598
            })
        );
        assert_eq!(
            checked.err(),
            limits.reserve_client_authentication(&keys, at(2)).err()
        );

        // The attempt in flight gives its place back; the check held none.
        in_flight.succeeded();
        assert_eq!(limits.check_client_authentication(&keys, at(3)), Ok(()));
        reserve(at(3)).failed(at(3));
        assert!(limits.check_client_authentication(&keys, at(4)).is_err());
        // An hour after the first failure, one place is free again.
        assert_eq!(limits.check_client_authentication(&keys, at(3600)), Ok(()));
        assert_eq!(tracked(), 2);
    }

    fn rate(per_second: u32, burst: u32) -> Option<RequestRate> {
        Some(RequestRate {
            per_second: NonZeroU32::new(per_second)?,
            burst: NonZeroU32::new(burst)?,
        })
    }

    #[test]
    fn rate_limits_are_off_unless_configured() {
        let limits = RateLimits::new(&ServiceConfig::new("test"));
        for _ in 0..10_000 {
            assert_eq!(limits.check_address("192.0.2.1"), Ok(()));
            assert_eq!(limits.check_client("client"), Ok(()));
        }
    }

    #[test]
    fn rate_limits_refuse_past_the_burst_with_a_whole_second_wait() {
        let mut config = ServiceConfig::new("test");
        config.requests_per_client = rate(1, 3);
        let limits = RateLimits::new(&config);
        for _ in 0..3 {
            assert_eq!(limits.check_client("client"), Ok(()));
        }
        // One more a second refills: of 20 more checks made at once, nearly all are
        // refused, each with a wait of at least one whole second.
        let refusals: Vec<Refusal> = (0..20)
            .filter_map(|_| limits.check_client("client").err())
            .collect();
        assert!(refusals.len() >= 10, "{refusals:?}");
        assert!(
            refusals
                .iter()
                .all(|r| r.limit == Limit::RatePerClient && r.retry_after_seconds >= 1)
        );
        // Another client, and any address, are not affected.
        assert_eq!(limits.check_client("other"), Ok(()));
        assert_eq!(limits.check_address("192.0.2.1"), Ok(()));
    }

    #[test]
    fn waits_round_up_to_whole_seconds_of_at_least_one() {
        assert_eq!(whole_seconds_at_least_one(Duration::ZERO), 1);
        assert_eq!(whole_seconds_at_least_one(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds_at_least_one(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds_at_least_one(Duration::from_secs(3)), 3);
    }

    #[test]
    fn a_full_limiter_admits_new_keys_untracked_and_keeps_limiting_known_ones() {
        let mut limiter = FailureLimiter::new(1);
        limiter.max_keys = 2;
        let (a, b, c) = (key("k", &["a"]), key("k", &["b"]), key("k", &["c"]));
        for k in [&a, &b] {
            assert_eq!(limiter.reserve(k, at(0)), Ok(()));
            limiter.settle(k, Some(at(0)));
        }
        assert!(limiter.reserve(&a, at(1)).is_err());
        for _ in 0..3 {
            assert_eq!(limiter.reserve(&c, at(1)), Ok(()));
            limiter.settle(&c, Some(at(1)));
        }
        assert_eq!(limiter.tracked_keys(), 2);
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
