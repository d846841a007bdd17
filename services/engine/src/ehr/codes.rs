//! The standard codes of a rule set, indexed for reading a FHIR record: which fact, procedure,
//! treatment, zone or indication a `(system, code)` names.
//!
//! Built from what the rule set publishes (its facts and catalogue with their `codes`), so the
//! codes of a clinic's overlay count for that clinic. Matching is exact on system and code, except
//! for ATC, whose codes are a hierarchy: a rule-set code for a class (`B01A`, antithrombotic
//! agents) matches every substance under it (`B01AA03`, warfarin). RxNorm and SNOMED CT are not
//! expanded (that needs a terminology server): a record coded below the rule set's concept is
//! not recognised, and the fact it would answer stays unknown.

use crate::CodesMean;
use std::collections::HashMap;

/// The system URI of the WHO ATC classification (the engine's, which validates rule sets' codes).
pub use crate::codes::ATC;

/// The local code system of the rule set's own treatment ids (the engine's, also the
/// Questionnaire's), for an EHR whose booking catalogue has no standard code for a treatment (a
/// `serviceType` coding `{system: this, code: "microneedling"}`).
pub use crate::fhir::TREATMENT_SYSTEM;

/// The answer type of a fact.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Yes or no.
    Bool,
    /// A whole number within the declared range.
    Integer {
        /// The smallest value taken.
        min: i64,
        /// The largest value taken.
        max: i64,
    },
    /// One of the declared answers.
    Enum {
        /// The answers, by id.
        values: Vec<String>,
    },
    /// A calendar day.
    Date,
}

/// A declared fact.
#[derive(Debug, Clone)]
pub struct FactMeta {
    /// The fact's id.
    pub id: String,
    /// Its answer type.
    pub kind: Kind,
    /// Its question, as the intake asks it (named in a card's notes).
    pub question: String,
    /// What its codes stand for, as the rule set declares (`codes_mean`).
    pub codes_mean: CodesMean,
}

impl FactMeta {
    /// An allergy fact (`codes_mean: allergy`): its codes are those of the substance, so only an
    /// AllergyIntolerance answers it. Read from a medication, the same code would turn "takes
    /// lidocaine" into "allergic to lidocaine".
    pub fn is_allergy(&self) -> bool {
        self.codes_mean == CodesMean::Allergy
    }

    /// A history fact (`codes_mean: ever`): "have you ever had", which a resolved condition
    /// answers yes (it shares its codes with the fact about now).
    pub fn is_history(&self) -> bool {
        self.codes_mean == CodesMean::Ever
    }
}

/// What a code names among the facts: the fact, and for a code of one answer of an enum fact,
/// that answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FactHit {
    /// The fact, by its index in [`CodeIndex::facts`].
    pub fact: usize,
    /// The enum answer the code names, if it names one.
    pub value: Option<String>,
}

type Key = (String, String);

/// The index.
#[derive(Debug, Default)]
pub struct CodeIndex {
    /// The facts the rule set declares, in order.
    pub facts: Vec<FactMeta>,
    fact_codes: HashMap<Key, Vec<FactHit>>,
    procedures: HashMap<Key, String>,
    treatments: HashMap<Key, String>,
    zones: HashMap<Key, String>,
    indications: HashMap<Key, String>,
    /// The fact `Patient.birthDate` answers: the engine's age fact, `date_of_birth`, when declared
    /// as a date.
    pub birth_date: Option<usize>,
}

fn key(system: &str, code: &str) -> Key {
    (system.to_owned(), code.to_owned())
}

/// The entries of `map` a code names: exact, or for ATC the nearest class above it.
fn find<'m, T>(map: &'m HashMap<Key, T>, system: &str, code: &str) -> Option<&'m T> {
    if let Some(hit) = map.get(&key(system, code)) {
        return Some(hit);
    }
    if system == ATC {
        return (1..code.len())
            .rev()
            .filter_map(|n| code.get(..n))
            .find_map(|prefix| map.get(&key(system, prefix)));
    }
    None
}

impl CodeIndex {
    /// Declares a fact (in the rule set's order), returning its index.
    pub fn add_fact(&mut self, meta: FactMeta) -> usize {
        let i = self.facts.len();
        if meta.id == "date_of_birth" && meta.kind == Kind::Date {
            self.birth_date = Some(i);
        }
        self.facts.push(meta);
        i
    }

    /// A code of fact `fact` (of its answer `value` for an enum).
    pub fn fact_code(&mut self, system: &str, code: &str, fact: usize, value: Option<String>) {
        self.fact_codes
            .entry(key(system, code))
            .or_default()
            .push(FactHit { fact, value });
    }

    /// A code of procedure `id` (a history entry).
    pub fn procedure_code(&mut self, system: &str, code: &str, id: &str) {
        self.procedures.insert(key(system, code), id.to_owned());
    }

    /// A code of treatment `id` (an appointment's service type).
    pub fn treatment_code(&mut self, system: &str, code: &str, id: &str) {
        self.treatments.insert(key(system, code), id.to_owned());
    }

    /// A code of zone `id` (a body site).
    pub fn zone_code(&mut self, system: &str, code: &str, id: &str) {
        self.zones.insert(key(system, code), id.to_owned());
    }

    /// A code of indication `id` (an appointment's reason).
    pub fn indication_code(&mut self, system: &str, code: &str, id: &str) {
        self.indications.insert(key(system, code), id.to_owned());
    }

    /// What a code names among the facts (none, one, or several facts).
    pub fn fact_hits(&self, system: &str, code: &str) -> &[FactHit] {
        find(&self.fact_codes, system, code).map_or(&[], Vec::as_slice)
    }

    /// The procedure a code names.
    pub fn procedure(&self, system: &str, code: &str) -> Option<&str> {
        find(&self.procedures, system, code).map(String::as_str)
    }

    /// The treatment a service type names: a code of the rule set, or the rule set's own id in
    /// [`TREATMENT_SYSTEM`].
    pub fn treatment(&self, system: &str, code: &str) -> Option<&str> {
        find(&self.treatments, system, code).map(String::as_str)
    }

    /// The zone a body-site code names.
    pub fn zone(&self, system: &str, code: &str) -> Option<&str> {
        find(&self.zones, system, code).map(String::as_str)
    }

    /// The indication a reason code names.
    pub fn indication(&self, system: &str, code: &str) -> Option<&str> {
        find(&self.indications, system, code).map(String::as_str)
    }

    /// The question of a fact, by id.
    pub fn question(&self, id: &str) -> Option<&str> {
        self.facts
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.question.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atc_classes_match_the_substances_below_them() {
        let mut ix = CodeIndex::default();
        let f = ix.add_fact(FactMeta {
            id: "anticoagulants".into(),
            kind: Kind::Bool,
            question: "?".into(),
            codes_mean: CodesMean::Now,
        });
        ix.fact_code(ATC, "B01A", f, None);
        assert_eq!(ix.fact_hits(ATC, "B01AA03").len(), 1);
        assert_eq!(ix.fact_hits(ATC, "B01A").len(), 1);
        assert!(ix.fact_hits(ATC, "B02").is_empty());
        ix.fact_code("http://snomed.info/sct", "123", f, None);
        assert!(ix.fact_hits("http://snomed.info/sct", "1234").is_empty());
    }
}
