//! Request and decision instrumentation, shared by the REST and gRPC adapters: the span names,
//! attributes and metrics listed in docs/operate.md, and nothing about the client.
//!
//! - [`http_request`] (axum middleware) and [`GrpcLayer`] (tower layer on the tonic server) make
//!   one server span per request, `http.request` / `grpc.request`, continuing the W3C trace of an
//!   incoming `traceparent`/`tracestate` (HTTP headers, gRPC metadata) through the global
//!   propagator, record `protocol.requests` and `protocol.request.duration`, and write a
//!   `protocol_server::request` log line (DEBUG; WARN for server errors).
//! - The decisions themselves are observed at the door ([`crate::app`]): a child span
//!   `engine.decide` (target [`crate::app::DECISION_TARGET`], level DEBUG: disabled, and so almost free,
//!   unless OpenTelemetry export or `RUST_LOG` asks for it) carrying the operation, treatment,
//!   outcome and rule-set id/version, the `protocol.decisions` count, and each decision id.
//!   Facts, dates, history and zones never reach a span, a metric or a log line.
//! - [`JsonLines`] is the JSON log format: one object per line with the event's fields and, inside
//!   a request, its `trace_id` and `span_id` (the OpenTelemetry ids when export is on; else the
//!   incoming trace id, or a fresh one, and a fresh span id), so logs and traces join up.
//!
//! One concern per file: [`trace_context`] (W3C propagation and the ids logs carry), [`http`]
//! (the REST middleware), [`grpc`] (the gRPC layer), [`json_log`] (the JSON log format).

mod grpc;
mod http;
mod json_log;
mod trace_context;

pub use grpc::GrpcLayer;
pub use http::http_request;
pub use json_log::{JsonLines, NoSpanFields};

/// Target of the request spans and the per-request log line.
pub const REQUEST_TARGET: &str = "protocol_server::request";
