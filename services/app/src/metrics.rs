//! The service's OpenTelemetry metrics (names and attributes are a contract: docs/operate.md).
//!
//! The instruments exist only while metrics are exported (`protocol_server::telemetry::init` calls
//! [`install`]); otherwise [`get`] is `None` and the request path records nothing at all.
//!
//! | metric | instrument | attributes |
//! |---|---|---|
//! | `protocol.requests` | counter | `protocol`, `route`, `method`, `status` |
//! | `protocol.request.duration` | histogram (s) | the same |
//! | `protocol.decisions` | counter | `operation`, `treatment`, `decision` |
//! | `protocol.cds.feedback` | counter | `service`, `outcome` (`accepted`, `overridden`) |
//! | `protocol.ruleset.active_version` | gauge (1 per served rule set) | `ruleset.id`, `version` |
//! | `protocol.ruleset.age` | gauge (s) | |
//! | `protocol.redis.errors`, `protocol.redis.reconnects` | counters | |
//! | `protocol.ruleset.regressions` | counter: Redis held an older state than this replica verified, not adopted (alarm) | |
//! | `protocol.watch.streams` | up-down counter | |
//! | `protocol.decision_log.written`, `protocol.decision_log.dropped` | counters | |
//! | `protocol.decision_log.queued` | gauge | |

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

use crate::state::AppState;

/// The synchronous instruments of the request path.
pub struct Metrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    decisions: Counter<u64>,
    cds_feedback: Counter<u64>,
    meter: Meter,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Open watch streams of every kind (see [`WatchStreamGuard`]).
static WATCH_STREAMS: AtomicI64 = AtomicI64::new(0);

/// Creates the instruments on `meter` (once; later calls do nothing).
pub fn install(meter: &Meter) {
    let _ = METRICS.get_or_init(|| {
        meter
            .i64_observable_up_down_counter("protocol.watch.streams")
            .with_description(
                "Open watch streams (WatchDepthLimits, WatchRuleSets, REST rule-set events)",
            )
            .with_unit("{stream}")
            .with_callback(|o| o.observe(WATCH_STREAMS.load(Ordering::Relaxed), &[]))
            .build();
        Metrics {
            requests: meter
                .u64_counter("protocol.requests")
                .with_description("Requests answered, REST and gRPC")
                .with_unit("{request}")
                .build(),
            duration: meter
                .f64_histogram("protocol.request.duration")
                .with_description("Time to answer a request (until the response head)")
                .with_unit("s")
                .with_boundaries(vec![
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .build(),
            decisions: meter
                .u64_counter("protocol.decisions")
                .with_description("Engine decisions by treatment and outcome")
                .with_unit("{decision}")
                .build(),
            cds_feedback: meter
                .u64_counter("protocol.cds.feedback")
                .with_description("CDS Hooks feedback on cards, by outcome")
                .with_unit("{feedback}")
                .build(),
            meter: meter.clone(),
        }
    });
}

/// The instruments, when metrics are exported.
#[inline]
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

impl Metrics {
    /// One answered request. `protocol` is `http` or `grpc`; `route` the matched REST route or
    /// the gRPC method path; `method` the HTTP method; `status` the HTTP status (REST) or the
    /// gRPC status code (gRPC).
    pub fn request(
        &self,
        protocol: &'static str,
        route: &str,
        method: &'static str,
        status: i64,
        seconds: f64,
    ) {
        let attributes = [
            KeyValue::new("protocol", protocol),
            KeyValue::new("route", route.to_owned()),
            KeyValue::new("method", method),
            KeyValue::new("status", status),
        ];
        self.requests.add(1, &attributes);
        self.duration.record(seconds, &attributes);
    }

    /// One CDS Hooks feedback item: the service and the outcome (`accepted`, `overridden`).
    pub fn cds_feedback(&self, service: &'static str, outcome: &'static str) {
        self.cds_feedback.add(
            1,
            &[
                KeyValue::new("service", service),
                KeyValue::new("outcome", outcome),
            ],
        );
    }

    /// One decision of the engine: the operation, the treatment and the outcome, nothing else.
    pub fn decision(&self, operation: &'static str, treatment: &str, decision: &'static str) {
        self.decisions.add(
            1,
            &[
                KeyValue::new("operation", operation),
                KeyValue::new("treatment", treatment.to_owned()),
                KeyValue::new("decision", decision),
            ],
        );
    }
}

/// Registers the gauges that read the shared state: the served rule sets and their age, and the
/// Redis store's error and reconnect counts. Does nothing when metrics are not exported.
pub fn observe(state: &AppState) {
    let Some(m) = get() else { return };
    let catalog = state.catalog.clone();
    m.meter
        .u64_observable_gauge("protocol.ruleset.active_version")
        .with_description(
            "The rule sets served, one series per id at value 1, version as attribute",
        )
        .with_callback(move |o| {
            for r in catalog.load().refs() {
                o.observe(
                    1,
                    &[
                        KeyValue::new("ruleset.id", r.id),
                        KeyValue::new("version", r.version),
                    ],
                );
            }
        })
        .build();
    let health = state.health.clone();
    m.meter
        .i64_observable_gauge("protocol.ruleset.age")
        .with_description("Seconds since the rule sets were last confirmed current (staleness)")
        .with_unit("s")
        .with_callback(move |o| o.observe(health.age_secs(), &[]))
        .build();
    let health = state.health.clone();
    m.meter
        .u64_observable_counter("protocol.redis.errors")
        .with_description("Failed Redis operations of the rule-set store")
        .with_unit("{error}")
        .with_callback(move |o| o.observe(health.redis_errors.load(Ordering::Relaxed), &[]))
        .build();
    let health = state.health.clone();
    m.meter
        .u64_observable_counter("protocol.redis.reconnects")
        .with_description("Times Redis became reachable again after being unreachable")
        .with_unit("{reconnect}")
        .with_callback(move |o| o.observe(health.reconnects.load(Ordering::Relaxed), &[]))
        .build();
    let health = state.health.clone();
    m.meter
        .u64_observable_counter("protocol.ruleset.regressions")
        .with_description(
            "Times Redis held an older rule-set state than this replica verified (lost data, a stale seed); not adopted, put back",
        )
        .with_unit("{regression}")
        .with_callback(move |o| o.observe(health.regressions.load(Ordering::Relaxed), &[]))
        .build();
    let catalog = state.catalog.clone();
    m.meter
        .u64_observable_gauge("protocol.ruleset.refused")
        .with_description(
            "Active rule sets this replica refused (failed digest or validation); their clinics are answered fail-closed unless an earlier verified version is served",
        )
        .with_unit("{ruleset}")
        .with_callback(move |o| o.observe(catalog.load().refused.len() as u64, &[]))
        .build();
}

/// Registers the decision log's counters (written, dropped) and queue length. Does nothing when
/// metrics are not exported or the log is off.
pub fn observe_decision_log(log: Option<&crate::decision_log::DecisionLog>) {
    let (Some(m), Some(log)) = (get(), log) else {
        return;
    };
    let l = log.clone();
    m.meter
        .u64_observable_counter("protocol.decision_log.written")
        .with_description("Decisions written to the decision log")
        .with_unit("{decision}")
        .with_callback(move |o| o.observe(l.written(), &[]))
        .build();
    let l = log.clone();
    m.meter
        .u64_observable_counter("protocol.decision_log.dropped")
        .with_description(
            "Decisions answered but not logged: the decision-log queue was full (PostgreSQL slow or down)",
        )
        .with_unit("{decision}")
        .with_callback(move |o| o.observe(l.dropped(), &[]))
        .build();
    let l = log.clone();
    m.meter
        .u64_observable_gauge("protocol.decision_log.queued")
        .with_description("Decisions waiting to be written to the decision log")
        .with_unit("{decision}")
        .with_callback(move |o| o.observe(l.queued() as u64, &[]))
        .build();
}

/// Counts one open watch stream for as long as it lives (held by its budget permit).
#[derive(Debug)]
pub struct WatchStreamGuard(());

impl WatchStreamGuard {
    pub fn new() -> Self {
        WATCH_STREAMS.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Default for WatchStreamGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for WatchStreamGuard {
    fn drop(&mut self) {
        WATCH_STREAMS.fetch_sub(1, Ordering::Relaxed);
    }
}
