//! The one error type of the door: every way an operation can fail, whatever the protocol.
//!
//! One table says how each protocol says each error ([`AppError::kind`]: the reason, the HTTP
//! status, the gRPC code, the problem type and title). `protocol_server::http::problem` renders
//! it as problem+json (RFC 9457) and `protocol_server::grpc::status` as a status carrying
//! `google.rpc.ErrorInfo` on every error; each adds only its details (`BadRequest` where fields
//! are at fault, the ids a conflict is about).

use protocol_engine::{FieldViolation, LoadError, RequestError};

use super::watch_budget::WatchExhausted;
use crate::auth::AuthError;
use crate::catalog::Unavailable;
use crate::context::Stale;
use crate::store::StoreError;

/// Most field violations one answer lists, REST and gRPC alike: a request naming thousands of
/// bad fields gets the first ones and a count, not an answer larger than itself.
pub const MAX_VIOLATIONS: usize = 50;

/// The one-line summary of field violations (the problem's `detail`): the field and message of
/// a single one, else how many (and that only the first [`MAX_VIOLATIONS`] are listed).
pub fn violations_summary(violations: &[FieldViolation]) -> String {
    match violations {
        [one] if one.field.is_empty() => one.message.clone(),
        [one] => format!("{}: {}", one.field, one.message),
        many if many.len() > MAX_VIOLATIONS => format!(
            "{} fields are invalid (the first {MAX_VIOLATIONS} are listed)",
            many.len()
        ),
        many => format!("{} fields are invalid", many.len()),
    }
}

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No key, an unknown key, or a key without the scope the operation needs.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// An admin key reaching for a rule set that is not its clinic's (or a new id): only the
    /// `platform` scope may.
    #[error("this API key administers rule set `{tenant}` only: `{id}` needs the `platform` scope")]
    NotYourRuleSet {
        /// The rule set asked for.
        id: String,
        /// The caller's clinic (empty in open mode, which holds `platform`).
        tenant: String,
    },
    /// Creating a rule set that does not exist yet (a clinic's first overlay): onboarding, for the
    /// `platform` scope only.
    #[error("rule set `{id}` does not exist yet: creating one needs the `platform` scope")]
    NewRuleSet {
        /// The id asked for.
        id: String,
    },
    /// The fail-closed stale policy refuses decisions.
    #[error(transparent)]
    Stale(#[from] Stale),
    /// No rule set may answer the caller: its clinic's rule set (or the base) was refused, or
    /// nothing is loaded yet. Fail-closed, never another rule set in its place.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// A watch stream past its budget (per key or in total): retry later, or close one.
    #[error(transparent)]
    WatchExhausted(#[from] WatchExhausted),
    /// The request does not make sense: every field at fault is named.
    #[error("{} field(s) are invalid", .0.violations.len())]
    Invalid(#[from] RequestError),
    /// A request that sends the client's answers twice (`facts` and `questionnaire_response`),
    /// naming both: `422`, the body is well formed but cannot be read one way.
    #[error("the answers were sent twice")]
    AnswersTwice(RequestError),
    /// A request that contradicts itself or asks for something impossible, naming the field.
    #[error("{field}: {message}")]
    Contradiction {
        /// The field at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// No such thing (a treatment code), named.
    #[error("{0}")]
    NotFound(String),
    /// Rule-set administration on a server without Redis.
    #[error(
        "this server runs on its local rule sets only: set PROTOCOL_REDIS_URL to publish, \
         activate and roll back rule-set versions"
    )]
    NoStore,
    /// The rule-set store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the decision log: off on this server, or PostgreSQL unreachable.
    #[error(transparent)]
    DecisionLog(#[from] crate::decision_log::ReadError),
    /// The edge sheds load before a request reaches the door: `limit` requests are in progress,
    /// the most this server takes at once.
    #[error(
        "{limit} requests are in progress, the most this server takes at once: retry after \
         {retry_after_secs} s"
    )]
    Overloaded {
        /// The most requests in progress at once.
        limit: usize,
        /// When to retry.
        retry_after_secs: u64,
    },
    /// The edge refuses a key that has its whole share of the requests in progress: one
    /// caller's slow or many requests never take every place of the server.
    #[error(
        "this API key has {limit} requests in progress, its share of this server: retry after \
         {retry_after_secs} s"
    )]
    KeyBusy {
        /// The most requests in progress at once for one key.
        limit: usize,
        /// When to retry.
        retry_after_secs: u64,
    },
    /// The edge refuses a request whose body would take more memory to read than is left of
    /// the server's request-memory budget (`PROTOCOL_REQUEST_MEMORY_MB`).
    #[error(
        "reading this request's body takes up to {needed_kib} KiB, and the memory this server \
         keeps for request bodies ({budget_kib} KiB) is in use: retry after {retry_after_secs} s"
    )]
    MemoryBusy {
        /// What the body may take while it is read and answered.
        needed_kib: u64,
        /// The whole budget.
        budget_kib: u64,
        /// When to retry.
        retry_after_secs: u64,
    },
    /// The edge refuses a key past its request quota.
    #[error(
        "this API key may make {quota} requests per {window_secs} s: retry after \
         {retry_after_secs} s"
    )]
    RateLimited {
        /// Requests per window.
        quota: u32,
        /// The window.
        window_secs: u64,
        /// When to retry.
        retry_after_secs: u64,
    },
    /// The request's body did not arrive within `PROTOCOL_BODY_READ_TIMEOUT_SECS`: a slow (or
    /// stalled) client gives its place back rather than holding it to the request timeout.
    #[error("the request body did not arrive within {secs} s: send it at once")]
    BodyTimedOut {
        /// The body-read timeout.
        secs: u64,
    },
    /// The request did not complete within the server's request timeout.
    #[error("the request did not complete within {secs} s")]
    TimedOut {
        /// The request timeout.
        secs: u64,
    },
    /// A watch stream ends because this server is shutting down: retryable, on another replica
    /// or on this one once restarted (as xDS clients expect, never a clean end that stops a
    /// device's loop).
    #[error("this server is shutting down: reconnect to watch on (another replica answers)")]
    ShuttingDown,
    /// The health and reflection calls in progress are at their budget (gRPC probes and
    /// reflection share one, apart from the decisions' load shedding).
    #[error(
        "{limit} health and reflection calls are in progress, the most this server allows: \
         retry later"
    )]
    ProbesExhausted {
        /// The most health and reflection calls in progress at once.
        limit: usize,
    },
}

impl AppError {
    /// The stable machine-readable reason: the gRPC `ErrorInfo.reason` and REST's `reason`
    /// ([`Self::kind`]).
    pub fn reason(&self) -> &'static str {
        self.kind().reason
    }

    /// A rule-set document that does not validate.
    pub fn invalid_ruleset(e: LoadError) -> Self {
        AppError::Store(StoreError::Invalid(e))
    }
}

/// The gRPC status codes the door's errors map to (the adapter turns each into tonic's `Code`):
/// named here so that the one table of error kinds needs no gRPC crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCode {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    Aborted,
    FailedPrecondition,
    ResourceExhausted,
    Unavailable,
    DataLoss,
    DeadlineExceeded,
}

/// How every protocol says one kind of failure: the one table (issue 24). REST's problem
/// (`http::problem`) and gRPC's status (`grpc::status`) take their status, code, type, title and
/// reason from here and add only their details (the fields at fault, the ids a conflict is
/// about).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind {
    /// The stable reason: gRPC `ErrorInfo.reason`, REST `reason`.
    pub reason: &'static str,
    /// The HTTP status.
    pub http: u16,
    /// The gRPC status code.
    pub grpc: GrpcCode,
    /// The REST problem type's kind (`urn:treatment-protocol:problem:<kind>`), or a whole type
    /// URI defined elsewhere ([`Self::problem_type`]).
    pub problem: &'static str,
    /// The REST problem's title.
    pub title: &'static str,
}

impl ErrorKind {
    /// The REST problem `type`: `urn:treatment-protocol:problem:<kind>`, or the URI itself when
    /// the kind is one (a problem type registered elsewhere).
    pub fn problem_type(&self) -> String {
        if self.problem.contains(':') {
            self.problem.to_owned()
        } else {
            format!("urn:treatment-protocol:problem:{}", self.problem)
        }
    }
}

const fn kind(
    reason: &'static str,
    http: u16,
    grpc: GrpcCode,
    problem: &'static str,
    title: &'static str,
) -> ErrorKind {
    ErrorKind {
        reason,
        http,
        grpc,
        problem,
        title,
    }
}

impl AppError {
    /// This error's row of the table: how REST and gRPC say it.
    pub fn kind(&self) -> ErrorKind {
        use GrpcCode as G;
        const UNAUTHORIZED: (u16, GrpcCode, &str, &str) = (
            401,
            GrpcCode::Unauthenticated,
            "unauthorized",
            "Unauthorized",
        );
        const FORBIDDEN: (u16, GrpcCode, &str, &str) =
            (403, GrpcCode::PermissionDenied, "forbidden", "Forbidden");
        const INVALID: (u16, GrpcCode, &str, &str) = (
            400,
            GrpcCode::InvalidArgument,
            "invalid-request",
            "The request is invalid",
        );
        const NO_RULESET: (u16, GrpcCode, &str, &str) = (
            503,
            GrpcCode::Unavailable,
            "ruleset-unavailable",
            "No rule set may answer",
        );
        const NOT_FOUND: (u16, GrpcCode, &str, &str) =
            (404, GrpcCode::NotFound, "not-found", "Not found");
        const UNAVAILABLE: (u16, GrpcCode, &str, &str) = (
            503,
            GrpcCode::Unavailable,
            "unavailable",
            "Service unavailable",
        );
        let row = |reason: &'static str, (http, grpc, problem, title): (u16, GrpcCode, &'static str, &'static str)| {
            kind(reason, http, grpc, problem, title)
        };
        match self {
            AppError::Auth(AuthError::Missing) => row("API_KEY_MISSING", UNAUTHORIZED),
            AppError::Auth(AuthError::Unknown) => row("API_KEY_INVALID", UNAUTHORIZED),
            AppError::Auth(AuthError::Duplicate) => row("API_KEY_DUPLICATE", UNAUTHORIZED),
            AppError::Auth(AuthError::Jwt(crate::auth::JwtCheck::Busy)) => {
                row("JWT_REPLAY_CACHE_FULL", UNAVAILABLE)
            }
            AppError::Auth(AuthError::Jwt(check)) => row(check.reason(), UNAUTHORIZED),
            AppError::Auth(AuthError::Forbidden(_)) => row("SCOPE_MISSING", FORBIDDEN),
            AppError::NotYourRuleSet { .. } => row("RULESET_NOT_YOURS", FORBIDDEN),
            AppError::NewRuleSet { .. } => row("RULESET_CREATION_NEEDS_PLATFORM", FORBIDDEN),
            AppError::Stale(_) => kind(
                "STALE_RULESET",
                503,
                G::Unavailable,
                "stale-ruleset",
                "Rule set too stale to decide",
            ),
            AppError::Unavailable(Unavailable::Refused { .. }) => {
                row("RULESET_REFUSED", NO_RULESET)
            }
            AppError::Unavailable(Unavailable::NotLoaded) => row("RULESETS_NOT_LOADED", NO_RULESET),
            AppError::WatchExhausted(_) => kind(
                "WATCH_STREAMS_EXHAUSTED",
                429,
                G::ResourceExhausted,
                "too-many-streams",
                "Too many watch streams",
            ),
            AppError::Invalid(_) | AppError::Contradiction { .. } => {
                row("INVALID_REQUEST", INVALID)
            }
            AppError::AnswersTwice(_) => kind(
                "ANSWERS_SENT_TWICE",
                422,
                G::InvalidArgument,
                "answers-sent-twice",
                "The answers were sent twice",
            ),
            AppError::NotFound(_) | AppError::Store(StoreError::NotFound { .. }) => {
                row("NOT_FOUND", NOT_FOUND)
            }
            AppError::NoStore => kind(
                "REDIS_NOT_CONFIGURED",
                503,
                G::FailedPrecondition,
                "redis-not-configured",
                "Rule-set admin needs Redis",
            ),
            AppError::Store(StoreError::Invalid(_)) => kind(
                "INVALID_RULESET",
                422,
                G::InvalidArgument,
                "invalid-ruleset",
                "The rule set is invalid",
            ),
            AppError::Store(StoreError::Conflict { .. }) => {
                kind("CONFLICT", 409, G::Aborted, "conflict", "Conflict")
            }
            AppError::Store(StoreError::Corrupt { .. }) => kind(
                "CORRUPT_RULESET",
                500,
                G::DataLoss,
                "corrupt-ruleset",
                "Stored rule set refused",
            ),
            AppError::Store(StoreError::Unavailable(_)) => row("REDIS_UNAVAILABLE", UNAVAILABLE),
            AppError::Store(StoreError::OutcomeUnknown { .. }) => kind(
                "OUTCOME_UNKNOWN",
                503,
                G::Unavailable,
                "outcome-unknown",
                "Outcome unknown",
            ),
            AppError::Store(StoreError::NoActive) => row("NO_ACTIVE_RULESETS", UNAVAILABLE),
            AppError::Store(StoreError::Retired { .. }) => kind(
                "VERSION_RETIRED",
                410,
                G::NotFound,
                "retired-version",
                "Version retired",
            ),
            AppError::Store(StoreError::WasActive { .. }) => kind(
                "VERSION_WAS_ACTIVE",
                409,
                G::FailedPrecondition,
                "version-was-active",
                "Version was active",
            ),
            AppError::Store(StoreError::PreconditionRequired { .. }) => kind(
                "PRECONDITION_REQUIRED",
                428,
                G::FailedPrecondition,
                "precondition-required",
                "Precondition required",
            ),
            AppError::Store(StoreError::IdempotencyKeyReused { .. }) => kind(
                "IDEMPOTENCY_KEY_REUSED",
                422,
                G::InvalidArgument,
                "idempotency-key-reused",
                "Idempotency key reused",
            ),
            AppError::DecisionLog(crate::decision_log::ReadError::Off) => kind(
                "DECISION_LOG_OFF",
                503,
                G::FailedPrecondition,
                "decision-log-off",
                "Decision log unavailable",
            ),
            AppError::DecisionLog(crate::decision_log::ReadError::Unreachable(_)) => kind(
                "DECISION_LOG_UNAVAILABLE",
                503,
                G::Unavailable,
                "decision-log-unavailable",
                "Decision log unavailable",
            ),
            AppError::Overloaded { .. } => kind(
                "OVERLOADED",
                503,
                G::Unavailable,
                "overloaded",
                "Server overloaded",
            ),
            AppError::KeyBusy { .. } => kind(
                "KEY_BUSY",
                429,
                G::ResourceExhausted,
                "key-busy",
                "Too many requests in progress for this key",
            ),
            AppError::MemoryBusy { .. } => kind(
                "MEMORY_BUSY",
                503,
                G::Unavailable,
                "memory-busy",
                "Request memory in use",
            ),
            // The problem type of draft-ietf-httpapi-ratelimit-headers, not one of ours.
            AppError::RateLimited { .. } => kind(
                "RATE_LIMITED",
                429,
                G::ResourceExhausted,
                "https://iana.org/assignments/http-problem-types#quota-exceeded",
                "Request quota exceeded",
            ),
            AppError::BodyTimedOut { .. } => kind(
                "BODY_TIMEOUT",
                408,
                G::DeadlineExceeded,
                "body-timeout",
                "Request body too slow",
            ),
            AppError::TimedOut { .. } => kind(
                "TIMEOUT",
                503,
                G::Unavailable,
                "timeout",
                "Request timed out",
            ),
            AppError::ShuttingDown => kind(
                "SHUTTING_DOWN",
                503,
                G::Unavailable,
                "shutting-down",
                "Server shutting down",
            ),
            AppError::ProbesExhausted { .. } => kind(
                "HEALTH_BUDGET_EXHAUSTED",
                429,
                G::ResourceExhausted,
                "too-many-probes",
                "Too many health and reflection calls",
            ),
        }
    }
}
