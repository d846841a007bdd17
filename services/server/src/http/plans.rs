//! `POST /v1/plans`: a course of treatment for an indication.

use axum::Json;
use axum::extract::State;
use protocol_engine::{Plan, PlanRequest};

use super::caller::{Authorized, PlansScope};
use super::extract::JsonBody;
use super::problem::Problem;
use crate::app::App;

/// A course of treatment for an indication.
///
/// Sessions, dates, depth per zone and session, care instructions and the results timeline. A
/// plan is scheduled only when every session is bookable on its date; otherwise `status` is
/// `not_bookable`, no session is scheduled, and `first_session` (or `blocked_session`) says why.
#[utoipa::path(
    post,
    path = "/v1/plans",
    tag = "plans",
    request_body = PlanRequest,
    responses(
        (status = 200, description = "The plan (status `not_bookable` with no sessions when the first session is not bookable)", body = Plan),
        (status = 400, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `plans` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`ruleset_version` or `ruleset_digest` names no version of the caller's rule set (replay)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stale policy `fail-closed` and the rule sets older than the maximum staleness (`stale-ruleset`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Both `facts` and `questionnaire_response` were sent (`answers-sent-twice`, naming both)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn build_plan(
    State(app): State<App>,
    Authorized(caller, _): Authorized<PlansScope>,
    JsonBody(req): JsonBody<PlanRequest>,
) -> Result<Json<Plan>, Problem> {
    Ok(Json(app.ask(&caller, &req).await?))
}
