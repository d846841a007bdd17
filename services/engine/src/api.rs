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

/// A past procedure.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    /// A procedure id (`botulinum_toxin`, `microneedling`, ...).
    pub procedure: String,
    #[serde(deserialize_with = "crate::wire::strict_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub date: Date,
}

/// May this client have this treatment on this date?
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EligibilityRequest {
    pub treatment: String,
    /// The date of the intended session (the engine has no clock).
    #[serde(deserialize_with = "crate::wire::strict_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub date: Date,
    #[serde(default, deserialize_with = "crate::wire::unique_facts")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub facts: Facts,
    /// Past procedures; required so that "no history" is said, not assumed. Send `[]` for none.
    pub history: Vec<HistoryEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indication: Option<String>,
}

/// The outcome of a check, strongest first. Only the last two are bookable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Decision {
    Eligible,
    EligibleWithPrecautions,
    NeedsReview,
    Incomplete,
    Deferred,
    Contraindicated,
}

impl Decision {
    pub fn bookable(self) -> bool {
        matches!(self, Decision::Eligible | Decision::EligibleWithPrecautions)
    }

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
    pub id: String,
    pub version: String,
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
    pub id: String,
    pub title: String,
    pub url: String,
    pub grade: Grade,
}

/// What a rule says, independent of any client: shared by every answer in which it fires.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleInfo {
    pub rule: String,
    pub effect: EffectKind,
    pub severity: Severity,
    /// For staff.
    pub summary: String,
    /// For the client.
    pub client_message: String,
    pub evidence: Grade,
    pub sources: Vec<SourceRef>,
}

/// A rule that fired for this client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reason {
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
    pub rule: String,
    pub instructions: Vec<String>,
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
    pub treatment: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date: Date,
    pub decision: Decision,
    pub bookable: bool,
    /// For `deferred`: the first date on which every deferral has passed; `null` when a deferral
    /// lasts until a condition resolves, and for every other decision.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub earliest_date: Option<Date>,
    pub reasons: Vec<Reason>,
    /// Facts whose answers could change the decision, by id.
    pub missing_facts: Vec<String>,
    /// Request inputs (`date`, `history`, `device`, `zones`) whose absence leaves a rule
    /// undecided: sending them could change the decision.
    pub missing_inputs: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<PrecautionInfo>))]
    pub precautions: Vec<Arc<PrecautionInfo>>,
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
    #[serde(default, deserialize_with = "crate::wire::unique_facts")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub facts: Facts,
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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TreatmentOutcome {
    pub treatment: String,
    pub decision: Decision,
    pub bookable: bool,
    pub reasons: Vec<Reason>,
    pub missing_facts: Vec<String>,
    /// Request inputs (`date`, `history`, `device`, `zones`) whose absence leaves a rule of this
    /// treatment undecided; while any is listed the answer is not bookable.
    pub missing_inputs: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<PrecautionInfo>))]
    pub precautions: Vec<Arc<PrecautionInfo>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContraindicationReport {
    pub results: Vec<TreatmentOutcome>,
    /// Every fact still to ask, over all the treatments checked.
    pub missing_facts: Vec<String>,
    /// Every request input (`date`, `history`) still to send, over all the treatments checked.
    pub missing_inputs: Vec<String>,
    /// Rules left undecided because they need a date or a procedure history the request lacked;
    /// each keeps its treatment from being bookable.
    pub not_evaluated: Vec<String>,
    pub ruleset: RuleSetRef,
}

/// How deep may this device go, per zone, for this operator?
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepthLimitsRequest {
    pub treatment: String,
    pub device: String,
    pub role: String,
    /// One zone; every zone the treatment may reach when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
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
    /// With facts and a date: past procedures, so procedure gaps are decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

/// What bounds a depth limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Zone,
    Indication,
    Device,
    DeviceEvaluated,
    Role,
    Setting,
    Precaution(String),
}

impl Bound {
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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneLimit {
    pub zone: String,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub max_depth_mm: DepthMm,
    /// Every cap equal to the limit: `zone`, `indication`, `device`, `device_evaluated`, `role`,
    /// `setting`, or `precaution:<rule>`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub bound_by: Vec<Bound>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepthLimits {
    pub treatment: String,
    pub device: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indication: Option<String>,
    pub zones: Vec<ZoneLimit>,
    /// With client facts: the contraindication outcome for this treatment (no date), so a device
    /// never shows a depth for a client who must not be treated without saying so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<TreatmentOutcome>,
    pub ruleset: RuleSetRef,
}

/// What should a course of treatment look like for this client?
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanRequest {
    /// The client's main concern (an indication id such as `acne_scars`).
    pub indication: String,
    pub zones: Vec<String>,
    #[serde(default, deserialize_with = "crate::wire::unique_facts")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub facts: Facts,
    pub history: Vec<HistoryEntry>,
    #[serde(deserialize_with = "crate::wire::strict_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub start_date: Date,
    pub role: String,
    /// Needed for needle treatments: the device's labelled maximum caps every session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Ask for this treatment instead of the recommended one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PlanStatus {
    Scheduled,
    NotBookable,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneDepth {
    pub zone: String,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub depth_mm: DepthMm,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub max_depth_mm: DepthMm,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedSession {
    pub number: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date: Date,
    /// Empty for treatments without needles.
    pub zones: Vec<ZoneDepth>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Aftercare {
    pub duration_days: i64,
    pub instructions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatedMilestone {
    pub milestone: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date: Date,
    pub evidence: Grade,
}

/// How long one session takes, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionMinutes {
    pub min: u32,
    pub max: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    pub status: PlanStatus,
    pub treatment: String,
    pub indication: String,
    /// Why this treatment: the indication it is best for, or that the caller asked for it.
    pub rationale: String,
    pub sessions: u32,
    pub interval_days: i64,
    /// Empty when the client is not bookable: a plan never schedules sessions for them.
    pub schedule: Vec<PlannedSession>,
    pub precare: Vec<String>,
    pub aftercare: Aftercare,
    pub downtime: String,
    /// How long each session takes, when the rule set says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_minutes: Option<SessionMinutes>,
    pub results: Vec<DatedMilestone>,
    /// The eligibility of the first session, with its reasons.
    pub first_session: Eligibility,
    pub ruleset: RuleSetRef,
}

/// A declared fact, enough to build an intake form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactInfo {
    pub id: String,
    #[serde(rename = "type")]
    pub fact_type: String,
    pub question: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_means: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneCapInfo {
    pub zone: String,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub max_depth_mm: DepthMm,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub start_depth_mm: DepthMm,
}

/// A treatment as the rule set describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TreatmentInfo {
    pub code: String,
    pub name: String,
    pub description: String,
    pub needle: bool,
    pub setting: String,
    pub roles: Vec<String>,
    pub best_for: Vec<String>,
    pub devices: Vec<String>,
    pub min_interval_days: i64,
    pub sessions: u32,
    pub max_sessions: u32,
    pub interval_days: i64,
    pub zones: Vec<ZoneCapInfo>,
    pub downtime: String,
    /// How long a session takes, when the rule set says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_minutes: Option<SessionMinutes>,
    pub contraindication_rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TreatmentList {
    pub treatments: Vec<TreatmentInfo>,
    pub ruleset: RuleSetRef,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactList {
    pub facts: Vec<FactInfo>,
    pub ruleset: RuleSetRef,
}
