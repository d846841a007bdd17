//! `propagation`: measures how fast a rule-set activation reaches the fleet (what
//! `scripts/propagation` runs).
//!
//! It starts a `redis-server` on a free port and two `protocol-server` replicas (A and B) on it,
//! opens `--watchers` `WatchDepthLimits` streams on replica B (default 1,000, spread over
//! `--connections` HTTP/2 connections, default 10), then `--activations` times (default 100)
//! publishes a new Aurora overlay version (cheeks cap alternating between 0.8 and 0.9 mm) and
//! activates it through replica A's gRPC admin API, and measures, from the moment the activation
//! call is sent (and from the moment the publish call is sent):
//!
//! - served on A / served on B: until `GetDepthLimits` on that replica answers with the new version
//!   (polled every millisecond);
//! - delivered: until each watching stream has received the new limits (one sample per stream and
//!   activation).
//!
//! and prints p50, p90, p99 and max of each. Everything runs on this machine: the client's own
//! scheduling of 1,000 streams is part of the delivered figure.
//!
//! ```text
//! propagation [--activations 100] [--watchers 1000] [--connections 10] [--server BIN]
//! ```
//! The server binary is the one the test harness builds (release when this binary is built with
//! `--release`), or `--server` / `PROTOCOL_SERVER_BIN`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use protocol_tests::pb::rule_set_admin_service_client::RuleSetAdminServiceClient;
use protocol_tests::pb::treatment_protocol_service_client::TreatmentProtocolServiceClient;
use protocol_tests::redis_server::RedisServer;
use protocol_tests::{KEY_AURORA, ServerBuilder, pb};
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

const AURORA_YAML: &str = include_str!("../../../rulesets/clinics/clinic-aurora.yaml");
const BUNDLED_VERSION: &str = "2026.11.1";

struct Args {
    activations: usize,
    watchers: usize,
    connections: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        activations: 100,
        watchers: 1000,
        connections: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--activations" => args.activations = value()?.parse()?,
            "--watchers" => args.watchers = value()?.parse()?,
            "--connections" => args.connections = value()?.parse()?,
            "--server" => set_server_bin(&value()?),
            "-h" | "--help" => {
                println!(
                    "propagation [--activations N] [--watchers N] [--connections N] [--server BIN]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.activations == 0 || args.connections == 0 {
        bail!("--activations and --connections must be at least 1");
    }
    Ok(args)
}

/// The harness reads `PROTOCOL_SERVER_BIN`; edition 2024 makes `set_var` unsafe, which this
/// workspace forbids, so `--server` re-executes this program with the variable set.
fn set_server_bin(path: &str) {
    if std::env::var_os("PROTOCOL_SERVER_BIN").is_some() {
        return;
    }
    let me = std::env::current_exe().unwrap_or_else(|_| "propagation".into());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = std::process::Command::new(me)
        .args(args)
        .env("PROTOCOL_SERVER_BIN", path)
        .status();
    std::process::exit(status.map(|s| s.code().unwrap_or(1)).unwrap_or(1));
}

fn aurora(version: &str, cheeks_mm: f64) -> String {
    AURORA_YAML
        .replace(
            &format!("version: \"{BUNDLED_VERSION}\""),
            &format!("version: \"{version}\""),
        )
        .replace(
            "zones: {cheeks: 1.2,",
            &format!("zones: {{cheeks: {cheeks_mm},"),
        )
}

fn with_key<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(value) = format!("Bearer {KEY_AURORA}").parse::<MetadataValue<_>>() {
        req.metadata_mut().insert("authorization", value);
    }
    req
}

fn depth_request() -> pb::GetDepthLimitsRequest {
    pb::GetDepthLimitsRequest {
        treatment: "microneedling".into(),
        device: "dermapen_4".into(),
        role: "physician".into(),
        zone: Some("cheeks".into()),
        ..Default::default()
    }
}

async fn served_version(client: &mut TreatmentProtocolServiceClient<Channel>) -> String {
    client
        .get_depth_limits(with_key(depth_request()))
        .await
        .ok()
        .and_then(|r| r.into_inner().ruleset)
        .map(|r| r.version)
        .unwrap_or_default()
}

/// Polls a replica every millisecond until it serves `version`; the time since `start`.
async fn until_served(
    mut client: TreatmentProtocolServiceClient<Channel>,
    version: &str,
    start: Instant,
) -> Option<Duration> {
    while start.elapsed() < Duration::from_secs(10) {
        if served_version(&mut client).await == version {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<28} n={:<7} p50={:>7.1} ms  p90={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 90.0)),
        ms(percentile(&samples, 99.0)),
        ms(samples.last().copied().unwrap_or_default()),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let redis = RedisServer::start()?;
    // Default reconcile interval (5 s): what is measured is the pub/sub path.
    let replica = || {
        ServerBuilder::new()
            .with_keys()
            .with_redis(&redis)
            .env("PROTOCOL_RECONCILE_INTERVAL_SECS", "5")
            .env("RUST_LOG", "warn,protocol_server=info")
            .spawn()
    };
    let a = replica()?;
    let b = replica()?;
    eprintln!(
        "redis on {}, replica A on {} / {}, replica B on {} / {}",
        redis.port(),
        a.http,
        a.grpc,
        b.http,
        b.grpc
    );

    let mut admin = RuleSetAdminServiceClient::new(a.channel().await?);
    let versions: Vec<(String, f64)> = (1..=args.activations)
        .map(|i| (format!("2027.1.{i}"), if i % 2 == 1 { 0.8 } else { 0.9 }))
        .collect();

    // The watchers: each reports (version, when) for every limits message after the first.
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(b.channel().await?);
    }
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    for n in 0..args.watchers {
        let mut client = TreatmentProtocolServiceClient::new(channels[n % channels.len()].clone());
        let tx = tx.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let Ok(response) = client
                .watch_depth_limits(with_key(depth_request().into()))
                .await
            else {
                eprintln!("watch {n} refused");
                return;
            };
            let mut stream = response.into_inner();
            // The opening message: the limits now.
            if !matches!(stream.message().await, Ok(Some(_))) {
                return;
            }
            ready.add_permits(1);
            while let Ok(Some(update)) = stream.message().await {
                let now = Instant::now();
                if let Some(pb::watch_depth_limits_response::Update::Limits(l)) = update.update {
                    let version = l.ruleset.map(|r| r.version).unwrap_or_default();
                    if tx.send((version, now)).is_err() {
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    let opened = tokio::time::timeout(
        Duration::from_secs(60),
        ready.acquire_many(u32::try_from(args.watchers).unwrap_or(u32::MAX)),
    )
    .await;
    if !matches!(opened, Ok(Ok(_))) {
        bail!(
            "only {} of {} watch streams opened",
            ready.available_permits(),
            args.watchers
        );
    }
    eprintln!(
        "{} watch streams open on replica B over {} connections",
        args.watchers, args.connections
    );

    let grpc_a = a.grpc().await?;
    let grpc_b = b.grpc().await?;
    let mut publish_rtt = Vec::new();
    let mut activate_rtt = Vec::new();
    let mut published_served_b = Vec::new();
    let mut published_delivered = Vec::new();
    let mut served_a = Vec::new();
    let mut served_b = Vec::new();
    let mut delivered = Vec::new();
    let mut missing = 0usize;
    let mut current = BUNDLED_VERSION.to_owned();
    for (version, mm) in &versions {
        // Publish (validated against the active base, stored), then activate.
        let published = Instant::now();
        admin
            .publish_rule_set(with_key(pb::PublishRuleSetRequest {
                document: aurora(version, *mm),
                format: pb::DocumentFormat::Yaml as i32,
            }))
            .await
            .with_context(|| format!("publishing {version}"))?;
        publish_rtt.push(published.elapsed());
        let start = Instant::now();
        let activation = admin.activate_rule_set(with_key(pb::ActivateRuleSetRequest {
            id: "clinic-aurora".into(),
            version: version.clone(),
            expected_current: Some(current.clone()),
            expect_none_active: false,
        }));
        let (activated, on_a, on_b) = tokio::join!(
            async {
                let r = activation.await;
                (r, start.elapsed())
            },
            until_served(grpc_a.clone(), version, start),
            until_served(grpc_b.clone(), version, start),
        );
        activated
            .0
            .with_context(|| format!("activating {version}"))?;
        activate_rtt.push(activated.1);
        let on_a = on_a.with_context(|| format!("A never served {version}"))?;
        let on_b = on_b.with_context(|| format!("B never served {version}"))?;
        let publishing = start - published;
        served_a.push(on_a);
        served_b.push(on_b);
        published_served_b.push(on_b + publishing);

        // Every watcher's message for this version (or time out after 5 s).
        let mut got = 0usize;
        let deadline = start + Duration::from_secs(5);
        while got < args.watchers {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((v, at))) if &v == version => {
                    delivered.push(at.saturating_duration_since(start));
                    published_delivered.push(at.saturating_duration_since(published));
                    got += 1;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        missing += args.watchers - got;
        current = version.clone();
        // Let the fleet settle between activations.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!(
        "propagation: {} activations on replica A, {} watch streams on replica B ({} HTTP/2 connections)",
        args.activations, args.watchers, args.connections
    );
    report("publish call (A)", publish_rtt);
    report("activate call (A)", activate_rtt);
    report("activate -> served on A", served_a);
    report("activate -> served on B", served_b);
    report("activate -> delivered (B)", delivered);
    report("publish -> served on B", published_served_b);
    report("publish -> delivered (B)", published_delivered);
    if missing > 0 {
        println!("WARNING: {missing} deliveries missing (not received within 5 s)");
    }
    Ok(())
}
