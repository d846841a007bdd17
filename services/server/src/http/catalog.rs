//! `GET /v1/treatments`, `GET /v1/treatments/{code}` and `GET /v1/facts`: what the caller's rule
//! set offers, so booking screens and intake forms can be built from it instead of hard-coded.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use protocol_engine::{FactList, TreatmentInfo, TreatmentList};

use super::caller::{Authorized, EligibilityScope};
use super::problem::Problem;
use crate::app::{App, FactsQuestion, TreatmentQuestion, TreatmentsQuestion};

/// Every treatment of the caller's rule set.
#[utoipa::path(
    get,
    path = "/v1/treatments",
    tag = "catalogue",
    responses(
        (status = 200, description = "The treatments", body = TreatmentList),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_treatments(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
) -> Result<Json<TreatmentList>, Problem> {
    Ok(Json(app.ask(&caller, &TreatmentsQuestion)?))
}

/// One treatment by code.
#[utoipa::path(
    get,
    path = "/v1/treatments/{code}",
    tag = "catalogue",
    params(("code" = String, Path, description = "A treatment code such as `microneedling`")),
    responses(
        (status = 200, description = "The treatment", body = TreatmentInfo),
        (status = 404, description = "No such treatment", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_treatment(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    code: Result<Path<String>, PathRejection>,
) -> Result<Json<TreatmentInfo>, Problem> {
    let Path(code) = code.map_err(|e| Problem::field("code", e.body_text()))?;
    Ok(Json(app.ask(&caller, &TreatmentQuestion(code))?))
}

/// The declared facts: what an intake form must ask.
#[utoipa::path(
    get,
    path = "/v1/facts",
    tag = "catalogue",
    responses(
        (status = 200, description = "The facts: id, type, allowed values, question", body = FactList),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_facts(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
) -> Result<Json<FactList>, Problem> {
    Ok(Json(app.ask(&caller, &FactsQuestion)?))
}
