//! The CDS Hooks 2.0 JSON shapes this service reads and writes (HL7 CDS Hooks 2.0,
//! `input/pagecontent/index.md`): discovery, the hook request, the response and its cards, and
//! feedback.
//!
//! The spec's JSON rule is that an optional field is omitted, never `null`, `""`, `[]` or `{}`;
//! every optional field here is skipped when empty. The shapes are checked against JSON Schemas
//! written from the spec's tables (`tests/schemas/cds-hooks/`) by the black-box tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /cds-services`.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    pub services: Vec<ServiceDef>,
}

/// One CDS service.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDef {
    pub hook: &'static str,
    pub title: &'static str,
    pub description: String,
    pub id: &'static str,
    /// Prefetch key → FHIR query template.
    pub prefetch: BTreeMap<&'static str, &'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_requirements: Option<&'static str>,
}

/// `POST /cds-services/{id}`. Unknown top-level fields are refused (a misspelt `prefetch` must
/// not read as "no prefetch"), except `extension`, which the spec reserves for extensions.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookRequest {
    pub hook: String,
    pub hook_instance: String,
    #[serde(default)]
    pub fhir_server: Option<String>,
    /// Its access token is sent to `fhirServer` when this service may call it.
    #[serde(default)]
    pub fhir_authorization: Option<FhirAuthorization>,
    pub context: AppointmentBookContext,
    /// Prefetch key → the FHIR resource (a Bundle for searches), `null` for "no data". Kept as
    /// JSON until read, so each resource's faults are named by their path.
    #[serde(default)]
    pub prefetch: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "reserved by the spec for extensions; none is read"
    )]
    pub extension: Option<Value>,
}

/// The access to the EHR's FHIR server the call hands over; only `access_token` is used.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "read whole for its shape; only the token is used")]
pub struct FhirAuthorization {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub scope: String,
    pub subject: String,
    #[serde(default)]
    pub patient: Option<String>,
}

/// The `appointment-book` context (CDS Hooks library, hookVersion 1.0).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppointmentBookContext {
    pub user_id: String,
    pub patient_id: String,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "part of the hook's context; the decision does not use it"
    )]
    pub encounter_id: Option<String>,
    /// A Bundle of Appointments (the hook library) or a plain array of them (2.0-era examples):
    /// both are accepted, read by [`super::fhir::appointments`].
    pub appointments: Value,
}

/// The answer to a hook call.
#[derive(Debug, Clone, Serialize)]
pub struct HookResponse {
    pub cards: Vec<Card>,
    /// What became of each appointment, under [`super::cards::APPOINTMENTS_EXTENSION`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<Value>,
}

/// One card.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub uuid: String,
    /// One sentence, under 140 characters.
    pub summary: String,
    /// GitHub-flavoured Markdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub indicator: Indicator,
    pub source: Source,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    /// Set exactly when there are suggestions (the spec requires it then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_behavior: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub override_reasons: Vec<Coding>,
    /// The decision, machine-readable, under the key [`super::cards::EXTENSION`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<Coding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coding {
    pub system: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub label: String,
    pub uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_recommended: Option<bool>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub description: String,
    pub resource: Value,
}

/// `POST /cds-services/{id}/feedback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    pub feedback: Vec<Feedback>,
}

/// Feedback on one card.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Feedback {
    /// The card's `uuid`.
    pub card: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub accepted_suggestions: Option<Vec<AcceptedSuggestion>>,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "validated for its shape; feedback is counted by outcome"
    )]
    pub override_reason: Option<OverrideReason>,
    /// RFC 3339, UTC.
    pub outcome_timestamp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Accepted,
    Overridden,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Overridden => "overridden",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedSuggestion {
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "validated, counted by outcome; the reason itself is not stored"
)]
pub struct OverrideReason {
    #[serde(default)]
    pub reason: Option<Coding>,
    #[serde(default)]
    pub user_comment: Option<String>,
}
