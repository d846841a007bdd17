//! Readiness: what `/readyz` answers and gRPC health follows. The door's, so the rule about who
//! may see which clinics (an admin key names the overlays, anyone else sees only the base) is
//! decided here, with the keys, not by an adapter.

use std::sync::atomic::Ordering;
use std::time::Duration;

use protocol_engine::RuleSetRef;
use serde::Serialize;

use super::App;
use crate::auth::{AuthError, Scope};
use crate::catalog::{Origin, Refusal};
use crate::config::StalePolicy;
use crate::context::Context;

impl App {
    /// Readiness as the sender of `credential` may see it: the clinic overlays named only for an
    /// admin key (or an open, loopback-only server), never for a request whose credential was
    /// refused (two `Authorization` headers): a probe is answered, never refused. `true` while
    /// the replica answers requests.
    pub fn readiness(&self, credential: Result<Option<&[u8]>, AuthError>) -> (bool, Readiness) {
        let view = match credential.map(|c| self.ctx.keys.authorize(c, Scope::Admin)) {
            Ok(Ok(caller)) if caller.has(Scope::Platform) => View::Platform,
            Ok(Ok(caller)) => caller.tenant.clone().map_or(View::Public, View::Clinic),
            _ => View::Public,
        };
        readiness(&self.ctx, &view)
    }
}

/// Who is looking at readiness: the rule sets and errors it names depend on it (issue 26: a
/// clinic's admin key listed every clinic and their errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// No admin key: the base rule sets only, overlays counted, errors not told.
    Public,
    /// A clinic's admin key: the bases and its own overlay, its own refusals.
    Clinic(String),
    /// A `platform` key (or an open server): everything.
    Platform,
}

impl View {
    /// Whether rule set `id` (an overlay when `overlay`) is named in this view.
    fn names(&self, id: &str, overlay: bool) -> bool {
        match self {
            View::Platform => true,
            View::Clinic(t) => !overlay || t == id,
            View::Public => !overlay,
        }
    }
}

/// What `/readyz` reports.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`; `degraded` when Redis is configured but unreachable, or some active rule sets
    /// were refused (listed in `refused`); `stale` when the rule sets have not been confirmed
    /// current for longer than the maximum staleness; `not_loaded` when Redis is configured and
    /// nothing has been read from it yet.
    pub status: String,
    /// Where the rule sets came from: `bundled`, `directory`, `redis`, or `none` (Redis
    /// configured, nothing verified from it yet: every decision is refused).
    #[schema(value_type = String)]
    pub origin: Origin,
    /// The rule sets served: id, version, digest (and base, for clinic overlays). Without an
    /// admin key only the base rule sets are listed (clinic overlays are counted in `overlays`),
    /// so an unauthenticated caller learns no clinic's name.
    pub rulesets: Vec<RuleSetRef>,
    /// How many clinic overlays are served.
    pub overlays: usize,
    /// Active rule sets this replica refused (a payload failing its digest or validation), each
    /// with why and the version served instead (absent: that clinic's decisions are refused).
    /// With an admin key each names its rule set; without one, overlays are not named (`id` and
    /// `version` of clinic overlays read `redacted`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
    /// `not_configured`, `up` or `down`.
    pub redis: String,
    /// Seconds since the rule sets were last confirmed current (with Redis: the last successful
    /// reconcile; without: since start).
    pub ruleset_age_seconds: i64,
    /// `PROTOCOL_MAX_STALENESS_SECS`.
    pub max_staleness_seconds: u64,
    /// Past the maximum staleness (only ever with Redis configured).
    pub stale: bool,
    /// `serve` (keep answering from the last good rule sets) or `fail_closed` (refuse decisions
    /// with 503 once stale).
    pub stale_policy: String,
    /// `served`, or `refused` when the fail-closed policy applies now.
    pub decisions: String,
    /// The last Redis error or refused payload; absent after a good sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The decision log (`PROTOCOL_DECISION_LOG_URL`); absent when it is off. It never changes
    /// the status: decisions are answered whether or not they can be logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_log: Option<DecisionLogStatus>,
}

/// What `/readyz` says of the decision log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionLogStatus {
    /// `up`, or `down` when the last attempt to reach PostgreSQL failed (decisions are queued,
    /// then dropped and counted).
    pub status: String,
    /// Decisions answered but not logged since start (queue full).
    pub dropped: u64,
    /// Decisions written since start.
    pub written: u64,
    /// Decisions waiting to be written.
    pub queued: usize,
}

/// Readiness now: what `/readyz` answers, and what gRPC health follows (SERVING exactly when this
/// is `true`, 200), as `view` may see it.
pub fn readiness(ctx: &Context, view: &View) -> (bool, Readiness) {
    let catalog = ctx.catalog();
    let health = &ctx.state.health;
    let configured = health.redis_configured.load(Ordering::Relaxed);
    let up = health.redis_up.load(Ordering::Relaxed);
    let redis = match (configured, up) {
        (false, _) => "not_configured",
        (true, true) => "up",
        (true, false) => "down",
    };
    let age = health.age_secs();
    let stale = health.is_stale(Duration::from_secs(ctx.max_staleness_secs));
    let refused = ctx.check_fresh().is_err();
    let last_error = if !configured {
        None
    } else if *view == View::Platform {
        health.last_error()
    } else {
        // The message may name a clinic's rule set: its text is for admins and the log.
        health
            .last_error()
            .map(|_| "an error: details with a platform key and in the server log".to_owned())
    };
    let refusals = catalog.refusals();
    let status = if catalog.origin == Origin::None {
        "not_loaded"
    } else if stale {
        "stale"
    } else if configured && (!up || last_error.is_some() || !refusals.is_empty()) {
        "degraded"
    } else {
        "ready"
    };
    let all = catalog.refs();
    let overlays = all.iter().filter(|r| r.base.is_some()).count();
    let refs = all
        .into_iter()
        .filter(|r| view.names(&r.id, r.base.is_some()))
        .collect();
    let body = Readiness {
        status: status.to_owned(),
        origin: catalog.origin,
        rulesets: refs,
        overlays,
        refused: refusals
            .into_iter()
            .map(|r| {
                let overlay = r.id != catalog.base_id;
                if view.names(&r.id, overlay) {
                    r
                } else {
                    redact(r)
                }
            })
            .collect(),
        redis: redis.to_owned(),
        ruleset_age_seconds: age,
        max_staleness_seconds: ctx.max_staleness_secs,
        stale,
        stale_policy: match ctx.stale_policy {
            StalePolicy::Serve => "serve",
            StalePolicy::FailClosed => "fail_closed",
        }
        .to_owned(),
        decisions: if refused { "refused" } else { "served" }.to_owned(),
        last_error,
        decision_log: ctx.decision_log.as_ref().map(|log| DecisionLogStatus {
            status: if log.is_up() { "up" } else { "down" }.to_owned(),
            dropped: log.dropped(),
            written: log.written(),
            queued: log.queued(),
        }),
    };
    let ready = !(catalog.rulesets.is_empty() || ctx.is_shutting_down() || refused);
    (ready, body)
}

/// A refusal of a clinic overlay the viewer may not name.
fn redact(refusal: Refusal) -> Refusal {
    Refusal {
        id: "redacted".into(),
        version: "redacted".into(),
        reason: "details with an admin key and in the server log".into(),
        serving: refusal.serving.map(|_| "redacted".into()),
    }
}
