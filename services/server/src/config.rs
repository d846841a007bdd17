//! Settings: one place that lists every one of them. Each flag also reads its `PROTOCOL_*`
//! environment variable; `protocol-server --help` prints them all (docs/configuration.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "protocol-server",
    version,
    about = "Treatment-protocol service: eligibility, depth limits and plans over REST and gRPC"
)]
pub struct Settings {
    /// REST listener address.
    #[arg(long, env = "PROTOCOL_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// gRPC listener address.
    #[arg(long, env = "PROTOCOL_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// Folder of rule-set files (base.yaml and clinics/*.yaml) replacing the bundled ones.
    #[arg(long, env = "PROTOCOL_RULESETS_DIR")]
    pub rulesets_dir: Option<PathBuf>,

    /// YAML file of API-key hashes; without it the server runs open, on loopback only.
    #[arg(long, env = "PROTOCOL_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,

    /// API-key hashes inline, in the keys-file format (YAML or JSON); used when no keys file is set.
    #[arg(long, env = "PROTOCOL_API_KEYS")]
    pub api_keys: Option<String>,

    /// Redis URL for rule-set publishing and propagation; without it, bundled rule sets only.
    #[arg(long, env = "PROTOCOL_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Seconds between reconciles of the active rule-set versions with Redis.
    #[arg(long, env = "PROTOCOL_RECONCILE_INTERVAL_SECS", default_value_t = 5)]
    pub reconcile_interval_secs: u64,

    /// Rule-set age (seconds since last confirmed current) after which the stale policy applies.
    #[arg(long, env = "PROTOCOL_MAX_STALENESS_SECS", default_value_t = 300)]
    pub max_staleness_secs: u64,

    /// What to do past the maximum staleness.
    #[arg(long, env = "PROTOCOL_STALE_POLICY", value_enum, default_value_t = StalePolicy::Serve)]
    pub stale_policy: StalePolicy,

    /// Seconds between heartbeats on idle WatchDepthLimits streams.
    #[arg(long, env = "PROTOCOL_WATCH_HEARTBEAT_SECS", default_value_t = 15)]
    pub watch_heartbeat_secs: u64,

    /// Per-request timeout in seconds.
    #[arg(long, env = "PROTOCOL_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,

    /// Seconds in-flight requests may drain after SIGTERM/SIGINT.
    #[arg(long, env = "PROTOCOL_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Log format on stdout.
    #[arg(long, env = "PROTOCOL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StalePolicy {
    /// Keep answering from the last good rule set; `/readyz` says it is stale.
    Serve,
    /// Refuse decisions with 503 / UNAVAILABLE once past the maximum staleness.
    FailClosed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}
