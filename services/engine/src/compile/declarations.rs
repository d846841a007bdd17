//! The declared vocabulary: facts (the intake questions), the named sections (zones,
//! indications, procedures) with their display names and codes, settings and roles.

use std::sync::Arc;

use serde_saphyr::Spanned;

use crate::api::Coding;
use crate::document::*;
use crate::ids::MAX_FACTS;
use crate::model::*;
use crate::suggest;

use super::compiler::{Compiler, line_of};

impl Compiler<'_> {
    pub(super) fn facts(&mut self, doc: &RuleSetDoc) {
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
    pub(super) fn named(&mut self, section: &str, list: &[Spanned<NamedDoc>], names: NamedSlots) {
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

    pub(super) fn settings(&mut self, doc: &RuleSetDoc) {
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

    pub(super) fn roles(&mut self, doc: &RuleSetDoc) {
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
}

/// Where a section of named things (`zones`, ...) keeps its ids, display names and codes.
type NamedSlots = fn(&mut Compiled) -> (&mut Names, &mut Vec<String>, &mut Vec<Vec<Coding>>);
