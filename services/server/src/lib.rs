//! The treatment-protocol server: thin adapters around `protocol-engine`.
//!
//! Requests flow one way: adapter (parse, authenticate, resolve the clinic) → engine (decide) →
//! adapter (render). The compiled rule sets live in one [`catalog::Catalog`] behind `arc-swap`, so
//! the request path takes no lock and makes no Redis call.
//!
//! - [`http`]: REST with axum (`/v1/...`, problem+json errors, OpenAPI from the same types).
//! - [`grpc`]: tonic service of `proto/treatment/protocol/v1/protocol.proto`, health, reflection.
//! - [`auth`]: API keys (stored as SHA-256 hashes), scopes and the clinic a key belongs to.
//! - [`startup`]: binds both listeners on one runtime and serves until SIGTERM/SIGINT.
//! - [`telemetry`], [`observe`], [`metrics`]: logs, OpenTelemetry spans and metrics (no health
//!   data in any of them).

pub mod auth;
pub mod catalog;
pub mod config;
pub mod context;
pub mod edge;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
