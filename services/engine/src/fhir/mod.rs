//! HL7 FHIR R4 views of a rule set: the intake questions as a `Questionnaire`, and a client's
//! `QuestionnaireResponse` read back into the same facts a request's `facts` carries.
//!
//! Pure like the rest of the engine: serde structs and functions of a compiled rule set, no
//! I/O. The server only routes and renders (`GET /fhir/Questionnaire/{ruleset}`, the
//! `questionnaire_response` field of eligibility and contraindication requests).
//!
//! Names other systems see are fixed here, as URNs in the project's own namespace
//! (`urn:treatment-protocol:...`, as problem types are): the Questionnaire's canonical URL, the
//! code system of the treatments it serves and the code system of each enum fact's answers.

mod questionnaire;
mod response;

pub use questionnaire::{
    AnswerOption, CodeableConcept, EnableWhen, Extension, Identifier, Item, Questionnaire,
    UsageContext,
};
pub(crate) use response::parse_answers;
pub use response::{ACCEPTED_STATUSES, NULL_MEANS_SUFFIX};

/// The canonical URL of a rule set's Questionnaire is this prefix and the rule set's id.
pub const QUESTIONNAIRE_URL_PREFIX: &str = "urn:treatment-protocol:questionnaire:";
/// The code system of treatment codes (`microneedling`, ...): how the Questionnaire names the
/// treatments it serves (`useContext`), and how an appointment's service type can name one.
pub const TREATMENT_SYSTEM: &str = "urn:treatment-protocol:treatment";
/// The code system of an enum fact's answers is this prefix and the fact id
/// (`urn:treatment-protocol:answer:rosacea`).
pub const ANSWER_SYSTEM_PREFIX: &str = "urn:treatment-protocol:answer:";
/// The identifier system under which the Questionnaire carries the digest of the rule set it
/// was made from, so an answer set can be tied to the exact questions asked.
pub const DIGEST_SYSTEM: &str = "urn:treatment-protocol:ruleset-digest";
/// FHIR's core extensions for an integer item's range.
pub const MIN_VALUE_URL: &str = "http://hl7.org/fhir/StructureDefinition/minValue";
/// See [`MIN_VALUE_URL`].
pub const MAX_VALUE_URL: &str = "http://hl7.org/fhir/StructureDefinition/maxValue";
/// The usage-context type under which the treatments served are listed.
pub const USAGE_CONTEXT_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/usage-context-type";

/// The code system of an enum fact's answers.
pub fn answer_system(fact: &str) -> String {
    format!("{ANSWER_SYSTEM_PREFIX}{fact}")
}

/// A rule-set id as a FHIR resource id (`[A-Za-z0-9\-\.]{1,64}`): rule-set ids may also hold
/// `_` and run to 128 characters, so `_` becomes `-` and the id is cut at 64.
pub fn resource_id(ruleset_id: &str) -> String {
    ruleset_id
        .chars()
        .map(|c| if c == '_' { '-' } else { c })
        .take(64)
        .collect()
}
