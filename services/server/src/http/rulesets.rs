//! Rule-set admin under `/v1/rulesets` (scope `admin`): publish a version, list rule sets and
//! versions, fetch one version, activate a version (compare-and-set) and roll back.
//!
//! These handlers are the only REST handlers that talk to Redis; the request path never does.
//! Without `PROTOCOL_REDIS_URL` they answer `503` (`redis-not-configured`). Every answer names id,
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
use protocol_engine::{FieldViolation, Format, LoadError};
use serde::{Deserialize, Deserializer, Serialize};

use super::caller::{AdminScope, Authorized};
use super::extract::JsonBody;
use super::problem::{PROBLEM_JSON, Problem};
use crate::context::Context;
use crate::store::{Activated, Expected, Published, StoreError, VersionInfo};

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

/// The answer of every admin endpoint on a server without Redis: 503.
fn no_store() -> Response {
    Problem::custom(
        StatusCode::SERVICE_UNAVAILABLE,
        "redis-not-configured",
        "Rule-set admin needs Redis",
        "this server runs on its local rule sets only: set PROTOCOL_REDIS_URL to publish, \
         activate and roll back rule-set versions",
    )
    .into_response()
}

/// The problem+json answer for a store error.
pub fn store_problem(e: StoreError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (problem, extra) = match &e {
        StoreError::Invalid(load) => {
            let mut p = Problem::invalid(load_violations(load));
            p.kind = "urn:treatment-protocol:problem:invalid-ruleset".into();
            p.title = "The rule set is invalid".into();
            p.status = status.as_u16();
            (p, serde_json::Map::new())
        }
        StoreError::Conflict {
            id,
            version,
            current,
            message,
        } => {
            let mut extra = serde_json::Map::new();
            extra.insert("id".into(), id.clone().into());
            extra.insert("version".into(), version.clone().into());
            extra.insert(
                "current".into(),
                current.clone().map_or(serde_json::Value::Null, Into::into),
            );
            (
                Problem::custom(status, "conflict", "Conflict", message.clone()),
                extra,
            )
        }
        StoreError::NotFound { id, version } => {
            let mut extra = serde_json::Map::new();
            extra.insert("id".into(), id.clone().into());
            if let Some(v) = version {
                extra.insert("version".into(), v.clone().into());
            }
            (Problem::not_found(e.to_string()), extra)
        }
        StoreError::Corrupt { id, version, .. } => {
            tracing::error!(error = %e, "stored rule set refused");
            let mut extra = serde_json::Map::new();
            extra.insert("id".into(), id.clone().into());
            extra.insert("version".into(), version.clone().into());
            (
                Problem::custom(
                    status,
                    "corrupt-ruleset",
                    "Stored rule set refused",
                    e.to_string(),
                ),
                extra,
            )
        }
        StoreError::Unavailable(_) | StoreError::NoActive => {
            (Problem::unavailable(e.to_string()), serde_json::Map::new())
        }
    };
    // The problem's members first (`type`, `title`, ...), then the extension members, in order.
    let mut body = serde_json::to_string(&problem).unwrap_or_else(|_| "{}".into());
    if body.ends_with('}') && !extra.is_empty() {
        body.pop();
        for (name, value) in extra {
            body.push(',');
            body.push_str(&serde_json::Value::String(name).to_string());
            body.push(':');
            body.push_str(&value.to_string());
        }
        body.push('}');
    }
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
        body,
    )
        .into_response()
}

/// Every load problem as a field violation (`path`, message with its line when known).
pub fn load_violations(e: &LoadError) -> Vec<FieldViolation> {
    e.problems
        .iter()
        .map(|p| FieldViolation {
            field: p.path.clone(),
            message: match p.line {
                Some(line) => format!("line {line}: {}", p.message),
                None => p.message.clone(),
            },
        })
        .collect()
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
    State(ctx): State<Context>,
    Authorized(_caller, _): Authorized<AdminScope>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(store) = ctx.store.as_deref() else {
        return no_store();
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_problem(&rejection).into_response(),
    };
    let Some(format) = body_format(&headers) else {
        return Problem::custom(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the rule set as YAML (`Content-Type: application/yaml`) or JSON \
             (`Content-Type: application/json`)",
        )
        .into_response();
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return Problem::field("", "the body is not UTF-8 text").into_response();
    };
    if text.trim().is_empty() {
        return Problem::field("", "the body is empty: send a rule-set document").into_response();
    }
    match store.publish_text(text, format).await {
        Ok(published) => {
            tracing::info!(
                id = %published.id,
                version = %published.version,
                digest = %published.digest,
                created = published.created,
                "rule set published"
            );
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
            res
        }
        Err(e) => store_problem(e),
    }
}

/// Every rule set in the store, with its active version and published versions.
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
    State(ctx): State<Context>,
    Authorized(_caller, _): Authorized<AdminScope>,
) -> Response {
    let Some(store) = ctx.store.as_deref() else {
        return no_store();
    };
    let result = async {
        let mut rulesets = Vec::new();
        for id in store.list_ids().await? {
            match store.list_versions(&id).await {
                Ok(versions) => rulesets.push(versions_of(id, versions)),
                // Removed between the scan and the read.
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(RuleSetList { rulesets })
    }
    .await;
    match result {
        Ok(list) => Json(list).into_response(),
        Err(e) => store_problem(e),
    }
}

/// The published versions of one rule set, oldest first.
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
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_ruleset_versions(
    State(ctx): State<Context>,
    Authorized(_caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
) -> Response {
    let Some(store) = ctx.store.as_deref() else {
        return no_store();
    };
    match store.list_versions(&id).await {
        Ok(versions) => Json(versions_of(id, versions)).into_response(),
        Err(e) => store_problem(e),
    }
}

/// One published version with its document and digest.
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
        (status = 500, description = "The stored payload fails its digest (`corrupt-ruleset`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_ruleset_version(
    State(ctx): State<Context>,
    Authorized(_caller, _): Authorized<AdminScope>,
    Path((id, version)): Path<(String, String)>,
) -> Response {
    let Some(store) = ctx.store.as_deref() else {
        return no_store();
    };
    let fetched = match store.fetch(&id, &version).await {
        Ok(f) => f,
        Err(e) => return store_problem(e),
    };
    let active = match store.active_versions().await {
        Ok(a) => a.get(&id) == Some(&version),
        Err(e) => return store_problem(e),
    };
    let document = serde_json::from_str(&fetched.json).unwrap_or_default();
    let etag = HeaderValue::from_str(&format!("\"{}\"", fetched.digest)).ok();
    let mut res = Json(RuleSetDocument {
        id: fetched.id,
        version: fetched.version,
        digest: fetched.digest,
        active,
        document,
    })
    .into_response();
    if let Some(etag) = etag {
        res.headers_mut().insert(header::ETAG, etag);
    }
    res
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
        (status = 422, description = "The catalog it would produce does not validate (an overlay whose base is not active, a base that breaks an active overlay)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn activate_ruleset(
    State(ctx): State<Context>,
    Authorized(_caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ActivateRequest>,
) -> Response {
    let Some(store) = ctx.store.as_deref() else {
        return no_store();
    };
    let expected = match req.expected_current {
        None => Expected::Any,
        Some(None) => Expected::Absent,
        Some(Some(v)) => Expected::Version(v),
    };
    let result = store.activate(&id, &req.version, expected).await;
    activated(result)
}

/// Roll back: activate an earlier version again (by default the one published just before the
/// active one).
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
        (status = 422, description = "`to_version` is not earlier than the active version, or the catalog would not validate", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn rollback_ruleset(
    State(ctx): State<Context>,
    Authorized(_caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(store) = ctx.store.as_deref() else {
        return no_store();
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_problem(&rejection).into_response(),
    };
    // An empty body means "the previous version, no explicit check".
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else if !is_json(&headers) {
        return Problem::unsupported_media_type().into_response();
    } else {
        match super::extract::parse_object::<RollbackRequest>(&body) {
            Ok(r) => r,
            Err(p) => return p.into_response(),
        }
    };
    activated(
        store
            .rollback(
                &id,
                req.to_version.as_deref(),
                req.expected_current.as_deref(),
            )
            .await,
    )
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

fn activated(result: Result<Activated, StoreError>) -> Response {
    match result {
        Ok(a) => {
            tracing::info!(
                id = %a.id,
                version = %a.version,
                digest = %a.digest,
                previous = a.previous.as_deref().unwrap_or(""),
                "rule set activated"
            );
            Json(ActivatedRuleSet::from(a)).into_response()
        }
        Err(e) => store_problem(e),
    }
}
