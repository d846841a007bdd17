//! `GET /v1/depth-limits` (for devices: cacheable, with a strong `ETag` and `304 Not Modified`)
//! and `POST /v1/depth-limits` (the same with client facts, so precaution caps apply).
//!
//! The ETag is a hash of the rule set's digest (for a clinic overlay, also its base's) and the
//! normalised query: the limits are a pure function of them, so a device that polls with `If-None-Match` gets `304` until the rule set
//! changes — and a different clinic (a different rule set) never shares an ETag.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol_engine::{DepthLimits, DepthLimitsRequest, RuleSetRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::caller::{Authorized, DevicesScope};
use super::extract::{JsonBody, StrictQuery};
use super::problem::Problem;
use crate::context::Context;

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
    State(ctx): State<Context>,
    Authorized(caller, _): Authorized<DevicesScope>,
    headers: HeaderMap,
    StrictQuery(query): StrictQuery<DepthLimitsQuery>,
) -> Result<Response, Problem> {
    let catalog = ctx.catalog();
    let rs = Context::ruleset(&catalog, &caller)?;
    let meta = rs.meta();
    let tag = etag(
        &meta.digest,
        meta.base.as_deref().map(|b| b.digest.as_str()),
        &query,
        None,
    );
    let limits = crate::observe::depth_limits(rs, &query.into())?;
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
        (status = 413, description = "Body above 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn depth_limits_post(
    State(ctx): State<Context>,
    Authorized(caller, _): Authorized<DevicesScope>,
    JsonBody(req): JsonBody<DepthLimitsRequest>,
) -> Result<Json<DepthLimits>, Problem> {
    let catalog = ctx.catalog();
    let rs = Context::ruleset(&catalog, &caller)?;
    Ok(Json(crate::observe::depth_limits(rs, &req)?))
}

/// The strong validator of depth limits, REST `ETag` and gRPC `DepthLimits.etag` alike: it
/// changes whenever the rule set served to the caller changes (its digest, and for a clinic
/// overlay also its base's digest) or the request does.
pub fn depth_etag(meta: &RuleSetRef, req: &DepthLimitsRequest) -> String {
    let query = DepthLimitsQuery {
        treatment: req.treatment.clone(),
        device: req.device.clone(),
        role: req.role.clone(),
        zone: req.zone.clone(),
        indication: req.indication.clone(),
    };
    let facts = req
        .facts
        .as_ref()
        .map(|f| serde_json::to_vec(f).unwrap_or_default());
    etag(
        &meta.digest,
        meta.base.as_deref().map(|b| b.digest.as_str()),
        &query,
        facts.as_deref(),
    )
}

/// A strong ETag: SHA-256 over the rule-set digest (and its base's), the normalised query and
/// the client facts if any, first 128 bits.
fn etag(
    digest: &str,
    base: Option<&str>,
    query: &DepthLimitsQuery,
    facts: Option<&[u8]>,
) -> String {
    let mut h = Sha256::new();
    h.update(digest.as_bytes());
    if let Some(base) = base {
        h.update(b"\nbase:");
        h.update(base.as_bytes());
    }
    h.update(b"\n");
    h.update(serde_json::to_vec(query).unwrap_or_default());
    if let Some(facts) = facts {
        h.update(b"\nfacts:");
        h.update(facts);
    }
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
}

/// `If-None-Match` matches (weak comparison, as RFC 9110 prescribes for it; `*` matches).
fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
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
    fn etag_depends_on_digest_and_query() {
        let q = DepthLimitsQuery {
            treatment: "microneedling".into(),
            device: "dermapen_4".into(),
            role: "nurse".into(),
            zone: None,
            indication: None,
        };
        let a = etag("d1", None, &q, None);
        assert_eq!(a, etag("d1", None, &q, None));
        assert_ne!(a, etag("d2", None, &q, None));
        // A clinic overlay whose base changed: another ETag.
        assert_ne!(
            etag("d1", Some("b1"), &q, None),
            etag("d1", Some("b2"), &q, None)
        );
        assert_ne!(a, etag("d1", None, &q, Some(b"{}")));
        let mut q2 = q.clone();
        q2.zone = Some("cheeks".into());
        assert_ne!(a, etag("d1", None, &q2, None));
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{a}")).expect("header"),
        );
        assert!(if_none_match(&h, &a));
        assert!(!if_none_match(&h, &etag("d2", None, &q, None)));
    }
}
