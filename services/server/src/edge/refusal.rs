//! The answers of the edge layers, one per protocol: problem+json (RFC 9457) with `Retry-After`
//! over REST; a gRPC status with `google.rpc.ErrorInfo` and `google.rpc.RetryInfo` over gRPC.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{self, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::http::problem::{PROBLEM_JSON, Problem};

/// The `domain` of every `google.rpc.ErrorInfo` this server sends.
pub const DOMAIN: &str = "treatment-protocol";

/// 503 with `Retry-After`: the server sheds load. `reason` and `limit` as gRPC's `ErrorInfo`
/// carries them ([`grpc_overloaded`]), so a client of either protocol can branch on the same name.
pub fn rest_overloaded(in_flight: usize, retry_after_secs: u64) -> Response {
    let problem = Problem::custom(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "Server overloaded",
        format!(
            "{in_flight} requests are in progress, the most this server takes at once: retry \
             after {retry_after_secs} s"
        ),
    )
    .with("reason", "OVERLOADED")
    .with("limit", in_flight);
    let mut res = problem.into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    res
}

/// 429 with `Retry-After`: this key's request quota is used up (the problem type of
/// draft-ietf-httpapi-ratelimit-headers, with `violated-policies`; `reason`, `quota` and
/// `window-secs` as gRPC's `ErrorInfo` carries them, [`grpc_rate_limited`]).
pub fn rest_rate_limited(quota: u32, window_secs: u64, retry_after_secs: u64) -> Response {
    let body = serde_json::json!({
        "type": "https://iana.org/assignments/http-problem-types#quota-exceeded",
        "title": "Request quota exceeded",
        "status": 429,
        "detail": format!(
            "this API key may make {quota} requests per {window_secs} s: retry after \
             {retry_after_secs} s"
        ),
        "violated-policies": ["default"],
        "reason": "RATE_LIMITED",
        "quota": quota,
        "window-secs": window_secs,
    });
    let mut res = (StatusCode::TOO_MANY_REQUESTS, body.to_string()).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    res
}

fn grpc(
    code: Code,
    message: String,
    reason: &str,
    metadata: HashMap<String, String>,
    retry_after_secs: u64,
) -> http::Response<tonic::body::Body> {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, DOMAIN, metadata);
    details.set_retry_info(Some(Duration::from_secs(retry_after_secs)));
    tonic::Status::with_error_details(code, message, details).into_http()
}

/// RESOURCE_EXHAUSTED with ErrorInfo (`reason`) and RetryInfo.
pub fn grpc_exhausted(
    message: String,
    reason: &str,
    retry_after_secs: u64,
) -> http::Response<tonic::body::Body> {
    grpc(
        Code::ResourceExhausted,
        message,
        reason,
        HashMap::new(),
        retry_after_secs,
    )
}

/// UNAVAILABLE with RetryInfo: the server sheds load.
pub fn grpc_overloaded(
    in_flight: usize,
    retry_after_secs: u64,
) -> http::Response<tonic::body::Body> {
    grpc(
        Code::Unavailable,
        format!(
            "{in_flight} calls are in progress, the most this server takes at once: retry after \
             {retry_after_secs} s"
        ),
        "OVERLOADED",
        HashMap::from([("limit".to_owned(), in_flight.to_string())]),
        retry_after_secs,
    )
}

/// RESOURCE_EXHAUSTED with RetryInfo: this key's request quota is used up.
pub fn grpc_rate_limited(
    quota: u32,
    window_secs: u64,
    retry_after_secs: u64,
) -> http::Response<tonic::body::Body> {
    grpc(
        Code::ResourceExhausted,
        format!(
            "this API key may make {quota} requests per {window_secs} s: retry after \
             {retry_after_secs} s"
        ),
        "RATE_LIMITED",
        HashMap::from([
            ("quota".to_owned(), quota.to_string()),
            ("window-secs".to_owned(), window_secs.to_string()),
        ]),
        retry_after_secs,
    )
}
