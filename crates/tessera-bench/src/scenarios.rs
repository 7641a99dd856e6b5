//! What each scenario's virtual users send, and what they expect back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde::Deserialize;

use crate::cli::ScenarioKind;
use crate::http::{Call, form_encode};
use crate::load::{Behaviour, VirtualUser};

const TOKEN_PATH: &str = "/oauth20/token";
const SESSION_PATH: &str = "/oauth20/access-tokens";
const INTROSPECT_PATH: &str = "/oauth20/introspect";
/// The ceiling's one route.
const CEILING_PATH: &str = "/";

/// The mixed scenario's schedule, per 20 steps: 16 lookups (80%), 2 issues (10%), one
/// refresh (5%) and one revoke (5%), spread out rather than bunched.
const MIXED_SCHEDULE: [MixedStep; 20] = {
    use MixedStep::{Issue as I, Lookup as L, Refresh as F, Revoke as R};
    [L, L, L, L, I, L, L, L, L, F, L, L, L, L, I, L, L, L, L, R]
};

#[derive(Clone, Copy, Debug)]
enum MixedStep {
    Lookup,
    Issue,
    Refresh,
    Revoke,
}

/// What every virtual user of a run shares: the client's credentials and the tokens and
/// shoppers set up before the run.
#[derive(Debug)]
pub struct Fixtures {
    /// `Authorization: Basic` of the benchmark client.
    pub basic: HeaderValue,
    /// Live access tokens to look up.
    pub lookup_tokens: Vec<String>,
    /// External reference ids of shoppers for the partner-shopper grant.
    pub partner_ids: Vec<String>,
    /// Username and password of the shopper who logs in.
    pub login: (String, String),
}

/// The token endpoint's success answer.
#[derive(Deserialize)]
pub struct Issued {
    /// The new access token.
    pub access_token: String,
    /// The new refresh token, when the grant gives one.
    pub refresh_token: Option<String>,
}

/// One virtual user of one scenario.
pub struct ScenarioUser {
    kind: ScenarioKind,
    fixtures: Arc<Fixtures>,
    steps: u64,
    /// Where this user's round-robin over the lookup tokens starts.
    offset: usize,
    refresh_token: Option<String>,
    issued: Vec<String>,
    /// For paced users: the interval between two steps, and when the next one is due.
    pace: Option<(Duration, Instant)>,
}

impl ScenarioUser {
    /// `count` users of `kind`, their round-robins spread evenly over the lookup tokens.
    pub fn crowd(kind: ScenarioKind, fixtures: &Arc<Fixtures>, count: usize) -> Vec<Self> {
        let tokens = fixtures.lookup_tokens.len().max(1);
        (0..count)
            .map(|index| ScenarioUser {
                kind,
                fixtures: Arc::clone(fixtures),
                steps: 0,
                offset: index * tokens / count.max(1),
                refresh_token: None,
                issued: Vec::new(),
                pace: None,
            })
            .collect()
    }

    /// `count` users of `kind` that together step `rate` times a second, evenly spread
    /// over time (the reliability scenarios' measured traffic: a fixed load whose latency
    /// shows interference, not queueing behind a saturated server).
    pub fn paced(
        kind: ScenarioKind,
        fixtures: &Arc<Fixtures>,
        count: usize,
        rate: u32,
    ) -> Vec<Self> {
        let interval = Duration::from_secs_f64(count.max(1) as f64 / f64::from(rate.max(1)));
        let start = Instant::now();
        let mut users = Self::crowd(kind, fixtures, count);
        for (index, user) in users.iter_mut().enumerate() {
            let offset = interval.mul_f64(index as f64 / count.max(1) as f64);
            user.pace = Some((interval, start + offset));
        }
        users
    }

    /// Waits until this paced user's next step is due; after a stall it starts afresh
    /// rather than catching up in a burst.
    async fn wait_for_turn(&mut self) {
        let Some((interval, due)) = self.pace else {
            return;
        };
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        let next = due + interval;
        self.pace = Some((interval, if next + interval < now { now } else { next }));
    }

    fn next_lookup_token(&self) -> &str {
        let tokens = &self.fixtures.lookup_tokens;
        let position = (self.offset + self.steps as usize) % tokens.len().max(1);
        tokens.get(position).map_or("", String::as_str)
    }

    async fn lookup(&self, user: &mut VirtualUser) {
        if let Ok(call) = Call::bearer(Method::GET, SESSION_PATH, self.next_lookup_token()) {
            user.call(&call, StatusCode::OK).await;
        }
    }

    async fn introspect(&self, user: &mut VirtualUser) {
        let form = format!("token={}", form_encode(self.next_lookup_token()));
        let call = Call::form_post(INTROSPECT_PATH, &self.fixtures.basic, form);
        user.call(&call, StatusCode::OK).await;
    }

    async fn grant(&self, user: &mut VirtualUser, form: String) -> Option<Issued> {
        let call = Call::form_post(TOKEN_PATH, &self.fixtures.basic, form);
        let body = user.call(&call, StatusCode::OK).await?;
        serde_json::from_slice(&body).ok()
    }

    async fn issue_anonymous(&self, user: &mut VirtualUser) -> Option<Issued> {
        self.grant(user, "grant_type=password".to_owned()).await
    }

    async fn issue_partner(&self, user: &mut VirtualUser) -> Option<Issued> {
        let ids = &self.fixtures.partner_ids;
        let id = ids
            .get((user.index + self.steps as usize) % ids.len().max(1))
            .map_or("", String::as_str);
        let form = format!(
            "grant_type=client_credentials&dr_external_reference_id={}",
            form_encode(id)
        );
        self.grant(user, form).await
    }

    async fn issue_half_and_half(&self, user: &mut VirtualUser) -> Option<Issued> {
        if self.steps.is_multiple_of(2) {
            self.issue_anonymous(user).await
        } else {
            self.issue_partner(user).await
        }
    }

    async fn revoke(user: &mut VirtualUser, access_token: &str) -> bool {
        match Call::bearer(Method::DELETE, SESSION_PATH, access_token) {
            Ok(call) => user.call(&call, StatusCode::OK).await.is_some(),
            Err(_) => false,
        }
    }

    /// One link of this user's refresh chain; a broken chain (or none yet) starts again
    /// from a partner-shopper grant, which gives a refresh token.
    async fn refresh(&mut self, user: &mut VirtualUser) {
        let issued = match self.refresh_token.take() {
            Some(token) => {
                let form = format!(
                    "grant_type=refresh_token&refresh_token={}",
                    form_encode(&token)
                );
                self.grant(user, form).await
            }
            None => self.issue_partner(user).await,
        };
        self.refresh_token = issued.and_then(|issued| issued.refresh_token);
    }

    async fn login(&self, user: &mut VirtualUser) {
        let (username, password) = &self.fixtures.login;
        let form = format!(
            "grant_type=password&username={}&password={}",
            form_encode(username),
            form_encode(password)
        );
        self.grant(user, form).await;
    }

    async fn mixed(&mut self, user: &mut VirtualUser) {
        let step = MIXED_SCHEDULE[(self.steps as usize + user.index) % MIXED_SCHEDULE.len()];
        match step {
            MixedStep::Lookup => self.lookup(user).await,
            MixedStep::Issue => {
                if let Some(issued) = self.issue_half_and_half(user).await {
                    self.issued.push(issued.access_token);
                }
            }
            MixedStep::Refresh => self.refresh(user).await,
            MixedStep::Revoke => {
                let token = match self.issued.pop() {
                    Some(token) => Some(token),
                    None => self
                        .issue_anonymous(user)
                        .await
                        .map(|issued| issued.access_token),
                };
                if let Some(token) = token {
                    Self::revoke(user, &token).await;
                }
            }
        }
    }
}

impl Behaviour for ScenarioUser {
    async fn step(&mut self, user: &mut VirtualUser) {
        self.wait_for_turn().await;
        match self.kind {
            ScenarioKind::Ceiling => {
                user.call(&Call::get(CEILING_PATH), StatusCode::OK).await;
            }
            ScenarioKind::Session | ScenarioKind::PasswordFlood | ScenarioKind::SlowClients => {
                self.lookup(user).await;
            }
            ScenarioKind::Introspect => self.introspect(user).await,
            ScenarioKind::Issue => {
                self.issue_half_and_half(user).await;
            }
            ScenarioKind::Revoke => {
                if let Some(issued) = self.issue_anonymous(user).await
                    && Self::revoke(user, &issued.access_token).await
                {
                    user.count_pair();
                }
            }
            ScenarioKind::Refresh => self.refresh(user).await,
            ScenarioKind::Login => self.login(user).await,
            ScenarioKind::Mixed => self.mixed(user).await,
        }
        self.steps += 1;
    }
}
