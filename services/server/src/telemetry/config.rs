//! Reading the `OTEL_*` variables into an [`OtelConfig`]: per signal (traces, metrics), whether it
//! is exported, over which protocol, compressed or not, and where to. A value this build cannot
//! honour is refused here, naming the variable, rather than ignored by the exporter.

use anyhow::bail;

use super::otlp::{OtlpCompression, OtlpProtocol, SignalExport};

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
        let vars = Vars(&var);
        if vars
            .get("OTEL_SDK_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Ok(Self::default());
        }
        // Traces first: of two refused values, the one named is the traces'.
        let traces = Signal::TRACES.export(&vars)?;
        let metrics = Signal::METRICS.export(&vars)?;
        Ok(Self { traces, metrics })
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

/// The variables, read through the caller's function.
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    /// A variable's value, trimmed; an empty one is unset.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A variable's value as it is (not trimmed, as the exporter reads it); a blank one is unset.
    fn raw(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }
}

/// One signal: its name, as in the variables' names, and the path OTLP/HTTP posts it to.
struct Signal {
    name: &'static str,
    upper: &'static str,
    path: &'static str,
}

impl Signal {
    const TRACES: Self = Self {
        name: "traces",
        upper: "TRACES",
        path: "/v1/traces",
    };
    const METRICS: Self = Self {
        name: "metrics",
        upper: "METRICS",
        path: "/v1/metrics",
    };

    /// How the signal is exported: `None` without an endpoint or with its exporter `none`.
    /// The checks run in this order, so that the first refusal is the one named: exporter,
    /// protocol, endpoint scheme, certificate files, compression.
    fn export(&self, vars: &Vars<'_>) -> anyhow::Result<Option<SignalExport>> {
        let Some((endpoint_var, endpoint, generic)) = self.endpoint(vars) else {
            return Ok(None);
        };
        if !self.exported(vars)? {
            return Ok(None);
        }
        let protocol = self.protocol(vars)?;
        if is_https(&endpoint_var, &endpoint, protocol)? {
            self.refuse_certificate_files(vars)?;
        }
        let compression = self.compression(vars)?;
        let endpoint = if generic && protocol != OtlpProtocol::Grpc {
            // What the exporter does with the common endpoint over HTTP (the spec's rule).
            format!(
                "{}{}",
                endpoint.strip_suffix('/').unwrap_or(&endpoint),
                self.path
            )
        } else {
            endpoint
        };
        Ok(Some(SignalExport {
            protocol,
            compression,
            endpoint,
        }))
    }

    /// The endpoint: the variable it was read from, its value, and whether it is the common one
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`) rather than the signal's own.
    fn endpoint(&self, vars: &Vars<'_>) -> Option<(String, String, bool)> {
        let upper = self.upper;
        let specific_endpoint = format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT");
        match vars.get(&specific_endpoint) {
            Some(e) => Some((specific_endpoint, e, false)),
            None => vars
                .get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|e| ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), e, true)),
        }
    }

    /// `OTEL_{SIGNAL}_EXPORTER`: unset or `otlp` exports, `none` turns the signal off, anything
    /// else is refused.
    fn exported(&self, vars: &Vars<'_>) -> anyhow::Result<bool> {
        let (signal, upper) = (self.name, self.upper);
        let exporter_var = format!("OTEL_{upper}_EXPORTER");
        match vars.get(&exporter_var).as_deref() {
            None | Some("otlp") => Ok(true),
            Some("none") => Ok(false),
            Some(other) => bail!(
                "{exporter_var}={other} is not supported: this build exports {signal} with \
                 `otlp` only (or `none` to turn them off)"
            ),
        }
    }

    /// The signal's protocol variable, else the common one, else `grpc`.
    fn protocol(&self, vars: &Vars<'_>) -> anyhow::Result<OtlpProtocol> {
        let upper = self.upper;
        let specific = format!("OTEL_EXPORTER_OTLP_{upper}_PROTOCOL");
        let (protocol_var, value) = match vars.get(&specific) {
            Some(p) => (specific, p),
            None => (
                "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
                vars.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                    .unwrap_or_else(|| "grpc".into()),
            ),
        };
        let Some(protocol) = OtlpProtocol::parse(&value) else {
            bail!(
                "{protocol_var}={value} is not supported: use `grpc` (this service's \
                 default, the collector's port 4317), `http/protobuf` or `http/json` (OTLP \
                 over HTTP, port 4318)"
            );
        };
        Ok(protocol)
    }

    /// The exporter does not read these: ignored, they would leave an https:// export failing
    /// on the certificate.
    fn refuse_certificate_files(&self, vars: &Vars<'_>) -> anyhow::Result<()> {
        let upper = self.upper;
        for file in ["CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"] {
            for name in [
                format!("OTEL_EXPORTER_OTLP_{upper}_{file}"),
                format!("OTEL_EXPORTER_OTLP_{file}"),
            ] {
                if vars.get(&name).is_some() {
                    bail!(
                        "{name} is not supported: this build trusts the system's CA \
                         certificates for https:// OTLP endpoints (point SSL_CERT_FILE or \
                         SSL_CERT_DIR at a private CA instead) and has no client \
                         certificates (mTLS)"
                    );
                }
            }
        }
        Ok(())
    }

    /// The exporter reads these itself (the signal's variable, else the common one; values as
    /// they are, case-insensitive, an empty one as unset) and only warns about a value it cannot
    /// use, exporting uncompressed: refused here instead.
    fn compression(&self, vars: &Vars<'_>) -> anyhow::Result<OtlpCompression> {
        let upper = self.upper;
        for name in [
            format!("OTEL_EXPORTER_OTLP_{upper}_COMPRESSION"),
            "OTEL_EXPORTER_OTLP_COMPRESSION".to_owned(),
        ] {
            let Some(value) = vars.raw(&name) else {
                continue;
            };
            let Some(c) = OtlpCompression::parse(&value) else {
                bail!(
                    "{name}={value} is not supported: use `gzip` or `none` (no compression, \
                     the default); this build has no other compression (no `zstd`)"
                );
            };
            return Ok(c);
        }
        Ok(OtlpCompression::None)
    }
}

/// Whether the endpoint is `https://`; one that is neither `http://` nor `https://` is refused,
/// naming its variable.
fn is_https(endpoint_var: &str, endpoint: &str, protocol: OtlpProtocol) -> anyhow::Result<bool> {
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
    Ok(scheme.as_deref() == Some("https"))
}
