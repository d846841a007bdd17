//! gRPC beyond single decisions: server reflection (what `grpcurl list` uses), the standard health
//! service, and the WatchDepthLimits stream.

use std::time::Duration;

use protocol_tests::{Server, ServerBuilder, pb};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::api::common::*;

async fn reflect(server: &Server, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(server.channel().await.expect("channel"));
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection call")
        .into_inner();
    stream
        .next()
        .await
        .expect("a response")
        .expect("ok")
        .message_response
        .expect("message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_and_describes_the_services() {
    let server = Server::start_with_keys().expect("server starts");
    let MessageResponse::ListServicesResponse(list) =
        reflect(&server, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "treatment.protocol.v1.TreatmentProtocolService",
        "treatment.protocol.v1.RuleSetAdminService",
        "treatment.protocol.v1.DecisionLogService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    // `grpcurl describe` needs the file with the service and its imports (struct.proto).
    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &server,
        MessageRequest::FileContainingSymbol(
            "treatment.protocol.v1.TreatmentProtocolService".into(),
        ),
    )
    .await
    else {
        panic!("expected file descriptors");
    };
    use prost::Message;
    let names: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .filter_map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).ok())
        .filter_map(|f| f.name)
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("protocol.proto")),
        "{names:?}"
    );
    // ... and the files it imports, by name.
    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &server,
        MessageRequest::FileByFilename("google/protobuf/struct.proto".into()),
    )
    .await
    else {
        panic!("expected google/protobuf/struct.proto");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    // The error details every status carries (ErrorInfo, BadRequest, RetryInfo, ...), so that
    // grpcurl and buf curl print them decoded.
    for symbol in [
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
        "google.rpc.RetryInfo",
        "google.rpc.PreconditionFailure",
    ] {
        let MessageResponse::FileDescriptorResponse(files) =
            reflect(&server, MessageRequest::FileContainingSymbol(symbol.into())).await
        else {
            panic!("expected the file of {symbol}");
        };
        let names: Vec<String> = files
            .file_descriptor_proto
            .iter()
            .filter_map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).ok())
            .filter_map(|f| f.name)
            .collect();
        assert!(
            names.iter().any(|n| n == "google/rpc/error_details.proto"),
            "{symbol}: {names:?}"
        );
    }
    // ... and the file it imports, by name, as a reflection client asks for it.
    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &server,
        MessageRequest::FileByFilename("google/protobuf/duration.proto".into()),
    )
    .await
    else {
        panic!("expected google/protobuf/duration.proto");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_reports_serving() {
    let server = Server::start_with_keys().expect("server starts");
    let mut health = HealthClient::new(server.channel().await.expect("channel"));
    for service in [
        "",
        "treatment.protocol.v1.TreatmentProtocolService",
        "treatment.protocol.v1.RuleSetAdminService",
        "treatment.protocol.v1.DecisionLogService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service '{service}'");
    }
}

fn depth_request() -> pb::GetDepthLimitsRequest {
    pb::GetDepthLimitsRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        device: "dermapen_4".into(),
        role: "nurse".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_depth_limits_sends_current_limits_then_heartbeats() {
    // A request timeout shorter than the stream's life: it bounds calls, not open streams.
    let server = ServerBuilder::new()
        .env("PROTOCOL_WATCH_HEARTBEAT_SECS", "1")
        .env("PROTOCOL_REQUEST_TIMEOUT_SECS", "1")
        .spawn()
        .expect("server starts");
    let mut client = server.grpc().await.expect("client");
    let now = client
        .get_depth_limits(depth_request())
        .await
        .expect("get")
        .into_inner();
    let mut stream = client
        .watch_depth_limits(pb::WatchDepthLimitsRequest::from(depth_request()))
        .await
        .expect("watch")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("first message in time")
        .expect("ok")
        .expect("a message");
    match first.update {
        Some(pb::watch_depth_limits_response::Update::Limits(l)) => {
            assert_eq!(depth_grpc(&l), depth_grpc(&now));
            assert!(l.ruleset.is_some_and(|r| !r.version.is_empty()));
        }
        other => panic!("expected limits first, got {other:?}"),
    }
    let second = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("heartbeat in time")
        .expect("ok")
        .expect("a message");
    assert!(
        matches!(
            second.update,
            Some(pb::watch_depth_limits_response::Update::Heartbeat(_))
        ),
        "{second:?}"
    );

    // An invalid watch fails the call itself.
    let mut bad = depth_request();
    bad.device = "laser_gun".into();
    let st = client
        .watch_depth_limits(pb::WatchDepthLimitsRequest::from(bad))
        .await
        .expect_err("invalid");
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    assert!(bad_request_fields(&st).contains(&"device".to_owned()));
}

/// gRPC etags are plain values (the REST `ETag` without HTTP's quotes), and a device that kept a
/// quoted one from before resumes with a heartbeat all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_etags_are_plain_values_and_resume_either_way() {
    let app = protocol_tests::TestApp::start();
    let rest = app
        .open()
        .depth_limits_query("treatment=microneedling&device=dermapen_4&role=nurse")
        .await;
    let rest_etag = rest.header("etag").expect("an ETag").to_owned();
    assert!(rest_etag.starts_with('"'), "{rest_etag}");
    let mut client = app.server.grpc().await.expect("client");
    let now = client
        .get_depth_limits(depth_request())
        .await
        .expect("get")
        .into_inner();
    assert_eq!(format!("\"{}\"", now.etag), rest_etag);
    assert!(!now.etag.contains('"'), "{}", now.etag);
    for resume in [now.etag.clone(), rest_etag] {
        let mut watch = pb::WatchDepthLimitsRequest::from(depth_request());
        watch.resume_etag = Some(resume.clone());
        let first = client
            .watch_depth_limits(watch)
            .await
            .expect("watch")
            .into_inner()
            .message()
            .await
            .expect("ok")
            .expect("a message");
        assert!(
            matches!(
                first.update,
                Some(pb::watch_depth_limits_response::Update::Heartbeat(_))
            ),
            "resuming at {resume}: {first:?}"
        );
    }
}
