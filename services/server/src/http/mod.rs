//! The REST adapter (axum): `/v1/...` as docs/design.md §7 names it, probes and the OpenAPI document.
//!
//! Every `/v1` handler takes an [`caller::Authorized`] extractor naming the scope it needs; it runs
//! before any body is read (so an unauthenticated caller learns nothing about the request).
//! Handlers are one file per resource and do three things only: parse, ask the engine, render.

pub mod caller;
pub mod catalog;
pub mod contract;
pub mod decisions;
pub mod depth;
pub mod eligibility;
pub mod extract;
pub mod fhir;
pub mod fhir_outcome;
pub mod health;
pub mod notices;
pub mod plans;
pub mod problem;
pub mod rulesets;
mod timeout;
mod validators;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::app::App;
use axum::extract::{DefaultBodyLimit, FromRef, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::context::{Context, MAX_BODY_BYTES};
use crate::edge::admission::{AdmissionLayer, Rest};
use crate::edge::{CompressWhenAskedLayer, DecodeRequestsLayer, REQUEST_ID, RequestIdLayer};
use problem::Problem;

use catalog::{get_treatment, list_facts, list_treatments};
use contract::openapi_json;
use depth::{depth_limits_get, depth_limits_post};
use eligibility::{
    check_contraindications, check_eligibility, check_eligibility_batch, check_eligibility_calendar,
};
use health::{healthz, readyz};
use plans::build_plan;
use rulesets::{
    activate_ruleset, get_ruleset_version, list_ruleset_versions, list_rulesets, publish_ruleset,
    retire_ruleset_version, rollback_ruleset, ruleset_history,
};

/// What the REST layer stack needs from the settings.
#[derive(Clone)]
pub struct Edges {
    /// `PROTOCOL_REQUEST_TIMEOUT_SECS`.
    pub request_timeout: Duration,
    /// Duplicate credentials, per-key rate limit, load shedding (`crate::edge::admission`).
    pub admission: AdmissionLayer<Rest>,
    /// `PROTOCOL_CORS_ORIGINS`; empty: no CORS layer at all.
    pub cors_origins: Vec<HeaderValue>,
}

/// CORS for the configured origins: the API's methods and headers, `ETag` (and the rate-limit and
/// request-id headers) readable by the page.
fn cors(origins: Vec<HeaderValue>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("last-event-id"),
            REQUEST_ID,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            REQUEST_ID,
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
        ])
        .max_age(Duration::from_secs(600))
}

/// The whole REST API with its per-route layers, outermost first: CORS (when origins are
/// configured) → request span, log line and metrics ([`crate::observe::http_request`]) →
/// admission (duplicate credentials, per-key rate limit, load shedding; probes exempt) → request
/// timeout → body limit → the routes. [`serve`] puts the rest of the stack around it.
/// What REST handlers reach: the door, and what only this protocol keeps (the OpenAPI documents
/// per rule set, the CDS Hooks door's index and FHIR client). One reference count to clone: axum
/// clones the state for every request, and each shared counter bumped per request costs CPU on
/// these cores (`scripts/load`).
#[derive(Clone)]
pub struct HttpState(Arc<Adapters>);

/// What [`HttpState`] holds.
pub struct Adapters {
    pub app: App,
    pub contracts: crate::openapi::Cache,
    pub cds: crate::cds::CdsState,
}

impl std::ops::Deref for HttpState {
    type Target = Adapters;

    fn deref(&self) -> &Adapters {
        &self.0
    }
}

impl FromRef<HttpState> for App {
    fn from_ref(s: &HttpState) -> App {
        s.app.clone()
    }
}

impl FromRef<HttpState> for Context {
    fn from_ref(s: &HttpState) -> Context {
        s.app.context().clone()
    }
}

pub fn router(app: App, cds: crate::cds::CdsState, edges: Edges) -> Router {
    let api = Router::new()
        .route("/v1/eligibility", post(check_eligibility))
        .route("/v1/eligibility:batch", post(check_eligibility_batch))
        .route("/v1/eligibility:calendar", post(check_eligibility_calendar))
        .route("/v1/contraindications:check", post(check_contraindications))
        .route(
            "/v1/depth-limits",
            get(depth_limits_get).post(depth_limits_post),
        )
        .route("/v1/plans", post(build_plan))
        .route("/v1/treatments", get(list_treatments))
        .route("/v1/treatments/{code}", get(get_treatment))
        // `POST /v1/decisions/{decision_id}:replay`: the router sees `{decision_id}` whole.
        .route(
            "/v1/decisions/{decision_id}",
            get(decisions::get_decision).post(decisions::replay_decision),
        )
        .route("/v1/facts", get(list_facts))
        .route("/v1/catalogue", get(catalog::get_catalogue))
        .route("/v1/rulesets:watch", get(notices::watch_rulesets))
        .route(
            "/v1/rulesets",
            get(list_rulesets)
                .post(publish_ruleset)
                .layer(DefaultBodyLimit::max(rulesets::MAX_RULESET_BYTES)),
        )
        .route("/v1/rulesets/{id}/versions", get(list_ruleset_versions))
        .route(
            "/v1/rulesets/{id}/versions/{version}",
            get(get_ruleset_version).delete(retire_ruleset_version),
        )
        .route("/v1/rulesets/{id}/history", get(ruleset_history))
        .route("/v1/rulesets/{id}/activate", post(activate_ruleset))
        .route("/v1/rulesets/{id}/rollback", post(rollback_ruleset))
        .nest("/fhir", fhir_routes())
        .merge(crate::cds::routes());
    let open = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json));

    let router = Router::new()
        .merge(api)
        .merge(open)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(timeout::RequestTimeoutLayer::new(edges.request_timeout))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(HttpState(Arc::new(Adapters {
            app,
            contracts: crate::openapi::Cache::default(),
            cds,
        })));
    // One `Router::layer` call for what needs the matched route: each call boxes every route once
    // more (the rest of the stack wraps the router whole, in `serve`).
    let router = router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(crate::observe::http_request))
            .layer(edges.admission),
    );
    if edges.cors_origins.is_empty() {
        router
    } else {
        router.layer(cors(edges.cors_origins))
    }
}

/// Serves [`router`] on `listener` with the rest of the stack around it, outermost first: request
/// id (a client's plain `x-request-id` kept, else a UUID v7; echoed on the answer and named by
/// problem+json `instance`) → response compression (gzip, br, zstd by `Accept-Encoding`) →
/// request decompression (gzip, for requests with a `Content-Encoding`) → the router. Connection
/// limits are the listener's ([`crate::edge::conn::serve_rest`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: crate::edge::conn::ConnLimits,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let service = ServiceBuilder::new()
        .layer(RequestIdLayer)
        .layer(CompressWhenAskedLayer)
        .layer(DecodeRequestsLayer)
        .service(router);
    crate::edge::conn::serve_rest(listener, service, limits, shutdown).await
}

/// The FHIR base (`/fhir`): its reads, and every error under it (an unknown path or method
/// included) answered as an OperationOutcome ([`fhir_outcome`]), as FHIR clients expect.
fn fhir_routes() -> Router<HttpState> {
    Router::new()
        .route("/metadata", get(fhir::get_metadata))
        .route("/Questionnaire", get(fhir::search_questionnaires))
        .route("/Questionnaire/{ruleset}", get(fhir::get_questionnaire))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(
            fhir_outcome::as_operation_outcome,
        ))
}

async fn not_found(req: Request) -> Problem {
    Problem::not_found(format!("no resource at {}", req.uri().path()))
}

async fn method_not_allowed() -> Problem {
    Problem::method_not_allowed()
}
