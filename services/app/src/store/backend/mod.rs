//! Where the store keeps its state: the [`Backend`] trait, with Redis ([`redis::RedisBackend`],
//! what every deployment runs) and memory ([`memory::MemoryBackend`], one process: tests and
//! tools) behind it.
//!
//! [`crate::store::RuleSetStore`] holds every rule of the store (names, validation, the guard, the
//! line of activations, idempotent rollbacks); a backend holds only the state and its few atomic
//! steps, each a typed operation ([`Publish`], [`MovePointers`], [`Seed`], [`Retire`]) with a
//! typed reply. Both backends are run through one conformance suite
//! (`tests/tests/store/conformance.rs`), so the memory one cannot drift from Redis.

pub(crate) mod memory;
pub(crate) mod redis;

use std::collections::{BTreeMap, BTreeSet};

use super::StoreError;
use super::lineage::Lineage;
use super::types::Expected;

/// The state of a store and its atomic steps. Every method is one atomic read or write:
/// nothing a caller reads in one call and checks in another is assumed still true (the writes
/// check again, compare-and-set).
#[async_trait::async_trait]
pub(crate) trait Backend: Send + Sync {
    /// A round trip.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Stores one version immutably.
    async fn publish(&self, op: Publish<'_>) -> Result<PublishReply, StoreError>;
    /// Everything listed about the versions of one rule set.
    async fn versions(&self, id: &str) -> Result<VersionsRecord, StoreError>;
    /// Every rule-set id with a published version, in any order.
    async fn ids(&self) -> Result<Vec<String>, StoreError>;
    /// id → active version.
    async fn active(&self) -> Result<BTreeMap<String, String>, StoreError>;
    /// id → active version and the lineage of that state, read together.
    async fn active_state(&self) -> Result<ActiveState, StoreError>;
    /// Whether any pointer is set.
    async fn has_active(&self) -> Result<bool, StoreError>;
    /// The payload and digest of each (id, version), in order.
    async fn docs(&self, wanted: &[(String, String)]) -> Result<Vec<StoredDoc>, StoreError>;
    /// The API key id that first published each (id, version), in order.
    async fn publishers(
        &self,
        wanted: &[(String, String)],
    ) -> Result<Vec<Option<String>>, StoreError>;
    /// Moves pointers, compare-and-set, recording each move.
    async fn move_pointers(&self, op: MovePointers<'_>) -> Result<MoveReply, StoreError>;
    /// Sets every pointer at once: on an empty store (a first seed), or over the state of the
    /// lineage a replica read (a restore). Whether it wrote.
    async fn seed(&self, op: Seed<'_>) -> Result<bool, StoreError>;
    /// The activation history of one rule set (JSON entries, oldest first).
    async fn history(&self, id: &str) -> Result<Vec<String>, StoreError>;
    /// The record kept under an idempotency key (its hash), while it lives.
    async fn idempotency(&self, id: &str, key_hash: &str) -> Result<Option<String>, StoreError>;
    /// Retires a version that was never active.
    async fn retire(&self, op: Retire<'_>) -> Result<RetireReply, StoreError>;
    /// The digest of one version (kept after it is retired).
    async fn digest(&self, id: &str, version: &str) -> Result<Option<String>, StoreError>;
    /// Whether a version was retired.
    async fn is_retired(&self, id: &str, version: &str) -> Result<bool, StoreError>;
    /// A subscription to the activation notices ([`MovePointers`] and [`Seed`] send one).
    async fn subscribe(&self) -> Result<Box<dyn Notices>, StoreError>;
}

/// Activation notices, as a replica's sync task hears them.
#[async_trait::async_trait]
pub(crate) trait Notices: Send {
    /// Waits for the next notice; `false` when the subscription ended.
    async fn next(&mut self) -> bool;
    /// Drops the notices already waiting (a burst needs one reconcile).
    fn drain(&mut self);
    /// Whether the subscription still answers (a connection that vanished without a FIN never
    /// ends it by itself).
    async fn alive(&mut self) -> bool;
}

/// A stored payload and its digest: either may be missing (retired, or damaged by hand).
pub(crate) type StoredDoc = (Option<String>, Option<String>);

/// Everything listed about the versions of one rule set.
#[derive(Debug, Default)]
pub(crate) struct VersionsRecord {
    /// Version and publish time (Unix ms), in publish order.
    pub versions: Vec<(String, i64)>,
    /// version → digest.
    pub digests: BTreeMap<String, String>,
    /// The active version.
    pub active: Option<String>,
    /// Every version that is or ever was active.
    pub ever: BTreeSet<String>,
    /// version → retirement record (JSON).
    pub retired: BTreeMap<String, String>,
    /// version → declared loosening (JSON).
    pub loosenings: BTreeMap<String, String>,
}

/// The active pointers and the lineage of the state they make (`store::lineage`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveState {
    /// id → active version.
    pub pointers: BTreeMap<String, String>,
    /// `None`: no lineage is recorded (an empty store, or one written before lineages).
    pub lineage: Option<Lineage>,
}

/// One version to publish.
pub(crate) struct Publish<'a> {
    pub id: &'a str,
    pub version: &'a str,
    /// The canonical JSON payload.
    pub payload: &'a str,
    /// Its SHA-256.
    pub digest: &'a str,
    /// Publish time, Unix ms (the versions list's order).
    pub at_ms: i64,
    /// The loosening the version declares, as JSON.
    pub loosening: Option<String>,
    /// The API key id of the publisher.
    pub publisher: Option<&'a str>,
}

/// What [`Publish`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PublishReply {
    /// Stored now.
    Stored,
    /// The version already existed, with this digest (nothing changed).
    Exists(String),
    /// The version was retired (its name stays reserved); its digest.
    Retired(String),
}

/// One pointer to move.
pub(crate) struct PointerMove<'a> {
    pub id: &'a str,
    pub version: &'a str,
    /// What the pointer must be now.
    pub expected: &'a Expected,
    /// What the history's length must be now (a rollback computed its target from it).
    pub history_len: Option<usize>,
    /// The history entry to append, as JSON.
    pub entry: String,
}

/// A move of pointers, compare-and-set: every check passes and every item moves, or nothing.
pub(crate) struct MovePointers<'a> {
    pub items: Vec<PointerMove<'a>>,
    /// The whole active map the move was validated against: any other change is `Changed`.
    pub validated: &'a BTreeMap<String, String>,
    /// The idempotency key (its hash) of the first item's rule set, how long to keep its
    /// record (ms) and the record.
    pub idempotency: Option<(&'a str, u64, String)>,
    /// The activation notice.
    pub message: String,
    /// The epoch to record when the store has none (its first move since lineages exist).
    pub epoch: String,
}

/// What [`MovePointers`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MoveReply {
    /// Applied and announced.
    Moved,
    /// The idempotency key was used already: its record; nothing moved.
    Replay(String),
    /// An item's pointer is not what it expected: the id and the current version.
    Conflict { id: String, current: Option<String> },
    /// An item's payload is not stored (retired meanwhile).
    Missing { id: String, version: String },
    /// Another pointer, or an item's history, moved since validation.
    Changed,
}

/// Every pointer set at once, with the lineage of the state they make.
pub(crate) struct Seed<'a> {
    /// Each rule set's id, version and `seed`/`restore` history entry (JSON).
    pub items: Vec<(&'a str, &'a str, String)>,
    /// When it may write.
    pub when: SeedWhen,
    /// The lineage recorded with the pointers.
    pub lineage: Lineage,
    /// The activation notice.
    pub message: String,
}

/// The condition of a [`Seed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SeedWhen {
    /// No pointer and no lineage: a first deployment.
    Empty,
    /// The lineage is still the one read (`None`: none recorded): every pointer is replaced.
    Holds(Option<Lineage>),
}

/// A version to retire.
pub(crate) struct Retire<'a> {
    pub id: &'a str,
    pub version: &'a str,
    /// The retirement record (JSON).
    pub record: String,
}

/// What [`Retire`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RetireReply {
    /// Retired, now or before: the record kept.
    Retired(String),
    /// It is the active version.
    Active,
    /// It was active once.
    WasActive,
    /// It was never published.
    Missing,
}
