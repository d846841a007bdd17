//! Clinic overlays: checked to only tighten, then compiled as the base with the overlay applied.
//!
//! Tighter means: a shallower depth cap, a longer wait, a stricter policy option, fewer roles,
//! more rules. Anything else is refused with the field and both values named, so a clinic can
//! never loosen the base by accident (docs/design.md §3, a property test in `tests/properties.rs`).

use crate::api::RuleSetRef;
use crate::depth::DepthMm;
use crate::digest::digest_of;
use crate::document::*;
use crate::error::{LoadError, Problem};
use crate::model::{Compiled, Names, Treatment};

use super::{Compiler, Input, Item, compile, line_of};

const NOTE: &str = "tightened by clinic overlay";

/// Compiles a clinic overlay: the base compiled on its own (its faults prefixed `base: `), then
/// every `choose` and `tighten` entry checked to only tighten and applied to a copy of the base
/// document, which is compiled with the overlay's own sources and rules added.
///
/// All faults of the overlay are reported together; nothing is compiled while any remains.
pub(super) fn compile_overlay(
    overlay: &RuleSetDoc,
    base: &RuleSetDoc,
) -> Result<crate::RuleSet, LoadError> {
    let base_rs = compile_base(base)?;
    let b = &base_rs.0;
    let mut merge = Merge::new(b, base, overlay);
    merge.refuse_declarations(overlay);
    merge.choose(overlay);
    let default = TightenDoc::default();
    let tighten = overlay.tighten.as_ref().unwrap_or(&default);
    merge.treatments(&tighten.treatments);
    merge.roles(&tighten.roles);
    merge.settings(&tighten.settings);
    merge.devices(&tighten.devices);
    merge.indication_caps(&tighten.indication_caps);
    let mut merged = merge.finish()?;
    bind_rule_set_caps(&mut merged);

    let meta = RuleSetRef {
        id: overlay.id.clone(),
        version: overlay.version.clone(),
        digest: digest_of(overlay),
        base: Some(Box::new(b.meta.clone())),
    };
    Compiler::run(overlay_input(&merged, overlay), meta)
}

/// The base, compiled alone: an overlay over a broken base names the base's faults as such.
fn compile_base(base: &RuleSetDoc) -> Result<crate::RuleSet, LoadError> {
    compile(base, None).map_err(|e| LoadError {
        problems: e
            .problems
            .into_iter()
            .map(|mut p| {
                p.path = format!("base: {}", p.path);
                p
            })
            .collect(),
    })
}

/// The merged document plus the overlay's own catalogue and rules, which only add.
fn overlay_input<'a>(merged: &'a RuleSetDoc, overlay: &'a RuleSetDoc) -> Input<'a> {
    let mut input = Input::whole(merged);
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
    input
        .service_codes
        .extend(overlay_items("service_codes", &overlay.service_codes));
    input
}

/// A tightened rule-set cap must still bind: a treatment's own cap above it is lowered too.
fn bind_rule_set_caps(merged: &mut RuleSetDoc) {
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
}

/// The base document being tightened by an overlay: each step checks one section of the overlay
/// against the compiled base (`b`), applies what tightens to `merged` and records what would
/// loosen as a problem naming the field and both values.
struct Merge<'a> {
    /// The compiled base: its resolved caps and waits are what "tighter" is measured against.
    b: &'a Compiled,
    /// The base document, for the ids a misspelt `choose` entry is compared with.
    base: &'a RuleSetDoc,
    merged: RuleSetDoc,
    problems: Vec<Problem>,
}

impl<'a> Merge<'a> {
    fn new(b: &'a Compiled, base: &'a RuleSetDoc, overlay: &RuleSetDoc) -> Self {
        let mut merged = base.clone();
        merged.id = overlay.id.clone();
        merged.version = overlay.version.clone();
        Self {
            b,
            base,
            merged,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, path: String, line: Option<u64>, message: String) {
        self.problems.push(Problem::new(path, line, message));
    }

    /// The merged document, or every problem found.
    fn finish(self) -> Result<RuleSetDoc, LoadError> {
        if self.problems.is_empty() {
            Ok(self.merged)
        } else {
            Err(LoadError {
                problems: self.problems,
            })
        }
    }

    /// An overlay declares nothing: a fact, zone or treatment of its own would be a new rule set,
    /// not a clinic's tightening of the shared one.
    fn refuse_declarations(&mut self, overlay: &RuleSetDoc) {
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
                self.problem(
                    section.into(),
                    None,
                    format!(
                        "an overlay may not declare {section}; it can only `tighten` the base's"
                    ),
                );
            }
        }
    }

    /// `choose`: a policy option becomes the default only if it is at least as strict as the
    /// base's (more days, or fewer millimetres).
    fn choose(&mut self, overlay: &RuleSetDoc) {
        for (policy_id, option_id) in &overlay.choose {
            let path = format!("choose.{policy_id}");
            let Some(policy) = self
                .merged
                .policies
                .iter_mut()
                .find(|x| x.value.id == *policy_id)
            else {
                let message = crate::suggest::unknown(
                    "policy",
                    policy_id,
                    self.base.policies.iter().map(|x| x.value.id.as_str()),
                );
                self.problem(path, None, message);
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
            let refused = match (current, chosen) {
                (_, None) => Some(crate::suggest::unknown(
                    "option",
                    option_id,
                    policy.options.iter().map(|o| o.id.as_str()),
                )),
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
                        Some(format!(
                            "overlay loosens policy '{policy_id}': base option '{cur_id}' ({cur} {unit}), overlay option '{option_id}' ({new} {unit})"
                        ))
                    } else {
                        policy.default = option_id.clone();
                        None
                    }
                }
                (None, Some(_)) => None,
            };
            if let Some(message) = refused {
                self.problem(path, None, message);
            }
        }
    }

    /// `tighten.treatments`: a longer minimum interval, shallower zone caps, fewer roles.
    fn treatments(&mut self, list: &[serde_saphyr::Spanned<TightenTreatmentDoc>]) {
        for (i, s) in list.iter().enumerate() {
            let (t, line, path) = (&s.value, line_of(s), format!("tighten.treatments[{i}]"));
            let b = self.b;
            let Some(tix) = b.treatments.get(&t.id) else {
                self.problem(
                    format!("{path}.id"),
                    line,
                    crate::suggest::unknown("treatment", &t.id, b.treatments.iter()),
                );
                continue;
            };
            let Some(def) = b.treatment_defs.get(usize::from(tix)) else {
                continue;
            };
            let Some(ix) = self
                .merged
                .treatments
                .iter()
                .position(|x| x.value.id == t.id)
            else {
                continue;
            };
            let why = Why::of(&t.sources, t.note.as_deref());
            self.treatment_interval(ix, t, def, &why, line, &path);
            self.treatment_zones(ix, t, def, &why, line, &path);
            self.treatment_roles(ix, t, line, &path);
        }
    }

    /// A minimum interval only lengthens; a course planned faster than it is slowed to match.
    fn treatment_interval(
        &mut self,
        ix: usize,
        t: &TightenTreatmentDoc,
        def: &Treatment,
        why: &Why<'_>,
        line: Option<u64>,
        path: &str,
    ) {
        let Some(days) = t.min_interval_days else {
            return;
        };
        if days < def.min_interval_days as f64 {
            self.problem(
                format!("{path}.min_interval_days"),
                line,
                format!(
                    "overlay loosens the minimum interval: base {} days, overlay {days} days",
                    def.min_interval_days
                ),
            );
            return;
        }
        let Some(target) = self.merged.treatments.get_mut(ix) else {
            return;
        };
        let target = &mut target.value;
        target.min_interval_days = why.number(days);
        if let QuantityDoc::Sourced(_) = target.course.interval_days {
            // A course cannot run faster than its minimum interval.
            let every = quantity_value(&target.course.interval_days).unwrap_or(0.0);
            if every < days {
                target.course.interval_days = why.number(days);
            }
        }
    }

    /// Zone caps only get shallower, and only for zones the base treats; the start depth follows.
    fn treatment_zones(
        &mut self,
        ix: usize,
        t: &TightenTreatmentDoc,
        def: &Treatment,
        why: &Why<'_>,
        line: Option<u64>,
        path: &str,
    ) {
        for (zone, mm) in &t.zones {
            let zpath = format!("{path}.zones.{zone}");
            let cap = self
                .b
                .zones
                .get(zone)
                .and_then(|z| def.zones.get(usize::from(z)))
                .and_then(Option::as_ref);
            match cap {
                None => self.problem(
                    zpath,
                    line,
                    format!("zone '{zone}' is not treated by '{}' in the base", t.id),
                ),
                Some(cap) if *mm > cap.max.mm() => self.problem(
                    zpath,
                    line,
                    format!(
                        "overlay loosens the depth cap: base {} mm, overlay {mm} mm",
                        cap.max.mm()
                    ),
                ),
                Some(_) => {
                    let target = self.merged.treatments.get_mut(ix).map(|t| &mut t.value);
                    if let Some(z) =
                        target.and_then(|target| target.zones.iter_mut().find(|z| z.zone == *zone))
                    {
                        z.max_depth_mm = why.number(*mm);
                        z.start_depth_mm.at_most(*mm);
                    }
                }
            }
        }
    }

    /// Roles are only withdrawn, and only roles the base lets perform the treatment.
    fn treatment_roles(
        &mut self,
        ix: usize,
        t: &TightenTreatmentDoc,
        line: Option<u64>,
        path: &str,
    ) {
        for role in &t.remove_roles {
            let Some(target) = self.merged.treatments.get_mut(ix) else {
                return;
            };
            let roles = &mut target.value.roles;
            let known = roles.iter().any(|r| r == role);
            roles.retain(|r| r != role);
            if !known {
                self.problem(
                    format!("{path}.remove_roles"),
                    line,
                    format!("role '{role}' does not perform '{}' in the base", t.id),
                );
            }
        }
    }

    /// A role or setting cap (`kind`) checked against the base's: the new number when it is no
    /// deeper, `None` (and a problem) otherwise.
    fn cap(
        &mut self,
        kind: &str,
        names: &Names,
        caps: &[Option<DepthMm>],
        s: &serde_saphyr::Spanned<TightenCapDoc>,
        path: &str,
    ) -> Option<QuantityDoc> {
        let (c, line) = (&s.value, line_of(s));
        let Some(ix) = names.get(&c.id) else {
            self.problem(
                format!("{path}.id"),
                line,
                crate::suggest::unknown(kind, &c.id, names.iter()),
            );
            return None;
        };
        match caps.get(usize::from(ix)).copied().flatten() {
            Some(cap) if c.max_depth_mm > cap.mm() => {
                self.problem(
                    format!("{path}.max_depth_mm"),
                    line,
                    format!(
                        "overlay loosens the {kind} cap: base {} mm, overlay {} mm",
                        cap.mm(),
                        c.max_depth_mm
                    ),
                );
                None
            }
            _ => Some(Why::of(&c.sources, c.note.as_deref()).number(c.max_depth_mm)),
        }
    }

    /// `tighten.roles`: a shallower depth cap for everyone in a role.
    fn roles(&mut self, list: &[serde_saphyr::Spanned<TightenCapDoc>]) {
        let b = self.b;
        for (i, s) in list.iter().enumerate() {
            let path = format!("tighten.roles[{i}]");
            let Some(number) = self.cap("role", &b.roles, &b.role_caps, s, &path) else {
                continue;
            };
            let id = &s.value.id;
            if let Some(r) = self.merged.roles.iter_mut().find(|r| r.value.id == *id) {
                r.value.max_depth_mm = Some(number);
            }
        }
    }

    /// `tighten.settings`: a shallower depth cap for every treatment given in a setting.
    fn settings(&mut self, list: &[serde_saphyr::Spanned<TightenCapDoc>]) {
        let b = self.b;
        for (i, s) in list.iter().enumerate() {
            let path = format!("tighten.settings[{i}]");
            let Some(number) = self.cap("setting", &b.settings, &b.setting_caps, s, &path) else {
                continue;
            };
            let id = &s.value.id;
            if let Some(r) = self.merged.settings.iter_mut().find(|r| r.value.id == *id) {
                r.value.max_depth_mm = Some(number);
            }
        }
    }

    /// `tighten.devices`: a shallower cap than the labelled maximum (and than the evaluated one,
    /// which may never exceed it).
    fn devices(&mut self, list: &[serde_saphyr::Spanned<TightenCapDoc>]) {
        let b = self.b;
        for (i, s) in list.iter().enumerate() {
            let (c, line, path) = (&s.value, line_of(s), format!("tighten.devices[{i}]"));
            let Some(dev) = b
                .devices
                .get(&c.id)
                .and_then(|ix| b.device_defs.get(usize::from(ix)))
            else {
                self.problem(
                    format!("{path}.id"),
                    line,
                    crate::suggest::unknown("device", &c.id, b.devices.iter()),
                );
                continue;
            };
            match dev.max {
                None => self.problem(
                    format!("{path}.max_depth_mm"),
                    line,
                    format!("device '{}' has no needle depth to tighten", c.id),
                ),
                Some(cap) if c.max_depth_mm > cap.mm() => self.problem(
                    format!("{path}.max_depth_mm"),
                    line,
                    format!(
                        "overlay loosens the device cap: labelled maximum {} mm, overlay {} mm",
                        cap.mm(),
                        c.max_depth_mm
                    ),
                ),
                Some(_) => {
                    if let Some(d) = self.merged.devices.iter_mut().find(|d| d.value.id == c.id) {
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
            }
        }
    }

    /// `tighten.indication_caps`: a shallower rule-set cap for an indication, or a new one (a new
    /// cap only tightens; it binds every needle treatment).
    fn indication_caps(&mut self, list: &[serde_saphyr::Spanned<TightenCapDoc>]) {
        let b = self.b;
        for (i, s) in list.iter().enumerate() {
            let (c, line, path) = (
                &s.value,
                line_of(s),
                format!("tighten.indication_caps[{i}]"),
            );
            if b.indications.get(&c.id).is_none() {
                self.problem(
                    format!("{path}.id"),
                    line,
                    crate::suggest::unknown("indication", &c.id, b.indications.iter()),
                );
                continue;
            }
            let number = Why::of(&c.sources, c.note.as_deref()).number(c.max_depth_mm);
            let existing = self
                .merged
                .indication_caps
                .iter_mut()
                .find(|x| x.value.indication == c.id);
            let loosened = match existing {
                Some(cap) => match quantity_value(&cap.value.max_depth_mm) {
                    Some(base_mm) if c.max_depth_mm > base_mm => Some(base_mm),
                    _ => {
                        cap.value.max_depth_mm = number;
                        None
                    }
                },
                None => {
                    self.merged.indication_caps.push(serde_saphyr::Spanned::new(
                        IndicationCapDoc {
                            indication: c.id.clone(),
                            max_depth_mm: number,
                        },
                        s.referenced,
                        s.defined,
                    ));
                    None
                }
            };
            if let Some(base_mm) = loosened {
                self.problem(
                    format!("{path}.max_depth_mm"),
                    line,
                    format!(
                        "overlay loosens the indication cap: base {base_mm} mm, overlay {} mm",
                        c.max_depth_mm
                    ),
                );
            }
        }
    }
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
