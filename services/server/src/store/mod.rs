//! Rule-set publishing and distribution through Redis (DESIGN.md §6).
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

mod client;
mod error;
mod history;
pub mod keys;
mod payload;
mod scripts;
pub mod sync;
mod types;

pub use client::RuleSetStore;
pub use error::StoreError;
pub use payload::MAX_DOCUMENT_BYTES;
pub use sync::{SyncOptions, spawn_sync};
pub use types::{
    Activated, Activation, Expected, Fetched, HistoryEntry, Published, Retired, Rollback,
    StoreOptions, VersionInfo,
};

use crate::catalog::Catalog;
use crate::config::Settings;

/// The catalog a replica starts with, and the store when Redis is configured.
///
/// - No `redis_url`: `fallback` (the bundled or directory rule sets), no store.
/// - Redis down: `fallback`, with the store; the sync task keeps trying and swaps when it can.
/// - Redis up and empty: seeds Redis from `fallback` (one replica wins when several start
///   together), then serves what Redis holds.
/// - Redis up with active versions: serves them, or `fallback` with an error logged if they fail
///   their digest or validation.
///
/// Fails only for a malformed `redis_url`, a configuration error worth stopping for.
pub async fn connect_and_load(
    settings: &Settings,
    fallback: Catalog,
) -> Result<(Catalog, Option<RuleSetStore>), StoreError> {
    let Some(url) = settings.redis_url.as_deref() else {
        return Ok((fallback, None));
    };
    let store = RuleSetStore::open(url)?;
    let catalog = load_or_seed(&store, fallback).await;
    Ok((catalog, Some(store)))
}

/// The start-up decision of [`connect_and_load`] for an open store. Never fails: whatever goes
/// wrong, `fallback` is served and the reason logged.
pub async fn load_or_seed(store: &RuleSetStore, fallback: Catalog) -> Catalog {
    match store.load_active().await {
        Ok(catalog) => {
            tracing::info!(rulesets = ?catalog.refs().iter().map(|r| format!("{}@{}", r.id, r.version)).collect::<Vec<_>>(), "serving the active rule sets from redis");
            catalog
        }
        Err(StoreError::NoActive) => match store.seed_if_empty(&fallback).await {
            Ok(seeded) => {
                if seeded {
                    tracing::info!(
                        "redis had no active rule sets; seeded them from the bundled ones"
                    );
                }
                // Another replica may have seeded first, with other content: serve what won.
                match store.load_active().await {
                    Ok(catalog) => catalog,
                    Err(e) => {
                        tracing::error!(error = %e, "reading the seeded rule sets failed; serving the bundled ones");
                        fallback
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "seeding redis failed; serving the bundled rule sets");
                fallback
            }
        },
        Err(StoreError::Unavailable(e)) => {
            tracing::warn!(error = %e, "redis unavailable at start; serving the bundled rule sets and retrying in the background");
            fallback
        }
        Err(e) => {
            tracing::error!(error = %e, "the active rule sets in redis were refused; serving the bundled rule sets");
            fallback
        }
    }
}
