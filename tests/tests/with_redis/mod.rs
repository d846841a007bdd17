//! Rule-set distribution through Redis, black-box: real `redis-server` processes that each test
//! starts on a free port (and kills), real `protocol-server` replicas, real HTTP and gRPC clients.
//!
//! - `admin`: the admin API over REST and gRPC (publish, list, fetch, activate, roll back, CAS).
//! - `propagation`: an activation on one replica is served by the other, and pushed to watching
//!   devices, within a second.
//! - `faults`: Redis down at start and mid-run, recovery without restart, corrupted payloads,
//!   the fail-closed stale policy.
//! - `lineage`: what a replica serves never moves back without a rollback: a Redis that lost its
//!   data is put back by the replicas that remember, never seeded over them (generated
//!   interleavings of Redis losses, restarts and activations).
//! - `managed`: managed-Redis shapes: `rediss://` with a private CA and client certificates,
//!   an ACL user, and a Sentinel failover during a stream of activations.
//! - `loosening`: a version looser than the active one is refused at publish, naming each
//!   loosening, unless it declares the loosening (reason, approver), shown with its version.
//! - `notices`: booking systems hear which rule set answers for their clinic (gRPC
//!   `WatchRuleSets`, REST Server-Sent Events), within a second, and only theirs.
//! - `replay`: a request pins a version of its clinic's rule set and is answered from it.
//! - `protocolctl`: the authors' tool's admin commands against a real server and Redis.
//! - `request_path`: 10,000 eligibility requests issue no Redis command.
//! - `versions`: strict validation at publish, retiring versions, the activation history and an
//!   idempotent rollback to the version active before.
//!
//! Tests that assert a deadline or put load on the machine take [`common::serial`], so they never
//! compete with each other for the two cores.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

mod admin;
pub(crate) mod common;
mod faults;
mod lineage;
mod loosening;
mod managed;
mod notices;
mod propagation;
mod protocolctl;
mod refusal;
mod replay;
mod request_path;
mod tenancy;
mod versions;
