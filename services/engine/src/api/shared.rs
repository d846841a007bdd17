//! What every question and answer shares: the client's answers and history, the decision scale,
//! the rule set an answer came from, and the rules, sources and precautions it cites.

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
