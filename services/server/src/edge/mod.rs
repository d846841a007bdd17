//! The server's edges: what happens to a connection and a request before a handler sees it, the
//! same on both listeners wherever the protocols allow. The layer stacks themselves are written out
//! where they apply, in [`crate::http::router`] (REST) and [`crate::startup`] (the tonic builder):
//!
//! | concern | REST | gRPC |
//! |---|---|---|
//! | connections: cap, handshake deadline, TCP and HTTP/2 keep-alive, streams per connection | [`conn::serve_rest`] | [`conn::Guarded`] on the incoming stream, tonic's builder |
//! | request id (`x-request-id`: accepted and echoed, else a UUID v7) | tower-http | tower-http |
//! | unknown method | 404 problem | [`methods`]: UNIMPLEMENTED, never logged above DEBUG |
//! | duplicate credentials, per-key rate limit, per-key share, load shedding | [`admission`] | [`admission`] |
//! | request-memory budget (bodies reserved and metered) | [`memory`], in [`admission`] | [`memory`], in [`admission`] |
//! | health and reflection budget | — | [`streams::CallBudget`] |
//! | `WatchDepthLimits` per key and in total | — | [`streams::WatchLimits`] |
//! | CORS (off by default), compression | tower-http | gzip via tonic |

pub mod admission;
pub mod conn;
pub mod memory;
pub mod methods;
pub mod refusal;
pub mod streams;

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{self, HeaderName, HeaderValue};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The request-id header, accepted from clients and echoed on every answer.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A fresh request id: a UUID v7 (ids sort by time).
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        let mut text = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(id).ok().map(RequestId::new)
    }
}

tokio::task_local! {
    /// The id of the request being answered (for problem+json `instance`).
    static CURRENT_REQUEST_ID: HeaderValue;
}

/// The credential of an HTTP request (REST, or gRPC metadata, which travels as HTTP/2 headers):
/// its one `Authorization` header ([`crate::auth::credential`]: two are refused).
pub fn credential(headers: &http::HeaderMap) -> Result<Option<&[u8]>, crate::auth::AuthError> {
    crate::auth::credential(
        headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

/// The id of the request this task is answering, inside [`RequestIdLayer`].
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID
        .try_with(|v| v.to_str().ok().map(str::to_owned))
        .ok()
        .flatten()
        .filter(|id| !id.is_empty())
}

/// The request id in one layer (REST and gRPC): keeps a client's plain `x-request-id`
/// ([`plain_request_id`]) or makes a UUID v7, makes it readable by [`current_request_id`] while
/// the request is answered, and echoes it on the answer, never indexed by HPACK
/// ([`never_indexed_request_id`]). One future and no request extension, where tower-http's
/// `SetRequestId` + `PropagateRequestId` cost two (measured under `scripts/load`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = WithRequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithRequestId { inner }
    }
}

/// See [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct WithRequestId<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for WithRequestId<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = WithRequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let mut req = plain_request_id(req);
        let id = match req.headers().get(&REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = MakeRequestUuidV7
                    .make_request_id(&req)
                    .map(|r| r.into_header_value())
                    .unwrap_or_else(|| HeaderValue::from_static("unknown"));
                req.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        WithRequestIdFuture {
            inner: CURRENT_REQUEST_ID.scope(id.clone(), self.inner.call(req)),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    /// See [`RequestIdLayer`].
    pub struct WithRequestIdFuture<F> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<HeaderValue, F>,
        id: Option<HeaderValue>,
    }
}

impl<F, ResBody, E> std::future::Future for WithRequestIdFuture<F>
where
    F: std::future::Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = std::task::ready!(this.inner.poll(cx))?;
        if let Some(id) = this.id.take() {
            res.headers_mut().insert(REQUEST_ID, id);
        }
        Poll::Ready(Ok(never_indexed_request_id(res)))
    }
}

/// Marks the answer's `x-request-id` never-indexed for HPACK (HTTP/2 header compression).
///
/// Every answer carries a new id, so indexing it only fills the connection's dynamic table with
/// ids never sent again, and each answer's encoder walks the chain of earlier ids comparing
/// values: under gRPC load (`scripts/load`) that walk was 6 % of the server's CPU (`memcmp` under
/// `h2::hpack::table::Table::index`). A never-indexed literal costs a few bytes more per answer
/// and no table work on either side. HTTP/1.1 has no header table: nothing changes there.
fn never_indexed_request_id<B>(mut res: http::Response<B>) -> http::Response<B> {
    if let Some(id) = res.headers_mut().get_mut(&REQUEST_ID) {
        id.set_sensitive(true);
    }
    res
}

/// Gzip request bodies (tower-http's `RequestDecompression`) for requests that say they are
/// encoded; the others go straight to the inner service, without a body wrapper and a boxed
/// answer each.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeRequestsLayer;

impl<S: Clone> tower::Layer<S> for DecodeRequestsLayer {
    type Service = DecodeRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeRequests {
            decoding: tower_http::decompression::RequestDecompression::new(inner.clone()),
            inner,
        }
    }
}

/// See [`DecodeRequestsLayer`].
#[derive(Clone)]
pub struct DecodeRequests<S> {
    inner: S,
    decoding: tower_http::decompression::RequestDecompression<S>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

impl<S, B> tower::Service<http::Request<B>> for DecodeRequests<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<axum::body::Body>,
            Error = std::convert::Infallible,
        > + tower::Service<
            http::Request<tower_http::decompression::DecompressionBody<B>>,
            Response = http::Response<axum::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    <S as tower::Service<http::Request<tower_http::decompression::DecompressionBody<B>>>>::Future:
        Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<axum::body::Body>;
    type Error = std::convert::Infallible;
    type Future = futures::future::Either<
        <S as tower::Service<http::Request<B>>>::Future,
        BoxFuture<Result<Self::Response, Self::Error>>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !req.headers().contains_key(http::header::CONTENT_ENCODING) {
            return futures::future::Either::Left(tower::Service::<http::Request<B>>::call(
                &mut self.inner,
                req,
            ));
        }
        let mut decoding = self.decoding.clone();
        futures::future::Either::Right(Box::pin(async move {
            let res = tower::ServiceExt::oneshot(&mut decoding, req).await?;
            Ok(res.map(axum::body::Body::new))
        }))
    }
}

/// Response compression (tower-http's `Compression`: gzip, br, zstd) for requests whose
/// `Accept-Encoding` asks for it; the others go straight to the inner service. tower-http's body
/// wrapper holds every encoder's state inline (kilobytes), and moving answers of that size through
/// the stack cost more than the request itself (`perf` under `scripts/load`: copies went from 3 %
/// to 10 % of the server's CPU): a compressed answer is boxed once, a plain one is untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompressWhenAskedLayer;

impl<S: Clone> tower::Layer<S> for CompressWhenAskedLayer {
    type Service = CompressWhenAsked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CompressWhenAsked {
            compressing: tower_http::compression::Compression::new(inner.clone()),
            inner,
        }
    }
}

/// See [`CompressWhenAskedLayer`].
#[derive(Clone)]
pub struct CompressWhenAsked<S> {
    inner: S,
    compressing: tower_http::compression::Compression<S>,
}

impl<S, B> tower::Service<http::Request<B>> for CompressWhenAsked<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<axum::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<axum::body::Body>;
    type Error = std::convert::Infallible;
    type Future =
        futures::future::Either<S::Future, BoxFuture<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !req.headers().contains_key(http::header::ACCEPT_ENCODING) {
            return futures::future::Either::Left(self.inner.call(req));
        }
        let mut compressing = self.compressing.clone();
        futures::future::Either::Right(Box::pin(async move {
            let res = tower::ServiceExt::oneshot(&mut compressing, req).await?;
            Ok(res.map(axum::body::Body::new))
        }))
    }
}

/// Drops a client's `x-request-id` unless it is a plain id (1 to 64 characters of
/// `[A-Za-z0-9._:-]`), so a fresh one is made instead: the id goes into spans, logs and answers,
/// and a client's arbitrary string has no place there.
fn plain_request_id<B>(mut req: http::Request<B>) -> http::Request<B> {
    let plain = |v: &HeaderValue| {
        let b = v.as_bytes();
        (1..=64).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
    };
    let headers = req.headers_mut();
    let values = headers.get_all(&REQUEST_ID).iter();
    let mut count = 0;
    let mut ok = true;
    for v in values {
        count += 1;
        ok &= plain(v);
    }
    if count > 1 || !ok {
        headers.remove(&REQUEST_ID);
    }
    req
}

pin_project_lite::pin_project! {
    /// A response body that holds `guard` until the body is done or dropped (for budgets on
    /// streams, whose calls last as long as their bodies).
    pub struct PermitBody<B, G> {
        #[pin]
        inner: B,
        guard: Option<G>,
    }
}

impl<B, G> PermitBody<B, G> {
    pub fn new(inner: B, guard: G) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B: http_body::Body, G> http_body::Body for PermitBody<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.guard.take();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id keeps its value and is marked never-indexed; an answer without one is untouched.
    #[test]
    fn request_id_is_never_indexed() {
        let mut res = http::Response::new(());
        res.headers_mut()
            .insert(REQUEST_ID, HeaderValue::from_static("abc-1"));
        let res = never_indexed_request_id(res);
        let id = &res.headers()[&REQUEST_ID];
        assert_eq!(id, "abc-1");
        assert!(id.is_sensitive());

        let res = never_indexed_request_id(http::Response::new(()));
        assert!(res.headers().is_empty());
    }
}
