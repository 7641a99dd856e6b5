//! RELIABILITY.md P8: N parallel refreshes of one refresh token yield at most one live
//! successor and never a 5xx. Each trial starts N requests of the same token together
//! behind a barrier; the store's conditional rotation lets one win, and strict reuse
//! detection makes every loser end the session.

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::helpers::*;

/// (parallel requests, trials): a few seconds in a debug build.
const RUNS: [(usize, usize); 3] = [(2, 100), (8, 60), (32, 30)];

/// The reliability suite's long run (`TESSERA_RELIABILITY_LONG=1`): 1,000 trials per width.
const LONG_RUNS: [(usize, usize); 3] = [(2, 1000), (8, 1000), (32, 1000)];

/// What one trial saw.
struct Trial {
    ok: Vec<String>,
    statuses: Vec<u16>,
}

async fn trial(app: &TestApp, parallel: usize) -> Trial {
    let (_, refresh_token) = app.anonymous_tokens().await;
    let barrier = Arc::new(Barrier::new(parallel));
    let mut requests = JoinSet::new();
    for _ in 0..parallel {
        let request = app
            .http
            .post(app.url("/oauth20/token"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(AUTHORIZATION, app.client.basic())
            .body(format!(
                "grant_type=refresh_token&refresh_token={refresh_token}"
            ));
        let barrier = Arc::clone(&barrier);
        requests.spawn(async move {
            barrier.wait().await;
            match request.send().await {
                Ok(response) => answer(response).await,
                Err(error) => panic!("request failed: {error}"),
            }
        });
    }
    let mut seen = Trial {
        ok: Vec::new(),
        statuses: Vec::new(),
    };
    while let Some(done) = requests.join_next().await {
        let answer = done.unwrap_or_else(|e| panic!("request task: {e}"));
        if answer.status == 200 {
            seen.ok.push(answer.str("access_token"));
        } else {
            assert_eq!(
                (answer.status, answer.error_code()),
                (400, Some("invalid_grant")),
                "a losing refresh: {}",
                answer.text
            );
        }
        seen.statuses.push(answer.status);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_of_one_token_yield_at_most_one_live_successor_and_no_5xx() {
    let app = spawn_app().await;
    let long = std::env::var_os("TESSERA_RELIABILITY_LONG").is_some_and(|v| v == "1");
    for (parallel, trials) in if long { LONG_RUNS } else { RUNS } {
        let mut winners = 0;
        let mut with_a_live_successor = 0;
        for number in 0..trials {
            let seen = trial(&app, parallel).await;
            assert_eq!(seen.statuses.len(), parallel);
            assert!(
                seen.statuses.iter().all(|s| *s < 500),
                "N={parallel} trial {number}: {:?}",
                seen.statuses
            );
            assert!(
                seen.ok.len() <= 1,
                "N={parallel} trial {number}: {} refreshes succeeded",
                seen.ok.len()
            );
            winners += seen.ok.len();
            let mut live = 0;
            for access in &seen.ok {
                if app.get_session(access).await.status == 200 {
                    live += 1;
                }
            }
            assert!(
                live <= 1,
                "N={parallel} trial {number}: {live} live successors"
            );
            with_a_live_successor += live;
        }
        // The conditional write lets exactly one request of each race through; every
        // other one is a reuse and ends the session, so no successor survives.
        assert_eq!(winners, trials, "N={parallel}");
        assert_eq!(with_a_live_successor, 0, "N={parallel}");
        println!(
            "figure P8: parallel={parallel} trials={trials} double_successors=0 \
             live_successors={with_a_live_successor} server_errors=0"
        );
    }
}
