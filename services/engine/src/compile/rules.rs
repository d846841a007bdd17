//! Contraindication rules, procedure interactions and the built-in minimum interval between
//! sessions of the same treatment, all compiled to one list of [`Rule`]s.

use std::collections::HashSet;
use std::sync::Arc;

use crate::api::{PrecautionInfo, RuleInfo};
use crate::document::*;
use crate::ids::Ix;
use crate::model::*;

use super::{Compiler, Item};

/// Treatments a rule applies to, as a mask by treatment index (all when `None`).
fn applies(
    this: &mut Compiler<'_>,
    ids: Option<&Vec<String>>,
    path: &str,
    line: Option<u64>,
) -> Vec<bool> {
    let n = this.c.treatments.len();
    match ids {
        None => vec![true; n],
        Some(ids) => {
            if ids.is_empty() {
                this.problem(
                    path,
                    line,
                    "lists no treatment; leave `applies_to` out to mean every treatment",
                );
            }
            let mut mask = vec![false; n];
            for ix in this.resolve_all("treatment", |c| &c.treatments, ids, path, line) {
                if let Some(slot) = mask.get_mut(usize::from(ix)) {
                    *slot = true;
                }
            }
            mask
        }
    }
}

pub(super) fn compile_rules(this: &mut Compiler<'_>, rules: &[Item<'_, RuleDoc>]) {
    let mut ids = HashSet::new();
    for item in rules {
        let (r, path, line) = (item.value, item.path.as_str(), item.line);
        if !ids.insert(r.id.clone()) {
            this.problem(
                format!("{path}.id"),
                line,
                format!("duplicate rule id '{}'", r.id),
            );
        }
        let mask = applies(
            this,
            r.applies_to.as_ref(),
            &format!("{path}.applies_to"),
            line,
        );
        let sources = this.cite(path, line, &r.sources);
        if r.sources.is_empty() && r.evidence != Grade::ClinicPolicy {
            this.problem(
                format!("{path}.sources"),
                line,
                "a rule needs at least one source",
            );
        }
        let when = match &r.when {
            Some(c) => this.condition(&format!("{path}.when"), line, c).map(Some),
            None => Some(None),
        };
        if r.effect != EffectKind::Defer && r.defer.is_some() {
            this.problem(
                format!("{path}.defer"),
                line,
                "only `effect: defer` takes a `defer` block",
            );
        }
        if r.effect != EffectKind::Precaution && r.precaution.is_some() {
            this.problem(
                format!("{path}.precaution"),
                line,
                "only `effect: precaution` takes a `precaution` block",
            );
        }
        let mut cap_zones = None;
        let mut start_after_days = 0;
        let effect = match r.effect {
            EffectKind::Contraindicate => Some(Effect::Contraindicate),
            EffectKind::RequireReview => Some(Effect::RequireReview),
            EffectKind::Defer => Some(Effect::Defer),
            EffectKind::Precaution => match &r.precaution {
                None => {
                    this.problem(
                        path,
                        line,
                        "`effect: precaution` needs a `precaution` block with instructions",
                    );
                    None
                }
                Some(p) => {
                    let ppath = format!("{path}.precaution");
                    let cap = p.depth_cap_mm.as_ref().and_then(|mm| {
                        this.cite(&format!("{ppath}.depth_cap_mm"), line, mm.sources());
                        this.depth_value(&format!("{ppath}.depth_cap_mm"), line, mm.mm())
                    });
                    if let Some(q) = &p.start_after_days {
                        start_after_days = this
                            .days(&format!("{ppath}.start_after_days"), line, q)
                            .unwrap_or_default();
                    }
                    if let Some(zones) = &p.zones {
                        cap_zones = Some(this.resolve_all(
                            "zone",
                            |c| &c.zones,
                            zones,
                            &format!("{ppath}.zones"),
                            line,
                        ));
                    }
                    if p.instructions.is_empty() {
                        this.problem(
                            format!("{ppath}.instructions"),
                            line,
                            "a precaution needs at least one instruction",
                        );
                    }
                    Some(Effect::Precaution(Arc::new(PrecautionInfo {
                        rule: r.id.clone(),
                        instructions: p.instructions.clone(),
                        depth_cap_mm: cap,
                        zones: p.zones.clone(),
                    })))
                }
            },
        };
        let kind = match (r.effect, &r.defer, when) {
            (_, _, None) => None,
            (EffectKind::Defer, None, _) => {
                this.problem(path, line, "`effect: defer` needs a `defer` block: `{after_fact, days}` or `{until: resolved}`");
                None
            }
            (EffectKind::Defer, Some(d), Some(when)) => deferral(this, path, line, d, when),
            (_, _, Some(Some(cond))) => Some(RuleKind::Cond(cond)),
            (_, _, Some(None)) => {
                this.problem(path, line, "needs a `when` condition");
                None
            }
        };
        if let (Some(kind), Some(effect)) = (kind, effect) {
            push_rule(
                this,
                r.id.clone(),
                r.effect,
                r.severity,
                r.evidence,
                sources,
                &r.staff_message,
                &r.client_message,
                mask,
                kind,
                effect,
                cap_zones,
            );
            if let Some(rule) = this.c.rules.last_mut() {
                rule.start_after_days = start_after_days;
            }
        }
    }
}

fn deferral(
    this: &mut Compiler<'_>,
    path: &str,
    line: Option<u64>,
    d: &DeferDoc,
    when: Option<crate::conditions::Cond>,
) -> Option<RuleKind> {
    let dpath = format!("{path}.defer");
    match (&d.after_fact, &d.days, d.until) {
        (Some(fact), Some(days), None) => {
            let ix = this.resolve(
                "fact",
                |c| &c.facts,
                fact,
                &format!("{dpath}.after_fact"),
                line,
            )?;
            if !matches!(
                this.c.fact_defs.get(usize::from(ix)).map(|f| &f.kind),
                Some(FactKind::Date { .. })
            ) {
                this.problem(
                    format!("{dpath}.after_fact"),
                    line,
                    format!("'{fact}' is not a date fact"),
                );
                return None;
            }
            let days = this.days(&format!("{dpath}.days"), line, days)?;
            Some(RuleKind::AfterFact {
                fact: ix,
                days,
                extra: when,
            })
        }
        (None, None, Some(UntilDoc::Resolved)) => match when {
            Some(cond) => Some(RuleKind::Cond(cond)),
            None => {
                this.problem(
                    path,
                    line,
                    "a deferral until resolved needs a `when` condition",
                );
                None
            }
        },
        _ => {
            this.problem(
                dpath,
                line,
                "needs either `after_fact` with `days`, or `until: resolved`",
            );
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn push_rule(
    this: &mut Compiler<'_>,
    id: String,
    effect_kind: EffectKind,
    severity: Severity,
    evidence: Grade,
    sources: Vec<crate::api::SourceRef>,
    staff: &str,
    client: &str,
    applies: Vec<bool>,
    kind: RuleKind,
    effect: Effect,
    cap_zones: Option<Vec<Ix>>,
) {
    let info = Arc::new(RuleInfo {
        rule: id,
        effect: effect_kind,
        severity,
        summary: staff.to_owned(),
        client_message: client.to_owned(),
        evidence,
        sources,
    });
    this.c.rules.push(Rule {
        info,
        applies,
        kind,
        effect,
        cap_zones,
        start_after_days: 0,
    });
}

/// Resolves each precare and aftercare instruction's `unless` to precaution rule indices: a
/// name that is no precaution rule of this rule set is refused (a misspelt id would keep an
/// instruction the author meant to drop).
pub(super) fn resolve_unless(this: &mut Compiler<'_>, doc: &RuleSetDoc) {
    for (i, t) in doc.treatments.iter().enumerate() {
        let Some(tix) = this.c.treatments.get(&t.value.id) else {
            continue;
        };
        let line = super::line_of(t);
        let lists = [
            ("precare", &t.value.precare),
            ("aftercare.instructions", &t.value.aftercare.instructions),
        ];
        for (list, instructions) in lists {
            for (j, ins) in instructions.iter().enumerate() {
                let mut resolved = Vec::new();
                for (k, id) in ins.unless.iter().enumerate() {
                    let found = this.c.rules.iter().position(|r| {
                        r.info.rule == *id && matches!(r.effect, Effect::Precaution(_))
                    });
                    match found {
                        Some(ix) => resolved.push(ix),
                        None => this.problem(
                            format!("treatments[{i}].{list}[{j}].unless[{k}]"),
                            line,
                            format!("'{id}' is not a precaution rule of this rule set"),
                        ),
                    }
                }
                let def = this.c.treatment_defs.get_mut(usize::from(tix));
                let slot = def.and_then(|d| {
                    if list == "precare" {
                        d.precare.get_mut(j)
                    } else {
                        d.aftercare.get_mut(j)
                    }
                });
                if let Some(slot) = slot {
                    slot.unless = resolved;
                }
            }
        }
    }
}

pub(super) fn compile_interactions(this: &mut Compiler<'_>, list: &[Item<'_, InteractionDoc>]) {
    let mut ids: HashSet<String> = this.c.rules.iter().map(|r| r.info.rule.clone()).collect();
    for item in list {
        let (x, path, line) = (item.value, item.path.as_str(), item.line);
        if !ids.insert(x.id.clone()) {
            this.problem(
                format!("{path}.id"),
                line,
                format!("duplicate rule id '{}'", x.id),
            );
        }
        let procedure = this.resolve(
            "procedure",
            |c| &c.procedures,
            &x.after,
            &format!("{path}.after"),
            line,
        );
        let mask = applies(
            this,
            x.applies_to.as_ref(),
            &format!("{path}.applies_to"),
            line,
        );
        let days = this.days(&format!("{path}.days"), line, &x.days);
        let then = then_days(this, x, path, line);
        let sources = this.cite(path, line, &x.sources);
        if x.sources.is_empty() && !matches!(x.evidence, Grade::ClinicPolicy | Grade::Inferred) {
            this.problem(
                format!("{path}.sources"),
                line,
                "an interaction needs at least one source (or evidence INFERRED)",
            );
        }
        if let (Some(procedure), Some(days), Some(then)) = (procedure, days, then) {
            let kind = RuleKind::Gap {
                procedure,
                days,
                then,
            };
            push_rule(
                this,
                x.id.clone(),
                EffectKind::Defer,
                Severity::DeferUntil,
                x.evidence,
                sources,
                &x.staff_message,
                &x.client_message,
                mask,
                kind,
                Effect::Defer,
                None,
            );
        }
    }
}

/// The second order of an interaction (`then`): `Some(Some(days))` for a stated wait,
/// `Some(None)` where the author says why none is stated or says nothing (documents written
/// before `then` existed, published and replayed as they were: no second order), `None` (a
/// problem recorded) when the document gives both or an empty reason. The bundled rule sets state
/// it for every interaction (a test walks them).
fn then_days(
    this: &mut Compiler<'_>,
    x: &InteractionDoc,
    path: &str,
    line: Option<u64>,
) -> Option<Option<i64>> {
    let field = format!("{path}.then");
    match &x.then {
        None => Some(None),
        Some(ThenDoc {
            days: Some(q),
            unstated: None,
        }) => this.days(&format!("{field}.days"), line, q).map(Some),
        Some(ThenDoc {
            days: None,
            unstated: Some(why),
        }) if !why.trim().is_empty() => Some(None),
        Some(_) => {
            this.problem(
                field,
                line,
                "give exactly one of `days` (a sourced wait) or `unstated` (why no source gives one)",
            );
            None
        }
    }
}

/// Where an interaction's procedure is itself a treatment's, the interactions that run from the
/// treatment state the same pair in the other order. A session checked with that procedure
/// booked after it keeps the longest of those waits and its own `then`, so the answer is the same
/// whichever of the two appointments is checked (the later one sees the earlier in its past and
/// applies those interactions' `days`).
pub(super) fn join_gap_orders(this: &mut Compiler<'_>, list: &[Item<'_, InteractionDoc>]) {
    let c = &mut this.c;
    let is_interaction = |id: &str| list.iter().any(|i| i.value.id == id);
    // Each interaction as (procedure it runs from, procedures it applies to, days).
    let gaps: Vec<(Ix, Vec<Ix>, i64)> = c
        .rules
        .iter()
        .filter(|r| is_interaction(&r.info.rule))
        .filter_map(|r| match &r.kind {
            RuleKind::Gap {
                procedure, days, ..
            } => Some((
                *procedure,
                applied_procedures(&r.applies, &c.treatment_defs),
                *days,
            )),
            _ => None,
        })
        .collect();
    for r in c.rules.iter_mut() {
        if !list.iter().any(|i| i.value.id == r.info.rule) {
            continue;
        }
        let applies = applied_procedures(&r.applies, &c.treatment_defs);
        if let RuleKind::Gap {
            procedure, then, ..
        } = &mut r.kind
        {
            let other_order = gaps
                .iter()
                .filter(|(from, to, _)| applies.contains(from) && to.contains(procedure))
                .map(|(_, _, days)| *days)
                .max();
            if let Some(days) = other_order {
                *then = Some(then.map_or(days, |t| t.max(days)));
            }
        }
    }
}

/// The procedures of the treatments in an `applies` mask.
fn applied_procedures(applies: &[bool], treatments: &[Treatment]) -> Vec<Ix> {
    applies
        .iter()
        .zip(treatments)
        .filter(|(a, _)| **a)
        .map(|(_, t)| t.procedure)
        .collect()
}

/// One rule per treatment: `<treatment>.min_interval`, a deferral after the last session.
pub(super) fn min_interval_rules(this: &mut Compiler<'_>, doc: &RuleSetDoc) {
    for (i, s) in doc.treatments.iter().enumerate() {
        let t = &s.value;
        let path = format!("treatments[{i}].min_interval_days");
        let Some(tix) = this.c.treatments.get(&t.id) else {
            continue;
        };
        let Some(def) = this.c.treatment_defs.get(usize::from(tix)) else {
            continue;
        };
        let (procedure, days) = (def.procedure, def.min_interval_days);
        let Some(resolved) = this.quantity(&path, None, &t.min_interval_days, PolicyUnit::Days)
        else {
            continue;
        };
        let sources = this.cite(&path, None, &resolved.sources);
        let mut mask = vec![false; this.c.treatments.len()];
        if let Some(slot) = mask.get_mut(usize::from(tix)) {
            *slot = true;
        }
        let staff = format!(
            "At least {days} days must pass between two {} sessions.",
            t.name
        );
        let client = format!(
            "Your skin needs {days} days between {} sessions to heal and rebuild collagen.",
            t.name
        );
        push_rule(
            this,
            format!("{}.min_interval", t.id),
            EffectKind::Defer,
            Severity::DeferUntil,
            resolved.evidence,
            sources,
            &staff,
            &client,
            mask,
            // Two sessions of one treatment: the same wait in either order.
            RuleKind::Gap {
                procedure,
                days,
                then: Some(days),
            },
            Effect::Defer,
            None,
        );
    }
}
