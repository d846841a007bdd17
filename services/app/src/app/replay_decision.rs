//! Replaying a logged decision (REST `POST /v1/decisions/{decision_id}:replay`, gRPC
//! `DecisionLogService.ReplayDecision`): the request the log kept is decided again, by default
//! by the very rule-set version that answered (pinned by version and digest), or by another
//! version of the caller's rule set, and the answer is compared with the logged one.
//!
//! - **Through the door's rules.** The `audit` scope and the tenant rule are those of reading a
//!   decision ([`App::decision`]: another clinic's id is not found); the version is resolved as
//!   any pinned question's ([`super::replay::resolve`]: the caller's own rule set only, other
//!   versions from the Redis store, compiled once into the bounded cache).
//! - **Masked facts are said, never guessed.** A fact the log dropped or hashed
//!   (`PROTOCOL_DECISION_LOG_MASK`) cannot be replayed: it is left out, so the replay treats it
//!   as unanswered, and the answer lists it in `masked_facts`.
//! - **Not a new decision.** A replay is not written to the decision log nor counted in the
//!   decision metric: the log stays one row per decision given to a caller. The server logs
//!   one line per replay (decision id, key, versions; never facts).

use std::collections::BTreeMap;

use protocol_engine::{
    ContraindicationRequest, Decision, DepthLimits, DepthLimitsRequest, EligibilityRequest,
    PlanRequest, RequestError, RuleSet, RuleSetRef, TreatmentOutcome,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::answer_diff::{AnswerChange, diff};
use super::operations::Operation;
use super::replay::{self, Pin, Served};
use super::{App, AppError};
use crate::auth::Caller;
use crate::context::Context;

/// What to replay against (REST body, gRPC request fields); both empty: the version that
/// answered.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayAgainst {
    /// Another published version of the caller's rule set to decide with (`GET
    /// /v1/rulesets/{id}/versions` lists them); absent: the version that answered.
    #[serde(default)]
    pub ruleset_version: Option<String>,
    /// That version by digest; with `ruleset_version`, both must name the same version.
    #[serde(default)]
    pub ruleset_digest: Option<String>,
}

/// One side of a replay: the rule set that decided, the outcome and the whole answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplaySide {
    /// The rule set that decided (the logged side names no `base`).
    pub ruleset: RuleSetRef,
    /// The outcome (`eligible`, `deferred`, ...).
    pub decision: String,
    /// The answer, in the REST shape of the operation (an eligibility answer, a contraindication
    /// outcome, depth limits, a plan).
    #[schema(value_type = Object)]
    pub answer: Value,
}

/// A logged decision decided again, and what changed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplayedDecision {
    #[schema(format = "uuid")]
    pub decision_id: String,
    /// `eligibility`, `contraindications`, `depth_limits` or `plan`.
    pub operation: String,
    pub treatment: String,
    /// The decision as logged.
    pub original: ReplaySide,
    /// The same request decided now.
    pub replayed: ReplaySide,
    /// Facts the log masked (`drop` or `hash`), by name: they could not be replayed and were
    /// treated as unanswered, so a difference may come from them.
    pub masked_facts: BTreeMap<String, String>,
    /// Whether any part of the answer differs (the rule sets aside).
    pub changed: bool,
    /// Each difference, in path order (docs/api.md, "Replay a logged decision").
    pub changes: Vec<AnswerChange>,
}

impl App {
    /// Decides a logged decision of the caller's clinic again and compares the answers.
    pub async fn replay_decision(
        &self,
        caller: &Caller,
        decision_id: &str,
        against: &ReplayAgainst,
    ) -> Result<ReplayedDecision, AppError> {
        let logged = self.decision(caller, decision_id).await?;
        let pin = match (&against.ruleset_version, &against.ruleset_digest) {
            (None, None) => Pin {
                version: Some(&logged.ruleset_version),
                digest: Some(&logged.ruleset_digest),
            },
            (version, digest) => Pin {
                version: version.as_deref(),
                digest: digest.as_deref(),
            },
        };
        let served = replay::resolve(&self.ctx, &self.pinned, caller, pin).await?;
        let rs = match &served {
            Served::Now(catalog) => Context::ruleset(catalog, caller)?,
            Served::Version(rs) => rs.as_ref(),
        };
        let request = unmasked(logged.request.clone(), &logged.masked_facts);
        let (decision, answer) = decide(&logged.operation, &logged.treatment, request, rs)
            .map_err(|e| refused(e, rs))?;
        let changes = diff(&logged.answer, &answer);
        tracing::info!(
            decision_id = logged.decision_id.as_str(),
            key_id = caller.key_id.as_deref().unwrap_or_default(),
            protocol.ruleset.id = rs.meta().id.as_str(),
            logged_version = logged.ruleset_version.as_str(),
            replayed_version = rs.meta().version.as_str(),
            changes = changes.len(),
            "decision replayed"
        );
        Ok(ReplayedDecision {
            original: ReplaySide {
                ruleset: RuleSetRef {
                    id: logged.ruleset_id,
                    version: logged.ruleset_version,
                    digest: logged.ruleset_digest,
                    base: None,
                },
                decision: logged.decision,
                answer: logged.answer,
            },
            replayed: ReplaySide {
                ruleset: rs.meta().clone(),
                decision: decision.as_str().to_owned(),
                answer,
            },
            decision_id: logged.decision_id,
            operation: logged.operation,
            treatment: logged.treatment,
            masked_facts: logged.masked_facts,
            changed: !changes.is_empty(),
            changes,
        })
    }
}

/// The logged request without the facts that were masked (a hashed value is no answer).
pub(super) fn unmasked(mut request: Value, masked: &BTreeMap<String, String>) -> Value {
    fn walk(v: &mut Value, masked: &BTreeMap<String, String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    match (k.as_str(), child) {
                        ("facts", Value::Object(facts)) => {
                            facts.retain(|name, _| !masked.contains_key(name));
                        }
                        (_, child) => walk(child, masked),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, masked)),
            _ => {}
        }
    }
    if !masked.is_empty() {
        walk(&mut request, masked);
    }
    request
}

/// Why a replay could not decide.
pub(super) enum Refusal {
    /// The engine refused the request (e.g. a treatment the other version does not have).
    Engine(RequestError),
    /// The logged row cannot be read back as its operation's request.
    Unreadable(String),
}

impl From<RequestError> for Refusal {
    fn from(e: RequestError) -> Self {
        Refusal::Engine(e)
    }
}

fn refused(e: Refusal, rs: &RuleSet) -> AppError {
    let meta = rs.meta();
    let message = match e {
        Refusal::Engine(e) => format!(
            "version '{}' of rule set '{}' refuses the logged request: {}",
            meta.version,
            meta.id,
            super::violations_summary(&e.violations)
        ),
        Refusal::Unreadable(why) => format!("the logged request cannot be read back: {why}"),
    };
    AppError::Contradiction {
        field: "ruleset_version".into(),
        message,
    }
}

fn read<T: DeserializeOwned>(request: Value) -> Result<T, Refusal> {
    serde_json::from_value(request).map_err(|e| Refusal::Unreadable(e.to_string()))
}

fn json(answer: &impl Serialize) -> Value {
    serde_json::to_value(answer).unwrap_or_default()
}

/// Decides the logged request of `operation` with `rs`: the outcome and the answer in the shape
/// the log keeps for that operation (without explanations, which are never logged).
pub(super) fn decide(
    operation: &str,
    treatment: &str,
    request: Value,
    rs: &RuleSet,
) -> Result<(Decision, Value), Refusal> {
    let op = Operation::from_name(operation)
        .ok_or_else(|| Refusal::Unreadable(format!("unknown operation '{operation}'")))?;
    // Exhaustive: an operation added to the registry must say here how it replays.
    match op {
        Operation::Eligibility => {
            let mut q: EligibilityRequest = read(request)?;
            q.explain = false;
            let e = rs.eligibility(&q)?;
            Ok((e.decision, json(&e)))
        }
        Operation::Contraindications => {
            let mut q: ContraindicationRequest = read(request)?;
            q.explain = false;
            q.treatments = Some(vec![treatment.to_owned()]);
            let report = rs.contraindications(&q)?;
            let outcome: TreatmentOutcome = report
                .results
                .into_iter()
                .find(|o| o.treatment == treatment)
                .ok_or_else(|| Refusal::Unreadable(format!("no outcome for '{treatment}'")))?;
            Ok((outcome.decision, json(&outcome)))
        }
        Operation::DepthLimits => {
            let mut q: DepthLimitsRequest = read(request)?;
            q.explain = false;
            let limits: DepthLimits = rs.depth_limits(&q)?;
            let decision = limits
                .client
                .as_ref()
                .map(|c| c.decision)
                .ok_or_else(|| Refusal::Unreadable("no client facts".into()))?;
            Ok((decision, json(&limits)))
        }
        Operation::Plan => {
            let q: PlanRequest = read(request)?;
            let plan = rs.plan(&q)?;
            Ok((plan.first_session.decision, json(&plan)))
        }
        Operation::ListTreatments
        | Operation::GetTreatment
        | Operation::GetCatalogue
        | Operation::ListFacts
        | Operation::GetQuestionnaire => Err(Refusal::Unreadable(format!(
            "'{operation}' is not a decision: nothing to replay"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masked_facts_are_left_out_at_any_depth() {
        let masked = BTreeMap::from([
            ("pregnant".to_owned(), "drop".to_owned()),
            ("date_of_birth".to_owned(), "hash".to_owned()),
        ]);
        let request = unmasked(
            json!({"facts": {"date_of_birth": "hmac-sha256:00", "fitzpatrick": 2}, "x": [{"facts": {"pregnant": true}}]}),
            &masked,
        );
        assert_eq!(
            request,
            json!({"facts": {"fitzpatrick": 2}, "x": [{"facts": {}}]})
        );
    }
}

/// Every decision of the registry, asked through the door's recording path, is logged in a form
/// replay decides again to the same outcome: an operation added to [`Operation`] without a way
/// to replay it fails here, naming it.
#[cfg(test)]
mod every_operation {
    use protocol_engine::{
        ContraindicationRequest, DepthLimitsRequest, EligibilityRequest, PlanRequest,
    };
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::super::questions::{Question, Recorder};
    use super::*;
    use crate::auth::Caller;
    use crate::catalog::Catalog;
    use crate::decision_log::{DecisionLog, Masking};

    /// Asks `request` as question `Q` for the base rule set, recording it in `log`.
    fn ask<Q: Question + DeserializeOwned>(rs: &RuleSet, log: &DecisionLog, request: Value) {
        let caller = Caller::open();
        let q: Q = serde_json::from_value(request).expect("a well-formed request");
        let rec = Recorder::open(Q::OPERATION.name(), rs, &caller, Some(log));
        let answer = q.ask(rs).expect("a valid request");
        q.record(&answer, &rec);
    }

    #[test]
    fn every_logged_operation_replays() {
        let catalog = Catalog::bundled().expect("bundled rule sets");
        let rs = &catalog.rulesets[catalog.base_id()];
        let facts = json!({"date_of_birth": "1990-05-14", "fitzpatrick": 2, "pregnant": false});
        for op in Operation::ALL.into_iter().filter(|o| o.is_decision()) {
            let (log, mut rx) = DecisionLog::capture(Masking::default());
            let common = json!({"date": "2026-12-01", "facts": facts, "history": []});
            let with = |extra: Value| {
                let mut body = common.clone();
                for (k, v) in extra.as_object().expect("object") {
                    body[k] = v.clone();
                }
                body
            };
            match op {
                Operation::Eligibility => {
                    ask::<EligibilityRequest>(rs, &log, with(json!({"treatment": "microneedling"})))
                }
                Operation::Contraindications => ask::<ContraindicationRequest>(
                    rs,
                    &log,
                    with(json!({"treatments": ["microneedling"]})),
                ),
                Operation::DepthLimits => ask::<DepthLimitsRequest>(
                    rs,
                    &log,
                    with(json!({"treatment": "microneedling", "device": "dermapen_4",
                        "role": "physician", "zone": "cheeks"})),
                ),
                Operation::Plan => ask::<PlanRequest>(
                    rs,
                    &log,
                    json!({"treatment": "microneedling", "indication": "acne_scars",
                        "zones": ["cheeks"], "start_date": "2026-12-01", "role": "physician", "device": "dermapen_4",
                        "facts": facts, "history": []}),
                ),
                Operation::ListTreatments
                | Operation::GetTreatment
                | Operation::GetCatalogue
                | Operation::ListFacts
                | Operation::GetQuestionnaire => unreachable!("not a decision"),
            }
            let entry = rx
                .try_recv()
                .unwrap_or_else(|_| panic!("{op:?} logs its decision"));
            assert_eq!(entry.operation, op.name());
            let replayed = decide(entry.operation, &entry.treatment, entry.request, rs);
            match replayed {
                Ok((decision, _)) => assert_eq!(decision.as_str(), entry.decision, "{op:?}"),
                Err(_) => panic!("{op:?}: a logged decision does not replay"),
            }
        }
    }
}
