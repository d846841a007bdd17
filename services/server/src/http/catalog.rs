//! `GET /v1/treatments`, `GET /v1/treatments/{code}`, `GET /v1/facts` and `GET /v1/catalogue`: what
//! the caller's rule set offers (treatments, intake questions, and every other id a request may
//! name: zones, procedures, indications, roles, devices), so booking screens and intake forms can
//! be built from it instead of hard-coded.
//! Each answer is a pure function of the rule set served, so it carries a strong `ETag`
//! ([`crate::app::catalogue_etag`]) and `If-None-Match` revalidates it with `304`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use protocol_engine::Catalogue;

use super::caller::{Authorized, CatalogueScope};
use super::problem::Problem;
use super::validators::conditional;
use crate::app::{
    App, CatalogueQuestion, FactsQuestion, TreatmentQuestion, TreatmentsQuestion, catalogue_etag,
};

/// Every treatment of the caller's rule set.
///
/// The treatments of the rule set the key's clinic is answered from (the base without a key):
/// codes, roles, devices, zones with their caps, course defaults and the rules that apply. Cache
/// it and revalidate with `If-None-Match`: the `ETag` changes exactly when that rule set does.
#[utoipa::path(
    get,
    path = "/v1/treatments",
    tag = "catalogue",
    params(("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: `304` while it still holds")),
    responses(
        (status = 200, description = "The treatments", body = protocol_engine::TreatmentList,
            headers(
                ("ETag" = String, description = "Strong validator: the rule set's digest and the resource"),
                ("Cache-Control" = String, description = "`private, no-cache`: revalidate with `If-None-Match`"),
            )),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key holds none of `eligibility`, `devices` and `plans`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No rule set may answer this clinic (`ruleset-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_treatments(
    State(app): State<App>,
    Authorized(caller, _): Authorized<CatalogueScope>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (list, meta) = app.ask_with_ruleset(&caller, &TreatmentsQuestion).await?;
    Ok(conditional(
        &headers,
        &catalogue_etag(&meta, "treatments"),
        Json(list),
    ))
}

/// One treatment by code.
///
/// A treatment of the caller's rule set, with the same fields as in the list. An unknown code is
/// `404`.
#[utoipa::path(
    get,
    path = "/v1/treatments/{code}",
    tag = "catalogue",
    params(
        ("code" = String, Path, description = "A treatment code such as `microneedling`", example = "microneedling"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: `304` while it still holds"),
    ),
    responses(
        (status = 200, description = "The treatment", body = protocol_engine::TreatmentInfo,
            headers(
                ("ETag" = String, description = "Strong validator: the rule set's digest and the resource"),
                ("Cache-Control" = String, description = "`private, no-cache`: revalidate with `If-None-Match`"),
            )),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 400, description = "The code is not a valid path segment", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key holds none of `eligibility`, `devices` and `plans`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such treatment", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No rule set may answer this clinic (`ruleset-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_treatment(
    State(app): State<App>,
    Authorized(caller, _): Authorized<CatalogueScope>,
    headers: HeaderMap,
    code: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(code) = code.map_err(|e| Problem::field("code", e.body_text()))?;
    let (info, meta) = app
        .ask_with_ruleset(&caller, &TreatmentQuestion(code))
        .await?;
    let tag = catalogue_etag(&meta, &format!("treatments/{}", info.code));
    Ok(conditional(&headers, &tag, Json(info)))
}

/// The declared facts: what an intake form must ask.
///
/// Every question of the caller's rule set: its id (the key in `facts`), type (`bool`,
/// `integer` with `min`/`max`, `enum` with `values`, `date`), the question to ask, and for a date
/// fact that accepts `null` what `null` means. The OpenAPI document served to the same key types
/// `facts` from the same list.
#[utoipa::path(
    get,
    path = "/v1/facts",
    tag = "catalogue",
    params(("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: `304` while it still holds")),
    responses(
        (status = 200, description = "The facts: id, type, allowed values, question", body = protocol_engine::FactList,
            headers(
                ("ETag" = String, description = "Strong validator: the rule set's digest and the resource"),
                ("Cache-Control" = String, description = "`private, no-cache`: revalidate with `If-None-Match`"),
            )),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key holds none of `eligibility`, `devices` and `plans`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No rule set may answer this clinic (`ruleset-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_facts(
    State(app): State<App>,
    Authorized(caller, _): Authorized<CatalogueScope>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (list, meta) = app.ask_with_ruleset(&caller, &FactsQuestion).await?;
    Ok(conditional(
        &headers,
        &catalogue_etag(&meta, "facts"),
        Json(list),
    ))
}

/// Zones, procedures, indications, roles and devices of the caller's rule set.
///
/// Everything a booking screen, an intake form or a device app offers for the request fields
/// `zones`/`zone`, `history[].procedure`, `indication`, `role` and `device`, with display names;
/// devices with their labelled and evaluated maximum depths and treatments, roles with their own
/// depth cap. Treatments are listed by `GET /v1/treatments`, intake questions (with the labels of
/// enum answers) by `GET /v1/facts`. Revalidate with `If-None-Match`: `304` until the rule set
/// served to the key changes.
#[utoipa::path(
    get,
    path = "/v1/catalogue",
    tag = "catalogue",
    params(("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: `304` while it still holds")),
    responses(
        (status = 200, description = "Zones, procedures, indications, roles and devices", body = Catalogue,
            headers(
                ("ETag" = String, description = "Strong validator: the rule set's digest and the resource"),
                ("Cache-Control" = String, description = "`private, no-cache`: revalidate with `If-None-Match`"),
            )),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key holds none of `eligibility`, `devices` and `plans`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No rule set may answer this clinic (`ruleset-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_catalogue(
    State(app): State<App>,
    Authorized(caller, _): Authorized<CatalogueScope>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let catalogue = app.ask(&caller, &CatalogueQuestion).await?;
    let tag = catalogue_etag(&catalogue.ruleset, "catalogue");
    Ok(conditional(&headers, &tag, Json(catalogue)))
}
