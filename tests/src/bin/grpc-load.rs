//! `grpc-load`: a small closed-loop load generator for `CheckEligibility` (what `scripts/load` runs
//! for the gRPC figures; ghz is not available from any reachable registry).
//!
//! N connections (one HTTP/2 channel each), one request in flight per connection, for a fixed
//! duration after a short warm-up; prints requests/s and p50/p99 latency. The request is built
//! from the same JSON body the REST load uses, so both protocols carry the same decision.
//!
//! ```text
//! grpc-load --addr http://127.0.0.1:50051 --connections 64 --duration 10 --body scripts/load-eligibility.json [--key KEY]
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use protocol_tests::json_pb::eligibility_pb;
use protocol_tests::pb::treatment_protocol_client::TreatmentProtocolClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

struct Args {
    addr: String,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    body: String,
    key: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        addr: "http://127.0.0.1:50051".into(),
        connections: 64,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        body: "scripts/load-eligibility.json".into(),
        key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?,
            "--connections" | "-c" => args.connections = value()?.parse()?,
            "--duration" | "-d" => args.duration = Duration::from_secs_f64(value()?.parse()?),
            "--warmup" => args.warmup = Duration::from_secs_f64(value()?.parse()?),
            "--body" => args.body = value()?,
            "--key" => args.key = Some(value()?),
            "--help" | "-h" => {
                println!(
                    "grpc-load --addr URL --connections N --duration SECS --warmup SECS --body FILE [--key KEY]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    Ok(args)
}

/// Latencies in microseconds and the error count of one connection's measured window.
struct Sample {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn worker(
    channel: Channel,
    request: protocol_tests::pb::EligibilityRequest,
    auth: Option<MetadataValue<tonic::metadata::Ascii>>,
    measure_from: Instant,
    until: Instant,
) -> Sample {
    let mut client = TreatmentProtocolClient::new(channel);
    let mut sample = Sample {
        latencies_us: Vec::with_capacity(100_000),
        errors: 0,
    };
    loop {
        let start = Instant::now();
        if start >= until {
            break;
        }
        let mut req = tonic::Request::new(request.clone());
        if let Some(a) = &auth {
            req.metadata_mut().insert("authorization", a.clone());
        }
        let ok = client.check_eligibility(req).await.is_ok();
        if start >= measure_from {
            if ok {
                let us = start.elapsed().as_micros();
                sample
                    .latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
            } else {
                sample.errors += 1;
            }
        }
    }
    sample
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let body: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&args.body).with_context(|| format!("reading {}", args.body))?,
    )
    .with_context(|| format!("{} is not JSON", args.body))?;
    let request = eligibility_pb(&body);
    let auth = match &args.key {
        Some(k) => Some(format!("Bearer {k}").parse::<MetadataValue<tonic::metadata::Ascii>>()?),
        None => None,
    };

    // One HTTP/2 connection per simulated client, like oha's connections.
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(
            Channel::from_shared(args.addr.clone())?
                .tcp_nodelay(true)
                .connect()
                .await
                .with_context(|| format!("connecting to {}", args.addr))?,
        );
    }
    // Fail fast on a request the server refuses.
    TreatmentProtocolClient::new(channels[0].clone())
        .check_eligibility({
            let mut r = tonic::Request::new(request.clone());
            if let Some(a) = &auth {
                r.metadata_mut().insert("authorization", a.clone());
            }
            r
        })
        .await
        .context("the first CheckEligibility failed")?;

    let start = Instant::now();
    let measure_from = start + args.warmup;
    let until = measure_from + args.duration;
    let tasks: Vec<_> = channels
        .into_iter()
        .map(|ch| {
            tokio::spawn(worker(
                ch,
                request.clone(),
                auth.clone(),
                measure_from,
                until,
            ))
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let s = t.await?;
        all.extend(s.latencies_us);
        errors += s.errors;
    }
    let elapsed = args.duration.as_secs_f64();
    all.sort_unstable();
    let rps = all.len() as f64 / elapsed;
    let (p50, p99) = (percentile(&all, 50.0), percentile(&all, 99.0));
    println!(
        "grpc CheckEligibility: {} requests in {elapsed:.1} s over {} connections: {rps:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {errors} errors",
        all.len(),
        args.connections
    );
    println!("RESULT rps={rps:.1} p50_ms={p50:.3} p99_ms={p99:.3} errors={errors}");
    Ok(())
}
