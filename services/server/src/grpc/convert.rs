//! Conversions between the protobuf messages and the engine's types.
//!
//! Requests become the very engine requests REST deserializes into, so both protocols are judged
//! by the same code; dates (by the engine's one strict `YYYY-MM-DD` parser) and facts are read
//! here with the REST field paths (`date`, `history[1].date`, `facts.fitzpatrick`) so a gRPC client
//! sees the same field names in its `BadRequest` violations. A required `history` left unset and a
//! fact value with no kind are refused here; a fact given twice never reaches this module (the
//! codec refuses it while decoding, see `duplicate_facts`). Answers carry the same information as the REST JSON: enum-like values
//! keep their REST spelling (`require_review`, `IFU`, `precaution:<rule>`), except the decision,
//! which is a protobuf enum.

use crate::app::{Calendar, CalendarSlot, Decided, SlotResult, depth_etag, violations_summary};
use jiff::civil::Date;
use prost_types::value::Kind;
use protocol_engine::{
    AnswerRef, Catalogue, Coding, ContraindicationReport, ContraindicationRequest, Decision,
    DepthLimits, DepthLimitsRequest, DepthMm, Eligibility, EligibilityParts, EligibilityRequest,
    FactList, Facts, FieldViolation, HistoryEntry, NamedInfo, Node, Plan, PlanRequest, PlanStatus,
    PrecautionInfo, ReadEligibility, Reason, RequestError, RuleExplanation, RuleSet, RuleSetRef,
    SessionMinutes, SourceRef, TreatmentInfo, TreatmentList, TreatmentOutcome, Truth,
    wire::{parse_strict_date, parse_unique_json},
};
use serde::Serialize;

use super::pb;

/// Collects field violations while converting a request.
#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn push(&mut self, field: String, message: impl Into<String>) {
        self.0.push(FieldViolation {
            field,
            message: message.into(),
        });
    }

    /// A date on the wire: exactly `YYYY-MM-DD`, by the engine's one strict parser (as in REST).
    fn date(&mut self, field: &str, text: &str) -> Option<Date> {
        match parse_strict_date(text) {
            Ok(d) => Some(d),
            Err(message) => {
                self.push(field.to_owned(), message);
                None
            }
        }
    }

    fn history(&mut self, field: &str, entries: Vec<pb::HistoryEntry>) -> Vec<HistoryEntry> {
        entries
            .into_iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let date = self.date(&format!("{field}[{i}].date"), &h.date)?;
                Some(HistoryEntry {
                    procedure: h.procedure,
                    date,
                })
            })
            .collect()
    }

    /// A history the request must carry: unset is refused, never read as "no procedures".
    fn required_history(
        &mut self,
        field: &str,
        list: Option<pb::HistoryList>,
    ) -> Vec<HistoryEntry> {
        match list {
            Some(list) => self.history(field, list.entries),
            None => {
                self.push(
                    field.to_owned(),
                    "required: send the client's past procedures, or an empty list for none",
                );
                Vec::new()
            }
        }
    }

    /// A FHIR QuestionnaireResponse sent as JSON text → the JSON REST clients send, read as
    /// strictly (a key repeated in any object is refused). Faults name `questionnaire_response`,
    /// the field every later fault of the response is named under, as in REST.
    fn questionnaire_response(&mut self, text: Option<String>) -> Option<serde_json::Value> {
        match parse_unique_json(&text?) {
            Ok(value) => Some(value),
            Err(message) => {
                self.push(
                    "questionnaire_response".to_owned(),
                    format!("not a JSON QuestionnaireResponse: {message}"),
                );
                None
            }
        }
    }

    /// `google.protobuf.Struct` → the facts map REST clients send as JSON. A value with no kind
    /// set is refused naming the fact: only an explicit `null_value` means "never".
    fn facts(&mut self, s: Option<prost_types::Struct>) -> Facts {
        let Some(s) = s else {
            return Facts::new();
        };
        let mut facts = Facts::new();
        for (id, value) in s.fields {
            match json_value(value) {
                Some(v) => {
                    facts.insert(id, v);
                }
                None => self.push(
                    format!("facts.{id}"),
                    "the value has no kind set: send null_value for a date fact answered \
                     \"never\", or leave the fact out if it is unknown",
                ),
            }
        }
        facts
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, RequestError> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(RequestError {
                violations: if self.0.is_empty() {
                    vec![FieldViolation {
                        field: String::new(),
                        message: "the request is incomplete".into(),
                    }]
                } else {
                    self.0
                },
            }),
        }
    }
}

/// A protobuf value as JSON; `None` when it (or a value inside it) has no kind set.
fn json_value(v: prost_types::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match v.kind? {
        Kind::NullValue(_) => Value::Null,
        Kind::BoolValue(b) => Value::Bool(b),
        Kind::StringValue(s) => Value::String(s),
        Kind::NumberValue(n) => number(n),
        Kind::StructValue(s) => Value::Object(
            s.fields
                .into_iter()
                .map(|(k, v)| Some((k, json_value(v)?)))
                .collect::<Option<_>>()?,
        ),
        Kind::ListValue(l) => Value::Array(
            l.values
                .into_iter()
                .map(json_value)
                .collect::<Option<_>>()?,
        ),
    })
}

/// Protobuf has only doubles: a whole number becomes a JSON integer (as a REST client would send
/// it); NaN and infinities stay visibly wrong (a string) rather than becoming `null`, which would
/// mean "never" for a date fact.
fn number(n: f64) -> serde_json::Value {
    match protocol_engine::wire::whole_number(n) {
        Some(whole) => serde_json::Value::from(whole),
        None => serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| serde_json::Value::String(n.to_string())),
    }
}

fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

/// An eligibility request read straight into `rs`'s fact slots, the `Struct` of facts without
/// `serde_json::Value`s in between; `None` for whatever [`eligibility_request`] and the general
/// path must answer (a fault to name, `explain`, a pinned version, a questionnaire response, an
/// unset history).
pub fn read_eligibility<'rs>(
    rs: &'rs RuleSet,
    p: &pb::CheckEligibilityRequest,
) -> Option<ReadEligibility<'rs>> {
    // A questionnaire response is converted to facts by the general path.
    if p.explain
        || p.ruleset_version.is_some()
        || p.ruleset_digest.is_some()
        || p.questionnaire_response_json.is_some()
    {
        return None;
    }
    let history = p.history.as_ref()?;
    let facts = p.facts.iter().flat_map(|s| &s.fields).map(|(id, v)| {
        let answer = match &v.kind {
            Some(Kind::NullValue(_)) => AnswerRef::Null,
            Some(Kind::BoolValue(b)) => AnswerRef::Bool(*b),
            Some(Kind::NumberValue(n)) => AnswerRef::Number(*n),
            Some(Kind::StringValue(s)) => AnswerRef::Text(s),
            Some(Kind::StructValue(_) | Kind::ListValue(_)) | None => AnswerRef::Other,
        };
        (id.as_str(), answer)
    });
    rs.read_eligibility_parts(EligibilityParts {
        treatment: &p.treatment,
        date: &p.date,
        facts,
        history: history
            .entries
            .iter()
            .map(|h| (h.procedure.as_str(), h.date.as_str())),
        zones: (!p.zones.is_empty()).then_some(p.zones.as_slice()),
        device: p.device.as_deref(),
        role: p.role.as_deref(),
        indication: p.indication.as_deref(),
    })
}

pub fn eligibility_request(
    p: pb::CheckEligibilityRequest,
) -> Result<EligibilityRequest, RequestError> {
    let mut v = Violations::default();
    let date = v.date("date", &p.date);
    let facts = v.facts(p.facts);
    let questionnaire_response = v.questionnaire_response(p.questionnaire_response_json);
    let history = v.required_history("history", p.history);
    let req = date.map(|date| EligibilityRequest {
        explain: p.explain,
        ruleset_version: p.ruleset_version,
        ruleset_digest: p.ruleset_digest,
        treatment: p.treatment,
        date,
        facts,
        questionnaire_response,
        history,
        zones: non_empty(p.zones),
        device: p.device,
        role: p.role,
        indication: p.indication,
    });
    v.finish(req)
}

/// A calendar: the client's facts and history read as in a single check; each slot's date stays
/// text, read per slot at the door, so a bad date refuses that slot only.
pub fn calendar_request(p: pb::CheckEligibilityCalendarRequest) -> Result<Calendar, RequestError> {
    let mut v = Violations::default();
    let facts = v.facts(p.facts);
    let questionnaire_response = v.questionnaire_response(p.questionnaire_response_json);
    let history = v.required_history("history", p.history);
    let slots = p
        .slots
        .into_iter()
        .map(|s| CalendarSlot {
            treatment: s.treatment,
            date: s.date,
            zones: non_empty(s.zones),
            device: s.device,
            role: s.role,
            indication: s.indication,
        })
        .collect();
    v.finish(Some(Calendar {
        facts,
        questionnaire_response,
        history,
        slots,
        ruleset_version: p.ruleset_version,
        ruleset_digest: p.ruleset_digest,
        explain: p.explain,
    }))
}

/// The answer for each slot of a calendar, in order.
pub fn calendar_results(results: Vec<SlotResult>) -> pb::CheckEligibilityCalendarResponse {
    use pb::calendar_slot_result::Result as Slot;
    pb::CheckEligibilityCalendarResponse {
        results: results
            .into_iter()
            .map(|r| pb::CalendarSlotResult {
                result: Some(match r {
                    SlotResult::Answered(d) => Slot::Eligibility(decided(&d)),
                    SlotResult::Refused(violations) => Slot::Problem(pb::CalendarSlotProblem {
                        detail: violations_summary(&violations),
                        reason: SlotResult::refusal(Vec::new()).reason().to_owned(),
                        field_violations: violations
                            .into_iter()
                            .map(|v| pb::FieldViolation {
                                field: v.field,
                                description: v.message,
                            })
                            .collect(),
                    }),
                }),
            })
            .collect(),
    }
}

pub fn contraindication_request(
    p: pb::CheckContraindicationsRequest,
) -> Result<ContraindicationRequest, RequestError> {
    let mut v = Violations::default();
    let date = p.date.as_deref().map(|d| v.date("date", d));
    let facts = v.facts(p.facts);
    let questionnaire_response = v.questionnaire_response(p.questionnaire_response_json);
    let history = p.history.map(|h| v.history("history", h.entries));
    let req = ContraindicationRequest {
        explain: p.explain,
        ruleset_version: p.ruleset_version,
        ruleset_digest: p.ruleset_digest,
        treatments: non_empty(p.treatments),
        facts,
        questionnaire_response,
        date: date.flatten(),
        history,
    };
    v.finish(Some(req))
}

/// A watch request as the request it watches, and the etag to resume from.
pub fn watch_depth_limits_request(
    p: pb::WatchDepthLimitsRequest,
) -> (pb::GetDepthLimitsRequest, Option<String>) {
    let request = pb::GetDepthLimitsRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: p.treatment,
        device: p.device,
        role: p.role,
        zone: p.zone,
        indication: p.indication,
        facts: p.facts,
        date: p.date,
        history: p.history,
        questionnaire_response_json: p.questionnaire_response_json,
    };
    (request, p.resume_etag)
}

pub fn depth_limits_request(
    p: pb::GetDepthLimitsRequest,
) -> Result<DepthLimitsRequest, RequestError> {
    let mut v = Violations::default();
    let date = p.date.as_deref().map(|d| v.date("date", d));
    let history = p.history.map(|h| v.history("history", h.entries));
    let facts = p.facts.map(|f| v.facts(Some(f)));
    let questionnaire_response = v.questionnaire_response(p.questionnaire_response_json);
    let req = DepthLimitsRequest {
        explain: p.explain,
        ruleset_version: p.ruleset_version,
        ruleset_digest: p.ruleset_digest,
        treatment: p.treatment,
        device: p.device,
        role: p.role,
        zone: p.zone,
        indication: p.indication,
        facts,
        questionnaire_response,
        date: date.flatten(),
        history,
    };
    v.finish(Some(req))
}

pub fn plan_request(p: pb::BuildPlanRequest) -> Result<PlanRequest, RequestError> {
    let mut v = Violations::default();
    let start_date = v.date("start_date", &p.start_date);
    let facts = v.facts(p.facts);
    let questionnaire_response = v.questionnaire_response(p.questionnaire_response_json);
    let history = v.required_history("history", p.history);
    let req = start_date.map(|start_date| PlanRequest {
        ruleset_version: p.ruleset_version,
        ruleset_digest: p.ruleset_digest,
        indication: p.indication,
        zones: p.zones,
        facts,
        questionnaire_response,
        history,
        start_date,
        role: p.role,
        device: p.device,
        treatment: p.treatment,
    });
    v.finish(req)
}

// ---- answers ---------------------------------------------------------------------------------

/// The REST spelling of a unit enum (`require_review`, `IFU`).
fn label<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub fn decision(d: Decision) -> i32 {
    let p = match d {
        Decision::Eligible => pb::Decision::Eligible,
        Decision::EligibleWithPrecautions => pb::Decision::EligibleWithPrecautions,
        Decision::NeedsReview => pb::Decision::NeedsReview,
        Decision::Incomplete => pb::Decision::Incomplete,
        Decision::Deferred => pb::Decision::Deferred,
        Decision::Contraindicated => pb::Decision::Contraindicated,
    };
    p as i32
}

pub fn ruleset(r: &RuleSetRef) -> pb::RuleSetRef {
    pb::RuleSetRef {
        id: r.id.clone(),
        version: r.version.clone(),
        digest: r.digest.clone(),
        base: r.base.as_deref().map(|b| Box::new(ruleset(b))),
    }
}

fn source(s: &SourceRef) -> pb::SourceRef {
    pb::SourceRef {
        id: s.id.clone(),
        title: s.title.clone(),
        url: s.url.clone(),
        grade: label(&s.grade),
    }
}

fn reason(r: &Reason) -> pb::Reason {
    let info = &r.info;
    pb::Reason {
        rule: info.rule.clone(),
        effect: label(&info.effect),
        severity: label(&info.severity),
        summary: info.summary.clone(),
        client_message: info.client_message.clone(),
        evidence: label(&info.evidence),
        sources: info.sources.iter().map(source).collect(),
        until: r.until.map(|d| d.to_string()),
    }
}

fn precaution(p: &PrecautionInfo) -> pb::Precaution {
    pb::Precaution {
        rule: p.rule.clone(),
        instructions: p.instructions.clone(),
        depth_cap_mm: p.depth_cap_mm.map(|d| d.mm()),
        zones: p.zones.clone().unwrap_or_default(),
    }
}

/// An eligibility answer; `decision_id` is empty inside a plan.
pub fn eligibility(e: &Eligibility, decision_id: String) -> pb::CheckEligibilityResponse {
    pb::CheckEligibilityResponse {
        treatment: e.treatment.clone(),
        date: e.date.to_string(),
        decision: decision(e.decision),
        bookable: e.bookable,
        earliest_date: e.earliest_date.map(|d| d.to_string()),
        reasons: e.reasons.iter().map(reason).collect(),
        missing_facts: e.missing_facts.clone(),
        precautions: e.precautions.iter().map(|p| precaution(p)).collect(),
        ruleset: Some(ruleset(&e.ruleset)),
        decision_id,
        missing_inputs: e.missing_inputs.clone(),
        explanation: Vec::new(),
    }
}

/// An eligibility answer with its explanation, if one was asked for.
pub fn decided(d: &Decided<Eligibility>) -> pb::CheckEligibilityResponse {
    let mut answer = eligibility(&d.answer, d.decision_id.clone());
    if let Some(explanation) = &d.explanation {
        answer.explanation = explanation.iter().map(explained_rule).collect();
    }
    answer
}

fn explained_rule(r: &RuleExplanation) -> pb::ExplainedRule {
    pb::ExplainedRule {
        rule: r.rule.clone(),
        effect: label(&r.effect),
        result: truth(r.result).into(),
        until: r.until.map(|d| d.to_string()),
        condition: Some(condition_node(&r.condition)),
    }
}

fn condition_node(n: &Node) -> pb::ConditionNode {
    pb::ConditionNode {
        test: n.test.clone(),
        result: truth(n.result).into(),
        used: n
            .used
            .iter()
            .map(|u| pb::UsedValue {
                input: u.input.clone(),
                value: u.value.clone(),
            })
            .collect(),
        parts: n.parts.iter().map(condition_node).collect(),
    }
}

fn truth(t: Truth) -> pb::Truth {
    match t {
        Truth::True => pb::Truth::True,
        Truth::False => pb::Truth::False,
        Truth::Unknown => pb::Truth::Unknown,
    }
}

fn outcome(o: &TreatmentOutcome) -> pb::TreatmentOutcome {
    pb::TreatmentOutcome {
        treatment: o.treatment.clone(),
        decision: decision(o.decision),
        bookable: o.bookable,
        reasons: o.reasons.iter().map(reason).collect(),
        missing_facts: o.missing_facts.clone(),
        precautions: o.precautions.iter().map(|p| precaution(p)).collect(),
        missing_inputs: o.missing_inputs.clone(),
        explanation: o.explanation.iter().flatten().map(explained_rule).collect(),
    }
}

pub fn contraindication_report(r: &ContraindicationReport) -> pb::CheckContraindicationsResponse {
    pb::CheckContraindicationsResponse {
        results: r.results.iter().map(outcome).collect(),
        missing_facts: r.missing_facts.clone(),
        not_evaluated: r.not_evaluated.clone(),
        ruleset: Some(ruleset(&r.ruleset)),
        missing_inputs: r.missing_inputs.clone(),
    }
}

/// Depth limits as the door answers them, with the etag of the request they answer: the plain
/// value (an HTTP entity tag's quotes belong to HTTP headers, not to a gRPC field).
pub fn depth_answer(limits: &DepthLimits, req: &DepthLimitsRequest) -> pb::GetDepthLimitsResponse {
    let mut out = depth_limits(limits);
    out.etag = plain_etag(&depth_etag(&limits.ruleset, req)).to_owned();
    out
}

/// An entity tag without its HTTP quotes (`"abc"` → `abc`); a plain value as it is.
pub fn plain_etag(tag: &str) -> &str {
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag)
}

pub fn depth_limits(d: &DepthLimits) -> pb::GetDepthLimitsResponse {
    pb::GetDepthLimitsResponse {
        treatment: d.treatment.clone(),
        device: d.device.clone(),
        role: d.role.clone(),
        indication: d.indication.clone(),
        zones: d
            .zones
            .iter()
            .map(|z| pb::ZoneLimit {
                zone: z.zone.clone(),
                max_depth_mm: z.max_depth_mm.mm(),
                bound_by: z.bound_by.iter().map(|b| b.label()).collect(),
                bounds: z
                    .bounds
                    .iter()
                    .flatten()
                    .map(|b| pb::ZoneBound {
                        bound: b.bound.label(),
                        max_depth_mm: b.max_depth_mm.mm(),
                    })
                    .collect(),
            })
            .collect(),
        client: d.client.as_ref().map(outcome),
        ruleset: Some(ruleset(&d.ruleset)),
        // Set by the caller, which knows the request (see `http::depth::depth_etag`).
        etag: String::new(),
    }
}

pub fn plan(p: &Plan) -> pb::BuildPlanResponse {
    let status = match p.status {
        PlanStatus::Scheduled => pb::PlanStatus::Scheduled,
        PlanStatus::NotBookable => pb::PlanStatus::NotBookable,
    };
    pb::BuildPlanResponse {
        status: status as i32,
        treatment: p.treatment.clone(),
        indication: p.indication.clone(),
        rationale: p.rationale.clone(),
        sessions: p.sessions,
        interval_days: p.interval_days,
        schedule: p
            .schedule
            .iter()
            .map(|s| pb::PlannedSession {
                number: s.number,
                date: s.date.to_string(),
                zones: s
                    .zones
                    .iter()
                    .map(|z| pb::ZoneDepth {
                        zone: z.zone.clone(),
                        depth_mm: z.depth_mm.mm(),
                        max_depth_mm: z.max_depth_mm.mm(),
                    })
                    .collect(),
            })
            .collect(),
        precare: p.precare.clone(),
        aftercare: Some(pb::Aftercare {
            duration_days: p.aftercare.duration_days,
            instructions: p.aftercare.instructions.clone(),
        }),
        downtime: p.downtime.clone(),
        results: p
            .results
            .iter()
            .map(|m| pb::DatedMilestone {
                milestone: m.milestone.clone(),
                date: m.date.to_string(),
                evidence: label(&m.evidence),
            })
            .collect(),
        first_session: Some(eligibility(&p.first_session, String::new())),
        ruleset: Some(ruleset(&p.ruleset)),
        session_minutes: p.session_minutes.as_ref().map(session_minutes),
        blocked_session: p.blocked_session.as_ref().map(|b| pb::BlockedSession {
            number: b.number,
            eligibility: Some(eligibility(&b.eligibility, String::new())),
        }),
    }
}

fn session_minutes(m: &SessionMinutes) -> pb::SessionMinutes {
    pb::SessionMinutes {
        min: m.min,
        max: m.max,
    }
}

pub fn treatment(t: &TreatmentInfo) -> pb::TreatmentInfo {
    pb::TreatmentInfo {
        code: t.code.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        needle: t.needle,
        setting: t.setting.clone(),
        roles: t.roles.clone(),
        best_for: t.best_for.clone(),
        devices: t.devices.clone(),
        min_interval_days: t.min_interval_days,
        sessions: t.sessions,
        max_sessions: t.max_sessions,
        interval_days: t.interval_days,
        zones: t
            .zones
            .iter()
            .map(|z| pb::ZoneCapInfo {
                zone: z.zone.clone(),
                max_depth_mm: z.max_depth_mm.mm(),
                start_depth_mm: z.start_depth_mm.mm(),
            })
            .collect(),
        downtime: t.downtime.clone(),
        contraindication_rules: t.contraindication_rules.clone(),
        session_minutes: t.session_minutes.as_ref().map(session_minutes),
        codes: codings(&t.codes),
    }
}

/// Standard codes, one to one.
fn codings(codes: &[Coding]) -> Vec<pb::Coding> {
    codes
        .iter()
        .map(|c| pb::Coding {
            system: c.system.clone(),
            code: c.code.clone(),
            display: c.display.clone(),
        })
        .collect()
}

pub fn treatment_list(l: &TreatmentList) -> pb::ListTreatmentsResponse {
    pb::ListTreatmentsResponse {
        treatments: l.treatments.iter().map(treatment).collect(),
        ruleset: Some(ruleset(&l.ruleset)),
    }
}

pub fn fact_list(l: &FactList) -> pb::ListFactsResponse {
    pb::ListFactsResponse {
        facts: l
            .facts
            .iter()
            .map(|f| pb::FactInfo {
                id: f.id.clone(),
                r#type: f.fact_type.clone(),
                question: f.question.clone(),
                min: f.min,
                max: f.max,
                values: f.values.clone(),
                null_means: f.null_means.clone(),
                labels: f.labels.clone().into_iter().collect(),
                codes: codings(&f.codes),
            })
            .collect(),
        ruleset: Some(ruleset(&l.ruleset)),
    }
}

pub fn catalogue(c: &Catalogue) -> pb::GetCatalogueResponse {
    let named = |list: &[NamedInfo]| {
        list.iter()
            .map(|n| pb::NamedItem {
                id: n.id.clone(),
                name: n.name.clone(),
                codes: codings(&n.codes),
            })
            .collect()
    };
    pb::GetCatalogueResponse {
        zones: named(&c.zones),
        procedures: named(&c.procedures),
        indications: named(&c.indications),
        roles: c
            .roles
            .iter()
            .map(|r| pb::RoleItem {
                id: r.id.clone(),
                name: r.name.clone(),
                max_depth_mm: r.max_depth_mm.map(DepthMm::mm),
            })
            .collect(),
        devices: c
            .devices
            .iter()
            .map(|d| pb::DeviceItem {
                id: d.id.clone(),
                name: d.name.clone(),
                treatments: d.treatments.clone(),
                max_depth_mm: d.max_depth_mm.map(DepthMm::mm),
                evaluated_max_depth_mm: d.evaluated_max_depth_mm.map(DepthMm::mm),
            })
            .collect(),
        ruleset: Some(ruleset(&c.ruleset)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_rest_json() {
        assert_eq!(number(2.0), serde_json::json!(2));
        assert_eq!(number(2.5), serde_json::json!(2.5));
        assert!(number(f64::NAN).is_string());
    }

    #[test]
    fn bad_dates_name_their_field() {
        let p = pb::CheckEligibilityRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            treatment: "microneedling".into(),
            date: "2026-02-30".into(),
            history: Some(pb::HistoryList {
                entries: vec![pb::HistoryEntry {
                    procedure: "ipl".into(),
                    date: "yesterday".into(),
                }],
            }),
            ..Default::default()
        };
        let e = eligibility_request(p).expect_err("invalid");
        let fields: Vec<&str> = e.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["date", "history[0].date"]);
    }
}
