//! Policy choices and defaults: the option each policy stands for on each side.
//!
//! The numbers a policy supplies are compared where they are used (a wait, a cap); this lists
//! the choice itself, so a reviewer sees "isotretinoin washout: 6 months → 1 month" once.

use std::collections::BTreeSet;

use super::{Area, Cx, Direction, Side, more_is_tighter};
use crate::document::{PolicyDoc, PolicyUnit};

/// The policy declarations (the base's for an overlay) and the option in force for each.
fn in_force<'a>(side: Side<'a>, id: &str) -> Option<(&'a PolicyDoc, &'a str, f64)> {
    let declared = side.base.unwrap_or(side.doc);
    let policy = declared.policies.iter().find(|p| p.value.id == id)?;
    let policy = &policy.value;
    let chosen = side
        .doc
        .choose
        .get(id)
        .map_or(policy.default.as_str(), String::as_str);
    let value = policy.options.iter().find(|o| o.id == chosen)?.value;
    Some((policy, chosen, value))
}

pub(super) fn diff(old: Side<'_>, new: Side<'_>, cx: &mut Cx<'_>) {
    let ids = |s: Side<'_>| -> BTreeSet<String> {
        s.base
            .unwrap_or(s.doc)
            .policies
            .iter()
            .map(|p| p.value.id.clone())
            .collect()
    };
    let all: BTreeSet<String> = ids(old).union(&ids(new)).cloned().collect();
    for id in all {
        let key = format!("policy:{id}");
        match (in_force(old, &id), in_force(new, &id)) {
            (Some((po, co, vo)), Some((pn, cn, vn))) => {
                if co != cn || vo != vn {
                    let direction = match pn.unit {
                        PolicyUnit::Days => more_is_tighter(vo, vn),
                        PolicyUnit::Mm => more_is_tighter(vn, vo),
                    };
                    let aspect = if po.default != pn.default && !old.doc.choose.contains_key(&id) {
                        "default"
                    } else {
                        "option"
                    };
                    cx.push(
                        Area::Policy,
                        &key,
                        &id,
                        aspect,
                        direction,
                        Some(format!("{co} ({vo} {})", unit(po.unit))),
                        Some(format!("{cn} ({vn} {})", unit(pn.unit))),
                    );
                }
            }
            // Quantities that used it are compared where they are used.
            (Some(_), None) => cx.push(
                Area::Policy,
                &key,
                &id,
                "removed",
                Direction::Neutral,
                Some(id.clone()),
                None,
            ),
            (None, Some(_)) => cx.push(
                Area::Policy,
                &key,
                &id,
                "added",
                Direction::Neutral,
                None,
                Some(id.clone()),
            ),
            (None, None) => {}
        }
    }
}

fn unit(u: PolicyUnit) -> &'static str {
    match u {
        PolicyUnit::Days => "days",
        PolicyUnit::Mm => "mm",
    }
}
