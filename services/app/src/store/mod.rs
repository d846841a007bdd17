//! Rule-set publishing and distribution through Redis (docs/design.md §6).
//!
//! Redis is the shared store and the distribution channel, never a dependency of the request path:
//! published versions are immutable keys (`SET NX`), the active version of each rule set is a
//! pointer moved atomically by a compare-and-set script, a pub/sub message tells every replica to
//! swap, and a periodic reconcile catches what a replica missed. A replica that cannot reach Redis
//! keeps serving its last good catalog and says so through [`crate::state::StoreHealth`]; a payload
//! that fails its digest or validation is refused and the last good catalog kept.
//!
//! - [`keys`]: key names (one Redis Cluster hash tag for all of them).
//! - [`RuleSetStore`]: publish, list, fetch, activate, roll back, load the active catalog, seed.
//! - [`sync`]: the per-replica task that keeps the served catalog current ([`spawn_sync`]).
//! - [`connect_and_load`]: what a replica serves at start.

mod backend;
mod client;
mod connection;
mod error;
pub mod guard;
mod history;
pub mod keys;
pub mod lineage;
mod payload;
mod scripts;
pub mod sync;
mod types;

pub use backend::ActiveState;
pub use client::{ActiveDocuments, RuleSetStore};
pub use connection::{RedisConfig, RedisSettingError, ReplicaAck};
pub use error::StoreError;
pub use guard::{Approval, Effect};
pub use lineage::Lineage;
pub use payload::MAX_DOCUMENT_BYTES;
pub use sync::{SyncOptions, spawn_sync};
pub use types::{
    Activated, Activation, Expected, Fetched, Guard, HistoryEntry, MoveOutcome, Preview, Published,
    Retired, Rollback, StoreOptions, VersionInfo,
};

use std::time::Duration;

use crate::catalog::Catalog;
use crate::config::Settings;

/// The catalog a replica starts with, and the store when Redis is configured.
///
/// - No `redis_url` and no sentinels: `fallback` (the bundled or directory rule sets), no store.
/// - Redis configured: only what it verifies from Redis, one rule set at a time
///   ([`Catalog::assemble`]): a refused rule set's clinic is answered fail-closed, the others
///   as usual. Never `fallback`, which is not what Redis activated.
/// - Redis down at start: nothing ([`Catalog::none`], not ready); the sync task loads it when
///   Redis answers.
/// - Redis up and empty: seeded from `fallback` only with `seed_empty_redis` (a first
///   deployment; one replica wins when several start together), then what Redis holds is served;
///   without it, nothing, and the alarm is raised (an empty Redis may be one that lost its data:
///   seeding it from bundled rule sets would roll every clinic back).
///
/// Fails only for Redis settings that cannot work (a malformed `redis_url`, an unreadable CA
/// file, ...: see [`RedisConfig::from_settings`]), a configuration error worth stopping for.
pub async fn connect_and_load(
    settings: &Settings,
    fallback: Catalog,
) -> Result<(Catalog, Option<RuleSetStore>), StoreError> {
    let config = RedisConfig::from_settings(settings).map_err(|e| {
        StoreError::Unavailable(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "invalid redis setting",
            e.to_string(),
        )))
    })?;
    let Some(config) = config else {
        return Ok((fallback, None));
    };
    let options = StoreOptions {
        single_person_approval: settings.single_person_approval,
        ..StoreOptions::default()
    };
    let store = RuleSetStore::open_config(&config, options)?;
    let seed = settings
        .seed_empty_redis
        .then(|| (&fallback, Duration::from_secs(settings.seed_grace_secs)));
    let catalog = load_at_start(&store, seed).await;
    Ok((catalog, Some(store)))
}

/// The start-up decision of [`connect_and_load`] for an open store. Never fails: whatever goes
/// wrong, the replica starts with what it could verify (possibly nothing) and says why. `seed`:
/// the local rule sets to seed an empty Redis with, after a grace ([`seed_after_grace`]).
pub async fn load_at_start(store: &RuleSetStore, seed: Option<(&Catalog, Duration)>) -> Catalog {
    let active = match store.active_documents().await {
        Ok(active) if active.entries.is_empty() => match seed {
            Some((seed, grace)) => seed_after_grace(store, seed, grace).await,
            None => Ok(active),
        },
        other => other,
    };
    match active {
        Ok(active) if active.entries.is_empty() => {
            tracing::error!(
                "redis holds no active rule sets: nothing is served until they are published and activated (docs/operate.md)"
            );
            Catalog::none()
        }
        Ok(active) => {
            let catalog = Catalog::from_redis(active, &Catalog::none());
            tracing::info!(rulesets = ?catalog.refs().iter().map(|r| format!("{}@{}", r.id, r.version)).collect::<Vec<_>>(), refused = ?catalog.refused.keys().collect::<Vec<_>>(), lineage = %catalog.lineage.as_ref().map_or("none".into(), Lineage::describe), "serving the active rule sets from redis");
            for refusal in catalog.refused.values() {
                tracing::error!(id = %refusal.id, version = %refusal.version, reason = %refusal.reason, "active rule set refused; its clinic is answered fail-closed");
            }
            catalog
        }
        Err(e) => {
            tracing::warn!(error = %e, "redis unavailable at start; nothing is served until its rule sets are read (retrying in the background)");
            Catalog::none()
        }
    }
}

/// Seeds an empty Redis with `seed` (a first deployment), but only once it has stayed empty for
/// `grace`. A Redis found empty may be one that lost its data while other replicas still serve
/// what they verified from it: they put it back within a reconcile (`store::sync`), and what
/// they put back is what this replica then serves. Seeding at once would race them with
/// bundled rule sets (older than what clinics were served). A Redis that records a lineage
/// but no pointer is never seeded (the alarm: someone removed the pointers).
async fn seed_after_grace(
    store: &RuleSetStore,
    seed: &Catalog,
    grace: Duration,
) -> Result<ActiveDocuments, StoreError> {
    let deadline = tokio::time::Instant::now() + grace;
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    loop {
        poll.tick().await;
        let active = store.active_documents().await?;
        if !active.entries.is_empty() || active.lineage.is_some() {
            return Ok(active);
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    if store.seed_if_empty(seed).await? {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "redis had no active rule sets and stayed empty through the grace; seeded them from this replica's local ones (PROTOCOL_SEED_EMPTY_REDIS): a first deployment"
        );
    }
    // Another replica may have seeded (or restored) first, with other content: serve what won.
    store.active_documents().await
}
