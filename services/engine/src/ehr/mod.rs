//! A patient's electronic health record, as an EHR sends it (FHIR R4 resources: a CDS Hooks
//! prefetch, or what a FHIR server answered), read into facts and procedure history through the
//! codes a rule set declares. Pure, as the rest of the engine: resources and dates in, facts out.
//! The clinical reading of a record (a refuted Condition answers no, a yes wins over a no, the
//! latest date wins) lives here, beside the Questionnaire mapping ([`crate::fhir`]), and is
//! pinned by the record scenarios (`services/engine/tests/records`).
//!
//! - [`resource`]: the FHIR resources read, parsed strictly (each field at fault named).
//! - [`codes`]: the index from (system, code) to facts, procedures, treatments, zones.
//! - [`index`]: that index, built from a compiled rule set.
//! - [`record`]: the reading itself.

pub mod codes;
pub mod index;

/// A row of a rule set's `service_codes`: another system's code for a treatment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceCode {
    /// The code system's URI.
    pub system: String,
    /// The code.
    pub code: String,
    /// What the code system calls it, when the table says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The treatment it books.
    pub treatment: String,
}
pub mod record;
#[expect(
    missing_docs,
    reason = "FHIR R4 resources and elements under their FHIR names, documented by the FHIR specification (hl7.org/fhir/R4)"
)]
pub mod resource;
