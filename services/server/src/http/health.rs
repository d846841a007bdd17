//! Probes: `GET /healthz` (liveness: the process serves; constant and cheap) and `GET /readyz`
//! (readiness: a rule set is loaded; says which, where from, how old, and whether Redis is
//! reachable, so an operator can see a stale replica at a glance). See [`readyz`] for the status
//! codes.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
pub use crate::app::readiness::Readiness;

/// Liveness.
///
/// `200 {"status": "ok"}` while the process serves; constant and cheap, never shed, no key.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    security(()),
    responses((status = 200, description = "The process serves", content_type = "application/json", body = Object, example = json!({"status": "ok"})))
)]
pub async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

/// Readiness, with the rule sets served.
///
/// `200` while the replica answers requests: also when `degraded` (Redis down, the last good
/// rule sets served) or `stale` under the default `serve` policy, so a Redis outage never takes
/// every replica out of the load balancer; also when one clinic's rule set was refused (`refused`:
/// that clinic is answered 503, the others as usual). `503` when no rule set is loaded (Redis
/// configured and nothing verified from it yet, or its base refused), during shutdown,
/// and when the `fail_closed` policy refuses decisions.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "Ready to answer (`ready`, `degraded` or `stale` with policy `serve`)", body = Readiness),
        (status = 503, description = "Not ready: no rule set (nothing verified from Redis yet, or its base refused), shutting down, or stale with policy `fail_closed`", body = Readiness),
    )
)]
pub async fn readyz(State(app): State<App>, headers: HeaderMap) -> Response {
    let (ready, body) = app.readiness(crate::edge::credential(&headers));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
