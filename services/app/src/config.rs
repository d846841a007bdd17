//! Settings: one place that lists every one of them. Each flag also reads its `PROTOCOL_*`
//! environment variable, and any of them may also come from a YAML file (`--config`);
//! `protocol-server --help` prints them all (docs/configuration.md).
//!
//! Precedence, strongest first: command-line flag, environment variable, config file, default.
//! clap does the first two and the defaults; [`Settings::load_from`] puts the file's values in
//! only where clap says a setting fell back to its default, then lets clap parse (and validate)
//! everything, so a bad value in the file gets the same error as a bad flag.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{CommandFactory, Parser, ValueEnum};
use serde::Deserialize;

pub use crate::decision_log::MaskRule;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "protocol-server",
    version,
    about = "Treatment-protocol service: eligibility, depth limits and plans over REST and gRPC"
)]
pub struct Settings {
    /// YAML file of settings, keyed by the names below (`http_addr: 0.0.0.0:8080`); flags and
    /// environment variables override it.
    #[arg(long, env = "PROTOCOL_CONFIG")]
    pub config: Option<PathBuf>,

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

    /// Redis URL for rule-set publishing and propagation (`redis://`, or `rediss://` for TLS;
    /// `rediss://user:password@host:6380/0` with an ACL user); without it (and without
    /// sentinels), bundled rule sets only.
    #[arg(long, env = "PROTOCOL_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// When Redis holds no active rule set at start, publish and activate the local ones (bundled
    /// or `--rulesets-dir`): for a first deployment only. Off, an empty Redis is an alarm: it may
    /// have lost its data, and seeding it would roll every clinic back.
    #[arg(
        long,
        env = "PROTOCOL_SEED_EMPTY_REDIS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub seed_empty_redis: bool,

    /// Seconds a replica that would seed an empty Redis (`--seed-empty-redis`) waits first, and
    /// seeds only if Redis stayed empty. Replicas still running put back the state they verified
    /// within a reconcile of Redis coming back (`store::lineage`): a Redis that lost its data is
    /// restored by them, not seeded with bundled rule sets. Longer than the reconcile interval
    /// plus the re-subscription backoff (2 s).
    #[arg(long, env = "PROTOCOL_SEED_GRACE_SECS", default_value_t = 10)]
    pub seed_grace_secs: u64,

    /// Lets the API key that published a version approve serving the loosenings it brings (a
    /// single-person clinic). Off, an activation or rollback that loosens what any clinic is
    /// served needs an approval from another key (four eyes).
    #[arg(
        long,
        env = "PROTOCOL_ADMIN_SINGLE_PERSON_APPROVAL",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub single_person_approval: bool,

    /// Redis ACL username; overrides the URL's.
    #[arg(long, env = "PROTOCOL_REDIS_USERNAME")]
    pub redis_username: Option<String>,

    /// Redis password; overrides the URL's. Prefer the password file.
    #[arg(long, env = "PROTOCOL_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// File holding the Redis password (a mounted secret; one trailing newline is ignored).
    #[arg(long, env = "PROTOCOL_REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<PathBuf>,

    /// PEM file of the CA certificates trusted for `rediss://` instead of the system's.
    #[arg(long, env = "PROTOCOL_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,

    /// PEM client certificate (chain) for Redis servers that require one (mutual TLS).
    #[arg(long, env = "PROTOCOL_REDIS_CERT_FILE")]
    pub redis_cert_file: Option<PathBuf>,

    /// PEM private key of the client certificate.
    #[arg(long, env = "PROTOCOL_REDIS_KEY_FILE")]
    pub redis_key_file: Option<PathBuf>,

    /// Redis Sentinels, comma-separated (`host:26379`, or `rediss://host:26379` for TLS to
    /// sentinels and master); the store follows the master they name, instead of a URL.
    #[arg(long, env = "PROTOCOL_REDIS_SENTINELS", value_delimiter = ',')]
    pub redis_sentinels: Vec<String>,

    /// The master name the sentinels monitor (required with sentinels).
    #[arg(long, env = "PROTOCOL_REDIS_MASTER_NAME")]
    pub redis_master_name: Option<String>,

    /// Replicas that must acknowledge every publish and activation (Redis WAIT) before it
    /// succeeds; else 503 / UNAVAILABLE. Unset: 1 with sentinels, 0 with a URL.
    #[arg(long, env = "PROTOCOL_REDIS_MIN_REPLICAS_ACK")]
    pub redis_min_replicas_ack: Option<u32>,

    /// Milliseconds a publish or activation waits for those acknowledgements.
    #[arg(
        long,
        env = "PROTOCOL_REDIS_REPLICA_ACK_TIMEOUT_MS",
        default_value_t = 1000
    )]
    pub redis_replica_ack_timeout_ms: u64,

    /// Seconds between reconciles of the active rule-set versions with Redis.
    #[arg(long, env = "PROTOCOL_RECONCILE_INTERVAL_SECS", default_value_t = 5)]
    pub reconcile_interval_secs: u64,

    /// Rule-set age (seconds since last confirmed current) after which the stale policy applies.
    #[arg(long, env = "PROTOCOL_MAX_STALENESS_SECS", default_value_t = 300)]
    pub max_staleness_secs: u64,

    /// What to do past the maximum staleness.
    #[arg(long, env = "PROTOCOL_STALE_POLICY", value_enum, default_value_t = StalePolicy::Serve)]
    pub stale_policy: StalePolicy,

    /// Seconds between heartbeats on idle watch streams (WatchDepthLimits, WatchRuleSets and REST
    /// rule-set events).
    #[arg(long, env = "PROTOCOL_WATCH_HEARTBEAT_SECS", default_value_t = 15)]
    pub watch_heartbeat_secs: u64,

    /// Seconds a request's whole body may take to arrive (both listeners); past it 408 /
    /// DEADLINE_EXCEEDED `BODY_TIMEOUT`, and the request's place is given back: a client sending
    /// a byte now and then holds nothing for long.
    #[arg(long, env = "PROTOCOL_BODY_READ_TIMEOUT_SECS", default_value_t = 5)]
    pub body_read_timeout_secs: u64,

    /// Per-request timeout in seconds.
    #[arg(long, env = "PROTOCOL_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,

    /// Seconds in-flight requests may drain after SIGTERM/SIGINT.
    #[arg(long, env = "PROTOCOL_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Connections each listener (REST, gRPC) holds open at most; past it a new connection is
    /// accepted and closed at once, so the backlog never fills with waiting sockets.
    #[arg(long, env = "PROTOCOL_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Connections one peer address may hold open per listener; past it its new connections are
    /// accepted and closed at once (the other clients keep their room). Behind a proxy or load
    /// balancer that does not keep client addresses, every connection comes from its address:
    /// raise this to `PROTOCOL_MAX_CONNECTIONS` there.
    #[arg(long, env = "PROTOCOL_MAX_CONNECTIONS_PER_PEER", default_value_t = 512)]
    pub max_connections_per_peer: usize,

    /// Seconds a new connection has to send its first bytes (the HTTP/1 request line or the
    /// HTTP/2 preface), and an HTTP/1 connection to send each request head (including the idle
    /// wait between requests on a kept-alive connection); then it is closed.
    #[arg(long, env = "PROTOCOL_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds between HTTP/2 keep-alive pings on idle connections (both listeners).
    #[arg(
        long,
        env = "PROTOCOL_HTTP2_KEEPALIVE_INTERVAL_SECS",
        default_value_t = 30
    )]
    pub http2_keepalive_interval_secs: u64,

    /// Seconds to wait for a ping's answer before closing the connection.
    #[arg(
        long,
        env = "PROTOCOL_HTTP2_KEEPALIVE_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub http2_keepalive_timeout_secs: u64,

    /// TCP keep-alive idle time in seconds on accepted sockets (0: off).
    #[arg(long, env = "PROTOCOL_TCP_KEEPALIVE_SECS", default_value_t = 60)]
    pub tcp_keepalive_secs: u64,

    /// Concurrent streams per HTTP/2 connection (both listeners; gRPC calls and watch streams).
    #[arg(long, env = "PROTOCOL_MAX_CONCURRENT_STREAMS", default_value_t = 100)]
    pub max_concurrent_streams: u32,

    /// Open watch streams (WatchDepthLimits, WatchRuleSets and REST rule-set events together), all
    /// keys together; past it RESOURCE_EXHAUSTED / 429.
    #[arg(long, env = "PROTOCOL_MAX_WATCH_STREAMS", default_value_t = 10_000)]
    pub max_watch_streams: usize,

    /// Open watch streams per API key (every kind together); past it RESOURCE_EXHAUSTED / 429.
    #[arg(
        long,
        env = "PROTOCOL_MAX_WATCH_STREAMS_PER_KEY",
        default_value_t = 1_000
    )]
    pub max_watch_streams_per_key: usize,

    /// Calls and streams in flight on gRPC health and reflection together (they need no key);
    /// past it RESOURCE_EXHAUSTED.
    #[arg(long, env = "PROTOCOL_MAX_HEALTH_CALLS", default_value_t = 256)]
    pub max_health_calls: usize,

    /// Requests in progress per listener (probes and gRPC health excepted); past it requests are
    /// shed at once with 503 / UNAVAILABLE and a retry delay.
    #[arg(long, env = "PROTOCOL_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,

    /// Requests in progress per API key per listener (calls without a known key share one such
    /// share); past it 429 / RESOURCE_EXHAUSTED `KEY_BUSY`, so one key never takes every place.
    #[arg(long, env = "PROTOCOL_MAX_IN_FLIGHT_PER_KEY", default_value_t = 256)]
    pub max_in_flight_per_key: usize,

    /// MiB of memory all request bodies together may take while they are read and answered (each
    /// at its worst case: docs/performance.md, "Memory per request"); past it 503 / UNAVAILABLE
    /// `MEMORY_BUSY`. Keep it well under the replica's memory limit less its resting size.
    #[arg(long, env = "PROTOCOL_REQUEST_MEMORY_MB", default_value_t = 64)]
    pub request_memory_mb: u64,

    /// Requests per API key per rate-limit window, REST and gRPC together (0: no rate limit);
    /// past it 429 / RESOURCE_EXHAUSTED.
    #[arg(long, env = "PROTOCOL_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,

    /// The rate-limit window in seconds: the quota refills evenly over it.
    #[arg(long, env = "PROTOCOL_RATE_LIMIT_WINDOW_SECS", default_value_t = 60)]
    pub rate_limit_window_secs: u64,

    /// Origins allowed to call the REST API from a browser (CORS), comma-separated
    /// (`https://app.example.com`); empty: no CORS headers.
    #[arg(
        long,
        env = "PROTOCOL_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,

    /// PostgreSQL connection string of the decision log (`postgres://user:password@host/db`, or
    /// `host=... user=... dbname=...`); without it, decisions are not logged. Each decision is
    /// written asynchronously, fact values masked (docs/operate.md, "Decision log").
    #[arg(long, env = "PROTOCOL_DECISION_LOG_URL", hide_env_values = true)]
    pub decision_log_url: Option<String>,

    /// Decisions the decision log holds in memory waiting to be written; past it, the
    /// `--decision-log-when-full` policy applies.
    #[arg(long, env = "PROTOCOL_DECISION_LOG_QUEUE", default_value_t = 10_000)]
    pub decision_log_queue: usize,

    /// Most decisions written per insert.
    #[arg(long, env = "PROTOCOL_DECISION_LOG_BATCH", default_value_t = 500)]
    pub decision_log_batch: usize,

    /// When the decision-log queue is full: drop the decision (answered, not logged, counted), or
    /// wait for room up to `--decision-log-wait-ms` first (back-pressure), then drop and count.
    #[arg(
        long,
        env = "PROTOCOL_DECISION_LOG_WHEN_FULL",
        value_enum,
        default_value_t = DecisionLogWhenFull::Drop
    )]
    pub decision_log_when_full: DecisionLogWhenFull,

    /// Milliseconds a decision waits for room in a full decision-log queue under the `wait`
    /// policy.
    #[arg(long, env = "PROTOCOL_DECISION_LOG_WAIT_MS", default_value_t = 200)]
    pub decision_log_wait_ms: u64,

    /// Days a logged decision is kept; older rows are deleted hourly. Unset: kept until deleted
    /// by hand.
    #[arg(long, env = "PROTOCOL_DECISION_LOG_RETENTION_DAYS")]
    pub decision_log_retention_days: Option<u32>,

    /// How many of each clinic's latest logged decisions a dry run of an activation or rollback
    /// decides again on the candidate rule sets, to show the change's impact on real traffic.
    #[arg(
        long,
        env = "PROTOCOL_DECISION_LOG_IMPACT_SAMPLE",
        default_value_t = 200
    )]
    pub decision_log_impact_sample: u32,

    /// Facts the decision log masks, comma-separated `FACT:drop` (not stored) or `FACT:hash`
    /// (stored as an HMAC-SHA256 keyed with `--decision-log-mask-key-file`), e.g.
    /// `pregnant:drop,date_of_birth:hash`. Facts not named are stored as given (so that their
    /// decisions can be replayed). A name no rule set declares is refused at start.
    #[arg(long, env = "PROTOCOL_DECISION_LOG_MASK", value_delimiter = ',')]
    pub decision_log_mask: Vec<MaskRule>,

    /// File holding the secret key of `hash` masking (at least 16 bytes; one trailing newline is
    /// ignored). Keep it: the same key hashes the same value the same way across restarts.
    #[arg(long, env = "PROTOCOL_DECISION_LOG_MASK_KEY_FILE")]
    pub decision_log_mask_key_file: Option<PathBuf>,

    /// The secret key of `hash` masking inline; prefer the key file.
    #[arg(long, env = "PROTOCOL_DECISION_LOG_MASK_KEY", hide_env_values = true)]
    pub decision_log_mask_key: Option<String>,

    /// FHIR servers (base URLs, comma-separated) the CDS Hooks service may read what an EHR did
    /// not prefetch from, with the access token of the hook call (`fhirServer`,
    /// `fhirAuthorization`); empty (the default): prefetch only, no FHIR server is ever called.
    #[arg(
        long,
        env = "PROTOCOL_CDS_FHIR_SERVERS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cds_fhir_servers: Vec<String>,

    /// A CDS Hooks card for an appointment checked `eligible` too (an `info` card saying it is
    /// bookable). Off: such an appointment gets no card, as the CDS Hooks guidance on alert
    /// fatigue suggests; the response's `extension` tells it from one that was not checked.
    #[arg(
        long,
        env = "PROTOCOL_CDS_BOOKABLE_CARDS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub cds_bookable_cards: bool,

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
pub enum DecisionLogWhenFull {
    /// Answer the decision at once; it is not logged, and counted as dropped.
    Drop,
    /// Hold the request until there is room (at most `--decision-log-wait-ms`), then drop.
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A bad flag, variable or file value, or `--help`/`--version`: clap prints and exits.
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The config file is unreadable, not YAML, or names a setting that does not exist.
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
}

/// One value of the config file; rendered back to the text a flag would carry.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl FileValue {
    fn into_arg(self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Text(t) => t,
        }
    }
}

impl Settings {
    /// Reads the settings of this process: flags, `PROTOCOL_*` variables and the config file.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::args_os())
    }

    /// Reads settings from these arguments (the first is the program name), the environment, and
    /// the config file they or the environment name.
    pub fn load_from<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let command = Self::command();
        let matches = command.clone().try_get_matches_from(&args)?;
        let Some(path) = matches.get_one::<PathBuf>("config").cloned() else {
            return Ok(Self::try_parse_from(&args)?);
        };
        let mut from_file = Vec::new();
        for (key, value) in read_file(&path)? {
            let id = key.replace('-', "_");
            let arg = command
                .get_arguments()
                .find(|a| a.get_id().as_str() == id && id != "config");
            let Some(long) = arg.and_then(|a| a.get_long()) else {
                let known: Vec<&str> = command
                    .get_arguments()
                    .map(|a| a.get_id().as_str())
                    .filter(|id| !matches!(*id, "config" | "help" | "version"))
                    .collect();
                return Err(ConfigError::File {
                    path: path.display().to_string(),
                    message: format!("unknown setting '{key}' (settings: {})", known.join(", ")),
                });
            };
            // A flag or a variable set it: they win over the file.
            if matches!(
                matches.value_source(&id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            from_file.push(OsString::from(format!("--{long}")));
            from_file.push(OsString::from(value.into_arg()));
        }
        let mut merged = Vec::with_capacity(args.len() + from_file.len());
        merged.extend(args.first().cloned());
        merged.extend(from_file);
        merged.extend(args.into_iter().skip(1));
        Ok(Self::try_parse_from(merged)?)
    }
}

/// The config file: a YAML mapping of setting names to scalars.
fn read_file(path: &Path) -> Result<BTreeMap<String, FileValue>, ConfigError> {
    let fail = |message: String| ConfigError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_saphyr::from_str(&text).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("written");
        f
    }

    #[test]
    fn the_file_fills_in_what_no_flag_sets() {
        let f =
            file("http_addr: 127.0.0.1:9090\nstale-policy: fail-closed\nmax_staleness_secs: 60\n");
        let path = f.path().to_str().expect("utf-8 path");
        let s = Settings::load_from(["protocol-server", "--config", path]).expect("loads");
        assert_eq!(s.http_addr.port(), 9090);
        assert_eq!(s.stale_policy, StalePolicy::FailClosed);
        assert_eq!(s.max_staleness_secs, 60);
        assert_eq!(s.grpc_addr.port(), 50051, "unset in the file: the default");
    }

    #[test]
    fn a_flag_beats_the_file() {
        let f = file("http_addr: 127.0.0.1:9090\n");
        let path = f.path().to_str().expect("utf-8 path");
        let s = Settings::load_from([
            "protocol-server",
            "--http-addr",
            "127.0.0.1:7070",
            "--config",
            path,
        ])
        .expect("loads");
        assert_eq!(s.http_addr.port(), 7070);
    }

    #[test]
    fn an_unknown_setting_in_the_file_is_named() {
        let f = file("htp_addr: 127.0.0.1:9090\n");
        let path = f.path().to_str().expect("utf-8 path");
        let err = Settings::load_from(["protocol-server", "--config", path]).expect_err("refused");
        let message = err.to_string();
        assert!(message.contains("unknown setting 'htp_addr'"), "{message}");
        assert!(message.contains("http_addr"), "{message}");
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_setting() {
        let f = file("http_addr: not-an-address\n");
        let path = f.path().to_str().expect("utf-8 path");
        let err = Settings::load_from(["protocol-server", "--config", path]).expect_err("refused");
        assert!(err.to_string().contains("--http-addr"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_default() {
        let err =
            Settings::load_from(["protocol-server", "--config", "/nonexistent/protocol.yaml"])
                .expect_err("refused");
        assert!(
            err.to_string().contains("/nonexistent/protocol.yaml"),
            "{err}"
        );
    }
}
