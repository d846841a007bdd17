//! The server's edges, black-box: connections that never finish a request are closed while the
//! probes keep answering, the connection cap, stream budgets, load shedding, per-key rate limits,
//! duplicate credentials, what `/readyz` tells a caller without a key, unknown gRPC methods,
//! request ids, CORS and compression. Every limit is set low through the settings, so the tests
//! are small; nothing here measures time, deadlines are only bounds on how long to wait.

use std::time::Duration;

use prost::bytes::Bytes;
use protocol_tests::raw::RawCodec;
use protocol_tests::{KEY_AURORA, KEY_BASE, Server, ServerBuilder, pb};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_stream::StreamExt;
use tonic::codegen::http::uri::PathAndQuery;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use crate::api::common::*;

fn check() -> Value {
    json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": healthy_facts()})
}

async fn healthz(server: &Server) -> StatusCode {
    http()
        .get(server.url("/healthz"))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

async fn grpc_health(server: &Server) -> Option<i32> {
    let channel = server.channel().await.ok()?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

// ---- connections --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_header_connections_are_closed_while_probes_answer() {
    // Every connection here comes from one address: the share per address
    // (`one_address_flooding_idle_connections_leaves_room_for_every_other_client`) is lifted.
    let server = ServerBuilder::new()
        .env("PROTOCOL_HEADER_READ_TIMEOUT_SECS", "2")
        .env("PROTOCOL_MAX_CONNECTIONS_PER_PEER", "4096")
        .spawn()
        .expect("server starts");
    // 2,000 connections that never finish a request: on both listeners, some sending nothing,
    // some half a request head, some a byte now and then.
    let mut held = Vec::new();
    for i in 0..2_000 {
        let addr = if i % 2 == 0 { server.http } else { server.grpc };
        let mut s = TcpStream::connect(addr).await.expect("connect");
        match i % 4 {
            0 => {
                s.write_all(b"POST /v1/eligibility HTTP/1.1\r\nHost: x\r\nContent-")
                    .await
                    .expect("half a head");
            }
            1 => {
                s.write_all(b"PRI * HTTP/2.0\r\n")
                    .await
                    .expect("half a preface");
            }
            _ => {}
        }
        held.push(s);
    }
    let trickling: Vec<_> = (0..20)
        .map(|_| {
            let addr = server.http;
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.expect("connect");
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .expect("start");
                // One header byte every 200 ms: never a whole head.
                for _ in 0..200 {
                    if s.write_all(b"X").await.is_err() {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                false
            })
        })
        .collect();

    // Meanwhile both listeners answer.
    assert_eq!(healthz(&server).await, StatusCode::OK);
    assert_eq!(
        grpc_health(&server).await,
        Some(ServingStatus::Serving as i32)
    );

    // Every one of them is closed by the server, well within the bound.
    let closers: Vec<_> = held
        .into_iter()
        .map(|s| tokio::spawn(closed_within(s, Duration::from_secs(30))))
        .collect();
    let mut open = 0;
    for c in closers {
        if !c.await.expect("joined") {
            open += 1;
        }
    }
    assert_eq!(open, 0, "{open} connections were left open");
    for t in trickling {
        assert!(t.await.expect("joined"), "a trickling header was left open");
    }
    assert_eq!(healthz(&server).await, StatusCode::OK);
    assert_eq!(
        grpc_health(&server).await,
        Some(ServingStatus::Serving as i32)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_are_closed_at_once() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_MAX_CONNECTIONS", "20")
        .env("PROTOCOL_HEADER_READ_TIMEOUT_SECS", "60")
        .spawn()
        .expect("server starts");
    // The start-up probe's connection is closed by the server as it answers; give its task the
    // moment it takes to end and free its place, so the count below is only ours.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for addr in [server.http, server.grpc] {
        // 25 connections that send nothing: 20 are held, the 5 past the cap closed at once
        // (which 5 depends on the order the server accepts them in).
        let mut conns = Vec::new();
        for _ in 0..25 {
            conns.push(TcpStream::connect(addr).await.expect("connect"));
        }
        let waits: Vec<_> = conns
            .into_iter()
            .map(|s| tokio::spawn(closed_within(s, Duration::from_secs(10))))
            .collect();
        let mut closed = 0;
        for w in waits {
            closed += usize::from(w.await.expect("joined"));
        }
        assert_eq!(
            closed, 5,
            "{addr}: the connections past the cap, and only they"
        );
    }
    // Freed places are taken again.
    let back = within(Duration::from_secs(10), || async {
        healthz(&server).await == StatusCode::OK
    })
    .await;
    assert!(
        back.is_some(),
        "/healthz answers once the connections are gone"
    );
    let output = server.output().join("\n");
    assert!(output.contains("connection cap reached"), "{output}");
}

// ---- streams ------------------------------------------------------------------------------------

/// The server's first SETTINGS frame on an HTTP/2 connection: `(id, value)` pairs.
async fn h2_settings(addr: std::net::SocketAddr) -> Vec<(u16, u32)> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("preface and empty SETTINGS");
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).await.expect("frame head");
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.expect("frame payload");
        // SETTINGS (type 4), not an ACK (flag 1).
        if head[3] == 4 && head[4] & 1 == 0 {
            return payload
                .chunks_exact(6)
                .map(|c| {
                    (
                        u16::from_be_bytes([c[0], c[1]]),
                        u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                    )
                })
                .collect();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_listeners_cap_concurrent_http2_streams() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_MAX_CONCURRENT_STREAMS", "7")
        .spawn()
        .expect("server starts");
    for addr in [server.http, server.grpc] {
        let settings = h2_settings(addr).await;
        // SETTINGS_MAX_CONCURRENT_STREAMS is 0x3.
        assert!(settings.contains(&(3, 7)), "{addr}: {settings:?}");
    }
}

fn watch_request() -> pb::WatchDepthLimitsRequest {
    pb::WatchDepthLimitsRequest {
        treatment: "microneedling".into(),
        device: "dermapen_4".into(),
        role: "nurse".into(),
        ..Default::default()
    }
}

async fn watch(
    server: &Server,
    key: &str,
) -> Result<tonic::Streaming<pb::WatchDepthLimitsResponse>, tonic::Status> {
    let mut client = server.grpc().await.expect("client");
    let mut stream = client
        .watch_depth_limits(with_key(watch_request(), Some(key)))
        .await?
        .into_inner();
    // The opening message: the stream is established.
    stream.next().await.expect("first message")?;
    Ok(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_are_capped_per_key_and_in_total_and_released_on_close() {
    let server = ServerBuilder::new()
        .with_keys()
        .env("PROTOCOL_MAX_WATCH_STREAMS_PER_KEY", "3")
        .env("PROTOCOL_MAX_WATCH_STREAMS", "5")
        .spawn()
        .expect("server starts");
    let mut aurora = Vec::new();
    for _ in 0..3 {
        aurora.push(
            watch(&server, KEY_AURORA)
                .await
                .expect("within the key's budget"),
        );
    }
    let st = watch(&server, KEY_AURORA)
        .await
        .expect_err("a fourth for one key");
    assert_eq!(st.code(), tonic::Code::ResourceExhausted);
    assert!(st.message().contains("per key"), "{}", st.message());
    assert_eq!(
        st.get_details_error_info().map(|i| i.reason),
        Some("WATCH_STREAMS_EXHAUSTED".into())
    );
    assert!(st.get_details_retry_info().is_some());

    let mut base = Vec::new();
    for _ in 0..2 {
        base.push(watch(&server, KEY_BASE).await.expect("within the total"));
    }
    let st = watch(&server, KEY_BASE)
        .await
        .expect_err("a sixth in total");
    assert_eq!(st.code(), tonic::Code::ResourceExhausted);
    assert!(
        st.message().contains("the server has 5"),
        "{}",
        st.message()
    );

    // Closing a stream gives its place back.
    drop(aurora.pop());
    let start = std::time::Instant::now();
    let reopened = loop {
        if let Ok(s) = watch(&server, KEY_AURORA).await {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(10) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        reopened.is_some(),
        "the closed stream's place is free again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_share_a_budget() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_MAX_HEALTH_CALLS", "3")
        .spawn()
        .expect("server starts");
    let mut health = HealthClient::new(server.channel().await.expect("channel"));
    let mut watches = Vec::new();
    for _ in 0..3 {
        let mut s = health
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("within the budget")
            .into_inner();
        s.next().await.expect("status").expect("ok");
        watches.push(s);
    }
    let st = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect_err("past the budget");
    assert_eq!(st.code(), tonic::Code::ResourceExhausted);
    assert!(st.get_details_retry_info().is_some());
    // The decisions are not part of that budget.
    let mut client = server.grpc().await.expect("client");
    client
        .check_eligibility(eligibility_pb(&check()))
        .await
        .expect("decisions unaffected");
    drop(watches.pop());
    let back = within(Duration::from_secs(10), || async {
        grpc_health(&server).await == Some(ServingStatus::Serving as i32)
    })
    .await;
    assert!(back.is_some(), "a closed health stream frees its place");
}

// ---- overload -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_in_flight_requests_are_shed_with_a_retry_delay_and_probes_answer() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_MAX_IN_FLIGHT", "1")
        .env("PROTOCOL_REQUEST_TIMEOUT_SECS", "30")
        .env("PROTOCOL_BODY_READ_TIMEOUT_SECS", "30")
        .spawn()
        .expect("server starts");

    // REST: a request whose body never finishes holds the one place.
    let mut slow = TcpStream::connect(server.http).await.expect("connect");
    slow.write_all(
        b"POST /v1/eligibility HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .expect("head");
    let shed = within(Duration::from_secs(10), || async {
        http()
            .post(server.url("/v1/eligibility"))
            .json(&check())
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    assert!(shed.is_some(), "a second request is shed");
    let res = http()
        .post(server.url("/v1/eligibility"))
        .json(&check())
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["type"], "urn:treatment-protocol:problem:overloaded");
    // The reason and limit gRPC's ErrorInfo carries (`refusal::grpc_overloaded`).
    assert_eq!(problem["reason"], "OVERLOADED");
    assert_eq!(problem["limit"], 1);
    assert_eq!(
        healthz(&server).await,
        StatusCode::OK,
        "probes are not shed"
    );
    let ready = http()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    drop(slow);
    // The place is free once the server has seen the connection close (later under load): a
    // gRPC call started before that would be shed itself and hold nothing.
    let freed = within(Duration::from_secs(10), || async {
        http()
            .post(server.url("/v1/eligibility"))
            .json(&check())
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(freed.is_some(), "the held REST place is released");

    // gRPC: a call whose request never arrives holds the place.
    let channel = server.channel().await.expect("channel");
    let path = PathAndQuery::from_static(
        "/treatment.protocol.v1.TreatmentProtocolService/CheckEligibility",
    );
    let hold = |channel: tonic::transport::Channel| {
        let path = path.clone();
        tokio::spawn(async move {
            let mut raw = tonic::client::Grpc::new(channel);
            raw.ready().await.expect("ready");
            let never = tokio_stream::pending::<Bytes>();
            raw.client_streaming(tonic::Request::new(never), path, RawCodec)
                .await
        })
    };
    let mut held = hold(channel.clone());
    let mut client =
        pb::treatment_protocol_service_client::TreatmentProtocolServiceClient::new(channel.clone());
    let start = std::time::Instant::now();
    let st = loop {
        match client.check_eligibility(eligibility_pb(&check())).await {
            Err(st) if st.code() == tonic::Code::Unavailable => break st,
            other => assert!(
                start.elapsed() < Duration::from_secs(10),
                "a second call is shed: {other:?}"
            ),
        }
        // The held call races the checks: arriving while one is in flight, it is shed itself
        // (and ends). Hold the place again.
        if held.is_finished() {
            held = hold(channel.clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        st.get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .is_some_and(|d| d == Duration::from_secs(1)),
        "{st:?}"
    );
    assert_eq!(
        grpc_health(&server).await,
        Some(ServingStatus::Serving as i32),
        "gRPC health is not shed"
    );
    held.abort();
    let start = std::time::Instant::now();
    while client
        .check_eligibility(eligibility_pb(&check()))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "calls are admitted again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_rate_limit_with_ratelimit_headers() {
    let server = ServerBuilder::new()
        .with_keys()
        .env("PROTOCOL_RATE_LIMIT", "3")
        .env("PROTOCOL_RATE_LIMIT_WINDOW_SECS", "3600")
        .spawn()
        .expect("server starts");
    let http = http();
    for remaining in [2, 1, 0] {
        let res = http
            .post(server.url("/v1/eligibility"))
            .bearer_auth(KEY_AURORA)
            .json(&check())
            .send()
            .await
            .expect("answer");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["ratelimit-policy"], "\"default\";q=3;w=3600");
        let rl = res.headers()["ratelimit"].to_str().expect("ascii");
        assert!(
            rl.starts_with(&format!("\"default\";r={remaining};t=")),
            "{rl}"
        );
    }
    let res = http
        .post(server.url("/v1/eligibility"))
        .bearer_auth(KEY_AURORA)
        .json(&check())
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    assert!(
        res.headers()["ratelimit"]
            .to_str()
            .expect("ascii")
            .starts_with("\"default\";r=0;")
    );
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(
        problem["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(problem["status"], 429);
    // The same reason and figures as gRPC's ErrorInfo below (compared there).
    assert_eq!(problem["reason"], "RATE_LIMITED");
    assert_eq!(problem["quota"], 3);
    assert_eq!(problem["window-secs"], 3600);

    // Over gRPC the same key's quota is used up too; another key has its own.
    let mut client = server.grpc().await.expect("client");
    let st = client
        .check_eligibility(with_key(eligibility_pb(&check()), Some(KEY_AURORA)))
        .await
        .expect_err("over the quota");
    assert_eq!(st.code(), tonic::Code::ResourceExhausted);
    assert!(st.get_details_retry_info().is_some());
    let info = st.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, problem["reason"].as_str().expect("a reason"));
    for figure in ["quota", "window-secs"] {
        assert_eq!(
            info.metadata.get(figure).map(String::as_str),
            Some(problem[figure].to_string().as_str()),
            "REST and gRPC give the same {figure}"
        );
    }
    client
        .check_eligibility(with_key(eligibility_pb(&check()), Some(KEY_BASE)))
        .await
        .expect("another key has its own quota");
    // Probes are not rate limited.
    for _ in 0..5 {
        assert_eq!(healthz(&server).await, StatusCode::OK);
    }
}

// ---- smaller holes ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_authorization_headers_are_refused_on_both_protocols() {
    let server = Server::start_with_keys().expect("server starts");
    let res = http()
        .post(server.url("/v1/eligibility"))
        .header("authorization", format!("Bearer {KEY_AURORA}"))
        .header("authorization", "Bearer something-else")
        .json(&check())
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = res.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Authorization")),
        "{problem}"
    );

    let mut client = server.grpc().await.expect("client");
    let mut req = with_key(eligibility_pb(&check()), Some(KEY_AURORA));
    req.metadata_mut().append(
        "authorization",
        "Bearer something-else".parse().expect("value"),
    );
    let st = client.check_eligibility(req).await.expect_err("refused");
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
    assert!(st.message().contains("authorization"), "{}", st.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_no_clinic_without_an_admin_key() {
    let server = Server::start_with_keys().expect("server starts");
    let anonymous = http()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(anonymous.status(), StatusCode::OK);
    let text = anonymous.text().await.expect("body");
    assert!(!text.contains("clinic-aurora"), "{text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert!(body["overlays"].as_u64().is_some_and(|n| n >= 1), "{body}");
    assert_eq!(body["rulesets"][0]["id"], "base");

    // A key without the admin scope sees the same; an admin key sees the overlays.
    let booking = http()
        .get(server.url("/readyz"))
        .bearer_auth(KEY_BASE)
        .send()
        .await
        .expect("readyz")
        .text()
        .await
        .expect("body");
    assert!(!booking.contains("clinic-aurora"), "{booking}");
    let admin = http()
        .get(server.url("/readyz"))
        .bearer_auth(KEY_AURORA)
        .send()
        .await
        .expect("readyz")
        .text()
        .await
        .expect("body");
    assert!(admin.contains("clinic-aurora"), "{admin}");
    // Issue 26: a clinic's admin key names its own overlay only; the platform's names every one.
    let root = protocol_tests::workspace_root().join("rulesets");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect("rule set");
    let aurora = read("clinics/clinic-aurora.yaml");
    let borealis = aurora.replace("id: clinic-aurora", "id: clinic-borealis");
    let server = ServerBuilder::new()
        .with_keys()
        .with_rulesets(vec![
            ("base.yaml".into(), read("base.yaml")),
            ("clinics/clinic-aurora.yaml".into(), aurora),
            ("clinics/clinic-borealis.yaml".into(), borealis),
        ])
        .spawn()
        .expect("server starts");
    let seen = |key: &'static str| {
        let url = server.url("/readyz");
        async move {
            http()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("readyz")
                .text()
                .await
                .expect("body")
        }
    };
    let aurora = seen(KEY_AURORA).await;
    assert!(
        aurora.contains("clinic-aurora") && !aurora.contains("clinic-borealis"),
        "{aurora}"
    );
    let borealis = seen(protocol_tests::KEY_BOREALIS_ADMIN).await;
    assert!(
        borealis.contains("clinic-borealis") && !borealis.contains("clinic-aurora"),
        "{borealis}"
    );
    let platform = seen(protocol_tests::KEY_PLATFORM).await;
    assert!(
        platform.contains("clinic-aurora") && platform.contains("clinic-borealis"),
        "{platform}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_grpc_methods_are_unimplemented_and_never_logged() {
    let server = ServerBuilder::new()
        .env("RUST_LOG", "info,protocol_server::request=debug")
        .spawn()
        .expect("server starts");
    let channel = server.channel().await.expect("channel");
    for path in [
        "/treatment.protocol.v1.TreatmentProtocolService/AttackerChosenName1",
        "/attacker.Chosen/AttackerChosenName2",
    ] {
        let mut raw = tonic::client::Grpc::new(channel.clone());
        raw.ready().await.expect("ready");
        let st = raw
            .unary(
                tonic::Request::new(Bytes::new()),
                PathAndQuery::from_static(path),
                RawCodec,
            )
            .await
            .expect_err("no such method");
        assert_eq!(st.code(), tonic::Code::Unimplemented);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for line in server.output() {
        if line.contains("AttackerChosenName") {
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            assert_eq!(v["level"], "DEBUG", "only at debug: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_made_on_both_protocols() {
    let server = Server::start().expect("server starts");
    let res = http()
        .get(server.url("/v1/treatments"))
        .header("x-request-id", "booking-42")
        .send()
        .await
        .expect("answer");
    assert_eq!(res.headers()["x-request-id"], "booking-42");
    let res = http()
        .get(server.url("/v1/nothing-here"))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let made = res.headers()["x-request-id"].to_str().expect("ascii");
    assert_eq!(made.len(), 36, "a UUID: {made}");
    assert_eq!(&made[14..15], "7", "version 7: {made}");
    let made = made.to_owned();
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(
        problem["instance"],
        format!("urn:treatment-protocol:request:{made}"),
        "the problem names its request"
    );

    // Not a plain id (a space, or too long): replaced by a fresh one, never echoed.
    for odd in ["two words".to_owned(), "x".repeat(65)] {
        let res = http()
            .get(server.url("/healthz"))
            .header("x-request-id", odd.as_str())
            .send()
            .await
            .expect("answer");
        let id = res.headers()["x-request-id"].to_str().expect("ascii");
        assert_eq!(id.len(), 36, "a fresh UUID instead of {odd:?}: {id}");
    }

    let mut client = server.grpc().await.expect("client");
    let mut req = tonic::Request::new(pb::ListTreatmentsRequest::default());
    req.metadata_mut()
        .insert("x-request-id", "device-7".parse().expect("value"));
    let res = client.list_treatments(req).await.expect("answer");
    assert_eq!(
        res.metadata().get("x-request-id").expect("echoed"),
        "device-7"
    );
    let res = client
        .list_treatments(pb::ListTreatmentsRequest::default())
        .await
        .expect("answer");
    assert!(res.metadata().get("x-request-id").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_both_ways_on_both_protocols() {
    use std::io::Write;
    let server = Server::start().expect("server starts");
    let res = http()
        .get(server.url("/v1/facts"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let zipped = res.bytes().await.expect("body");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(zipped.as_ref()),
        &mut text,
    )
    .expect("gzip");
    assert!(text.contains("pregnant"));
    for encoding in ["br", "zstd"] {
        let res = http()
            .get(server.url("/v1/facts"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .expect("answer");
        assert_eq!(res.headers()["content-encoding"], encoding);
    }

    // A gzip request body.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(check().to_string().as_bytes()).expect("gzip");
    let res = http()
        .post(server.url("/v1/eligibility"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().expect("gzip"))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);

    // A gRPC client with gzip on, both ways.
    let mut client = server
        .grpc()
        .await
        .expect("client")
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    let answer = client
        .check_eligibility(eligibility_pb(&check()))
        .await
        .expect("gzip accepted");
    assert!(answer.into_inner().bookable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_only_for_configured_origins_and_exposes_etag() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_CORS_ORIGINS", "https://app.example.com")
        .spawn()
        .expect("server starts");
    let preflight = http()
        .request(reqwest::Method::OPTIONS, server.url("/v1/eligibility"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let res = http()
        .get(server.url("/v1/depth-limits?treatment=microneedling&device=dermapen_4&role=nurse"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");
    let other = http()
        .get(server.url("/v1/treatments"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .expect("answer");
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    // Off by default.
    let plain = Server::start().expect("server starts");
    let res = http()
        .get(plain.url("/v1/treatments"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("answer");
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}
