//! Validation and compilation: document → [`RuleSet`].
//!
//! Every reference is checked (facts, zones, procedures, treatments, devices, roles, policies,
//! sources), every condition is type-checked against the fact declarations, and every fault is
//! reported with its path and line, not just the first. Overlays are checked to only tighten
//! (see `overlay`) and then compiled as the base with the overlay applied.

mod conditions;
mod overlay;
mod rules;

use std::collections::HashMap;
use std::sync::Arc;

use serde_saphyr::Spanned;

use crate::api::{Coding, RuleSetRef, SessionMinutes, SourceRef};
use crate::depth::DepthMm;
use crate::digest::digest_of;
use crate::document::*;
use crate::error::{LoadError, Problem};
use crate::ids::{Ix, MAX_FACTS};
use crate::model::*;
use crate::suggest;

/// Compiles a base rule set (`base` = `None`) or a clinic overlay on its base.
pub fn compile(doc: &RuleSetDoc, base: Option<&RuleSetDoc>) -> Result<RuleSet, LoadError> {
    let loosening = loosening_problems(doc);
    if !loosening.is_empty() {
        return Err(LoadError {
            problems: loosening,
        });
    }
    match (&doc.extends, base) {
        (None, _) => {
            let mut problems = Vec::new();
            if !doc.choose.is_empty() {
                problems.push(Problem::new(
                    "choose",
                    None,
                    "only an overlay (with `extends`) may choose policy options",
                ));
            }
            if doc.tighten.is_some() {
                problems.push(Problem::new(
                    "tighten",
                    None,
                    "only an overlay (with `extends`) may tighten",
                ));
            }
            if !problems.is_empty() {
                return Err(LoadError { problems });
            }
            let missing = missing_parts(doc);
            let meta = RuleSetRef {
                id: doc.id.clone(),
                version: doc.version.clone(),
                digest: digest_of(doc),
                base: None,
            };
            match Compiler::run(Input::whole(doc), meta) {
                Ok(rs) if missing.is_empty() => Ok(rs),
                Ok(_) => Err(LoadError { problems: missing }),
                Err(mut e) => {
                    e.problems.splice(0..0, missing);
                    Err(e)
                }
            }
        }
        (Some(extends), Some(base)) if *extends == base.id => overlay::compile_overlay(doc, base),
        (Some(extends), Some(base)) => Err(LoadError::single(Problem::new(
            "extends",
            None,
            format!(
                "overlay extends '{extends}' but was given base '{}'",
                base.id
            ),
        ))),
        (Some(extends), None) => Err(LoadError::single(Problem::new(
            "extends",
            None,
            format!("overlay extends '{extends}', which is not loaded"),
        ))),
    }
}

/// A declared loosening must say why and who approved it: an empty field would let any
/// loosening through unexplained.
fn loosening_problems(doc: &RuleSetDoc) -> Vec<Problem> {
    let Some(l) = &doc.loosening else {
        return Vec::new();
    };
    [("reason", &l.reason), ("approved_by", &l.approved_by)]
        .into_iter()
        .filter(|(_, value)| value.trim().is_empty())
        .map(|(field, _)| {
            Problem::new(
                format!("loosening.{field}"),
                None,
                "must not be empty: a declared loosening says why and who approved it",
            )
        })
        .collect()
}

/// What makes a base complete: the sections without which one of the four questions
/// (eligibility, contraindications, depth limits, plans) could not be answered, or would be
/// answered "eligible" for want of rules. A base lacking any of them is refused with one problem
/// per missing section, naming it. (An overlay is complete through its base.)
const REQUIRED_SECTIONS: [(&str, &str, &str); 9] = [
    (
        "facts",
        "fact",
        "the intake questions that rules use and requests answer",
    ),
    ("zones", "zone", "depth limits are given per zone"),
    (
        "procedures",
        "procedure",
        "history names them, and every treatment is one",
    ),
    (
        "indications",
        "indication",
        "plans are made for an indication",
    ),
    ("settings", "setting", "every treatment is given in one"),
    ("roles", "role", "every treatment names who may perform it"),
    (
        "treatments",
        "treatment",
        "they are what the rule set decides about",
    ),
    ("devices", "device", "depth limits are given per device"),
    (
        "contraindications",
        "contraindication rule",
        "without rules every client would be cleared",
    ),
];

fn missing_parts(doc: &RuleSetDoc) -> Vec<Problem> {
    let counts = [
        doc.facts.len(),
        doc.zones.len(),
        doc.procedures.len(),
        doc.indications.len(),
        doc.settings.len(),
        doc.roles.len(),
        doc.treatments.len(),
        doc.devices.len(),
        doc.contraindications.len(),
    ];
    REQUIRED_SECTIONS
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n == 0)
        .map(|((section, one, why), _)| {
            Problem::new(
                *section,
                None,
                format!("a base rule set must declare at least one {one}: {why}"),
            )
        })
        .collect()
}

/// Compiles a set of documents: every base, then every overlay on the base it extends.
/// Problems are prefixed with the id of the rule set they belong to.
pub fn compile_bundle(docs: &[RuleSetDoc]) -> Result<Vec<RuleSet>, LoadError> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let bases: HashMap<&str, &RuleSetDoc> = docs
        .iter()
        .filter(|d| d.extends.is_none())
        .map(|d| (d.id.as_str(), d))
        .collect();
    let mut seen = HashMap::new();
    for doc in docs {
        if seen.insert(doc.id.as_str(), ()).is_some() {
            problems.push(Problem::new(
                format!("{}: id", doc.id),
                None,
                format!("duplicate rule set id '{}'", doc.id),
            ));
            continue;
        }
        let base = doc.extends.as_deref().and_then(|id| bases.get(id).copied());
        match compile(doc, base) {
            Ok(rs) => out.push(rs),
            Err(e) => problems.extend(e.problems.into_iter().map(|mut p| {
                p.path = if p.path.is_empty() {
                    doc.id.clone()
                } else {
                    format!("{}: {}", doc.id, p.path)
                };
                p
            })),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(LoadError { problems })
    }
}

/// A list item with the path and line it came from (which may be the overlay's, not the base's).
pub(crate) struct Item<'a, T> {
    pub path: String,
    pub line: Option<u64>,
    pub value: &'a T,
}

pub(crate) fn line_of<T>(s: &Spanned<T>) -> Option<u64> {
    Some(s.referenced.line()).filter(|l| *l > 0)
}

fn items<'a, T>(name: &str, list: &'a [Spanned<T>]) -> Vec<Item<'a, T>> {
    list.iter()
        .enumerate()
        .map(|(i, s)| Item {
            path: format!("{name}[{i}]"),
            line: line_of(s),
            value: &s.value,
        })
        .collect()
}

/// What the compiler reads: a whole document, possibly with an overlay's rules appended.
pub(crate) struct Input<'a> {
    pub doc: &'a RuleSetDoc,
    pub sources: Vec<Item<'a, SourceDoc>>,
    pub rules: Vec<Item<'a, RuleDoc>>,
    pub interactions: Vec<Item<'a, InteractionDoc>>,
}

impl<'a> Input<'a> {
    pub fn whole(doc: &'a RuleSetDoc) -> Self {
        Self {
            doc,
            sources: items("sources", &doc.sources),
            rules: items("contraindications", &doc.contraindications),
            interactions: items("interactions", &doc.interactions),
        }
    }
}

/// A number resolved from a quantity, with where it came from.
pub(crate) struct Resolved {
    pub value: f64,
    pub evidence: Grade,
    pub sources: Vec<String>,
}

pub(crate) struct Compiler<'a> {
    pub problems: Vec<Problem>,
    pub sources: HashMap<&'a str, SourceRef>,
    /// Policy id → (unit, chosen option).
    pub policies: HashMap<&'a str, (PolicyUnit, &'a PolicyOptionDoc)>,
    pub c: Compiled,
}

impl<'a> Compiler<'a> {
    pub fn run(input: Input<'a>, meta: RuleSetRef) -> Result<RuleSet, LoadError> {
        let mut this = Compiler {
            problems: Vec::new(),
            sources: HashMap::new(),
            policies: HashMap::new(),
            c: Compiled {
                meta,
                facts: Names::default(),
                fact_defs: Vec::new(),
                zones: Names::default(),
                procedures: Names::default(),
                indications: Names::default(),
                settings: Names::default(),
                setting_caps: Vec::new(),
                roles: Names::default(),
                role_caps: Vec::new(),
                treatments: Names::default(),
                treatment_defs: Vec::new(),
                devices: Names::default(),
                device_defs: Vec::new(),
                display: DisplayNames::default(),
                rules: Vec::new(),
                date_of_birth: None,
                horizon_days: 0,
                fragments: Default::default(),
            },
        };
        let doc = input.doc;
        if doc.id.trim().is_empty() {
            this.problem("id", None, "must not be empty");
        }
        if doc.version.trim().is_empty() {
            this.problem("version", None, "must not be empty");
        }
        this.sources(&input.sources);
        this.policies(doc);
        this.facts(doc);
        this.named("zones", &doc.zones, |c| {
            (
                &mut c.zones,
                &mut c.display.zones,
                &mut c.display.zone_codes,
            )
        });
        this.named("indications", &doc.indications, |c| {
            (
                &mut c.indications,
                &mut c.display.indications,
                &mut c.display.indication_codes,
            )
        });
        this.named("procedures", &doc.procedures, |c| {
            (
                &mut c.procedures,
                &mut c.display.procedures,
                &mut c.display.procedure_codes,
            )
        });
        this.settings(doc);
        this.roles(doc);
        this.treatments(doc);
        this.devices(doc);
        rules::compile_rules(&mut this, &input.rules);
        rules::compile_interactions(&mut this, &input.interactions);
        rules::join_gap_orders(&mut this, &input.interactions);
        rules::resolve_unless(&mut this, doc);
        rules::min_interval_rules(&mut this, doc);
        this.c.horizon_days = this.c.horizon();
        if this.problems.is_empty() {
            this.c.fragments = crate::render::Fragments::of(&this.c);
            Ok(RuleSet(Arc::new(this.c)))
        } else {
            Err(LoadError {
                problems: this.problems,
            })
        }
    }

    pub fn problem(
        &mut self,
        path: impl Into<String>,
        line: Option<u64>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem::new(path, line, message));
    }

    fn sources(&mut self, list: &[Item<'a, SourceDoc>]) {
        for item in list {
            let s = item.value;
            let r = SourceRef {
                id: s.id.clone(),
                title: s.title.clone(),
                url: s.url.clone(),
                grade: s.grade,
            };
            if self.sources.insert(s.id.as_str(), r).is_some() {
                self.problem(
                    format!("{}.id", item.path),
                    item.line,
                    format!("duplicate source id '{}'", s.id),
                );
            }
        }
    }

    /// Checks a list of cited source ids and returns them resolved.
    pub fn cite(&mut self, path: &str, line: Option<u64>, ids: &[String]) -> Vec<SourceRef> {
        let mut out = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match self.sources.get(id.as_str()) {
                Some(s) => out.push(s.clone()),
                None => {
                    let msg = suggest::unknown("source", id, self.sources.keys());
                    self.problem(format!("{path}.sources[{i}]"), line, msg);
                }
            }
        }
        out
    }

    fn policies(&mut self, doc: &'a RuleSetDoc) {
        for (i, s) in doc.policies.iter().enumerate() {
            let (p, line, path) = (&s.value, line_of(s), format!("policies[{i}]"));
            let mut ids = HashMap::new();
            for (j, o) in p.options.iter().enumerate() {
                if ids.insert(o.id.as_str(), ()).is_some() {
                    self.problem(
                        format!("{path}.options[{j}].id"),
                        line,
                        format!("duplicate option '{}'", o.id),
                    );
                }
                if !o.value.is_finite() || o.value < 0.0 {
                    self.problem(
                        format!("{path}.options[{j}].value"),
                        line,
                        "must be a non-negative number",
                    );
                }
                self.cite(&format!("{path}.options[{j}]"), line, &o.sources);
            }
            match p.options.iter().find(|o| o.id == p.default) {
                Some(chosen) => {
                    if self
                        .policies
                        .insert(p.id.as_str(), (p.unit, chosen))
                        .is_some()
                    {
                        self.problem(
                            format!("{path}.id"),
                            line,
                            format!("duplicate policy id '{}'", p.id),
                        );
                    }
                }
                None => {
                    let msg = suggest::unknown(
                        "option",
                        &p.default,
                        p.options.iter().map(|o| o.id.as_str()),
                    );
                    self.problem(format!("{path}.default"), line, msg);
                }
            }
        }
    }

    /// Resolves a quantity to its number, checking the policy or the sources it names.
    pub fn quantity(
        &mut self,
        path: &str,
        line: Option<u64>,
        q: &QuantityDoc,
        unit: PolicyUnit,
    ) -> Option<Resolved> {
        match q {
            QuantityDoc::Policy(r) => match self.policies.get(r.policy.as_str()) {
                Some((u, _)) if *u != unit => {
                    self.problem(
                        path,
                        line,
                        format!("policy '{}' is in {u:?}, expected {unit:?}", r.policy),
                    );
                    None
                }
                Some((_, option)) => {
                    let (value, evidence, sources) =
                        (option.value, option.evidence, option.sources.clone());
                    Some(Resolved {
                        value,
                        evidence,
                        sources,
                    })
                }
                None => {
                    let msg = suggest::unknown("policy", &r.policy, self.policies.keys());
                    self.problem(path, line, msg);
                    None
                }
            },
            QuantityDoc::Sourced(s) => {
                if s.sources.is_empty()
                    && !matches!(s.evidence, Grade::Inferred | Grade::ClinicPolicy)
                {
                    self.problem(
                        path,
                        line,
                        "a sourced number needs at least one source (or evidence INFERRED)",
                    );
                }
                self.cite(path, line, &s.sources);
                Some(Resolved {
                    value: s.value,
                    evidence: s.evidence,
                    sources: s.sources.clone(),
                })
            }
        }
    }

    pub fn days(&mut self, path: &str, line: Option<u64>, q: &QuantityDoc) -> Option<i64> {
        let r = self.quantity(path, line, q, PolicyUnit::Days)?;
        whole_days(r.value).or_else(|| {
            self.problem(
                path,
                line,
                format!(
                    "{} is not a whole number of days between 0 and 3650",
                    r.value
                ),
            );
            None
        })
    }

    pub fn depth(&mut self, path: &str, line: Option<u64>, q: &QuantityDoc) -> Option<DepthMm> {
        let r = self.quantity(path, line, q, PolicyUnit::Mm)?;
        self.depth_value(path, line, r.value)
    }

    pub fn depth_value(&mut self, path: &str, line: Option<u64>, mm: f64) -> Option<DepthMm> {
        DepthMm::from_mm(mm).or_else(|| {
            self.problem(
                path,
                line,
                format!("{mm} is not a depth between 0.001 and 10 mm"),
            );
            None
        })
    }

    fn facts(&mut self, doc: &RuleSetDoc) {
        if doc.facts.len() > MAX_FACTS {
            self.problem(
                "facts",
                None,
                format!("at most {MAX_FACTS} facts may be declared"),
            );
        }
        for (i, s) in doc.facts.iter().enumerate() {
            let (f, line, path) = (&s.value, line_of(s), format!("facts[{i}]"));
            let kind = match f.fact_type {
                FactType::Bool => FactKind::Bool,
                FactType::Integer => match (f.min, f.max) {
                    (Some(min), Some(max)) if min <= max => FactKind::Integer { min, max },
                    _ => {
                        self.problem(&path, line, "an integer fact needs `min` <= `max`");
                        FactKind::Integer { min: 0, max: 0 }
                    }
                },
                FactType::Enum => {
                    if f.values.is_empty() || f.values.len() > 64 {
                        self.problem(&path, line, "an enum fact needs between 1 and 64 `values`");
                    }
                    FactKind::Enum {
                        values: f.values.iter().map(|v| Arc::from(v.as_str())).collect(),
                    }
                }
                FactType::Date => FactKind::Date {
                    null_means: f.null_means.clone(),
                },
            };
            if f.null_means.is_some() && f.fact_type != FactType::Date {
                self.problem(&path, line, "`null_means` is only for date facts");
            }
            let labels = self.fact_labels(&path, line, f);
            let codes = self.codes(&path, line, &f.codes);
            if f.codes_mean.is_some() && codes.is_empty() {
                self.problem(
                    format!("{path}.codes_mean"),
                    line,
                    "`codes_mean` says what the fact's `codes` stand for: give `codes` too",
                );
            }
            if self.c.facts.insert(&f.id).is_none() {
                self.problem(
                    format!("{path}.id"),
                    line,
                    format!("duplicate fact id '{}'", f.id),
                );
                continue;
            }
            self.c.fact_defs.push(FactDef {
                kind,
                question: f.question.clone(),
                labels,
                codes,
                codes_mean: f.codes_mean.unwrap_or_default(),
            });
        }
        self.c.date_of_birth = self.c.facts.get("date_of_birth");
    }

    /// The display labels of an enum fact's values, in the order of `values`: none, or exactly
    /// one non-empty label per value (a form must never show a raw id next to labelled ones).
    fn fact_labels(&mut self, path: &str, line: Option<u64>, f: &FactDoc) -> Vec<String> {
        if f.labels.is_empty() {
            return Vec::new();
        }
        if f.fact_type != FactType::Enum {
            self.problem(
                format!("{path}.labels"),
                line,
                "`labels` is only for enum facts (a label per value)",
            );
            return Vec::new();
        }
        for (value, label) in &f.labels {
            if !f.values.contains(value) {
                let msg = suggest::unknown("value", value, f.values.iter().map(String::as_str));
                self.problem(format!("{path}.labels.{value}"), line, msg);
            } else if label.trim().is_empty() {
                self.problem(format!("{path}.labels.{value}"), line, "must not be empty");
            }
        }
        let mut out = Vec::with_capacity(f.values.len());
        for value in &f.values {
            match f.labels.get(value) {
                Some(label) => out.push(label.clone()),
                None => self.problem(
                    format!("{path}.labels.{value}"),
                    line,
                    "missing: label every value or none",
                ),
            }
        }
        out
    }

    /// A section of ids with display names and codes (`zones`, `indications`, `procedures`).
    fn named(&mut self, section: &str, list: &[Spanned<NamedDoc>], names: NamedSlots) {
        for (i, s) in list.iter().enumerate() {
            let codes = self.codes(&format!("{section}[{i}]"), line_of(s), &s.value.codes);
            let (ids, display, code_lists) = names(&mut self.c);
            if ids.insert(&s.value.id).is_none() {
                let msg = format!(
                    "duplicate {} id '{}'",
                    section.trim_end_matches('s'),
                    s.value.id
                );
                self.problem(format!("{section}[{i}].id"), line_of(s), msg);
            } else {
                display.push(s.value.name.clone());
                code_lists.push(codes);
            }
        }
    }

    /// Checks an item's `codes` (see `crate::codes`), naming `<path>.codes[i].<field>`.
    fn codes(&mut self, path: &str, line: Option<u64>, codes: &Option<Vec<Coding>>) -> Vec<Coding> {
        for (at, message) in crate::codes::check(codes.as_deref()) {
            self.problem(format!("{path}.codes{at}"), line, message);
        }
        codes.clone().unwrap_or_default()
    }

    fn settings(&mut self, doc: &RuleSetDoc) {
        for (i, s) in doc.settings.iter().enumerate() {
            let (path, line) = (format!("settings[{i}]"), line_of(s));
            let cap = s
                .value
                .max_depth_mm
                .as_ref()
                .and_then(|q| self.depth(&format!("{path}.max_depth_mm"), line, q));
            if self.c.settings.insert(&s.value.id).is_none() {
                self.problem(
                    format!("{path}.id"),
                    line,
                    format!("duplicate setting id '{}'", s.value.id),
                );
                continue;
            }
            self.c.setting_caps.push(cap);
        }
    }

    fn roles(&mut self, doc: &RuleSetDoc) {
        for (i, s) in doc.roles.iter().enumerate() {
            let (path, line) = (format!("roles[{i}]"), line_of(s));
            let cap = s
                .value
                .max_depth_mm
                .as_ref()
                .and_then(|q| self.depth(&format!("{path}.max_depth_mm"), line, q));
            if self.c.roles.insert(&s.value.id).is_none() {
                self.problem(
                    format!("{path}.id"),
                    line,
                    format!("duplicate role id '{}'", s.value.id),
                );
                continue;
            }
            self.c.role_caps.push(cap);
            self.c.display.roles.push(s.value.name.clone());
        }
    }

    /// Resolves an id in a namespace, recording "unknown X (did you mean ...)" when absent.
    pub fn resolve(
        &mut self,
        kind: &str,
        names: fn(&Compiled) -> &Names,
        id: &str,
        path: &str,
        line: Option<u64>,
    ) -> Option<Ix> {
        let found = names(&self.c).get(id);
        if found.is_none() {
            let msg = suggest::unknown(kind, id, names(&self.c).iter());
            self.problem(path, line, msg);
        }
        found
    }

    pub fn resolve_all(
        &mut self,
        kind: &str,
        names: fn(&Compiled) -> &Names,
        ids: &[String],
        path: &str,
        line: Option<u64>,
    ) -> Vec<Ix> {
        ids.iter()
            .enumerate()
            .filter_map(|(i, id)| self.resolve(kind, names, id, &format!("{path}[{i}]"), line))
            .collect()
    }

    /// The rule set's own `indication_caps`: by indication index, with the path that set each.
    fn rule_set_indication_caps(&mut self, doc: &RuleSetDoc) -> Vec<Option<(DepthMm, String)>> {
        let mut caps: Vec<Option<(DepthMm, String)>> = vec![None; self.c.indications.len()];
        for (j, s) in doc.indication_caps.iter().enumerate() {
            let (cap, line, cpath) = (&s.value, line_of(s), format!("indication_caps[{j}]"));
            let ix = self.resolve(
                "indication",
                |c| &c.indications,
                &cap.indication,
                &format!("{cpath}.indication"),
                line,
            );
            let mm = self.depth(&format!("{cpath}.max_depth_mm"), line, &cap.max_depth_mm);
            if let (Some(ix), Some(mm)) = (ix, mm)
                && let Some(slot) = caps.get_mut(usize::from(ix))
            {
                if slot.is_some() {
                    self.problem(
                        format!("{cpath}.indication"),
                        line,
                        format!("indication '{}' is capped twice", cap.indication),
                    );
                }
                *slot = Some((mm, cpath));
            }
        }
        caps
    }

    fn session_minutes(
        &mut self,
        path: &str,
        line: Option<u64>,
        m: &SessionMinutesDoc,
    ) -> Option<SessionMinutes> {
        let minutes = |this: &mut Self, end: &str, q: &QuantityDoc| {
            let p = format!("{path}.{end}");
            let r = this.quantity(&p, line, q, PolicyUnit::Days)?;
            let ok = r.value.fract() == 0.0 && (1.0..=480.0).contains(&r.value);
            if !ok {
                this.problem(
                    p,
                    line,
                    format!(
                        "{} is not a whole number of minutes between 1 and 480",
                        r.value
                    ),
                );
                return None;
            }
            Some(r.value as u32)
        };
        let min = minutes(self, "min", &m.min);
        let max = minutes(self, "max", &m.max);
        let (min, max) = (min?, max?);
        if min > max {
            self.problem(
                path,
                line,
                format!("min ({min} minutes) is above max ({max} minutes)"),
            );
            return None;
        }
        Some(SessionMinutes { min, max })
    }

    /// Compiles every treatment, in order, after the rule set's own indication caps (which bind
    /// every needle treatment). A treatment with faults is still compiled as far as it goes, so
    /// that one load reports the faults of all of them.
    fn treatments(&mut self, doc: &RuleSetDoc) {
        let rule_set_caps = self.rule_set_indication_caps(doc);
        for (i, s) in doc.treatments.iter().enumerate() {
            let (t, line, path) = (&s.value, line_of(s), format!("treatments[{i}]"));
            let def = self.treatment(&path, line, t, &rule_set_caps);
            if self.c.treatments.insert(&t.id).is_none() {
                self.problem(
                    format!("{path}.id"),
                    line,
                    format!("duplicate treatment id '{}'", t.id),
                );
                continue;
            }
            self.c.treatment_defs.push(def);
        }
    }

    /// One treatment, step by step: what it refers to, its course, its depth caps, its session
    /// length, its care instructions and the results it promises. Faults are recorded as
    /// problems; the returned definition then holds defaults in their place (never served,
    /// since a rule set with problems does not load).
    fn treatment(
        &mut self,
        path: &str,
        line: Option<u64>,
        t: &TreatmentDoc,
        rule_set_caps: &[Option<(DepthMm, String)>],
    ) -> Treatment {
        let refs = self.treatment_refs(path, line, t);
        let course = self.course(path, line, t);
        let zones = self.zone_caps(path, line, t);
        let indication_caps = self.treatment_indication_caps(path, line, t, rule_set_caps);
        let session_minutes = t
            .session_minutes
            .as_ref()
            .and_then(|m| self.session_minutes(&format!("{path}.session_minutes"), line, m));
        let aftercare_days = self.days(
            &format!("{path}.aftercare.duration_days"),
            line,
            &t.aftercare.duration_days,
        );
        for (j, ins) in t
            .precare
            .iter()
            .chain(&t.aftercare.instructions)
            .enumerate()
        {
            self.cite(&format!("{path}.instructions[{j}]"), line, &ins.sources);
        }
        let results = self.results(path, line, t);
        Treatment {
            name: t.name.clone(),
            description: t.description.clone(),
            needle: t.needle,
            setting: refs.setting.unwrap_or_default(),
            roles: refs.roles,
            best_for: refs.best_for,
            procedure: refs.procedure.unwrap_or_default(),
            min_interval_days: course.min_interval_days.unwrap_or_default(),
            sessions: course.sessions.unwrap_or_default(),
            max_sessions: course.max_sessions.unwrap_or_default(),
            interval_days: course.interval_days.unwrap_or_default(),
            zones,
            indication_caps,
            precare: t.precare.iter().map(Instruction::of).collect(),
            aftercare_days: aftercare_days.unwrap_or_default(),
            aftercare: t
                .aftercare
                .instructions
                .iter()
                .map(Instruction::of)
                .collect(),
            results,
            downtime: t.downtime.clone(),
            session_minutes,
        }
    }

    /// The names a treatment refers to: itself as a procedure (so history can name it), its
    /// setting, the roles that may perform it and the indications it is best for.
    fn treatment_refs(&mut self, path: &str, line: Option<u64>, t: &TreatmentDoc) -> TreatmentRefs {
        let procedure = self.resolve(
            "procedure",
            |c| &c.procedures,
            &t.id,
            &format!("{path}.id"),
            line,
        );
        if procedure.is_none() {
            self.problem(
                format!("{path}.id"),
                line,
                "every treatment must also be declared as a procedure, so history can name it",
            );
        }
        let setting = self.resolve(
            "setting",
            |c| &c.settings,
            &t.setting,
            &format!("{path}.setting"),
            line,
        );
        let roles = self.resolve_all(
            "role",
            |c| &c.roles,
            &t.roles,
            &format!("{path}.roles"),
            line,
        );
        let best_for = self.resolve_all(
            "indication",
            |c| &c.indications,
            &t.best_for,
            &format!("{path}.best_for"),
            line,
        );
        TreatmentRefs {
            procedure,
            setting,
            roles,
            best_for,
        }
    }

    /// The minimum interval and the course: a course may not plan more sessions than its
    /// maximum, nor sessions closer together than the minimum interval allows.
    fn course(&mut self, path: &str, line: Option<u64>, t: &TreatmentDoc) -> Course {
        let min_interval_days = self.days(
            &format!("{path}.min_interval_days"),
            line,
            &t.min_interval_days,
        );
        let sessions = self.count(&format!("{path}.course.sessions"), line, &t.course.sessions);
        let max_sessions = self.count(
            &format!("{path}.course.max_sessions"),
            line,
            &t.course.max_sessions,
        );
        let interval_days = self.days(
            &format!("{path}.course.interval_days"),
            line,
            &t.course.interval_days,
        );
        if let (Some(a), Some(b)) = (sessions, max_sessions)
            && a > b
        {
            self.problem(
                format!("{path}.course"),
                line,
                format!("sessions ({a}) exceed max_sessions ({b})"),
            );
        }
        if let (Some(min), Some(every)) = (min_interval_days, interval_days)
            && every < min
        {
            self.problem(
                format!("{path}.course.interval_days"),
                line,
                format!(
                    "course interval {every} days is shorter than the minimum interval {min} days"
                ),
            );
        }
        Course {
            min_interval_days,
            sessions,
            max_sessions,
            interval_days,
        }
    }

    /// Depth caps by zone index (`None`: the zone is not treated). A needle treatment caps every
    /// zone it treats, with a start depth no deeper than the cap; one without needles has none.
    fn zone_caps(
        &mut self,
        path: &str,
        line: Option<u64>,
        t: &TreatmentDoc,
    ) -> Vec<Option<ZoneCap>> {
        let mut zones: Vec<Option<ZoneCap>> = (0..self.c.zones.len()).map(|_| None).collect();
        for (j, z) in t.zones.iter().enumerate() {
            let zpath = format!("{path}.zones[{j}]");
            let Some(zix) = self.resolve(
                "zone",
                |c| &c.zones,
                &z.zone,
                &format!("{zpath}.zone"),
                line,
            ) else {
                continue;
            };
            let max = self.depth(&format!("{zpath}.max_depth_mm"), line, &z.max_depth_mm);
            self.cite(
                &format!("{zpath}.start_depth_mm"),
                line,
                z.start_depth_mm.sources(),
            );
            let start = self.depth_value(
                &format!("{zpath}.start_depth_mm"),
                line,
                z.start_depth_mm.mm(),
            );
            if let (Some(max), Some(start)) = (max, start) {
                if start > max {
                    self.problem(
                        format!("{zpath}.start_depth_mm"),
                        line,
                        format!(
                            "start depth {} mm is above the zone cap {} mm",
                            start.mm(),
                            max.mm()
                        ),
                    );
                }
                match zones.get_mut(usize::from(zix)) {
                    Some(slot @ None) => *slot = Some(ZoneCap { max, start }),
                    _ => self.problem(
                        format!("{zpath}.zone"),
                        line,
                        format!("zone '{}' is listed twice", z.zone),
                    ),
                }
            }
        }
        if t.needle && t.zones.is_empty() {
            self.problem(
                format!("{path}.zones"),
                line,
                "a needle treatment needs a depth cap for every zone it treats; none is given",
            );
        }
        if !t.needle && (!t.zones.is_empty() || !t.indication_caps.is_empty()) {
            self.problem(
                format!("{path}.zones"),
                line,
                "a treatment without needles has no depth caps",
            );
        }
        zones
    }

    /// Depth caps by indication index: the treatment's own, each no deeper than the rule set's
    /// cap for that indication, which also binds a needle treatment that gives none.
    fn treatment_indication_caps(
        &mut self,
        path: &str,
        line: Option<u64>,
        t: &TreatmentDoc,
        rule_set_caps: &[Option<(DepthMm, String)>],
    ) -> Vec<Option<DepthMm>> {
        let mut indication_caps = vec![None; self.c.indications.len()];
        for (j, cap) in t.indication_caps.iter().enumerate() {
            let cpath = format!("{path}.indication_caps[{j}]");
            let ix = self.resolve(
                "indication",
                |c| &c.indications,
                &cap.indication,
                &format!("{cpath}.indication"),
                line,
            );
            let mm = self.depth(&format!("{cpath}.max_depth_mm"), line, &cap.max_depth_mm);
            if let (Some(ix), Some(mm)) = (ix, mm)
                && let Some(slot) = indication_caps.get_mut(usize::from(ix))
            {
                if let Some(Some((top, tpath))) = rule_set_caps.get(usize::from(ix))
                    && mm > *top
                {
                    self.problem(
                        format!("{cpath}.max_depth_mm"),
                        line,
                        format!(
                            "cap {} mm for '{}' is above the rule set's {} mm ({tpath}), which binds every needle treatment",
                            mm.mm(),
                            cap.indication,
                            top.mm()
                        ),
                    );
                }
                *slot = Some(mm);
            }
        }
        // The rule set's indication caps bind every needle treatment; a treatment's own cap
        // can only be lower.
        if t.needle {
            for (slot, top) in indication_caps.iter_mut().zip(rule_set_caps) {
                if let Some((top, _)) = top {
                    *slot = Some(slot.map_or(*top, |own| own.min(*top)));
                }
            }
        }
        indication_caps
    }

    /// The results a plan promises, each sourced and within ten years of its anchor session.
    fn results(&mut self, path: &str, line: Option<u64>, t: &TreatmentDoc) -> Vec<Milestone> {
        let mut results = Vec::new();
        for (j, m) in t.results.iter().enumerate() {
            self.cite(&format!("{path}.results[{j}]"), line, &m.sources);
            if !(0..=3650).contains(&m.days) {
                self.problem(
                    format!("{path}.results[{j}].days"),
                    line,
                    "must be between 0 and 3650",
                );
            }
            results.push(Milestone {
                text: m.milestone.clone(),
                days: m.days,
                after_last: m.after == Anchor::LastSession,
                evidence: m.evidence,
            });
        }
        results
    }

    fn count(&mut self, path: &str, line: Option<u64>, q: &QuantityDoc) -> Option<u32> {
        let r = self.quantity(path, line, q, PolicyUnit::Days)?;
        let ok = r.value.fract() == 0.0 && (1.0..=50.0).contains(&r.value);
        if !ok {
            self.problem(
                path,
                line,
                format!(
                    "{} is not a whole number of sessions between 1 and 50",
                    r.value
                ),
            );
            return None;
        }
        Some(r.value as u32)
    }

    fn devices(&mut self, doc: &RuleSetDoc) {
        for (i, s) in doc.devices.iter().enumerate() {
            let (d, line, path) = (&s.value, line_of(s), format!("devices[{i}]"));
            let treatments = self.resolve_all(
                "treatment",
                |c| &c.treatments,
                &d.treatments,
                &format!("{path}.treatments"),
                line,
            );
            let max = d
                .max_depth_mm
                .as_ref()
                .and_then(|q| self.depth(&format!("{path}.max_depth_mm"), line, q));
            let evaluated = d
                .evaluated_max_depth_mm
                .as_ref()
                .and_then(|q| self.depth(&format!("{path}.evaluated_max_depth_mm"), line, q));
            let needle = treatments.iter().any(|t| {
                self.c
                    .treatment_defs
                    .get(usize::from(*t))
                    .is_some_and(|t| t.needle)
            });
            if needle && d.max_depth_mm.is_none() {
                self.problem(
                    format!("{path}.max_depth_mm"),
                    line,
                    "a needle device needs its labelled maximum depth",
                );
            }
            if !needle && d.max_depth_mm.is_some() {
                self.problem(
                    format!("{path}.max_depth_mm"),
                    line,
                    "a device for treatments without needles has no depth",
                );
            }
            if let (Some(max), Some(ev)) = (max, evaluated)
                && ev > max
            {
                self.problem(
                    format!("{path}.evaluated_max_depth_mm"),
                    line,
                    format!(
                        "cap {} mm is above the device's labelled maximum {} mm",
                        ev.mm(),
                        max.mm()
                    ),
                );
            }
            if d.fixed_depth {
                self.fixed_depth(&path, line, d, &treatments, max);
            }
            if self.c.devices.insert(&d.id).is_none() {
                self.problem(
                    format!("{path}.id"),
                    line,
                    format!("duplicate device id '{}'", d.id),
                );
                continue;
            }
            self.c.device_defs.push(Device {
                treatments,
                max,
                evaluated_max: evaluated,
            });
            self.c.display.devices.push(d.name.clone());
        }
    }
}

impl Compiler<'_> {
    /// A fixed-length device (roller, stamp) always reaches its needle length: it may not serve a
    /// treatment whose setting caps depth below it, since no setting makes it shallower.
    fn fixed_depth(
        &mut self,
        path: &str,
        line: Option<u64>,
        d: &DeviceDoc,
        treatments: &[Ix],
        needle: Option<DepthMm>,
    ) {
        let Some(needle) = needle else {
            if d.max_depth_mm.is_none() {
                self.problem(
                    format!("{path}.fixed_depth"),
                    line,
                    "a fixed-length device needs its needle length in `max_depth_mm`",
                );
            }
            return;
        };
        for (j, t) in treatments.iter().enumerate() {
            let Some(def) = self.c.treatment_defs.get(usize::from(*t)) else {
                continue;
            };
            let setting = def.setting;
            let cap = self
                .c
                .setting_caps
                .get(usize::from(setting))
                .copied()
                .flatten();
            if let Some(cap) = cap
                && cap < needle
            {
                let msg = format!(
                    "fixed-length device '{}' has {} mm needles, deeper than the '{}' setting's cap of {} mm for '{}'; it cannot be set shallower",
                    d.id,
                    needle.mm(),
                    self.c.settings.name(setting),
                    cap.mm(),
                    self.c.treatments.name(*t),
                );
                self.problem(format!("{path}.treatments[{j}]"), line, msg);
            }
        }
    }
}

/// A non-negative whole number of days, at most ten years.
pub(crate) fn whole_days(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && (0.0..=3650.0).contains(&v)).then_some(v as i64)
}

/// Where a section of named things (`zones`, ...) keeps its ids, display names and codes.
type NamedSlots = fn(&mut Compiled) -> (&mut Names, &mut Vec<String>, &mut Vec<Vec<Coding>>);

/// What a treatment refers to, resolved (`None` where a problem was recorded).
struct TreatmentRefs {
    procedure: Option<Ix>,
    setting: Option<Ix>,
    roles: Vec<Ix>,
    best_for: Vec<Ix>,
}

/// A treatment's minimum interval and course, resolved (`None` where a problem was recorded).
struct Course {
    min_interval_days: Option<i64>,
    sessions: Option<u32>,
    max_sessions: Option<u32>,
    interval_days: Option<i64>,
}
