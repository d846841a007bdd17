//! `POST /v1/eligibility`, `POST /v1/eligibility:batch` and `POST /v1/contraindications:check`:
//! the questions booking systems and intake forms ask. Every eligibility answer gets a
//! `decision_id` (UUID v7) here, since the engine is pure and has no notion of identity or time.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use protocol_engine::{
    ContraindicationReport, ContraindicationRequest, Eligibility, EligibilityRequest,
    RuleExplanation,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::caller::{Authorized, EligibilityScope};
use super::extract::{JsonBody, JsonBytes, parse_each, parse_object};
use super::problem::Problem;
use crate::app::{App, Batch, Calendar, Decided, SlotResult};

/// An eligibility answer with its decision id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EligibilityResponse {
    #[serde(flatten)]
    pub eligibility: Eligibility,
    /// Unique id of this decision (UUID v7, time-ordered), for audit trails.
    #[schema(format = "uuid")]
    pub decision_id: String,
    /// With `explain: true`: every rule of the treatment, whether it fired (`true`), did not
    /// (`false`) or could not be decided (`unknown`), with its condition tree and the values
    /// each node read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<RuleExplanation>>,
}

impl From<Decided<Eligibility>> for EligibilityResponse {
    fn from(d: Decided<Eligibility>) -> Self {
        Self {
            eligibility: d.answer,
            decision_id: d.decision_id,
            explanation: d.explanation,
        }
    }
}

/// Up to 100 checks at once (a booking calendar).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EligibilityBatchRequest {
    /// At most 100 checks. Each is read on its own: every check at fault is named
    /// (`checks[i].<field>`), not only the first.
    #[schema(value_type = Vec<EligibilityRequest>)]
    pub checks: Vec<Box<RawValue>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EligibilityBatchResponse {
    /// One answer per check, in request order.
    pub results: Vec<EligibilityResponse>,
}

/// May this client have this treatment on this date?
///
/// The booking question. `facts` are the intake answers, typed in this document from the rule
/// set of the key's clinic; a fact left out is unknown, never "no", and a rule that needs it makes
/// the answer `incomplete` with the fact in `missing_facts`. `history` is required (`[]` for no
/// past procedures). Only `eligible` and `eligible_with_precautions` are `bookable`; `deferred`
/// gives `earliest_date` when it is certain. Every answer has a `decision_id` and names the rule
/// set (id, version, digest) that decided.
#[utoipa::path(
    post,
    path = "/v1/eligibility",
    tag = "eligibility",
    request_body = EligibilityRequest,
    responses(
        (status = 200, description = "The decision, its reasons and missing facts", body = EligibilityResponse),
        (status = 400, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`ruleset_version` or `ruleset_digest` names no version of the caller's rule set (replay)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Both `facts` and `questionnaire_response` were sent (`answers-sent-twice`, naming both)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stale policy `fail-closed` and the rule sets older than the maximum staleness (`stale-ruleset`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
///
/// The body is read straight into the slots of the caller's rule set and the answer written
/// from its pre-serialised texts ([`App::eligibility_json`]); a body that path does not take
/// (a fault to name, `explain`, a pinned version) is parsed and answered by the general path.
pub async fn check_eligibility(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    JsonBytes(body): JsonBytes,
) -> Result<Response, Problem> {
    if let Some(answer) = app.eligibility_json(&caller, &body) {
        return Ok(json_response(answer?));
    }
    let req: EligibilityRequest = parse_object(&body)?;
    let answer: EligibilityResponse = app.ask(&caller, &req).await?.into();
    Ok(Json(answer).into_response())
}

/// A JSON answer already written.
fn json_response(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Many eligibility checks at once; all answered or, if any is invalid, none.
///
/// A booking calendar: up to 100 checks, each shaped as `POST /v1/eligibility`, answered in
/// order. Every check is read on its own and every fault of every check is reported, by path
/// (`checks[3].date`, `checks[7].facts.pregnant`); one bad check refuses the call (400).
#[utoipa::path(
    post,
    path = "/v1/eligibility:batch",
    tag = "eligibility",
    request_body = EligibilityBatchRequest,
    responses(
        (status = 200, description = "One answer per check, in order", body = EligibilityBatchResponse),
        (status = 400, description = "A check is invalid (fields `checks[i].…`), or more than 100 checks (field `checks`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`ruleset_version` or `ruleset_digest` names no version of the caller's rule set (replay)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Both `facts` and `questionnaire_response` were sent (`answers-sent-twice`, naming both)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stale policy `fail-closed` and the rule sets older than the maximum staleness (`stale-ruleset`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn check_eligibility_batch(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    JsonBody(req): JsonBody<EligibilityBatchRequest>,
) -> Result<Json<EligibilityBatchResponse>, Problem> {
    Batch::check_size(req.checks.len())?;
    let checks = parse_each::<EligibilityRequest>("checks", &req.checks)?;
    let results = app.ask(&caller, &Batch(checks)).await?;
    Ok(Json(EligibilityBatchResponse {
        results: results.into_iter().map(EligibilityResponse::from).collect(),
    }))
}

/// The answer for one slot of a calendar: `eligibility`, or a `problem` (status 400) naming the
/// slot's fields at fault.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalendarSlotResult {
    /// The slot's eligibility, as `POST /v1/eligibility` answers it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligibility: Option<EligibilityResponse>,
    /// Why the slot could not be checked (`errors` name `slots[i].…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalendarResponse {
    /// One result per slot, in request order.
    pub results: Vec<CalendarSlotResult>,
}

/// One client's booking calendar: facts and history once, each slot answered on its own.
///
/// Up to 100 slots (`treatment`, `date`, and per slot `zones`, `device`, `role`, `indication`),
/// answered in order. A slot that cannot be checked (an unknown treatment, a date that does not
/// exist) gets a `problem` naming its fields (`slots[3].date`); every other slot is answered. A
/// fault in what every slot shares (`facts`, `history`) or more than 100 slots is a 400 for the
/// whole request.
#[utoipa::path(
    post,
    path = "/v1/eligibility:calendar",
    tag = "eligibility",
    request_body = Calendar,
    responses(
        (status = 200, description = "One result per slot, in order: an eligibility or a problem", body = CalendarResponse),
        (status = 400, description = "The facts or history are invalid, or more than 100 slots (field `slots`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`ruleset_version` or `ruleset_digest` names no version of the caller's rule set (replay)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stale policy `fail-closed` and the rule sets older than the maximum staleness (`stale-ruleset`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Both `facts` and `questionnaire_response` were sent (`answers-sent-twice`, naming both)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn check_eligibility_calendar(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    JsonBody(req): JsonBody<Calendar>,
) -> Result<Json<CalendarResponse>, Problem> {
    let results = app.ask(&caller, &req).await?;
    Ok(Json(CalendarResponse {
        results: results
            .into_iter()
            .map(|r| match r {
                SlotResult::Answered(d) => CalendarSlotResult {
                    eligibility: Some(d.into()),
                    problem: None,
                },
                SlotResult::Refused(violations) => CalendarSlotResult {
                    eligibility: None,
                    problem: Some(Problem::from(SlotResult::refusal(violations))),
                },
            })
            .collect(),
    }))
}

/// Which treatments are contraindicated for this client, and what must still be asked?
///
/// The intake-form question: no date is needed. Without `date` and `history`, the rules that need
/// them (age, waiting periods, procedure gaps) stay undecided, so nothing they could refuse is
/// cleared: the treatments they apply to are `incomplete` and `missing_inputs` names what to
/// send. `missing_facts` lists every question still to ask, over all the treatments checked.
#[utoipa::path(
    post,
    path = "/v1/contraindications:check",
    tag = "eligibility",
    request_body = ContraindicationRequest,
    responses(
        (status = 200, description = "The outcome per treatment and the questions still to ask", body = ContraindicationReport),
        (status = 400, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`ruleset_version` or `ruleset_digest` names no version of the caller's rule set (replay)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Both `facts` and `questionnaire_response` were sent (`answers-sent-twice`, naming both)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stale policy `fail-closed` and the rule sets older than the maximum staleness (`stale-ruleset`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn check_contraindications(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    JsonBody(req): JsonBody<ContraindicationRequest>,
) -> Result<Json<ContraindicationReport>, Problem> {
    Ok(Json(app.ask(&caller, &req).await?))
}
