//! What every request handler needs, REST and gRPC alike: the shared rule sets, the API keys, and
//! the few settings that shape answers. Kept apart from [`AppState`] (which the Redis store also
//! owns) so the adapters depend on one small value.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::Guard;
use protocol_engine::RuleSet;
use tokio::sync::watch;

use crate::auth::{ApiKeys, Caller};
use crate::catalog::{Catalog, Unavailable};
use crate::config::StalePolicy;
use crate::decision_log::DecisionLog;
use crate::state::AppState;
use crate::store::RuleSetStore;

/// Most checks a batch, or slots a calendar, may carry (REST and gRPC `checks`, `slots`).
pub const MAX_BATCH: usize = 100;

/// Largest request body (REST) or message (gRPC) accepted, in bytes: sized so that a batch of
/// [`MAX_BATCH`] fully answered checks fits, even pretty-printed. `scripts/load-eligibility.json`
/// (29 facts, two past procedures, zones, device, role, indication) 100 times is 217,020 bytes of
/// JSON indented by two spaces, 148,412 compact and 133,700 as protobuf; the calendar form of the
/// same (the client once, 100 slots) is 25,907 and 9,652 (tests/tests/api/calendar.rs prints
/// them). The rule-set admin API has its own limit (1 MiB documents).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct Context {
    pub state: AppState,
    pub keys: Arc<ApiKeys>,
    /// Becomes `true` once the server is shutting down, so long-lived streams end cleanly.
    pub shutdown: watch::Receiver<bool>,
    /// Interval of heartbeats on idle `WatchDepthLimits` streams.
    pub heartbeat: Duration,
    /// Rule-set age past which `/readyz` reports the rule sets as stale.
    pub max_staleness_secs: u64,
    /// What happens past `max_staleness_secs`: keep serving (default) or refuse decisions.
    pub stale_policy: StalePolicy,
    /// The Redis store, for the rule-set admin API and a pinned version's first read (never
    /// the path of an unpinned request); `None` without
    /// `PROTOCOL_REDIS_URL`.
    pub store: Option<Arc<RuleSetStore>>,
    /// The decision log's queue; `None` without `PROTOCOL_DECISION_LOG_URL`.
    pub decision_log: Option<DecisionLog>,
}

/// Decisions are refused: the `fail-closed` stale policy applies and the rule sets have not been
/// confirmed current for longer than the maximum staleness.
#[derive(Debug, Clone, Copy)]
pub struct Stale {
    pub age_secs: i64,
    pub max_staleness_secs: u64,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the rule sets have not been confirmed current for {} s (maximum staleness {} s, \
             stale policy fail-closed): decisions are refused until Redis is reachable again",
            self.age_secs, self.max_staleness_secs
        )
    }
}

impl std::error::Error for Stale {}

impl Context {
    /// The rule sets served now. Lock-free; hold the guard only for the duration of a request.
    pub fn catalog(&self) -> Guard<Arc<Catalog>> {
        self.state.catalog.load()
    }

    /// The rule sets served now, held beyond an `.await` (a pinned question resolving its
    /// version); the request path uses [`Self::catalog`].
    pub fn catalog_full(&self) -> Arc<Catalog> {
        self.state.catalog.load_full()
    }

    /// The rule set a caller sees: its clinic's overlay, else the base; or why none may
    /// ([`Catalog::for_tenant`]).
    pub fn ruleset<'c>(catalog: &'c Catalog, caller: &Caller) -> Result<&'c RuleSet, Unavailable> {
        catalog.for_tenant(caller.tenant.as_deref())
    }

    /// `Err` when decisions must be refused under the `fail-closed` stale policy (eligibility,
    /// contraindications, plans). Two atomic loads: no lock, no Redis call.
    pub fn check_fresh(&self) -> Result<(), Stale> {
        if self.state.health.refuses_decisions(
            self.stale_policy,
            Duration::from_secs(self.max_staleness_secs),
        ) {
            Err(Stale {
                age_secs: self.state.health.age_secs(),
                max_staleness_secs: self.max_staleness_secs,
            })
        } else {
            Ok(())
        }
    }

    /// Whether the server is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// `prefix.field`, or `prefix` alone for a violation of the whole item.
pub fn prefixed(prefix: &str, field: &str) -> String {
    if field.is_empty() {
        prefix.to_owned()
    } else if field.starts_with('[') {
        format!("{prefix}{field}")
    } else {
        format!("{prefix}.{field}")
    }
}

/// A fresh decision id for an eligibility answer: UUID v7, so ids sort by time. The one source
/// of decision ids, on every path ([`write_decision_id`] is the same id without allocating).
pub fn new_decision_id() -> String {
    let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
    write_decision_id(&mut buf).to_owned()
}

/// Room for one decision id (a hyphenated UUID).
pub type DecisionIdBuf = [u8; uuid::fmt::Hyphenated::LENGTH];

/// A fresh decision id written into `buf` (the fast eligibility read: no allocation).
pub fn write_decision_id(buf: &mut DecisionIdBuf) -> &str {
    uuid::Uuid::now_v7().hyphenated().encode_lower(buf)
}
