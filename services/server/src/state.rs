//! State shared by the REST and gRPC adapters and the Redis store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::catalog::Catalog;

/// Cheap to clone; every field is shared.
#[derive(Clone)]
pub struct AppState {
    /// The rule sets served now. Readers `load()` without locking; the store swaps it whole.
    pub catalog: Arc<ArcSwap<Catalog>>,
    /// Bumped after every swap, so `WatchDepthLimits` streams recompute their limits.
    pub generation: watch::Sender<u64>,
    pub health: Arc<StoreHealth>,
}

impl AppState {
    pub fn new(catalog: Catalog) -> Self {
        let (generation, _) = watch::channel(0);
        Self {
            catalog: Arc::new(ArcSwap::from_pointee(catalog)),
            generation,
            health: Arc::new(StoreHealth::default()),
        }
    }

    /// Replaces the catalog and tells every watcher.
    pub fn swap(&self, catalog: Catalog) {
        self.catalog.store(Arc::new(catalog));
        self.health.mark_loaded();
        self.generation.send_modify(|g| *g += 1);
    }
}

/// What `/readyz` reports about rule-set distribution.
#[derive(Debug)]
pub struct StoreHealth {
    /// Redis configured at all.
    pub redis_configured: AtomicBool,
    /// Redis reachable at the last attempt.
    pub redis_up: AtomicBool,
    /// Unix seconds of the last successful load or reconcile (the rule set's freshness).
    pub last_sync_unix: AtomicI64,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self {
            redis_configured: AtomicBool::new(false),
            redis_up: AtomicBool::new(false),
            last_sync_unix: AtomicI64::new(now_unix()),
        }
    }
}

impl StoreHealth {
    pub fn mark_loaded(&self) {
        self.last_sync_unix.store(now_unix(), Ordering::Relaxed);
    }

    /// Seconds since the rule sets were last confirmed current.
    pub fn age_secs(&self) -> i64 {
        (now_unix() - self.last_sync_unix.load(Ordering::Relaxed)).max(0)
    }
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}
