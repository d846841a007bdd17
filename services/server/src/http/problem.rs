//! RFC 9457 problem details: every REST error is `application/problem+json` with a stable `type`,
//! the HTTP `status`, a human `title`/`detail`, and — for a request that cannot be answered as
//! asked — `errors: [{field, message}]` naming each field at fault, so a client can fix its request
//! without reading server code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol_engine::{FieldViolation, RequestError};
use serde::Serialize;

use crate::app::{AppError, violations_summary};
use crate::auth::AuthError;
use crate::catalog::Unavailable;
use crate::context::Stale;
use crate::store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

pub use crate::app::MAX_VIOLATIONS;

/// A problem details object (RFC 9457). Its OpenAPI schema is [`ProblemSchema`]'s: every member
/// an answer carries, the extension members included.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URI identifying the kind of problem (every problem also carries the extension member
    /// `reason`, the stable reason gRPC puts in `ErrorInfo`; rule-set problems carry `id`,
    /// `version` and `current`): `urn:treatment-protocol:problem:<kind>` with kinds
    /// `invalid-request`, `unauthorized`, `forbidden`, `not-found`, `method-not-allowed`,
    /// `payload-too-large`, `unsupported-media-type`, `timeout`, `unavailable`, `too-many-streams`
    /// (a watch past its budget, with `Retry-After`), `overloaded`, `key-busy` and `memory-busy`
    /// (the edge's shares, with `Retry-After`), `body-timeout`, `internal`; and
    /// `stale-ruleset` (fail-closed stale policy), `invalid-ruleset`, `conflict`,
    /// `redis-not-configured`, `corrupt-ruleset`, `retired-version`, `version-was-active`,
    /// `precondition-required`, `idempotency-key-reused` (rule-set admin); `answers-sent-twice`
    /// (`422`: `facts` and `questionnaire_response` in one request).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every field at fault, by path into the request (`facts.pregnant`, `history[0].date`,
    /// `checks[3].treatment`); empty for problems not about a field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldViolation>,
    /// Extension members: `reason`, the stable reason of the error (the gRPC `ErrorInfo.reason`
    /// of the same failure), and for a rule-set problem what it is about (`id`, `version`,
    /// `current`). Boxed: most problems carry none, and every handler returns this type.
    #[serde(flatten)]
    pub extensions: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

/// A problem details object (RFC 9457), as sent: what the OpenAPI document declares for
/// [`Problem`], whose extension members live in a map (and `instance` is added as it is sent).
#[derive(utoipa::ToSchema)]
#[schema(title = "Problem")]
#[expect(dead_code, reason = "only its OpenAPI schema is used, never a value")]
pub struct ProblemSchema {
    /// `urn:treatment-protocol:problem:<kind>` (the kinds: [`Problem`]'s `type`).
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: Option<String>,
    /// Every field at fault, by path into the request; absent for problems not about a field.
    errors: Option<Vec<FieldViolation>>,
    /// The stable reason of the error (`INVALID_REQUEST`, `NOT_FOUND`, `API_KEY_INVALID`,
    /// `RULESET_NOT_YOURS`, `OVERLOADED`, ...): the `ErrorInfo.reason` gRPC gives the same
    /// failure. On every problem.
    reason: String,
    /// This occurrence: `urn:treatment-protocol:request:<x-request-id>`, the id the answer's
    /// `x-request-id` header carries, to quote when reporting a problem.
    instance: Option<String>,
    /// A rule-set problem: the rule set, the version it is about, and the version active now.
    id: Option<String>,
    version: Option<String>,
    current: Option<String>,
    /// A load-shedding problem (`overloaded`): the requests this replica serves at once; a
    /// key's share (`key-busy`): the requests one key may have in progress.
    limit: Option<u64>,
    /// `memory-busy`: what the body may take at worst while it is read and answered, KiB.
    #[schema(rename = "needed-kib")]
    needed_kib: Option<u64>,
    /// `memory-busy`: the server's whole request-memory budget, KiB.
    #[schema(rename = "budget-kib")]
    budget_kib: Option<u64>,
}

impl utoipa::PartialSchema for Problem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ProblemSchema::schema()
    }
}

impl utoipa::ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        "Problem".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <ProblemSchema as utoipa::ToSchema>::schemas(schemas);
    }
}

/// The body of a problem as sent: its fields plus `instance`, this occurrence
/// (`urn:treatment-protocol:request:<x-request-id>`, the id the answer's `x-request-id` header
/// carries, to quote when reporting a problem). Kept out of [`Problem`] so the error values
/// handlers return stay small.
#[derive(Serialize)]
struct Sent<'a> {
    #[serde(flatten)]
    problem: &'a Problem,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
}

impl Problem {
    /// Every problem carries a `reason`: by default its kind in capitals (`not-found` →
    /// `NOT_FOUND`, the reason gRPC gives the same failure); a door error replaces it with its
    /// own ([`AppError::reason`]), so no answer, an extractor's rejection or a fallback's
    /// included, goes without one.
    fn new(status: StatusCode, kind: &str, title: &str, detail: Option<String>) -> Self {
        Self {
            kind: format!("urn:treatment-protocol:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors: Vec::new(),
            extensions: None,
        }
        .with("reason", kind.to_ascii_uppercase().replace('-', "_"))
    }

    /// A problem whose status, type and title [`From<AppError>`] sets from the table.
    fn bare(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            Some(detail.into()),
        )
    }

    pub(crate) fn with(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions
            .get_or_insert_default()
            .insert(name.to_owned(), value.into());
        self
    }

    /// Any other problem: `kind` becomes `urn:treatment-protocol:problem:<kind>`.
    pub fn custom(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Self::new(status, kind, title, Some(detail.into()))
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 400: the request names fields that are wrong (the first [`MAX_VIOLATIONS`] of them).
    pub fn invalid(mut violations: Vec<FieldViolation>) -> Self {
        // A field path or message echoes what was sent (a 250,000-character fact name): clipped,
        // so an answer never grows with the input (long enough for every message the service
        // writes, a loosening's cells included).
        for v in &mut violations {
            v.field = clip(&v.field, MAX_FIELD_CHARS);
            v.message = clip(&v.message, MAX_MESSAGE_CHARS);
        }
        let detail = violations_summary(&violations);
        violations.truncate(MAX_VIOLATIONS);
        Self {
            errors: violations,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid-request",
                "The request is invalid",
                Some(detail),
            )
        }
    }

    /// 400 on one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldViolation {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            Some(detail.into()),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            Some("this path does not accept this HTTP method".into()),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
            Some(format!("request bodies are limited to {limit} bytes")),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            Some("send the request body as JSON with `Content-Type: application/json`".into()),
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            None,
        )
    }
}

impl From<RequestError> for Problem {
    fn from(e: RequestError) -> Self {
        AppError::from(e).into()
    }
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        AppError::from(e).into()
    }
}

impl From<Unavailable> for Problem {
    fn from(e: Unavailable) -> Self {
        AppError::from(e).into()
    }
}

impl From<Stale> for Problem {
    fn from(e: Stale) -> Self {
        AppError::from(e).into()
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        AppError::from(e).into()
    }
}

/// Every error of the door as a problem: the status, type, title and reason from the one table
/// ([`AppError::kind`]), the detail and the members that say what it is about from the error.
impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        let kind = e.kind();
        let detail = e.to_string();
        let mut p = match e {
            AppError::Invalid(r) | AppError::AnswersTwice(r) => Self::invalid(r.violations),
            AppError::Contradiction { field, message } => Self::field(field, message),
            AppError::Store(StoreError::Invalid(load)) => Self::invalid(
                load.problems
                    .iter()
                    .map(|p| FieldViolation {
                        field: p.path.clone(),
                        message: match p.line {
                            Some(line) => format!("line {line}: {}", p.message),
                            None => p.message.clone(),
                        },
                    })
                    .collect(),
            ),
            AppError::Store(StoreError::PreconditionRequired { field }) => {
                Self::field(field, detail)
            }
            AppError::Store(StoreError::Conflict {
                id,
                version,
                current,
                message,
            }) => Self::bare(message)
                .with("id", id)
                .with("version", version)
                .with("current", current),
            AppError::NotYourRuleSet { id, .. } | AppError::NewRuleSet { id } => {
                Self::bare(detail).with("id", id)
            }
            AppError::Unavailable(Unavailable::Refused { id, version, .. }) => {
                Self::bare(detail).with("id", id).with("version", version)
            }
            AppError::Store(StoreError::NotFound { id, version }) => {
                let p = Self::bare(detail).with("id", id);
                match version {
                    Some(v) => p.with("version", v),
                    None => p,
                }
            }
            AppError::Store(
                StoreError::Corrupt { id, version, .. }
                | StoreError::Retired { id, version }
                | StoreError::WasActive { id, version, .. }
                | StoreError::OutcomeUnknown { id, version, .. },
            ) => {
                if kind.problem == "corrupt-ruleset" {
                    tracing::error!(error = %detail, "stored rule set refused");
                }
                Self::bare(detail).with("id", id).with("version", version)
            }
            AppError::Store(StoreError::IdempotencyKeyReused { id }) => {
                Self::bare(detail).with("id", id)
            }
            AppError::Overloaded { limit, .. }
            | AppError::KeyBusy { limit, .. }
            | AppError::ProbesExhausted { limit } => Self::bare(detail).with("limit", limit),
            AppError::MemoryBusy {
                needed_kib,
                budget_kib,
                ..
            } => Self::bare(detail)
                .with("needed-kib", needed_kib)
                .with("budget-kib", budget_kib),
            AppError::RateLimited {
                quota, window_secs, ..
            } => Self::bare(detail)
                .with("violated-policies", serde_json::json!(["default"]))
                .with("quota", quota)
                .with("window-secs", window_secs),
            _ => Self::bare(detail),
        };
        p.kind = kind.problem_type();
        p.title = kind.title.to_owned();
        p.status = kind.http;
        p.with("reason", kind.reason)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let sent = Sent {
            problem: &self,
            instance: crate::edge::current_request_id()
                .map(|id| format!("urn:treatment-protocol:request:{id}")),
        };
        let body = serde_json::to_vec(&sent).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.kind.ends_with(":memory-busy") {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::edge::admission::SHED_RETRY_AFTER_SECS),
            );
        }
        if self.kind.ends_with(":too-many-streams") {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::edge::streams::WATCH_RETRY_AFTER_SECS),
            );
        }
        res
    }
}

/// The longest field path a problem echoes.
const MAX_FIELD_CHARS: usize = 512;
/// The longest message a problem carries.
const MAX_MESSAGE_CHARS: usize = 4096;

/// `text` cut to `max` characters, ending in `…` when cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
