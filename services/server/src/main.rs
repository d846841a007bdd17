//! `protocol-server`: reads the settings (flags, `PROTOCOL_*` variables, an optional config file), starts telemetry (logs,
//! and OpenTelemetry export when the `OTEL_*` variables ask for it) and
//! serves REST and gRPC until SIGTERM/SIGINT. Everything else is in the library.

use std::process::ExitCode;

use protocol_server::config::{ConfigError, Settings};
use protocol_server::{startup, telemetry};

/// mimalloc: the request path allocates many small strings (fact ids, JSON values) on several
/// threads at once, where glibc's allocator costs a tenth of the CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        // `--help`, `--version`, or a bad flag or variable: clap prints it and picks the exit code.
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("protocol-server: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("protocol-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Inside the runtime (the OTLP/gRPC exporters need it); dropped before it, so the last spans
    // and metrics are flushed while the runtime still runs.
    let _telemetry = match runtime.block_on(async { telemetry::init(settings.log_format) }) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("protocol-server: cannot start telemetry: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(startup::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "protocol-server failed");
            eprintln!("protocol-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
