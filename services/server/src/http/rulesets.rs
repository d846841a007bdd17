//! Rule-set admin under `/v1/rulesets` (scope `admin`): publish a version, list rule sets and
//! versions, fetch one version, activate a version (compare-and-set), roll back (to the version
//! active before, idempotently), retire a version never activated, and read the activation
//! history.
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
use crate::app::admin::{ExpectedCurrent, Moved};
use crate::app::{App, TrafficPreview};
use crate::store::guard::EffectChange;
use crate::store::{Approval, Guard, HistoryEntry, Published, Retired, Rollback, VersionInfo};

/// Largest rule-set document accepted by `POST /v1/rulesets` (the bundled base is ~60 KiB): the
/// store's limit on a document's canonical form, which it checks again after parsing.
pub const MAX_RULESET_BYTES: usize = crate::store::MAX_DOCUMENT_BYTES;

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

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
    /// Whether it is or ever was active (such a version is never retired).
    pub ever_active: bool,
    /// When it was retired (RFC 3339, UTC): its document is deleted and its version name stays
    /// reserved. Absent for a version not retired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// The loosening the version's document declared: why it may be more permissive than the
    /// version active when it was published, and who approved it. Absent for a version that
    /// declared none (it was not looser).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loosening: Option<Loosening>,
}

/// A declared loosening, as the document states it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Loosening {
    /// Why the rule set loosens.
    pub reason: String,
    /// Who approved it.
    pub approved_by: String,
}

impl From<VersionInfo> for RuleSetVersion {
    fn from(v: VersionInfo) -> Self {
        Self {
            published_at: rfc3339(v.published_at_ms),
            version: v.version,
            digest: v.digest,
            active: v.active,
            ever_active: v.ever_active,
            retired_at: v.retired_at_ms.map(rfc3339),
            loosening: v.loosening.map(|l| Loosening {
                reason: l.reason,
                approved_by: l.approved_by,
            }),
        }
    }
}

/// One activation of a rule set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryItem {
    /// The version made active.
    pub version: String,
    pub digest: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The API key id of the caller; `null` for seeding or an unauthenticated (open) server.
    pub by: Option<String>,
    /// The version active before, if any.
    pub previous: Option<String>,
    /// `activate`, `rollback` or `seed`.
    pub action: String,
    /// What it changed for each rule set served (`clinic-aurora 2026.12.2 -> 2026.12.0: 2
    /// looser, 0 tighter, 0 neutral`); absent for seeding and entries written before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// The approval of the loosenings it made (reason, approver, their digest), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<HistoryApproval>,
}

/// The approval recorded with a move that loosened what a clinic is served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryApproval {
    pub reason: String,
    pub approver: String,
    pub loosenings: String,
}

/// The activation history of a rule set, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSetHistory {
    pub id: String,
    pub history: Vec<HistoryItem>,
}

/// A retired version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetiredVersion {
    pub id: String,
    pub version: String,
    /// The digest it had (its document is deleted).
    pub digest: String,
    /// When it was retired (RFC 3339, UTC).
    pub retired_at: String,
    /// The API key id of the caller who retired it.
    pub by: Option<String>,
}

impl From<Retired> for RetiredVersion {
    fn from(r: Retired) -> Self {
        Self {
            id: r.id,
            version: r.version,
            digest: r.digest,
            retired_at: rfc3339(r.at_ms),
            by: r.by,
        }
    }
}

fn history_item(e: HistoryEntry) -> HistoryItem {
    HistoryItem {
        at: rfc3339(e.at_ms),
        version: e.version,
        digest: e.digest,
        by: e.by,
        previous: e.previous,
        action: e.action,
        effect: e.effect,
        approval: e.approval.map(|a| HistoryApproval {
            reason: a.reason,
            approver: a.approver,
            loosenings: a.loosenings,
        }),
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
    /// The approval of the loosenings this activation makes for any clinic (required when it
    /// makes any: `422` lists them and the digest to approve).
    #[serde(default)]
    pub approval: Option<ApprovalBody>,
    /// Answer what the activation would change for every rule set served, and move nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// An approval of the loosenings an activation or rollback makes. Given by another API key than
/// the one that published the version (four eyes), unless the deployment allows one person
/// (`PROTOCOL_ADMIN_SINGLE_PERSON_APPROVAL`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// Why serving the looser rules is right.
    pub reason: String,
    /// Who approved it, as staff know them (a medical director's name or staff id).
    pub approver: String,
    /// The digest of exactly the loosenings approved, as a refusal or a dry run names it
    /// (`loosenings`): an approval never covers loosenings its author did not see.
    pub loosenings: String,
}

impl From<ApprovalBody> for Approval {
    fn from(a: ApprovalBody) -> Self {
        Self {
            reason: a.reason,
            approver: a.approver,
            loosenings: a.loosenings,
        }
    }
}

/// The body of `POST /v1/rulesets/{id}/rollback`. A rollback needs `expected_current` or an
/// `Idempotency-Key` header (else `428`), so that a retry never rolls back twice.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version to activate again; by default the version that was active before the current
    /// one (from the activation history, not publish order). A named version must be earlier on
    /// that line of activations.
    #[serde(default)]
    pub to_version: Option<String>,
    /// Compare-and-set: the version the caller believes is active (`409` if another is).
    /// Required unless the request carries an `Idempotency-Key`.
    #[serde(default)]
    pub expected_current: Option<String>,
    /// The approval of the loosenings this rollback makes (see `ActivateRequest.approval`).
    #[serde(default)]
    pub approval: Option<ApprovalBody>,
    /// Answer what the rollback would change, and move nothing (nothing is remembered under
    /// the Idempotency-Key either).
    #[serde(default)]
    pub dry_run: bool,
}

/// The outcome of an activation or rollback, or on a dry run what it would be.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivatedRuleSet {
    pub id: String,
    /// The version active now (on a dry run: the version that would be).
    pub version: String,
    pub digest: String,
    /// The version active before, if any.
    pub previous: Option<String>,
    /// True when nothing was moved: the answer is a preview.
    pub dry_run: bool,
    /// What the move changes for each rule set served whose rules change: a clinic's overlay,
    /// or the base every clinic without one is served (a new base shows under every overlay).
    pub impact: Vec<RuleSetImpact>,
    /// The digest of its loosenings, which an `approval` must name; absent when it loosens
    /// nothing (then no approval is needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loosenings: Option<String>,
    /// On a dry run with the decision log on: each affected clinic's latest logged decisions
    /// decided again on the rule set served now and on the candidate, and how many change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficPreview>,
}

/// What one rule set served changes to, as the semantic diff says (`protocolctl diff`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSetImpact {
    pub ruleset: String,
    /// The version served before.
    pub from: Option<String>,
    /// The version served after.
    pub to: String,
    pub looser: usize,
    pub tighter: usize,
    pub neutral: usize,
    /// Each change: area (`depth`, `access`, `rule`, `policy`, `course`), what and which aspect
    /// changed, `looser`/`tighter`/`neutral`, the values before and after, and where it is.
    pub changes: Vec<EffectChange>,
}

impl From<Moved> for ActivatedRuleSet {
    fn from(
        Moved {
            outcome: m,
            traffic,
        }: Moved,
    ) -> Self {
        let loosenings = m.effect.loosenings_digest();
        let impact = m
            .effect
            .rulesets
            .into_iter()
            .map(|r| {
                use protocol_engine::diff::Direction;
                RuleSetImpact {
                    looser: r.count(Direction::Looser),
                    tighter: r.count(Direction::Tighter),
                    neutral: r.count(Direction::Neutral),
                    changes: r.changes,
                    ruleset: r.ruleset,
                    from: r.from,
                    to: r.to,
                }
            })
            .collect();
        let a = m.activated;
        Self {
            id: a.id,
            version: a.version,
            digest: a.digest,
            previous: a.previous,
            dry_run: m.dry_run,
            impact,
            loosenings,
            traffic,
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
        (status = 409, description = "This version is already published with other content, or was retired (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is neither YAML nor JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The document does not validate: a YAML tag, anchor or alias, a canonical form above 1 MiB, an incomplete base, an id or version not starting with a letter or digit, or an overlay that loosens its base (`invalid-ruleset`, fields in `errors`)", body = Problem, content_type = "application/problem+json"),
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
        (status = 410, description = "The version was retired (`retired-version`)", body = Problem, content_type = "application/problem+json"),
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
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The version was retired (`retired-version`)", body = Problem, content_type = "application/problem+json"),
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
    let guard = Guard {
        approval: req.approval.map(Approval::from),
        dry_run: req.dry_run,
    };
    let m = app
        .activate(&caller, &id, &req.version, expected, &guard)
        .await?;
    Ok(Json(ActivatedRuleSet::from(m)))
}

/// Roll back: activate again the version that was active before the current one.
///
/// The target comes from the activation history (not publish order); rolling back twice keeps
/// going back. A rollback must be safe to retry: send `expected_current` (compare-and-set), or an
/// `Idempotency-Key` header (a retry with the same key answers what the first request did, for
/// 24 hours, and rolls back once), or both. Without either: `428`.
#[utoipa::path(
    post,
    path = "/v1/rulesets/{id}/rollback",
    tag = "rulesets",
    params(
        ("id" = String, Path, description = "Rule-set id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 visible ASCII characters; a retried request with the same key gets the first answer"),
    ),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "Active now (or the first answer to this Idempotency-Key)", body = ActivatedRuleSet),
        (status = 400, description = "A field or the Idempotency-Key is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule set or version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`expected_current` is not the active version, or nothing was active before it", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body above 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`to_version` was not active before the current version, the catalog would not validate, or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "Neither `expected_current` nor an `Idempotency-Key` (`precondition-required`)", body = Problem, content_type = "application/problem+json"),
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
    let idempotency_key = idempotency_key(&headers)?;
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else if !is_json(&headers) {
        return Err(Problem::unsupported_media_type());
    } else {
        super::extract::parse_object::<RollbackRequest>(&body)?
    };
    let request = Rollback {
        to_version: req.to_version,
        expected_current: req.expected_current,
        idempotency_key,
    };
    let guard = Guard {
        approval: req.approval.map(Approval::from),
        dry_run: req.dry_run,
    };
    let m = app.rollback(&caller, &id, &request, &guard).await?;
    Ok(Json(ActivatedRuleSet::from(m)))
}

/// The `Idempotency-Key` header: at most one, 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let values = headers.get_all("idempotency-key");
    Ok(crate::app::admin::idempotency_key(
        values.iter().map(HeaderValue::as_bytes),
        "Idempotency-Key",
    )?)
}

/// The activation history of a rule set.
///
/// Oldest first: every activation, rollback and seeding, with the version, digest, time, the
/// caller's key id and the version active before.
#[utoipa::path(
    get,
    path = "/v1/rulesets/{id}/history",
    tag = "rulesets",
    params(("id" = String, Path, description = "Rule-set id")),
    responses(
        (status = 200, description = "The history, oldest first", body = RuleSetHistory),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope, or the rule set is another clinic's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule set", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id or version is not a valid rule-set id or version label (`invalid-ruleset`, naming the field)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn ruleset_history(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
) -> Result<Json<RuleSetHistory>, Problem> {
    let history = app.history(&caller, &id).await?;
    Ok(Json(RuleSetHistory {
        id,
        history: history.into_iter().map(history_item).collect(),
    }))
}

/// Retire a version that was never active.
///
/// Its document is deleted, its version name stays reserved (never published or activated
/// again) and the versions list shows it as retired. Retiring it again answers the same. A
/// version that is or ever was active is kept (`409`), so that every decision made with it can
/// be replayed.
#[utoipa::path(
    delete,
    path = "/v1/rulesets/{id}/versions/{version}",
    tag = "rulesets",
    params(
        ("id" = String, Path, description = "Rule-set id"),
        ("version" = String, Path, description = "A version never activated"),
    ),
    responses(
        (status = 200, description = "Retired", body = RetiredVersion),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `admin` scope, or the rule set is another clinic's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule set or version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The version is or was active (`version-was-active`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id or version is not a valid rule-set id or version label (`invalid-ruleset`, naming the field)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No Redis configured, or Redis unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn retire_ruleset_version(
    State(app): State<App>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<RetiredVersion>, Problem> {
    let retired = app.retire(&caller, &id, &version).await?;
    Ok(Json(RetiredVersion::from(retired)))
}

fn body_problem(rejection: &BytesRejection) -> Problem {
    super::extract::unreadable_body(
        rejection,
        Problem::custom(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
            format!("rule-set documents are limited to {MAX_RULESET_BYTES} bytes"),
        ),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    body_format(headers) == Some(Format::Json)
}
