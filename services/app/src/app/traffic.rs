//! A dry run's impact on real traffic: the latest logged decisions of each clinic whose served
//! rules a move changes, decided again on the rule set served now and on the candidate, and
//! counted by how their answers differ (an outcome moving, a depth cap going deeper or
//! shallower).
//!
//! - **Nothing is written.** The decisions are read from the log and decided in memory; no
//!   decision is logged, counted in the decision metric or cached.
//! - **Both sides decided now.** A logged answer may come from an older version; deciding the
//!   logged request on both the served and the candidate rule set isolates what the move
//!   changes. Where nothing is served now (a first activation), the logged answer stands in.
//! - **Never a silent zero.** A decision that cannot be decided on one side (the candidate lacks
//!   its treatment, say) is counted as `not_replayable`; a log that cannot be read says so in
//!   `error` instead of an empty impact.
//! - **The tenant rule.** A clinic key sees its own clinic's decisions only; counts, never facts.

use std::collections::BTreeMap;

use protocol_engine::RuleSet;
use serde::Serialize;
use serde_json::Value;

use super::answer_diff::diff;
use super::replay_decision::{decide, unmasked};
use super::{App, AppError};
use crate::auth::{Caller, Scope};
use crate::decision_log::LoggedDecision;
use crate::store::MoveOutcome;

/// A dry run's impact on the logged traffic of every clinic it changes.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct TrafficPreview {
    /// How many of each clinic's latest decisions were decided again
    /// (`PROTOCOL_DECISION_LOG_IMPACT_SAMPLE`).
    pub sample_per_clinic: u32,
    /// One entry per clinic (and rule set) with logged decisions, by rule set then clinic.
    pub clinics: Vec<ClinicTraffic>,
    /// Why the log could not be read, when it could not: the impact is then unknown, not zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a move changes in one clinic's latest logged decisions.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ClinicTraffic {
    /// The rule set that answered them.
    pub ruleset: String,
    /// The clinic that asked (`null`: an open server's callers).
    pub clinic: Option<String>,
    /// Decisions decided again.
    pub decisions: usize,
    /// How many of them the move answers differently.
    pub changed: usize,
    /// Each outcome that moves, counted: `eligible -> deferred`.
    pub outcomes: Vec<OutcomeShift>,
    /// Depth caps (a zone's or a session's `max_depth_mm`) that go deeper, and shallower.
    pub deeper: usize,
    pub shallower: usize,
    /// Decisions one side could not decide (e.g. a treatment the candidate no longer has).
    pub not_replayable: usize,
}

/// An outcome that moves, and how many decisions move so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutcomeShift {
    pub from: String,
    pub to: String,
    pub count: usize,
}

impl ClinicTraffic {
    /// Counts one decision: its answer on the served rule set and on the candidate.
    fn count(&mut self, before: Option<(String, Value)>, after: Option<(String, Value)>) {
        self.decisions += 1;
        let (Some((from, old)), Some((to, new))) = (before, after) else {
            self.not_replayable += 1;
            return;
        };
        let changes = diff(&old, &new);
        if changes.is_empty() {
            return;
        }
        self.changed += 1;
        if from != to {
            match self
                .outcomes
                .iter_mut()
                .find(|o| o.from == from && o.to == to)
            {
                Some(o) => o.count += 1,
                None => self.outcomes.push(OutcomeShift { from, to, count: 1 }),
            }
        }
        for c in &changes {
            if !c.path.ends_with("max_depth_mm") || c.path.contains("bounds[") {
                continue;
            }
            let number = |v: &Option<Value>| v.as_ref().and_then(Value::as_f64);
            match (number(&c.before), number(&c.after)) {
                (Some(b), Some(a)) if a > b => self.deeper += 1,
                (Some(b), Some(a)) if a < b => self.shallower += 1,
                _ => {}
            }
        }
    }
}

/// One logged decision decided on `rs`: its outcome and answer, `None` if `rs` refuses it.
fn decided(logged: &LoggedDecision, rs: &RuleSet) -> Option<(String, Value)> {
    let request = unmasked(logged.request.clone(), &logged.masked_facts);
    decide(&logged.operation, &logged.treatment, request, rs)
        .ok()
        .map(|(d, answer)| (d.as_str().to_owned(), answer))
}

impl App {
    /// The traffic impact of a dry run: `None` unless it is one and the decision log is on.
    pub(super) async fn traffic(
        &self,
        caller: &Caller,
        m: &MoveOutcome,
    ) -> Result<Option<TrafficPreview>, AppError> {
        let (Some(preview), Some(log)) = (&m.preview, &self.ctx.decision_log) else {
            return Ok(None);
        };
        // The tenant rule: a clinic key counts its own clinic's decisions; the platform every
        // clinic's.
        let clinic = if caller.has(Scope::Platform) {
            None
        } else {
            Some(caller.tenant.as_deref().unwrap_or_default())
        };
        let mut out = TrafficPreview {
            sample_per_clinic: log.impact_sample,
            ..TrafficPreview::default()
        };
        for effect in &m.effect.rulesets {
            let Some(candidate) = preview.after.rulesets.get(&effect.ruleset) else {
                continue;
            };
            let served = preview
                .before
                .as_ref()
                .and_then(|c| c.rulesets.get(&effect.ruleset));
            let logged = match log.recent(&effect.ruleset, clinic).await {
                Ok(logged) => logged,
                Err(e) => {
                    out.error = Some(e.to_string());
                    out.clinics.clear();
                    return Ok(Some(out));
                }
            };
            // Deciding grows with the clinics and the sample: off the runtime's workers.
            let (ruleset, candidate, served) =
                (effect.ruleset.clone(), candidate.clone(), served.cloned());
            let clinics = tokio::task::spawn_blocking(move || {
                tally(&ruleset, &logged, served.as_ref(), &candidate)
            })
            .await
            .map_err(|e| {
                AppError::DecisionLog(crate::decision_log::ReadError::Unreachable(format!(
                    "the impact on logged decisions could not be computed: {e}"
                )))
            })?;
            out.clinics.extend(clinics);
        }
        Ok(Some(out))
    }
}

/// The logged decisions of rule set `ruleset`, decided on the rule set served now (the logged
/// answer where none is) and on the candidate, counted per clinic.
fn tally(
    ruleset: &str,
    logged: &[LoggedDecision],
    served: Option<&RuleSet>,
    candidate: &RuleSet,
) -> Vec<ClinicTraffic> {
    let mut clinics: BTreeMap<Option<String>, ClinicTraffic> = BTreeMap::new();
    for d in logged {
        let before = match served {
            Some(rs) => decided(d, rs),
            None => Some((d.decision.clone(), d.answer.clone())),
        };
        clinics
            .entry(d.clinic.clone())
            .or_insert_with(|| ClinicTraffic {
                ruleset: ruleset.to_owned(),
                clinic: d.clinic.clone(),
                ..ClinicTraffic::default()
            })
            .count(before, decided(d, candidate));
    }
    clinics.into_values().collect()
}
