//! `GET /v1/depth-limits` (for devices: cacheable, with a strong `ETag` and `304 Not Modified`)
//! and `POST /v1/depth-limits` (the same with client facts, so precaution caps apply).
//!
//! The ETag ([`crate::app::depth_etag`]) is a hash of the rule set's digest (for a clinic overlay, also its base's) and the
//! normalised query: the limits are a pure function of them, so a device that polls with `If-None-Match` gets `304` until the rule set
//! changes — and a different clinic (a different rule set) never shares an ETag.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol_engine::{DepthLimits, DepthLimitsRequest};
use serde::{Deserialize, Serialize};

use super::caller::{Authorized, DevicesScope};
use super::extract::{JsonBody, StrictQuery};
use super::problem::Problem;
use crate::app::{App, depth_etag};

/// The query of `GET /v1/depth-limits`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DepthLimitsQuery {
    /// A needle treatment, e.g. `microneedling`.
    pub treatment: String,
    /// A device id, e.g. `dermapen_4`.
    pub device: String,
    /// Operator role: `physician`, `nurse`, `aesthetician` or `self`.
    pub role: String,
    /// One zone; every zone the treatment may reach when absent.
    pub zone: Option<String>,
    /// With an indication, the treatment's cap for it applies too.
    pub indication: Option<String>,
}

impl From<DepthLimitsQuery> for DepthLimitsRequest {
    fn from(q: DepthLimitsQuery) -> Self {
        Self {
            treatment: q.treatment,
            device: q.device,
            role: q.role,
            zone: q.zone,
            indication: q.indication,
            facts: None,
            date: None,
            history: None,
        }
    }
}

/// Depth limits per zone for a treatment, device and operator role.
#[utoipa::path(
    get,
    path = "/v1/depth-limits",
    tag = "devices",
    params(DepthLimitsQuery),
    responses(
        (status = 200, description = "The limit per zone and what bounds it", body = DepthLimits,
            headers(("ETag" = String, description = "Strong validator: rule-set digest and query"))),
        (status = 304, description = "Unchanged since the ETag sent in `If-None-Match`"),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `devices` scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn depth_limits_get(
    State(app): State<App>,
    Authorized(caller, _): Authorized<DevicesScope>,
    headers: HeaderMap,
    StrictQuery(query): StrictQuery<DepthLimitsQuery>,
) -> Result<Response, Problem> {
    let req = DepthLimitsRequest::from(query);
    let limits = app.ask(&caller, &req)?;
    let tag = depth_etag(&limits.ruleset, &req);
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
    Ok((cache, Json(limits)).into_response())
}

/// Depth limits with client facts: precaution caps that fire for this client apply, and the
/// answer carries the client's contraindication outcome.
#[utoipa::path(
    post,
    path = "/v1/depth-limits",
    tag = "devices",
    request_body = DepthLimitsRequest,
    responses(
        (status = 200, description = "The limit per zone and what bounds it", body = DepthLimits),
        (status = 400, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `devices` scope", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn depth_limits_post(
    State(app): State<App>,
    Authorized(caller, _): Authorized<DevicesScope>,
    JsonBody(req): JsonBody<DepthLimitsRequest>,
) -> Result<Json<DepthLimits>, Problem> {
    Ok(Json(app.ask(&caller, &req)?))
}

/// `If-None-Match` matches (weak comparison, as RFC 9110 prescribes for it; `*` matches).
pub(super) fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_a_list() {
        let a = "\"abc\"";
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{a}")).expect("header"),
        );
        assert!(if_none_match(&h, a));
        assert!(!if_none_match(&h, "\"def\""));
    }
}
