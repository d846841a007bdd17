//! `transport-floor`: the ceiling of the HTTP stacks themselves for the load of `scripts/load`
//! (issue 16), with no decision, no layers and no telemetry.
//!
//! It serves what `scripts/load` asks for, on the same crates and runtime as `protocol-server`:
//! - `GET /healthz`: the same 15 bytes as the real probe (axum on hyper's HTTP/1.1);
//! - `POST /v1/eligibility`: reads the whole body and answers the real server's answer to
//!   `scripts/load-eligibility.json`, decided once at start-up from the bundled rule set and
//!   written out byte for byte (only the decision id is fixed);
//! - gRPC `CheckEligibility` (tonic on hyper's HTTP/2): reads the request message without
//!   decoding it and answers the real answer, encoded once at start-up.
//!
//! So `SERVER_BIN=…/transport-floor scripts/load` measures what any implementation of the
//! service would get on these stacks and this machine: if the canned eligibility answer stays
//! below 85 % of `/healthz`, or canned gRPC below canned REST, no decision code can close that gap.
//! Addresses come from `PROTOCOL_HTTP_ADDR` and `PROTOCOL_GRPC_ADDR` (port 0 for a free one) and
//! are printed as the server prints them (`"rest":"…","grpc":"…"`). Not a product binary: nothing
//! here is deployed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a measuring tool of the test suite: it stops loudly on what it cannot measure (the workspace denies these in production code)"
)]

use std::convert::Infallible;
use std::task::{Context, Poll};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use prost::Message;
use protocol_server::catalog::Catalog;
use protocol_tests::raw::RawCodec;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, NamedService, UnaryService};

const DECISION_ID: &str = "0194c9d8-0000-7000-8000-000000000000";

/// The real answers to the load body: REST JSON bytes and the gRPC message bytes.
fn answers(body: &[u8]) -> anyhow::Result<(Bytes, Bytes)> {
    let catalog = Catalog::bundled()?;
    let rs = catalog
        .for_tenant(None)
        .map_err(|_| anyhow::anyhow!("no base rule set"))?;
    let verdict = rs
        .read_eligibility(body)
        .context("the load body is not a complete eligibility request")?
        .decide();
    let mut json = Vec::new();
    verdict.write_json(&[("decision_id", DECISION_ID)], &mut json);
    let pb = protocol_server::grpc::convert::eligibility(
        &verdict.into_eligibility(),
        DECISION_ID.to_owned(),
    );
    Ok((json.into(), pb.encode_to_vec().into()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let body_path =
        std::env::var("FLOOR_BODY").unwrap_or_else(|_| "scripts/load-eligibility.json".into());
    let body = std::fs::read(&body_path).with_context(|| format!("reading {body_path}"))?;
    let (json, pb) = answers(&body)?;

    let http_addr = std::env::var("PROTOCOL_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
    let grpc_addr = std::env::var("PROTOCOL_GRPC_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
    let rest = tokio::net::TcpListener::bind(&http_addr).await?;
    let grpc = tokio::net::TcpListener::bind(&grpc_addr).await?;
    println!(
        r#"{{"message":"transport floor listening","rest":"{}","grpc":"{}"}}"#,
        rest.local_addr()?,
        grpc.local_addr()?
    );

    let router = Router::new()
        .route(
            "/healthz",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"status":"ok"}"#,
                )
            }),
        )
        .route(
            "/v1/eligibility",
            post(move |request: Bytes| {
                let json = json.clone();
                async move {
                    // The body is read whole, as the real handler reads it.
                    std::hint::black_box(request);
                    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
                }
            }),
        );
    let incoming = tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true));
    let grpc = tonic::transport::Server::builder()
        .add_service(Canned(pb))
        .serve_with_incoming(incoming);
    tokio::try_join!(
        async { axum::serve(rest, router).await.map_err(anyhow::Error::from) },
        async { grpc.await.map_err(anyhow::Error::from) },
    )?;
    Ok(())
}

/// `treatment.protocol.v1.TreatmentProtocolService` answering every call with the same message.
#[derive(Clone)]
struct Canned(Bytes);

impl NamedService for Canned {
    const NAME: &'static str = "treatment.protocol.v1.TreatmentProtocolService";
}

impl UnaryService<usize> for Canned {
    type Response = Bytes;
    type Future = BoxFuture<tonic::Response<Bytes>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<usize>) -> Self::Future {
        let answer = self.0.clone();
        Box::pin(async move {
            std::hint::black_box(request);
            Ok(tonic::Response::new(answer))
        })
    }
}

impl<B> Service<http::Request<B>> for Canned
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let svc = self.clone();
        Box::pin(async move { Ok(Grpc::new(RawCodec).unary(svc, req).await) })
    }
}
