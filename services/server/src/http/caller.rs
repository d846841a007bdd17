//! The authenticated caller as an extractor: `Authorized<EligibilityScope>` in a handler's
//! arguments authenticates the request and checks the scope before anything else is read (the
//! body extractor comes last), so an unauthenticated caller gets 401 whatever it sent, and a key
//! without the scope 403. An extractor rather than a middleware: no boxed future per request.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::problem::Problem;
use crate::auth::{Caller, Scope};

/// A scope a handler requires, as a type.
pub trait RequiredScope {
    const SCOPE: Scope;
}

pub struct EligibilityScope;
pub struct DevicesScope;
pub struct PlansScope;
pub struct AdminScope;
pub struct AuditScope;
/// Any reading scope: `eligibility`, `devices` or `plans` ([`Scope::Catalogue`]).
pub struct CatalogueScope;

impl RequiredScope for EligibilityScope {
    const SCOPE: Scope = Scope::Eligibility;
}
impl RequiredScope for DevicesScope {
    const SCOPE: Scope = Scope::Devices;
}
impl RequiredScope for PlansScope {
    const SCOPE: Scope = Scope::Plans;
}
impl RequiredScope for AdminScope {
    const SCOPE: Scope = Scope::Admin;
}
impl RequiredScope for AuditScope {
    const SCOPE: Scope = Scope::Audit;
}
impl RequiredScope for CatalogueScope {
    const SCOPE: Scope = Scope::Catalogue;
}

/// A caller holding scope `S`.
pub struct Authorized<S>(pub Arc<Caller>, pub PhantomData<S>);

impl<S: RequiredScope + Send + Sync> FromRequestParts<super::HttpState> for Authorized<S> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &super::HttpState,
    ) -> Result<Self, Problem> {
        let app = &state.app;
        let credential = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        app.authenticate(credential, S::SCOPE)
            .map(|caller| Authorized(caller, PhantomData))
            .map_err(Problem::from)
    }
}
