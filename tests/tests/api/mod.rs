//! Black-box tests of the real `protocol-server` binary: one test binary (to keep link time low)
//! whose modules each start their own server on free ports and drive it with a real HTTP client
//! (reqwest) and the generated gRPC client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

mod auth;
mod bad_input;
mod budgets;
mod calendar;
mod catalogue;
mod cds;
mod common;
mod deploy;
mod edges;
mod explain;
mod fhir;
mod grpc;
mod jwt;
mod lifecycle;
mod notices;
mod openapi;
mod operations;
mod rest;
mod scenarios;
mod strict;
