//! The OTLP vocabulary of the `OTEL_*` variables: the protocol (transport and encoding), the
//! payload compression, and how one signal is exported.

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

    pub(super) fn parse(value: &str) -> Option<Self> {
        [Self::Grpc, Self::HttpProtobuf, Self::HttpJson]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(value))
    }

    pub(super) fn otlp(self) -> opentelemetry_otlp::Protocol {
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
    pub(super) fn parse(value: &str) -> Option<Self> {
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
