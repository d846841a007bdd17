//! The questions the engine answers and the shape of its answers.
//!
//! These are the REST JSON bodies one to one (the server derives its OpenAPI document from them
//! with the `openapi` feature) and the source of the gRPC messages. Names are contracts
//! (DESIGN §5): adding a field is fine, renaming one is a breaking change.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::depth::DepthMm;
use crate::document::{EffectKind, Grade, Severity};

/// Answers to intake questions, by fact id. A fact left out is unknown; `null` is only allowed for
/// date facts and means "never". Every request field of this type is read with
/// `deserialize_with = "crate::wire::unique_facts"` (or `unique_facts_opt`): a fact id given twice is
/// refused, never last-wins.
pub type Facts = BTreeMap<String, serde_json::Value>;

/// A past or booked procedure: waits hold in both orders (a booking system sends the appointments it holds too).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    /// A procedure id (`botulinum_toxin`, `microneedling`, ...).
    pub procedure: String,
    /// The day it was done (`YYYY-MM-DD`). Waits and gaps count from this date; a procedure dated
    /// after the check date does not count yet.
    #[serde(deserialize_with = "crate::wire::strict_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub date: Date,
}

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

/// The outcome of a check, from the mildest to the strongest (the order compares them: the
/// strongest rule that fired decides). Only the first two are bookable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Decision {
    /// No rule stands in the way and every rule that applies was decided: bookable.
    Eligible,
    /// Bookable, with the instructions (and any depth caps) of the precautions in `precautions`.
    EligibleWithPrecautions,
    /// A relative contraindication: a clinician must clear the client first. Not bookable until
    /// then.
    NeedsReview,
    /// A rule that applies could not be decided: a fact is unanswered or a request input is missing
    /// (both are listed). Never bookable, because an unknown is not a "no".
    Incomplete,
    /// Not on this date: a waiting period runs (after a medication, a procedure, ...).
    /// `earliest_date` gives the first date it has passed, when one can be known.
    Deferred,
    /// The treatment must not be given to this client.
    Contraindicated,
}

impl Decision {
    /// Whether a session may be booked on this decision: only `eligible` and
    /// `eligible_with_precautions` are, so a booking system need read nothing else.
    pub fn bookable(self) -> bool {
        matches!(self, Decision::Eligible | Decision::EligibleWithPrecautions)
    }

    /// The name on the wire (`needs_review`), also used in logs and metrics so that they read like
    /// the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Eligible => "eligible",
            Decision::EligibleWithPrecautions => "eligible_with_precautions",
            Decision::NeedsReview => "needs_review",
            Decision::Incomplete => "incomplete",
            Decision::Deferred => "deferred",
            Decision::Contraindicated => "contraindicated",
        }
    }
}

/// Identifies the exact rule set an answer came from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleSetRef {
    /// The rule set's id (`base`, or a clinic overlay such as `clinic-aurora`).
    pub id: String,
    /// The version, as published by the rule set's authors.
    pub version: String,
    /// `sha256:<hex>` of the rule set's canonical JSON: it names the exact content, so a past
    /// decision can be replayed against the very rules that made it.
    pub digest: String,
    /// For a clinic overlay: the base rule set it was applied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub base: Option<Box<RuleSetRef>>,
}

/// A cited source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceRef {
    /// The source's id in the rule set's catalogue.
    pub id: String,
    /// The source's title, for a reader checking the rule.
    pub title: String,
    /// Where the source can be read.
    pub url: String,
    /// How strong the source is as evidence.
    pub grade: Grade,
}

/// What a rule says, independent of any client: shared by every answer in which it fires.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleInfo {
    /// The rule's id: stable across versions, for audits and for support questions about a
    /// decision.
    pub rule: String,
    /// What the rule does when it holds (contraindicate, defer, require review, add a precaution).
    pub effect: EffectKind,
    /// How strong the rule is, as the rule set's authors graded it.
    pub severity: Severity,
    /// For staff.
    pub summary: String,
    /// For the client.
    pub client_message: String,
    /// The evidence grade of the rule as a whole: an inferred rule is flagged as such.
    pub evidence: Grade,
    /// The sources the rule cites, so that staff can check why it exists.
    pub sources: Vec<SourceRef>,
}

/// A rule that fired for this client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reason {
    /// What the rule says: its fields appear inline in the reason.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(inline, value_type = RuleInfo))]
    pub info: Arc<RuleInfo>,
    /// For a deferral: the first date on which this rule no longer holds. Absent when the
    /// deferral lasts until a condition resolves.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub until: Option<Date>,
}

/// Instructions for a bookable client, and depth caps that follow from them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrecautionInfo {
    /// The id of the precaution rule.
    pub rule: String,
    /// What staff must do, or tell the client, for the session.
    pub instructions: Vec<String>,
    /// A depth limit in mm this precaution sets, if any. Depth limits asked with this client's
    /// facts apply it too, naming the rule in `bound_by`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub depth_cap_mm: Option<DepthMm>,
    /// Zones the cap applies to; absent means every zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
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

/// How deep may this device go, per zone, for this operator?
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepthLimitsRequest {
    /// The treatment code (a needle treatment: others have no depth).
    pub treatment: String,
    /// The device id. It must be a device for this treatment; its labelled maximum caps every zone.
    pub device: String,
    /// The operator's role. It must perform this treatment; a role may have its own cap.
    pub role: String,
    /// One zone; every zone the treatment may reach when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The client's concern (an indication id): the rule set and the treatment may cap depth by
    /// indication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indication: Option<String>,
    /// With facts, precaution caps that fire for this client apply too, and so do the caps of
    /// precautions left undecided by an unanswered fact (conservatively; the client outcome is
    /// then `incomplete` and names the fact).
    #[serde(
        default,
        deserialize_with = "crate::wire::unique_facts_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub facts: Option<Facts>,
    /// With facts: the date of the session, so waits and age rules are decided.
    #[serde(
        default,
        deserialize_with = "crate::wire::strict_date_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub date: Option<Date>,
    /// With facts and a date: past and booked procedures, so procedure gaps are decided.
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
    /// Also explain each zone's limit: every cap that applies with its depth
    /// ([`ZoneLimit::bounds`]), not only those that bind.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explain: bool,
}

/// What bounds a depth limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// The treatment's cap for the zone.
    Zone,
    /// A cap for the indication asked about (the treatment's own, or the rule set's, which binds
    /// every needle treatment).
    Indication,
    /// The device's labelled maximum.
    Device,
    /// The deepest setting whose safety the device's maker evaluated, when below its labelled
    /// maximum.
    DeviceEvaluated,
    /// The operator role's cap.
    Role,
    /// The cap of the setting the treatment is given in (home use).
    Setting,
    /// A precaution for this client (fired, or undecided and applied conservatively); holds the
    /// rule id.
    Precaution(String),
}

impl Bound {
    /// The name on the wire: `zone`, `indication`, `device`, `device_evaluated`, `role`, `setting`,
    /// or `precaution:<rule>`.
    pub fn label(&self) -> String {
        match self {
            Bound::Zone => "zone".into(),
            Bound::Indication => "indication".into(),
            Bound::Device => "device".into(),
            Bound::DeviceEvaluated => "device_evaluated".into(),
            Bound::Role => "role".into(),
            Bound::Setting => "setting".into(),
            Bound::Precaution(rule) => format!("precaution:{rule}"),
        }
    }
}

impl Serialize for Bound {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

/// The deepest a needle may go in one zone, and every cap that sets that limit (so staff can see
/// why it is not deeper).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneLimit {
    /// The zone id.
    pub zone: String,
    /// The limit in mm: the smallest of every cap that applies.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub max_depth_mm: DepthMm,
    /// Every cap equal to the limit: `zone`, `indication`, `device`, `device_evaluated`, `role`,
    /// `setting`, or `precaution:<rule>`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub bound_by: Vec<Bound>,
    /// With `explain`: every cap that applies to the zone, with its depth, smallest or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<Vec<ZoneBound>>,
}

/// One cap that applies to a zone, and its depth (explain mode).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneBound {
    /// `zone`, `indication`, `device`, `device_evaluated`, `role`, `setting`, or
    /// `precaution:<rule>`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub bound: Bound,
    /// Its cap in mm.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub max_depth_mm: DepthMm,
}

/// The answer to a depth-limits question: for each zone, the deepest allowed and what bounds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepthLimits {
    /// The treatment, as asked.
    pub treatment: String,
    /// The device, as asked.
    pub device: String,
    /// The operator role, as asked.
    pub role: String,
    /// The indication, as asked, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indication: Option<String>,
    /// One limit per zone: the zone asked, or every zone the treatment may reach. A zone without
    /// any cap is not listed: it has no limit to give.
    pub zones: Vec<ZoneLimit>,
    /// With client facts: the contraindication outcome for this treatment (no date), so a device
    /// never shows a depth for a client who must not be treated without saying so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<TreatmentOutcome>,
    /// The rule set that decided, with its digest.
    pub ruleset: RuleSetRef,
}

/// What should a course of treatment look like for this client?
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanRequest {
    /// The client's main concern (an indication id such as `acne_scars`).
    pub indication: String,
    /// The zones to treat; each must be a zone the planned treatment may reach.
    pub zones: Vec<String>,
    /// The client's answers by fact id. Sessions are scheduled only when the first session is
    /// bookable, so unanswered facts a rule needs leave the plan `not_bookable`. Each fact id may
    /// be given once.
    #[serde(default, deserialize_with = "crate::wire::unique_facts")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub facts: Facts,
    /// Past and booked procedures; required so that "no history" is said, not assumed. Send `[]` for none.
    pub history: Vec<HistoryEntry>,
    /// The date of the first session (`YYYY-MM-DD`); later sessions follow at the course interval.
    #[serde(deserialize_with = "crate::wire::strict_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub start_date: Date,
    /// The operator's role: it must perform the treatment, and its cap applies to every session.
    pub role: String,
    /// Needed for needle treatments: the device's labelled maximum caps every session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Ask for this treatment instead of the recommended one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment: Option<String>,
    /// Replay: answer from this published version of the caller's rule set (an earlier
    /// answer's `ruleset.version`) instead of the active one. Resolved by the server, which
    /// answers 404 for a version its clinic never published; the engine ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_version: Option<String>,
    /// Replay by digest (an earlier answer's `ruleset.digest`); with `ruleset_version`, both
    /// must name the same version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_digest: Option<String>,
}

/// Whether a plan could be scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PlanStatus {
    /// The first session is bookable: sessions are dated, with a depth per zone.
    Scheduled,
    /// The first session is not bookable (`first_session` says why): no session is scheduled.
    NotBookable,
}

/// The depth for one zone in one session.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneDepth {
    /// The zone id.
    pub zone: String,
    /// The depth for this session: conservative at first, rising over the course, never above
    /// `max_depth_mm`.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub depth_mm: DepthMm,
    /// The limit for this zone for this client, as depth limits give it.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub max_depth_mm: DepthMm,
}

/// One dated session of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedSession {
    /// The session's place in the course, from 1.
    pub number: u32,
    /// The session's date: the start date, then one course interval apart.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date: Date,
    /// Empty for treatments without needles.
    pub zones: Vec<ZoneDepth>,
}

/// What the client does after each session.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Aftercare {
    /// How many days aftercare lasts after each session.
    pub duration_days: i64,
    /// The aftercare instructions, in order.
    pub instructions: Vec<String>,
}

/// A result the client can expect, dated on this plan's calendar.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatedMilestone {
    /// What to expect.
    pub milestone: String,
    /// When to expect it, counted from the first or the last session as the rule set says.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date: Date,
    /// How well the expectation is supported, so that a promise is never stronger than its source.
    pub evidence: Grade,
}

/// How long one session takes, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionMinutes {
    /// The shortest a session takes, in minutes.
    pub min: u32,
    /// The longest a session takes, in minutes.
    pub max: u32,
}

/// A proposed course of treatment for one client: which treatment, when each session is and how
/// deep, what to do before and after, and what to expect.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    /// `scheduled`, or `not_bookable` when the first session may not be booked.
    pub status: PlanStatus,
    /// The treatment planned: the one best for the indication, or the one asked for.
    pub treatment: String,
    /// The indication planned for, as asked.
    pub indication: String,
    /// Why this treatment: the indication it is best for, or that the caller asked for it.
    pub rationale: String,
    /// The number of sessions in the course.
    pub sessions: u32,
    /// The days between two sessions.
    pub interval_days: i64,
    /// Empty when the client is not bookable: a plan never schedules sessions for them.
    pub schedule: Vec<PlannedSession>,
    /// What the client does before the first session.
    pub precare: Vec<String>,
    /// What the client does after each session.
    pub aftercare: Aftercare,
    /// What to expect in the days after a session.
    pub downtime: String,
    /// How long each session takes, when the rule set says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_minutes: Option<SessionMinutes>,
    /// The results to expect, dated.
    pub results: Vec<DatedMilestone>,
    /// The eligibility of the first session, with its reasons.
    pub first_session: Eligibility,
    /// When the first session is bookable but a later one is not (a procedure booked between
    /// sessions, a wait, an age rule on its date): that session and why. The plan is then
    /// `not_bookable` and schedules nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_session: Option<BlockedSession>,
    /// The rule set that planned, with its digest.
    pub ruleset: RuleSetRef,
}

/// A later session of a plan that is not bookable on its date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockedSession {
    /// The session's number (the first session is 1).
    pub number: u32,
    /// Its eligibility on its date, with the reasons.
    pub eligibility: Eligibility,
}

/// A declared fact, enough to build an intake form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactInfo {
    /// The fact id: the key of its answer in `facts`.
    pub id: String,
    /// The kind of answer expected: `bool`, `integer`, `enum` or `date`.
    #[serde(rename = "type")]
    pub fact_type: String,
    /// The question to ask the client.
    pub question: String,
    /// For an integer fact: the smallest answer accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// For an integer fact: the largest answer accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// For an enum fact: the answers accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// For a date fact that accepts `null`: what `null` means ("never took isotretinoin"). Other
    /// facts refuse `null`; leave them out when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_means: Option<String>,
    /// For an enum fact whose rule set labels its values: the display label of each value
    /// (`{"erythematotelangiectatic": "Erythematotelangiectatic (redness, visible vessels)"}`).
    /// Every value or none is labelled; send the value, show the label.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The standard codes of the question or of the condition it asks about (LOINC for a
    /// question, SNOMED CT for a condition, RxNorm/ATC for a medicine); absent when none exists.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<Coding>,
}

/// An id a request may name, with its display name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamedInfo {
    /// The id requests use.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The standard codes other systems name it by (SNOMED CT for procedures and body
    /// structures); absent when the rule set gives none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<Coding>,
}

/// A code from a standard terminology (a FHIR `Coding`): how other systems (an EHR, a booking
/// system speaking FHIR) name a fact, a procedure, a zone or an indication. The rule set's ids
/// stay the names requests use; codes are how foreign data is matched to them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coding {
    /// The terminology's URI (`http://snomed.info/sct`, `http://loinc.org`, ...); only the
    /// systems the engine knows are accepted (see `docs/ruleset-format.md`).
    pub system: String,
    /// The code within the system (`77386006`).
    pub code: String,
    /// The terminology's display text for the code (`Pregnancy`).
    pub display: String,
}

/// What a fact's codes stand for, so that a clinical record is read the way the question means:
/// declared in the rule set (`codes_mean`), never guessed from the fact's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodesMean {
    /// A condition or state the client has now (the default): an active condition answers yes,
    /// a resolved or inactive one no.
    #[default]
    Now,
    /// "Have you ever had…": a condition in any clinical status answers yes.
    Ever,
    /// An allergy: the codes are those of the substance, so only an allergy record answers the
    /// fact (a medication with the same code means the client takes it, not that they react to it).
    Allergy,
}

/// An operator role, with its own depth cap.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleInfo {
    /// The role id (`role` in requests).
    pub id: String,
    /// The display name.
    pub name: String,
    /// The deepest this role may needle anywhere, in mm; absent when the role adds no cap of its
    /// own (treatment, zone and device caps still bind).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub max_depth_mm: Option<DepthMm>,
}

/// A device, with its labelled and evaluated maximum depths.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// The device id (`device` in requests).
    pub id: String,
    /// The display name.
    pub name: String,
    /// The treatments it may be used for.
    pub treatments: Vec<String>,
    /// The labelled maximum needle depth in mm (a hard cap); absent for devices without needles.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub max_depth_mm: Option<DepthMm>,
    /// The deepest setting whose safety the maker evaluated, in mm (SkinPen: 1.5 of 2.5); depth
    /// limits never exceed it. Absent when the maker states none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub evaluated_max_depth_mm: Option<DepthMm>,
}

/// What a rule set knows by id: everything a request may name besides treatments
/// (`GET /v1/treatments`) and facts (`GET /v1/facts`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Catalogue {
    /// Treatment zones (`zones`, `zone` in requests).
    pub zones: Vec<NamedInfo>,
    /// Past procedures (`history[].procedure`).
    pub procedures: Vec<NamedInfo>,
    /// Client concerns (`indication`).
    pub indications: Vec<NamedInfo>,
    /// Operator roles (`role`).
    pub roles: Vec<RoleInfo>,
    /// Devices (`device`).
    pub devices: Vec<DeviceInfo>,
    /// The rule set they come from, with its digest.
    pub ruleset: RuleSetRef,
}

/// A zone a treatment may reach, with the treatment's own caps for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneCapInfo {
    /// The zone id.
    pub zone: String,
    /// The treatment's cap for this zone in mm. Device, role, setting, indication and precautions
    /// may lower it: ask depth limits for the real limit.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub max_depth_mm: DepthMm,
    /// The depth of a conservative first session in this zone, in mm.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub start_depth_mm: DepthMm,
}

/// A treatment as the rule set describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TreatmentInfo {
    /// The treatment's id, used in every request.
    pub code: String,
    /// The display name.
    pub name: String,
    /// What the treatment is, for staff and clients.
    pub description: String,
    /// True for needle treatments, the only ones with depth limits.
    pub needle: bool,
    /// Where it is given (a setting id); a setting may cap depth.
    pub setting: String,
    /// The operator roles that may perform it.
    pub roles: Vec<String>,
    /// The indications it is best for: plans recommend it for these.
    pub best_for: Vec<String>,
    /// The devices that can be used for it.
    pub devices: Vec<String>,
    /// The fewest days between two sessions of it.
    pub min_interval_days: i64,
    /// The usual number of sessions in a course.
    pub sessions: u32,
    /// The most sessions in a course.
    pub max_sessions: u32,
    /// The usual days between two sessions of a course.
    pub interval_days: i64,
    /// The zones it may reach, with their caps. A zone not listed cannot be treated with it.
    pub zones: Vec<ZoneCapInfo>,
    /// What to expect in the days after a session.
    pub downtime: String,
    /// How long a session takes, when the rule set says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_minutes: Option<SessionMinutes>,
    /// The ids of the rules that apply to it, to look up what may stand in the way.
    pub contraindication_rules: Vec<String>,
    /// The standard codes of the treatment as a procedure (those of the procedure with the same
    /// id); absent when the rule set gives none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<Coding>,
}

/// The treatments of a rule set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TreatmentList {
    /// Every treatment, in the rule set's order.
    pub treatments: Vec<TreatmentInfo>,
    /// The rule set they come from, with its digest.
    pub ruleset: RuleSetRef,
}

/// The intake questions of a rule set: enough to build a form whose answers every request accepts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactList {
    /// Every declared fact, in the rule set's order.
    pub facts: Vec<FactInfo>,
    /// The rule set they come from, with its digest.
    pub ruleset: RuleSetRef,
}
