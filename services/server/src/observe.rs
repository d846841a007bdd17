//! Request and decision instrumentation, shared by the REST and gRPC adapters: the span names,
//! attributes and metrics listed in docs/operate.md, and nothing about the client.
//!
//! - [`http_request`] (axum middleware) and [`GrpcLayer`] (tower layer on the tonic server) make
//!   one server span per request, `http.request` / `grpc.request`, continuing the W3C trace of an
//!   incoming `traceparent`/`tracestate` (HTTP headers, gRPC metadata) through the global
//!   propagator, record `protocol.requests` and `protocol.request.duration`, and write a
//!   `protocol_server::request` log line (DEBUG; WARN for server errors).
//! - [`eligibility`], [`contraindications`], [`depth_limits`] and [`plan`] wrap the engine's calls
//!   in a child span `engine.decide` (target `protocol_server::decision`, level DEBUG: disabled,
//!   and so almost free, unless OpenTelemetry export or `RUST_LOG` asks for it) carrying the
//!   operation, treatment, outcome and rule-set id/version, and count `protocol.decisions`.
//!   Facts, dates, history and zones never reach a span, a metric or a log line.
//! - [`JsonLines`] is the JSON log format: one object per line with the event's fields and, inside
//!   a request, its `trace_id` and `span_id` (the OpenTelemetry ids when export is on; else the
//!   incoming trace id, or a fresh one, and a fresh span id), so logs and traces join up.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{self, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use protocol_engine::{
    ContraindicationReport, ContraindicationRequest, Decision, DepthLimits, DepthLimitsRequest,
    Eligibility, EligibilityRequest, Plan, PlanRequest, RequestError, RuleSet,
};
use tracing::field::{Empty, Field, Visit};
use tracing::{Instrument, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Registry;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::metrics::{self, WatchStreamGuard};

/// Target of the request spans and the per-request log line.
pub const REQUEST_TARGET: &str = "protocol_server::request";
/// Target of the `engine.decide` spans.
pub const DECISION_TARGET: &str = "protocol_server::decision";

// ---- trace context ------------------------------------------------------------------------------

/// Reads W3C trace headers from an HTTP header map (REST headers and gRPC metadata alike).
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The trace and span id a request's log lines carry (kept in the request span's extensions).
#[derive(Debug, Clone, Copy)]
pub struct TraceIds {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

/// Makes `span` continue the trace of the request's `traceparent` (when OpenTelemetry export is
/// on) and stores the ids its log lines carry.
fn continue_trace(span: &Span, headers: &HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    // Fails when no OpenTelemetry layer is installed (export off): the ids are made up below.
    let exported = span.set_parent(parent.clone()).is_ok();
    let ids = exported
        .then(|| {
            let cx = span.context();
            let sc = cx.span().span_context().clone();
            sc.is_valid().then(|| TraceIds {
                trace_id: sc.trace_id(),
                span_id: sc.span_id(),
            })
        })
        .flatten()
        .unwrap_or_else(|| {
            let ids = RandomIdGenerator::default();
            let remote = parent.span().span_context().clone();
            TraceIds {
                trace_id: if remote.is_valid() {
                    remote.trace_id()
                } else {
                    ids.new_trace_id()
                },
                span_id: ids.new_span_id(),
            }
        });
    span.with_subscriber(|(id, dispatch)| {
        if let Some(span) = dispatch
            .downcast_ref::<Registry>()
            .and_then(|registry| registry.span(id))
        {
            span.extensions_mut().insert(ids);
        }
    });
}

/// The request's `x-request-id` (set by the edge layer when the client sent none), for the span.
fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get(crate::edge::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
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

// ---- REST ---------------------------------------------------------------------------------------

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

// ---- gRPC ---------------------------------------------------------------------------------------

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

const WATCH_PATH: &str = "/treatment.protocol.v1.TreatmentProtocol/WatchDepthLimits";

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
    type Response = http::Response<CountedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let start = Instant::now();
        let path = req.uri().path();
        let (service, method) = rpc_names(path);
        let watch = path == WATCH_PATH;
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
            result.map(|response| {
                let guard = (watch && code == 0).then(WatchStreamGuard::new);
                response.map(|inner| CountedBody { inner, guard })
            })
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds a [`WatchStreamGuard`] while a `WatchDepthLimits` stream is
    /// open (the stream lives exactly as long as its body).
    pub struct CountedBody<B> {
        #[pin]
        inner: B,
        guard: Option<WatchStreamGuard>,
    }
}

impl<B: http_body::Body> http_body::Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

// ---- decisions ----------------------------------------------------------------------------------

/// A disabled span unless `protocol_server::decision` is enabled at DEBUG (the OpenTelemetry
/// layer enables it when traces are exported); only then are its fields evaluated.
fn decision_span(operation: &'static str, rs: &RuleSet) -> Span {
    tracing::debug_span!(
        target: DECISION_TARGET,
        "engine.decide",
        otel.kind = "internal",
        protocol.operation = operation,
        protocol.ruleset.id = rs.meta().id.as_str(),
        protocol.ruleset.version = rs.meta().version.as_str(),
        protocol.treatment = Empty,
        protocol.decision = Empty,
    )
}

fn decided(span: &Span, operation: &'static str, treatment: &str, decision: Option<Decision>) {
    span.record("protocol.treatment", treatment);
    if let Some(d) = decision {
        span.record("protocol.decision", d.as_str());
        if let Some(m) = metrics::get() {
            m.decision(operation, treatment, d.as_str());
        }
    }
}

/// [`RuleSet::eligibility`], observed.
pub fn eligibility(rs: &RuleSet, req: &EligibilityRequest) -> Result<Eligibility, RequestError> {
    let span = decision_span("eligibility", rs);
    let answer = span.in_scope(|| rs.eligibility(req));
    if let Ok(e) = &answer {
        decided(&span, "eligibility", &e.treatment, Some(e.decision));
    }
    answer
}

/// [`RuleSet::contraindications`], observed: one decision per treatment checked; the span names
/// the treatment when only one was checked, and the strongest outcome.
pub fn contraindications(
    rs: &RuleSet,
    req: &ContraindicationRequest,
) -> Result<ContraindicationReport, RequestError> {
    let span = decision_span("contraindications", rs);
    let report = span.in_scope(|| rs.contraindications(req));
    if let Ok(r) = &report {
        if let [only] = r.results.as_slice() {
            span.record("protocol.treatment", only.treatment.as_str());
        }
        if let Some(strongest) = r.results.iter().map(|o| o.decision).max() {
            span.record("protocol.decision", strongest.as_str());
        }
        if let Some(m) = metrics::get() {
            for o in &r.results {
                m.decision("contraindications", &o.treatment, o.decision.as_str());
            }
        }
    }
    report
}

/// [`RuleSet::depth_limits`], observed (a decision only when client facts came with it).
pub fn depth_limits(rs: &RuleSet, req: &DepthLimitsRequest) -> Result<DepthLimits, RequestError> {
    let span = decision_span("depth_limits", rs);
    let limits = span.in_scope(|| rs.depth_limits(req));
    if let Ok(l) = &limits {
        decided(
            &span,
            "depth_limits",
            &l.treatment,
            l.client.as_ref().map(|c| c.decision),
        );
    }
    limits
}

/// [`RuleSet::plan`], observed (the decision is the first session's eligibility).
pub fn plan(rs: &RuleSet, req: &PlanRequest) -> Result<Plan, RequestError> {
    let span = decision_span("plan", rs);
    let plan = span.in_scope(|| rs.plan(req));
    if let Ok(p) = &plan {
        decided(&span, "plan", &p.treatment, Some(p.first_session.decision));
    }
    plan
}

// ---- JSON log lines -----------------------------------------------------------------------------

/// The JSON log format: `{"timestamp", "level", "target", "message", <fields>, "trace_id",
/// "span_id"}`, one object per line; the ids only inside a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        line.insert(
            "timestamp".into(),
            jiff::Timestamp::now().to_string().into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        event.record(&mut JsonFields(&mut line));
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                if let Some(ids) = span.extensions().get::<TraceIds>() {
                    line.insert("trace_id".into(), ids.trace_id.to_string().into());
                    line.insert("span_id".into(), ids.span_id.to_string().into());
                    break;
                }
            }
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// Span fields are not part of a JSON line: store nothing for them.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSpanFields;

impl<'w> FormatFields<'w> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: Writer<'w>,
        _fields: R,
    ) -> fmt::Result {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_names_are_bounded() {
        assert_eq!(
            rpc_names("/treatment.protocol.v1.TreatmentProtocol/CheckEligibility"),
            (
                "treatment.protocol.v1.TreatmentProtocol",
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
