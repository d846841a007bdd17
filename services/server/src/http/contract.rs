//! `GET /openapi.json`: the REST contract, with `facts` typed by the rule set that answers the
//! caller (the door picks it: [`crate::app::App::with_ruleset_of`]; the documents are built once per rule-set version, [`crate::openapi::Cache`]). No key is needed; with one, the
//! types are those of the key's clinic.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::problem::Problem;
use super::validators::conditional;

/// The OpenAPI 3.1 document of this API.
///
/// The document this server answers by, with `components.schemas.Facts` generated from the rule
/// set the caller's clinic is answered from (without a key: the base rule set): each fact's type,
/// range or values, whether `null` is allowed and what it means, and its question.
/// `info.x-ruleset` names that rule set. Generate clients from it per clinic; revalidate with
/// `If-None-Match`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "probes",
    params(("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: `304` while it still holds")),
    responses(
        (status = 200, description = "The document", content_type = "application/json", body = Object,
            headers(
                ("ETag" = String, description = "Strong validator of the document"),
                ("Cache-Control" = String, description = "`private, no-cache`: revalidate with `If-None-Match`"),
            )),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 401, description = "An unknown API key, or more than one `Authorization` header", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No rule set may answer this clinic (`ruleset-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("api_key" = []))
)]
pub async fn openapi_json(
    State(state): State<super::HttpState>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let credential = crate::edge::credential(&headers).map_err(crate::app::AppError::from)?;
    let served = state
        .app
        .with_ruleset_of(credential, |rs| state.contracts.get(rs))?;
    let body = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        served.json.clone(),
    );
    Ok(conditional(&headers, &served.etag, body))
}
