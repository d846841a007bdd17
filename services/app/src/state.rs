//! State shared by the REST and gRPC adapters and the Redis store.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::config::StalePolicy;

/// Cheap to clone; every field is shared.
#[derive(Clone)]
pub struct AppState {
    /// The rule sets served now. Readers `load()` without locking; the store swaps it whole.
    pub catalog: Arc<ArcSwap<Catalog>>,
    /// Bumped after every swap, so `WatchDepthLimits` streams recompute their limits.
    pub generation: watch::Sender<u64>,
    pub health: Arc<StoreHealth>,
    /// The `WatchDepthLimits` budgets (per key and in total); start-up sets them from the settings.
    pub watch_limits: Arc<crate::app::watch_budget::WatchLimits>,
}

impl AppState {
    pub fn new(catalog: Catalog) -> Self {
        let (generation, _) = watch::channel(0);
        Self {
            catalog: Arc::new(ArcSwap::from_pointee(catalog)),
            generation,
            health: Arc::new(StoreHealth::default()),
            watch_limits: Arc::default(),
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
    /// Failed Redis operations of the sync task (connects, reconciles, subscription losses).
    pub redis_errors: AtomicU64,
    /// Times Redis became reachable again after being unreachable.
    pub reconnects: AtomicU64,
    /// Active rule sets read from Redis and refused (digest mismatch or failed validation).
    pub refused: AtomicU64,
    /// Times Redis held a state older than the one this replica verified (`store::lineage`),
    /// which it did not adopt: a Redis that lost data, or a stale seed. Alarm-worthy.
    pub regressions: AtomicU64,
    /// The last Redis error or refusal, for `/readyz` and logs; cleared on a good sync.
    pub last_error: Mutex<Option<String>>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self {
            redis_configured: AtomicBool::new(false),
            redis_up: AtomicBool::new(false),
            last_sync_unix: AtomicI64::new(now_unix()),
            redis_errors: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            regressions: AtomicU64::new(0),
            last_error: Mutex::new(None),
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

    /// Past the maximum staleness: Redis is configured and the rule sets have not been confirmed
    /// current for longer than `max_staleness`. Without Redis the bundled rule sets are the truth
    /// and never stale.
    pub fn is_stale(&self, max_staleness: Duration) -> bool {
        self.redis_configured.load(Ordering::Relaxed)
            && u64::try_from(self.age_secs()).unwrap_or(0) > max_staleness.as_secs()
    }

    /// True when decisions must be refused (503 / UNAVAILABLE): the `fail-closed` policy is chosen
    /// and the rule sets are past the maximum staleness. With the default `serve` policy, never:
    /// the last good rule sets keep being served and `/readyz` reports their age. The one place
    /// this rule lives (the door asks it for every client decision).
    pub fn refuses_decisions(&self, policy: StalePolicy, max_staleness: Duration) -> bool {
        policy == StalePolicy::FailClosed && self.is_stale(max_staleness)
    }

    /// The last Redis error or refusal, if the last sync did not succeed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}
