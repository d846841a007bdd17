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
//!   Export is OTLP over gRPC (plaintext HTTP/2, the collector's port 4317): `grpc` is this
//!   service's default for `OTEL_EXPORTER_OTLP_PROTOCOL`, and any other protocol is refused at
//!   start-up. The SDK reads the rest itself: `OTEL_SERVICE_NAME` (default here:
//!   `protocol-server`), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` (default
//!   `parentbased_always_on`), `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`,
//!   `OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`. The W3C TraceContext propagator is installed
//!   globally either way, so incoming `traceparent` headers are honoured in logs too.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context as _, bail};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;

/// The service name when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const DEFAULT_SERVICE_NAME: &str = "protocol-server";

/// The log filter when `RUST_LOG` is unset: the OpenTelemetry SDK's own messages (export
/// failures are WARN and ERROR) without its INFO chatter.
pub const DEFAULT_LOG_FILTER: &str = "info,opentelemetry=warn";

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

/// What the `OTEL_*` variables ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtelConfig {
    /// Export spans (an endpoint for traces is set and `OTEL_TRACES_EXPORTER` is not `none`).
    pub traces: bool,
    /// Export metrics (likewise for metrics).
    pub metrics: bool,
    /// The endpoint(s) in use, for the start-up log line.
    pub endpoint: String,
}

impl OtelConfig {
    /// Reads the variables through `var` (the process environment in production). Fails, naming
    /// the variable, on a protocol or exporter this build does not provide.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Self::default());
        }
        let common = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        let mut config = Self::default();
        let mut endpoints = Vec::new();
        for (signal, upper) in [("traces", "TRACES"), ("metrics", "METRICS")] {
            let endpoint = get(&format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT")).or(common.clone());
            let Some(endpoint) = endpoint else { continue };
            let exporter_var = format!("OTEL_{upper}_EXPORTER");
            match get(&exporter_var).as_deref() {
                None | Some("otlp") => {}
                Some("none") => continue,
                Some(other) => bail!(
                    "{exporter_var}={other} is not supported: this build exports {signal} with \
                     `otlp` only (or `none` to turn them off)"
                ),
            }
            let specific = format!("OTEL_EXPORTER_OTLP_{upper}_PROTOCOL");
            let (protocol_var, protocol) = match get(&specific) {
                Some(p) => (specific, p),
                None => (
                    "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
                    get("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_else(|| "grpc".into()),
                ),
            };
            if protocol != "grpc" {
                bail!(
                    "{protocol_var}={protocol} is not supported: this build exports OTLP over \
                     gRPC only; set {protocol_var}=grpc (or unset it) and point the endpoint at \
                     the collector's OTLP/gRPC port (usually 4317)"
                );
            }
            if endpoint.starts_with("https:") {
                bail!(
                    "OTLP endpoint {endpoint}: this build has no TLS for OTLP export; use a \
                     plaintext http:// endpoint (e.g. a collector sidecar or in-cluster service)"
                );
            }
            if !endpoints.contains(&endpoint) {
                endpoints.push(endpoint);
            }
            match signal {
                "traces" => config.traces = true,
                _ => config.metrics = true,
            }
        }
        config.endpoint = endpoints.join(", ");
        Ok(config)
    }

    pub fn enabled(&self) -> bool {
        self.traces || self.metrics
    }
}

/// The resource: `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` as the SDK reads them, with
/// [`DEFAULT_SERVICE_NAME`] when neither names the service.
fn resource() -> opentelemetry_sdk::Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    let builder = opentelemetry_sdk::Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name(DEFAULT_SERVICE_NAME).build()
    }
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
        .with_target("tonic", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
        .with_target("tower_http", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
        .with_target("redis", LevelFilter::OFF)
}

/// Installs the global subscriber and, when the `OTEL_*` variables ask for it, the OTLP
/// exporters. Must run inside a tokio runtime when export is on. Fails if a subscriber is
/// already installed, or on an unsupported `OTEL_*` setting.
pub fn init(format: LogFormat) -> anyhow::Result<TelemetryGuard> {
    let config = OtelConfig::from_env(|name| std::env::var(name).ok())?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = config.enabled().then(resource);
    let tracer = match (&resource, config.traces) {
        (Some(resource), true) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .context("building the OTLP span exporter (OTEL_EXPORTER_OTLP_*)")?;
            Some(
                SdkTracerProvider::builder()
                    .with_resource(resource.clone())
                    .with_batch_exporter(exporter)
                    .build(),
            )
        }
        _ => None,
    };
    let meter = match (&resource, config.metrics) {
        (Some(resource), true) => {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .context("building the OTLP metric exporter (OTEL_EXPORTER_OTLP_*)")?;
            Some(
                SdkMeterProvider::builder()
                    .with_resource(resource.clone())
                    .with_periodic_exporter(exporter)
                    .build(),
            )
        }
        _ => None,
    };

    let log_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(crate::observe::JsonLines)
            .fmt_fields(crate::observe::NoSpanFields)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .with_filter(log_filter)
            .boxed(),
    };
    let otel = tracer.as_ref().map(|provider| {
        opentelemetry::global::set_tracer_provider(provider.clone());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SCOPE))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(otel_filter())
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
            endpoint = %config.endpoint,
            traces = config.traces,
            metrics = config.metrics,
            "OpenTelemetry export over OTLP/gRPC to {}",
            config.endpoint
        );
    }
    Ok(TelemetryGuard { tracer, meter })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<OtelConfig> {
        OtelConfig::from_env(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn off_without_an_endpoint_or_when_disabled() {
        assert!(!config(&[]).expect("config").enabled());
        assert!(
            !config(&[
                ("OTEL_SERVICE_NAME", "x"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", " ")
            ])
            .expect("config")
            .enabled()
        );
        assert!(
            !config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_SDK_DISABLED", "TRUE")
            ])
            .expect("config")
            .enabled()
        );
    }

    #[test]
    fn signals_follow_their_endpoints_and_exporters() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]).expect("config");
        assert!(c.traces && c.metrics);
        let c = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")]).expect("config");
        assert!(c.traces && !c.metrics);
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ])
        .expect("config");
        assert!(c.traces && !c.metrics);
    }

    #[test]
    fn refuses_other_protocols_naming_the_variable() {
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .expect_err("http/protobuf is refused");
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
            "{e}"
        );
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
        ])
        .expect_err("http/json is refused");
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
        );
        assert!(
            config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ])
            .expect("grpc is fine")
            .enabled()
        );
        assert!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317")]).is_err());
    }
}
