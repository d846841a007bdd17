//! `OtelConfig::from_env`: which signals are exported, how, where, and what is refused.

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
