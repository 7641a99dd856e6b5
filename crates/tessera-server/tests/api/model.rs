//! A model-based property test (RELIABILITY.md P9): random sequences of issue, refresh,
//! replay, DELETE, revoke-all and use, run against the real server over a real SQLite
//! store, each answer compared with a small reference model of who may still get in.

use std::sync::Arc;

use proptest::prelude::*;
use tessera_core::session_admin::SessionAdmin;
use tessera_core::{Clock, Store};

use crate::helpers::*;

/// Shoppers the sequences draw from; sessions of the same shopper share revoke-all.
const SHOPPERS: usize = 2;

#[derive(Clone, Debug)]
enum Op {
    /// A partner-shopper token for shopper `n`, or an anonymous one.
    Issue(Option<usize>),
    /// Refresh with the `n`-th refresh token ever issued (live, consumed or dead).
    Refresh(usize),
    /// DELETE the `n`-th access token.
    Delete(usize),
    /// GET session details with the `n`-th access token.
    Use(usize),
    /// Present the `n`-th access token as a refresh token.
    RefreshWithAccess(usize),
    /// Revoke every session of shopper `n`.
    RevokeShopper(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => prop::option::of(0..SHOPPERS).prop_map(Op::Issue),
        3 => any::<usize>().prop_map(Op::Refresh),
        2 => any::<usize>().prop_map(Op::Delete),
        3 => any::<usize>().prop_map(Op::Use),
        1 => any::<usize>().prop_map(Op::RefreshWithAccess),
        1 => (0..SHOPPERS).prop_map(Op::RevokeShopper),
    ]
}

#[derive(Debug)]
struct ModelSession {
    alive: bool,
    shopper: Option<usize>,
    newest_access: usize,
}

#[derive(Debug)]
struct ModelToken {
    value: String,
    session: usize,
    revoked: bool,
    consumed: bool,
}

/// Who may still get in, by the rules of API.md §2–§4.
#[derive(Debug, Default)]
struct Model {
    sessions: Vec<ModelSession>,
    access: Vec<ModelToken>,
    refresh: Vec<ModelToken>,
}

impl Model {
    fn access_live(&self, index: usize) -> bool {
        let token = &self.access[index];
        !token.revoked && self.sessions[token.session].alive
    }

    fn add_pair(&mut self, session: usize, access: String, refresh: String) {
        self.access.push(ModelToken {
            value: access,
            session,
            revoked: false,
            consumed: false,
        });
        self.refresh.push(ModelToken {
            value: refresh,
            session,
            revoked: false,
            consumed: false,
        });
        self.sessions[session].newest_access = self.access.len() - 1;
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let app = spawn_app().await;
    let mut user_ids = Vec::new();
    for n in 0..SHOPPERS {
        user_ids.push(app.shopper(&format!("model-{n}")).await);
    }
    let clock: Arc<dyn Clock> = Arc::new(app.clock.clone());
    let sessions = SessionAdmin::new(Arc::clone(&app.store) as Arc<dyn Store>, clock);
    let mut model = Model::default();

    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Issue(shopper) => {
                let form = match shopper {
                    Some(n) => {
                        format!("grant_type=client_credentials&dr_external_reference_id=model-{n}")
                    }
                    None => "grant_type=password".to_owned(),
                };
                let answer = app.token(&form).await;
                prop_assert_eq!(answer.status, 200, "step {}: {}", step, answer.text);
                model.sessions.push(ModelSession {
                    alive: true,
                    shopper,
                    newest_access: 0,
                });
                let session = model.sessions.len() - 1;
                model.add_pair(
                    session,
                    answer.str("access_token"),
                    answer.str("refresh_token"),
                );
            }
            Op::Refresh(n) if !model.refresh.is_empty() => {
                let index = n % model.refresh.len();
                let answer = app
                    .token(&format!(
                        "grant_type=refresh_token&refresh_token={}",
                        model.refresh[index].value
                    ))
                    .await;
                let token = &model.refresh[index];
                let session = token.session;
                let alive = model.sessions[session].alive;
                if alive && !token.revoked && !token.consumed {
                    prop_assert_eq!(answer.status, 200, "step {}: {}", step, answer.text);
                    model.refresh[index].consumed = true;
                    model.add_pair(
                        session,
                        answer.str("access_token"),
                        answer.str("refresh_token"),
                    );
                } else {
                    prop_assert_eq!(answer.status, 400, "step {}: {}", step, answer.text);
                    prop_assert_eq!(answer.error_code(), Some("invalid_grant"));
                    if token.consumed {
                        // Reuse of a consumed refresh token ends the whole session.
                        model.sessions[session].alive = false;
                    }
                }
            }
            Op::Delete(n) if !model.access.is_empty() => {
                let index = n % model.access.len();
                let answer = app.delete_session(&model.access[index].value).await;
                if model.access_live(index) {
                    prop_assert_eq!(answer.status, 200, "step {}: {}", step, answer.text);
                    let session = model.access[index].session;
                    if model.sessions[session].newest_access == index {
                        model.sessions[session].alive = false;
                    } else {
                        model.access[index].revoked = true;
                    }
                } else {
                    prop_assert_eq!(answer.status, 401, "step {}: {}", step, answer.text);
                }
            }
            Op::Use(n) if !model.access.is_empty() => {
                let index = n % model.access.len();
                let answer = app.get_session(&model.access[index].value).await;
                let expected = if model.access_live(index) { 200 } else { 401 };
                prop_assert_eq!(answer.status, expected, "step {}: {}", step, answer.text);
            }
            Op::RefreshWithAccess(n) if !model.access.is_empty() => {
                let index = n % model.access.len();
                let answer = app
                    .token(&format!(
                        "grant_type=refresh_token&refresh_token={}",
                        model.access[index].value
                    ))
                    .await;
                prop_assert_eq!(answer.status, 400, "step {}: {}", step, answer.text);
                prop_assert_eq!(answer.error_code(), Some("invalid_grant"));
            }
            Op::RevokeShopper(n) => {
                sessions
                    .revoke_shopper_sessions(&user_ids[n])
                    .await
                    .map_err(|e| TestCaseError::fail(format!("revoke-all: {e}")))?;
                for session in &mut model.sessions {
                    if session.shopper == Some(n) {
                        session.alive = false;
                    }
                }
                // Sessions issued from now on are after the watermark.
                app.clock.advance_seconds(1);
            }
            // Operations on tokens that do not exist yet do nothing.
            Op::Refresh(_) | Op::Delete(_) | Op::Use(_) | Op::RefreshWithAccess(_) => {}
        }
    }
    // Finally, every access token answers as the model says.
    for index in 0..model.access.len() {
        let answer = app.get_session(&model.access[index].value).await;
        let expected = if model.access_live(index) { 200 } else { 401 };
        prop_assert_eq!(
            answer.status,
            expected,
            "final check of access token {}",
            index
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_server_agrees_with_the_model_of_who_may_get_in(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        runtime.block_on(run(ops))?;
    }
}
