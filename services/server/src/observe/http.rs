//! The REST request middleware: one server span per request, its metrics and log line.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::metrics;

use super::REQUEST_TARGET;
use super::trace_context::{continue_trace, request_id};

/// `http.route` of a request that matched no route (404/405 fallbacks).
const UNMATCHED: &str = "unmatched";

/// The REST request middleware (add with `Router::layer(axum::middleware::from_fn(..))`, so the
/// matched route is known). Probes (`/healthz`, `/readyz`) are counted but not traced.
pub async fn http_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_name(req.method());
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let span = if matches!(route, "/healthz" | "/readyz") {
        Span::none()
    } else {
        tracing::info_span!(
            target: REQUEST_TARGET,
            "http.request",
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            http.route = route,
            "http.request.header.x-request-id" = request_id(req.headers()),
            http.response.status_code = Empty,
        )
    };
    continue_trace(&span, req.headers());
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    span.record("http.response.status_code", i64::from(status));
    span.in_scope(|| {
        if status >= 500 {
            span.record("otel.status_code", "ERROR");
            tracing::warn!(target: REQUEST_TARGET, method, route, status, duration_ms = elapsed.as_secs_f64() * 1e3, "request failed");
        } else {
            tracing::debug!(target: REQUEST_TARGET, method, route, status, duration_ms = elapsed.as_secs_f64() * 1e3, "request");
        }
    });
    if let Some(m) = metrics::get() {
        m.request(
            "http",
            route,
            method,
            i64::from(status),
            elapsed.as_secs_f64(),
        );
    }
    response
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}
