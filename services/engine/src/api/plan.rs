//! Treatment plans: a course for one client, its dated sessions with a depth per zone, its care
//! instructions and the results to expect.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::depth::DepthMm;
use crate::document::Grade;

use super::{Eligibility, Facts, HistoryEntry, RuleSetRef};

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
    /// The client's answers as a FHIR R4 QuestionnaireResponse to the rule set's Questionnaire
    /// (`GET /fhir/Questionnaire/{ruleset}`), instead of `facts`; a fault names the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub questionnaire_response: Option<serde_json::Value>,
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
