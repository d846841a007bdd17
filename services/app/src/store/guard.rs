//! The guard at the point of effect: what a move of the active pointers changes for every clinic.
//!
//! Publishing stores a version; what a clinic is served changes only when a pointer moves (an
//! activation, a rollback, a new base under the overlays). Every move goes through
//! [`RuleSetStore::move_pointers`](super::RuleSetStore), which asks [`Effect::of`] for the
//! semantic diff of each rule set served before and after, and refuses a move that loosens
//! anything unless the request carries an [`Approval`] of exactly those loosenings
//! ([`Effect::check`]). Tightenings need none. A dry run answers the same [`Effect`] and moves
//! nothing.

use std::collections::BTreeMap;

use protocol_engine::diff::{self, Change, Direction};
use protocol_engine::{LoadError, Problem, RuleSetDoc};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::catalog::Catalog;

/// An approval of the loosenings a move makes: why, who, and which (the digest an earlier
/// refusal or dry run named), so an approval never covers loosenings its author did not see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Why serving the looser rules is right (the new evidence, the clinic's decision).
    pub reason: String,
    /// Who approved, as staff know them (a medical director's name or staff id).
    pub approver: String,
    /// The digest of the loosenings approved ([`Effect::loosenings_digest`]).
    pub loosenings: String,
}

/// One semantic change, as the guard keeps it (and an idempotent retry answers it again): what
/// REST answers in `impact[].changes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectChange {
    /// `depth`, `access`, `rule`, `policy` or `course`.
    pub area: String,
    pub subject: String,
    pub aspect: String,
    /// `looser`, `tighter` or `neutral`.
    pub direction: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// Where it is in the document served after (or before, for a removal): YAML path and line.
    pub path: Option<String>,
    pub line: Option<u64>,
}

impl EffectChange {
    fn of(c: &Change) -> Self {
        let at = c.new_at.as_ref().or(c.old_at.as_ref());
        Self {
            area: c.area.as_str().to_owned(),
            subject: c.subject.clone(),
            aspect: c.aspect.clone(),
            direction: c.direction.as_str().to_owned(),
            old: c.old.clone(),
            new: c.new.clone(),
            path: at.map(|l| l.path.clone()),
            line: at.and_then(|l| l.line),
        }
    }

    fn is_looser(&self) -> bool {
        self.direction == Direction::Looser.as_str()
    }
}

/// What one rule set served changes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSetEffect {
    /// The rule set (a clinic overlay, or the base every clinic without one is served).
    pub ruleset: String,
    /// The version served before (`None`: newly activated; nothing served changes then).
    pub from: Option<String>,
    /// The version served after.
    pub to: String,
    /// The semantic diff, before to after (an overlay with its base on each side).
    pub changes: Vec<EffectChange>,
}

impl RuleSetEffect {
    /// How many changes go in direction `d`.
    pub fn count(&self, d: Direction) -> usize {
        self.changes
            .iter()
            .filter(|c| c.direction == d.as_str())
            .count()
    }

    /// `clinic-aurora 2026.12.2 -> 2026.11.1: 1 looser, 0 tighter, 0 neutral`.
    pub fn summary(&self) -> String {
        format!(
            "{} {} -> {}: {} looser, {} tighter, {} neutral",
            self.ruleset,
            self.from.as_deref().unwrap_or("-"),
            self.to,
            self.count(Direction::Looser),
            self.count(Direction::Tighter),
            self.count(Direction::Neutral),
        )
    }
}

/// What a move of pointers changes for every rule set it affects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// One entry per rule set whose served rules change, by id.
    pub rulesets: Vec<RuleSetEffect>,
}

impl Effect {
    /// Compares what each rule set of `new` serves with what it served in `old`: a rule set
    /// whose own version or whose base's version moved is diffed (an overlay against its base
    /// on each side, so a new base shows under every overlay). A rule set absent from `old`
    /// changes nothing served: a new overlay only tightens the base its clinic was served.
    pub fn of(old: &Catalog, new: &Catalog) -> Result<Self, StoreError> {
        let mut rulesets = Vec::new();
        for (id, doc) in &new.documents {
            let Some(before) = old.documents.get(id) else {
                continue;
            };
            let base_of = |c: &'_ Catalog, d: &RuleSetDoc| {
                d.extends.as_ref().and_then(|b| c.documents.get(b)).cloned()
            };
            let (old_base, new_base) = (base_of(old, before), base_of(new, doc));
            let same_base =
                old_base.as_ref().map(|b| &b.version) == new_base.as_ref().map(|b| &b.version);
            if before.version == doc.version && same_base {
                continue;
            }
            let d = diff::diff(
                diff::Side {
                    doc: before,
                    base: old_base.as_ref(),
                },
                diff::Side {
                    doc,
                    base: new_base.as_ref(),
                },
            )
            .map_err(StoreError::Invalid)?;
            rulesets.push(RuleSetEffect {
                ruleset: id.clone(),
                from: Some(before.version.clone()),
                to: doc.version.clone(),
                changes: d.changes.iter().map(EffectChange::of).collect(),
            });
        }
        Ok(Self { rulesets })
    }

    /// Every loosening, with the rule set it loosens.
    pub fn loosenings(&self) -> impl Iterator<Item = (&str, &EffectChange)> {
        self.rulesets.iter().flat_map(|r| {
            r.changes
                .iter()
                .filter(|c| c.is_looser())
                .map(|c| (r.ruleset.as_str(), c))
        })
    }

    /// The digest an approval names: SHA-256 over each loosening's rule set, area, subject,
    /// aspect and values, in order. `None` when nothing loosens.
    pub fn loosenings_digest(&self) -> Option<String> {
        let lines: Vec<String> = self
            .loosenings()
            .map(|(rs, c)| {
                format!(
                    "{rs}\t{}\t{}\t{}\t{}\t{}",
                    c.area,
                    c.subject,
                    c.aspect,
                    c.old.as_deref().unwrap_or(""),
                    c.new.as_deref().unwrap_or("")
                )
            })
            .collect();
        (!lines.is_empty()).then(|| super::payload::sha256_digest(lines.join("\n").as_bytes()))
    }

    /// One line per rule set, for the history and the logs.
    pub fn summary(&self) -> String {
        self.rulesets
            .iter()
            .map(RuleSetEffect::summary)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The guard. A move that loosens nothing passes. One that loosens needs an approval naming
    /// exactly these loosenings, given by another key than the one that published the version
    /// it serves (four eyes), unless `single_person` allows one key to do both.
    pub fn check(
        &self,
        approval: Option<&Approval>,
        approved_by: Option<&str>,
        published_by: &BTreeMap<String, Option<String>>,
        single_person: bool,
    ) -> Result<(), StoreError> {
        let Some(digest) = self.loosenings_digest() else {
            return Ok(());
        };
        let Some(approval) = approval else {
            return Err(self.refusal(&digest, None));
        };
        let mut problems = Vec::new();
        for (field, value) in [
            ("approval.reason", &approval.reason),
            ("approval.approver", &approval.approver),
        ] {
            if value.trim().is_empty() {
                problems.push(Problem::new(field, None, "required to approve a loosening"));
            }
        }
        if approval.loosenings != digest {
            return Err(self.refusal(
                &digest,
                Some(format!(
                    "approval.loosenings '{}' is not the digest of the loosenings this move makes",
                    approval.loosenings
                )),
            ));
        }
        if !single_person {
            for r in self
                .rulesets
                .iter()
                .filter(|r| r.changes.iter().any(EffectChange::is_looser))
            {
                // The version whose publication brought the loosening: the rule set's own, or
                // the base's when only the base moved.
                let publisher = published_by.get(&r.ruleset).cloned().flatten();
                if publisher.as_deref() == approved_by || approved_by.is_none() {
                    problems.push(Problem::new(
                        "approval",
                        None,
                        format!(
                            "four eyes: the loosening of '{}' must be approved by another API key than the one that published '{}' ({}); set PROTOCOL_ADMIN_SINGLE_PERSON_APPROVAL=true for a single-person clinic",
                            r.ruleset,
                            r.to,
                            publisher.as_deref().unwrap_or("no key")
                        ),
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Invalid(LoadError { problems }))
        }
    }

    /// The refusal of an unapproved loosening: each loosening with where it is, and how to
    /// approve them.
    fn refusal(&self, digest: &str, first: Option<String>) -> StoreError {
        let mut problems: Vec<Problem> = first
            .into_iter()
            .map(|m| Problem::new("approval.loosenings", None, m))
            .collect();
        // One problem per edited entry, as a publish refusal names them: the changes one edited
        // value makes (a cap reaching many grid cells) are counted, not listed.
        let mut groups: Vec<(&str, &EffectChange, usize)> = Vec::new();
        for (rs, c) in self.loosenings() {
            let same = |(r, g, _): &&mut (&str, &EffectChange, usize)| {
                *r == rs
                    && (&g.area, &g.aspect, &g.old, &g.new, &g.path, g.line)
                        == (&c.area, &c.aspect, &c.old, &c.new, &c.path, c.line)
            };
            match groups.iter_mut().find(same) {
                Some(g) => g.2 += 1,
                None => groups.push((rs, c, 1)),
            }
        }
        for (rs, c, n) in groups {
            let values = match (&c.old, &c.new) {
                (Some(o), Some(n)) => format!("{o} -> {n}"),
                (Some(o), None) => format!("was {o}"),
                (None, Some(n)) => format!("now {n}"),
                (None, None) => String::new(),
            };
            let more = if n > 1 {
                format!(" and {} more like it", n - 1)
            } else {
                String::new()
            };
            problems.push(Problem::new(
                c.path.clone().unwrap_or_default(),
                c.line,
                format!(
                    "loosens what '{rs}' serves: {} {} {} ({values}){more}",
                    c.area, c.subject, c.aspect
                ),
            ));
        }
        problems.push(Problem::new(
            "approval",
            None,
            format!(
                "serving looser rules needs `approval: {{reason, approver, loosenings: \"{digest}\"}}` from another key than the publisher's"
            ),
        ));
        StoreError::Invalid(LoadError { problems })
    }
}
