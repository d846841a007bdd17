//! What one caller may take of a replica, black-box (issue 26, findings 3 and 8): a key's share
//! of the requests in progress, a peer address's share of the connections, and the memory
//! request bodies may take. Limits are set low through the settings, so the tests are small;
//! nothing here measures time, deadlines are only bounds on how long to wait.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use prost::bytes::Bytes;
use protocol_tests::raw::RawCodec;
use protocol_tests::{KEY_AURORA, KEY_BASE, Server, ServerBuilder, pb};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tonic::codegen::http::uri::PathAndQuery;
use tonic_types::StatusExt;

use crate::api::common::*;

fn check() -> Value {
    json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": healthy_facts()})
}

async fn eligibility_as(server: &Server, key: &str) -> reqwest::Response {
    http()
        .post(server.url("/v1/eligibility"))
        .bearer_auth(key)
        .json(&check())
        .send()
        .await
        .expect("answered")
}

/// A REST request whose body never finishes, sent with `key`: it holds its place.
async fn slow_request(server: &Server, key: &str) -> TcpStream {
    let mut s = TcpStream::connect(server.http).await.expect("connect");
    let head = format!(
        "POST /v1/eligibility HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_holding_slow_bodies_leaves_room_for_every_other_key() {
    let server = ServerBuilder::new()
        .with_keys()
        .env("PROTOCOL_MAX_IN_FLIGHT", "16")
        .env("PROTOCOL_MAX_IN_FLIGHT_PER_KEY", "4")
        .env("PROTOCOL_REQUEST_TIMEOUT_SECS", "60")
        .env("PROTOCOL_BODY_READ_TIMEOUT_SECS", "60")
        .spawn()
        .expect("server starts");

    // Aurora's key holds four requests whose bodies never finish (the red team held 1,030).
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(slow_request(&server, KEY_AURORA).await);
    }
    let busy = within(Duration::from_secs(10), || async {
        eligibility_as(&server, KEY_AURORA).await.status() == StatusCode::TOO_MANY_REQUESTS
    })
    .await;
    assert!(busy.is_some(), "Aurora's fifth request is refused");
    let res = eligibility_as(&server, KEY_AURORA).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["reason"], "KEY_BUSY", "{problem}");
    assert_eq!(problem["type"], "urn:treatment-protocol:problem:key-busy");
    assert_eq!(problem["limit"], 4);

    // Every other clinic is answered meanwhile, many at once.
    let mut others = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let url = server.url("/v1/eligibility");
        others.spawn(async move {
            http()
                .post(url)
                .bearer_auth(KEY_BASE)
                .json(&check())
                .send()
                .await
                .map(|r| r.status())
        });
    }
    for status in others.join_all().await {
        assert_eq!(
            status.ok(),
            Some(StatusCode::OK),
            "another clinic is answered"
        );
    }

    // gRPC, the same rule on its own listener: four calls of Aurora's whose request never
    // arrives hold its share; a fifth is RESOURCE_EXHAUSTED, another clinic's call is answered.
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
            raw.client_streaming(with_key(never, Some(KEY_AURORA)), path, RawCodec)
                .await
        })
    };
    let mut held: Vec<_> = (0..4).map(|_| hold(channel.clone())).collect();
    let mut client =
        pb::treatment_protocol_service_client::TreatmentProtocolServiceClient::new(channel.clone());
    let mut refused = None;
    let start = std::time::Instant::now();
    while refused.is_none() && start.elapsed() < Duration::from_secs(20) {
        match client
            .check_eligibility(with_key(eligibility_pb(&check()), Some(KEY_AURORA)))
            .await
        {
            Err(st) if st.code() == tonic::Code::ResourceExhausted => refused = Some(st),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        // A held call that arrived while a check held a place was refused itself (and ended):
        // hold the place again.
        for h in &mut held {
            if h.is_finished() {
                *h = hold(channel.clone());
            }
        }
    }
    let st = refused.expect("Aurora's fifth call is refused");
    assert_eq!(
        st.get_details_error_info().map(|i| i.reason),
        Some("KEY_BUSY".to_owned()),
        "{st:?}"
    );
    assert!(st.get_details_retry_info().is_some(), "{st:?}");
    let answered = client
        .check_eligibility(with_key(eligibility_pb(&check()), Some(KEY_BASE)))
        .await;
    assert!(answered.is_ok(), "another clinic is answered: {answered:?}");
    for h in held {
        h.abort();
    }
    drop(slow);
    // The share comes back once the held requests are gone.
    let freed = within(Duration::from_secs(10), || async {
        eligibility_as(&server, KEY_AURORA).await.status() == StatusCode::OK
    })
    .await;
    assert!(freed.is_some(), "Aurora's share is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_gives_its_place_back() {
    let server = ServerBuilder::new()
        .with_keys()
        .env("PROTOCOL_MAX_IN_FLIGHT_PER_KEY", "1")
        .env("PROTOCOL_BODY_READ_TIMEOUT_SECS", "1")
        .spawn()
        .expect("server starts");
    // A body that never finishes: answered 408 once the body-read timeout has passed (not at
    // the 10 s request timeout), naming the reason.
    let mut slow = slow_request(&server, KEY_AURORA).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), async {
        let mut buf = [0u8; 4096];
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "answered before the request timeout");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("BODY_TIMEOUT"), "{text}");
    // The key's one place is free again.
    assert_eq!(
        eligibility_as(&server, KEY_AURORA).await.status(),
        StatusCode::OK
    );
}

/// A connection from `from` (a loopback address of its own) to `to`.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(to).await
}

/// The connection, if the server has not closed it after `bound` (what it sends meanwhile, such
/// as gRPC's HTTP/2 settings, is read and dropped).
async fn open_after(mut s: TcpStream, bound: Duration) -> Option<TcpStream> {
    let closed = closes(&mut s, bound).await;
    (!closed).then_some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_flooding_idle_connections_leaves_room_for_every_other_client() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_MAX_CONNECTIONS", "40")
        .env("PROTOCOL_MAX_CONNECTIONS_PER_PEER", "10")
        .env("PROTOCOL_HEADER_READ_TIMEOUT_SECS", "60")
        .spawn()
        .expect("server starts");
    let flooder = Ipv4Addr::new(127, 0, 0, 2);
    let mut flood = Vec::new();
    for addr in [server.http, server.grpc] {
        // 30 idle connections from one address: 10 are held, the 20 past its share closed at
        // once (which 20 depends on the order the server accepts them in).
        let mut conns = Vec::new();
        for _ in 0..30 {
            conns.push(connect_from(flooder, addr).await.expect("connect"));
        }
        let mut open = Vec::new();
        let mut closed = 0;
        let waits: Vec<_> = conns
            .into_iter()
            .map(|s| tokio::spawn(open_after(s, Duration::from_secs(3))))
            .collect();
        for w in waits {
            match w.await.expect("joined") {
                Some(s) => open.push(s),
                None => closed += 1,
            }
        }
        assert_eq!(
            closed,
            20,
            "{addr}: the connections past the address's share\n{}",
            server.output().join("\n")
        );
        flood.extend(open);
    }
    // While the flood holds its 20 connections, every other client is answered: 20 of 20.
    let mut answered = 0;
    for _ in 0..10 {
        answered += usize::from(
            http()
                .post(server.url("/v1/eligibility"))
                .json(&check())
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK),
        );
        let mut client = pb::treatment_protocol_service_client::TreatmentProtocolServiceClient::new(
            server.channel().await.expect("channel"),
        );
        answered += usize::from(
            client
                .check_eligibility(eligibility_pb(&check()))
                .await
                .is_ok(),
        );
    }
    assert_eq!(answered, 20, "other clients keep their room");
    // The flooder's new connections are closed at once; another address of its own is not
    // limited by it.
    let again = connect_from(flooder, server.http).await.expect("connect");
    assert!(closed_within(again, Duration::from_secs(3)).await);
    let other = connect_from(Ipv4Addr::new(127, 0, 0, 3), server.http)
        .await
        .expect("connect");
    assert!(!closed_within(other, Duration::from_secs(1)).await);
    let output = server.output().join("\n");
    assert!(
        output.contains("connection cap per peer address reached"),
        "{output}"
    );
    drop(flood);
}

/// A hook call of `len` bytes or so, shaped as the worst case for memory: objects of one key in
/// a prefetched Bundle, inside the strict check's value budget, padded with one long string.
fn heavy_hook_call(objects: usize, pad: usize) -> String {
    let entries = vec![r#"{"a":0}"#; objects].join(",");
    format!(
        r#"{{"hook":"appointment-book","hookInstance":"d1577c69-dfbe-44ad-ba6d-3e05e953b2ea","context":{{"userId":"PractitionerRole/x","patientId":"p1","appointments":[]}},"prefetch":{{"conditions":{{"resourceType":"Bundle","type":"searchset","entry":[{entries}],"pad":"{}"}}}}}}"#,
        "x".repeat(pad)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_past_the_memory_budget_are_refused_and_the_budget_comes_back() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_REQUEST_MEMORY_MB", "2")
        .spawn()
        .expect("server starts");
    // 114 KB announced: its worst case (three copies and 16,000-odd objects of 650 B) is over
    // 2 MiB. Refused before a byte of the body is read.
    let body = heavy_hook_call(14_000, 2_000);
    let res = http()
        .post(server.url("/cds-services/treatment-eligibility"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["reason"], "MEMORY_BUSY", "{problem}");
    assert_eq!(
        problem["type"],
        "urn:treatment-protocol:problem:memory-busy"
    );
    assert_eq!(problem["budget-kib"], 2048);

    // The same body without a length (chunked): metered as it arrives, refused the same way.
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .as_bytes()
        .chunks(8 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let res = http()
        .post(server.url("/cds-services/treatment-eligibility"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem: Value = res.json().await.expect("problem");
    assert_eq!(problem["reason"], "MEMORY_BUSY", "{problem}");

    // gRPC: a message whose worst case is past the budget (48 times its 60 KB) is UNAVAILABLE.
    let mut request = eligibility_pb(&check());
    request.history = Some(pb::HistoryList {
        entries: vec![pb::HistoryEntry::default(); 30_000],
    });
    let mut client = pb::treatment_protocol_service_client::TreatmentProtocolServiceClient::new(
        server.channel().await.expect("channel"),
    );
    let st = client
        .check_eligibility(request)
        .await
        .expect_err("past the budget");
    assert_eq!(st.code(), tonic::Code::Unavailable, "{st:?}");
    assert_eq!(
        st.get_details_error_info().map(|i| i.reason),
        Some("MEMORY_BUSY".to_owned()),
        "{st:?}"
    );

    // What was refused gave its reservation back: ordinary requests are answered.
    for _ in 0..3 {
        let res = http()
            .post(server.url("/v1/eligibility"))
            .json(&check())
            .send()
            .await
            .expect("answered");
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            client
                .check_eligibility(eligibility_pb(&check()))
                .await
                .is_ok()
        );
    }
}

/// The replica's peak resident memory (`VmHWM`), KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_4_mib_hook_calls_stay_inside_the_memory_budget() {
    let server = ServerBuilder::new().spawn().expect("server starts");
    // Warm: one ordinary call, so the resting size includes what every request touches.
    let res = http()
        .post(server.url("/v1/eligibility"))
        .json(&check())
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), StatusCode::OK);
    let resting = peak_rss_kib(server.pid());

    // The worst shape the strict check lets through (25,000 objects of one key), padded to
    // 4 MiB: 40 at once. Without the budget each took some 30 MiB: over a gigabyte together.
    let body = heavy_hook_call(24_000, 4 * 1024 * 1024 - 24_000 * 8 - 400);
    assert!(body.len() < 4 * 1024 * 1024, "{}", body.len());
    // One such call alone, for the figure per call.
    let one = http()
        .post(server.url("/cds-services/treatment-eligibility"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("answered");
    assert_ne!(one.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let after_one = peak_rss_kib(server.pid());
    eprintln!(
        "one 4 MiB hook call: peak {} MiB over a resting {} MiB ({})",
        (after_one - resting) / 1024,
        resting / 1024,
        one.status()
    );
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (url, body) = (
            server.url("/cds-services/treatment-eligibility"),
            body.clone(),
        );
        calls.spawn(async move {
            http()
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    // 0: the server answered 503 before reading the body and closed the connection while the
    // client was still sending it (HTTP/1.1 has no way to stop a body but closing).
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for status in calls.join_all().await {
        let status = match status {
            Ok(status) => status,
            Err(e) if e.is_request() => 0,
            Err(e) => panic!("{e}"),
        };
        *by_status.entry(status).or_default() += 1;
    }
    let peak = peak_rss_kib(server.pid());
    eprintln!(
        "40 concurrent 4 MiB hook calls: peak {} MiB over a resting {} MiB: {by_status:?}",
        (peak - resting) / 1024,
        resting / 1024
    );
    // Every call is answered: read (and answered, or refused for its content), or refused for
    // memory (503, or its connection closed while it still sent), never a 500 and never a dead
    // replica.
    assert!(
        by_status
            .keys()
            .all(|s| [0, 200, 400, 422, 503].contains(s)),
        "{by_status:?}"
    );
    assert!(
        by_status.contains_key(&503) || by_status.contains_key(&0),
        "some wait their turn: {by_status:?}"
    );
    let grown_mib = (peak - resting) / 1024;
    // The default budget is 64 MiB; allocator slack and the connections' buffers on top.
    assert!(
        grown_mib < 64 + 48,
        "the replica grew {grown_mib} MiB over its resting {} MiB: {by_status:?}",
        resting / 1024
    );
    let res = http()
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("alive");
    assert_eq!(res.status(), StatusCode::OK);
}
