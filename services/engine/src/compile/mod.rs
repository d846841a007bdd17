//! Validation and compilation: document → [`RuleSet`].
//!
//! Every reference is checked (facts, zones, procedures, treatments, devices, roles, policies,
//! sources), every condition is type-checked against the fact declarations, and every fault is
//! reported with its path and line, not just the first. Overlays are checked to only tighten
//! (see `overlay`) and then compiled as the base with the overlay applied.
//!
//! The work is split by what is compiled: [`compiler`] holds the compiler's state and the
//! shared checks (problems, name resolution), [`quantities`] the sources, policies and the
//! numbers they back, [`declarations`] the facts and the named sections (zones, indications,
//! procedures, settings, roles), [`treatments`] and [`devices`] those sections, [`rules`] the
//! contraindication rules and interactions (with [`conditions`] their conditions) and
//! [`overlay`] a clinic overlay on its base.

mod compiler;
mod conditions;
mod declarations;
mod devices;
mod overlay;
mod quantities;
mod rules;
mod service_codes;
mod treatments;

use std::collections::HashMap;

use crate::api::RuleSetRef;
use crate::digest::digest_of;
use crate::document::*;
use crate::error::{LoadError, Problem};
use crate::model::*;

pub(crate) use compiler::{Compiler, Input, Item, line_of};

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
