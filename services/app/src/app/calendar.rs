//! A booking calendar: one client's facts and history once, up to [`crate::context::MAX_BATCH`] slots (a
//! treatment and a date each), every slot answered on its own.
//!
//! Unlike a batch, a calendar is not all or nothing: a slot that cannot be checked (an unknown
//! treatment, a date that does not exist, a device that does not go with the treatment) gets its
//! own refusal naming its fields (`slots[3].date`) and every other slot is still answered, so one
//! bad slot does not blank a booking screen. What every slot shares, the client's facts and
//! history, cannot be wrong for one slot only: a violation there refuses the whole calendar (as
//! does more than [`crate::context::MAX_BATCH`] slots), with the same field paths as a single check
//! (`facts.pregnant`, `history[0].procedure`).

use jiff::civil::Date;
use protocol_engine::wire::{parse_strict_date, unique_facts};
use protocol_engine::{
    Eligibility, EligibilityRequest, Facts, FieldViolation, HistoryEntry, RequestError,
    RuleExplanation, RuleSet,
};
use serde::{Deserialize, Serialize};

use super::AppError;
use super::operations::Operation;
use super::questions::{Decided, Question, Recorder, record_eligibility};
use super::replay::Pin;
use crate::context::{new_decision_id, prefixed};

/// One client's calendar (REST `POST /v1/eligibility:calendar`, gRPC `CheckEligibilityCalendar`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// The client's answers by fact id, for every slot (as in `POST /v1/eligibility`).
    #[serde(default, deserialize_with = "unique_facts")]
    #[schema(value_type = Object)]
    pub facts: Facts,
    /// The client's answers as a FHIR R4 QuestionnaireResponse, instead of `facts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub questionnaire_response: Option<serde_json::Value>,
    /// Past and booked procedures, for every slot; required: send `[]` for none.
    pub history: Vec<HistoryEntry>,
    /// At most 100 slots, answered in this order.
    pub slots: Vec<CalendarSlot>,
    /// Replay: answer every slot from this published version of the caller's rule set (an
    /// earlier answer's `ruleset.version`); unknown to the clinic: 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_version: Option<String>,
    /// Replay by digest (an earlier answer's `ruleset.digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_digest: Option<String>,
    /// Also explain each answered slot (`explanation`, as in `POST /v1/eligibility`): every rule
    /// of the slot's treatment with its condition tree and the values it read. Never logged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explain: bool,
}

/// One slot: what would be booked, and when.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSlot {
    /// A treatment code, as listed by `GET /v1/treatments`.
    pub treatment: String,
    /// The date of the slot, `YYYY-MM-DD`. Read per slot: a bad date refuses this slot only.
    #[schema(format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub date: String,
    /// The zones to be treated (see `POST /v1/eligibility`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    /// The device to be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The operator's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The client's concern being treated (an indication id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indication: Option<String>,
}

/// The answer for one slot.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every slot is answered: boxing would allocate once per slot for nothing"
)]
pub enum SlotResult {
    /// The slot's eligibility, with its own decision id.
    Answered(Decided<Eligibility>),
    /// The slot could not be checked: every field of the slot at fault (`slots[i].…`).
    Refused(Vec<FieldViolation>),
}

impl SlotResult {
    /// A refused slot as the error the same fault is in a single check (`INVALID_REQUEST`), so
    /// each protocol renders it the way it renders that error.
    pub fn refusal(violations: Vec<FieldViolation>) -> AppError {
        RequestError { violations }.into()
    }
}

/// Whether a violation is about what every slot shares (the client), not the slot itself.
fn about_client(v: &FieldViolation) -> bool {
    ["facts", "questionnaire_response", "history"]
        .iter()
        .any(|f| {
            v.field
                .strip_prefix(f)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
}

impl Calendar {
    /// Refuses more than [`crate::context::MAX_BATCH`] slots naming `slots` (before any is read).
    pub fn check_size(len: usize) -> Result<(), AppError> {
        super::questions::check_count("slots", len, "slots per calendar")
    }

    /// The slot's check, and its explanation when the calendar asks for one (the engine's
    /// explain mode, a second walk over the same rules, as for a single check).
    fn check(
        &self,
        rs: &RuleSet,
        slot: &CalendarSlot,
        date: Date,
        read: Option<&Facts>,
    ) -> Result<(Eligibility, Option<Vec<RuleExplanation>>), RequestError> {
        let req = self.slot_request(slot, date, read);
        let answer = rs.eligibility(&req)?;
        let explanation = if self.explain {
            Some(rs.explain_eligibility(&req)?)
        } else {
            None
        };
        Ok((answer, explanation))
    }

    /// The slot as a single check. `read`: the calendar's QuestionnaireResponse already read
    /// into facts (once for every slot, not once per slot); without it, the answers as sent.
    fn slot_request(
        &self,
        slot: &CalendarSlot,
        date: Date,
        read: Option<&Facts>,
    ) -> EligibilityRequest {
        let (facts, questionnaire_response) = match read {
            Some(facts) => (facts.clone(), None),
            None => (self.facts.clone(), self.questionnaire_response.clone()),
        };
        EligibilityRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            treatment: slot.treatment.clone(),
            date,
            facts,
            questionnaire_response,
            history: self.history.clone(),
            zones: slot.zones.clone(),
            device: slot.device.clone(),
            role: slot.role.clone(),
            indication: slot.indication.clone(),
        }
    }
}

impl Question for Calendar {
    const OPERATION: Operation = Operation::Eligibility;
    type Answer = Vec<SlotResult>;

    fn pin(&self) -> Result<Option<Pin<'_>>, AppError> {
        Ok(Pin::of(&self.ruleset_version, &self.ruleset_digest))
    }

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        Calendar::check_size(self.slots.len())?;
        super::fhir::answers_once("", &self.facts, self.questionnaire_response.as_ref())?;
        // Read once by the engine's one reader; a response with a fault is left to each slot's
        // check, which names it as a single check would.
        let read = self
            .questionnaire_response
            .as_ref()
            .and_then(|r| rs.answers_of(r, "questionnaire_response").ok());
        let mut results = Vec::with_capacity(self.slots.len());
        let mut client: Vec<FieldViolation> = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let at = |v: FieldViolation| FieldViolation {
                field: prefixed(&format!("slots[{i}]"), &v.field),
                message: v.message,
            };
            let date = match parse_strict_date(&slot.date) {
                Ok(date) => date,
                Err(message) => {
                    results.push(SlotResult::Refused(vec![at(FieldViolation {
                        field: "date".into(),
                        message,
                    })]));
                    continue;
                }
            };
            match self.check(rs, slot, date, read.as_ref()) {
                Ok((answer, explanation)) => results.push(SlotResult::Answered(Decided {
                    explanation,
                    answer,
                    decision_id: new_decision_id(),
                })),
                Err(e) => {
                    let (shared, own): (Vec<_>, Vec<_>) =
                        e.violations.into_iter().partition(about_client);
                    // The same for every slot: kept once.
                    if client.is_empty() {
                        client = shared;
                    }
                    results.push(SlotResult::Refused(own.into_iter().map(at).collect()));
                }
            }
        }
        if client.is_empty() {
            Ok(results)
        } else {
            Err(RequestError { violations: client }.into())
        }
    }

    fn record(&self, answers: &Self::Answer, rec: &Recorder<'_>) {
        let answered = answers.iter().filter_map(|r| match r {
            SlotResult::Answered(d) => Some(d),
            SlotResult::Refused(_) => None,
        });
        if let Some(strongest) = answered.map(|d| d.answer.decision).max() {
            rec.outcome(strongest);
        }
        for (slot, r) in self.slots.iter().zip(answers) {
            if let SlotResult::Answered(d) = r {
                let request = SlotRequest {
                    facts: &self.facts,
                    history: &self.history,
                    slot,
                };
                record_eligibility(&request, d, rec);
            }
        }
    }
}

/// What the decision log keeps of one answered slot: the single check it stands for (the
/// client's part and the slot's fields side by side, the shape of `POST /v1/eligibility`), so a
/// replay asks exactly that check.
#[derive(Serialize)]
struct SlotRequest<'a> {
    facts: &'a Facts,
    history: &'a [HistoryEntry],
    #[serde(flatten)]
    slot: &'a CalendarSlot,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(field: &str) -> FieldViolation {
        FieldViolation {
            field: field.into(),
            message: String::new(),
        }
    }

    #[test]
    fn facts_and_history_are_the_clients_the_rest_the_slots() {
        for f in ["facts", "facts.pregnant", "history", "history[0].date"] {
            assert!(about_client(&violation(f)), "{f}");
        }
        for f in [
            "treatment",
            "date",
            "zones[1]",
            "device",
            "role",
            "indication",
            "factsheet",
        ] {
            assert!(!about_client(&violation(f)), "{f}");
        }
    }
}
