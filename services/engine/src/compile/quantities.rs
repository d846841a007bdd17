//! Sources, policies and the numbers they back: every number a rule set gives (a depth, a number
//! of days or of sessions) is a quantity, sourced or chosen from a policy, and resolved here with
//! the evidence it rests on.

use std::collections::HashMap;

use crate::api::SourceRef;
use crate::depth::DepthMm;
use crate::document::*;
use crate::suggest;

use super::compiler::{Compiler, Item, line_of};

/// A number resolved from a quantity, with where it came from.
pub(crate) struct Resolved {
    pub value: f64,
    pub evidence: Grade,
    pub sources: Vec<String>,
}

impl<'a> Compiler<'a> {
    pub(super) fn sources(&mut self, list: &[Item<'a, SourceDoc>]) {
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

    pub(super) fn policies(&mut self, doc: &'a RuleSetDoc) {
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

    pub(super) fn count(&mut self, path: &str, line: Option<u64>, q: &QuantityDoc) -> Option<u32> {
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
}

/// A non-negative whole number of days, at most ten years.
pub(crate) fn whole_days(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && (0.0..=3650.0).contains(&v)).then_some(v as i64)
}
