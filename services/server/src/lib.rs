//! The treatment-protocol server: thin adapters around `protocol-engine`.
//!
//! Requests flow one way: adapter (parse, authenticate, resolve the clinic) → engine (decide) →
//! adapter (render). The compiled rule sets live in one [`catalog::Catalog`] behind `arc-swap`, so
//! the request path takes no lock and makes no Redis call.

pub mod catalog;
pub mod config;
pub mod state;
