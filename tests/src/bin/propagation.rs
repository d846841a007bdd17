//! `propagation`: how fast a rule-set activation reaches 10,000 watch streams on one replica, what
//! an open stream costs in memory, and what Redis carries (what `scripts/propagation` runs).
//!
//! **Propagation.** Starts a `redis-server` on a free port and two `protocol-server` replicas (A
//! and B) on it, opens `--watchers` streams on replica B (default 10,000), mixed by `--mix`
//! (default `1:1:1`): gRPC `WatchDepthLimits`, gRPC `WatchRuleSets`, and REST Server-Sent Events
//! (`GET /v1/rulesets:watch`, over HTTP/2), at most `--per-connection` (default 100, the server's
//! stream cap per connection) on each HTTP/2 connection. Then `--activations` times (default 50)
//! it publishes a new Aurora overlay version (cheeks cap 0.01 mm lower each time, so every stream
//! has something new to say and each activation tightens: no approval is needed) and activates it through replica A's gRPC admin API, and
//! measures, from the moment the publish (and the activation) call is sent, until each stream has
//! received the new version (one sample per stream and activation), and until `GetDepthLimits`
//! on A and B names it (polled every millisecond). Memory: replica B's resident set before the
//! streams are opened and once they are open, divided by their number.
//!
//! **Redis load** (unless `--skip-redis-load`). A fresh `redis-server` and two replicas reconciling
//! every `--reconcile-secs` (default 1): Redis commands (`INFO commandstats`, its own `INFO`
//! calls left out) over an idle window of `--window-secs` (default 10), over the same window while
//! `--requests` eligibility requests (default 20,000, REST, half on each replica) are answered, and
//! idle again with a third replica: commands per request, and commands per second per replica.
//!
//! Everything runs on this machine: Redis, the replicas and this client share its cores, and the
//! client's own scheduling of its streams is part of the delivered figures.
//!
//! ```text
//! propagation [--activations 50] [--watchers 10000] [--mix 1:1:1] [--per-connection 100]
//!             [--requests 20000] [--window-secs 10] [--reconcile-secs 1] [--skip-redis-load]
//!             [--server BIN]
//! ```
//! The server binary is the one the test harness builds (release when this binary is built with
//! `--release`), or `--server` / `PROTOCOL_SERVER_BIN`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a measuring tool of the test suite: it stops loudly on what it cannot measure (the workspace denies these in production code)"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use protocol_tests::pb::rule_set_admin_service_client::RuleSetAdminServiceClient;
use protocol_tests::pb::treatment_protocol_service_client::TreatmentProtocolServiceClient;
use protocol_tests::redis_server::RedisServer;
use protocol_tests::{KEY_AURORA, Server, ServerBuilder, pb, sse};
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

const AURORA_YAML: &str = include_str!("../../../rulesets/clinics/clinic-aurora.yaml");
const BUNDLED_VERSION: &str = "2026.12.0";

struct Args {
    activations: usize,
    watchers: usize,
    mix: [usize; 3],
    per_connection: usize,
    requests: usize,
    window_secs: u64,
    reconcile_secs: u64,
    redis_load: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        activations: 50,
        watchers: 10_000,
        mix: [1, 1, 1],
        per_connection: 100,
        requests: 20_000,
        window_secs: 10,
        reconcile_secs: 1,
        redis_load: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--activations" => args.activations = value()?.parse()?,
            "--watchers" => args.watchers = value()?.parse()?,
            "--mix" => {
                let v = value()?;
                let parts: Vec<usize> = v
                    .split(':')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("--mix {v}: depth:rulesets:sse, e.g. 1:1:1"))?;
                let [d, r, s] = parts.as_slice() else {
                    bail!("--mix {v}: three parts, depth:rulesets:sse");
                };
                args.mix = [*d, *r, *s];
            }
            "--per-connection" => args.per_connection = value()?.parse()?,
            "--requests" => args.requests = value()?.parse()?,
            "--window-secs" => args.window_secs = value()?.parse()?,
            "--reconcile-secs" => args.reconcile_secs = value()?.parse()?,
            "--skip-redis-load" => args.redis_load = false,
            "--server" => set_server_bin(&value()?),
            "-h" | "--help" => {
                println!(
                    "propagation [--activations N] [--watchers N] [--mix D:R:S] \
                     [--per-connection N] [--requests N] [--window-secs S] [--reconcile-secs S] \
                     [--skip-redis-load] [--server BIN]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.activations == 0 || args.per_connection == 0 || args.mix.iter().sum::<usize>() == 0 {
        bail!("--activations, --per-connection and the --mix total must be at least 1");
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
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
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
        "{name:<46} n={:<8} p50={:>7.1} ms  p90={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 90.0)),
        ms(percentile(&samples, 99.0)),
        ms(samples.last().copied().unwrap_or_default()),
    );
}

/// Resident set of a process, in KiB (`VmRSS` of `/proc/<pid>/status`).
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat` (clock ticks of 10 ms).
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The kinds of stream, in `--mix` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Depth,
    RuleSets,
    Sse,
}

const KINDS: [Kind; 3] = [Kind::Depth, Kind::RuleSets, Kind::Sse];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Depth => "gRPC WatchDepthLimits",
            Kind::RuleSets => "gRPC WatchRuleSets",
            Kind::Sse => "SSE /v1/rulesets:watch",
        }
    }
}

/// What the load tool reads of an SSE notice.
#[derive(serde::Deserialize)]
struct Notice<'a> {
    #[serde(borrow)]
    ruleset: Option<Version<'a>>,
}

#[derive(serde::Deserialize)]
struct Version<'a> {
    version: &'a str,
}

/// A delivery: which kind of stream received which version, when.
type Delivery = (Kind, String, Instant);

/// Opens one stream of `kind` and forwards every version it is told of after the first message;
/// `ready` gets a permit once the first message has arrived.
async fn watch(
    kind: Kind,
    channel: Option<Channel>,
    http: Option<(reqwest::Client, String)>,
    tx: mpsc::UnboundedSender<Delivery>,
    ready: Arc<tokio::sync::Semaphore>,
) {
    match kind {
        Kind::Depth => {
            let Some(channel) = channel else { return };
            let mut client = TreatmentProtocolServiceClient::new(channel);
            let Ok(response) = client
                .watch_depth_limits(with_key(depth_request().into()))
                .await
            else {
                eprintln!("a WatchDepthLimits stream was refused");
                return;
            };
            let mut stream = response.into_inner();
            if !matches!(stream.message().await, Ok(Some(_))) {
                return;
            }
            ready.add_permits(1);
            while let Ok(Some(update)) = stream.message().await {
                let now = Instant::now();
                if let Some(pb::watch_depth_limits_response::Update::Limits(l)) = update.update {
                    let version = l.ruleset.map(|r| r.version).unwrap_or_default();
                    if tx.send((kind, version, now)).is_err() {
                        return;
                    }
                }
            }
        }
        Kind::RuleSets => {
            let Some(channel) = channel else { return };
            let mut client = TreatmentProtocolServiceClient::new(channel);
            let Ok(response) = client
                .watch_rule_sets(with_key(pb::WatchRuleSetsRequest::default()))
                .await
            else {
                eprintln!("a WatchRuleSets stream was refused");
                return;
            };
            let mut stream = response.into_inner();
            if !matches!(stream.message().await, Ok(Some(_))) {
                return;
            }
            ready.add_permits(1);
            while let Ok(Some(update)) = stream.message().await {
                let now = Instant::now();
                if let Some(pb::watch_rule_sets_response::Update::Notice(n)) = update.update {
                    let version = n.ruleset.map(|r| r.version).unwrap_or_default();
                    if tx.send((kind, version, now)).is_err() {
                        return;
                    }
                }
            }
        }
        Kind::Sse => {
            let Some((client, url)) = http else { return };
            let mut events = match sse::open(&client, &url, KEY_AURORA, None).await {
                Ok(e) => e,
                Err((status, body, _)) => {
                    eprintln!("an SSE stream was refused: {status} {body}");
                    return;
                }
            };
            if !matches!(events.next().await, Ok(Some(_))) {
                return;
            }
            ready.add_permits(1);
            while let Ok(Some(event)) = events.next_raw().await {
                let now = Instant::now();
                if event.event != "ruleset" {
                    continue;
                }
                // Only the version is read (typed, borrowed): the client's share of the machine
                // is part of every figure.
                let version = serde_json::from_str::<Notice<'_>>(&event.data)
                    .ok()
                    .and_then(|n| n.ruleset)
                    .map(|r| r.version.to_owned())
                    .unwrap_or_default();
                if tx.send((kind, version, now)).is_err() {
                    return;
                }
            }
        }
    }
}

async fn propagation(args: &Args) -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let budget = (args.watchers + 100).to_string();
    // Default reconcile interval (5 s): what is measured is the pub/sub path. Watch budgets at
    // least the streams opened (every stream uses the one key).
    let replica = || {
        ServerBuilder::new()
            .with_keys()
            .with_redis(&redis)
            .env("PROTOCOL_RECONCILE_INTERVAL_SECS", "5")
            .env("PROTOCOL_MAX_WATCH_STREAMS", &budget)
            .env("PROTOCOL_MAX_WATCH_STREAMS_PER_KEY", &budget)
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
    let grpc_a = a.grpc().await?;
    let mut grpc_b = b.grpc().await?;
    // Warm B up (one answer), then its resident set before any stream.
    served_version(&mut grpc_b).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(b.pid())?;

    // The streams, `--mix` shares of `--watchers`, at most `--per-connection` per connection.
    let total_weight: usize = args.mix.iter().sum();
    let mut counts = [0usize; 3];
    for (i, w) in args.mix.iter().enumerate() {
        counts[i] = args.watchers * w / total_weight;
    }
    counts[0] += args.watchers - counts.iter().sum::<usize>();
    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let sse_url = b.url("/v1/rulesets:watch");
    let mut connections = 0usize;
    let opening = Instant::now();
    for (kind, &count) in KINDS.iter().zip(counts.iter()) {
        let mut channel: Option<Channel> = None;
        let mut http: Option<reqwest::Client> = None;
        for n in 0..count {
            if n % args.per_connection == 0 {
                connections += 1;
                match kind {
                    Kind::Sse => {
                        http = Some(
                            reqwest::Client::builder()
                                .http2_prior_knowledge()
                                .connect_timeout(Duration::from_secs(5))
                                .build()?,
                        );
                    }
                    _ => channel = Some(b.channel().await?),
                }
            }
            tokio::spawn(watch(
                *kind,
                channel.clone(),
                http.clone().map(|c| (c, sse_url.clone())),
                tx.clone(),
                ready.clone(),
            ));
        }
    }
    drop(tx);
    let opened = tokio::time::timeout(
        Duration::from_secs(120),
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
        "{} watch streams open on replica B over {connections} HTTP/2 connections in {:.1} s \
         ({} WatchDepthLimits, {} WatchRuleSets, {} SSE)",
        args.watchers,
        opening.elapsed().as_secs_f64(),
        counts[0],
        counts[1],
        counts[2]
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_open = rss_kib(b.pid())?;

    let mut publish_rtt = Vec::new();
    let mut activate_rtt = Vec::new();
    let mut served_a = Vec::new();
    let mut served_b = Vec::new();
    let mut published_served_b = Vec::new();
    let mut delivered: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    let mut published_delivered = Vec::new();
    let mut activated_delivered = Vec::new();
    let mut missing = 0usize;
    let mut current = BUNDLED_VERSION.to_owned();
    let b_pid = b.pid().to_string();
    let (cpu_b, cpu_self) = (cpu_time(&b_pid), cpu_time("self"));
    for i in 1..=args.activations {
        let version = format!("2027.1.{i}");
        // Each version tightens the one before (1.19, 1.18, ... mm), so the guard at activation
        // needs no approval.
        let mm = (1.2 - 0.01 * f64::from(u32::try_from(i).unwrap_or(u32::MAX).min(100))).max(0.2);
        let mm = (mm * 100.0).round() / 100.0;
        let published = Instant::now();
        admin
            .publish_rule_set(with_key(pb::PublishRuleSetRequest {
                document: aurora(&version, mm),
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
            approval: None,
            dry_run: false,
        }));
        let (activated, on_a, on_b) = tokio::join!(
            async {
                let r = activation.await;
                (r, start.elapsed())
            },
            until_served(grpc_a.clone(), &version, start),
            until_served(grpc_b.clone(), &version, start),
        );
        activated
            .0
            .with_context(|| format!("activating {version}"))?;
        activate_rtt.push(activated.1);
        let on_a = on_a.with_context(|| format!("A never served {version}"))?;
        let on_b = on_b.with_context(|| format!("B never served {version}"))?;
        served_a.push(on_a);
        served_b.push(on_b);
        published_served_b.push(on_b + (start - published));

        // Every stream's message for this version (or time out after 5 s).
        let mut got = 0usize;
        let deadline = start + Duration::from_secs(5);
        while got < args.watchers {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((kind, v, at))) if v == version => {
                    delivered
                        .entry(kind.label())
                        .or_default()
                        .push(at.saturating_duration_since(published));
                    published_delivered.push(at.saturating_duration_since(published));
                    activated_delivered.push(at.saturating_duration_since(start));
                    got += 1;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        missing += args.watchers - got;
        current = version;
        // Let the fleet settle between activations.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_after = rss_kib(b.pid())?;
    let (cpu_b, cpu_self) = (cpu_time(&b_pid) - cpu_b, cpu_time("self") - cpu_self);

    println!(
        "propagation: {} activations on replica A, {} watch streams on replica B over \
         {connections} HTTP/2 connections ({} WatchDepthLimits, {} WatchRuleSets, {} SSE)",
        args.activations, args.watchers, counts[0], counts[1], counts[2]
    );
    report("publish call (A)", publish_rtt);
    report("activate call (A)", activate_rtt);
    report("activate -> served on A", served_a);
    report("activate -> served on B", served_b);
    report("publish -> served on B", published_served_b);
    report("activate -> delivered (all streams)", activated_delivered);
    report("publish -> delivered (all streams)", published_delivered);
    for kind in KINDS {
        if let Some(samples) = delivered.remove(kind.label()) {
            report(&format!("publish -> delivered, {}", kind.label()), samples);
        }
    }
    if missing > 0 {
        println!("WARNING: {missing} deliveries missing (not received within 5 s)");
    }
    let deliveries = (args.watchers * args.activations).max(1) as f64;
    println!(
        "CPU during the activations: replica B {:.2} s ({:.1} µs per delivery), this client \
         {:.2} s ({:.1} µs per delivery)",
        cpu_b.as_secs_f64(),
        cpu_b.as_secs_f64() * 1e6 / deliveries,
        cpu_self.as_secs_f64(),
        cpu_self.as_secs_f64() * 1e6 / deliveries,
    );
    let per_stream = |after: u64| {
        (after.saturating_sub(rss_before) as f64 * 1024.0) / args.watchers.max(1) as f64
    };
    println!(
        "memory of replica B: {:.1} MiB before the streams, {:.1} MiB with {} open ({:.0} bytes \
         per stream), {:.1} MiB after the activations ({:.0} bytes per stream)",
        rss_before as f64 / 1024.0,
        rss_open as f64 / 1024.0,
        args.watchers,
        per_stream(rss_open),
        rss_after as f64 / 1024.0,
        per_stream(rss_after),
    );
    Ok(())
}

/// Redis commands since `before`, without this tool's own `INFO` calls.
fn commands_since(redis: &RedisServer, before: &BTreeMap<String, u64>) -> (u64, String) {
    let after = redis.command_calls().unwrap_or_default();
    let mut total = 0;
    let mut by = Vec::new();
    for (cmd, calls) in &after {
        if cmd == "info" {
            continue;
        }
        let n = calls - before.get(cmd).copied().unwrap_or(0);
        if n > 0 {
            total += n;
            by.push(format!("{cmd} {n}"));
        }
    }
    (total, by.join(", "))
}

/// `requests` eligibility requests over REST, spread over the replicas, 32 at a time.
async fn eligibility_load(replicas: &[&Server], requests: usize) -> anyhow::Result<usize> {
    let body: serde_json::Value =
        serde_json::from_str(include_str!("../../../scripts/load-eligibility.json"))?;
    let body = Arc::new(body);
    let client = reqwest::Client::new();
    let urls: Vec<String> = replicas.iter().map(|s| s.url("/v1/eligibility")).collect();
    let workers = 32;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, body) = (client.clone(), body.clone());
        let url = urls[w % urls.len()].clone();
        let n = requests / workers + usize::from(w < requests % workers);
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            for _ in 0..n {
                if let Ok(res) = client
                    .post(&url)
                    .bearer_auth(KEY_AURORA)
                    .json(body.as_ref())
                    .send()
                    .await
                {
                    ok += usize::from(res.status().is_success());
                    let _ = res.bytes().await;
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await?;
    }
    Ok(ok)
}

async fn redis_load(args: &Args) -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let reconcile = args.reconcile_secs.max(1).to_string();
    let replica = || {
        ServerBuilder::new()
            .with_keys()
            .with_redis(&redis)
            .env("PROTOCOL_RECONCILE_INTERVAL_SECS", &reconcile)
            .env("RUST_LOG", "warn,protocol_server=info")
            .spawn()
    };
    let a = replica()?;
    let b = replica()?;
    // Past start-up (load, seed, subscribe, first reconciles).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = Duration::from_secs(args.window_secs.max(1));
    println!(
        "redis load: reconcile every {reconcile} s, windows of {} s",
        window.as_secs()
    );
    println!(
        "{:<32} {:>9} {:>9} {:>11} {:>16}  commands",
        "window", "requests", "commands", "commands/s", "more per request"
    );
    // `idle_rate`: commands per second of the same fleet without requests; what a loaded window
    // issues beyond it, per request, is what requests cost Redis.
    let row = |name: &str, requests: usize, calls: u64, secs: f64, idle_rate: f64, by: &str| {
        let per = if requests > 0 {
            format!(
                "{:.6}",
                // Whole commands beyond the idle rate (the rate times a window is fractional).
                (calls as f64 - idle_rate * secs).round().max(0.0) / requests as f64
            )
        } else {
            "-".into()
        };
        println!(
            "{name:<32} {requests:>9} {calls:>9} {:>11.2} {per:>16}  {by}",
            calls as f64 / secs
        );
    };

    let before = redis.command_calls()?;
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let (idle, by) = commands_since(&redis, &before);
    let idle_secs = t.elapsed().as_secs_f64();
    let idle_rate = idle as f64 / idle_secs;
    row("2 replicas, idle", 0, idle, idle_secs, idle_rate, &by);

    let before = redis.command_calls()?;
    let t = Instant::now();
    let replicas = [&a, &b];
    let load = eligibility_load(&replicas, args.requests);
    let (answered, ()) = tokio::join!(load, tokio::time::sleep(window));
    let answered = answered?;
    let secs = t.elapsed().as_secs_f64();
    let (busy, by) = commands_since(&redis, &before);
    row(
        "2 replicas, eligibility load",
        answered,
        busy,
        secs,
        idle_rate,
        &by,
    );
    if answered < args.requests {
        println!(
            "WARNING: {} of {} requests answered",
            answered, args.requests
        );
    }

    let c = replica()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = redis.command_calls()?;
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let (idle3, by) = commands_since(&redis, &before);
    row(
        "3 replicas, idle",
        0,
        idle3,
        t.elapsed().as_secs_f64(),
        idle_rate,
        &by,
    );
    drop(c);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.watchers > 0 {
        propagation(&args).await?;
    }
    if args.redis_load {
        redis_load(&args).await?;
    }
    Ok(())
}
