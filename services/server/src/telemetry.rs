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

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context as _, bail};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
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

/// An OTLP transport and encoding (`OTEL_EXPORTER_OTLP_PROTOCOL` and its per-signal variants).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `grpc`: OTLP/gRPC (the collector's port 4317). This service's default.
    #[default]
    Grpc,
    /// `http/protobuf`: OTLP/HTTP with binary protobuf bodies (port 4318).
    HttpProtobuf,
    /// `http/json`: OTLP/HTTP with JSON bodies (port 4318).
    HttpJson,
}

impl OtlpProtocol {
    /// The value of `OTEL_EXPORTER_OTLP_PROTOCOL` that names this protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
            Self::HttpJson => "http/json",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [Self::Grpc, Self::HttpProtobuf, Self::HttpJson]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(value))
    }

    fn otlp(self) -> opentelemetry_otlp::Protocol {
        match self {
            Self::Grpc => opentelemetry_otlp::Protocol::Grpc,
            Self::HttpProtobuf => opentelemetry_otlp::Protocol::HttpBinary,
            Self::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
        }
    }
}

/// OTLP payload compression (`OTEL_EXPORTER_OTLP_COMPRESSION` and its per-signal variants).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OtlpCompression {
    /// `none`: uncompressed, the default.
    #[default]
    None,
    /// `gzip`: gzip-compressed gRPC messages (`grpc-encoding: gzip`) or HTTP bodies
    /// (`Content-Encoding: gzip`).
    Gzip,
}

impl OtlpCompression {
    /// The value of `OTEL_EXPORTER_OTLP_COMPRESSION` that names this compression.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
        }
    }

    /// Case-insensitive, as the exporter reads it; surrounding spaces are not accepted (the
    /// exporter would ignore such a value).
    fn parse(value: &str) -> Option<Self> {
        [Self::None, Self::Gzip]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(value))
    }
}

/// How one signal (traces or metrics) is exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalExport {
    pub protocol: OtlpProtocol,
    /// Read by the exporter itself from the same variables; checked here so that no value is
    /// silently ignored.
    pub compression: OtlpCompression,
    /// Where it goes: for OTLP/HTTP the URL posted to — the signal's own endpoint variable as it
    /// is, or the common one with `/v1/traces` / `/v1/metrics` appended, as the exporter resolves
    /// it from the same variables.
    pub endpoint: String,
}

impl SignalExport {
    /// Whether the endpoint is `https://` (TLS, checked against the system's CA certificates).
    pub fn tls(&self) -> bool {
        self.endpoint
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }
}

/// What the `OTEL_*` variables ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtelConfig {
    /// Export spans (an endpoint for traces is set and `OTEL_TRACES_EXPORTER` is not `none`).
    pub traces: Option<SignalExport>,
    /// Export metrics (likewise for metrics).
    pub metrics: Option<SignalExport>,
}

impl OtelConfig {
    /// Reads the variables through `var` (the process environment in production). Fails, naming
    /// the variable, on a protocol, exporter or endpoint this build does not handle.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Self::default());
        }
        let mut config = Self::default();
        for (signal, upper, path) in [
            ("traces", "TRACES", "/v1/traces"),
            ("metrics", "METRICS", "/v1/metrics"),
        ] {
            let specific_endpoint = format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT");
            let (endpoint_var, endpoint, generic) = match get(&specific_endpoint) {
                Some(e) => (specific_endpoint, e, false),
                None => match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
                    Some(e) => ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), e, true),
                    None => continue,
                },
            };
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
            let (protocol_var, value) = match get(&specific) {
                Some(p) => (specific, p),
                None => (
                    "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
                    get("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_else(|| "grpc".into()),
                ),
            };
            let Some(protocol) = OtlpProtocol::parse(&value) else {
                bail!(
                    "{protocol_var}={value} is not supported: use `grpc` (this service's \
                     default, the collector's port 4317), `http/protobuf` or `http/json` (OTLP \
                     over HTTP, port 4318)"
                );
            };
            let scheme = endpoint
                .split_once("://")
                .map(|(s, _)| s.to_ascii_lowercase());
            if !matches!(scheme.as_deref(), Some("http" | "https")) {
                bail!(
                    "{endpoint_var}={endpoint}: the OTLP endpoint must be a URL starting with \
                     http:// (plaintext) or https:// (TLS), e.g. http://otel-collector:{}",
                    if protocol == OtlpProtocol::Grpc {
                        4317
                    } else {
                        4318
                    }
                );
            }
            // The exporter does not read these: ignored, they would leave an https:// export
            // failing on the certificate.
            if scheme.as_deref() == Some("https") {
                for file in ["CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"] {
                    for name in [
                        format!("OTEL_EXPORTER_OTLP_{upper}_{file}"),
                        format!("OTEL_EXPORTER_OTLP_{file}"),
                    ] {
                        if get(&name).is_some() {
                            bail!(
                                "{name} is not supported: this build trusts the system's CA \
                                 certificates for https:// OTLP endpoints (point SSL_CERT_FILE or \
                                 SSL_CERT_DIR at a private CA instead) and has no client \
                                 certificates (mTLS)"
                            );
                        }
                    }
                }
            }
            // The exporter reads these itself (the signal's variable, else the common one; values
            // as they are, case-insensitive, an empty one as unset) and only warns about a value
            // it cannot use, exporting uncompressed: refused here instead.
            let mut compression = OtlpCompression::None;
            for name in [
                format!("OTEL_EXPORTER_OTLP_{upper}_COMPRESSION"),
                "OTEL_EXPORTER_OTLP_COMPRESSION".to_owned(),
            ] {
                let Some(value) = var(&name).filter(|v| !v.trim().is_empty()) else {
                    continue;
                };
                let Some(c) = OtlpCompression::parse(&value) else {
                    bail!(
                        "{name}={value} is not supported: use `gzip` or `none` (no compression, \
                         the default); this build has no other compression (no `zstd`)"
                    );
                };
                compression = c;
                break;
            }
            let endpoint = if generic && protocol != OtlpProtocol::Grpc {
                // What the exporter does with the common endpoint over HTTP (the spec's rule).
                format!("{}{path}", endpoint.strip_suffix('/').unwrap_or(&endpoint))
            } else {
                endpoint
            };
            let export = Some(SignalExport {
                protocol,
                compression,
                endpoint,
            });
            match signal {
                "traces" => config.traces = export,
                _ => config.metrics = export,
            }
        }
        Ok(config)
    }

    pub fn enabled(&self) -> bool {
        self.traces.is_some() || self.metrics.is_some()
    }

    /// Protocol, compression (when on) and endpoint per signal, for the start-up log line.
    pub fn describe(&self) -> String {
        fn how(e: &SignalExport) -> String {
            match e.compression {
                OtlpCompression::None => format!("OTLP {}", e.protocol.as_str()),
                c => format!("OTLP {} ({})", e.protocol.as_str(), c.as_str()),
            }
        }
        let signals = [("traces", &self.traces), ("metrics", &self.metrics)];
        let parts: Vec<(&str, &SignalExport)> = signals
            .iter()
            .filter_map(|(name, export)| Some((*name, export.as_ref()?)))
            .collect();
        match parts.as_slice() {
            [(_, a), (_, b)] if a == b => {
                format!("traces and metrics over {} to {}", how(a), a.endpoint)
            }
            _ => parts
                .iter()
                .map(|(name, e)| format!("{name} over {} to {}", how(e), e.endpoint))
                .collect::<Vec<_>>()
                .join(", "),
        }
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

/// TLS for an `https://` OTLP/gRPC endpoint: rustls, trusting the system's CA certificates
/// (`SSL_CERT_FILE` / `SSL_CERT_DIR` point elsewhere). Without it the exporter would trust none.
fn grpc_tls(export: &SignalExport) -> Option<ClientTlsConfig> {
    export
        .tls()
        .then(|| ClientTlsConfig::new().with_native_roots())
}

/// The span exporter for `export`. Endpoint, headers, timeout and compression come from the same `OTEL_*`
/// variables, read by the exporter itself (for OTLP/HTTP it appends `/v1/traces` to the common
/// endpoint, and uses the traces one as it is).
fn span_exporter(export: &SignalExport) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match export.protocol {
        OtlpProtocol::Grpc => {
            let builder = builder.with_tonic().with_protocol(export.protocol.otlp());
            match grpc_tls(export) {
                Some(tls) => builder.with_tls_config(tls).build(),
                None => builder.build(),
            }
        }
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => builder
            .with_http()
            .with_protocol(export.protocol.otlp())
            .build(),
    };
    exporter.context("building the OTLP span exporter (OTEL_EXPORTER_OTLP_*)")
}

/// The metric exporter for `export`, likewise (`/v1/metrics`).
fn metric_exporter(export: &SignalExport) -> anyhow::Result<opentelemetry_otlp::MetricExporter> {
    let builder = opentelemetry_otlp::MetricExporter::builder();
    let exporter = match export.protocol {
        OtlpProtocol::Grpc => {
            let builder = builder.with_tonic().with_protocol(export.protocol.otlp());
            match grpc_tls(export) {
                Some(tls) => builder.with_tls_config(tls).build(),
                None => builder.build(),
            }
        }
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => builder
            .with_http()
            .with_protocol(export.protocol.otlp())
            .build(),
    };
    exporter.context("building the OTLP metric exporter (OTEL_EXPORTER_OTLP_*)")
}

/// Installs the global subscriber and, when the `OTEL_*` variables ask for it, the OTLP
/// exporters. Must run inside a tokio runtime when export is on. Fails if a subscriber is
/// already installed, or on an unsupported `OTEL_*` setting.
pub fn init(format: LogFormat) -> anyhow::Result<TelemetryGuard> {
    let config = OtelConfig::from_env(|name| std::env::var(name).ok())?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = config.enabled().then(resource);
    let tracer = match (&resource, &config.traces) {
        (Some(resource), Some(export)) => Some(
            SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_batch_exporter(span_exporter(export)?)
                .build(),
        ),
        _ => None,
    };
    let meter = match (&resource, &config.metrics) {
        (Some(resource), Some(export)) => Some(
            SdkMeterProvider::builder()
                .with_resource(resource.clone())
                .with_periodic_exporter(metric_exporter(export)?)
                .build(),
        ),
        _ => None,
    };

    let log_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    // Whatever `RUST_LOG` says: the PostgreSQL client's DEBUG lines print every statement's
    // parameters, which for the decision log are the requests with their facts.
    let log_filter = NO_HEALTH_DATA_DEBUG
        .iter()
        .filter_map(|d| d.parse().ok())
        .fold(log_filter, EnvFilter::add_directive);
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
            traces = config.traces.is_some(),
            metrics = config.metrics.is_some(),
            "OpenTelemetry export: {}",
            config.describe()
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
        assert!(c.traces.is_some() && c.metrics.is_some());
        let c = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")]).expect("config");
        assert!(c.traces.is_some() && c.metrics.is_none());
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ])
        .expect("config");
        assert!(c.traces.is_some() && c.metrics.is_none());
    }

    fn export(protocol: OtlpProtocol, endpoint: &str) -> Option<SignalExport> {
        Some(SignalExport {
            protocol,
            compression: OtlpCompression::None,
            endpoint: endpoint.into(),
        })
    }

    fn gzip(export: Option<SignalExport>) -> Option<SignalExport> {
        export.map(|e| SignalExport {
            compression: OtlpCompression::Gzip,
            ..e
        })
    }

    #[test]
    fn gzip_or_none_compression_per_signal_or_common() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ])
        .expect("gzip");
        assert_eq!(c.traces, gzip(export(OtlpProtocol::Grpc, "http://c:4317")));
        assert_eq!(c.metrics, c.traces);
        assert_eq!(
            c.describe(),
            "traces and metrics over OTLP grpc (gzip) to http://c:4317"
        );

        // A signal's own variable wins, `none` included; values are case-insensitive and an
        // empty one is unset.
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "None"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", ""),
        ])
        .expect("per signal");
        assert_eq!(
            c.traces,
            gzip(export(
                OtlpProtocol::HttpProtobuf,
                "http://c:4318/v1/traces"
            ))
        );
        assert_eq!(
            c.metrics,
            export(OtlpProtocol::HttpProtobuf, "http://c:4318/v1/metrics")
        );
        assert_eq!(
            c.describe(),
            "traces over OTLP http/protobuf (gzip) to http://c:4318/v1/traces, \
             metrics over OTLP http/protobuf to http://c:4318/v1/metrics"
        );

        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ])
        .expect("traces only");
        assert_eq!(c.traces, gzip(export(OtlpProtocol::Grpc, "http://c:4317")));
        assert_eq!(c.metrics, export(OtlpProtocol::Grpc, "http://c:4317"));

        // Only the variables of the signals exported are read.
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd"),
        ])
        .expect("metrics are not exported");
        assert!(c.metrics.is_none());
    }

    #[test]
    fn grpc_is_the_default_and_uses_the_endpoint_as_it_is() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]).expect("config");
        assert_eq!(c.traces, export(OtlpProtocol::Grpc, "http://c:4317"));
        assert_eq!(c.metrics, export(OtlpProtocol::Grpc, "http://c:4317"));
        assert_eq!(
            c.describe(),
            "traces and metrics over OTLP grpc to http://c:4317"
        );
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .expect("grpc over TLS");
        assert!(c.traces.as_ref().is_some_and(SignalExport::tls));
    }

    #[test]
    fn http_appends_the_signal_path_to_the_common_endpoint_only() {
        let c = config(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://otlp.example.com:4318/",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .expect("http/protobuf");
        assert_eq!(
            c.traces,
            export(
                OtlpProtocol::HttpProtobuf,
                "https://otlp.example.com:4318/v1/traces"
            )
        );
        assert_eq!(
            c.metrics,
            export(
                OtlpProtocol::HttpProtobuf,
                "https://otlp.example.com:4318/v1/metrics"
            )
        );
        assert!(c.traces.as_ref().is_some_and(SignalExport::tls));

        // A signal's own endpoint is used as it is; its protocol overrides the common one.
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/custom/traces",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ])
        .expect("mixed");
        assert_eq!(
            c.traces,
            export(OtlpProtocol::HttpJson, "http://c:4318/custom/traces")
        );
        assert_eq!(c.metrics, export(OtlpProtocol::Grpc, "http://c:4317"));
        assert!(!c.traces.as_ref().is_some_and(SignalExport::tls));
        assert_eq!(
            c.describe(),
            "traces over OTLP http/json to http://c:4318/custom/traces, \
             metrics over OTLP grpc to http://c:4317"
        );

        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "HTTP/PROTOBUF"),
        ])
        .expect("case-insensitive");
        assert_eq!(
            c.metrics,
            export(OtlpProtocol::HttpProtobuf, "http://c:4318/v1/metrics")
        );
    }

    #[test]
    fn refuses_other_protocols_and_endpoints_naming_the_variable() {
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/thrift"),
        ])
        .expect_err("http/thrift is refused");
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/thrift"),
            "{e}"
        );
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc/json"),
        ])
        .expect_err("grpc/json is refused");
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc/json"),
            "{e}"
        );
        let e = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317")])
            .expect_err("an endpoint without a scheme is refused");
        assert!(
            e.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT=c:4317"),
            "{e}"
        );
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "unix:///run/otel.sock",
            ),
        ])
        .expect_err("unix:// is refused");
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=unix:///run/otel.sock"),
            "{e}"
        );
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "/etc/ca.pem"),
        ])
        .expect_err("a CA file variable is refused");
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE is not supported"),
            "{e}"
        );
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
        ])
        .expect_err("zipkin is refused");
        assert!(e.to_string().contains("OTEL_TRACES_EXPORTER=zipkin"), "{e}");
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
        ])
        .expect_err("zstd is refused");
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_COMPRESSION=zstd is not supported"),
            "{e}"
        );
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "deflate"),
        ])
        .expect_err("a signal's unsupported compression is refused");
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION=deflate"),
            "{e}"
        );
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", " gzip"),
        ])
        .expect_err("a padded value, which the exporter would ignore, is refused");
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION= gzip"),
            "{e}"
        );
    }
}
