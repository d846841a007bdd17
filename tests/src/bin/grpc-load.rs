//! `grpc-load`: a small closed-loop load generator for `CheckEligibility` (what `scripts/load` runs
//! for the gRPC figures; ghz is not available from any reachable registry).
//!
//! `--concurrency` requests in flight (default 64), spread over `--connections` HTTP/2
//! connections (default: one per request in flight, like oha/wrk connections; fewer connections
//! multiplex several streams each, as gRPC clients usually do), for a fixed duration after a short
//! warm-up; prints requests/s and p50/p99 latency. The request is built from the same JSON body
//! the REST load uses, so both protocols carry the same decision. Like wrk, the generator sends
//! pre-encoded bytes and does not decode answers (the first call is checked with the typed
//! client), so its own CPU use stays small on a machine it shares with the server.
//!
//! `--write-frame FILE` writes the request as one gRPC message frame instead, for h2load
//! (`--data FILE -H 'content-type: application/grpc' -H 'te: trailers'`), which `scripts/load`
//! also runs when it is installed: a C client costs the shared CPUs less.
//!
//! ```text
//! grpc-load --addr http://127.0.0.1:50051 --concurrency 64 --connections 64 --duration 10 \
//!           --body scripts/load-eligibility.json [--key KEY]
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a measuring tool of the test suite: it stops loudly on what it cannot measure (the workspace denies these in production code)"
)]

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use prost::Message;
use prost::bytes::Bytes;
use protocol_tests::json_pb::eligibility_pb;
use protocol_tests::pb::treatment_protocol_service_client::TreatmentProtocolServiceClient;
use protocol_tests::raw::RawCodec;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

struct Args {
    addr: String,
    connections: usize,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    body: String,
    key: Option<String>,
    write_frame: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        addr: "http://127.0.0.1:50051".into(),
        connections: 0,
        concurrency: 64,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        body: "scripts/load-eligibility.json".into(),
        key: None,
        write_frame: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?,
            "--connections" => args.connections = value()?.parse()?,
            "--concurrency" | "-c" => args.concurrency = value()?.parse()?,
            "--duration" | "-d" => args.duration = Duration::from_secs_f64(value()?.parse()?),
            "--warmup" => args.warmup = Duration::from_secs_f64(value()?.parse()?),
            "--body" => args.body = value()?,
            "--key" => args.key = Some(value()?),
            "--write-frame" => args.write_frame = Some(value()?),
            "--help" | "-h" => {
                println!(
                    "grpc-load --addr URL --concurrency N --connections N --duration SECS --warmup SECS --body FILE [--key KEY]\n\
                     grpc-load --body FILE --write-frame OUT   (write the gRPC-framed request for h2load and exit)"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.connections == 0 || args.connections > args.concurrency {
        args.connections = args.concurrency;
    }
    Ok(args)
}

/// Latencies in microseconds and the error count of one connection's measured window.
struct Sample {
    latencies_us: Vec<u32>,
    errors: u64,
}

const METHOD: &str = "/treatment.protocol.v1.TreatmentProtocolService/CheckEligibility";

async fn worker(
    channel: Channel,
    body: Bytes,
    auth: Option<MetadataValue<tonic::metadata::Ascii>>,
    measure_from: Instant,
    until: Instant,
) -> Sample {
    let mut client = tonic::client::Grpc::new(channel);
    let path = PathAndQuery::from_static(METHOD);
    let mut sample = Sample {
        latencies_us: Vec::with_capacity(100_000),
        errors: 0,
    };
    loop {
        let start = Instant::now();
        if start >= until {
            break;
        }
        let mut req = tonic::Request::new(body.clone());
        if let Some(a) = &auth {
            req.metadata_mut().insert("authorization", a.clone());
        }
        let ok = match client.ready().await {
            Ok(()) => client
                .unary::<Bytes, usize, RawCodec>(req, path.clone(), RawCodec)
                .await
                .is_ok_and(|r| *r.get_ref() > 0),
            Err(_) => false,
        };
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
    let encoded = Bytes::from(request.encode_to_vec());
    if let Some(out) = &args.write_frame {
        // A gRPC message frame: uncompressed flag, big-endian length, the message.
        let len = u32::try_from(encoded.len()).context("request too large")?;
        let mut frame = Vec::with_capacity(5 + encoded.len());
        frame.push(0u8);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&encoded);
        std::fs::write(out, frame).with_context(|| format!("writing {out}"))?;
        return Ok(());
    }
    let auth = match &args.key {
        Some(k) => Some(format!("Bearer {k}").parse::<MetadataValue<tonic::metadata::Ascii>>()?),
        None => None,
    };

    // HTTP/2 connections; the requests in flight are spread over them.
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
    TreatmentProtocolServiceClient::new(channels[0].clone())
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
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|i| {
            tokio::spawn(worker(
                channels[i % channels.len()].clone(),
                encoded.clone(),
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
        "grpc CheckEligibility: {} requests in {elapsed:.1} s, {} in flight over {} connections: {rps:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {errors} errors",
        all.len(),
        args.concurrency,
        args.connections
    );
    println!("RESULT rps={rps:.1} p50_ms={p50:.3} p99_ms={p99:.3} errors={errors}");
    Ok(())
}
