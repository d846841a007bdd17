//! The treatment-protocol server: thin adapters around `protocol-engine`.
//!
//! Requests flow one way: adapter (parse) → the door, [`app::App`] (authenticate, freshness, the
//! clinic's rule set, telemetry, engine, one error type) → adapter (render). The compiled rule sets live in one [`catalog::Catalog`] behind `arc-swap`, so
//! the request path takes no lock and makes no Redis call.
//!
//! - [`app`]: the one door every operation of every protocol goes through, and rule-set admin.
//! - [`http`]: REST with axum (`/v1/...`, problem+json errors, OpenAPI from the same types).
//! - [`cds`]: CDS Hooks 2.0 (`/cds-services`): the `appointment-book` hook over FHIR prefetch.
//! - [`grpc`]: tonic service of `proto/treatment/protocol/v1/protocol.proto`, health, reflection.
//! - [`auth`]: API keys (stored as SHA-256 hashes), scopes and the clinic a key belongs to.
//! - [`startup`]: binds both listeners on one runtime and serves until SIGTERM/SIGINT.
//! - [`telemetry`], [`observe`], [`metrics`]: logs, OpenTelemetry spans and metrics (no health
//!   data in any of them).

pub(crate) mod app;
pub mod auth;
pub mod catalog;
pub(crate) mod cds;
pub mod config;
pub(crate) mod context;
pub mod decision_log;
pub mod edge;
pub mod grpc;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod observe;
pub(crate) mod openapi;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
