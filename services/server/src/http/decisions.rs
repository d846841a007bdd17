//! The decision log over REST: one decision of the caller's clinic by id (the `audit` scope).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};

use super::caller::{AuditScope, Authorized};
use super::problem::Problem;
use crate::app::App;
use crate::decision_log::LoggedDecision;

/// One logged decision of the caller's clinic.
///
/// Found by the `decision_id` its answer carried: who asked, the rule set that answered (id,
/// version, digest), the request with every fact value masked, and the answer. Needs the `audit`
/// scope and a server keeping a decision log; another clinic's decision is `404`.
#[utoipa::path(
    get,
    path = "/v1/decisions/{decision_id}",
    tag = "audit",
    params(
        ("decision_id" = String, Path, description = "The `decision_id` of an answer", example = "01937c4e-8a5b-7c3d-9e2f-0a1b2c3d4e5f"),
    ),
    responses(
        (status = 200, description = "The logged decision", body = LoggedDecision),
        (status = 400, description = "Not a decision id (`decision_id` named)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `audit` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such decision in this clinic's log", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The decision log is off (`decision-log-off`) or its PostgreSQL unreachable (`decision-log-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_decision(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AuditScope>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<LoggedDecision>, Problem> {
    let Path(id) = id.map_err(|e| Problem::field("decision_id", e.body_text()))?;
    Ok(Json(app.decision(&caller, &id).await?))
}
