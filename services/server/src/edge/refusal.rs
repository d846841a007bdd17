//! The answers of the edge layers, one per protocol: problem+json (RFC 9457) with `Retry-After`
//! over REST; a gRPC status with `google.rpc.ErrorInfo` and `google.rpc.RetryInfo` over gRPC.

use axum::http::{self, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppError;
use crate::http::problem::Problem;

/// 503 with `Retry-After`: the server sheds load. Its row of the door's error table
/// (`OVERLOADED`, with `limit`), as gRPC's ([`grpc_overloaded`]).
pub fn rest_overloaded(in_flight: usize, retry_after_secs: u64) -> Response {
    with_retry_after(
        AppError::Overloaded {
            limit: in_flight,
            retry_after_secs,
        },
        retry_after_secs,
    )
}

/// 429 with `Retry-After`: this key has its whole share of the requests in progress
/// (`KEY_BUSY`, with `limit`), as gRPC's ([`grpc_key_busy`]).
pub fn rest_key_busy(limit: usize, retry_after_secs: u64) -> Response {
    with_retry_after(
        AppError::KeyBusy {
            limit,
            retry_after_secs,
        },
        retry_after_secs,
    )
}

/// 503 with `Retry-After`: the request-memory budget is in use (`MEMORY_BUSY`).
pub fn rest_memory_busy(needed_kib: u64, budget_kib: u64, retry_after_secs: u64) -> Response {
    with_retry_after(
        AppError::MemoryBusy {
            needed_kib,
            budget_kib,
            retry_after_secs,
        },
        retry_after_secs,
    )
}

/// RESOURCE_EXHAUSTED with RetryInfo: this key has its whole share of the requests in progress.
pub fn grpc_key_busy(limit: usize, retry_after_secs: u64) -> http::Response<tonic::body::Body> {
    crate::grpc::status::status(AppError::KeyBusy {
        limit,
        retry_after_secs,
    })
    .into_http()
}

/// UNAVAILABLE with RetryInfo: the request-memory budget is in use.
pub fn grpc_memory_busy(
    needed_kib: u64,
    budget_kib: u64,
    retry_after_secs: u64,
) -> http::Response<tonic::body::Body> {
    crate::grpc::status::status(AppError::MemoryBusy {
        needed_kib,
        budget_kib,
        retry_after_secs,
    })
    .into_http()
}

/// 429 with `Retry-After`: this key's request quota is used up (the problem type of
/// draft-ietf-httpapi-ratelimit-headers, with `violated-policies`; `reason`, `quota` and
/// `window-secs` as gRPC's `ErrorInfo` carries them, [`grpc_rate_limited`]).
pub fn rest_rate_limited(quota: u32, window_secs: u64, retry_after_secs: u64) -> Response {
    with_retry_after(
        AppError::RateLimited {
            quota,
            window_secs,
            retry_after_secs,
        },
        retry_after_secs,
    )
}

/// The problem of `e` with a `Retry-After` header.
fn with_retry_after(e: AppError, retry_after_secs: u64) -> Response {
    let mut res = Problem::from(e).into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    res
}

/// RESOURCE_EXHAUSTED with RetryInfo: the health and reflection calls are at their budget
/// (`HEALTH_BUDGET_EXHAUSTED`).
pub fn grpc_probes_exhausted(limit: usize) -> http::Response<tonic::body::Body> {
    crate::grpc::status::status(AppError::ProbesExhausted { limit }).into_http()
}

/// UNAVAILABLE with RetryInfo: the server sheds load (the door's error table, `OVERLOADED`).
pub fn grpc_overloaded(
    in_flight: usize,
    retry_after_secs: u64,
) -> http::Response<tonic::body::Body> {
    crate::grpc::status::status(AppError::Overloaded {
        limit: in_flight,
        retry_after_secs,
    })
    .into_http()
}

/// RESOURCE_EXHAUSTED with RetryInfo: this key's request quota is used up (`RATE_LIMITED`).
pub fn grpc_rate_limited(
    quota: u32,
    window_secs: u64,
    retry_after_secs: u64,
) -> http::Response<tonic::body::Body> {
    crate::grpc::status::status(AppError::RateLimited {
        quota,
        window_secs,
        retry_after_secs,
    })
    .into_http()
}
