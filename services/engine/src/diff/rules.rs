//! Every rule, by id: contraindications, interactions (gaps after a procedure), waits after a
//! date fact (washouts) and minimum intervals between sessions.

use std::collections::{BTreeMap, BTreeSet};

use super::{Area, Cx, Direction, more_is_tighter, render};
use crate::api::PrecautionInfo;
use crate::document::EffectKind;
use crate::model::{Compiled, Effect, Rule, RuleKind};

pub(super) fn diff(o: &Compiled, n: &Compiled, cx: &mut Cx<'_>) {
    let by_id = |rs: &'_ Compiled| -> BTreeMap<String, usize> {
        rs.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.info.rule.clone(), i))
            .collect()
    };
    let (old, new) = (by_id(o), by_id(n));
    let ids: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for id in ids {
        let key = format!("rule:{id}");
        let or = old.get(id).and_then(|i| o.rules.get(*i));
        let nr = new.get(id).and_then(|i| n.rules.get(*i));
        match (or, nr) {
            (Some(r), None) => cx.push(
                Area::Rule,
                &key,
                id,
                "removed",
                Direction::Looser,
                Some(summary(o, r)),
                None,
            ),
            (None, Some(r)) => cx.push(
                Area::Rule,
                &key,
                id,
                "added",
                Direction::Tighter,
                None,
                Some(summary(n, r)),
            ),
            (Some(a), Some(b)) => changed(o, n, id, &key, a, b, cx),
            (None, None) => {}
        }
    }
}

/// How strong an effect is, as decisions rank it (a precaution is still bookable).
fn strength(e: EffectKind) -> u8 {
    match e {
        EffectKind::Precaution => 0,
        EffectKind::RequireReview => 1,
        EffectKind::Defer => 2,
        EffectKind::Contraindicate => 3,
    }
}

fn effect_name(e: EffectKind) -> &'static str {
    match e {
        EffectKind::Contraindicate => "contraindicate",
        EffectKind::Defer => "defer",
        EffectKind::RequireReview => "require_review",
        EffectKind::Precaution => "precaution",
    }
}

fn applies(rs: &Compiled, r: &Rule) -> BTreeSet<String> {
    r.applies
        .iter()
        .enumerate()
        .filter(|(_, a)| **a)
        .filter_map(|(i, _)| crate::ids::Ix::try_from(i).ok())
        .map(|t| rs.treatments.name(t).to_owned())
        .collect()
}

fn kind(rs: &Compiled, r: &Rule) -> String {
    match &r.kind {
        RuleKind::Cond(c) => format!("when {}", render::cond(rs, c)),
        RuleKind::AfterFact { fact, days, extra } => format!(
            "{days} days after {}{}",
            rs.facts.name(*fact),
            extra
                .as_ref()
                .map(|c| format!(" when {}", render::cond(rs, c)))
                .unwrap_or_default()
        ),
        RuleKind::Gap {
            procedure,
            days,
            then,
        } => {
            let p = rs.procedures.name(*procedure);
            match then {
                Some(t) => format!("{days} days after {p}, {p} {t} days after"),
                None => format!("{days} days after {p} (other order unstated)"),
            }
        }
    }
}

fn summary(rs: &Compiled, r: &Rule) -> String {
    format!(
        "{} {} for {}",
        effect_name(r.info.effect),
        kind(rs, r),
        applies(rs, r).into_iter().collect::<Vec<_>>().join(", ")
    )
}

#[allow(clippy::too_many_arguments)]
fn changed(o: &Compiled, n: &Compiled, id: &str, key: &str, a: &Rule, b: &Rule, cx: &mut Cx<'_>) {
    let mut push = |aspect: &str, direction, old: String, new: String| {
        cx.push(Area::Rule, key, id, aspect, direction, Some(old), Some(new));
    };
    if a.info.effect != b.info.effect {
        push(
            "effect",
            more_is_tighter(strength(a.info.effect), strength(b.info.effect)),
            effect_name(a.info.effect).into(),
            effect_name(b.info.effect).into(),
        );
    }
    if a.info.severity != b.info.severity {
        // Shown to staff beside the effect; decides nothing.
        push(
            "severity",
            Direction::Neutral,
            format!("{:?}", a.info.severity),
            format!("{:?}", b.info.severity),
        );
    }
    let (aa, ba) = (applies(o, a), applies(n, b));
    if aa != ba {
        let lost = aa.difference(&ba).next().is_some();
        push(
            "applies_to",
            if lost {
                Direction::Looser
            } else {
                Direction::Tighter
            },
            aa.into_iter().collect::<Vec<_>>().join(", "),
            ba.into_iter().collect::<Vec<_>>().join(", "),
        );
    }
    let (ka, kb) = (kind(o, a), kind(n, b));
    if ka != kb {
        // A longer wait or gap is tighter; anything else (a rewritten condition, another fact)
        // cannot be shown not to clear a client the old rule held, so it counts as looser.
        let (direction, aspect) = match (&a.kind, &b.kind) {
            (
                RuleKind::Gap {
                    procedure: p1,
                    days: d1,
                    then: t1,
                },
                RuleKind::Gap {
                    procedure: p2,
                    days: d2,
                    then: t2,
                },
            ) if o.procedures.name(*p1) == n.procedures.name(*p2) => {
                // An unstated second order constrains nothing: it reads as -1 days. Either
                // order shorter is looser, whatever the other did.
                let (t1, t2) = (t1.unwrap_or(-1), t2.unwrap_or(-1));
                let direction = match (more_is_tighter(d1, d2), more_is_tighter(&t1, &t2)) {
                    (Direction::Looser, _) | (_, Direction::Looser) => Direction::Looser,
                    (Direction::Tighter, _) | (_, Direction::Tighter) => Direction::Tighter,
                    _ => Direction::Neutral,
                };
                (direction, if d1 == d2 { "then" } else { "days" })
            }
            (
                RuleKind::AfterFact {
                    fact: f1,
                    days: d1,
                    extra: e1,
                },
                RuleKind::AfterFact {
                    fact: f2,
                    days: d2,
                    extra: e2,
                },
            ) if o.facts.name(*f1) == n.facts.name(*f2)
                && e1.as_ref().map(|c| render::cond(o, c))
                    == e2.as_ref().map(|c| render::cond(n, c)) =>
            {
                (more_is_tighter(d1, d2), "days")
            }
            _ => (Direction::Looser, "condition"),
        };
        push(aspect, direction, ka, kb);
    }
    if let (Effect::Precaution(pa), Effect::Precaution(pb)) = (&a.effect, &b.effect) {
        precaution(pa, pb, &mut push);
        if a.start_after_days != b.start_after_days {
            // Less preparation before a course is looser.
            push(
                "start_after_days",
                more_is_tighter(a.start_after_days, b.start_after_days),
                a.start_after_days.to_string(),
                b.start_after_days.to_string(),
            );
        }
    }
}

fn precaution(
    a: &PrecautionInfo,
    b: &PrecautionInfo,
    push: &mut impl FnMut(&str, Direction, String, String),
) {
    let mm = |d: Option<crate::DepthMm>| d.map_or("none".to_owned(), |d| d.mm().to_string());
    if a.depth_cap_mm != b.depth_cap_mm {
        let direction = match (a.depth_cap_mm, b.depth_cap_mm) {
            (Some(x), Some(y)) => more_is_tighter(y, x),
            (None, Some(_)) => Direction::Tighter,
            _ => Direction::Looser,
        };
        push(
            "depth_cap_mm",
            direction,
            mm(a.depth_cap_mm),
            mm(b.depth_cap_mm),
        );
    }
    // Zones scope the cap and whether the precaution applies at all (a request whose zones are
    // none of them is not given it): fewer zones are looser either way.
    if a.zones != b.zones {
        let set = |z: &Option<Vec<String>>| {
            z.as_ref()
                .map(|v| v.iter().cloned().collect::<BTreeSet<_>>())
        };
        let direction = match (set(&a.zones), set(&b.zones)) {
            (None, Some(_)) => Direction::Looser,
            (Some(_), None) => Direction::Tighter,
            (Some(x), Some(y)) if x.difference(&y).next().is_some() => Direction::Looser,
            _ => Direction::Tighter,
        };
        let show =
            |z: &Option<Vec<String>>| z.as_ref().map_or("every zone".to_owned(), |v| v.join(", "));
        push(
            "precaution zones",
            direction,
            show(&a.zones),
            show(&b.zones),
        );
    }
    if a.instructions != b.instructions {
        let (x, y): (BTreeSet<&String>, BTreeSet<&String>) = (
            a.instructions.iter().collect(),
            b.instructions.iter().collect(),
        );
        // An instruction dropped (or reworded) is one staff no longer read.
        let direction = if x.difference(&y).next().is_some() {
            Direction::Looser
        } else {
            Direction::Tighter
        };
        push(
            "instructions",
            direction,
            a.instructions.join(" / "),
            b.instructions.join(" / "),
        );
    }
}
