//! A patient's FHIR record (the hook's prefetch) read into facts and procedure history through
//! the rule set's codes. Pure: resources and the check date in, facts out.
//!
//! What is read, and how (every fact not found stays unknown, never "no"):
//!
//! | resource | read as |
//! |---|---|
//! | `Patient.birthDate` | the age fact `date_of_birth` |
//! | `AllergyIntolerance` (code: the substance) | an allergy fact (`codes_mean: allergy`: its codes are substances): yes while active (or with no clinical status), no when `refuted`; never read from any other resource |
//! | `Condition` (code) | a yes/no fact: for a history fact (`codes_mean: ever`: "have you ever had") yes in any clinical status, for any other yes while active, recurring or relapsed (or with no clinical status) and no when inactive, in remission or resolved; no when `refuted`; an enum answer when the code is one answer's; a refuted condition coded like an enum fact answers its `none` |
//! | `MedicationStatement` | yes/no: yes when `active`, `intended` or `on-hold`, no when `completed`, `stopped` or `not-taken`; a last-dose date: the end of its effective time when `completed` or `stopped` (an active one leaves it unknown: the last dose is still to come; "never" comes only from the intake answers) |
//! | `MedicationRequest` | yes when `active`, `on-hold` or `draft` (other states say nothing) |
//! | `Procedure` (`completed`, `in-progress`, `stopped`) | a history entry on its performed day (the end of a period); a yes/no fact coded like it (`chemotherapy_current`): yes while `in-progress`, else nothing; a date fact: its day |
//! | `Observation` (not `cancelled`, `entered-in-error`, `registered`) | `valueBoolean`, a yes/no answer code (SNOMED CT, LOINC answers, HL7 v2 0136, pregnancy status), `valueInteger` or a whole `valueQuantity` (within the fact's range), an enum answer by code or by id in `valueString`, `valueDateTime` |
//! | `QuestionnaireResponse` (`completed`, `amended`, `in-progress`) | the client's answers to the rule set's intake questionnaire (`GET /fhir/Questionnaire/{ruleset}`), read and checked by the engine exactly as a request's `questionnaire_response` (`RuleSet::answers_of`), then merged here; for facts no standard code can carry (skin type, self-tanner) |
//!
//! Several records of one fact (a questionnaire answer counts as one, dated `authored`): a yes wins over a no (every yes/no fact is a risk to know
//! about), the latest date wins for a date (the longest wait), and the most recent observation
//! for a number or an enum answer. A conflict is noted in the card. A partial FHIR date is read
//! at the last day it may mean (see [`super::resource::day`]).

use std::collections::BTreeMap;

use crate::codes::{LOINC, SNOMED_CT};
use crate::{Facts, HistoryEntry};
use jiff::civil::Date;
use serde_json::Value;

use super::codes::{CodeIndex, FactHit, Kind};
use super::resource::{CodeableConcept, Resource, day};

/// What the record says.
#[derive(Debug, Default)]
pub struct Record {
    /// The facts the record answers (every other stays unknown).
    pub facts: Facts,
    /// The procedures it records, each on its day.
    pub history: Vec<HistoryEntry>,
    /// Conflicts and values that could not be used, for the card.
    pub notes: Vec<String>,
}

/// One finding about a fact.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    Bool(bool),
    Int(i64),
    Enum(String),
    /// `None`: never.
    Date(Option<Date>),
}

#[derive(Debug)]
struct Finding {
    value: Found,
    /// When it was observed, to pick the most recent number or enum answer.
    when: Option<Date>,
}

/// Answer codes that mean yes and no, by system.
const YES: &[(&str, &str)] = &[
    (SNOMED_CT, "373066001"),
    (LOINC, "LA33-6"),
    ("http://terminology.hl7.org/CodeSystem/v2-0136", "Y"),
    // Pregnancy status (LOINC 82810-3) answers.
    (SNOMED_CT, "77386006"),
];
const NO: &[(&str, &str)] = &[
    (SNOMED_CT, "373067005"),
    (LOINC, "LA32-8"),
    ("http://terminology.hl7.org/CodeSystem/v2-0136", "N"),
    (SNOMED_CT, "60001007"),
];

fn yes_no(cc: &CodeableConcept) -> Option<bool> {
    let has = |list: &[(&str, &str)]| cc.codes().any(|c| list.contains(&c));
    match (has(YES), has(NO)) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// The facts a concept's codes name: allergy facts from an AllergyIntolerance only, the other
/// facts from any other resource.
fn hits<'i>(index: &'i CodeIndex, cc: Option<&CodeableConcept>, allergy: bool) -> Vec<&'i FactHit> {
    let mut out: Vec<&FactHit> = Vec::new();
    for (system, code) in cc.into_iter().flat_map(CodeableConcept::codes) {
        for h in index.fact_hits(system, code) {
            let is_allergy = index.facts.get(h.fact).is_some_and(|f| f.is_allergy());
            if is_allergy == allergy && !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

struct Reader<'i> {
    index: &'i CodeIndex,
    found: BTreeMap<usize, Vec<Finding>>,
    history: Vec<HistoryEntry>,
    notes: Vec<String>,
}

impl Reader<'_> {
    fn add(&mut self, fact: usize, value: Found, when: Option<Date>) {
        self.found
            .entry(fact)
            .or_default()
            .push(Finding { value, when });
    }

    fn kind(&self, fact: usize) -> Option<&Kind> {
        self.index.facts.get(fact).map(|f| &f.kind)
    }

    fn resource(&mut self, r: &Resource) {
        match r {
            Resource::Patient(p) => {
                if let (Some(f), Some(d)) =
                    (self.index.birth_date, p.birth_date.as_deref().and_then(day))
                {
                    self.add(f, Found::Date(Some(d)), None);
                }
            }
            Resource::Condition(c) => self.condition(c),
            Resource::AllergyIntolerance(a) => self.allergy(a),
            Resource::MedicationStatement(m) => self.medication_statement(m),
            Resource::MedicationRequest(m) => self.medication_request(m),
            Resource::Procedure(p) => self.procedure(p),
            Resource::Observation(o) => self.observation(o),
            // Read by the engine first ([`read`]'s `answers`).
            Resource::QuestionnaireResponse(_) => {}
            Resource::OperationOutcome | Resource::Other => {}
        }
    }

    fn condition(&mut self, c: &super::resource::Condition) {
        let verification = c.verification_status.as_ref();
        if verification.is_some_and(|v| v.has_code("entered-in-error")) {
            return;
        }
        let refuted = verification.is_some_and(|v| v.has_code("refuted"));
        let active = c.clinical_status.as_ref().is_none_or(|s| {
            s.has_code("active") || s.has_code("recurrence") || s.has_code("relapse")
        });
        let over = c.clinical_status.as_ref().is_some_and(|s| {
            s.has_code("inactive") || s.has_code("remission") || s.has_code("resolved")
        });
        let when = c
            .onset_date_time
            .as_deref()
            .or(c.recorded_date.as_deref())
            .and_then(day);
        for h in hits(self.index, c.code.as_ref(), false) {
            let history = self.index.facts.get(h.fact).is_some_and(|f| f.is_history());
            let found = match (self.kind(h.fact), &h.value, refuted, active) {
                (Some(Kind::Bool), _, true, _) => Found::Bool(false),
                (Some(Kind::Bool), _, false, _) if history => Found::Bool(true),
                (Some(Kind::Bool), _, false, false) if over => Found::Bool(false),
                (Some(Kind::Enum { values }), None, true, _)
                    if values.iter().any(|v| v == "none") =>
                {
                    Found::Enum("none".into())
                }
                (Some(Kind::Bool), _, false, true) => Found::Bool(true),
                (Some(Kind::Enum { .. }), Some(v), false, true) => Found::Enum(v.clone()),
                (Some(Kind::Date), _, false, true) => match when {
                    Some(d) => Found::Date(Some(d)),
                    None => continue,
                },
                _ => continue,
            };
            self.add(h.fact, found, when);
        }
    }

    fn allergy(&mut self, a: &super::resource::AllergyIntolerance) {
        let verification = a.verification_status.as_ref();
        if verification.is_some_and(|v| v.has_code("entered-in-error")) {
            return;
        }
        let refuted = verification.is_some_and(|v| v.has_code("refuted"));
        let active = a
            .clinical_status
            .as_ref()
            .is_none_or(|s| s.has_code("active"));
        for h in hits(self.index, a.code.as_ref(), true) {
            if self.kind(h.fact) != Some(&Kind::Bool) {
                continue;
            }
            let found = match (refuted, active) {
                (true, _) => Found::Bool(false),
                (false, true) => Found::Bool(true),
                (false, false) => continue,
            };
            self.add(h.fact, found, None);
        }
    }

    fn medication_statement(&mut self, m: &super::resource::MedicationStatement) {
        let status = m.status.as_deref().unwrap_or("");
        let taking = matches!(status, "active" | "intended" | "on-hold");
        let stopped = matches!(status, "completed" | "stopped");
        let not_taken = status == "not-taken";
        let end = m
            .effective_period
            .as_ref()
            .and_then(|p| p.end.as_deref().or(p.start.as_deref()))
            .or(m.effective_date_time.as_deref())
            .and_then(day);
        for h in hits(self.index, m.medication_codeable_concept.as_ref(), false) {
            let found = match self.kind(h.fact) {
                Some(Kind::Bool) if taking => Found::Bool(true),
                Some(Kind::Bool) if stopped || not_taken => Found::Bool(false),
                Some(Kind::Date) if stopped => match end {
                    Some(d) => Found::Date(Some(d)),
                    None => continue,
                },
                _ => continue,
            };
            self.add(h.fact, found, end);
        }
    }

    fn medication_request(&mut self, m: &super::resource::MedicationRequest) {
        let status = m.status.as_deref().unwrap_or("");
        if !matches!(status, "active" | "on-hold" | "draft") {
            return;
        }
        let when = m.authored_on.as_deref().and_then(day);
        for h in hits(self.index, m.medication_codeable_concept.as_ref(), false) {
            if self.kind(h.fact) == Some(&Kind::Bool) {
                self.add(h.fact, Found::Bool(true), when);
            }
        }
    }

    fn procedure(&mut self, p: &super::resource::Procedure) {
        let status = p.status.as_deref().unwrap_or("");
        if !matches!(status, "completed" | "in-progress" | "stopped") {
            return;
        }
        let performed = p
            .performed_period
            .as_ref()
            .and_then(|x| x.end.as_deref().or(x.start.as_deref()))
            .or(p.performed_date_time.as_deref())
            .and_then(day);
        let codes: Vec<(&str, &str)> = p.code.iter().flat_map(CodeableConcept::codes).collect();
        for (system, code) in &codes {
            if let Some(id) = self.index.procedure(system, code) {
                match performed {
                    Some(date) => {
                        let entry = HistoryEntry {
                            procedure: id.to_owned(),
                            date,
                        };
                        if !self.history.contains(&entry) {
                            self.history.push(entry);
                        }
                    }
                    None => self.notes.push(format!(
                        "A {id} procedure in the record has no performed date: it is not counted, \
                         so waits after it are not checked."
                    )),
                }
            }
        }
        for h in hits(self.index, p.code.as_ref(), false) {
            let found = match self.kind(h.fact) {
                Some(Kind::Bool) if status == "in-progress" => Found::Bool(true),
                Some(Kind::Date) => match performed {
                    Some(d) => Found::Date(Some(d)),
                    None => continue,
                },
                _ => continue,
            };
            self.add(h.fact, found, performed);
        }
    }

    fn observation(&mut self, o: &super::resource::Observation) {
        let status = o.status.as_deref().unwrap_or("");
        if matches!(status, "cancelled" | "entered-in-error" | "registered") {
            return;
        }
        let when = o
            .effective_period
            .as_ref()
            .and_then(|p| p.end.as_deref().or(p.start.as_deref()))
            .or(o.effective_date_time.as_deref())
            .and_then(day);
        for h in hits(self.index, o.code.as_ref(), false) {
            let Some(meta) = self.index.facts.get(h.fact) else {
                continue;
            };
            let found = match (&meta.kind, &h.value) {
                (Kind::Enum { .. }, Some(v)) => match o.value_boolean {
                    Some(false) => continue,
                    _ => Some(Found::Enum(v.clone())),
                },
                (Kind::Bool, _) => o
                    .value_boolean
                    .or_else(|| o.value_codeable_concept.as_ref().and_then(yes_no))
                    .map(Found::Bool),
                (Kind::Integer { min, max }, _) => {
                    let n = o.value_integer.or_else(|| {
                        let v = o.value_quantity.as_ref()?.value.as_ref()?;
                        v.as_i64().or_else(|| {
                            v.as_f64()
                                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                                .map(|f| f as i64)
                        })
                    });
                    match n {
                        Some(n) if (*min..=*max).contains(&n) => Some(Found::Int(n)),
                        Some(n) => {
                            self.notes.push(format!(
                                "An observation gives `{}` = {n}, outside {min}–{max}: not used.",
                                meta.id
                            ));
                            None
                        }
                        None => None,
                    }
                }
                (Kind::Enum { values }, None) => {
                    let by_code = o.value_codeable_concept.as_ref().and_then(|cc| {
                        cc.codes().find_map(|(s, c)| {
                            self.index
                                .fact_hits(s, c)
                                .iter()
                                .find(|x| x.fact == h.fact)
                                .and_then(|x| x.value.clone())
                        })
                    });
                    let by_id = o
                        .value_string
                        .as_ref()
                        .filter(|s| values.contains(s))
                        .cloned();
                    by_code.or(by_id).map(Found::Enum)
                }
                (Kind::Date, _) => o
                    .value_date_time
                    .as_deref()
                    .and_then(day)
                    .map(|d| Found::Date(Some(d))),
            };
            if let Some(found) = found {
                self.add(h.fact, found, when);
            }
        }
    }

    /// The answers of an intake questionnaire, as the engine read them (typed and checked).
    fn answers(&mut self, answers: &Facts, when: Option<Date>) {
        for (id, value) in answers {
            let Some(i) = self.fact_index(id) else {
                continue;
            };
            let found = match (self.kind(i), value) {
                (Some(Kind::Bool), Value::Bool(b)) => Found::Bool(*b),
                (Some(Kind::Integer { .. }), v) => match v.as_i64() {
                    Some(n) => Found::Int(n),
                    None => continue,
                },
                (Some(Kind::Enum { .. }), Value::String(v)) => Found::Enum(v.clone()),
                (Some(Kind::Date), Value::Null) => Found::Date(None),
                (Some(Kind::Date), Value::String(d)) => match day(d) {
                    Some(d) => Found::Date(Some(d)),
                    None => continue,
                },
                _ => continue,
            };
            self.add(i, found, when);
        }
    }

    fn fact_index(&self, id: &str) -> Option<usize> {
        self.index.facts.iter().position(|f| f.id == id)
    }

    /// One value per fact, by the rules of the module's table.
    fn finish(mut self) -> Record {
        let mut facts = Facts::new();
        for (fact, findings) in std::mem::take(&mut self.found) {
            let Some(meta) = self.index.facts.get(fact) else {
                continue;
            };
            let distinct = {
                let mut v: Vec<&Found> = Vec::new();
                for f in &findings {
                    if !v.contains(&&f.value) {
                        v.push(&f.value);
                    }
                }
                v.len()
            };
            let value = match meta.kind {
                Kind::Bool => {
                    let yes = findings.iter().any(|f| f.value == Found::Bool(true));
                    Value::Bool(yes)
                }
                Kind::Date => findings
                    .iter()
                    .filter_map(|f| match f.value {
                        Found::Date(d) => d,
                        _ => None,
                    })
                    .max()
                    .map_or(Value::Null, |d| Value::String(d.to_string())),
                Kind::Integer { .. } | Kind::Enum { .. } => {
                    let rank = |f: &Finding| match &f.value {
                        Found::Int(n) => (f.when, *n, 0),
                        Found::Enum(v) => {
                            let pos = match &meta.kind {
                                Kind::Enum { values } => {
                                    values.iter().position(|x| x == v).unwrap_or(0)
                                }
                                _ => 0,
                            };
                            (f.when, 0, pos)
                        }
                        _ => (None, i64::MIN, 0),
                    };
                    match findings.iter().max_by_key(|f| rank(f)).map(|f| &f.value) {
                        Some(Found::Int(n)) => Value::from(*n),
                        Some(Found::Enum(v)) => Value::String(v.clone()),
                        _ => continue,
                    }
                }
            };
            if distinct > 1 {
                self.notes.push(format!(
                    "The record disagrees about `{}`: read as {value}.",
                    meta.id
                ));
            }
            facts.insert(meta.id.clone(), value);
        }
        self.history.sort_by(|a, b| {
            a.date
                .cmp(&b.date)
                .then_with(|| a.procedure.cmp(&b.procedure))
        });
        Record {
            facts,
            history: self.history,
            notes: self.notes,
        }
    }
}

/// Reads the resources of a record, and the intake answers (each set with the day it was
/// authored) the engine read from its QuestionnaireResponses.
pub fn read<'r>(
    index: &CodeIndex,
    resources: impl IntoIterator<Item = &'r Resource>,
    answers: &[(Facts, Option<Date>)],
) -> Record {
    let mut reader = Reader {
        index,
        found: BTreeMap::new(),
        history: Vec::new(),
        notes: Vec::new(),
    };
    for r in resources {
        reader.resource(r);
    }
    for (facts, when) in answers {
        reader.answers(facts, *when);
    }
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ehr::codes::FactMeta;
    use crate::ehr::resource as fhir;
    use serde_json::json;

    const SCT: &str = "http://snomed.info/sct";

    /// Declares fact `id`, its codes meaning what the bundled rule set declares for it.
    fn add_fact(ix: &mut CodeIndex, id: &str, kind: Kind) -> usize {
        ix.add_fact(FactMeta {
            id: id.into(),
            kind,
            question: format!("{id}?"),
            codes_mean: match id {
                "anaesthetic_allergy" => crate::CodesMean::Allergy,
                "hsv_history" => crate::CodesMean::Ever,
                _ => crate::CodesMean::Now,
            },
        })
    }

    fn index() -> CodeIndex {
        let mut ix = CodeIndex::default();
        let mut fact = |id: &str, kind: Kind| add_fact(&mut ix, id, kind);
        let pregnant = fact("pregnant", Kind::Bool);
        let dob = fact("date_of_birth", Kind::Date);
        let iso = fact("isotretinoin_last_dose", Kind::Date);
        let fitz = fact("fitzpatrick", Kind::Integer { min: 1, max: 6 });
        let _ = dob;
        ix.fact_code(SCT, "77386006", pregnant, None);
        ix.fact_code("http://loinc.org", "82810-3", pregnant, None);
        ix.fact_code("rx", "6064", iso, None);
        ix.fact_code("loinc", "fitz", fitz, None);
        ix.procedure_code(SCT, "botox", "botulinum_toxin");
        ix
    }

    fn res(v: serde_json::Value) -> Resource {
        fhir::resource(&v, "x").expect("resource")
    }

    fn date(s: &str) -> Date {
        s.parse().expect("date")
    }

    #[test]
    fn reads_each_kind_of_resource() {
        let ix = index();
        let rs = [
            res(json!({"resourceType": "Patient", "birthDate": "1990-05"})),
            res(
                json!({"resourceType": "Condition", "code": {"coding": [{"system": SCT, "code": "77386006"}]},
                "verificationStatus": {"coding": [{"code": "refuted"}]}}),
            ),
            res(
                json!({"resourceType": "MedicationStatement", "status": "completed",
                "medicationCodeableConcept": {"coding": [{"system": "rx", "code": "6064"}]},
                "effectivePeriod": {"start": "2026-01-01", "end": "2026-06-30"}}),
            ),
            res(json!({"resourceType": "Procedure", "status": "completed",
                "code": {"coding": [{"system": SCT, "code": "botox"}]}, "performedDateTime": "2026-11-20T10:00:00+01:00"})),
            res(json!({"resourceType": "Procedure", "status": "not-done",
                "code": {"coding": [{"system": SCT, "code": "botox"}]}, "performedDateTime": "2026-11-25"})),
            res(json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "loinc", "code": "fitz"}]}, "valueInteger": 4})),
        ];
        let r = read(&ix, &rs, &[]);
        assert_eq!(r.facts["pregnant"], json!(false));
        assert_eq!(r.facts["date_of_birth"], json!("1990-05-31"));
        assert_eq!(r.facts["isotretinoin_last_dose"], json!("2026-06-30"));
        assert_eq!(r.facts["fitzpatrick"], json!(4));
        assert_eq!(
            r.history,
            vec![HistoryEntry {
                procedure: "botulinum_toxin".into(),
                date: date("2026-11-20")
            }]
        );
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn yes_wins_and_the_conflict_is_noted() {
        let ix = index();
        let rs = [
            res(json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
                "valueCodeableConcept": {"coding": [{"system": SCT, "code": "60001007"}]}})),
            res(json!({"resourceType": "Condition",
                "code": {"coding": [{"system": SCT, "code": "77386006"}]}})),
        ];
        let r = read(&ix, &rs, &[]);
        assert_eq!(r.facts["pregnant"], json!(true));
        assert_eq!(r.notes.len(), 1);
    }

    #[test]
    fn unknown_stays_unknown() {
        let ix = index();
        let rs = [
            res(
                json!({"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "active"}]},
                "verificationStatus": {"coding": [{"code": "entered-in-error"}]},
                "code": {"coding": [{"system": SCT, "code": "77386006"}]}}),
            ),
            res(json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "loinc", "code": "fitz"}]}, "valueInteger": 9})),
            res(
                json!({"resourceType": "MedicationStatement", "status": "active",
                "medicationCodeableConcept": {"coding": [{"system": "rx", "code": "6064"}]}}),
            ),
        ];
        let r = read(&ix, &rs, &[]);
        assert!(!r.facts.contains_key("pregnant"));
        assert!(!r.facts.contains_key("fitzpatrick"));
        assert!(!r.facts.contains_key("isotretinoin_last_dose"));
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    }

    #[test]
    fn allergies_history_and_intake_answers() {
        let mut ix = CodeIndex::default();
        let mut fact = |id: &str, kind: Kind| add_fact(&mut ix, id, kind);
        let allergy = fact("anaesthetic_allergy", Kind::Bool);
        let now = fact("active_hsv", Kind::Bool);
        let ever = fact("hsv_history", Kind::Bool);
        let _ = fact("fitzpatrick", Kind::Integer { min: 1, max: 6 });
        let _ = fact(
            "rosacea",
            Kind::Enum {
                values: vec!["none".into(), "papulopustular".into()],
            },
        );
        let _ = fact("self_tanner_last_applied", Kind::Date);
        ix.fact_code(crate::ehr::codes::ATC, "N01B", allergy, None);
        ix.fact_code("icd", "B00.1", now, None);
        ix.fact_code("icd", "B00.1", ever, None);
        let rs = [
            // Taking a local anaesthetic is not an allergy to it.
            res(
                json!({"resourceType": "MedicationStatement", "status": "active",
                "medicationCodeableConcept": {"coding": [{"system": crate::ehr::codes::ATC, "code": "N01BB02"}]}}),
            ),
            res(
                json!({"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "resolved"}]},
                "code": {"coding": [{"system": "icd", "code": "B00.1"}]}}),
            ),
        ];
        // The intake answers as the engine read them, and an older set that disagrees.
        let mut answers = Facts::new();
        answers.insert("rosacea".into(), json!("papulopustular"));
        answers.insert("self_tanner_last_applied".into(), Value::Null);
        let mut older = Facts::new();
        older.insert("rosacea".into(), json!("none"));
        older.insert("fitzpatrick".into(), json!(3));
        let r = read(
            &ix,
            &rs,
            &[
                (answers, Some(date("2026-11-20"))),
                (older, Some(date("2026-01-20"))),
            ],
        );
        assert!(
            !r.facts.contains_key("anaesthetic_allergy"),
            "{:?}",
            r.facts
        );
        assert_eq!(r.facts["active_hsv"], json!(false));
        assert_eq!(r.facts["hsv_history"], json!(true));
        assert_eq!(r.facts["fitzpatrick"], json!(3));
        assert_eq!(r.facts["rosacea"], json!("papulopustular"));
        assert_eq!(r.facts["self_tanner_last_applied"], Value::Null);
        assert_eq!(r.notes.len(), 1, "the rosacea disagreement: {:?}", r.notes);

        let rs = [res(json!({"resourceType": "AllergyIntolerance",
            "code": {"coding": [{"system": crate::ehr::codes::ATC, "code": "N01BB02"}]}}))];
        assert_eq!(
            read(&ix, &rs, &[]).facts["anaesthetic_allergy"],
            json!(true)
        );
    }
}
