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
//! - no active pointers at all (a Redis restarted without persistence), or a state whose lineage
//!   ranks below the one this replica verified (`store::lineage`: lost writes, a stale seed) →
//!   never adopted; the state this replica verified is put back, at its lineage, if it read it
//!   from Redis, so the fleet keeps what was activated; a replica that never read anything from
//!   Redis raises the alarm instead;
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

use super::lineage::{self, Lineage, Standing};
use super::{ActiveState, RuleSetStore, StoreError};
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
    /// ([`Catalog::assemble`]), and says what it refused. Never adopts a state whose lineage
    /// ranks below the one this replica verified (`store::lineage`): it puts its own back.
    async fn reconcile(&self, trigger: &'static str) {
        let mut memo = self.memo.lock().await;
        let held = match self.store.active_state().await {
            Ok(held) => held,
            Err(e) => return self.redis_down(&e),
        };
        self.redis_up();
        let current = self.state.catalog.load_full();
        if held.pointers.is_empty() || self.behind(&current, held.lineage.as_ref()) {
            return self.put_back(&current, held, &mut memo).await;
        }
        if current.origin == Origin::Redis
            && current.refused.is_empty()
            && current.lineage == held.lineage
            && served_versions(&current) == held.pointers
        {
            self.confirmed(&mut memo);
            return;
        }
        let active = match self.store.active_documents().await {
            Ok(active) => active,
            Err(e) => return self.redis_down(&e),
        };
        if active.entries.is_empty() || self.behind(&current, active.lineage.as_ref()) {
            // It moved back between the two reads: the next reconcile puts it right.
            return;
        }
        let versions = describe(
            &active
                .entries
                .iter()
                .map(|(id, e)| (id.clone(), e.version.clone()))
                .collect(),
        );
        let catalog = Catalog::from_redis(active, &current);
        let refusals = catalog.refusals();
        let changed = catalog.refs() != current.refs()
            || catalog.refused != current.refused
            || catalog.lineage != current.lineage
            || current.origin != Origin::Redis;
        if changed {
            tracing::info!(
                trigger,
                versions = %versions,
                served = %describe(&served_versions(&catalog)),
                lineage = %catalog.lineage.as_ref().map_or("none".into(), Lineage::describe),
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

    /// Whether Redis's lineage `held` ranks below the one of the state this replica verified
    /// from Redis (a replica serving nothing from Redis verified nothing, and adopts anything).
    fn behind(&self, current: &Catalog, held: Option<&Lineage>) -> bool {
        let verified = (current.origin == Origin::Redis)
            .then_some(current.lineage.as_ref())
            .flatten();
        lineage::standing(verified, held) == Standing::Behind
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

    /// Redis answers but holds no active pointers, or a state older than the one this replica
    /// verified (a Redis restarted without persistence, a failover that lost writes, a replica
    /// that seeded a Redis which had lost its data). A replica serving what it read from Redis
    /// puts it back, at the lineage it verified (the fleet keeps what was activated; the others
    /// adopt it, since it ranks above what Redis held). One that never read anything from Redis
    /// must not: its local rule sets were never activated, and seeding them would roll every
    /// clinic back. That is the operator's alarm.
    async fn put_back(&self, current: &Catalog, held: ActiveState, memo: &mut Memo) {
        let emptied = held.pointers.is_empty();
        if current.origin != Origin::Redis || current.documents.is_empty() {
            return self.alarm(memo, "redis holds no active rule sets, and this replica has none it read from redis to put back: publish and activate them (docs/operate.md)".to_owned());
        }
        let ours = current.lineage.clone().unwrap_or_else(Lineage::first);
        if !emptied {
            self.state
                .health
                .regressions
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                held = %describe(&held.pointers),
                held_lineage = %held.lineage.as_ref().map_or("none".into(), Lineage::describe),
                served = %describe(&served_versions(current)),
                served_lineage = %ours.describe(),
                "redis holds an older rule-set state than this replica verified (lost writes, or a stale seed): not adopted; putting back the one served here"
            );
        }
        if !current.refused.is_empty() {
            // What is served for a refused rule set is not what Redis had active: putting it
            // back would move that clinic's pointer. Keep serving, and say so.
            return self.alarm(memo, format!(
                "redis holds an older or no rule-set state ({}), and this replica cannot put its own back while it refuses some of it: activate the versions to serve (docs/operate.md)",
                describe(&held.pointers)
            ));
        }
        match self.store.restore(current, held.lineage, ours).await {
            Ok(true) => {
                tracing::warn!(
                    versions = %describe(&served_versions(current)),
                    "put back the rule-set state this replica verified (redis had lost it or went back)"
                );
                self.confirmed(memo);
            }
            // Another replica wrote first: its notice (or the next reconcile) brings it here,
            // and it is judged like any state.
            Ok(false) => {}
            Err(StoreError::Unavailable(e)) => self.redis_down(&e),
            Err(e) => {
                tracing::error!(error = %e, "putting the rule-set state back into redis failed");
                self.set_last_error(Some(format!(
                    "putting the rule-set state back into redis failed: {e}"
                )));
            }
        }
    }

    /// A condition an operator must act on: logged once while it lasts, and in `/readyz`.
    fn alarm(&self, memo: &mut Memo, alarm: String) {
        if memo.last_refusal.as_deref() != Some(alarm.as_str()) {
            tracing::error!("{alarm}");
            memo.last_refusal = Some(alarm.clone());
        }
        self.set_last_error(Some(alarm));
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
