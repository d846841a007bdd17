//! W3C trace context: continuing the caller's trace, and the ids every log line of a request carries.

use axum::http::HeaderMap;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan;

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
pub(super) fn continue_trace(span: &Span, headers: &HeaderMap) {
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
pub(super) fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get(crate::edge::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
