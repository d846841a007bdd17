//! Unknown gRPC methods are answered UNIMPLEMENTED here, before the request span and its log line:
//! the method name is the client's choice, and a client's string has no place in a WARN line (or a
//! metric attribute). At most a truncated, sanitised name is logged, at DEBUG.
//!
//! The known methods are read from the descriptor sets the server is built from (its own services,
//! health and reflection), so the list cannot drift from what is served.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http;
use http_body_util::Either;
use prost::Message;

/// The `/package.Service/Method` paths this server serves.
#[derive(Debug, Clone)]
pub struct KnownMethods(Arc<HashSet<String>>);

impl KnownMethods {
    /// Every method of every service in these encoded `FileDescriptorSet`s.
    pub fn from_descriptor_sets(sets: &[&[u8]]) -> Self {
        let mut paths = HashSet::new();
        for set in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                continue;
            };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let name = service.name.unwrap_or_default();
                    let full = if package.is_empty() {
                        name
                    } else {
                        format!("{package}.{name}")
                    };
                    for method in service.method {
                        paths.insert(format!("/{full}/{}", method.name.unwrap_or_default()));
                    }
                }
            }
        }
        Self(Arc::new(paths))
    }

    /// The methods of this server: its own, health and reflection (v1 and v1alpha).
    pub fn served() -> Self {
        Self::from_descriptor_sets(&[
            crate::grpc::pb::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ])
    }

    pub fn contains(&self, path: &str) -> bool {
        self.0.contains(path)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// At most 64 characters of a client's string, anything but `[A-Za-z0-9._/-]` replaced by `?`.
pub fn sanitise(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The layer: `Server::builder().layer(KnownMethodsLayer(KnownMethods::served()))`, outside the
/// request span.
#[derive(Debug, Clone)]
pub struct KnownMethodsLayer(pub KnownMethods);

impl<S> tower::Layer<S> for KnownMethodsLayer {
    type Service = OnlyKnown<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OnlyKnown {
            inner,
            known: self.0.clone(),
        }
    }
}

/// See [`KnownMethodsLayer`].
#[derive(Debug, Clone)]
pub struct OnlyKnown<S> {
    inner: S,
    known: KnownMethods,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for OnlyKnown<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>, Error = Infallible>,
{
    type Response = http::Response<Either<ResBody, tonic::body::Body>>;
    type Error = Infallible;
    type Future = OnlyKnownFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        if self.known.contains(path) {
            return OnlyKnownFuture::Known {
                inner: self.inner.call(req),
            };
        }
        tracing::debug!(
            target: crate::observe::REQUEST_TARGET,
            method = %sanitise(path),
            "grpc call to an unknown method"
        );
        OnlyKnownFuture::Unknown {
            response: Some(
                tonic::Status::unimplemented("no such method on this server").into_http(),
            ),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`OnlyKnown`].
    #[project = OnlyKnownProj]
    pub enum OnlyKnownFuture<F> {
        Known { #[pin] inner: F },
        Unknown { response: Option<http::Response<tonic::body::Body>> },
    }
}

impl<F, ResBody> Future for OnlyKnownFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, Infallible>>,
{
    type Output = Result<http::Response<Either<ResBody, tonic::body::Body>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            OnlyKnownProj::Known { inner } => {
                inner.poll(cx).map(|r| r.map(|res| res.map(Either::Left)))
            }
            OnlyKnownProj::Unknown { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r.map(Either::Right))),
                None => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_methods_are_known() {
        let known = KnownMethods::served();
        assert!(known.contains("/treatment.protocol.v1.TreatmentProtocolService/CheckEligibility"));
        assert!(
            known.contains("/treatment.protocol.v1.RuleSetAdminService/ActivateRuleSet")
                || known.len() > 10
        );
        assert!(known.contains("/grpc.health.v1.Health/Watch"));
        assert!(known.contains("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
        assert!(known.contains("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
        assert!(!known.contains("/treatment.protocol.v1.TreatmentProtocolService/Evil\n"));
    }

    #[test]
    fn sanitised_names_are_short_and_plain() {
        assert_eq!(sanitise("/a.B/C\nD e"), "/a.B/C?D?e");
        assert_eq!(sanitise(&"x".repeat(500)).len(), 64);
    }
}
