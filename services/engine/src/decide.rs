//! Decisions: which rules fire for a client, and what follows (docs/design.md §4).
//!
//! The strongest fired rule wins. `incomplete` is the answer when a rule that could not be
//! decided (a fact unanswered) could give a stronger answer than the rules that fired: a missing
//! answer is never read as "no".

use std::sync::Arc;

use jiff::civil::Date;

use crate::api::*;
use crate::conditions::{Ctx, Tri, add_days};
use crate::error::{RequestError, Violations};
use crate::facts::{FactVal, FactValues};
use crate::ids::{Input, Ix, Missing};
use crate::intake::{check_date, parse_history};
use crate::model::*;
use crate::suggest;

/// The result of evaluating every rule of one treatment for one client.
pub(crate) struct Outcome {
    pub decision: Decision,
    /// The rules that fired, by rule index in rule order, with a dated deferral's end: the
    /// answer's reasons and precautions (built, or rendered, from the rule set's shared texts).
    pub fired: Vec<Fired>,
    pub missing: Missing,
    pub earliest_date: Option<Date>,
    /// Indices of rules left undecided for lack of a date or history.
    pub not_evaluated: Vec<usize>,
    /// Indices of precaution rules left undecided: a depth limit applies their caps too, so an
    /// unanswered question never reads as the deeper, optimistic limit.
    pub unknown_precautions: Vec<usize>,
}

/// A rule that fired: its index, and for a dated deferral the first day it no longer holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fired {
    pub rule: usize,
    pub until: Option<Date>,
}

impl Outcome {
    /// The reasons of the answer, sharing each rule's text.
    pub fn reasons(&self, rs: &Compiled) -> Vec<Reason> {
        self.fired
            .iter()
            .filter_map(|f| {
                rs.rules.get(f.rule).map(|r| Reason {
                    info: r.info.clone(),
                    until: f.until,
                })
            })
            .collect()
    }

    /// The precautions of the answer (the fired precaution rules', in rule order).
    pub fn precautions(&self, rs: &Compiled) -> Vec<Arc<PrecautionInfo>> {
        self.fired_precautions(rs)
            .filter_map(|i| match rs.rules.get(i).map(|r| &r.effect) {
                Some(Effect::Precaution(p)) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    /// Indices of fired precaution rules (their depth caps apply).
    pub fn fired_precautions<'a>(&'a self, rs: &'a Compiled) -> impl Iterator<Item = usize> + 'a {
        self.fired.iter().map(|f| f.rule).filter(|i| {
            matches!(
                rs.rules.get(*i).map(|r| &r.effect),
                Some(Effect::Precaution(_))
            )
        })
    }
}

fn level(effect: &Effect) -> Decision {
    match effect {
        Effect::Contraindicate => Decision::Contraindicated,
        Effect::Defer => Decision::Deferred,
        Effect::RequireReview => Decision::NeedsReview,
        Effect::Precaution(_) => Decision::EligibleWithPrecautions,
    }
}

/// The decision from the strongest fired rule and the strongest undecided one.
///
/// This is the one place where "unknown never reads as no" is decided, for every question the
/// engine answers: an answer is bookable only when every rule that applies was decided. Any
/// undecided rule (a fact unanswered, or a date, history, device or zone not given) could add a
/// refusal, a wait, a review, or a precaution's depth cap and instructions, so a bookable
/// answer with an undecided rule becomes `incomplete`; a stronger undecided rule does the same
/// to `needs_review`. Refusals and deferrals that did fire stand: they are certain.
pub(crate) fn combine(strongest: Decision, strongest_unknown: Option<Decision>) -> Decision {
    let could_change = strongest_unknown.is_some_and(|u| u > strongest || strongest.bookable());
    if could_change && strongest < Decision::Incomplete {
        Decision::Incomplete
    } else {
        strongest
    }
}

/// Evaluates every rule of `treatment` in three-valued logic. Inputs the request lacks (date,
/// history, device, zones) leave the rules that need them undecided, never skipped.
///
/// A deferral's earliest date is the first day no dated wait holds: the day one wait ends may
/// fall in another (a procedure booked later, the wait after it), so that day is decided again
/// until it is free ([`first_free_day`]).
pub(crate) fn evaluate(rs: &Compiled, treatment: Ix, ctx: &Ctx<'_>) -> Outcome {
    let mut o = evaluate_on(rs, treatment, ctx);
    o.earliest_date = o
        .earliest_date
        .and_then(|first| first_free_day(rs, treatment, ctx, first));
    o
}

/// How many times [`first_free_day`] decides a later day again at most. A real client's waits
/// chain a few times; a history crafted to chain thousands of waits (a body of 256 KiB holds
/// about 5,000 entries, each step reads them all) would otherwise multiply a decision's work by
/// its length. Past the bound no date is promised: the answer stays `deferred`, `earliest_date`
/// null, as for a wait that lasts until resolved.
const MAX_DATE_STEPS: usize = 16;

/// The first day from `day` on that no dated wait defers, or `None` when none is found before
/// the calendar ends or within [`MAX_DATE_STEPS`]. Each step passes at least one history entry
/// (past it, or past its wait), so two steps per entry and one more suffice for any history
/// that chains fewer waits than the bound.
fn first_free_day(rs: &Compiled, treatment: Ix, ctx: &Ctx<'_>, mut day: Date) -> Option<Date> {
    let steps = ctx
        .history
        .map_or(0, <[_]>::len)
        .saturating_mul(2)
        .saturating_add(2)
        .min(MAX_DATE_STEPS);
    for _ in 0..steps {
        let o = evaluate_on(
            rs,
            treatment,
            &Ctx {
                date: Some(day),
                ..*ctx
            },
        );
        match (o.decision, o.earliest_date) {
            (Decision::Deferred, Some(next)) if next > day && next < Date::MAX => day = next,
            (Decision::Deferred, _) => return None,
            _ => return Some(day),
        }
    }
    None
}

/// [`evaluate`] on the context's date alone: the earliest date is the end of the longest wait
/// that fired, not yet checked against the other waits.
fn evaluate_on(rs: &Compiled, treatment: Ix, ctx: &Ctx<'_>) -> Outcome {
    let mut strongest = Decision::Eligible;
    let mut strongest_unknown: Option<Decision> = None;
    let mut fired = Vec::new();
    let mut missing = Missing::default();
    let mut latest_until: Option<Date> = None;
    let mut until_resolved = false;
    let mut not_evaluated = Vec::new();
    let mut unknown_precautions = Vec::new();

    for (i, rule) in rs.rules.iter().enumerate() {
        if !rule
            .applies
            .get(usize::from(treatment))
            .copied()
            .unwrap_or(false)
        {
            continue;
        }
        let mut m = Missing::default();
        let (tri, until) = holds(rule, ctx, &mut m);
        let lvl = level(&rule.effect);
        match tri {
            Tri::True => {
                strongest = strongest.max(lvl);
                if let Effect::Defer = rule.effect {
                    match until {
                        Some(u) => latest_until = latest_until.max(Some(u)),
                        None => until_resolved = true,
                    }
                }
                fired.push(Fired { rule: i, until });
            }
            Tri::Unknown => {
                if m.needs(Input::Date) || m.needs(Input::History) {
                    not_evaluated.push(i);
                }
                if let Effect::Precaution(_) = rule.effect {
                    unknown_precautions.push(i);
                }
                missing.union(m);
                strongest_unknown = strongest_unknown.max(Some(lvl));
            }
            Tri::False => {}
        }
    }

    let decision = combine(strongest, strongest_unknown);
    // A date is given only when it is certain: an unanswered rule that could defer or refuse
    // might move it, so then no date is given and `missing_facts` says what to ask.
    let date_certain = strongest_unknown.is_none_or(|u| u < Decision::Deferred);
    let earliest_date = (decision == Decision::Deferred && !until_resolved && date_certain)
        .then_some(latest_until)
        .flatten();
    Outcome {
        decision,
        fired,
        missing,
        earliest_date,
        not_evaluated,
        unknown_precautions,
    }
}

/// Whether one rule holds, and for a dated deferral the first day it no longer does.
pub(crate) fn holds(rule: &Rule, ctx: &Ctx<'_>, missing: &mut Missing) -> (Tri, Option<Date>) {
    // A precaution scoped to zones (a neck depth cap) does not apply to a request whose zones
    // are given and are none of them; without zones it stays in (the conservative reading).
    if let (Some(scope), Some(asked)) = (&rule.cap_zones, ctx.zones)
        && !asked.iter().any(|z| scope.contains(z))
    {
        return (Tri::False, None);
    }
    match &rule.kind {
        RuleKind::Cond(c) => (c.eval(ctx, missing), None),
        RuleKind::AfterFact { fact, days, extra } => {
            // The wait holds while the date is before `fact + days`, and `extra` holds: false as
            // soon as either part is false, unknown (naming what is missing) otherwise.
            let mut m = Missing::default();
            let extra = extra.as_ref().map_or(Tri::True, |c| c.eval(ctx, &mut m));
            let (wait, until) = match (ctx.facts.get(*fact), ctx.date) {
                (FactVal::Never, _) => (Tri::False, None),
                (FactVal::Date(d), Some(date)) => {
                    let until = add_days(d, *days);
                    if date < until {
                        (Tri::True, Some(until))
                    } else {
                        (Tri::False, None)
                    }
                }
                (FactVal::Date(_), None) => {
                    m.input(Input::Date);
                    (Tri::Unknown, None)
                }
                _ => {
                    m.fact(*fact);
                    (Tri::Unknown, None)
                }
            };
            match (wait, extra) {
                (Tri::False, _) | (_, Tri::False) => (Tri::False, None),
                (Tri::True, Tri::True) => (Tri::True, until),
                _ => {
                    missing.union(m);
                    (Tri::Unknown, None)
                }
            }
        }
        RuleKind::Gap {
            procedure,
            days,
            then,
        } => {
            let Some(history) = ctx.history else {
                missing.input(Input::History);
                if ctx.date.is_none() {
                    missing.input(Input::Date);
                }
                return (Tri::Unknown, None);
            };
            let mut entries = history.iter().filter(|(p, _)| p == procedure).peekable();
            if entries.peek().is_none() {
                // Never had it and none booked: no gap to keep, whatever the date.
                return (Tri::False, None);
            }
            let Some(date) = ctx.date else {
                missing.input(Input::Date);
                return (Tri::Unknown, None);
            };
            // History holds past and booked procedures alike. One on or before the date holds
            // the treatment for `days` after it; one booked after the date must itself come
            // `then` days after the treatment. Either way the date is free again only once the
            // procedure is past and its wait is over.
            let until = entries
                .filter(|(_, d)| {
                    if *d <= date {
                        date < add_days(*d, *days)
                    } else {
                        then.is_some_and(|t| *d < add_days(date, t))
                    }
                })
                .map(|(_, d)| add_days(*d, *days).max(add_days(*d, 1)))
                .max();
            match until {
                Some(u) => (Tri::True, Some(u)),
                None => (Tri::False, None),
            }
        }
    }
}

pub(crate) fn fact_names(rs: &Compiled, missing: Missing) -> Vec<String> {
    missing
        .facts
        .iter()
        .map(|ix| rs.facts.name(ix).to_owned())
        .collect()
}

pub(crate) fn input_names(missing: Missing) -> Vec<String> {
    missing.inputs().map(|i| i.name().to_owned()).collect()
}

/// Resolves an optional id, naming the field when it is unknown.
pub(crate) fn lookup(
    names: &Names,
    kind: &str,
    id: &str,
    field: &str,
    errors: &mut Violations,
) -> Option<Ix> {
    let ix = names.get(id);
    if ix.is_none() {
        errors.push(field, suggest::unknown(kind, id, names.iter()));
    }
    ix
}

/// Checks that a role may perform a treatment and a device serves it.
pub(crate) fn check_role_device(
    rs: &Compiled,
    t: Ix,
    role: Option<Ix>,
    device: Option<Ix>,
    errors: &mut Violations,
) {
    let tname = rs.treatments.name(t);
    let Some(def) = rs.treatment_defs.get(usize::from(t)) else {
        return;
    };
    if let Some(r) = role
        && !def.roles.contains(&r)
    {
        let roles: Vec<&str> = def.roles.iter().map(|r| rs.roles.name(*r)).collect();
        errors.push(
            "role",
            format!(
                "role '{}' does not perform '{tname}' ({})",
                rs.roles.name(r),
                suggest::allowed(&roles)
            ),
        );
    }
    if let Some(d) = device
        && !rs
            .device_defs
            .get(usize::from(d))
            .is_some_and(|dev| dev.treatments.contains(&t))
    {
        let devices: Vec<&str> = rs
            .device_defs
            .iter()
            .enumerate()
            .filter(|(_, dev)| dev.treatments.contains(&t))
            .filter_map(|(i, _)| Ix::try_from(i).ok().map(|i| rs.devices.name(i)))
            .collect();
        errors.push(
            "device",
            format!(
                "device '{}' is not a device for '{tname}' ({})",
                rs.devices.name(d),
                suggest::allowed(&devices)
            ),
        );
    }
}

/// Whether a treatment may be given in a zone: a needle treatment only where it has a depth cap.
pub(crate) fn zone_reachable(def: &Treatment, zone: Ix) -> bool {
    !def.needle
        || def
            .zones
            .get(usize::from(zone))
            .is_some_and(Option::is_some)
}

/// Checks that zones exist and that the treatment has a depth cap for each (needle treatments).
pub(crate) fn check_zones(
    rs: &Compiled,
    t: Ix,
    zones: &[String],
    errors: &mut Violations,
) -> Vec<Ix> {
    let Some(def) = rs.treatment_defs.get(usize::from(t)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, z) in zones.iter().enumerate() {
        let field = format!("zones[{i}]");
        let Some(zix) = lookup(&rs.zones, "zone", z, &field, errors) else {
            continue;
        };
        if out.contains(&zix) {
            errors.push(
                field,
                format!("zone '{z}' is listed twice: name each zone once"),
            );
            continue;
        }
        if !zone_reachable(def, zix) {
            let reachable: Vec<&str> = def
                .zones
                .iter()
                .enumerate()
                .filter(|(_, cap)| cap.is_some())
                .filter_map(|(i, _)| Ix::try_from(i).ok().map(|i| rs.zones.name(i)))
                .collect();
            errors.push(
                field,
                format!(
                    "zone '{z}' is not treated with '{}': no depth cap is set for it ({})",
                    rs.treatments.name(t),
                    suggest::allowed(&reachable)
                ),
            );
            continue;
        }
        out.push(zix);
    }
    out
}

impl RuleSet {
    /// May this client have this treatment on this date?
    pub fn eligibility(&self, req: &EligibilityRequest) -> Result<Eligibility, RequestError> {
        let resolved = ResolvedEligibility::of(&self.0, req)?;
        let o = evaluate(&self.0, resolved.treatment, &resolved.ctx(req.date));
        Ok(self.eligibility_of(resolved.treatment, req.date, o))
    }

    /// The eligibility answer from the evaluation of a resolved request on `date`.
    pub(crate) fn eligibility_of(&self, t: Ix, date: Date, o: Outcome) -> Eligibility {
        let rs = &*self.0;
        Eligibility {
            treatment: rs.treatments.name(t).to_owned(),
            date,
            decision: o.decision,
            bookable: o.decision.bookable(),
            earliest_date: o.earliest_date,
            reasons: o.reasons(rs),
            missing_facts: fact_names(rs, o.missing),
            missing_inputs: input_names(o.missing),
            precautions: o.precautions(rs),
            ruleset: rs.meta.clone(),
        }
    }

    /// Which treatments are contraindicated for this client, and what must still be asked?
    pub fn contraindications(
        &self,
        req: &ContraindicationRequest,
    ) -> Result<ContraindicationReport, RequestError> {
        let rs = &*self.0;
        let mut errors = Violations::default();
        let facts = crate::fhir::parse_answers(
            rs,
            &req.facts,
            req.questionnaire_response.as_ref(),
            &mut errors,
        );
        let history = req
            .history
            .as_ref()
            .map(|h| parse_history(rs, h, &mut errors));
        if let Some(date) = req.date {
            check_date(rs, "date", date, &mut errors);
        }
        if req.treatments.as_ref().is_some_and(Vec::is_empty) {
            // An empty report would look like an all-clear.
            errors.push(
                "treatments",
                "name at least one treatment, or leave `treatments` out to check them all",
            );
        }
        let treatments: Vec<Ix> = match &req.treatments {
            None => (0..rs.treatments.len())
                .filter_map(|i| Ix::try_from(i).ok())
                .collect(),
            Some(list) => {
                let mut out: Vec<Ix> = Vec::with_capacity(list.len());
                for (i, t) in list.iter().enumerate() {
                    let field = format!("treatments[{i}]");
                    let Some(ix) = lookup(&rs.treatments, "treatment", t, &field, &mut errors)
                    else {
                        continue;
                    };
                    if out.contains(&ix) {
                        // An answer is never larger than its question deserves: a treatment
                        // listed thousands of times would be answered thousands of times.
                        errors.push(
                            field,
                            format!("treatment '{t}' is listed twice: name each treatment once"),
                        );
                    } else {
                        out.push(ix);
                    }
                }
                out
            }
        };
        errors.finish(())?;
        let ctx = Ctx {
            date: req.date,
            history: history.as_deref(),
            ..Ctx::facts_only(&facts)
        };
        let mut missing = Missing::default();
        let mut skipped: Vec<usize> = Vec::new();
        let results = treatments
            .into_iter()
            .map(|t| {
                let o = evaluate(rs, t, &ctx);
                missing.union(o.missing);
                skipped.extend(&o.not_evaluated);
                let mut outcome = outcome_for(rs, t, o);
                if req.explain {
                    // A second, explaining walk: `evaluate` allocates nothing for it.
                    outcome.explanation = Some(crate::explain::explain_rules(rs, t, &ctx));
                }
                outcome
            })
            .collect();
        skipped.sort_unstable();
        skipped.dedup();
        Ok(ContraindicationReport {
            results,
            missing_facts: fact_names(rs, missing),
            missing_inputs: input_names(missing),
            not_evaluated: skipped
                .iter()
                .filter_map(|i| rs.rules.get(*i))
                .map(|r| r.info.rule.clone())
                .collect(),
            ruleset: rs.meta.clone(),
        })
    }
}

pub(crate) fn outcome_for(rs: &Compiled, t: Ix, o: Outcome) -> TreatmentOutcome {
    TreatmentOutcome {
        explanation: None,
        treatment: rs.treatments.name(t).to_owned(),
        decision: o.decision,
        bookable: o.decision.bookable(),
        reasons: o.reasons(rs),
        missing_facts: fact_names(rs, o.missing),
        missing_inputs: input_names(o.missing),
        precautions: o.precautions(rs),
    }
}

/// An eligibility request resolved against a rule set: every check and error of
/// [`RuleSet::eligibility`] in one place, which the decision and its explanation both read, so an
/// explanation never accepts a request the decision refuses.
pub(crate) struct ResolvedEligibility {
    pub treatment: Ix,
    pub facts: FactValues,
    pub history: Vec<(Ix, Date)>,
    pub device: Option<Ix>,
    pub zones: Option<Vec<Ix>>,
    pub indication: Option<Ix>,
}

impl ResolvedEligibility {
    pub(crate) fn of(rs: &Compiled, req: &EligibilityRequest) -> Result<Self, RequestError> {
        let mut errors = Violations::default();
        let t = lookup(
            &rs.treatments,
            "treatment",
            &req.treatment,
            "treatment",
            &mut errors,
        );
        let facts = crate::fhir::parse_answers(
            rs,
            &req.facts,
            req.questionnaire_response.as_ref(),
            &mut errors,
        );
        let history = parse_history(rs, &req.history, &mut errors);
        let role = req
            .role
            .as_deref()
            .and_then(|r| lookup(&rs.roles, "role", r, "role", &mut errors));
        let device = req
            .device
            .as_deref()
            .and_then(|d| lookup(&rs.devices, "device", d, "device", &mut errors));
        let indication = req
            .indication
            .as_deref()
            .and_then(|i| lookup(&rs.indications, "indication", i, "indication", &mut errors));
        check_date(rs, "date", req.date, &mut errors);
        let mut zones = None;
        if let Some(t) = t {
            check_role_device(rs, t, role, device, &mut errors);
            if let Some(asked) = &req.zones {
                if asked.is_empty() {
                    // An empty list would read as "no zone" and clear every zone rule.
                    errors.push(
                        "zones",
                        "name at least one zone, or leave `zones` out (zone rules stay undecided)",
                    );
                }
                zones = Some(check_zones(rs, t, asked, &mut errors));
            }
        }
        let Some(treatment) = errors.finish(t)? else {
            return Err(RequestError::field("treatment", "unknown treatment"));
        };
        Ok(Self {
            treatment,
            facts,
            history,
            device,
            zones,
            indication,
        })
    }

    /// The evaluation context on `date`.
    pub(crate) fn ctx(&self, date: Date) -> Ctx<'_> {
        Ctx {
            facts: &self.facts,
            date: Some(date),
            history: Some(&self.history),
            device: self.device,
            zones: self.zones.as_deref(),
            indication: self.indication,
        }
    }
}
