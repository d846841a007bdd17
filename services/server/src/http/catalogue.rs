//! `GET /v1/catalogue`: every id a request may name besides treatments and facts (zones, the
//! procedures of `history[].procedure`, indications, roles, devices), with display names and the
//! depths devices and roles bring, from the caller's rule set.
//!
//! The answer is a pure function of the rule set served, so it carries a strong `ETag` (a hash of
//! the rule set's digest and, for a clinic overlay, its base's) and `If-None-Match` revalidates it
//! with `304`; `Cache-Control: private, no-cache` and `Vary: authorization`, since another key may
//! be answered from another clinic's rule set.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol_engine::{Catalogue, RuleSetRef};
use sha2::{Digest, Sha256};

use super::caller::{Authorized, EligibilityScope};
use super::depth::if_none_match;
use super::problem::Problem;
use crate::app::{App, CatalogueQuestion};

/// The strong validator of the catalogue of a rule set (and its base).
fn catalogue_tag(meta: &RuleSetRef) -> String {
    let mut h = Sha256::new();
    h.update(b"catalogue\n");
    h.update(meta.digest.as_bytes());
    if let Some(base) = meta.base.as_deref() {
        h.update(b"\nbase:");
        h.update(base.digest.as_bytes());
    }
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
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
    params(("If-None-Match" = Option<String>, Header, description = "An ETag of an earlier answer: 304 while it still holds")),
    responses(
        (status = 200, description = "The catalogue", body = Catalogue,
            headers(("ETag" = String, description = "Strong validator: the rule set's digest (and its base's)"))),
        (status = 304, description = "Unchanged since the ETag sent in `If-None-Match`"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_catalogue(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let catalogue = app.ask(&caller, &CatalogueQuestion)?;
    let tag = catalogue_tag(&catalogue.ruleset);
    let Ok(tag_value) = HeaderValue::from_str(&tag) else {
        return Err(Problem::internal());
    };
    let cache = [
        (header::ETAG, tag_value),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ),
        (header::VARY, HeaderValue::from_static("authorization")),
    ];
    if if_none_match(&headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((cache, Json(catalogue)).into_response())
}
