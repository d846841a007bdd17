//! The REST adapter (axum): `/v1/...` as DESIGN §5 names it, probes and the OpenAPI document.
//!
//! Every `/v1` handler takes an [`caller::Authorized`] extractor naming the scope it needs; it runs
//! before any body is read (so an unauthenticated caller learns nothing about the request).
//! Handlers are one file per resource and do three things only: parse, ask the engine, render.

pub mod caller;
pub mod catalog;
pub mod depth;
pub mod eligibility;
pub mod extract;
pub mod health;
pub mod plans;
pub mod problem;
pub mod rulesets;
mod timeout;

use std::time::Duration;

use axum::Router;

use crate::app::App;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::context::{Context, MAX_BODY_BYTES};
use problem::Problem;

use catalog::{get_treatment, list_facts, list_treatments};
use depth::{depth_limits_get, depth_limits_post};
use eligibility::{check_contraindications, check_eligibility, check_eligibility_batch};
use health::{healthz, readyz};
use plans::build_plan;
use rulesets::{
    activate_ruleset, get_ruleset_version, list_ruleset_versions, list_rulesets, publish_ruleset,
    rollback_ruleset,
};

/// The whole REST API.
pub fn router(ctx: Context, request_timeout: Duration) -> Router {
    let api = Router::new()
        .route("/v1/eligibility", post(check_eligibility))
        .route("/v1/eligibility:batch", post(check_eligibility_batch))
        .route("/v1/contraindications:check", post(check_contraindications))
        .route(
            "/v1/depth-limits",
            get(depth_limits_get).post(depth_limits_post),
        )
        .route("/v1/plans", post(build_plan))
        .route("/v1/treatments", get(list_treatments))
        .route("/v1/treatments/{code}", get(get_treatment))
        .route("/v1/facts", get(list_facts))
        .route(
            "/v1/rulesets",
            get(list_rulesets)
                .post(publish_ruleset)
                .layer(DefaultBodyLimit::max(rulesets::MAX_RULESET_BYTES)),
        )
        .route("/v1/rulesets/{id}/versions", get(list_ruleset_versions))
        .route(
            "/v1/rulesets/{id}/versions/{version}",
            get(get_ruleset_version),
        )
        .route("/v1/rulesets/{id}/activate", post(activate_ruleset))
        .route("/v1/rulesets/{id}/rollback", post(rollback_ruleset));
    let open = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json));

    Router::new()
        .merge(api)
        .merge(open)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(timeout::RequestTimeoutLayer::new(request_timeout))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(App::new(ctx))
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
        .into_response()
}

async fn not_found(req: Request) -> Problem {
    Problem::not_found(format!("no resource at {}", req.uri().path()))
}

async fn method_not_allowed() -> Problem {
    Problem::method_not_allowed()
}
