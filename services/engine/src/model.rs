//! The compiled rule set: every name resolved to an index, every policy to its number.
//!
//! Built once by `compile`, then shared read-only (`Arc`) by every request. Nothing here parses
//! or allocates per decision beyond the answer itself.

use std::collections::HashMap;
use std::sync::Arc;

use crate::api::{Coding, PrecautionInfo, RuleInfo, RuleSetRef};
use crate::conditions::Cond;
use crate::depth::DepthMm;
use crate::document::Grade;
use crate::ids::Ix;

/// An immutable, validated rule set. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RuleSet(pub(crate) Arc<Compiled>);

impl RuleSet {
    /// The id, version and digest every answer names.
    pub fn meta(&self) -> &RuleSetRef {
        &self.0.meta
    }
}

/// Names and their indices, in declaration order.
///
/// Looked up for every name of every request: hashed with foldhash (a fixed seed), since the
/// keys are the rule set's own ids and a request only looks up, never inserts, so no input can
/// degrade the table (SipHash was 10 % of a decision's instructions).
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub ids: Vec<Arc<str>>,
    index: HashMap<Arc<str>, Ix, foldhash::fast::FixedState>,
}

impl Names {
    pub fn insert(&mut self, id: &str) -> Option<Ix> {
        if self.index.contains_key(id) {
            return None;
        }
        let ix = Ix::try_from(self.ids.len()).ok()?;
        let id: Arc<str> = Arc::from(id);
        self.ids.push(id.clone());
        self.index.insert(id, ix);
        Some(ix)
    }

    pub fn get(&self, id: &str) -> Option<Ix> {
        self.index.get(id).copied()
    }

    pub fn name(&self, ix: Ix) -> &str {
        self.ids.get(usize::from(ix)).map_or("", |s| s)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(|s| &**s)
    }
}

#[derive(Debug)]
pub(crate) struct Compiled {
    pub meta: RuleSetRef,
    pub facts: Names,
    pub fact_defs: Vec<FactDef>,
    pub zones: Names,
    pub procedures: Names,
    pub indications: Names,
    pub settings: Names,
    pub setting_caps: Vec<Option<DepthMm>>,
    pub roles: Names,
    pub role_caps: Vec<Option<DepthMm>>,
    pub treatments: Names,
    pub treatment_defs: Vec<Treatment>,
    pub devices: Names,
    pub device_defs: Vec<Device>,
    /// Display names, for the catalogue.
    pub display: DisplayNames,
    pub rules: Vec<Rule>,
    /// The `date_of_birth` fact, for age conditions.
    pub date_of_birth: Option<Ix>,
    /// The most days any rule or plan adds to a request date. A request date later than the
    /// calendar's end minus this is refused, so no consequence of it can overflow the calendar
    /// (a deferral that saturated at 9999-12-31 would vanish).
    pub horizon_days: i64,
    /// The answer texts serialised once, when the rule set is compiled ([`crate::render`]), so
    /// no request pays for them.
    pub fragments: crate::render::Fragments,
    /// `service_codes`: the codes of other systems that book a treatment.
    pub service_codes: Vec<crate::ehr::ServiceCode>,
}

impl Compiled {
    /// The horizon: the longest wait, gap or window of any rule, and the longest span a plan
    /// schedules (sessions, then its results after the last one).
    pub fn horizon(&self) -> i64 {
        let rules = self.rules.iter().map(|r| match &r.kind {
            RuleKind::Cond(c) => c.max_days(),
            RuleKind::AfterFact { days, extra, .. } => {
                (*days).max(extra.as_ref().map_or(0, Cond::max_days))
            }
            RuleKind::Gap { days, then, .. } => (*days).max(then.unwrap_or(0)),
        });
        let preparation = self
            .rules
            .iter()
            .map(|r| r.start_after_days)
            .max()
            .unwrap_or(0);
        let plans = self.treatment_defs.iter().map(|t| {
            let sessions = i64::from(t.sessions.max(t.max_sessions)).saturating_sub(1);
            let results = t.results.iter().map(|m| m.days).max().unwrap_or(0);
            sessions
                .saturating_mul(t.interval_days)
                .saturating_add(results)
                .saturating_add(t.aftercare_days)
                .saturating_add(preparation)
        });
        rules.chain(plans).max().unwrap_or(0).max(0)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum FactKind {
    Bool,
    Integer { min: i64, max: i64 },
    Enum { values: Vec<Arc<str>> },
    Date { null_means: Option<String> },
}

#[derive(Debug)]
pub(crate) struct FactDef {
    pub kind: FactKind,
    pub question: String,
    /// Enum facts: the display label of each value, in the order of `values`; empty when the
    /// rule set gives none.
    pub labels: Vec<String>,
    /// Standard codes of the question or of what it asks about; empty when none is given.
    pub codes: Vec<Coding>,
    /// What the codes stand for.
    pub codes_mean: crate::api::CodesMean,
}

/// The display name of each zone, procedure, indication, role and device, indexed like their
/// `Names` (the ids). Only the catalogue reads them.
#[derive(Debug, Default)]
pub(crate) struct DisplayNames {
    pub zones: Vec<String>,
    pub procedures: Vec<String>,
    pub indications: Vec<String>,
    pub roles: Vec<String>,
    pub devices: Vec<String>,
    /// Standard codes of each zone, procedure and indication (empty where none is given).
    pub zone_codes: Vec<Vec<Coding>>,
    pub procedure_codes: Vec<Vec<Coding>>,
    pub indication_codes: Vec<Vec<Coding>>,
}

#[derive(Debug)]
pub(crate) struct ZoneCap {
    pub max: DepthMm,
    pub start: DepthMm,
}

#[derive(Debug)]
pub(crate) struct Milestone {
    pub text: String,
    pub days: i64,
    pub after_last: bool,
    pub evidence: Grade,
}

#[derive(Debug)]
pub(crate) struct Treatment {
    pub name: String,
    pub description: String,
    pub needle: bool,
    pub setting: Ix,
    pub roles: Vec<Ix>,
    pub best_for: Vec<Ix>,
    /// This treatment as a procedure in history.
    pub procedure: Ix,
    pub min_interval_days: i64,
    pub sessions: u32,
    pub max_sessions: u32,
    pub interval_days: i64,
    /// By zone index; `None` means the zone is not treated.
    pub zones: Vec<Option<ZoneCap>>,
    /// By indication index.
    pub indication_caps: Vec<Option<DepthMm>>,
    pub precare: Vec<Instruction>,
    pub aftercare_days: i64,
    pub aftercare: Vec<Instruction>,
    pub results: Vec<Milestone>,
    pub downtime: String,
    pub session_minutes: Option<crate::api::SessionMinutes>,
}

/// A precare or aftercare instruction, and the precaution rules (by index) that leave it out of a
/// plan.
#[derive(Debug)]
pub(crate) struct Instruction {
    pub text: String,
    pub unless: Vec<usize>,
}

impl Instruction {
    /// The instruction's text; `unless` is resolved once the rules are compiled.
    pub fn of(doc: &crate::document::InstructionDoc) -> Self {
        Self {
            text: doc.text.clone(),
            unless: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Device {
    pub treatments: Vec<Ix>,
    pub max: Option<DepthMm>,
    pub evaluated_max: Option<DepthMm>,
}

/// How a rule decides whether it holds.
#[derive(Debug)]
pub(crate) enum RuleKind {
    /// A condition over facts (and possibly history and age).
    Cond(Cond),
    /// Holds while the check date is before `fact + days` (and `extra`, if any, holds).
    AfterFact {
        fact: Ix,
        days: i64,
        extra: Option<Cond>,
    },
    /// A gap between a procedure and the treatment, in both orders. Holds while the check date
    /// is before `procedure + days` for a procedure in history on or before it, or while a
    /// procedure in history after it (booked) falls less than `then` days after it. `then` is
    /// `None` where no source states the second order.
    Gap {
        procedure: Ix,
        days: i64,
        then: Option<i64>,
    },
}

#[derive(Debug)]
pub(crate) enum Effect {
    Contraindicate,
    /// A deferral; its `until` date comes from the rule kind, or never (until resolved).
    Defer,
    RequireReview,
    Precaution(Arc<PrecautionInfo>),
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub info: Arc<RuleInfo>,
    /// Treatments it applies to, by treatment index.
    pub applies: Vec<bool>,
    pub kind: RuleKind,
    pub effect: Effect,
    /// For a precaution depth cap: zones it applies to by zone index (`None`: all).
    pub cap_zones: Option<Vec<Ix>>,
    /// For a precaution: days of preparation before a plan's first session.
    pub start_after_days: i64,
}
