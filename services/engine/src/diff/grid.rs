//! Depth limits over the whole grid, and who may give a treatment with what.
//!
//! A cell is treatment × device × role × zone × indication (the setting follows from the
//! treatment); its limit is the engine's own (`zone_limit`, without a client's precautions,
//! whose caps the rules diff compares). Cells present on both sides are compared; a cell that
//! appears or disappears does so through an access change (a role, device or zone added to or
//! withdrawn from a treatment), which is reported once instead.

use std::collections::{BTreeMap, BTreeSet};

use super::{Area, Cx, Direction, more_is_tighter};
use crate::depth::DepthMm;
use crate::ids::Ix;
use crate::model::{Compiled, Treatment};

pub(super) fn diff(o: &Compiled, n: &Compiled, cx: &mut Cx<'_>) {
    let names: BTreeSet<&str> = o.treatments.iter().chain(n.treatments.iter()).collect();
    for name in names {
        let key = format!("treatment:{name}");
        match (treatment(o, name), treatment(n, name)) {
            (Some(_), None) => cx.push(
                Area::Access,
                &key,
                name,
                "removed",
                Direction::Tighter,
                Some(name.to_owned()),
                None,
            ),
            (None, Some(_)) => cx.push(
                Area::Access,
                &key,
                name,
                "added",
                Direction::Looser,
                None,
                Some(name.to_owned()),
            ),
            (Some((ot, od)), Some((nt, nd))) => {
                access(o, n, name, (ot, od), (nt, nd), cx);
                course((o, n), name, od, nd, cx);
                if od.needle && nd.needle {
                    cells(o, n, name, (ot, od), (nt, nd), cx);
                }
            }
            (None, None) => {}
        }
    }
}

fn treatment<'a>(rs: &'a Compiled, name: &str) -> Option<(Ix, &'a Treatment)> {
    let ix = rs.treatments.get(name)?;
    Some((ix, rs.treatment_defs.get(usize::from(ix))?))
}

fn role_names(rs: &Compiled, t: &Treatment) -> BTreeSet<String> {
    t.roles
        .iter()
        .map(|r| rs.roles.name(*r).to_owned())
        .collect()
}

fn device_names(rs: &Compiled, t: Ix) -> BTreeSet<String> {
    rs.device_defs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.treatments.contains(&t))
        .filter_map(|(i, _)| Ix::try_from(i).ok())
        .map(|d| rs.devices.name(d).to_owned())
        .collect()
}

fn zone_names(rs: &Compiled, t: &Treatment) -> BTreeSet<String> {
    t.zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.is_some())
        .filter_map(|(i, _)| Ix::try_from(i).ok())
        .map(|z| rs.zones.name(z).to_owned())
        .collect()
}

/// Members gained are looser (more may be booked), members lost tighter.
fn set_change(
    cx: &mut Cx<'_>,
    key: &str,
    subject: &str,
    aspect: &str,
    old: &BTreeSet<String>,
    new: &BTreeSet<String>,
) {
    let gained: Vec<&str> = new.difference(old).map(String::as_str).collect();
    let lost: Vec<&str> = old.difference(new).map(String::as_str).collect();
    if !gained.is_empty() {
        cx.push(
            Area::Access,
            key,
            subject,
            format!("{aspect} added"),
            Direction::Looser,
            None,
            Some(gained.join(", ")),
        );
    }
    if !lost.is_empty() {
        cx.push(
            Area::Access,
            key,
            subject,
            format!("{aspect} withdrawn"),
            Direction::Tighter,
            Some(lost.join(", ")),
            None,
        );
    }
}

fn access(
    o: &Compiled,
    n: &Compiled,
    name: &str,
    (ot, od): (Ix, &Treatment),
    (nt, nd): (Ix, &Treatment),
    cx: &mut Cx<'_>,
) {
    let key = format!("treatment:{name}");
    set_change(
        cx,
        &key,
        name,
        "roles",
        &role_names(o, od),
        &role_names(n, nd),
    );
    set_change(
        cx,
        &key,
        name,
        "devices",
        &device_names(o, ot),
        &device_names(n, nt),
    );
    set_change(
        cx,
        &key,
        name,
        "zones",
        &zone_names(o, od),
        &zone_names(n, nd),
    );
    let (os, ns) = (o.settings.name(od.setting), n.settings.name(nd.setting));
    if os != ns {
        // The setting's cap is in every cell; the setting itself changes no decision.
        cx.push(
            Area::Access,
            &key,
            name,
            "setting",
            Direction::Neutral,
            Some(os.to_owned()),
            Some(ns.to_owned()),
        );
    }
    if od.needle != nd.needle {
        cx.push(
            Area::Access,
            &key,
            name,
            "needle",
            if nd.needle {
                Direction::Tighter
            } else {
                Direction::Looser
            },
            Some(od.needle.to_string()),
            Some(nd.needle.to_string()),
        );
    }
}

/// A plan spaced closer is looser; the number of sessions changes no decision. A precare or
/// aftercare instruction dropped, reworded, or left out for more clients (`unless`) is looser.
fn course(
    (o, n): (&Compiled, &Compiled),
    name: &str,
    od: &Treatment,
    nd: &Treatment,
    cx: &mut Cx<'_>,
) {
    let key = format!("treatment:{name}");
    for (aspect, a, b) in [
        ("precare", &od.precare, &nd.precare),
        ("aftercare", &od.aftercare, &nd.aftercare),
    ] {
        let (a, b) = (instructions(o, a), instructions(n, b));
        let unless = |u: Option<&BTreeSet<String>>| {
            u.map(|u| {
                let u: Vec<&str> = u.iter().map(String::as_str).collect();
                format!("unless [{}]", u.join(", "))
            })
        };
        for text in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
            let (was, now) = (a.get(text), b.get(text));
            if was == now {
                continue;
            }
            // An instruction dropped, or left out for more clients, is one staff no longer read.
            let direction = match (was, now) {
                (Some(w), Some(n)) if !n.is_subset(w) => Direction::Looser,
                (Some(_), None) => Direction::Looser,
                _ => Direction::Tighter,
            };
            let label = match (was, now) {
                (Some(_), Some(_)) => format!("{aspect} '{text}'"),
                (Some(_), None) => format!("{aspect} removed '{text}'"),
                _ => format!("{aspect} added '{text}'"),
            };
            cx.push(
                Area::Course,
                &key,
                name,
                label,
                direction,
                was.map(|_| unless(was).unwrap_or_default()),
                now.map(|_| unless(now).unwrap_or_default()),
            );
        }
    }
    if od.interval_days != nd.interval_days {
        cx.push(
            Area::Course,
            &key,
            name,
            "interval_days",
            more_is_tighter(od.interval_days, nd.interval_days),
            Some(od.interval_days.to_string()),
            Some(nd.interval_days.to_string()),
        );
    }
    if (od.sessions, od.max_sessions) != (nd.sessions, nd.max_sessions) {
        cx.push(
            Area::Course,
            &key,
            name,
            "sessions",
            Direction::Neutral,
            Some(format!("{}..{}", od.sessions, od.max_sessions)),
            Some(format!("{}..{}", nd.sessions, nd.max_sessions)),
        );
    }
}

/// Each instruction's text with the ids of the precautions that leave it out.
fn instructions(
    rs: &Compiled,
    list: &[crate::model::Instruction],
) -> BTreeMap<String, BTreeSet<String>> {
    list.iter()
        .map(|i| {
            let unless = i
                .unless
                .iter()
                .filter_map(|r| rs.rules.get(*r))
                .map(|r| r.info.rule.clone())
                .collect();
            (i.text.clone(), unless)
        })
        .collect()
}

/// Every cell both sides allow, by (device, role, zone); cells that change the same way are
/// reported once, naming the indications they cover.
fn cells(
    o: &Compiled,
    n: &Compiled,
    name: &str,
    (ot, od): (Ix, &Treatment),
    (nt, nd): (Ix, &Treatment),
    cx: &mut Cx<'_>,
) {
    let devices: BTreeSet<String> = device_names(o, ot)
        .intersection(&device_names(n, nt))
        .cloned()
        .collect();
    let roles: BTreeSet<String> = role_names(o, od)
        .intersection(&role_names(n, nd))
        .cloned()
        .collect();
    let zones: BTreeSet<String> = zone_names(o, od)
        .intersection(&zone_names(n, nd))
        .cloned()
        .collect();
    let mut indications: Vec<Option<&str>> = vec![None];
    // An indication only one side declares is asked about only there: nothing to compare.
    let old_ind: BTreeSet<&str> = o.indications.iter().collect();
    indications.extend(
        n.indications
            .iter()
            .filter(|i| old_ind.contains(i))
            .map(Some),
    );
    let setting = n.settings.name(nd.setting);
    for device in &devices {
        for role in &roles {
            for zone in &zones {
                let mut by_change: BTreeMap<CellChange, Vec<&str>> = BTreeMap::new();
                for ind in &indications {
                    let old = caps(o, od, device, role, zone, *ind);
                    let new = caps(n, nd, device, role, zone, *ind);
                    let (old_min, new_min) = (min_of(old.as_deref()), min_of(new.as_deref()));
                    if old_min != new_min {
                        let key =
                            cause(name, device, role, setting, old.as_deref(), new.as_deref());
                        by_change
                            .entry((old_min, new_min, key))
                            .or_default()
                            .push(ind.unwrap_or("no indication"));
                    }
                }
                for ((old, new, key), inds) in by_change {
                    let which = if inds.len() == indications.len() {
                        "every indication".to_owned()
                    } else {
                        inds.join("|")
                    };
                    let direction = match (old, new) {
                        (Some(a), Some(b)) => more_is_tighter(b, a),
                        // Not reached: zones, devices and roles are those both sides allow.
                        (None, Some(_)) => Direction::Tighter,
                        (Some(_), None) => Direction::Looser,
                        (None, None) => Direction::Neutral,
                    };
                    cx.push(
                        Area::Depth,
                        &key,
                        format!("{name} × {device} × {role} × {setting} × {zone} × {which}"),
                        "max_depth_mm",
                        direction,
                        old.map(|d| d.mm().to_string()),
                        new.map(|d| d.mm().to_string()),
                    );
                }
            }
        }
    }
}

/// A cell's limit before and after, and the locator key of the cap that changed it.
type CellChange = (Option<DepthMm>, Option<DepthMm>, String);

/// Every cap of one cell, without a client's precautions (`None` when the zone has none).
fn caps(
    rs: &Compiled,
    t: &Treatment,
    device: &str,
    role: &str,
    zone: &str,
    indication: Option<&str>,
) -> Option<Vec<(crate::api::Bound, DepthMm)>> {
    let device = rs.device_defs.get(usize::from(rs.devices.get(device)?))?;
    let role = rs.roles.get(role)?;
    let zone = rs.zones.get(zone)?;
    let indication = match indication {
        Some(i) => Some(rs.indications.get(i)?),
        None => None,
    };
    rs.zone_caps(t, zone, indication, device, role, &[])
}

/// The limit of a cell: the least of its caps.
fn min_of(caps: Option<&[(crate::api::Bound, DepthMm)]>) -> Option<DepthMm> {
    caps.and_then(|c| c.iter().map(|(_, d)| *d).min())
}

/// What a changed cell's change comes from, as a locator key: the cap that changed and binds on
/// the side where the limit is lower (the new side when tighter, the old when looser), so the
/// change points at the entry that was edited (a role's cap, a device's, the treatment's zones)
/// rather than at the treatment.
fn cause(
    name: &str,
    device: &str,
    role: &str,
    setting: &str,
    old: Option<&[(crate::api::Bound, DepthMm)]>,
    new: Option<&[(crate::api::Bound, DepthMm)]>,
) -> String {
    use crate::api::Bound;
    let treatment = format!("treatment:{name}");
    let (Some(old), Some(new)) = (old, new) else {
        return treatment;
    };
    let value = |list: &[(Bound, DepthMm)], b: &Bound| {
        list.iter().filter(|(x, _)| x == b).map(|(_, d)| *d).min()
    };
    let lower = if min_of(Some(new)) < min_of(Some(old)) {
        new
    } else {
        old
    };
    let least = min_of(Some(lower));
    let changed = lower
        .iter()
        .filter(|(b, d)| Some(*d) == least && value(old, b) != value(new, b))
        .map(|(b, _)| b)
        .next();
    match changed {
        Some(Bound::Role) => format!("role:{role}"),
        Some(Bound::Device | Bound::DeviceEvaluated) => format!("device:{device}"),
        Some(Bound::Setting) => format!("setting:{setting}"),
        Some(Bound::Precaution(rule)) => format!("rule:{rule}"),
        _ => treatment,
    }
}
