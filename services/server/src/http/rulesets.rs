//! Rule-set admin under `/v1/rulesets` (scope `admin`): publish a version, list rule sets and
//! versions, fetch one version, activate a version (compare-and-set) and roll back.
//!
//! The operations, and the tenant rule (an `admin` key manages only its own clinic's rule set;
//! the base, other clinics and new ids need `platform`), live in the door
//! ([`crate::app::admin`]); these handlers parse and render. They are the only REST handlers that
//! reach Redis; the request path never does. Without `PROTOCOL_REDIS_URL` they answer `503`
//! (`redis-not-configured`). Every answer names id,
//! version and digest. Errors are problem+json: `422 invalid-ruleset` naming every field at fault,
//! `409 conflict` (same version with other content; activation whose `expected_current` is not
//! the active version) naming `id`, `version` and `current`, `404`, `503 unavailable` (Redis
//! unreachable), `500 corrupt-ruleset` (a stored payload failing its digest).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol_engine::Format;
use serde::{Deserialize, Deserializer, Serialize};

use super::caller::{AdminScope, Authorized};
use super::extract::JsonBody;
use super::problem::Problem;
use crate::app::App;
use crate::app::admin::ExpectedCurrent;
use crate::store::{Activated, Published, VersionInfo};

/// Largest rule-set document accepted by `POST /v1/rulesets` (the bundled base is ~60 KiB).
pub const MAX_RULESET_BYTES: usize = 1024 * 1024;

/// The outcome of a publish.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublishedRuleSet {
    pub id: String,
    pub version: String,
    /// `sha256:<hex>` of the canonical JSON form.
    pub digest: String,
    /// `false` for an idempotent re-publish of identical content.
    pub created: bool,
}

impl From<Published> for PublishedRuleSet {
    fn from(p: Published) -> Self {
        Self {
            id: p.id,
            version: p.version,
            digest: p.digest,
            created: p.created,
        }
    }
}

/// One published version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSetVersion {
    pub version: String,
    pub digest: String,
    /// When it was first published (RFC 3339, UTC).
    pub published_at: String,
    /// Whether it is the active version.
    pub active: bool,
}

impl From<VersionInfo> for RuleSetVersion {
    fn from(v: VersionInfo) -> Self {
        let published_at = jiff::Timestamp::from_millisecond(v.published_at_ms)
            .map(|t| t.to_string())
            .unwrap_or_default();
        Self {
            version: v.version,
            digest: v.digest,
            published_at,
            active: v.active,
        }
    }
}

/// The active version of a rule set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActiveVersion {
    pub version: String,
    pub digest: String,
}

/// A rule set and its published versions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSetVersions {
    pub id: String,
    /// The active version; `null` when none is (published but never activated).
    pub active: Option<ActiveVersion>,
    /// Oldest first.
    pub versions: Vec<RuleSetVersion>,
}

fn versions_of(id: String, versions: Vec<VersionInfo>) -> RuleSetVersions {
    let active = versions.iter().find(|v| v.active).map(|v| ActiveVersion {
        version: v.version.clone(),
        digest: v.digest.clone(),
    });
    RuleSetVersions {
        id,
        active,
        versions: versions.into_iter().map(RuleSetVersion::from).collect(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSetList {
    /// Every rule set with a published version, by id.
    pub rulesets: Vec<RuleSetVersions>,
}

/// One stored version with its document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSetDocument {
    pub id: String,
    pub version: String,
    pub digest: String,
    pub active: bool,
    /// The document in canonical JSON form (the bytes the digest covers).
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
}

/// The body of `POST /v1/rulesets/{id}/activate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The published version to activate.
    pub version: String,
    /// Compare-and-set: the version the caller believes is active now. A string must equal the
    /// active version, `null` requires that no version is active yet; when the field is left out
    /// there is no check (last writer wins — not recommended). A mismatch is `409`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub expected_current: Option<Option<String>>,
}

/// The body of `POST /v1/rulesets/{id}/rollback`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The earlier version to activate again; by default the version published just before the
    /// active one.
    #[serde(default)]
    pub to_version: Option<String>,
    /// Compare-and-set, as for activate; by default the version active when the rollback is read.
    #[serde(default)]
    pub expected_current: Option<String>,
}

/// The outcome of an activation or rollback.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivatedRuleSet {
    pub id: String,
    /// The version active now.
    pub version: String,
    pub digest: String,
    /// The version active before, if any.
    pub previous: Option<String>,
}

impl From<Activated> for ActivatedRuleSet {
    fn from(a: Activated) -> Self {
        Self {
            id: a.id,
            version: a.version,
            digest: a.digest,
            previous: a.previous,
        }
    }
}

/// `Some(value)` for a field that is present (even `null`), `None` when absent (with
/// `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// YAML (`application/yaml`, `application/x-yaml`, `text/yaml`) or JSON (`application/json`).
fn body_format(headers: &HeaderMap) -> Option<Format> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Some(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            Some(Format::Yaml)
        }
        _ => None,
    }
}

/// Publish a rule-set version.
///
/// The body is a whole rule-set document, YAML or JSON. It is validated in full first (a clinic
/// overlay against the active base, tighten-only), then stored immutably. Publishing does not
/// activate it.
#[utoipa::path(
    post,
    path = "/v1/rulesets",
    tag = "rulesets",
    request_body(description = "A whole rule-set document (as in `rulesets/*.yaml`), up to 1 MiB",
        content((Object = "application/yaml"), (Object = "application/json"))),
    responses(
        (status = 201, description = "Stored as a new version", body = PublishedRuleSet,
            headers(("Location" = String, description = "`/v1/rulesets/{id}/versions/{version}`"))),
        (status = 200, description = "The same content was already published under this version (idempotent)", body = PublishedRuleSet),
        (status = 400, description = "The body is empty or not UTF-8 text", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This version is already published with other content (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is neither YAML nor JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The document does not validate, or an overlay loosens its base (`invalid-ruleset`, fields in `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured (`redis-not-configured`) or Redis unreachable (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn publish_ruleset(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AdminScope>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = body.map_err(|rejection| body_problem(&rejection))?;
    let Some(format) = body_format(&headers) else {
        return Err(Problem::custom(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the rule set as YAML (`Content-Type: application/yaml`) or JSON \
             (`Content-Type: application/json`)",
        ));
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(Problem::field("", "the body is not UTF-8 text"));
    };
    if text.trim().is_empty() {
        return Err(Problem::field(
            "",
            "the body is empty: send a rule-set document",
        ));
    }
    let published = app.publish(&caller, text, format).await?;
    let status = if published.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!(
        "/v1/rulesets/{}/versions/{}",
        published.id, published.version
    );
    let mut res = (status, Json(PublishedRuleSet::from(published))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Every rule set in the store.
///
/// Each rule set with a published version, its active version and digest, and its versions
/// (oldest first).
#[utoipa::path(
    get,
    path = "/v1/rulesets",
    tag = "rulesets",
    responses(
        (status = 200, description = "Rule sets by id", body = RuleSetList),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_rulesets(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AdminScope>,
) -> Result<Json<RuleSetList>, Problem> {
    let rulesets = app
        .list(&caller)
        .await?
        .into_iter()
        .map(|(id, v)| versions_of(id, v))
        .collect();
    Ok(Json(RuleSetList { rulesets }))
}

/// The published versions of one rule set.
///
/// Oldest first, each with its digest, when it was published and whether it is active.
#[utoipa::path(
    get,
    path = "/v1/rulesets/{id}/versions",
    tag = "rulesets",
    params(("id" = String, Path, description = "Rule-set id, e.g. `clinic-aurora`")),
    responses(
        (status = 200, description = "The versions and the active one", body = RuleSetVersions),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule set", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id or version is not a valid rule-set id or version label (`invalid-ruleset`, naming the field)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_ruleset_versions(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
) -> Result<Json<RuleSetVersions>, Problem> {
    let versions = app.versions(&caller, &id).await?;
    Ok(Json(versions_of(id, versions)))
}

/// One published version with its document and digest.
///
/// The document in canonical JSON form, verified against its digest before it is sent (a stored
/// payload failing it is `500 corrupt-ruleset`); the `ETag` is the digest.
#[utoipa::path(
    get,
    path = "/v1/rulesets/{id}/versions/{version}",
    tag = "rulesets",
    params(
        ("id" = String, Path, description = "Rule-set id"),
        ("version" = String, Path, description = "Version label, e.g. `2026.11.2`"),
    ),
    responses(
        (status = 200, description = "The document, verified against its digest", body = RuleSetDocument,
            headers(("ETag" = String, description = "The digest, quoted"))),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule set or version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id or version is not a valid rule-set id or version label (`invalid-ruleset`, naming the field)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The stored payload fails its digest (`corrupt-ruleset`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_ruleset_version(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let stored = app.version(&caller, &id, &version).await?;
    let fetched = stored.fetched;
    let document = serde_json::from_str(&fetched.json).unwrap_or_default();
    let etag = HeaderValue::from_str(&format!("\"{}\"", fetched.digest)).ok();
    let mut res = Json(RuleSetDocument {
        id: fetched.id,
        version: fetched.version,
        digest: fetched.digest,
        active: stored.active,
        document,
    })
    .into_response();
    if let Some(etag) = etag {
        res.headers_mut().insert(header::ETAG, etag);
    }
    Ok(res)
}

/// Activate a published version (compare-and-set on `expected_current`).
///
/// Every replica serves it within about a second (pub/sub, plus a periodic reconcile). Of two
/// activations expecting the same current version exactly one succeeds; the other gets `409`
/// naming the version now active.
#[utoipa::path(
    post,
    path = "/v1/rulesets/{id}/activate",
    tag = "rulesets",
    params(("id" = String, Path, description = "Rule-set id")),
    request_body = ActivateRequest,
    responses(
        (status = 200, description = "Active now", body = ActivatedRuleSet),
        (status = 400, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule set or version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`expected_current` is not the active version; the problem names `version` and `current`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The catalog it would produce does not validate (an overlay whose base is not active, a base that breaks an active overlay)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn activate_ruleset(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ActivateRequest>,
) -> Result<Json<ActivatedRuleSet>, Problem> {
    let expected = match req.expected_current {
        None => ExpectedCurrent::Unchecked,
        Some(None) => ExpectedCurrent::None,
        Some(Some(v)) => ExpectedCurrent::Version(v),
    };
    let a = app.activate(&caller, &id, &req.version, expected).await?;
    Ok(Json(ActivatedRuleSet::from(a)))
}

/// Roll back to an earlier version.
///
/// Activates an earlier version again: `to_version`, by default the one published just before
/// the active one. An empty body is allowed. Compare-and-set as for activate.
#[utoipa::path(
    post,
    path = "/v1/rulesets/{id}/rollback",
    tag = "rulesets",
    params(("id" = String, Path, description = "Rule-set id")),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "Active now", body = ActivatedRuleSet),
        (status = 400, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule set or version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`expected_current` is not the active version, or there is no earlier version", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`to_version` is not earlier than the active version, or the catalog would not validate", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn rollback_ruleset(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ActivatedRuleSet>, Problem> {
    let body = body.map_err(|rejection| body_problem(&rejection))?;
    // An empty body means "the previous version, no explicit check".
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else if !is_json(&headers) {
        return Err(Problem::unsupported_media_type());
    } else {
        super::extract::parse_object::<RollbackRequest>(&body)?
    };
    let a = app
        .rollback(
            &caller,
            &id,
            req.to_version.as_deref(),
            req.expected_current.as_deref(),
        )
        .await?;
    Ok(Json(ActivatedRuleSet::from(a)))
}

fn body_problem(rejection: &BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::custom(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
            format!("rule-set documents are limited to {MAX_RULESET_BYTES} bytes"),
        )
    } else {
        Problem::field("", format!("the body could not be read: {rejection}"))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    body_format(headers) == Some(Format::Json)
}
