//! The questions the engine answers and the shape of its answers.
//!
//! These are the REST JSON bodies one to one (the server derives its OpenAPI document from them
//! with the `openapi` feature) and the source of the gRPC messages. Names are contracts
//! (docs/design.md §7): adding a field is fine, renaming one is a breaking change.
//!
//! One file per family of questions: [`eligibility`] (eligibility and contraindication checks),
//! [`depth_limits`], [`plan`] and [`catalogue`] (the views of facts, ids and treatments), with
//! what they all share in [`shared`]. Every type is re-exported here, and from the crate root.

mod catalogue;
mod depth_limits;
mod eligibility;
mod plan;
mod shared;

pub use catalogue::{
    Catalogue, CodesMean, Coding, DeviceInfo, FactInfo, FactList, NamedInfo, RoleInfo,
    TreatmentInfo, TreatmentList, ZoneCapInfo,
};
pub use depth_limits::{Bound, DepthLimits, DepthLimitsRequest, ZoneBound, ZoneLimit};
pub use eligibility::{
    ContraindicationReport, ContraindicationRequest, Eligibility, EligibilityRequest,
    TreatmentOutcome,
};
pub use plan::{
    Aftercare, BlockedSession, DatedMilestone, Plan, PlanRequest, PlanStatus, PlannedSession,
    SessionMinutes, ZoneDepth,
};
pub use shared::{
    Decision, Facts, HistoryEntry, PrecautionInfo, Reason, RuleInfo, RuleSetRef, SourceRef,
};
