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
mod payload;
mod scripts;
pub mod sync;
mod types;

pub use client::RuleSetStore;
pub use connection::{RedisConfig, RedisSettingError, ReplicaAck};
pub use error::StoreError;
pub use guard::{Approval, Effect};
pub use payload::MAX_DOCUMENT_BYTES;
pub use sync::{SyncOptions, spawn_sync};
pub use types::{
    Activated, Activation, Expected, Fetched, Guard, HistoryEntry, MoveOutcome, Preview, Published,
    Retired, Rollback, StoreOptions, VersionInfo,
};

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
    let seed = settings.seed_empty_redis.then_some(&fallback);
    let catalog = load_at_start(&store, seed).await;
    Ok((catalog, Some(store)))
}

/// The start-up decision of [`connect_and_load`] for an open store. Never fails: whatever goes
/// wrong, the replica starts with what it could verify (possibly nothing) and says why.
pub async fn load_at_start(store: &RuleSetStore, seed: Option<&Catalog>) -> Catalog {
    let active = match store.active_documents().await {
        Ok(active) if active.is_empty() => match seed {
            Some(seed) => match store.seed_if_empty(seed).await {
                Ok(seeded) => {
                    if seeded {
                        tracing::warn!(
                            "redis had no active rule sets; seeded them from this replica's local ones (PROTOCOL_SEED_EMPTY_REDIS)"
                        );
                    }
                    // Another replica may have seeded first, with other content: serve what won.
                    store.active_documents().await
                }
                Err(e) => Err(e),
            },
            None => {
                tracing::error!(
                    "redis holds no active rule sets: nothing is served until they are published and activated (docs/operate.md)"
                );
                return Catalog::none();
            }
        },
        other => other,
    };
    match active {
        Ok(active) => {
            let catalog = Catalog::assemble(active, &Catalog::none());
            tracing::info!(rulesets = ?catalog.refs().iter().map(|r| format!("{}@{}", r.id, r.version)).collect::<Vec<_>>(), refused = ?catalog.refused.keys().collect::<Vec<_>>(), "serving the active rule sets from redis");
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
