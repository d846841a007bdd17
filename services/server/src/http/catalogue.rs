//! `GET /v1/catalogue`: every id a request may name besides treatments and facts (zones, the
//! procedures of `history[].procedure`, indications, roles, devices), with display names and the
//! depths devices and roles bring, from the caller's rule set.
//!
//! The answer is a pure function of the rule set served, so it carries a strong `ETag`
//! ([`crate::app::catalogue_etag`]) and `If-None-Match` revalidates it with `304`, like the rest
//! of the catalogue ([`super::validators::conditional`]).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use protocol_engine::Catalogue;

use super::caller::{Authorized, EligibilityScope};
use super::problem::Problem;
use super::validators::conditional;
use crate::app::{App, CatalogueQuestion, catalogue_etag};

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
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No rule set may answer this clinic (`ruleset-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_catalogue(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let catalogue = app.ask(&caller, &CatalogueQuestion)?;
    let tag = catalogue_etag(&catalogue.ruleset, "catalogue");
    Ok(conditional(&headers, &tag, Json(catalogue)))
}
