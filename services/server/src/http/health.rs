//! Probes: `GET /healthz` (liveness: the process serves; constant and cheap) and `GET /readyz`
//! (readiness: a rule set is loaded; says which, where from, how old, and whether Redis is
//! reachable, so an operator can see a stale replica at a glance).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol_engine::RuleSetRef;
use serde::Serialize;

use crate::catalog::Origin;
use crate::context::Context;

/// Liveness.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    responses((status = 200, description = "The process serves", content_type = "application/json", body = Object, example = json!({"status": "ok"})))
)]
pub async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

/// What `/readyz` reports.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, or `stale` when the rule sets are older than the configured maximum staleness.
    pub status: String,
    /// Where the rule sets came from: `bundled`, `directory` or `redis`.
    #[schema(value_type = String)]
    pub origin: Origin,
    /// Every rule set served: id, version, digest (and base, for clinic overlays).
    pub rulesets: Vec<RuleSetRef>,
    /// `not_configured`, `up` or `down`.
    pub redis: String,
    /// Seconds since the rule sets were last confirmed current.
    pub ruleset_age_seconds: i64,
}

/// Readiness, with the rule sets served.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    responses(
        (status = 200, description = "Ready to answer", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness),
    )
)]
pub async fn readyz(State(ctx): State<Context>) -> Response {
    let catalog = ctx.catalog();
    let health = &ctx.state.health;
    let redis = if !health.redis_configured.load(Ordering::Relaxed) {
        "not_configured"
    } else if health.redis_up.load(Ordering::Relaxed) {
        "up"
    } else {
        "down"
    };
    let age = health.age_secs();
    let stale = health.redis_configured.load(Ordering::Relaxed)
        && u64::try_from(age).unwrap_or(0) > ctx.max_staleness_secs;
    let body = Readiness {
        status: if stale { "stale" } else { "ready" }.to_owned(),
        origin: catalog.origin,
        rulesets: catalog.refs(),
        redis: redis.to_owned(),
        ruleset_age_seconds: age,
    };
    let status = if catalog.rulesets.is_empty() || ctx.is_shutting_down() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}
