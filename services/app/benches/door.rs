//! The door's own cost per question, in process (no HTTP, no network): the figure to compare two
//! trees by, since a whole-stack load run on these shared cores moves by ±20 % from run to run
//! (docs/performance.md). `cargo bench -p protocol-app --bench door`.
//!
//! - `eligibility_json`: the fast read of `POST /v1/eligibility` (`scripts/load-eligibility.json`,
//!   the load script's body), the path REST load measures.
//! - `ask`: the general path, the same request parsed first (what gRPC and a pinned or explained
//!   request take).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark states what it expects by failing loudly"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use protocol_app::app::App;
use protocol_app::auth::{ApiKeys, Caller};
use protocol_app::catalog::Catalog;
use protocol_app::config::StalePolicy;
use protocol_app::context::Context;
use protocol_app::state::AppState;
use protocol_engine::EligibilityRequest;

fn door() -> App {
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    App::new(Context {
        state: AppState::new(Catalog::bundled().expect("bundled rule sets compile")),
        keys: Arc::new(ApiKeys::open()),
        shutdown,
        heartbeat: Duration::from_secs(15),
        max_staleness_secs: 300,
        stale_policy: StalePolicy::Serve,
        store: None,
        decision_log: None,
    })
}

fn bench(c: &mut Criterion) {
    let app = door();
    let caller = Caller::open();
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/load-eligibility.json"
    ))
    .expect("the load script's body");
    assert!(
        app.eligibility_json(&caller, &body)
            .is_some_and(|a| a.is_ok()),
        "the fast read takes the load body"
    );
    c.bench_function("door/eligibility_json", |b| {
        b.iter(|| app.eligibility_json(&caller, black_box(&body)))
    });
    let request: EligibilityRequest = serde_json::from_slice(&body).expect("a request");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    c.bench_function("door/ask", |b| {
        b.iter(|| runtime.block_on(app.ask(&caller, black_box(&request))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
