//! Admission, one tower layer per protocol with the same rules: a request is
//!
//! 1. refused (401 / UNAUTHENTICATED) when it carries two `Authorization` headers
//!    ([`crate::auth::credential`]);
//! 2. refused (429 / RESOURCE_EXHAUSTED, with `Retry-After` / `RetryInfo`) when its API key has
//!    used up its quota (`PROTOCOL_RATE_LIMIT` per `PROTOCOL_RATE_LIMIT_WINDOW_SECS`; off by
//!    default). REST answers carry the `RateLimit-Policy` and `RateLimit` headers of
//!    draft-ietf-httpapi-ratelimit-headers;
//! 3. shed at once (503 / UNAVAILABLE, with `Retry-After` / `RetryInfo`) when
//!    `PROTOCOL_MAX_IN_FLIGHT` requests of this listener are in progress: a concurrency limit
//!    that never queues (tower's `ConcurrencyLimit` behind `LoadShed`, with one budget for all
//!    routes and the refusal in the protocol's own error format).
//!
//! Probes (`/healthz`, `/readyz`) and gRPC health and reflection are exempt: they stay answerable
//! under load (health and reflection have their own budget, [`super::streams::CallBudget`]).
//! A request holds its place until its response head is ready; a stream's body does not count.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{self, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::refusal;
use crate::auth::{ApiKeys, AuthError};

/// Seconds a shed client is asked to wait.
pub const SHED_RETRY_AFTER_SECS: u64 = 1;

/// How each protocol words the refusals.
pub trait Protocol: Send + Sync + 'static {
    type Body: Send + 'static;
    /// Requests the layer lets through untouched.
    fn exempt(path: &str) -> bool;
    fn unauthenticated(e: AuthError) -> http::Response<Self::Body>;
    fn overloaded(limit: usize) -> http::Response<Self::Body>;
    fn rate_limited(limiter: &KeyLimiter, retry_after: u64) -> http::Response<Self::Body>;
    /// Adds what a client should know about its quota to an admitted request's answer.
    fn quota_headers(_res: &mut http::Response<Self::Body>, _quota: &QuotaState) {}
}

/// REST: problem+json, `Retry-After`, `RateLimit-Policy` and `RateLimit`.
#[derive(Debug, Clone, Copy)]
pub enum Rest {}

impl Protocol for Rest {
    type Body = axum::body::Body;

    fn exempt(path: &str) -> bool {
        matches!(path, "/healthz" | "/readyz")
    }

    fn unauthenticated(e: AuthError) -> http::Response<Self::Body> {
        use axum::response::IntoResponse;
        crate::http::problem::Problem::from(e).into_response()
    }

    fn overloaded(limit: usize) -> http::Response<Self::Body> {
        refusal::rest_overloaded(limit, SHED_RETRY_AFTER_SECS)
    }

    fn rate_limited(limiter: &KeyLimiter, retry_after: u64) -> http::Response<Self::Body> {
        let mut res = refusal::rest_rate_limited(limiter.quota, limiter.window_secs, retry_after);
        let quota = QuotaState {
            policy: limiter.policy.clone(),
            remaining: 0,
            reset_secs: retry_after,
        };
        Self::quota_headers(&mut res, &quota);
        res
    }

    fn quota_headers(res: &mut http::Response<Self::Body>, quota: &QuotaState) {
        let headers = res.headers_mut();
        headers.insert("ratelimit-policy", quota.policy.clone());
        if let Ok(v) = HeaderValue::try_from(format!(
            "\"default\";r={};t={}",
            quota.remaining, quota.reset_secs
        )) {
            headers.insert("ratelimit", v);
        }
    }
}

/// gRPC: statuses with `ErrorInfo` and `RetryInfo`.
#[derive(Debug, Clone, Copy)]
pub enum Grpc {}

impl Protocol for Grpc {
    type Body = tonic::body::Body;

    fn exempt(path: &str) -> bool {
        path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
    }

    fn unauthenticated(e: AuthError) -> http::Response<Self::Body> {
        crate::grpc::auth_status(e).into_http()
    }

    fn overloaded(limit: usize) -> http::Response<Self::Body> {
        refusal::grpc_overloaded(limit, SHED_RETRY_AFTER_SECS)
    }

    fn rate_limited(limiter: &KeyLimiter, retry_after: u64) -> http::Response<Self::Body> {
        refusal::grpc_rate_limited(limiter.quota, limiter.window_secs, retry_after)
    }
}

// ---- the rate limit -----------------------------------------------------------------------------

type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// One key's limiter: GCRA (governor), `quota` requests per `window_secs`, refilled evenly.
pub struct KeyLimiter {
    limiter: Direct,
    quota: u32,
    window_secs: u64,
    /// `"default";q=<quota>;w=<window>`.
    policy: HeaderValue,
}

/// A key's quota after an admitted request.
#[derive(Debug, Clone)]
pub struct QuotaState {
    policy: HeaderValue,
    remaining: u32,
    /// Seconds until the whole quota is available again.
    reset_secs: u64,
}

/// The per-key rate limits: one limiter per configured key, made at start (so the table never
/// grows, whatever tokens clients invent).
pub struct RateLimits {
    keys: Arc<ApiKeys>,
    by_key: HashMap<String, KeyLimiter>,
    clock: DefaultClock,
}

impl RateLimits {
    /// `None` when off (`quota` 0) or when no keys are configured.
    pub fn new(keys: Arc<ApiKeys>, quota: u32, window_secs: u64) -> Option<Arc<Self>> {
        let quota_nz = NonZeroU32::new(quota)?;
        let window_secs = window_secs.max(1);
        let period = Duration::from_secs(window_secs) / quota;
        let per = Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(quota_nz);
        let policy =
            HeaderValue::try_from(format!("\"default\";q={quota};w={window_secs}")).ok()?;
        let by_key: HashMap<String, KeyLimiter> = keys
            .key_ids()
            .into_iter()
            .map(|id| {
                let limiter =
                    RateLimiter::direct(per).with_middleware::<StateInformationMiddleware>();
                (
                    id,
                    KeyLimiter {
                        limiter,
                        quota,
                        window_secs,
                        policy: policy.clone(),
                    },
                )
            })
            .collect();
        if by_key.is_empty() {
            return None;
        }
        Some(Arc::new(Self {
            keys,
            by_key,
            clock: DefaultClock::default(),
        }))
    }

    /// `Ok(Some(state))`: admitted; `Ok(None)`: not a known key (authentication will answer);
    /// `Err((limiter, seconds))`: over the quota.
    fn check(&self, credential: Option<&[u8]>) -> Result<Option<QuotaState>, (&KeyLimiter, u64)> {
        let Some(caller) = self.keys.identify(credential) else {
            return Ok(None);
        };
        let Some(limiter) = caller.key_id.as_deref().and_then(|id| self.by_key.get(id)) else {
            return Ok(None);
        };
        match limiter.limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let per = snapshot.quota().replenish_interval();
                let reset = per * (limiter.quota - remaining.min(limiter.quota));
                Ok(Some(QuotaState {
                    policy: limiter.policy.clone(),
                    remaining,
                    reset_secs: ceil_secs(reset),
                }))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err((limiter, ceil_secs(wait).max(1)))
            }
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

// ---- the layer ----------------------------------------------------------------------------------

/// See the module docs.
pub struct AdmissionLayer<P> {
    in_flight: Arc<Semaphore>,
    limit: usize,
    rate: Option<Arc<RateLimits>>,
    _protocol: PhantomData<fn() -> P>,
}

impl<P> Clone for AdmissionLayer<P> {
    fn clone(&self) -> Self {
        Self {
            in_flight: self.in_flight.clone(),
            limit: self.limit,
            rate: self.rate.clone(),
            _protocol: PhantomData,
        }
    }
}

impl<P> AdmissionLayer<P> {
    pub fn new(max_in_flight: usize, rate: Option<Arc<RateLimits>>) -> Self {
        let limit = max_in_flight.max(1);
        Self {
            in_flight: Arc::new(Semaphore::new(limit)),
            limit,
            rate,
            _protocol: PhantomData,
        }
    }
}

impl<P, S> tower::Layer<S> for AdmissionLayer<P> {
    type Service = Admission<P, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`AdmissionLayer`].
pub struct Admission<P, S> {
    inner: S,
    layer: AdmissionLayer<P>,
}

impl<P, S: Clone> Clone for Admission<P, S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<P, S, B> tower::Service<http::Request<B>> for Admission<P, S>
where
    P: Protocol,
    S: tower::Service<http::Request<B>, Response = http::Response<P::Body>, Error = Infallible>,
{
    type Response = http::Response<P::Body>;
    type Error = Infallible;
    type Future = AdmissionFuture<S::Future, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if P::exempt(req.uri().path()) {
            return AdmissionFuture::pass(self.inner.call(req));
        }
        let credential = match crate::edge::credential(req.headers()) {
            Ok(c) => c,
            Err(e) => return AdmissionFuture::refused(P::unauthenticated(e)),
        };
        let quota = match self.layer.rate.as_deref().map(|r| r.check(credential)) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(q))) => Some(q),
            Some(Err((limiter, retry))) => {
                return AdmissionFuture::refused(P::rate_limited(limiter, retry));
            }
        };
        let Ok(permit) = self.layer.in_flight.clone().try_acquire_owned() else {
            return AdmissionFuture::refused(P::overloaded(self.layer.limit));
        };
        AdmissionFuture::Admitted {
            inner: self.inner.call(req),
            permit: Some(permit),
            quota,
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Admission`]: the inner service's, or a refusal.
    #[project = AdmissionProj]
    pub enum AdmissionFuture<F, P: Protocol> {
        Admitted {
            #[pin]
            inner: F,
            permit: Option<OwnedSemaphorePermit>,
            quota: Option<QuotaState>,
        },
        Refused {
            response: Option<http::Response<P::Body>>,
        },
    }
}

impl<F, P: Protocol> AdmissionFuture<F, P> {
    /// The inner service's answer, untouched.
    pub fn pass(inner: F) -> Self {
        Self::Admitted {
            inner,
            permit: None,
            quota: None,
        }
    }

    /// This answer instead of the inner service's.
    pub fn refused(response: http::Response<P::Body>) -> Self {
        Self::Refused {
            response: Some(response),
        }
    }
}

impl<F, P> Future for AdmissionFuture<F, P>
where
    P: Protocol,
    F: Future<Output = Result<http::Response<P::Body>, Infallible>>,
{
    type Output = Result<http::Response<P::Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AdmissionProj::Admitted {
                inner,
                permit,
                quota,
            } => {
                let Ok(mut res) = std::task::ready!(inner.poll(cx));
                drop(permit.take());
                if let Some(q) = quota.take() {
                    P::quota_headers(&mut res, &q);
                }
                Poll::Ready(Ok(res))
            }
            AdmissionProj::Refused { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending,
            },
        }
    }
}
