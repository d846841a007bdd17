//! Logs, traces and metrics: one `init` that main calls first (inside the tokio runtime, which
//! the OTLP/gRPC exporters need), returning a guard that flushes and shuts the exporters down on
//! drop. Everything about telemetry set-up lives here.
//!
//! - **Logs** go to stdout, as JSON lines or human-readable text (`PROTOCOL_LOG_FORMAT`), filtered
//!   by `RUST_LOG` (default [`DEFAULT_LOG_FILTER`]). The SDK's own messages (target
//!   `opentelemetry*`: failed exports at WARN/ERROR) are logged, never exported. A JSON line written inside a request carries `trace_id` and
//!   `span_id` (see [`crate::observe`]). Handlers never log client facts.
//! - **OpenTelemetry** is configured only by the standard `OTEL_*` variables and is off unless an
//!   OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//!   `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` for one signal) and `OTEL_SDK_DISABLED` is not `true`.
//!   Each signal is exported over OTLP/gRPC (`grpc`, this service's default for
//!   `OTEL_EXPORTER_OTLP_PROTOCOL`, the collector's port 4317) or OTLP/HTTP (`http/protobuf` or
//!   `http/json`, port 4318; `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `..._METRICS_PROTOCOL` choose
//!   per signal). Endpoints are `http://` (plaintext) or `https://` (TLS with rustls, trusting the
//!   system's CA certificates); anything else is refused at start-up, naming the variable, as are
//!   the CA / client-certificate file variables with an `https://` endpoint (not in this build).
//!   `OTEL_EXPORTER_OTLP_COMPRESSION` (or `..._TRACES_COMPRESSION` / `..._METRICS_COMPRESSION`,
//!   which win for their signal) is `gzip` (on both transports) or `none` (the default); any
//!   other value (`zstd` is not built in) is refused at start-up, naming the variable, where the
//!   exporter would only warn and export uncompressed. Over
//!   HTTP the common endpoint gets `/v1/traces` / `/v1/metrics` appended and a signal's own
//!   endpoint is used as it is (the exporter does this from the variables). The SDK reads the rest
//!   itself: `OTEL_SERVICE_NAME` (default here: `protocol-server`), `OTEL_RESOURCE_ATTRIBUTES`,
//!   `OTEL_TRACES_SAMPLER` (default `parentbased_always_on`), `OTEL_BSP_*`,
//!   `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT` (and their
//!   per-signal variants). OTLP/HTTP uses the blocking `reqwest` client: the SDK's batch span
//!   processor and periodic metric reader export from their own threads, outside tokio, where an
//!   async client has no reactor. The W3C TraceContext propagator is installed globally either
//!   way, so incoming `traceparent` headers are honoured in logs too.
//!
//! The files: `config` reads the `OTEL_*` variables into an [`OtelConfig`] (in the OTLP
//! vocabulary of `otlp`), `exporters` builds the OTLP exporters and the providers that feed
//! them, `layers` the subscriber's layers (log lines, spans for OpenTelemetry); `init`, here,
//! puts them together in the order they must be installed.

mod config;
mod exporters;
mod layers;
mod otlp;

use std::time::Duration;

use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

pub use config::OtelConfig;
pub use otlp::{OtlpCompression, OtlpProtocol, SignalExport};

/// The service name when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const DEFAULT_SERVICE_NAME: &str = "protocol-server";

/// The log filter when `RUST_LOG` is unset: the OpenTelemetry SDK's own messages (export
/// failures are WARN and ERROR) without its INFO chatter.
pub const DEFAULT_LOG_FILTER: &str = "info,opentelemetry=warn";

/// Directives added to every log filter, after `RUST_LOG`: libraries whose DEBUG output carries
/// the data they move (tokio-postgres logs each statement's parameters: the decision log's rows,
/// facts included), held at INFO so that no `RUST_LOG` can print health data.
pub const NO_HEALTH_DATA_DEBUG: &[&str] = &["tokio_postgres=info", "postgres_protocol=info"];

/// The instrumentation scope of this service's tracer and meter.
pub const SCOPE: &str = "protocol-server";

/// Keeps telemetry alive; dropping it flushes what is buffered and stops the exporters.
#[must_use = "telemetry stops when the guard is dropped"]
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported.
    pub fn traces_exported(&self) -> bool {
        self.tracer.is_some()
    }

    /// Whether metrics are exported.
    pub fn metrics_exported(&self) -> bool {
        self.meter.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(Err(e)) = self
            .tracer
            .take()
            .map(|t| t.shutdown_with_timeout(Duration::from_secs(3)))
        {
            eprintln!("protocol-server: flushing spans failed: {e}");
        }
        if let Some(Err(e)) = self
            .meter
            .take()
            .map(|m| m.shutdown_with_timeout(Duration::from_secs(3)))
        {
            eprintln!("protocol-server: flushing metrics failed: {e}");
        }
    }
}

/// Installs the global subscriber and, when the `OTEL_*` variables ask for it, the OTLP
/// exporters. Must run inside a tokio runtime when export is on. Fails if a subscriber is
/// already installed, or on an unsupported `OTEL_*` setting.
///
/// The order matters: the configuration is checked before anything is installed; the global
/// tracer provider is set before the subscriber that sends spans to it; the metric instruments
/// are created only once the meter provider is global.
pub fn init(format: LogFormat) -> anyhow::Result<TelemetryGuard> {
    let config = OtelConfig::from_env(|name| std::env::var(name).ok())?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = config.enabled().then(exporters::resource);
    let tracer = match (&resource, &config.traces) {
        (Some(resource), Some(export)) => Some(exporters::tracer_provider(resource, export)?),
        _ => None,
    };
    let meter = match (&resource, &config.metrics) {
        (Some(resource), Some(export)) => Some(exporters::meter_provider(resource, export)?),
        _ => None,
    };

    let logs = layers::logs(format);
    let otel = tracer.as_ref().map(|provider| {
        opentelemetry::global::set_tracer_provider(provider.clone());
        layers::otel(provider)
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init()?;

    if let Some(provider) = &meter {
        opentelemetry::global::set_meter_provider(provider.clone());
        crate::metrics::install(&opentelemetry::global::meter(SCOPE));
    }
    if config.enabled() {
        tracing::info!(
            traces = config.traces.is_some(),
            metrics = config.metrics.is_some(),
            "OpenTelemetry export: {}",
            config.describe()
        );
    }
    Ok(TelemetryGuard { tracer, meter })
}

#[cfg(test)]
mod tests;
