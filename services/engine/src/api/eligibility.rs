//! Eligibility checks (may this client have this treatment on this date?) and contraindication
//! checks (which treatments are contraindicated for this client?), with their answers.

use std::sync::Arc;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::{Decision, Facts, HistoryEntry, PrecautionInfo, Reason, RuleSetRef};

/// May this client have this treatment on this date?
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EligibilityRequest {
    /// The treatment code (`microneedling`, ...), as listed by `GET /v1/treatments`.
    pub treatment: String,
    /// The date of the intended session (the engine has no clock).
    #[serde(deserialize_with = "crate::wire::strict_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub date: Date,
    /// The client's answers by fact id (`GET /v1/facts` lists the questions). A fact left out is
    /// unknown, never "no": a rule that needs it makes the answer `incomplete` and names it in
    /// `missing_facts`. Each fact id may be given once.
    #[serde(default, deserialize_with = "crate::wire::unique_facts")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub facts: Facts,
    /// The answers as a FHIR R4 `QuestionnaireResponse` to the rule set's Questionnaire
    /// (`GET /fhir/Questionnaire/{ruleset}`), in place of `facts`: each item's `linkId` is a
    /// fact id, its one answer a `valueBoolean`, `valueInteger`, `valueCoding` or `valueDate`;
    /// the gate `<fact>.null_means` answered `true` is the explicit `null` ("never"). Faults name
    /// the item (`questionnaire_response.item[3].answer[0].valueInteger`); a key repeated in any
    /// of its objects is refused naming it; sending `facts` too is refused (`422`, naming both).
    #[serde(
        default,
        deserialize_with = "crate::wire::unique_json_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub questionnaire_response: Option<serde_json::Value>,
    /// Past and booked procedures; required so that "no history" is said, not assumed. Send `[]` for none.
    pub history: Vec<HistoryEntry>,
    /// The zones to be treated. Needed by rules about zones (`zone_in`), which stay undecided
    /// without them (`missing_inputs: ["zones"]`); each must be a declared zone, and for a needle
    /// treatment one it may reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    /// The device to be used. It must be a device for this treatment; rules about devices
    /// (`device_in`) stay undecided without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The operator's role. When given, it must be a role that performs this treatment, so a
    /// booking is never made for someone who may not do it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The client's concern being treated (an indication id such as `acne_scars`). Rules about it
    /// (`indication_in`) stay undecided without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indication: Option<String>,
    /// Replay: answer from this published version of the caller's rule set (an earlier
    /// answer's `ruleset.version`) instead of the active one. Resolved by the server, which
    /// answers 404 for a version its clinic never published; the engine ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_version: Option<String>,
    /// Replay by digest (an earlier answer's `ruleset.digest`); with `ruleset_version`, both
    /// must name the same version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_digest: Option<String>,
    /// Also explain the decision: each rule's condition tree with every node's result and the
    /// values it read (for an author or an auditor; never logged).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explain: bool,
}

/// The answer to an eligibility check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Eligibility {
    /// The treatment checked, as asked.
    pub treatment: String,
    /// The date checked, as asked.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date: Date,
    /// The outcome: the strongest rule that fired wins, and an undecided rule never passes for a
    /// "no".
    pub decision: Decision,
    /// True only for `eligible` and `eligible_with_precautions`: the one field a booking system
    /// needs.
    pub bookable: bool,
    /// For `deferred`: the first date on which every deferral has passed; `null` when a deferral
    /// lasts until a condition resolves, and for every other decision.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub earliest_date: Option<Date>,
    /// The rules that fired, each with what it says to staff and to the client.
    pub reasons: Vec<Reason>,
    /// Facts whose answers could change the decision, by id.
    pub missing_facts: Vec<String>,
    /// Request inputs (`date`, `history`, `device`, `zones`) whose absence leaves a rule
    /// undecided: sending them could change the decision.
    pub missing_inputs: Vec<String>,
    /// The precautions that apply, to be followed at the session (instructions and any depth caps).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<PrecautionInfo>))]
    pub precautions: Vec<Arc<PrecautionInfo>>,
    /// The rule set that decided, with its digest: keep it with the decision to be able to replay
    /// it.
    pub ruleset: RuleSetRef,
}

/// Which treatments are contraindicated for this client? No date needed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContraindicationRequest {
    /// Treatments to check; all of the rule set's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatments: Option<Vec<String>>,
    /// The client's answers by fact id. A fact left out is unknown, never "no": it is listed in
    /// `missing_facts` when a rule needs it. Each fact id may be given once.
    #[serde(default, deserialize_with = "crate::wire::unique_facts")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub facts: Facts,
    /// The answers as a FHIR R4 `QuestionnaireResponse`, in place of `facts` (as in an
    /// eligibility check); sending both is refused (`422`, naming both).
    #[serde(
        default,
        deserialize_with = "crate::wire::unique_json_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub questionnaire_response: Option<serde_json::Value>,
    /// With a date, waiting periods and age rules are decided too; without one they stay
    /// undecided and the treatments they apply to are `incomplete` (`missing_inputs: ["date"]`).
    #[serde(
        default,
        deserialize_with = "crate::wire::strict_date_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub date: Option<Date>,
    /// With a date and history, procedure gaps are decided too; without them they stay
    /// undecided (`missing_inputs: ["history"]`). Send `[]` for "no past procedures".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
    /// Replay: answer from this published version of the caller's rule set (an earlier
    /// answer's `ruleset.version`) instead of the active one. Resolved by the server, which
    /// answers 404 for a version its clinic never published; the engine ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_version: Option<String>,
    /// Replay by digest (an earlier answer's `ruleset.digest`); with `ruleset_version`, both
    /// must name the same version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_digest: Option<String>,
    /// Also explain each treatment's outcome: every rule's condition tree with each node's
    /// result and the values it read (`explanation`; never logged).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explain: bool,
}

/// One treatment's outcome in a contraindication check or a depth-limits answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TreatmentOutcome {
    /// The treatment code.
    pub treatment: String,
    /// The outcome for this treatment (no date: waits and gaps may be undecided, see
    /// `missing_inputs`).
    pub decision: Decision,
    /// True only for `eligible` and `eligible_with_precautions`.
    pub bookable: bool,
    /// The rules that fired for this treatment.
    pub reasons: Vec<Reason>,
    /// Facts whose answers could change this treatment's outcome, by id: the questions still to
    /// ask.
    pub missing_facts: Vec<String>,
    /// Request inputs (`date`, `history`, `device`, `zones`) whose absence leaves a rule of this
    /// treatment undecided; while any is listed the answer is not bookable.
    pub missing_inputs: Vec<String>,
    /// The precautions that apply to this treatment.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<PrecautionInfo>))]
    pub precautions: Vec<Arc<PrecautionInfo>>,
    /// With `explain` (contraindication checks): every rule of the treatment, whether it fired,
    /// with its condition tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<crate::explain::RuleExplanation>>,
}

/// The answer to a contraindication check: one outcome per treatment, and what is still to ask or
/// send over all of them, so an intake form knows its next questions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContraindicationReport {
    /// One outcome per treatment checked.
    pub results: Vec<TreatmentOutcome>,
    /// Every fact still to ask, over all the treatments checked.
    pub missing_facts: Vec<String>,
    /// Every request input (`date`, `history`) still to send, over all the treatments checked.
    pub missing_inputs: Vec<String>,
    /// Rules left undecided because they need a date or a procedure history the request lacked;
    /// each keeps its treatment from being bookable.
    pub not_evaluated: Vec<String>,
    /// The rule set that decided, with its digest.
    pub ruleset: RuleSetRef,
}
