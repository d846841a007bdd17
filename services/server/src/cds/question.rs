//! The `appointment-book` hook as a question of the one door ([`crate::app::App::ask`]): the same
//! scope (`eligibility`), tenant (the key's clinic rule set), freshness, `engine.decide` span,
//! decision metric and decision log as `POST /v1/eligibility`. Each appointment becomes one
//! eligibility request (recorded in the decision log like any other, with its masking) and its
//! answer one card.

use std::sync::Arc;

use jiff::civil::Date;
use protocol_engine::fhir::ACCEPTED_STATUSES;
use protocol_engine::{Eligibility, EligibilityRequest, Facts, HistoryEntry, RuleSet};
use serde_json::Value;

use super::cards::{self, CardInput};
use super::codes::CodeIndex;
use super::fhir::{self, Appointment, Booked, Resource, ServiceRequest};
use super::record;
use super::wire::Card;
use crate::app::operations::Operation;
use crate::app::{AppError, Decided, Question, Recorder, record_eligibility};
use crate::catalog::PerRuleSet;
use crate::context::new_decision_id;

/// A hook call, read: the appointments and the patient's record.
pub struct AppointmentBook {
    /// Each Appointment, typed and as sent.
    pub appointments: Vec<Booked>,
    /// Every resource of the prefetch.
    pub resources: Vec<Resource>,
    /// What the card should say about the record itself (prefetch keys not provided).
    pub notes: Vec<String>,
    /// The code index of each rule set, built once per version ([`super::index::of`]).
    pub indexes: Arc<PerRuleSet<CodeIndex>>,
    /// `PROTOCOL_CDS_BOOKABLE_CARDS`.
    pub bookable_cards: bool,
}

/// What became of one appointment of the call, in the call's order.
pub enum Outcome {
    /// Checked: its decision (and card, if the decision calls for one).
    Checked(Box<Checked>),
    /// None of its `serviceType` codes names a treatment of the rule set (the base's and the
    /// clinic's `service_codes`): not this service's to check. Its codes, as sent.
    NotOurs(Vec<(String, String)>),
    /// Cancelled, entered in error or a no-show: not to be booked. Its status.
    NotBooked(String),
}

/// One appointment checked.
pub struct Checked {
    pub request: EligibilityRequest,
    pub decided: Decided<Eligibility>,
    pub card: Option<Card>,
}

/// The day an appointment is for: its `start`, else the start of its first requested period.
fn appointment_day(a: &Appointment, at: &str) -> Result<Date, AppError> {
    let (field, text) = match (&a.start, a.requested_period.first()) {
        (Some(s), _) => ("start", s.as_str()),
        (None, Some(p)) if p.start.is_some() => {
            ("requestedPeriod[0].start", p.start.as_deref().unwrap_or(""))
        }
        _ => {
            return Err(AppError::Contradiction {
                field: format!("{at}.start"),
                message: "the appointment has no `start` (nor a `requestedPeriod` start): the \
                          date of the session is needed"
                    .into(),
            });
        }
    };
    // A partial date would be read at its last day; the day of a session must be exact.
    match fhir::day(text) {
        Some(d) if text.len() >= 10 => Ok(d),
        _ => Err(AppError::Contradiction {
            field: format!("{at}.{field}"),
            message: format!("`{text}` is not a FHIR date or dateTime with a full date"),
        }),
    }
}

/// The treatment an appointment is for: the first `serviceType` coding the rule set knows.
/// A proposed appointment as a booked procedure (its treatment on its day), for the other
/// appointments of the same call; `None` when it is cancelled or has no treatment or day (its own
/// check then says why, or passes it over).
fn as_history(index: &CodeIndex, b: &Booked) -> Option<HistoryEntry> {
    let a = &b.appointment;
    if matches!(
        a.status.as_deref(),
        Some("cancelled" | "entered-in-error" | "noshow")
    ) {
        return None;
    }
    Some(HistoryEntry {
        procedure: treatment(index, a)?,
        date: appointment_day(a, &b.at).ok()?,
    })
}

fn treatment(index: &CodeIndex, a: &Appointment) -> Option<String> {
    a.service_type
        .iter()
        .flat_map(fhir::CodeableConcept::codes)
        .find_map(|(s, c)| index.treatment(s, c))
        .map(str::to_owned)
}

/// The zones: the body sites of a contained `ServiceRequest` the appointment is `basedOn`.
/// `None` when the appointment carries none (rules about zones then stay undecided and the card
/// asks for them). A body site the rule set has no code for is an error naming it, never dropped:
/// a dropped zone could hide the rule that refuses it.
fn zones(index: &CodeIndex, a: &Appointment, at: &str) -> Result<Option<Vec<String>>, AppError> {
    let mut zones: Vec<String> = Vec::new();
    let mut any = false;
    for (r, based_on) in a.based_on.iter().enumerate() {
        let Some(id) = based_on
            .reference
            .as_deref()
            .and_then(|r| r.strip_prefix('#'))
        else {
            continue;
        };
        let Some((c, value)) = a.contained.iter().enumerate().find(|(_, v)| {
            v.get("resourceType") == Some(&Value::from("ServiceRequest"))
                && v.get("id") == Some(&Value::from(id))
        }) else {
            return Err(AppError::Contradiction {
                field: format!("{at}.basedOn[{r}]"),
                message: format!("`#{id}` names no contained ServiceRequest"),
            });
        };
        let at = format!("{at}.contained[{c}]");
        let sr: ServiceRequest = fhir::read(value, &at).map_err(|v| AppError::Contradiction {
            field: v.field,
            message: v.message,
        })?;
        for (b, site) in sr.body_site.iter().enumerate() {
            any = true;
            let zone = site.codes().find_map(|(s, c)| index.zone(s, c));
            match zone {
                Some(z) if !zones.iter().any(|x| x == z) => zones.push(z.to_owned()),
                Some(_) => {}
                None => {
                    return Err(AppError::Contradiction {
                        field: format!("{at}.bodySite[{b}]"),
                        message: "no zone of the rule set has this code".into(),
                    });
                }
            }
        }
    }
    Ok(any.then_some(zones))
}

/// The device: a participant `Device/<id>`, the id being the rule set's device id (devices have
/// no standard codes).
fn device(a: &Appointment) -> Option<String> {
    a.participant
        .iter()
        .filter_map(|p| {
            p.actor
                .as_ref()?
                .reference
                .as_deref()?
                .strip_prefix("Device/")
        })
        .find(|id| !id.is_empty())
        .map(str::to_owned)
}

/// The indication: the first `reasonCode` coding the rule set knows.
fn indication(index: &CodeIndex, a: &Appointment) -> Option<String> {
    a.reason_code
        .iter()
        .flat_map(fhir::CodeableConcept::codes)
        .find_map(|(s, c)| index.indication(s, c))
        .map(str::to_owned)
}

impl AppointmentBook {
    /// The intake answers of every QuestionnaireResponse in the record, read by the engine as a
    /// request's `questionnaire_response` (an answer of the wrong type, or to a question the rule
    /// set does not ask, is a 400 naming it); a response not `completed`, `amended` or
    /// `in-progress` is not the client's answers and is passed over.
    fn intake_answers(&self, rs: &RuleSet) -> Result<Vec<(Facts, Option<Date>)>, AppError> {
        let mut out = Vec::new();
        for r in &self.resources {
            let Resource::QuestionnaireResponse(q) = r else {
                continue;
            };
            if !q
                .status
                .as_deref()
                .is_some_and(|s| ACCEPTED_STATUSES.contains(&s))
            {
                continue;
            }
            let facts = rs.answers_of(&q.json, &q.at)?;
            out.push((facts, q.authored.as_deref().and_then(fhir::day)));
        }
        Ok(out)
    }

    fn check(
        &self,
        rs: &RuleSet,
        index: &CodeIndex,
        rec: &record::Record,
        booked: &Booked,
        others: impl Iterator<Item = HistoryEntry>,
    ) -> Result<Outcome, AppError> {
        let (a, at) = (&booked.appointment, booked.at.as_str());
        // A cancelled appointment, or one entered in error, is not to be booked.
        if let Some(status @ ("cancelled" | "entered-in-error" | "noshow")) = a.status.as_deref() {
            return Ok(Outcome::NotBooked(status.to_owned()));
        }
        let Some(treatment) = treatment(index, a) else {
            let codes = a
                .service_type
                .iter()
                .flat_map(fhir::CodeableConcept::codes)
                .map(|(s, c)| (s.to_owned(), c.to_owned()))
                .collect();
            return Ok(Outcome::NotOurs(codes));
        };
        let date = appointment_day(a, at)?;
        let request = EligibilityRequest {
            treatment,
            date,
            facts: rec.facts.clone(),
            history: rec.history.iter().cloned().chain(others).collect(),
            zones: zones(index, a, at)?,
            device: device(a),
            role: None,
            indication: indication(index, a),
            ruleset_version: None,
            ruleset_digest: None,
            explain: false,
            // The intake answers are read with the rest of the record (`record::read`), so the
            // facts of both go to the engine together.
            questionnaire_response: None,
        };
        let answer = rs.eligibility(&request).map_err(|e| {
            let mut e = e;
            for v in &mut e.violations {
                v.field = crate::context::prefixed(at, &v.field);
            }
            AppError::Invalid(e)
        })?;
        let decided = Decided {
            answer,
            decision_id: new_decision_id(),
            explanation: None,
        };
        let name = rs
            .treatment(&request.treatment)
            .map_or_else(|| request.treatment.clone(), |t| t.name);
        let missing: Vec<(String, String)> = decided
            .answer
            .missing_facts
            .iter()
            .map(|f| (f.clone(), index.question(f).unwrap_or(f).to_owned()))
            .collect();
        let mut notes = self.notes.clone();
        notes.extend(rec.notes.iter().cloned());
        let card = cards::card(&CardInput {
            decision_id: &decided.decision_id,
            treatment_name: &name,
            eligibility: &decided.answer,
            missing: &missing,
            appointment: a.start.as_ref().map(|_| &booked.json),
            notes: &notes,
            bookable_cards: self.bookable_cards,
        });
        Ok(Outcome::Checked(Box::new(Checked {
            request,
            decided,
            card,
        })))
    }
}

impl Question for AppointmentBook {
    /// Counted and logged as eligibility decisions: each appointment is one.
    const OPERATION: Operation = Operation::Eligibility;
    type Answer = Vec<Outcome>;

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        // The door's cap, again where the checks are made (the adapter checked it at parse).
        crate::app::check_count(
            "context.appointments",
            self.appointments.len(),
            "appointments per call (as in a batch)",
        )?;
        let index = self.indexes.get(rs, super::index::of);
        let answers = self.intake_answers(rs)?;
        // One reading of the record serves every appointment (it does not depend on the date).
        let rec = record::read(&index, &self.resources, &answers);
        // The appointments proposed together are booked procedures for one another: waits hold
        // in both orders, so a session is checked against the others as against the record.
        let proposed: Vec<Option<HistoryEntry>> = self
            .appointments
            .iter()
            .map(|b| as_history(&index, b))
            .collect();
        let mut out = Vec::with_capacity(self.appointments.len());
        for (i, booked) in self.appointments.iter().enumerate() {
            let others = proposed
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .filter_map(|(_, h)| h.clone());
            out.push(self.check(rs, &index, &rec, booked, others)?);
        }
        Ok(out)
    }

    fn record(&self, answer: &Self::Answer, rec: &Recorder<'_>) {
        for c in answer.iter().filter_map(Outcome::checked) {
            rec.treatment(&c.decided.answer.treatment);
            rec.outcome(c.decided.answer.decision);
            record_eligibility(&c.request, &c.decided, rec);
        }
    }
}

impl Outcome {
    /// The check, when the appointment was checked.
    pub fn checked(&self) -> Option<&Checked> {
        match self {
            Outcome::Checked(c) => Some(c),
            _ => None,
        }
    }
}
