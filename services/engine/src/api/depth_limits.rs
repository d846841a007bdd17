//! Depth limits: how deep a device may go, per zone, for an operator (and a client), and what
//! bounds each limit.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::depth::DepthMm;

use super::{Facts, HistoryEntry, RuleSetRef, TreatmentOutcome};

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
    /// The client's answers as a FHIR R4 QuestionnaireResponse to the rule set's Questionnaire,
    /// instead of `facts` (the same as sending them as facts); a fault names the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub questionnaire_response: Option<serde_json::Value>,
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
