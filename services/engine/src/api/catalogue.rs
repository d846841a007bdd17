//! The catalogue views: the facts (intake questions), the ids a request may name (zones,
//! procedures, indications, roles, devices) with their codes, and the treatments.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::depth::DepthMm;

use super::{RuleSetRef, SessionMinutes};

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
