//! Clinic overlays: checked to only tighten, then compiled as the base with the overlay applied.
//!
//! Tighter means: a shallower depth cap, a longer wait, a stricter policy option, fewer roles,
//! more rules. Anything else is refused with the field and both values named, so a clinic can
//! never loosen the base by accident (DESIGN §3, a property test in `tests/properties.rs`).

use crate::api::RuleSetRef;
use crate::digest::digest_of;
use crate::document::*;
use crate::error::{LoadError, Problem};

use super::{Compiler, Input, Item, compile, line_of};

const NOTE: &str = "tightened by clinic overlay";

pub(super) fn compile_overlay(
    overlay: &RuleSetDoc,
    base: &RuleSetDoc,
) -> Result<crate::RuleSet, LoadError> {
    let base_rs = compile(base, None).map_err(|e| LoadError {
        problems: e
            .problems
            .into_iter()
            .map(|mut p| {
                p.path = format!("base: {}", p.path);
                p
            })
            .collect(),
    })?;
    let b = &base_rs.0;
    let mut problems = Vec::new();
    let mut p =
        |path: String, line: Option<u64>, msg: String| problems.push(Problem::new(path, line, msg));

    let declared = [
        ("facts", overlay.facts.is_empty()),
        ("zones", overlay.zones.is_empty()),
        ("procedures", overlay.procedures.is_empty()),
        ("indications", overlay.indications.is_empty()),
        ("settings", overlay.settings.is_empty()),
        ("roles", overlay.roles.is_empty()),
        ("policies", overlay.policies.is_empty()),
        ("treatments", overlay.treatments.is_empty()),
        ("indication_caps", overlay.indication_caps.is_empty()),
        ("devices", overlay.devices.is_empty()),
    ];
    for (section, empty) in declared {
        if !empty {
            p(
                section.into(),
                None,
                format!("an overlay may not declare {section}; it can only `tighten` the base's"),
            );
        }
    }

    let mut merged = base.clone();
    merged.id = overlay.id.clone();
    merged.version = overlay.version.clone();

    for (policy_id, option_id) in &overlay.choose {
        let path = format!("choose.{policy_id}");
        let Some(policy) = merged
            .policies
            .iter_mut()
            .find(|x| x.value.id == *policy_id)
        else {
            p(
                path,
                None,
                crate::suggest::unknown(
                    "policy",
                    policy_id,
                    base.policies.iter().map(|x| x.value.id.as_str()),
                ),
            );
            continue;
        };
        let policy = &mut policy.value;
        let current = policy
            .options
            .iter()
            .find(|o| o.id == policy.default)
            .map(|o| (o.id.clone(), o.value));
        let chosen = policy
            .options
            .iter()
            .find(|o| o.id == *option_id)
            .map(|o| o.value);
        match (current, chosen) {
            (_, None) => p(
                path,
                None,
                crate::suggest::unknown(
                    "option",
                    option_id,
                    policy.options.iter().map(|o| o.id.as_str()),
                ),
            ),
            (Some((cur_id, cur)), Some(new)) => {
                let looser = match policy.unit {
                    PolicyUnit::Days => new < cur,
                    PolicyUnit::Mm => new > cur,
                };
                if looser {
                    let unit = if policy.unit == PolicyUnit::Days {
                        "days"
                    } else {
                        "mm"
                    };
                    p(
                        path,
                        None,
                        format!(
                            "overlay loosens policy '{policy_id}': base option '{cur_id}' ({cur} {unit}), overlay option '{option_id}' ({new} {unit})"
                        ),
                    );
                } else {
                    policy.default = option_id.clone();
                }
            }
            (None, Some(_)) => {}
        }
    }

    let tighten = overlay.tighten.clone().unwrap_or_default();
    for (i, s) in tighten.treatments.iter().enumerate() {
        let (t, line, path) = (&s.value, line_of(s), format!("tighten.treatments[{i}]"));
        let Some(tix) = b.treatments.get(&t.id) else {
            p(
                format!("{path}.id"),
                line,
                crate::suggest::unknown("treatment", &t.id, b.treatments.iter()),
            );
            continue;
        };
        let Some(def) = b.treatment_defs.get(usize::from(tix)) else {
            continue;
        };
        let Some(target) = merged.treatments.iter_mut().find(|x| x.value.id == t.id) else {
            continue;
        };
        let target = &mut target.value;
        let why = Why::of(&t.sources, t.note.as_deref());
        if let Some(days) = t.min_interval_days {
            if days < def.min_interval_days as f64 {
                p(
                    format!("{path}.min_interval_days"),
                    line,
                    format!(
                        "overlay loosens the minimum interval: base {} days, overlay {days} days",
                        def.min_interval_days
                    ),
                );
            } else {
                target.min_interval_days = why.number(days);
                if let QuantityDoc::Sourced(_) = target.course.interval_days {
                    // A course cannot run faster than its minimum interval.
                    let every = quantity_value(&target.course.interval_days).unwrap_or(0.0);
                    if every < days {
                        target.course.interval_days = why.number(days);
                    }
                }
            }
        }
        for (zone, mm) in &t.zones {
            let zpath = format!("{path}.zones.{zone}");
            let cap = b
                .zones
                .get(zone)
                .and_then(|z| def.zones.get(usize::from(z)))
                .and_then(Option::as_ref);
            match cap {
                None => p(
                    zpath,
                    line,
                    format!("zone '{zone}' is not treated by '{}' in the base", t.id),
                ),
                Some(cap) if *mm > cap.max.mm() => p(
                    zpath,
                    line,
                    format!(
                        "overlay loosens the depth cap: base {} mm, overlay {mm} mm",
                        cap.max.mm()
                    ),
                ),
                Some(_) => {
                    if let Some(z) = target.zones.iter_mut().find(|z| z.zone == *zone) {
                        z.max_depth_mm = why.number(*mm);
                        z.start_depth_mm = z.start_depth_mm.min(*mm);
                    }
                }
            }
        }
        for role in &t.remove_roles {
            if !target.roles.iter().any(|r| r == role) {
                p(
                    format!("{path}.remove_roles"),
                    line,
                    format!("role '{role}' does not perform '{}' in the base", t.id),
                );
            }
            target.roles.retain(|r| r != role);
        }
    }
    for (i, s) in tighten.roles.iter().enumerate() {
        let (c, line, path) = (&s.value, line_of(s), format!("tighten.roles[{i}]"));
        match b.roles.get(&c.id) {
            None => p(
                format!("{path}.id"),
                line,
                crate::suggest::unknown("role", &c.id, b.roles.iter()),
            ),
            Some(ix) => match b.role_caps.get(usize::from(ix)).copied().flatten() {
                Some(cap) if c.max_depth_mm > cap.mm() => p(
                    format!("{path}.max_depth_mm"),
                    line,
                    format!(
                        "overlay loosens the role cap: base {} mm, overlay {} mm",
                        cap.mm(),
                        c.max_depth_mm
                    ),
                ),
                _ => {
                    if let Some(r) = merged.roles.iter_mut().find(|r| r.value.id == c.id) {
                        r.value.max_depth_mm =
                            Some(Why::of(&c.sources, c.note.as_deref()).number(c.max_depth_mm));
                    }
                }
            },
        }
    }
    for (i, s) in tighten.settings.iter().enumerate() {
        let (c, line, path) = (&s.value, line_of(s), format!("tighten.settings[{i}]"));
        match b.settings.get(&c.id) {
            None => p(
                format!("{path}.id"),
                line,
                crate::suggest::unknown("setting", &c.id, b.settings.iter()),
            ),
            Some(ix) => match b.setting_caps.get(usize::from(ix)).copied().flatten() {
                Some(cap) if c.max_depth_mm > cap.mm() => p(
                    format!("{path}.max_depth_mm"),
                    line,
                    format!(
                        "overlay loosens the setting cap: base {} mm, overlay {} mm",
                        cap.mm(),
                        c.max_depth_mm
                    ),
                ),
                _ => {
                    if let Some(r) = merged.settings.iter_mut().find(|r| r.value.id == c.id) {
                        r.value.max_depth_mm =
                            Some(Why::of(&c.sources, c.note.as_deref()).number(c.max_depth_mm));
                    }
                }
            },
        }
    }
    for (i, s) in tighten.devices.iter().enumerate() {
        let (c, line, path) = (&s.value, line_of(s), format!("tighten.devices[{i}]"));
        match b
            .devices
            .get(&c.id)
            .and_then(|ix| b.device_defs.get(usize::from(ix)))
        {
            None => p(
                format!("{path}.id"),
                line,
                crate::suggest::unknown("device", &c.id, b.devices.iter()),
            ),
            Some(dev) => match dev.max {
                None => p(
                    format!("{path}.max_depth_mm"),
                    line,
                    format!("device '{}' has no needle depth to tighten", c.id),
                ),
                Some(cap) if c.max_depth_mm > cap.mm() => p(
                    format!("{path}.max_depth_mm"),
                    line,
                    format!(
                        "overlay loosens the device cap: labelled maximum {} mm, overlay {} mm",
                        cap.mm(),
                        c.max_depth_mm
                    ),
                ),
                Some(_) => {
                    if let Some(d) = merged.devices.iter_mut().find(|d| d.value.id == c.id) {
                        let why = Why::of(&c.sources, c.note.as_deref());
                        d.value.max_depth_mm = Some(why.number(c.max_depth_mm));
                        let evaluated = d
                            .value
                            .evaluated_max_depth_mm
                            .as_ref()
                            .and_then(quantity_value);
                        if evaluated.is_some_and(|ev| ev > c.max_depth_mm) {
                            d.value.evaluated_max_depth_mm = Some(why.number(c.max_depth_mm));
                        }
                    }
                }
            },
        }
    }
    for (i, s) in tighten.indication_caps.iter().enumerate() {
        let (c, line, path) = (
            &s.value,
            line_of(s),
            format!("tighten.indication_caps[{i}]"),
        );
        if b.indications.get(&c.id).is_none() {
            p(
                format!("{path}.id"),
                line,
                crate::suggest::unknown("indication", &c.id, b.indications.iter()),
            );
            continue;
        }
        let number = Why::of(&c.sources, c.note.as_deref()).number(c.max_depth_mm);
        let existing = merged
            .indication_caps
            .iter_mut()
            .find(|x| x.value.indication == c.id);
        match existing {
            Some(cap) => match quantity_value(&cap.value.max_depth_mm) {
                Some(base_mm) if c.max_depth_mm > base_mm => p(
                    format!("{path}.max_depth_mm"),
                    line,
                    format!(
                        "overlay loosens the indication cap: base {base_mm} mm, overlay {} mm",
                        c.max_depth_mm
                    ),
                ),
                _ => cap.value.max_depth_mm = number,
            },
            // A new rule-set cap only tightens; it binds every needle treatment.
            None => merged.indication_caps.push(serde_saphyr::Spanned::new(
                IndicationCapDoc {
                    indication: c.id.clone(),
                    max_depth_mm: number,
                },
                s.referenced,
                s.defined,
            )),
        }
    }
    if !problems.is_empty() {
        return Err(LoadError { problems });
    }
    // A tightened rule-set cap must still bind: a treatment's own cap above it is lowered too.
    for cap in &merged.indication_caps {
        let Some(top) = quantity_value(&cap.value.max_depth_mm) else {
            continue;
        };
        for t in &mut merged.treatments {
            for own in &mut t.value.indication_caps {
                if own.indication == cap.value.indication
                    && quantity_value(&own.max_depth_mm).is_some_and(|mm| mm > top)
                {
                    own.max_depth_mm = cap.value.max_depth_mm.clone();
                }
            }
        }
    }

    let mut input = Input::whole(&merged);
    input
        .sources
        .extend(overlay_items("sources", &overlay.sources));
    input.rules.extend(overlay_items(
        "contraindications",
        &overlay.contraindications,
    ));
    input
        .interactions
        .extend(overlay_items("interactions", &overlay.interactions));
    let meta = RuleSetRef {
        id: overlay.id.clone(),
        version: overlay.version.clone(),
        digest: digest_of(overlay),
        base: Some(Box::new(b.meta.clone())),
    };
    Compiler::run(input, meta)
}

fn overlay_items<'a, T>(name: &str, list: &'a [serde_saphyr::Spanned<T>]) -> Vec<Item<'a, T>> {
    list.iter()
        .enumerate()
        .map(|(i, s)| Item {
            path: format!("{name}[{i}]"),
            line: line_of(s),
            value: &s.value,
        })
        .collect()
}

/// What an overlay says for the numbers it tightens: its sources and note, if any.
struct Why<'a> {
    sources: &'a [String],
    note: Option<&'a str>,
}

impl<'a> Why<'a> {
    fn of(sources: &'a [String], note: Option<&'a str>) -> Self {
        Self { sources, note }
    }

    /// A tightened number: grade `CLINIC_POLICY`, with the clinic's sources and note.
    fn number(&self, value: f64) -> QuantityDoc {
        QuantityDoc::Sourced(SourcedDoc {
            value,
            evidence: Grade::ClinicPolicy,
            sources: self.sources.to_vec(),
            note: Some(
                self.note
                    .map_or_else(|| NOTE.into(), |n| format!("{NOTE}: {n}")),
            ),
        })
    }
}

fn quantity_value(q: &QuantityDoc) -> Option<f64> {
    match q {
        QuantityDoc::Sourced(s) => Some(s.value),
        QuantityDoc::Policy(_) => None,
    }
}
