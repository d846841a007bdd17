//! The subscriber's layers: log lines to stdout, and spans to OpenTelemetry.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use super::{DEFAULT_LOG_FILTER, NO_HEALTH_DATA_DEBUG, SCOPE};
use crate::config::LogFormat;

/// Log lines to stdout in `format`, filtered by `RUST_LOG` (default [`DEFAULT_LOG_FILTER`]) with
/// [`NO_HEALTH_DATA_DEBUG`] added after it.
pub(super) fn logs(format: LogFormat) -> Box<dyn Layer<Registry> + Send + Sync> {
    let log_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    // Whatever `RUST_LOG` says: the PostgreSQL client's DEBUG lines print every statement's
    // parameters, which for the decision log are the requests with their facts.
    let log_filter = NO_HEALTH_DATA_DEBUG
        .iter()
        .filter_map(|d| d.parse().ok())
        .fold(log_filter, EnvFilter::add_directive);
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(crate::observe::JsonLines)
            .fmt_fields(crate::observe::NoSpanFields)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .with_filter(log_filter)
            .boxed(),
    }
}

/// Spans to OpenTelemetry through `provider`'s tracer (no source location, thread or target
/// attributes, no idle-time tracking), only those [`otel_filter`] lets through.
pub(super) fn otel<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SCOPE))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(otel_filter())
}

/// What goes to the OpenTelemetry layer: this service's spans (request spans at `INFO`, decision
/// spans at `DEBUG` under `protocol_server::decision`), never the internals of the HTTP/2 and gRPC
/// stacks (whose spans would be noise, and whose export would recurse through the exporter).
fn otel_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("protocol_server::decision", LevelFilter::DEBUG)
        .with_target("protocol_server::request", LevelFilter::INFO)
        .with_target("h2", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("reqwest", LevelFilter::OFF)
        .with_target("rustls", LevelFilter::OFF)
        .with_target("tonic", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
        .with_target("tower_http", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
        .with_target("redis", LevelFilter::OFF)
        .with_target("tokio_postgres", LevelFilter::OFF)
        .with_target("refinery_core", LevelFilter::OFF)
}
