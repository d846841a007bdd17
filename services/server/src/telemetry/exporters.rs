//! The OTLP exporters and the providers that feed them: the batch span processor and the
//! periodic metric reader, each on its own thread, with the service's resource.

use anyhow::Context as _;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::DEFAULT_SERVICE_NAME;
use super::otlp::{OtlpProtocol, SignalExport};

/// The resource: `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` as the SDK reads them, with
/// [`DEFAULT_SERVICE_NAME`] when neither names the service.
pub(super) fn resource() -> opentelemetry_sdk::Resource {
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

/// The tracer provider: spans batched to the OTLP exporter for `export`.
pub(super) fn tracer_provider(
    resource: &Resource,
    export: &SignalExport,
) -> anyhow::Result<SdkTracerProvider> {
    Ok(SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(span_exporter(export)?)
        .build())
}

/// The meter provider: metrics read periodically into the OTLP exporter for `export`.
pub(super) fn meter_provider(
    resource: &Resource,
    export: &SignalExport,
) -> anyhow::Result<SdkMeterProvider> {
    Ok(SdkMeterProvider::builder()
        .with_resource(resource.clone())
        .with_periodic_exporter(metric_exporter(export)?)
        .build())
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
