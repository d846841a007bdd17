//! The rule-set document as authors write it (YAML or JSON), before validation.
//!
//! These types mirror the file format one to one and carry no meaning of their own: the
//! `compile` module checks every reference and turns a document into a [`crate::RuleSet`].
//! Every list item is wrapped in [`Spanned`] so a validation error can name the line it came
//! from. Unknown keys are rejected everywhere (`deny_unknown_fields`): a misspelt key in a
//! clinical rule must never be silently ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// A whole rule-set document: the base rule set, or a clinic overlay (`extends` set).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetDoc {
    pub id: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Set on a clinic overlay: the id of the rule set it tightens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Spanned<SourceDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<Spanned<FactDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<Spanned<NamedDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub procedures: Vec<Spanned<NamedDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indications: Vec<Spanned<NamedDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<Spanned<SettingDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Spanned<RoleDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Spanned<PolicyDoc>>,
    /// Depth caps by indication that bind every needle treatment (a treatment may only go lower).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indication_caps: Vec<Spanned<IndicationCapDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub treatments: Vec<Spanned<TreatmentDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Spanned<DeviceDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contraindications: Vec<Spanned<RuleDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interactions: Vec<Spanned<InteractionDoc>>,
    /// Overlay only: the option chosen for a named policy (`policy id -> option id`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub choose: BTreeMap<String, String>,
    /// Overlay only: stricter numbers for things the base declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tighten: Option<TightenDoc>,
}

/// Evidence grade of a number or rule (see `clinical-evidence.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Grade {
    /// Regulation or FDA text.
    #[serde(rename = "REG")]
    Reg,
    /// Manufacturer labelling or instructions for use.
    #[serde(rename = "IFU")]
    Ifu,
    /// Peer-reviewed trial.
    #[serde(rename = "TRIAL")]
    Trial,
    /// Peer-reviewed review or consensus.
    #[serde(rename = "REV")]
    Rev,
    /// Clinic, trade or blog page: practice lore.
    #[serde(rename = "CLINIC")]
    Clinic,
    /// No source states it; inferred by the rule-set authors (and flagged as such).
    #[serde(rename = "INFERRED")]
    Inferred,
    /// Set by a clinic for its own practice (overlays).
    #[serde(rename = "CLINIC_POLICY")]
    ClinicPolicy,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDoc {
    pub id: String,
    pub title: String,
    pub url: String,
    pub grade: Grade,
}

/// A thing with an id and a display name (zones, procedures, indications).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedDoc {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactType {
    Bool,
    Integer,
    Enum,
    Date,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FactDoc {
    pub id: String,
    #[serde(rename = "type")]
    pub fact_type: FactType,
    /// The question an intake form shows.
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Date facts: what an explicit `null` answer means (e.g. "never took isotretinoin").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_means: Option<String>,
}

/// A number with its provenance, or a reference to a named policy that supplies it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum QuantityDoc {
    Policy(PolicyRefDoc),
    Sourced(SourcedDoc),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRefDoc {
    pub policy: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourcedDoc {
    pub value: f64,
    pub evidence: Grade,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where a treatment is done; a setting may cap the depth (home use).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SettingDoc {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth_mm: Option<QuantityDoc>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDoc {
    pub id: String,
    pub name: String,
    /// The role's own depth cap; absent means the role adds no cap (others still bind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth_mm: Option<QuantityDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyUnit {
    /// A waiting period: more days is stricter.
    Days,
    /// A depth: fewer millimetres is stricter.
    Mm,
}

/// A number on which sources disagree: named options and a conservative default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub id: String,
    pub description: String,
    pub unit: PolicyUnit,
    pub default: String,
    pub options: Vec<PolicyOptionDoc>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOptionDoc {
    pub id: String,
    pub value: f64,
    pub evidence: Grade,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TreatmentDoc {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `false` for treatments without needles (microdermabrasion): no depth limits.
    pub needle: bool,
    pub setting: String,
    /// Operator roles allowed to perform it.
    pub roles: Vec<String>,
    /// Indications (concerns) this treatment is best for: drives plan recommendations.
    pub best_for: Vec<String>,
    /// Minimum days between two sessions of this treatment.
    pub min_interval_days: QuantityDoc,
    pub course: CourseDoc,
    /// Per-zone depth caps. A zone not listed cannot be treated with this treatment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneDepthDoc>,
    /// Depth caps by indication, applied on top of the zone caps and of the rule set's own
    /// `indication_caps` (a treatment's cap may only be lower than the rule set's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indication_caps: Vec<IndicationCapDoc>,
    /// How long a session takes, in minutes (`{min, max}`), with its provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_minutes: Option<SessionMinutesDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub precare: Vec<InstructionDoc>,
    pub aftercare: AftercareDoc,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<MilestoneDoc>,
    pub downtime: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CourseDoc {
    pub sessions: QuantityDoc,
    pub max_sessions: QuantityDoc,
    pub interval_days: QuantityDoc,
}

/// The length of one session in minutes, each end a sourced number.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionMinutesDoc {
    pub min: QuantityDoc,
    pub max: QuantityDoc,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneDepthDoc {
    pub zone: String,
    pub max_depth_mm: QuantityDoc,
    /// Depth of a conservative first session in this zone.
    pub start_depth_mm: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IndicationCapDoc {
    pub indication: String,
    pub max_depth_mm: QuantityDoc,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstructionDoc {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AftercareDoc {
    pub duration_days: QuantityDoc,
    pub instructions: Vec<InstructionDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    FirstSession,
    LastSession,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MilestoneDoc {
    pub milestone: String,
    pub days: i64,
    pub after: Anchor,
    pub evidence: Grade,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Why the number holds, required in spirit for `INFERRED` milestones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDoc {
    pub id: String,
    pub name: String,
    pub treatments: Vec<String>,
    /// Labelled maximum needle depth: a hard cap. Absent only for devices without needles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth_mm: Option<QuantityDoc>,
    /// Deepest setting whose safety the maker evaluated (SkinPen: 1.5 mm of 2.5 mm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_max_depth_mm: Option<QuantityDoc>,
    /// Fixed-length needles (a roller or stamp): the device always reaches `max_depth_mm` and cannot
    /// be set shallower, so it may not serve a treatment whose setting caps depth below it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fixed_depth: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EffectKind {
    Contraindicate,
    Defer,
    RequireReview,
    Precaution,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    Absolute,
    DeferUntil,
    RelativeRequiresClearance,
    CautionModify,
}

/// A contraindication rule: a condition over facts and history, and what follows when it holds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    pub id: String,
    /// Treatments the rule applies to; absent means every treatment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<Vec<String>>,
    /// The condition; may be absent only for a `defer` with `after_fact` (the wait is the condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<ConditionDoc>,
    pub effect: EffectKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defer: Option<DeferDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precaution: Option<PrecautionDoc>,
    pub severity: Severity,
    pub evidence: Grade,
    pub sources: Vec<String>,
    pub staff_message: String,
    pub client_message: String,
}

/// How long a `defer` lasts: `days` after a date fact, or `until: resolved`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeferDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_fact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<QuantityDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<UntilDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UntilDoc {
    Resolved,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrecautionDoc {
    pub instructions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_cap_mm: Option<f64>,
    /// Zones the depth cap applies to; absent means every zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
}

/// A gap required after a past procedure before the treatment.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InteractionDoc {
    pub id: String,
    pub after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<Vec<String>>,
    pub days: QuantityDoc,
    pub evidence: Grade,
    pub sources: Vec<String>,
    pub staff_message: String,
    pub client_message: String,
}

/// A declarative predicate. Exactly one form per node:
/// `all`, `any`, `not`, `fact` (+ one comparison), `within_days`, `age_years`, `device_in`,
/// `zone_in` or `indication_in`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<ConditionDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<ConditionDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<ConditionDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<ScalarDoc>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_: Option<Vec<ScalarDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<ScalarDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<ScalarDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<ScalarDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<ScalarDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<WithinDaysDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_years: Option<AgeDoc>,
    /// True when the request's device is one of these. Unknown (and named in
    /// `missing_inputs`) when the request names no device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_in: Option<Vec<String>>,
    /// True when one of the request's zones is one of these. Unknown (and named in
    /// `missing_inputs`) when the request names no zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_in: Option<Vec<String>>,
    /// True when the request's indication is one of these. Unknown (and named in
    /// `missing_inputs`) when the request names no indication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indication_in: Option<Vec<String>>,
}

/// A literal in a comparison.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ScalarDoc {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// True when a date fact, or a past procedure, lies within `days` before the check date.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WithinDaysDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<String>,
    pub days: QuantityDoc,
}

/// A comparison on the client's age in whole years on the check date (from `date_of_birth`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgeDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<i64>,
}

/// What an overlay may make stricter.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TightenDoc {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub treatments: Vec<Spanned<TightenTreatmentDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Spanned<TightenCapDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Spanned<TightenCapDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<Spanned<TightenCapDoc>>,
    /// Stricter rule-set indication caps (`id` is the indication); binds every needle treatment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indication_caps: Vec<Spanned<TightenCapDoc>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TightenTreatmentDoc {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_interval_days: Option<f64>,
    /// Zone id -> stricter depth cap in mm.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub zones: BTreeMap<String, f64>,
    /// Roles to withdraw from this treatment at this clinic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_roles: Vec<String>,
    /// The clinic's sources for these numbers (ids from the base or overlay catalogue).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Why the clinic tightens (carried onto every tightened number, grade `CLINIC_POLICY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TightenCapDoc {
    pub id: String,
    pub max_depth_mm: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
