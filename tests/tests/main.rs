//! The black-box suite: one test binary (each test binary links every dependency again; one
//! keeps the build and CI short). Every module starts what it needs on free ports — the real
//! `protocol-server` and `protocolctl` binaries, `redis-server` (and Sentinels), PostgreSQL — and
//! drives it with real clients.
//!
//! - [`api`]: REST and gRPC, one server per test, no Redis.
//! - [`with_redis`]: rule-set distribution through real Redis: admin, propagation, faults,
//!   managed Redis, the guard, notices, replay, protocolctl against a server.
//! - [`store`]: the rule-set store's library API against real Redis (with generated sequences of
//!   admin calls).
//! - [`docs`]: every shell block of README.md and docs/*.md says how it runs, and runs as written.
//! - [`decision_log`]: the decision log against a real PostgreSQL.
//! - [`telemetry`]: traces and metrics received by real OTLP receivers.
//! - [`contract`]: the REST contract checked by integrators' tools (openapi-typescript + tsc,
//!   Redocly, Spectral, schemathesis).
//! - [`fhir`]: the FHIR Questionnaire and QuestionnaireResponse checked by `fhir.resources`.
//! - [`protocolctl`]: the authors' tool on its own (no server).
//! - [`soak`]: two replicas, Redis and the decision log under mixed traffic through a Redis loss
//!   and a PostgreSQL stop (`SOAK_SECS`; `scripts/soak` for the long run).
//! - [`fuzz`]: inputs mutated from a corpus (`tests/fuzz/corpus`) through the JSON reads (fast
//!   and general, held equal), the YAML loader, the gRPC codec and the CDS Hooks/FHIR readers.
//!
//! Run one part with a filter: `cargo test --workspace --test suite with_redis::`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

mod api;
mod contract;
mod decision_log;
mod docs;
mod fhir;
mod fuzz;
mod protocolctl;
mod soak;
mod store;
mod telemetry;
mod with_redis;
