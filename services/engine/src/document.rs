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
    /// The rule set's id (`base`, `clinic-aurora`): clinics and answers refer to it by this name.
    pub id: String,
    /// The version as published; a rule set is never changed in place, a new version is published.
    pub version: String,
    /// A human title, for listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Set on a clinic overlay: the id of the rule set it tightens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// The catalogue of sources that numbers and rules cite by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Spanned<SourceDoc>>,
    /// The intake questions: the only facts rules may use and requests may answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<Spanned<FactDoc>>,
    /// The treatment zones (forehead, cheeks, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<Spanned<NamedDoc>>,
    /// Procedures a client's history may name; every treatment is one too, so gaps after it can be
    /// ruled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub procedures: Vec<Spanned<NamedDoc>>,
    /// The concerns a client comes with (acne scars, ...), which plans are made for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indications: Vec<Spanned<NamedDoc>>,
    /// Where treatments are given (clinic, home); a setting may cap depth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<Spanned<SettingDoc>>,
    /// Operator roles; a role may cap depth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Spanned<RoleDoc>>,
    /// Numbers on which sources disagree, with named options and a conservative default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Spanned<PolicyDoc>>,
    /// Depth caps by indication that bind every needle treatment (a treatment may only go lower).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indication_caps: Vec<Spanned<IndicationCapDoc>>,
    /// The treatments the rule set decides about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub treatments: Vec<Spanned<TreatmentDoc>>,
    /// The devices, with the treatments they serve and their depth limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Spanned<DeviceDoc>>,
    /// The rules over facts, history and request inputs that refuse, defer, send for review or add
    /// precautions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contraindications: Vec<Spanned<RuleDoc>>,
    /// Gaps required after a past procedure before a treatment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interactions: Vec<Spanned<InteractionDoc>>,
    /// The codes other systems book treatments by (a clinic's booking catalogue, a standard
    /// terminology): a ConceptMap-like table from a service code to a treatment. An appointment
    /// whose `serviceType` carries one is checked as that treatment (CDS Hooks). A base and an
    /// overlay may both have one; a code maps to one treatment only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_codes: Vec<Spanned<ServiceCodeDoc>>,
    /// Overlay only: the option chosen for a named policy (`policy id -> option id`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub choose: BTreeMap<String, String>,
    /// Overlay only: stricter numbers for things the base declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tighten: Option<TightenDoc>,
    /// A declared loosening: this version is knowingly more permissive than the one active
    /// before it, for this reason, approved by this person. Without it, publishing a version
    /// that loosens the active one is refused, naming each loosening. Stored with the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loosening: Option<LooseningDoc>,
}

/// Why a version may be more permissive than the active one, and who approved it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LooseningDoc {
    /// Why the rule set loosens (the new evidence, the clinic's decision).
    pub reason: String,
    /// Who approved it (a medical director's name or staff id).
    pub approved_by: String,
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

/// A source the rule set cites: numbers and rules name it by id, so a reader can check them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDoc {
    /// The id numbers and rules cite.
    pub id: String,
    /// The source's title.
    pub title: String,
    /// Where it can be read.
    pub url: String,
    /// How strong it is as evidence.
    pub grade: Grade,
}

/// A thing with an id and a display name (zones, procedures, indications).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedDoc {
    /// The id requests and rules use.
    pub id: String,
    /// The display name.
    pub name: String,
    /// Standard codes for it (SNOMED CT procedures and body structures). Absent when no standard
    /// code exists; never an empty list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<crate::api::Coding>>,
}

/// The kind of answer a fact takes; a condition comparing it with the wrong kind of value is
/// refused at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactType {
    /// Yes or no.
    Bool,
    /// A whole number within `min..=max`.
    Integer,
    /// One of the declared `values`.
    Enum,
    /// A date (`YYYY-MM-DD`), or `null` for never when the fact declares `null_means`.
    Date,
}

/// An intake question: the only kind of client data rules may use.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FactDoc {
    /// The id requests answer it by and conditions name.
    pub id: String,
    /// The kind of answer it takes.
    #[serde(rename = "type")]
    pub fact_type: FactType,
    /// The question an intake form shows.
    pub question: String,
    /// Integer facts: the smallest answer accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Integer facts: the largest answer accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Enum facts: the answers accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Date facts: what an explicit `null` answer means (e.g. "never took isotretinoin").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_means: Option<String>,
    /// Enum facts: the display label of each value (`erythematotelangiectatic` → "Redness and
    /// visible vessels"), for forms and reports. Absent, or one label for every value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Standard codes of the question or of what it asks about (LOINC, SNOMED CT, RxNorm, ATC):
    /// how an EHR's data is matched to this fact. Absent when no standard code exists; never an
    /// empty list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<crate::api::Coding>>,
    /// What the codes stand for (`now`, the default; `ever`; `allergy`): how a clinical record
    /// answers the fact. Only with `codes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes_mean: Option<crate::api::CodesMean>,
}

/// A number with its provenance, or a reference to a named policy that supplies it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum QuantityDoc {
    /// The value of a named policy's chosen option.
    Policy(PolicyRefDoc),
    /// A number with its evidence grade and sources.
    Sourced(SourcedDoc),
}

/// A depth in mm: sourced (`{value, evidence, sources, note}`), or a bare number. The bundled
/// rule sets give every depth its provenance (a test walks them); a bare number stays readable
/// for small fixtures and older documents.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum DepthDoc {
    /// A depth with its evidence grade and sources.
    Sourced(SourcedDoc),
    /// A depth without provenance.
    Bare(f64),
}

impl DepthDoc {
    /// The number, in mm.
    pub fn mm(&self) -> f64 {
        match self {
            Self::Sourced(s) => s.value,
            Self::Bare(v) => *v,
        }
    }

    /// The same provenance with a smaller number (an overlay's lower cap lowers the start too).
    pub fn at_most(&mut self, mm: f64) {
        match self {
            Self::Sourced(s) => s.value = s.value.min(mm),
            Self::Bare(v) => *v = v.min(mm),
        }
    }

    /// The sources it cites (none for a bare number).
    pub fn sources(&self) -> &[String] {
        match self {
            Self::Sourced(s) => &s.sources,
            Self::Bare(_) => &[],
        }
    }
}

/// A reference to a named policy, standing for its chosen option's value.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRefDoc {
    /// The policy id.
    pub policy: String,
}

/// A number with its provenance: every number the engine uses can be traced to a source, or is
/// flagged as inferred or clinic policy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourcedDoc {
    /// The number.
    pub value: f64,
    /// Its evidence grade.
    pub evidence: Grade,
    /// The sources that state it, by id; required unless the grade is `INFERRED` or
    /// `CLINIC_POLICY`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Why the number holds: the reasoning of an `INFERRED` number, the clinic's reason for a
    /// `CLINIC_POLICY` one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where a treatment is done; a setting may cap the depth (home use).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SettingDoc {
    /// The setting id treatments name.
    pub id: String,
    /// The display name.
    pub name: String,
    /// A depth cap for every treatment given in this setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth_mm: Option<QuantityDoc>,
}

/// An operator role (physician, nurse, aesthetician, ...): who may perform which treatment, and how
/// deep.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDoc {
    /// The role id requests and treatments name.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The role's own depth cap; absent means the role adds no cap (others still bind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth_mm: Option<QuantityDoc>,
}

/// What a policy's numbers measure, which says which way is stricter (an overlay may only choose a
/// stricter option).
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
    /// The policy id quantities refer to.
    pub id: String,
    /// What the policy decides, and why sources differ.
    pub description: String,
    /// What its numbers measure.
    pub unit: PolicyUnit,
    /// The option used unless an overlay chooses another: the conservative one.
    pub default: String,
    /// The named options, each with its own evidence.
    pub options: Vec<PolicyOptionDoc>,
}

/// One option of a policy, with its provenance.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOptionDoc {
    /// The option id an overlay's `choose` names.
    pub id: String,
    /// Its number.
    pub value: f64,
    /// Its evidence grade.
    pub evidence: Grade,
    /// The sources that state it, by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Why the option holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A treatment: who may give it where, how often and how deep, what comes before and after, and
/// what to expect.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TreatmentDoc {
    /// The treatment code requests use; also declared as a procedure, so history can name it.
    pub id: String,
    /// The display name.
    pub name: String,
    /// What it is, for staff and clients.
    pub description: String,
    /// `false` for treatments without needles (microdermabrasion): no depth limits.
    pub needle: bool,
    /// Where it is given (a setting id).
    pub setting: String,
    /// Operator roles allowed to perform it.
    pub roles: Vec<String>,
    /// Indications (concerns) this treatment is best for: drives plan recommendations.
    pub best_for: Vec<String>,
    /// Minimum days between two sessions of this treatment.
    pub min_interval_days: QuantityDoc,
    /// The usual course: how many sessions, how far apart.
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
    /// What the client does before a session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub precare: Vec<InstructionDoc>,
    /// What the client does after a session, and for how long.
    pub aftercare: AftercareDoc,
    /// What to expect, and when, as plans date it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<MilestoneDoc>,
    /// What to expect in the days after a session.
    pub downtime: String,
}

/// A course of sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CourseDoc {
    /// The usual number of sessions.
    pub sessions: QuantityDoc,
    /// The most sessions in a course (at least `sessions`).
    pub max_sessions: QuantityDoc,
    /// The usual days between two sessions (at least the treatment's minimum interval).
    pub interval_days: QuantityDoc,
}

/// The length of one session in minutes, each end a sourced number.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionMinutesDoc {
    /// The shortest session, in minutes.
    pub min: QuantityDoc,
    /// The longest session, in minutes.
    pub max: QuantityDoc,
}

/// A zone a treatment may reach, with its depth cap.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneDepthDoc {
    /// The zone id.
    pub zone: String,
    /// The deepest this treatment may go in this zone, in mm.
    pub max_depth_mm: QuantityDoc,
    /// Depth of a conservative first session in this zone.
    pub start_depth_mm: DepthDoc,
    /// Why the cap is what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A depth cap for an indication (a concern treated more shallowly, whatever the zone).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IndicationCapDoc {
    /// The indication id.
    pub indication: String,
    /// The cap, in mm.
    pub max_depth_mm: QuantityDoc,
}

/// An instruction for the client, with its sources.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstructionDoc {
    /// The instruction.
    pub text: String,
    /// The sources that give it, by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Precaution rule ids: a plan leaves the instruction out for a client one of them applies
    /// to, or may apply to (an unanswered question never keeps "numb the skin" for a client who
    /// may not be numbed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless: Vec<String>,
}

/// What the client does after a session, and for how long.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AftercareDoc {
    /// How many days aftercare lasts.
    pub duration_days: QuantityDoc,
    /// The instructions.
    pub instructions: Vec<InstructionDoc>,
}

/// The session a milestone is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// Counted from the first session (an early effect).
    FirstSession,
    /// Counted from the last session (the result of the whole course).
    LastSession,
}

/// A result to expect, a number of days after a session, with its evidence: a plan never promises
/// more than its source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MilestoneDoc {
    /// What to expect.
    pub milestone: String,
    /// How many days after the anchor session (0 to 3650).
    pub days: i64,
    /// The session it is counted from.
    pub after: Anchor,
    /// Its evidence grade.
    pub evidence: Grade,
    /// The sources that state it, by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Why the number holds, required in spirit for `INFERRED` milestones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A device, the treatments it serves and its depth limits (labelled and evaluated).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDoc {
    /// The device id requests name.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The treatments it may be used for.
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

/// What a rule does when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EffectKind {
    /// Refuses the treatment: `contraindicated`.
    Contraindicate,
    /// Postpones it: `deferred`, with the date the wait ends when one can be known.
    Defer,
    /// Sends the client to a clinician first: `needs_review`.
    RequireReview,
    /// Allows it with instructions, and possibly a lower depth cap: `eligible_with_precautions`.
    Precaution,
}

/// How strong a rule is, as graded by its authors (shown to staff beside the effect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    /// Never, for this client.
    Absolute,
    /// Not until a wait ends or a condition resolves.
    DeferUntil,
    /// Only with a clinician's clearance.
    RelativeRequiresClearance,
    /// Allowed, with the treatment modified or extra care taken.
    CautionModify,
}

/// A contraindication rule: a condition over facts and history, and what follows when it holds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    /// The rule id: stable across versions, named in every answer it fires in.
    pub id: String,
    /// Treatments the rule applies to; absent means every treatment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<Vec<String>>,
    /// The condition; may be absent only for a `defer` with `after_fact` (the wait is the condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<ConditionDoc>,
    /// What it does when it holds.
    pub effect: EffectKind,
    /// For `defer`: how long the deferral lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defer: Option<DeferDoc>,
    /// For `precaution`: the instructions and any depth cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precaution: Option<PrecautionDoc>,
    /// How strong it is.
    pub severity: Severity,
    /// The evidence grade of the rule.
    pub evidence: Grade,
    /// The sources it rests on, by id.
    pub sources: Vec<String>,
    /// What staff read: the clinical reason.
    pub staff_message: String,
    /// What the client reads: plain words, no jargon.
    pub client_message: String,
}

/// How long a `defer` lasts: `days` after a date fact, or `until: resolved`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeferDoc {
    /// A date fact the wait runs from (the last dose, the procedure date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_fact: Option<String>,
    /// How many days the wait lasts after `after_fact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<QuantityDoc>,
    /// `resolved`: no date can be given; the client comes back once the condition has resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<UntilDoc>,
}

/// How a deferral without a date ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UntilDoc {
    /// When the condition has resolved, as staff judge it on the client's return.
    Resolved,
}

/// What a precaution asks for: instructions, and possibly a lower depth cap.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrecautionDoc {
    /// What staff must do or tell the client.
    pub instructions: Vec<String>,
    /// A depth cap in mm for the zones below, named in `bound_by` of depth limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_cap_mm: Option<DepthDoc>,
    /// Days of preparation the precaution asks for before the first session (e.g. skin
    /// pre-conditioning): a plan for a client it applies to starts this many days later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_after_days: Option<QuantityDoc>,
    /// Zones the depth cap applies to; absent means every zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
}

/// A gap required after a past procedure before the treatment.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InteractionDoc {
    /// The rule id, named in answers.
    pub id: String,
    /// The past procedure the gap runs from.
    pub after: String,
    /// Treatments it applies to; absent means every treatment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<Vec<String>>,
    /// How many days must pass after the procedure.
    pub days: QuantityDoc,
    /// The other order: how soon the procedure may follow the treatment (a booked one counts as
    /// much as a past one). Required: either a sourced wait, or why none is stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<ThenDoc>,
    /// The evidence grade of the gap.
    pub evidence: Grade,
    /// The sources it rests on, by id.
    pub sources: Vec<String>,
    /// What staff read.
    pub staff_message: String,
    /// What the client reads.
    pub client_message: String,
}

/// How soon an interaction's procedure may follow the treatment: exactly one of the two.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThenDoc {
    /// The procedure must come at least this many days after the treatment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<QuantityDoc>,
    /// No source states a wait in this order: why (a booked procedure then does not move the
    /// session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unstated: Option<String>,
}

/// A declarative predicate. Exactly one form per node:
/// `all`, `any`, `not`, `fact` (+ one comparison), `within_days`, `age_years`, `device_in`,
/// `zone_in` or `indication_in`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDoc {
    /// True when every part is true; false as soon as one is false; otherwise unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<ConditionDoc>>,
    /// True as soon as one part is true; false when every part is false; otherwise unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<ConditionDoc>>,
    /// The negation (unknown stays unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<ConditionDoc>>,
    /// A fact compared with a value by exactly one of `eq`, `in`, `lt`, `lte`, `gt`, `gte`; unknown
    /// while unanswered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<String>,
    /// Equal to this value (bool, integer and enum facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<ScalarDoc>,
    /// One of these values (integer and enum facts).
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_: Option<Vec<ScalarDoc>>,
    /// Less than this value (integer facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<ScalarDoc>,
    /// At most this value (integer facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<ScalarDoc>,
    /// More than this value (integer facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<ScalarDoc>,
    /// At least this value (integer facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<ScalarDoc>,
    /// A date fact or a past procedure within some days before the check date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<WithinDaysDoc>,
    /// The client's age in whole years on the check date.
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
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction: no fact takes one, so a comparison with it is refused at load.
    Float(f64),
    /// Text: an enum value.
    Text(String),
}

/// True when a date fact, or a past procedure, lies within `days` before the check date.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WithinDaysDoc {
    /// A date fact (exactly one of `fact` or `procedure`). `null` (never) makes the condition
    /// false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<String>,
    /// A procedure in the client's history (exactly one of `fact` or `procedure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<String>,
    /// How many days before the check date count.
    pub days: QuantityDoc,
}

/// A comparison on the client's age in whole years on the check date (from `date_of_birth`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgeDoc {
    /// Younger than this many years (exactly one of `lt` or `gte`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<i64>,
    /// At least this many years old (exactly one of `lt` or `gte`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<i64>,
}

/// What an overlay may make stricter.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TightenDoc {
    /// Stricter numbers for treatments: a longer minimum interval, shallower zone caps, fewer
    /// roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub treatments: Vec<Spanned<TightenTreatmentDoc>>,
    /// Shallower caps for roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Spanned<TightenCapDoc>>,
    /// Shallower caps for devices (below their labelled maximum).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Spanned<TightenCapDoc>>,
    /// Shallower caps for settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<Spanned<TightenCapDoc>>,
    /// Stricter rule-set indication caps (`id` is the indication); binds every needle treatment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indication_caps: Vec<Spanned<TightenCapDoc>>,
}

/// One row of `service_codes`: a code of another system and the treatment it books.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCodeDoc {
    /// The code system's URI (`http://snomed.info/sct`, `http://www.ama-assn.org/go/cpt`, or the
    /// clinic's own, `https://aurora.example/services`).
    pub system: String,
    /// The code in that system.
    pub code: String,
    /// What the code system calls it, for people reading the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The treatment it books, by id.
    pub treatment: String,
}

/// Stricter numbers for one treatment at this clinic.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TightenTreatmentDoc {
    /// The treatment, by id in the base.
    pub id: String,
    /// A longer minimum interval in days (a course planned faster is slowed to match).
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

/// A shallower depth cap for something the base declares (a role, device, setting or indication).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TightenCapDoc {
    /// What is capped, by id in the base.
    pub id: String,
    /// The new cap in mm: no deeper than the base's.
    pub max_depth_mm: f64,
    /// The clinic's sources for it, by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Why the clinic tightens (carried onto the number, grade `CLINIC_POLICY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
