//! Keeps a replica's catalog equal to the active rule sets in Redis.
//!
//! Two paths feed one `reconcile`: a pub/sub subscriber (the activation message arrives within
//! milliseconds) and a periodic reconcile every `reconcile_interval`, which catches a message missed
//! while the subscription was down and is what notices a Redis outage while nothing is published.
//! Reconciles run one at a time under a lock, so a slow read can never swap an older catalog over
//! a newer one.
//!
//! What a reconcile does with what it reads:
//! - same active versions as served → nothing to load; the freshness (`last_sync_unix`) is renewed,
//!   since "confirmed current" is what staleness measures (unlike OPA's status, which renewed its
//!   timestamps without any confirmation);
//! - other versions → each payload verified against its digest and compiled on its own
//!   ([`Catalog::assemble`]), then swapped in; a rule set that fails is refused (logged with id
//!   and version, counted in `health.refused`, listed by `/readyz`) and answered from the version
//!   this replica verified before, or fail-closed when it has none; the others are served as
//!   usual. Nothing is cached, so the next reconcile tries again and picks up a fixed version;
//! - no active pointers at all (a Redis restarted without persistence) → re-seeded from the
//!   catalog this replica serves if it read it from Redis, so the fleet keeps what was
//!   activated; a replica that never read anything from Redis raises the alarm instead;
//! - Redis unreachable → `health.redis_up` false, the catalog kept, the error counted; the
//!   connection manager reconnects by itself, and the subscriber re-subscribes with exponential
//!   backoff (`backon`), then reconciles at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{RuleSetStore, StoreError};
use crate::catalog::{Catalog, Origin, Refusal};
use crate::config::Settings;
use crate::state::AppState;

/// Timing of the sync task.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Periodic reconcile, also the keep-alive ping period of the subscription.
    pub reconcile_interval: Duration,
    /// Longest wait between re-subscription attempts while Redis is down.
    pub max_backoff: Duration,
}

impl SyncOptions {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            reconcile_interval: Duration::from_secs(settings.reconcile_interval_secs.max(1)),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Starts the sync task (subscriber and periodic reconcile) on the current runtime. It runs until
/// aborted; it never ends on its own, whatever Redis does.
pub fn spawn_sync(state: AppState, store: RuleSetStore, options: SyncOptions) -> JoinHandle<()> {
    state.health.redis_configured.store(true, Ordering::Relaxed);
    let syncer = Arc::new(Syncer {
        state,
        store,
        options,
        memo: tokio::sync::Mutex::new(Memo::default()),
    });
    tokio::spawn(async move {
        tokio::join!(syncer.clone().listen(), syncer.periodic());
    })
}

struct Syncer {
    state: AppState,
    store: RuleSetStore,
    options: SyncOptions,
    /// Held for the whole of a reconcile: one at a time.
    memo: tokio::sync::Mutex<Memo>,
}

/// What the last reconcile saw, to log a persisting condition once rather than every interval.
#[derive(Default)]
struct Memo {
    last_refusal: Option<String>,
}

impl Syncer {
    /// Subscribes (retrying with backoff while Redis is down), reconciles, then reconciles on
    /// every message until the subscription is lost; then over again.
    async fn listen(self: Arc<Self>) {
        loop {
            let backoff = ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(self.options.max_backoff)
                .with_jitter()
                .without_max_times();
            let subscribed = (|| self.store.subscribe())
                .retry(backoff)
                .notify(|e: &StoreError, after| {
                    tracing::debug!(error = %e, retry_in = ?after, "subscribing to rule-set activations failed");
                    self.redis_down(e);
                })
                .await;
            let Ok(mut notices) = subscribed else {
                continue; // unreachable: the backoff has no limit
            };
            tracing::debug!("subscribed to rule-set activations");
            // Whatever was activated while unsubscribed.
            self.reconcile("subscribed").await;

            let mut keepalive = tokio::time::interval(self.options.reconcile_interval);
            keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
            keepalive.tick().await;
            loop {
                tokio::select! {
                    more = notices.next() => {
                        if !more {
                            break;
                        }
                        // Coalesce a burst: one reconcile reads the latest state anyway.
                        notices.drain();
                        self.reconcile("activation message").await;
                    }
                    _ = keepalive.tick() => {
                        // A connection that vanished without a FIN never ends the stream: ping it.
                        if !notices.alive().await {
                            break;
                        }
                    }
                }
            }
            tracing::warn!("subscription to rule-set activations lost; re-subscribing");
            self.redis_down(&"pub/sub connection lost");
        }
    }

    async fn periodic(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.options.reconcile_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.reconcile("periodic").await;
        }
    }

    /// Brings the served catalog in line with Redis, one rule set at a time
    /// ([`Catalog::assemble`]), and says what it refused.
    async fn reconcile(&self, trigger: &'static str) {
        let mut memo = self.memo.lock().await;
        let active = match self.store.active_versions().await {
            Ok(active) => active,
            Err(e) => return self.redis_down(&e),
        };
        self.redis_up();
        let current = self.state.catalog.load_full();

        if active.is_empty() {
            return self.reseed(&current, &mut memo).await;
        }
        if current.origin == Origin::Redis
            && current.refused.is_empty()
            && served_versions(&current) == active
        {
            self.confirmed(&mut memo);
            return;
        }
        let entries = match self.store.active_documents().await {
            Ok(entries) => entries,
            Err(e) => return self.redis_down(&e),
        };
        let catalog = Catalog::assemble(entries, &current);
        let refusals = catalog.refusals();
        let changed = catalog.refs() != current.refs()
            || catalog.refused != current.refused
            || current.origin != Origin::Redis;
        if changed {
            tracing::info!(
                trigger,
                versions = %describe(&active),
                served = %describe(&served_versions(&catalog)),
                "serving rule sets activated in redis"
            );
            self.state.swap(catalog);
        }
        if refusals.is_empty() {
            self.confirmed(&mut memo);
        } else {
            self.refused(trigger, &refusals, &mut memo);
        }
    }

    /// Some active rule sets were refused: counted, logged once per new condition, reported.
    /// The rule sets served are confirmed current (their freshness renewed) unless a refused one
    /// is answered from an earlier version, which is not what Redis holds active.
    fn refused(&self, trigger: &'static str, refusals: &[Refusal], memo: &mut Memo) {
        let reason = refusals
            .iter()
            .map(|r| match &r.serving {
                Some(kept) => format!(
                    "active rule set {}@{} refused ({}); serving the last good {kept}",
                    r.id, r.version, r.reason
                ),
                None => format!(
                    "active rule set {}@{} refused ({}); its decisions are refused",
                    r.id, r.version, r.reason
                ),
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.state.health.refused.fetch_add(1, Ordering::Relaxed);
        if memo.last_refusal.as_deref() != Some(reason.as_str()) {
            tracing::error!(trigger, error = %reason, "active rule sets in redis refused");
            memo.last_refusal = Some(reason.clone());
        }
        if refusals.iter().all(|r| r.serving.is_none()) {
            self.state.health.mark_loaded();
        }
        self.set_last_error(Some(reason));
    }

    /// Redis answers but holds no active pointers. A replica serving what it read from Redis puts
    /// it back (Redis restarted without persistence: the fleet keeps what was activated). One
    /// that never read anything from Redis must not: its local rule sets were never activated,
    /// and seeding them would roll every clinic back. That is the operator's alarm.
    async fn reseed(&self, current: &Catalog, memo: &mut Memo) {
        if current.origin != Origin::Redis || current.documents.is_empty() {
            let alarm = "redis holds no active rule sets, and this replica has none it read from redis to put back: publish and activate them (docs/operate.md)".to_owned();
            if memo.last_refusal.as_deref() != Some(alarm.as_str()) {
                tracing::error!("{alarm}");
                memo.last_refusal = Some(alarm.clone());
            }
            return self.set_last_error(Some(alarm));
        }
        match self.store.seed_if_empty(current).await {
            Ok(seeded) => {
                if seeded {
                    tracing::warn!(
                        versions = %describe(&served_versions(current)),
                        "redis held no active rule sets (restarted without persistence?); put back the ones it had activated, served here"
                    );
                }
                // Either this replica's set is now active, or another replica's seed won and
                // its message (or the next reconcile) brings it here.
                if seeded {
                    self.state.health.mark_loaded();
                    self.set_last_error(None);
                }
            }
            Err(StoreError::Unavailable(e)) => self.redis_down(&e),
            Err(e) => {
                tracing::error!(error = %e, "re-seeding redis failed");
                self.set_last_error(Some(format!("re-seeding redis failed: {e}")));
            }
        }
    }

    fn confirmed(&self, memo: &mut Memo) {
        if memo.last_refusal.take().is_some() {
            tracing::info!("active rule sets in redis accepted again");
        }
        self.state.health.mark_loaded();
        self.set_last_error(None);
    }

    fn redis_up(&self) {
        let health = &self.state.health;
        if !health.redis_up.swap(true, Ordering::Relaxed) {
            // Not a reconnect when this is the first contact of a replica that started with Redis up.
            if health.redis_errors.load(Ordering::Relaxed) > 0 {
                health.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!("redis reachable again");
            }
        }
    }

    fn redis_down(&self, error: &dyn std::fmt::Display) {
        let health = &self.state.health;
        health.redis_errors.fetch_add(1, Ordering::Relaxed);
        if health.redis_up.swap(false, Ordering::Relaxed) {
            tracing::warn!(%error, "redis unreachable; serving the last good rule sets");
        } else {
            tracing::debug!(%error, "redis still unreachable");
        }
        self.set_last_error(Some(format!("redis unreachable: {error}")));
    }

    fn set_last_error(&self, error: Option<String>) {
        if let Ok(mut last) = self.state.health.last_error.lock() {
            *last = error;
        }
    }
}

/// id → version of what a catalog serves.
fn served_versions(catalog: &Catalog) -> BTreeMap<String, String> {
    catalog
        .rulesets
        .iter()
        .map(|(id, rs)| (id.clone(), rs.meta().version.clone()))
        .collect()
}

/// `base@2026.11.1, clinic-aurora@2026.11.2` for logs.
fn describe(versions: &BTreeMap<String, String>) -> String {
    versions
        .iter()
        .map(|(id, v)| format!("{id}@{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
