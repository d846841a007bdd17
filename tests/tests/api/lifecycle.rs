//! Start-up and shutdown: what the server prints, what it refuses, and a clean exit on SIGTERM
//! with open streams ended OK.

use std::time::Duration;

use protocol_tests::{KEY_AURORA, Server, ServerBuilder, keys_yaml, pb};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_with_a_retryable_status_and_exits_zero() {
    let mut server = Server::start().expect("server starts");
    let mut client = server.grpc().await.expect("client");
    let mut stream = client
        .watch_depth_limits(pb::WatchDepthLimitsRequest {
            treatment: "microneedling".into(),
            device: "dermapen_4".into(),
            role: "physician".into(),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    stream.message().await.expect("ok").expect("first limits");
    let mut notices = protocol_server::grpc::pb::treatment_protocol_service_client::TreatmentProtocolServiceClient::new(
        server.channel().await.expect("channel"),
    )
    .watch_rule_sets(pb::WatchRuleSetsRequest::default())
    .await
    .expect("watch notices")
    .into_inner();
    notices.message().await.expect("ok").expect("first notice");

    server.terminate().expect("SIGTERM sent");
    // Each stream ends with UNAVAILABLE (SHUTTING_DOWN, retryable: a device's loop reconnects,
    // never taking a clean end for "no more limits"), then the process exits 0.
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("stream ends in time");
    shut_down(end.map(|m| m.map(|_| ())));
    let end = tokio::time::timeout(Duration::from_secs(10), notices.message())
        .await
        .expect("notices end in time");
    shut_down(end.map(|m| m.map(|_| ())));
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("server exits");
    assert!(
        status.success(),
        "exit status {status}; output:\n{}",
        server.output().join("\n")
    );
    let out = server.output().join("\n");
    assert!(out.contains("shut down cleanly"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_serve_open_on_a_non_loopback_address() {
    for var in ["PROTOCOL_HTTP_ADDR", "PROTOCOL_GRPC_ADDR"] {
        let (status, output) = ServerBuilder::new()
            .env(var, "0.0.0.0:0")
            .run_to_exit(Duration::from_secs(20))
            .expect("runs");
        assert!(
            !status.success(),
            "{var}: should not start; output:\n{output}"
        );
        assert!(output.contains("refusing to start"), "{output}");
        assert!(output.contains("0.0.0.0"), "{output}");
        assert!(output.contains("PROTOCOL_API_KEYS_FILE"), "{output}");
    }
}

/// Issue 26: a key whose tenant is the base's id managed the base every clinic is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_clinic_is_the_base_is_refused_at_start() {
    let keys = serde_json::json!({"keys": [{"id": "not-a-clinic", "tenant": "base",
        "scopes": ["eligibility", "admin"], "sha256": protocol_server::auth::hash_key("k")}]});
    let (status, output) = ServerBuilder::new()
        .env("PROTOCOL_API_KEYS", &keys.to_string())
        .run_to_exit(Duration::from_secs(20))
        .expect("runs");
    assert!(!status.success(), "should not start; output:\n{output}");
    assert!(
        output.contains("tenant `base` is the id of a base rule set"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_fails_at_start_with_a_reason() {
    let (status, output) = ServerBuilder::new()
        .env(
            "PROTOCOL_API_KEYS",
            "keys: [{id: a, tenant: t, scopes: [plans], sha256: nothex}]",
        )
        .run_to_exit(Duration::from_secs(20))
        .expect("runs");
    assert!(!status.success());
    assert!(output.contains("sha256"), "{output}");

    let (status, output) = ServerBuilder::new()
        .env("PROTOCOL_RULESETS_DIR", "/nonexistent/rulesets")
        .run_to_exit(Duration::from_secs(20))
        .expect("runs");
    assert!(!status.success(), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_the_environment_work_like_the_file() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_API_KEYS", &keys_yaml())
        .spawn()
        .expect("server starts");
    let http = http();
    let body = json!({"treatment": "microneedling", "date": "2026-12-01", "history": []});
    let res = http
        .post(server.url("/v1/eligibility"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res: Value = http
        .post(server.url("/v1/eligibility"))
        .bearer_auth(KEY_AURORA)
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(res["ruleset"]["id"], "clinic-aurora");
}

/// Start-up names the listen addresses and every rule set (id, version, digest); the open-mode
/// warning is given once; and client facts never reach the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_output_and_no_facts_in_logs() {
    let server = ServerBuilder::new()
        .env("RUST_LOG", "debug")
        .spawn()
        .expect("server starts");
    let http = http();
    let ready: Value = http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    let mut facts = healthy_facts();
    facts["date_of_birth"] = json!("1971-07-13");
    let res = http
        .post(server.url("/v1/eligibility"))
        .json(&json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": facts}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let mut client = server.grpc().await.expect("client");
    client
        .check_eligibility(eligibility_pb(
            &json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": facts}),
        ))
        .await
        .expect("grpc");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let out = server.output().join("\n");
    assert!(out.contains(&server.http.to_string()), "{out}");
    assert!(out.contains(&server.grpc.to_string()), "{out}");
    for r in ready["rulesets"].as_array().expect("rulesets") {
        for k in ["id", "version", "digest"] {
            let v = r[k].as_str().expect("string");
            assert!(out.contains(v), "start-up output lacks {k} {v}:\n{out}");
        }
    }
    assert_eq!(out.matches("no API keys configured").count(), 1, "{out}");
    assert!(
        !out.contains("1971-07-13"),
        "a client fact reached the logs:\n{out}"
    );
}

/// Writes a POST /v1/eligibility with its headers and the first part of its body only.
fn start_request(addr: std::net::SocketAddr, body: &str, sent: usize) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    write!(
        s,
        "POST /v1/eligibility HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..sent]
    )
    .expect("write");
    s.flush().expect("flush");
    s
}

fn read_all(mut s: std::net::TcpStream) -> String {
    use std::io::Read;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A request that does not complete within PROTOCOL_REQUEST_TIMEOUT_SECS (here: a client that
/// stops sending its body) ends with a 503 problem, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_with_a_problem() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_REQUEST_TIMEOUT_SECS", "1")
        .spawn()
        .expect("server starts");
    let body =
        json!({"treatment": "microneedling", "date": "2026-12-01", "history": []}).to_string();
    let addr = server.http;
    let started = std::time::Instant::now();
    let answer = tokio::task::spawn_blocking(move || read_all(start_request(addr, &body, 10)))
        .await
        .expect("join");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("timeout"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// SIGTERM while a request is in flight: the request still gets its answer, then the process
/// exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_after_sigterm() {
    use std::io::Write;
    let mut server = Server::start().expect("server starts");
    let body = json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": {"pregnant": true}}).to_string();
    let mut stream = start_request(server.http, &body, 20);
    std::thread::sleep(Duration::from_millis(200));
    server.terminate().expect("SIGTERM sent");
    std::thread::sleep(Duration::from_millis(300));
    stream
        .write_all(&body.as_bytes()[20..])
        .expect("rest of the body");
    let answer = tokio::task::spawn_blocking(move || read_all(stream))
        .await
        .expect("join");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"contraindicated\""), "{answer}");
    let status = server.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status}");
}

/// A watch stream's end on shutdown: UNAVAILABLE with reason SHUTTING_DOWN and a retry delay.
fn shut_down(end: Result<Option<()>, tonic::Status>) {
    use tonic_types::StatusExt;
    let status = match end {
        Err(status) => status,
        other => panic!("expected UNAVAILABLE, got {other:?}"),
    };
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "SHUTTING_DOWN");
    assert!(status.get_details_retry_info().is_some(), "RetryInfo");
}
