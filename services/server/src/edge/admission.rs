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
//!    routes and the refusal in the protocol's own error format);
//! 4. refused (429 / RESOURCE_EXHAUSTED `KEY_BUSY`, with `Retry-After` / `RetryInfo`) when its
//!    caller already has `PROTOCOL_MAX_IN_FLIGHT_PER_KEY` requests of this listener in
//!    progress: admission is fair per key, so one key's slow or many requests (a red team held
//!    1,030 slow bodies) never take every place. Calls without a known key share one such
//!    share;
//! 5. refused (503 / UNAVAILABLE `MEMORY_BUSY`) when its body would take more memory than is left
//!    of the request-memory budget ([`super::memory`]): before any byte is read when it announces
//!    a `Content-Length`, else as its bytes arrive; and (408 / DEADLINE_EXCEEDED `BODY_TIMEOUT`)
//!    when its whole body has not arrived within `PROTOCOL_BODY_READ_TIMEOUT_SECS`.
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

use super::memory::{self, Cost, Held, MemoryBusy, Metered, ReadErrors, RequestMemory};
use super::refusal;
use crate::auth::{ApiKeys, AuthError, Caller};

/// Seconds a shed client is asked to wait.
pub const SHED_RETRY_AFTER_SECS: u64 = 1;

/// How each protocol words the refusals, and reads its bodies.
pub trait Protocol: Send + Sync + 'static {
    type Body: Send + 'static;
    /// The body of a request as the layer's inner service takes it.
    type ReqBody: http_body::Body<Data = axum::body::Bytes, Error: Into<axum::BoxError>>
        + Send
        + 'static;
    /// Requests the layer lets through untouched.
    fn exempt(path: &str) -> bool;
    /// What a body may take in memory at worst ([`memory::json_cost`], [`memory::protobuf_cost`]).
    const COST: Cost;
    /// A metered body as the inner service takes it.
    fn metered(body: Metered<Self::ReqBody>) -> Self::ReqBody;
    /// The read errors of a body (the budget cannot hold it; it is too slow), as the protocol's
    /// stack passes them on.
    const READ_ERRORS: ReadErrors;
    fn unauthenticated(e: AuthError) -> http::Response<Self::Body>;
    fn overloaded(limit: usize) -> http::Response<Self::Body>;
    fn key_busy(limit: usize) -> http::Response<Self::Body>;
    fn memory_busy(busy: MemoryBusy) -> http::Response<Self::Body>;
    fn rate_limited(limiter: &KeyLimiter, retry_after: u64) -> http::Response<Self::Body>;
    /// Adds what a client should know about its quota to an admitted request's answer.
    fn quota_headers(_res: &mut http::Response<Self::Body>, _quota: &QuotaState) {}
}

/// REST: problem+json, `Retry-After`, `RateLimit-Policy` and `RateLimit`.
#[derive(Debug, Clone, Copy)]
pub enum Rest {}

impl Protocol for Rest {
    type Body = axum::body::Body;
    type ReqBody = axum::body::Body;
    const COST: Cost = memory::json_cost;

    fn exempt(path: &str) -> bool {
        matches!(path, "/healthz" | "/readyz")
    }

    fn metered(body: Metered<Self::ReqBody>) -> Self::ReqBody {
        axum::body::Body::new(body)
    }

    const READ_ERRORS: ReadErrors = ReadErrors {
        busy: |busy| Box::new(busy),
        slow: |slow| Box::new(slow),
    };

    fn key_busy(limit: usize) -> http::Response<Self::Body> {
        refusal::rest_key_busy(limit, SHED_RETRY_AFTER_SECS)
    }

    fn memory_busy(busy: MemoryBusy) -> http::Response<Self::Body> {
        refusal::rest_memory_busy(busy.needed_kib, busy.budget_kib, SHED_RETRY_AFTER_SECS)
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
    type ReqBody = tonic::body::Body;
    const COST: Cost = memory::protobuf_cost;

    fn exempt(path: &str) -> bool {
        path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
    }

    fn metered(body: Metered<Self::ReqBody>) -> Self::ReqBody {
        tonic::body::Body::new(body)
    }

    /// A `Status` read error is what tonic answers the call with.
    const READ_ERRORS: ReadErrors = ReadErrors {
        busy: |busy| {
            Box::new(crate::grpc::status::status(
                crate::app::AppError::MemoryBusy {
                    needed_kib: busy.needed_kib,
                    budget_kib: busy.budget_kib,
                    retry_after_secs: SHED_RETRY_AFTER_SECS,
                },
            ))
        },
        slow: |slow| {
            Box::new(crate::grpc::status::status(
                crate::app::AppError::BodyTimedOut { secs: slow.secs },
            ))
        },
    };

    fn key_busy(limit: usize) -> http::Response<Self::Body> {
        refusal::grpc_key_busy(limit, SHED_RETRY_AFTER_SECS)
    }

    fn memory_busy(busy: MemoryBusy) -> http::Response<Self::Body> {
        refusal::grpc_memory_busy(busy.needed_kib, busy.budget_kib, SHED_RETRY_AFTER_SECS)
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
    by_key: HashMap<String, KeyLimiter>,
    clock: DefaultClock,
}

impl RateLimits {
    /// `None` when off (`quota` 0) or when no keys are configured.
    pub fn new(keys: &ApiKeys, quota: u32, window_secs: u64) -> Option<Arc<Self>> {
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
            by_key,
            clock: DefaultClock::default(),
        }))
    }

    /// `Ok(Some(state))`: admitted; `Ok(None)`: not a known key (authentication will answer);
    /// `Err((limiter, seconds))`: over the quota.
    fn check(&self, caller: Option<&Caller>) -> Result<Option<QuotaState>, (&KeyLimiter, u64)> {
        let Some(caller) = caller else {
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

// ---- fair shares ---------------------------------------------------------------------------------

/// Each key's share of the requests in progress: one semaphore per configured key, made at start
/// (so the table never grows, whatever tokens clients invent), and one shared by every call
/// without a known key.
pub struct KeyShares {
    by_key: HashMap<String, Arc<Semaphore>>,
    other: Arc<Semaphore>,
    limit: usize,
}

impl KeyShares {
    pub fn new(keys: &ApiKeys, limit: usize) -> Arc<Self> {
        let limit = limit.max(1);
        Arc::new(Self {
            by_key: keys
                .key_ids()
                .into_iter()
                .map(|id| (id, Arc::new(Semaphore::new(limit))))
                .collect(),
            other: Arc::new(Semaphore::new(limit)),
            limit,
        })
    }

    fn of(&self, caller: Option<&Caller>) -> &Arc<Semaphore> {
        caller
            .and_then(|c| c.key_id.as_deref())
            .and_then(|id| self.by_key.get(id))
            .unwrap_or(&self.other)
    }
}

// ---- the layer ----------------------------------------------------------------------------------

/// See the module docs.
pub struct AdmissionLayer<P> {
    in_flight: Arc<Semaphore>,
    limit: usize,
    keys: Arc<ApiKeys>,
    shares: Arc<KeyShares>,
    memory: Arc<RequestMemory>,
    body_read_timeout: Duration,
    rate: Option<Arc<RateLimits>>,
    _protocol: PhantomData<fn() -> P>,
}

impl<P> Clone for AdmissionLayer<P> {
    fn clone(&self) -> Self {
        Self {
            in_flight: self.in_flight.clone(),
            limit: self.limit,
            keys: self.keys.clone(),
            shares: self.shares.clone(),
            memory: self.memory.clone(),
            body_read_timeout: self.body_read_timeout,
            rate: self.rate.clone(),
            _protocol: PhantomData,
        }
    }
}

/// What the admission layers of both listeners are made of.
pub struct AdmissionSettings {
    /// `PROTOCOL_MAX_IN_FLIGHT`, per listener.
    pub max_in_flight: usize,
    pub keys: Arc<ApiKeys>,
    /// `PROTOCOL_MAX_IN_FLIGHT_PER_KEY`, per listener.
    pub max_in_flight_per_key: usize,
    /// Shared by both listeners.
    pub memory: Arc<RequestMemory>,
    /// `PROTOCOL_BODY_READ_TIMEOUT_SECS`: a request's whole body must arrive within it.
    pub body_read_timeout: Duration,
    /// Shared by both listeners.
    pub rate: Option<Arc<RateLimits>>,
}

impl<P> AdmissionLayer<P> {
    pub fn new(settings: &AdmissionSettings) -> Self {
        let limit = settings.max_in_flight.max(1);
        Self {
            in_flight: Arc::new(Semaphore::new(limit)),
            limit,
            keys: settings.keys.clone(),
            shares: KeyShares::new(&settings.keys, settings.max_in_flight_per_key.min(limit)),
            memory: settings.memory.clone(),
            body_read_timeout: settings.body_read_timeout,
            rate: settings.rate.clone(),
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

impl<P, S> tower::Service<http::Request<P::ReqBody>> for Admission<P, S>
where
    P: Protocol,
    S: tower::Service<
            http::Request<P::ReqBody>,
            Response = http::Response<P::Body>,
            Error = Infallible,
        >,
{
    type Response = http::Response<P::Body>;
    type Error = Infallible;
    type Future = AdmissionFuture<S::Future, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<P::ReqBody>) -> Self::Future {
        if P::exempt(req.uri().path()) {
            return AdmissionFuture::pass(self.inner.call(req));
        }
        let credential = match crate::edge::credential(req.headers()) {
            Ok(c) => c,
            Err(e) => return AdmissionFuture::refused(P::unauthenticated(e)),
        };
        let caller = self.layer.keys.identify(credential);
        let quota = match self
            .layer
            .rate
            .as_deref()
            .map(|r| r.check(caller.as_deref()))
        {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(q))) => Some(q),
            Some(Err((limiter, retry))) => {
                return AdmissionFuture::refused(P::rate_limited(limiter, retry));
            }
        };
        let Ok(permit) = self.layer.in_flight.clone().try_acquire_owned() else {
            return AdmissionFuture::refused(P::overloaded(self.layer.limit));
        };
        let shares = &self.layer.shares;
        let Ok(share) = shares.of(caller.as_deref()).clone().try_acquire_owned() else {
            return AdmissionFuture::refused(P::key_busy(shares.limit));
        };
        let held: Held = Arc::default();
        let announced = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let reserved_kib = memory::announced_kib(announced, P::COST);
        if let Err(busy) = self.layer.memory.reserve(reserved_kib, &held) {
            return AdmissionFuture::refused(P::memory_busy(busy));
        }
        let memory = self.layer.memory.clone();
        let metered_held = held.clone();
        let timeout = self.layer.body_read_timeout;
        let req = req.map(|body| {
            P::metered(Metered::new(
                body,
                memory,
                metered_held,
                P::COST,
                reserved_kib,
                timeout,
                P::READ_ERRORS,
            ))
        });
        AdmissionFuture::Admitted {
            inner: self.inner.call(req),
            permits: Some((permit, share, held)),
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
            // The listener's place, the key's share and the body's memory, given back together
            // when the answer's head is ready.
            permits: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit, Held)>,
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
            permits: None,
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
                permits,
                quota,
            } => {
                let Ok(mut res) = std::task::ready!(inner.poll(cx));
                drop(permits.take());
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
