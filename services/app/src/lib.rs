//! The door of the treatment-protocol service, as a crate of its own: every operation of every
//! protocol goes through [`app::App`] (authenticate, freshness, the clinic's rule set, the
//! decision span and metric, the engine, one error type), and the adapters (REST, gRPC, CDS
//! Hooks, FHIR, in `protocol-server`) only parse and render. This crate depends on the engine and
//! on no HTTP or gRPC crate (no axum, tonic, hyper, tower, http; `scripts/check-layers` keeps it
//! so), so the door cannot reach into an adapter: the compiler, not a convention, keeps every
//! protocol on one path.
//!
//! - [`app`]: the door, the operation registry, watch budgets, rule-set administration.
//! - [`auth`]: API keys (stored as SHA-256 hashes), scopes and the clinic a key belongs to.
//! - [`catalog`]: the compiled rule sets served, behind `arc-swap` ([`state`]).
//! - [`store`]: versioned rule sets in Redis, and the guard at the point of effect.
//! - [`decision_log`]: every decision, masked, to PostgreSQL.
//! - [`config`]: every setting (`clap` with `env`); [`context`]: what the door holds.
//! - [`metrics`]: the OpenTelemetry instruments the door records.

pub mod app;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod context;
pub mod decision_log;
pub mod metrics;
pub mod state;
pub mod store;
