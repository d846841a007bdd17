//! The decision log over REST: one decision of the caller's clinic by id, and its replay (the
//! `audit` scope).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};

use super::caller::{AuditScope, Authorized};
use super::extract::OptionalJsonBody;
use super::problem::Problem;
use crate::app::{App, ReplayAgainst, ReplayedDecision};
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

/// Replay a logged decision: decide its request again and compare the answers.
///
/// By default the request is decided by the very rule-set version that answered (pinned by
/// version and digest); send `ruleset_version` (or `ruleset_digest`) to decide it with another
/// published version of the caller's rule set instead (a version other than the one served now
/// needs Redis). The answer holds both answers with their rule sets, `changed`, and `changes`:
/// one entry per difference (`path`, `change`: `added` / `removed` / `changed`, `before`,
/// `after`). Facts the log masked cannot be replayed: they are treated as unanswered and listed
/// in `masked_facts`. A replay is not logged as a decision. Needs the `audit` scope; another
/// clinic's decision is `404`.
#[utoipa::path(
    post,
    path = "/v1/decisions/{decision_id}:replay",
    tag = "audit",
    params(
        ("decision_id" = String, Path, description = "The `decision_id` of an answer", example = "01937c4e-8a5b-7c3d-9e2f-0a1b2c3d4e5f"),
    ),
    request_body(content = Option<ReplayAgainst>, description = "Optional: the version to decide with (default: the version that answered)"),
    responses(
        (status = 200, description = "Both answers and what changed", body = ReplayedDecision),
        (status = 400, description = "Not a decision id (`decision_id` named), a bad body, or a version that refuses the logged request (`ruleset_version` named)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `audit` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such decision in this clinic's log, or no such version of its rule set", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The decision log is off (`decision-log-off`) or its PostgreSQL unreachable (`decision-log-unavailable`), or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn replay_decision(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AuditScope>,
    id: Result<Path<String>, PathRejection>,
    OptionalJsonBody(against): OptionalJsonBody<ReplayAgainst>,
) -> Result<Json<ReplayedDecision>, Problem> {
    let Path(id) = id.map_err(|e| Problem::field("decision_id", e.body_text()))?;
    // The router cannot match a suffix inside a segment: `{decision_id}:replay` arrives whole.
    let Some(id) = id.strip_suffix(":replay") else {
        return Err(Problem::not_found(format!(
            "POST /v1/decisions/{{decision_id}} does not exist: replay a decision with \
             POST /v1/decisions/{}:replay",
            id.chars().take(64).collect::<String>()
        )));
    };
    Ok(Json(app.replay_decision(&caller, id, &against).await?))
}
