//! Budgets for long-lived calls: gRPC health and reflection (which need no key) together, each
//! call holding a permit until its response ends. The watch-stream budgets are the door's
//! ([`crate::app::watch_budget`], re-exported here).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http;
use tokio::sync::Semaphore;

pub use crate::app::watch_budget::{
    WATCH_RETRY_AFTER_SECS, WatchExhausted, WatchLimits, WatchPermit,
};

// ---- health and reflection ----------------------------------------------------------------------

/// A budget shared by several gRPC services (health and reflection): each call, unary or stream,
/// holds a permit until its response body ends; past the budget RESOURCE_EXHAUSTED at once.
#[derive(Debug, Clone)]
pub struct CallBudget {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl CallBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit.max(1))),
            limit: limit.max(1),
        }
    }

    /// `service` under this budget; keeps its gRPC service name for the router.
    pub fn wrap<S>(&self, service: S) -> Budgeted<S> {
        Budgeted {
            inner: service,
            budget: self.clone(),
        }
    }
}

/// A gRPC service under a [`CallBudget`].
#[derive(Debug, Clone)]
pub struct Budgeted<S> {
    inner: S,
    budget: CallBudget,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Budgeted<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

impl<S, B> tower::Service<http::Request<B>> for Budgeted<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let Ok(permit) = self.budget.permits.clone().try_acquire_owned() else {
            let limit = self.budget.limit;
            return Box::pin(async move { Ok(super::refusal::grpc_probes_exhausted(limit)) });
        };
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| tonic::body::Body::new(super::PermitBody::new(body, permit))))
        })
    }
}
