//! `GET /v1/depth-limits` (for devices: cacheable, with a strong `ETag` and `304 Not Modified`)
//! and `POST /v1/depth-limits` (the same with client facts, so precaution caps apply).
//!
//! The ETag ([`crate::app::depth_etag`]) is a hash of the rule set's digest (for a clinic overlay, also its base's) and the
//! normalised query: the limits are a pure function of them, so a device that polls with `If-None-Match` gets `304` until the rule set
//! changes — and a different clinic (a different rule set) never shares an ETag.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use protocol_engine::{DepthLimits, DepthLimitsRequest};
use serde::{Deserialize, Serialize};

use super::caller::{Authorized, DevicesScope};
use super::extract::{JsonBody, StrictQuery};
use super::problem::Problem;
use super::validators::conditional;
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
    /// Replay: the limits of this published version of the caller's rule set (an earlier
    /// answer's `ruleset.version`); unknown to the clinic: 404.
    pub ruleset_version: Option<String>,
    /// Replay by digest (an earlier answer's `ruleset.digest`).
    pub ruleset_digest: Option<String>,
    /// Also list every cap of each zone with its depth (`bounds`), not only those that bind.
    pub explain: Option<bool>,
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
            questionnaire_response: None,
            date: None,
            history: None,
            ruleset_version: q.ruleset_version,
            ruleset_digest: q.ruleset_digest,
            explain: q.explain.unwrap_or(false),
        }
    }
}

/// Depth limits per zone for a treatment, device and operator role.
///
/// For device firmware: each zone's limit is the smallest cap that applies (zone, indication,
/// device label and evaluation, role, setting), and `bound_by` names every cap equal to it. The
/// answer carries a strong `ETag`; poll with `If-None-Match` and get `304` until the rule set
/// changes. A zone with no cap is not listed.
#[utoipa::path(
    get,
    path = "/v1/depth-limits",
    tag = "devices",
    params(
        DepthLimitsQuery,
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of the limits the device holds: `304` while they still hold"),
    ),
    responses(
        (status = 200, description = "The limit per zone and what bounds it", body = DepthLimits,
            headers(
                ("ETag" = String, description = "Strong validator: rule-set digest and query"),
                ("Cache-Control" = String, description = "`private, no-cache`: revalidate with `If-None-Match`"),
            )),
        (status = 304, description = "Unchanged since the ETag sent in `If-None-Match`"),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `devices` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`ruleset_version` or `ruleset_digest` names no version of the caller's rule set", body = Problem, content_type = "application/problem+json"),
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
    let limits = app.ask(&caller, &req).await?;
    let tag = depth_etag(&limits.ruleset, &req);
    Ok(conditional(&headers, &tag, Json(limits)))
}

/// Depth limits with client facts.
///
/// The same limits as `GET`, with the client's answers: precaution caps that fire for this client
/// apply, and so do the caps of precautions left undecided by an unanswered fact
/// (conservatively, named in `bound_by`). `client` carries the client's contraindication outcome
/// for the treatment, so a device never shows a depth for a client who must not be treated.
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
        (status = 404, description = "`ruleset_version` or `ruleset_digest` names no version of the caller's rule set (replay)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Both `facts` and `questionnaire_response` were sent (`answers-sent-twice`, naming both)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn depth_limits_post(
    State(app): State<App>,
    Authorized(caller, _): Authorized<DevicesScope>,
    JsonBody(req): JsonBody<DepthLimitsRequest>,
) -> Result<Json<DepthLimits>, Problem> {
    Ok(Json(app.ask(&caller, &req).await?))
}
