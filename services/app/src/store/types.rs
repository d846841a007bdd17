//! The values the store takes and answers with: what an admin endpoint renders. Each answer
//! names id, version and digest.

use std::time::Duration;

use protocol_engine::{LooseningDoc, RuleSetDoc};

/// Connection settings. The defaults keep a Redis outage from holding anything up for long: the
/// connection manager's stock settings take about 10 s to give up on a Redis that is down.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Per connection attempt.
    pub connect_timeout: Duration,
    /// Per command.
    pub response_timeout: Duration,
    /// Key prefix (default `protocol`): lets several deployments or tests share one Redis.
    pub prefix: String,
    /// Lets the key that published a loosening version approve serving it (a single-person
    /// clinic); off by default: four eyes.
    pub single_person_approval: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            prefix: "protocol".into(),
            single_person_approval: false,
        }
    }
}

/// The outcome of a publish. `created` is false for an idempotent re-publish of the same content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    pub id: String,
    pub version: String,
    pub digest: String,
    pub created: bool,
}

/// One published version of a rule set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionInfo {
    pub version: String,
    pub digest: String,
    /// Unix milliseconds of the first publish.
    pub published_at_ms: i64,
    pub active: bool,
    /// Whether it is or ever was active (then it can never be retired).
    pub ever_active: bool,
    /// Unix milliseconds of its retirement: its payload is deleted, its name stays reserved.
    pub retired_at_ms: Option<i64>,
    /// The loosening its document declared (why it may be more permissive than the version
    /// active when it was published, and who approved it).
    pub loosening: Option<LooseningDoc>,
}

/// One entry of a rule set's activation history: appended, in the same atomic step that moves
/// the active pointer, by every activation, rollback and seeding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    /// The version made active.
    pub version: String,
    pub digest: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The API key id of the caller, when known.
    pub by: Option<String>,
    /// The version active before, if any.
    pub previous: Option<String>,
    /// `activate`, `rollback` or `seed`.
    pub action: String,
    /// What the move changed for each rule set served (`clinic-aurora 2026.12.2 -> 2026.11.1:
    /// 1 looser, 0 tighter, 0 neutral`); absent for seeding and for entries written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// The approval of the loosenings it made, if it made any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<super::guard::Approval>,
}

/// How a move of pointers is guarded: the approval of its loosenings, if any, and whether it is
/// only a preview (a dry run moves nothing).
#[derive(Debug, Clone, Default)]
pub struct Guard {
    pub approval: Option<super::guard::Approval>,
    pub dry_run: bool,
}

/// What an activation or rollback did, or would do on a dry run, and what it changed for each
/// rule set served.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MoveOutcome {
    pub activated: Activated,
    pub effect: super::guard::Effect,
    pub dry_run: bool,
    /// On a dry run, the catalogs served before and after, so the door can decide logged
    /// traffic on both ([`crate::app`]'s traffic impact).
    #[serde(skip)]
    pub preview: Option<Preview>,
}

/// What a dry run would serve, and what is served now (`None` when nothing was active or the
/// active catalog no longer loads).
#[derive(Debug, Clone)]
pub struct Preview {
    pub before: Option<std::sync::Arc<crate::catalog::Catalog>>,
    pub after: std::sync::Arc<crate::catalog::Catalog>,
}

impl PartialEq for Preview {
    /// The same catalogs (by identity: a compiled catalog has no cheaper equality).
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &std::sync::Arc<crate::catalog::Catalog>, b| std::sync::Arc::ptr_eq(a, b);
        same(&self.after, &other.after)
            && match (&self.before, &other.before) {
                (Some(a), Some(b)) => same(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

/// A retired version (see [`RuleSetStore::retire`](crate::store::RuleSetStore::retire)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retired {
    pub id: String,
    pub version: String,
    pub digest: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The API key id of the caller, when known.
    pub by: Option<String>,
}

/// What a rollback asks for. At least one of `expected_current` and `idempotency_key` is required
/// ([`StoreError::PreconditionRequired`](crate::store::StoreError::PreconditionRequired)).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rollback {
    /// The earlier version to return to; by default the version active before the current one.
    pub to_version: Option<String>,
    /// Compare-and-set: the version the caller believes is active.
    pub expected_current: Option<String>,
    /// A retried request with the same key gets the first answer and rolls back only once.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

/// One stored version, verified against its digest.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub id: String,
    pub version: String,
    pub digest: String,
    pub document: RuleSetDoc,
    /// The stored canonical JSON, byte for byte what the digest covers.
    pub json: String,
}

/// What an activation expects the active version to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// No check: last writer wins.
    Any,
    /// No version of this rule set may be active yet.
    Absent,
    /// This exact version must be active.
    Version(String),
}

impl From<Option<&str>> for Expected {
    /// `None` is "no check"; `Some(v)` is compare-and-set on `v`.
    fn from(value: Option<&str>) -> Self {
        value.map_or(Self::Any, |v| Self::Version(v.to_owned()))
    }
}

/// One pointer to move in [`RuleSetStore::activate_many`].
#[derive(Debug, Clone)]
pub struct Activation {
    pub id: String,
    pub version: String,
    pub expected: Expected,
}

/// The outcome of an activation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Activated {
    pub id: String,
    pub version: String,
    pub digest: String,
    /// The version active before, if any.
    pub previous: Option<String>,
}
