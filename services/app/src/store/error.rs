//! What can go wrong with the store, in terms an admin API can answer with.
//!
//! The store knows nothing of protocols: the door ([`crate::app::AppError`]) maps each variant to
//! one REST status and one gRPC code. Every variant that concerns one document names its id and
//! version.

use protocol_engine::LoadError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or did not answer in time. Never fatal to serving: the request
    /// path does not use Redis.
    #[error("redis unavailable: {0}")]
    Unavailable(#[from] redis::RedisError),

    /// Redis did not answer the step that moves pointers: the move may or may not have been
    /// applied (a red team saw an activation answered 503 applied in 18 of 24 trials). Never
    /// answered as a plain outage: the caller must learn what is active before moving again.
    #[error(
        "redis did not answer the {action} of rule set '{id}' to '{version}' ({reason}): it may or \
         may not have been applied. Read its history (GET /v1/rulesets/{id}/history) or the active \
         version before moving again; a retry with the same expected_current is refused with 409 \
         naming '{version}' as active if it was applied"
    )]
    OutcomeUnknown {
        id: String,
        version: String,
        action: &'static str,
        reason: String,
    },

    /// The document, or the catalog it would produce, does not validate. Each problem names the
    /// field (`clinic-aurora: tighten.roles[0].max_depth_mm ...`).
    #[error("{0}")]
    Invalid(LoadError),

    /// The same version exists with other content, or the active version is not the expected one,
    /// or the active set changed while this activation was being validated.
    #[error("conflict on rule set '{id}': {message}")]
    Conflict {
        id: String,
        version: String,
        /// The active version at the time of the conflict, for an activation.
        current: Option<String>,
        message: String,
    },

    /// No such rule set, or no such version of it.
    #[error("{}", not_found_message(id, version.as_deref()))]
    NotFound { id: String, version: Option<String> },

    /// A stored payload failed its digest or does not parse: refused, never served.
    #[error("stored rule set '{id}' version '{version}' refused: {reason}")]
    Corrupt {
        id: String,
        version: String,
        reason: String,
    },

    /// Redis holds no active rule sets (a fresh or wiped Redis): seed it.
    #[error("no active rule sets in redis")]
    NoActive,

    /// The version was retired: its payload is deleted and its name stays reserved, so it can be
    /// neither read, activated nor published again.
    #[error("rule set '{id}' version '{version}' was retired: publish a new version instead")]
    Retired { id: String, version: String },

    /// Retiring a version that is active, or ever was: it stays, so that every decision made
    /// with it can be replayed.
    #[error("{}", was_active_message(id, version, *active_now))]
    WasActive {
        id: String,
        version: String,
        active_now: bool,
    },

    /// A rollback that states neither the version it expects to be active nor an idempotency
    /// key: retried, it would roll back twice.
    #[error(
        "a rollback must say which version it expects to be active (`{field}`) or carry an \
         `Idempotency-Key`, so that a retried rollback does not roll back twice"
    )]
    PreconditionRequired { field: &'static str },

    /// An idempotency key already used for another request on this rule set.
    #[error(
        "this Idempotency-Key was already used for a different rollback of '{id}' (within the \
         last 24 hours): use a new key for a new request"
    )]
    IdempotencyKeyReused { id: String },
}

fn was_active_message(id: &str, version: &str, active_now: bool) -> String {
    if active_now {
        format!(
            "rule set '{id}' version '{version}' is active: only a version never activated can be retired"
        )
    } else {
        format!(
            "rule set '{id}' version '{version}' was active once and is kept so that decisions made with it can be replayed: only a version never activated can be retired"
        )
    }
}

fn not_found_message(id: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("rule set '{id}' has no version '{v}'"),
        None => format!("no rule set '{id}'"),
    }
}

impl StoreError {
    pub(crate) fn conflict(
        id: &str,
        version: &str,
        current: Option<String>,
        message: String,
    ) -> Self {
        Self::Conflict {
            id: id.to_owned(),
            version: version.to_owned(),
            current,
            message,
        }
    }
}
