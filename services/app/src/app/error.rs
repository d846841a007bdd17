//! The one error type of the door: every way an operation can fail, whatever the protocol.
//!
//! Mapped once per protocol: `protocol_server::http::problem` renders it as problem+json (RFC 9457) and
//! `protocol_server::grpc::status` as a status carrying `google.rpc.ErrorInfo` on every error (plus
//! `BadRequest` where fields are at fault). Each variant has one stable `reason` that both use.

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
}

impl AppError {
    /// The stable machine-readable reason: the gRPC `ErrorInfo.reason`, and the last segment of
    /// the REST problem `type`.
    pub fn reason(&self) -> &'static str {
        match self {
            AppError::Auth(AuthError::Missing) => "API_KEY_MISSING",
            AppError::Auth(AuthError::Unknown) => "API_KEY_INVALID",
            AppError::Auth(AuthError::Duplicate) => "API_KEY_DUPLICATE",
            AppError::Auth(AuthError::Forbidden(_)) => "SCOPE_MISSING",
            AppError::NotYourRuleSet { .. } => "RULESET_NOT_YOURS",
            AppError::NewRuleSet { .. } => "RULESET_CREATION_NEEDS_PLATFORM",
            AppError::Stale(_) => "STALE_RULESET",
            AppError::Unavailable(Unavailable::Refused { .. }) => "RULESET_REFUSED",
            AppError::Unavailable(Unavailable::NotLoaded) => "RULESETS_NOT_LOADED",
            AppError::WatchExhausted(_) => "WATCH_STREAMS_EXHAUSTED",
            AppError::Invalid(_) | AppError::Contradiction { .. } => "INVALID_REQUEST",
            AppError::AnswersTwice(_) => "ANSWERS_SENT_TWICE",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::NoStore => "REDIS_NOT_CONFIGURED",
            AppError::Store(StoreError::Invalid(_)) => "INVALID_RULESET",
            AppError::Store(StoreError::Conflict { .. }) => "CONFLICT",
            AppError::Store(StoreError::NotFound { .. }) => "NOT_FOUND",
            AppError::Store(StoreError::Corrupt { .. }) => "CORRUPT_RULESET",
            AppError::Store(StoreError::Unavailable(_)) => "REDIS_UNAVAILABLE",
            AppError::Store(StoreError::NoActive) => "NO_ACTIVE_RULESETS",
            AppError::Store(StoreError::Retired { .. }) => "VERSION_RETIRED",
            AppError::Store(StoreError::WasActive { .. }) => "VERSION_WAS_ACTIVE",
            AppError::Store(StoreError::PreconditionRequired { .. }) => "PRECONDITION_REQUIRED",
            AppError::Store(StoreError::IdempotencyKeyReused { .. }) => "IDEMPOTENCY_KEY_REUSED",
            AppError::DecisionLog(crate::decision_log::ReadError::Off) => "DECISION_LOG_OFF",
            AppError::DecisionLog(crate::decision_log::ReadError::Unreachable(_)) => {
                "DECISION_LOG_UNAVAILABLE"
            }
        }
    }

    /// A rule-set document that does not validate.
    pub fn invalid_ruleset(e: LoadError) -> Self {
        AppError::Store(StoreError::Invalid(e))
    }
}
