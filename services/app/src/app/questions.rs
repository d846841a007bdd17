//! The questions the door answers, one type each, and what each records about its decision.
//!
//! A [`Question`] names its scope and whether it is a decision (decisions are refused under the
//! fail-closed stale policy and get the `engine.decide` span and metric); the door does the rest.
//! Implementing it for a new request type is all a new operation needs.

use protocol_engine::{
    Catalogue, ContraindicationReport, ContraindicationRequest, Decision, DepthLimits,
    DepthLimitsRequest, Eligibility, EligibilityRequest, FactList, FieldViolation, Plan,
    PlanRequest, RequestError, RuleExplanation, RuleSet, RuleSetRef, TreatmentInfo, TreatmentList,
    TreatmentOutcome,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::Span;
use tracing::field::Empty;

use super::AppError;
use super::fhir::answers_once;
use super::operations::Operation;
use super::replay::{Pin, common_pin};
use crate::auth::{Caller, Scope};
use crate::context::{MAX_BATCH, new_decision_id, prefixed};
use crate::decision_log::{DecisionLog, Entry};
use crate::metrics;

/// Target of the `engine.decide` spans (level DEBUG: disabled, and so almost free, unless a
/// filter or a trace exporter asks for them).
pub const DECISION_TARGET: &str = "protocol_server::decision";

/// A question the door can answer.
pub trait Question {
    /// The operation it is ([`Operation`]: its name in spans, metrics and the decision log).
    const OPERATION: Operation;
    /// The scope a key needs to ask it.
    const SCOPE: Scope = Self::OPERATION.scope();
    /// A decision about a client or a device: traced and counted. Catalogue reads are not.
    const DECISION: bool = Self::OPERATION.is_decision();
    /// Refused when the rule sets are stale under the fail-closed policy: the decisions about a
    /// client (eligibility, contraindications, plans). Depth limits keep being served, so a
    /// device keeps working on its last limits (docs/design.md §6; docs/operate.md).
    const FRESH: bool = Self::DECISION;
    /// The answer.
    type Answer;

    /// The rule-set version the question pins (replay), if any ([`super::replay`]).
    fn pin(&self) -> Result<Option<Pin<'_>>, AppError> {
        Ok(None)
    }

    /// Asks the engine (inside the decision span).
    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError>;

    /// Records the decision on the span, the metric and the decision log.
    fn record(&self, _answer: &Self::Answer, _rec: &Recorder<'_>) {}
}

/// The `engine.decide` span of one question and the decisions it counts.
pub struct Recorder<'a> {
    span: Span,
    operation: &'static str,
    /// Borrowed from the rule set asked: nothing is copied on the request path (unless the
    /// decision log is on).
    ruleset: &'a RuleSetRef,
    /// Who asked, for the decision log.
    caller: &'a Caller,
    log: Option<&'a DecisionLog>,
}

impl<'a> Recorder<'a> {
    /// A disabled span unless `protocol_server::decision` is enabled at DEBUG (the OpenTelemetry
    /// layer enables it when traces are exported); only then are its fields evaluated.
    pub(super) fn open(
        operation: &'static str,
        rs: &'a RuleSet,
        caller: &'a Caller,
        log: Option<&'a DecisionLog>,
    ) -> Self {
        let meta = rs.meta();
        let span = tracing::debug_span!(
            target: DECISION_TARGET,
            "engine.decide",
            otel.kind = "internal",
            protocol.operation = operation,
            protocol.ruleset.id = meta.id.as_str(),
            protocol.ruleset.version = meta.version.as_str(),
            protocol.treatment = Empty,
            protocol.decision = Empty,
        );
        Self {
            span,
            operation,
            ruleset: meta,
            caller,
            log,
        }
    }

    pub(super) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        self.span.in_scope(f)
    }

    /// The treatment asked about, on the span.
    pub fn treatment(&self, treatment: &str) {
        self.span.record("protocol.treatment", treatment);
    }

    /// The strongest outcome, on the span.
    pub fn outcome(&self, decision: Decision) {
        self.span.record("protocol.decision", decision.as_str());
    }

    /// One decision: counted in the `protocol.decisions` metric and, when the decision log is
    /// on, queued for it with the request asked (the facts named in the masking setting dropped
    /// or hashed) and the answer given.
    /// Every decision of every operation comes here, so none escapes the log.
    ///
    /// `decision_id`: the id the answer carries (eligibility); the other operations' answers
    /// carry none, and their rows get a fresh one.
    pub fn decided(
        &self,
        treatment: &str,
        decision: Decision,
        decision_id: Option<&str>,
        request: &impl Serialize,
        answer: &impl Serialize,
    ) {
        if let Some(m) = metrics::get() {
            m.decision(self.operation, treatment, decision.as_str());
        }
        if let Some(log) = self.log {
            log.record(Entry {
                decision_id: decision_id.map_or_else(new_decision_id, str::to_owned),
                decided_at: jiff::Timestamp::now().to_string(),
                clinic: self.caller.tenant.clone(),
                key_id: self.caller.key_id.clone(),
                operation: self.operation,
                ruleset_id: self.ruleset.id.clone(),
                ruleset_version: self.ruleset.version.clone(),
                ruleset_digest: self.ruleset.digest.clone(),
                treatment: treatment.to_owned(),
                decision: decision.as_str(),
                request: serde_json::to_value(request).unwrap_or_default(),
                answer: serde_json::to_value(answer).unwrap_or_default(),
                masked_facts: Default::default(),
            });
        }
    }

    /// An identified decision, for audit trails: its id with the rule set it came from (never
    /// the facts), at DEBUG on the decision target.
    pub fn identified(&self, decision_id: &str, treatment: &str, decision: Decision) {
        tracing::debug!(
            target: DECISION_TARGET,
            decision_id,
            protocol.operation = self.operation,
            protocol.ruleset.id = self.ruleset.id.as_str(),
            protocol.ruleset.version = self.ruleset.version.as_str(),
            protocol.treatment = treatment,
            protocol.decision = decision.as_str(),
            "decided"
        );
    }
}

/// An eligibility answer with its decision id (UUID v7, time-ordered), given at the door since
/// the engine is pure and has no notion of identity or time.
#[derive(Debug, Clone)]
pub struct Decided<T> {
    pub answer: T,
    pub decision_id: String,
    /// With `explain: true`: each rule's condition tree (engine explain mode). Never recorded:
    /// [`Question::record`] and the decision log read only the answer and its id.
    pub explanation: Option<Vec<RuleExplanation>>,
}

/// The explanation of an eligibility check when it asks for one (a second, explaining walk over
/// the same rules: the decision itself is made on the allocation-free path).
fn explained(
    rs: &RuleSet,
    req: &EligibilityRequest,
) -> Result<Option<Vec<RuleExplanation>>, AppError> {
    Ok(if req.explain {
        Some(rs.explain_eligibility(req)?)
    } else {
        None
    })
}

pub fn record_eligibility(request: &impl Serialize, d: &Decided<Eligibility>, rec: &Recorder<'_>) {
    let e = &d.answer;
    rec.decided(&e.treatment, e.decision, Some(&d.decision_id), request, &e);
    rec.identified(&d.decision_id, &e.treatment, e.decision);
}

impl Question for EligibilityRequest {
    const OPERATION: Operation = Operation::Eligibility;
    type Answer = Decided<Eligibility>;

    fn pin(&self) -> Result<Option<Pin<'_>>, AppError> {
        Ok(Pin::of(&self.ruleset_version, &self.ruleset_digest))
    }

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        answers_once("", &self.facts, self.questionnaire_response.as_ref())?;
        Ok(Decided {
            answer: rs.eligibility(self)?,
            decision_id: new_decision_id(),
            explanation: explained(rs, self)?,
        })
    }

    fn record(&self, d: &Self::Answer, rec: &Recorder<'_>) {
        rec.treatment(&d.answer.treatment);
        rec.outcome(d.answer.decision);
        record_eligibility(self, d, rec);
    }
}

/// Up to [`MAX_BATCH`] eligibility checks (a booking calendar): every one answered or, when any
/// is invalid, every field at fault named as `checks[i].field`.
pub struct Batch(pub Vec<EligibilityRequest>);

/// The door's one cap on the checks a single call asks for, whatever carries them (a batch's
/// `checks`, a calendar's `slots`, a CDS call's appointments): more than [`MAX_BATCH`] is
/// refused naming `field`, before any is read.
pub fn check_count(field: &str, len: usize, what: &str) -> Result<(), AppError> {
    if len > MAX_BATCH {
        return Err(
            RequestError::field(field, format!("at most {MAX_BATCH} {what}, got {len}")).into(),
        );
    }
    Ok(())
}

impl Batch {
    /// Refuses more than [`MAX_BATCH`] checks naming `checks` (before any is read).
    pub fn check_size(len: usize) -> Result<(), AppError> {
        check_count("checks", len, "checks per batch")
    }
}

impl Question for Batch {
    const OPERATION: Operation = Operation::Eligibility;
    type Answer = Vec<Decided<Eligibility>>;

    /// Every check pins the same version, or none does.
    fn pin(&self) -> Result<Option<Pin<'_>>, AppError> {
        common_pin(
            self.0
                .iter()
                .map(|c| Pin::of(&c.ruleset_version, &c.ruleset_digest)),
            "checks",
        )
    }

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        Batch::check_size(self.0.len())?;
        for (i, check) in self.0.iter().enumerate() {
            answers_once(
                &format!("checks[{i}]"),
                &check.facts,
                check.questionnaire_response.as_ref(),
            )?;
        }
        let mut results = Vec::with_capacity(self.0.len());
        let mut violations = Vec::new();
        for (i, check) in self.0.iter().enumerate() {
            match rs.eligibility(check) {
                Ok(answer) => results.push(Decided {
                    answer,
                    decision_id: new_decision_id(),
                    explanation: explained(rs, check)?,
                }),
                Err(e) => violations.extend(e.violations.into_iter().map(|v| FieldViolation {
                    field: prefixed(&format!("checks[{i}]"), &v.field),
                    message: v.message,
                })),
            }
        }
        if violations.is_empty() {
            Ok(results)
        } else {
            Err(RequestError { violations }.into())
        }
    }

    fn record(&self, answers: &Self::Answer, rec: &Recorder<'_>) {
        if let Some(strongest) = answers.iter().map(|d| d.answer.decision).max() {
            rec.outcome(strongest);
        }
        for (check, d) in self.0.iter().zip(answers) {
            record_eligibility(check, d, rec);
        }
    }
}

impl Question for ContraindicationRequest {
    const OPERATION: Operation = Operation::Contraindications;
    type Answer = ContraindicationReport;

    fn pin(&self) -> Result<Option<Pin<'_>>, AppError> {
        Ok(Pin::of(&self.ruleset_version, &self.ruleset_digest))
    }

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        answers_once("", &self.facts, self.questionnaire_response.as_ref())?;
        Ok(rs.contraindications(self)?)
    }

    /// One decision per treatment checked; the span names the treatment when only one was
    /// checked, and the strongest outcome.
    fn record(&self, r: &Self::Answer, rec: &Recorder<'_>) {
        if let [only] = r.results.as_slice() {
            rec.treatment(&only.treatment);
        }
        if let Some(strongest) = r.results.iter().map(|o| o.decision).max() {
            rec.outcome(strongest);
        }
        for o in &r.results {
            // Explanations are never logged.
            if o.explanation.is_some() {
                let plain = TreatmentOutcome {
                    explanation: None,
                    ..o.clone()
                };
                rec.decided(&o.treatment, o.decision, None, self, &plain);
            } else {
                rec.decided(&o.treatment, o.decision, None, self, o);
            }
        }
    }
}

impl Question for DepthLimitsRequest {
    const OPERATION: Operation = Operation::DepthLimits;
    const FRESH: bool = false;
    /// The limits; their ETag ([`depth_etag`] of `limits.ruleset`) is computed by the adapters
    /// that send one (REST GET, gRPC), not for every answer.
    type Answer = DepthLimits;

    fn pin(&self) -> Result<Option<Pin<'_>>, AppError> {
        Ok(Pin::of(&self.ruleset_version, &self.ruleset_digest))
    }

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        if let Some(facts) = &self.facts {
            answers_once("", facts, self.questionnaire_response.as_ref())?;
        }
        Ok(rs.depth_limits(self)?)
    }

    /// A decision only when client facts came with it.
    fn record(&self, limits: &Self::Answer, rec: &Recorder<'_>) {
        rec.treatment(&limits.treatment);
        if let Some(client) = &limits.client {
            rec.outcome(client.decision);
            if self.explain {
                // Explanations (each cap's bounds) are never logged.
                let mut plain = limits.clone();
                plain.zones.iter_mut().for_each(|z| z.bounds = None);
                if let Some(c) = plain.client.as_mut() {
                    c.explanation = None;
                }
                rec.decided(&limits.treatment, client.decision, None, self, &plain);
            } else {
                rec.decided(&limits.treatment, client.decision, None, self, limits);
            }
        }
    }
}

impl Question for PlanRequest {
    const OPERATION: Operation = Operation::Plan;
    type Answer = Plan;

    fn pin(&self) -> Result<Option<Pin<'_>>, AppError> {
        Ok(Pin::of(&self.ruleset_version, &self.ruleset_digest))
    }

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        answers_once("", &self.facts, self.questionnaire_response.as_ref())?;
        Ok(rs.plan(self)?)
    }

    /// The decision is the first session's eligibility.
    fn record(&self, p: &Self::Answer, rec: &Recorder<'_>) {
        rec.treatment(&p.treatment);
        rec.outcome(p.first_session.decision);
        rec.decided(&p.treatment, p.first_session.decision, None, self, p);
    }
}

/// Every treatment of the caller's rule set.
pub struct TreatmentsQuestion;

impl Question for TreatmentsQuestion {
    const OPERATION: Operation = Operation::ListTreatments;
    type Answer = TreatmentList;

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        Ok(rs.treatments())
    }
}

/// One treatment by code; an unknown code is not found.
pub struct TreatmentQuestion(pub String);

impl Question for TreatmentQuestion {
    const OPERATION: Operation = Operation::GetTreatment;
    type Answer = TreatmentInfo;

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        rs.treatment(&self.0).ok_or_else(|| {
            AppError::NotFound(format!(
                "no treatment '{}'",
                self.0.chars().take(64).collect::<String>()
            ))
        })
    }
}

/// The catalogue of the caller's rule set: zones, procedures, indications, roles, devices.
pub struct CatalogueQuestion;

impl Question for CatalogueQuestion {
    const OPERATION: Operation = Operation::GetCatalogue;
    type Answer = Catalogue;

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        Ok(rs.catalogue())
    }
}

/// The declared facts of the caller's rule set (an intake form is built from them).
pub struct FactsQuestion;

impl Question for FactsQuestion {
    const OPERATION: Operation = Operation::ListFacts;
    type Answer = FactList;

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        Ok(rs.facts())
    }
}

/// The query part of a depth-limit request, as hashed into its ETag.
#[derive(Serialize)]
struct EtagQuery<'a> {
    treatment: &'a str,
    device: &'a str,
    role: &'a str,
    zone: Option<&'a str>,
    indication: Option<&'a str>,
    /// Absent unless set, so the tags of plain requests are what they always were.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    explain: bool,
}

/// The strong validator of depth limits, REST `ETag` and gRPC `DepthLimits.etag` alike: SHA-256
/// over the rule-set digest (and, for a clinic overlay, its base's), the query and the client's
/// inputs if any, first 128 bits. It changes whenever the rule set served to the caller changes
/// or the request does.
pub fn depth_etag(meta: &RuleSetRef, req: &DepthLimitsRequest) -> String {
    let mut h = ruleset_hasher(meta);
    let query = EtagQuery {
        treatment: &req.treatment,
        device: &req.device,
        role: &req.role,
        zone: req.zone.as_deref(),
        indication: req.indication.as_deref(),
        explain: req.explain,
    };
    h.update(serde_json::to_vec(&query).unwrap_or_default());
    if let Some(facts) = &req.facts {
        h.update(b"\nfacts:");
        h.update(serde_json::to_vec(facts).unwrap_or_default());
        h.update(b"\ndate:");
        h.update(serde_json::to_vec(&req.date).unwrap_or_default());
        h.update(b"\nhistory:");
        h.update(serde_json::to_vec(&req.history).unwrap_or_default());
    }
    quoted_tag(h)
}

/// The strong validator of a catalogue answer (`GET /v1/facts`, `/v1/treatments`,
/// `/v1/treatments/{code}`): a pure function of the rule set served, so a hash of its digest
/// (and its base's) and of the resource read (`facts`, `treatments`, `treatments/<code>`).
pub fn catalogue_etag(meta: &RuleSetRef, resource: &str) -> String {
    let mut h = ruleset_hasher(meta);
    h.update(b"catalogue:");
    h.update(resource.as_bytes());
    quoted_tag(h)
}

/// SHA-256 over the rule-set digest and, for a clinic overlay, its base's.
fn ruleset_hasher(meta: &RuleSetRef) -> Sha256 {
    let mut h = Sha256::new();
    h.update(meta.digest.as_bytes());
    if let Some(base) = meta.base.as_deref() {
        h.update(b"\nbase:");
        h.update(base.digest.as_bytes());
    }
    h.update(b"\n");
    h
}

/// The first 128 bits, hex, quoted (an entity tag).
fn quoted_tag(h: Sha256) -> String {
    format!("\"{}\"", const_hex::encode(&h.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> DepthLimitsRequest {
        DepthLimitsRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            treatment: "microneedling".into(),
            device: "dermapen_4".into(),
            role: "nurse".into(),
            zone: None,
            indication: None,
            facts: None,
            questionnaire_response: None,
            date: None,
            history: None,
        }
    }

    fn meta(digest: &str, base: Option<&str>) -> RuleSetRef {
        RuleSetRef {
            id: "x".into(),
            version: "1".into(),
            digest: digest.into(),
            base: base.map(|b| {
                Box::new(RuleSetRef {
                    id: "base".into(),
                    version: "1".into(),
                    digest: b.into(),
                    base: None,
                })
            }),
        }
    }

    #[test]
    fn etag_depends_on_digest_base_query_and_client() {
        let a = depth_etag(&meta("d1", None), &req());
        assert_eq!(a, depth_etag(&meta("d1", None), &req()));
        assert_ne!(a, depth_etag(&meta("d2", None), &req()));
        assert_ne!(
            depth_etag(&meta("d1", Some("b1")), &req()),
            depth_etag(&meta("d1", Some("b2")), &req())
        );
        let mut zone = req();
        zone.zone = Some("cheeks".into());
        assert_ne!(a, depth_etag(&meta("d1", None), &zone));
        let mut client = req();
        client.facts = Some(Default::default());
        assert_ne!(a, depth_etag(&meta("d1", None), &client));
        let mut dated = client.clone();
        dated.date = Some(jiff::civil::date(2026, 12, 1));
        assert_ne!(
            depth_etag(&meta("d1", None), &client),
            depth_etag(&meta("d1", None), &dated)
        );
    }
}
