//! CDS Hooks 2.0: the door an EHR's booking screen opens onto the same eligibility decisions.
//!
//! - `GET /cds-services`: discovery, one `appointment-book` service with its prefetch templates.
//! - `POST /cds-services/treatment-eligibility`: each appointment of the hook's context is checked
//!   like `POST /v1/eligibility` (through [`crate::app::App`]: scope `eligibility`, the key's clinic
//!   rule set, freshness, telemetry, decision log), with the treatment from the Appointment's
//!   `serviceType`, the date from its `start`, zones from the body sites of a contained
//!   ServiceRequest it is `basedOn`, the device from a `Device/<id>` participant, the indication
//!   from its `reasonCode`, and the facts and history read from the prefetched FHIR record
//!   through the rule set's codes, and from the client's answers to the rule set's intake
//!   Questionnaire (a QuestionnaireResponse) for what has no code ([`record`]).
//!   Each decision becomes one card ([`cards`]).
//! - `POST /cds-services/treatment-eligibility/feedback`: validated and counted.
//!
//! The service answers from the prefetch; it calls the request's FHIR server (`fhirServer`) for
//! what was not prefetched only when the operator allowed that server
//! (`PROTOCOL_CDS_FHIR_SERVERS`, [`fetch`]); without the record it needs the answer is 412. Authentication is
//! this API's: the bearer token must be an API key with the `eligibility` scope. A CDS client's
//! signed JWT is not verified (and so is refused as an unknown key).
//!
//! An appointment whose service type names no treatment of the rule set gets no card: it is
//! another service's appointment (the hook fires for every booking), and silence is the spec's
//! "no guidance".

pub mod cards;
pub mod fetch;
mod http;
mod question;
pub mod wire;

// The reading of a record is the engine's (pure, with scenario files of records); the CDS door
// only parses the call and renders cards.
pub use protocol_engine::ehr::resource as fhir;
pub use protocol_engine::ehr::{codes, index, record};

use std::collections::BTreeMap;

use axum::Router;
use axum::routing::{get, post};

use wire::ServiceDef;

/// The hook the service answers.
pub const HOOK: &str = "appointment-book";

/// The service's id (`/cds-services/{id}`).
pub const SERVICE_ID: &str = "treatment-eligibility";

/// Prefetch key → FHIR query template.
pub const PREFETCH: &[(&str, &str)] = &[
    ("patient", "Patient/{{context.patientId}}"),
    ("conditions", "Condition?patient={{context.patientId}}"),
    (
        "allergies",
        "AllergyIntolerance?patient={{context.patientId}}",
    ),
    (
        "medicationStatements",
        "MedicationStatement?patient={{context.patientId}}",
    ),
    (
        "medicationRequests",
        "MedicationRequest?patient={{context.patientId}}",
    ),
    ("procedures", "Procedure?patient={{context.patientId}}"),
    ("observations", "Observation?patient={{context.patientId}}"),
    (
        "intake",
        "QuestionnaireResponse?subject={{context.patientId}}&status=completed",
    ),
];

/// The prefetch keys a call cannot do without (412 when absent): the procedure history, which
/// the engine never assumes empty. Without any other key, the facts it would answer stay unknown.
pub const REQUIRED_PREFETCH: &[&str] = &["procedures"];

/// The service as discovery lists it.
pub fn service() -> ServiceDef {
    ServiceDef {
        hook: HOOK,
        title: "Treatment eligibility",
        description: "Checks each proposed appointment for an aesthetic skin treatment \
                      (microneedling and its neighbours) against the clinic's treatment protocol: \
                      contraindications, waiting periods after medications and procedures, and \
                      precautions, read from the patient's conditions, medications, procedures \
                      and observations through their standard codes. Facts the record does not \
                      hold stay unknown and are named in the card."
            .into(),
        id: SERVICE_ID,
        prefetch: PREFETCH.iter().copied().collect::<BTreeMap<_, _>>(),
        usage_requirements: Some(
            "Send the prefetch, at least `procedures` (a FHIR server is called only when its \
             operator allowed it); authenticate with your signed JWT (its issuer trusted by the \
             operator) or an API key of the `eligibility` scope as the bearer token. The \
             response's extension `org.treatment-protocol.appointments` says, per appointment, \
             whether it was checked or is not one of this service's treatments.",
        ),
    }
}

/// What the CDS Hooks door holds for every call: the code index of each rule set served (built
/// once per version) and the FHIR servers a call may be completed from (`None` without
/// `PROTOCOL_CDS_FHIR_SERVERS`: prefetch only).
#[derive(Default)]
pub struct CdsState {
    pub indexes: std::sync::Arc<crate::catalog::PerRuleSet<codes::CodeIndex>>,
    pub fhir: Option<std::sync::Arc<fetch::FhirFetch>>,
    /// `PROTOCOL_CDS_BOOKABLE_CARDS`: an `info` card for an appointment checked `eligible`.
    pub bookable_cards: bool,
}

/// The CDS Hooks routes.
pub fn routes() -> Router<crate::http::HttpState> {
    Router::new()
        .route("/cds-services", get(http::discovery))
        .route(
            "/cds-services/{id}",
            post(http::call).layer(axum::extract::DefaultBodyLimit::max(http::MAX_CALL_BYTES)),
        )
        .route("/cds-services/{id}/feedback", post(http::feedback))
}
