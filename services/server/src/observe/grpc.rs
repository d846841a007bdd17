//! The gRPC request layer: one server span per call, its metrics and log line. (Open watch
//! streams are counted by their budget permit, [`crate::edge::streams::WatchPermit`].)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use axum::http::{self};
use tracing::Instrument;
use tracing::field::Empty;

use crate::metrics;

use super::REQUEST_TARGET;
use super::trace_context::{continue_trace, request_id};

/// The gRPC request layer: `tonic::transport::Server::builder().layer(GrpcLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcLayer;

impl<S> tower::Layer<S> for GrpcLayer {
    type Service = GrpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcService { inner }
    }
}

/// See [`GrpcLayer`].
#[derive(Debug, Clone)]
pub struct GrpcService<S> {
    inner: S,
}

/// `(service, method)` of a gRPC path, for this server's own, health and reflection services;
/// `("unknown", "unknown")` for anything else (so metric attributes stay few).
fn rpc_names(path: &str) -> (&str, &str) {
    let known = |s: &str| s.starts_with("treatment.protocol.") || s.starts_with("grpc.");
    match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
        Some((service, method))
            if known(service)
                && path.len() <= 128
                && !method.is_empty()
                && !method.contains('/') =>
        {
            (service, method)
        }
        _ => ("unknown", "unknown"),
    }
}

/// The `route` of a gRPC call: its path for a known service, else `unknown`.
fn rpc_route(path: &str) -> &str {
    if rpc_names(path).0 == "unknown" {
        "unknown"
    } else {
        path
    }
}

/// The gRPC status of a response head: `grpc-status` when the call failed at once (tonic sends
/// errors as trailers-only responses); OK for a 200 without it (the status follows in the
/// trailers); otherwise the HTTP status mapped as the gRPC spec maps it.
fn grpc_status<B>(response: &http::Response<B>) -> i64 {
    if let Some(code) = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
    {
        return code;
    }
    match response.status().as_u16() {
        200 => 0,
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

/// Server-side failures, as the semantic conventions count them for server spans.
fn grpc_is_error(code: i64) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, ResBody> tower::Service<http::Request<B>> for GrpcService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let start = Instant::now();
        let path = req.uri().path();
        let (service, method) = rpc_names(path);
        // Shares the path's bytes: no copy, for the log line and the metric after the call.
        let uri = req.uri().clone();
        let span = tracing::info_span!(
            target: REQUEST_TARGET,
            "grpc.request",
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            "rpc.grpc.request.metadata.x-request-id" = request_id(req.headers()),
            rpc.grpc.status_code = Empty,
        );
        continue_trace(&span, req.headers());
        let future = span.in_scope(|| self.inner.call(req));
        Box::pin(async move {
            let result = future.instrument(span.clone()).await;
            let code = result.as_ref().map_or(2, grpc_status);
            let elapsed = start.elapsed();
            span.record("rpc.grpc.status_code", code);
            span.in_scope(|| {
                if grpc_is_error(code) {
                    span.record("otel.status_code", "ERROR");
                    tracing::warn!(target: REQUEST_TARGET, rpc = rpc_route(uri.path()), code, duration_ms = elapsed.as_secs_f64() * 1e3, "grpc call failed");
                } else {
                    tracing::debug!(target: REQUEST_TARGET, rpc = rpc_route(uri.path()), code, duration_ms = elapsed.as_secs_f64() * 1e3, "grpc call");
                }
            });
            if let Some(m) = metrics::get() {
                let route = if code == 12 {
                    "unknown"
                } else {
                    rpc_route(uri.path())
                };
                m.request("grpc", route, "POST", code, elapsed.as_secs_f64());
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_names_are_bounded() {
        assert_eq!(
            rpc_names("/treatment.protocol.v1.TreatmentProtocolService/CheckEligibility"),
            (
                "treatment.protocol.v1.TreatmentProtocolService",
                "CheckEligibility"
            )
        );
        assert_eq!(
            rpc_names("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        assert_eq!(rpc_names("/evil.Service/Method"), ("unknown", "unknown"));
        assert_eq!(rpc_names("/"), ("unknown", "unknown"));
    }

    #[test]
    fn grpc_status_from_the_response_head() {
        let ok = http::Response::new(());
        assert_eq!(grpc_status(&ok), 0);
        let mut failed = http::Response::new(());
        failed
            .headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("3"));
        assert_eq!(grpc_status(&failed), 3);
        assert!(grpc_is_error(13) && !grpc_is_error(3) && !grpc_is_error(0));
    }
}
