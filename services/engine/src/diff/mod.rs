//! The semantic difference between two versions of a rule set, each change marked tighter,
//! looser or neutral.
//!
//! It compares what the engine decides with, not the text: both documents are compiled (an
//! overlay on its base), so a policy option, an overlay's `tighten` or a base change that
//! reaches a clinic all show up as the numbers they change. What it covers:
//!
//! - depth limits over the whole grid (treatment × device × role × setting × zone × indication),
//!   and who may give a treatment with what (`grid`);
//! - every rule: added, removed, or changed in condition, effect, severity, `applies_to`,
//!   precaution caps and instructions, waits (washouts), gaps and minimum intervals (`rules`);
//! - policy choices and defaults (`policies`);
//! - the service codes that book a treatment (`service_codes`): a code dropped or booking
//!   another treatment is looser (an appointment under it is no longer checked as before), a
//!   code added tighter (one more kind of appointment is checked).
//!
//! Where a change cannot be shown to be tighter (a rewritten condition), it is marked looser:
//! the publish guard would rather ask for a declared loosening than let one through. The
//! property test in `tests/diff.rs` pins that "not looser" means no decision of the new version
//! is more permissive than the old one's.

mod grid;
mod locate;
mod policies;
mod render;
mod rules;
mod service_codes;

use serde::Serialize;

use crate::api::RuleSetRef;
use crate::compile::compile;
use crate::document::RuleSetDoc;
use crate::error::LoadError;

pub use locate::Location;

/// One side of a diff: a document, and for an overlay the base it extends.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// The rule set's document.
    pub doc: &'a RuleSetDoc,
    /// The base, when `doc` is an overlay (`extends`).
    pub base: Option<&'a RuleSetDoc>,
}

/// Which way a change moves decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Never more permissive: fewer bookable, later dates, shallower, more precautions.
    Tighter,
    /// No decision changes (a label, a message, the severity shown to staff).
    Neutral,
    /// Some decision may become more permissive.
    Looser,
}

impl Direction {
    /// The word shown in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Tighter => "tighter",
            Direction::Neutral => "neutral",
            Direction::Looser => "looser",
        }
    }
}

/// What part of the rule set a change is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// A depth limit in the grid.
    Depth,
    /// Who may give a treatment, with which device.
    Access,
    /// A contraindication, interaction (gap) or minimum-interval rule.
    Rule,
    /// A policy's default or chosen option.
    Policy,
    /// A treatment's course (sessions, spacing) as plans schedule it.
    Course,
    /// The codes other systems book a treatment by (`service_codes`).
    Codes,
}

impl Area {
    /// The word shown in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Depth => "depth",
            Area::Access => "access",
            Area::Rule => "rule",
            Area::Policy => "policy",
            Area::Course => "course",
            Area::Codes => "codes",
        }
    }
}

/// One semantic change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The part of the rule set.
    pub area: Area,
    /// What changed: a rule id, a grid cell (`microneedling × dermapen_4 × nurse × clinic ×
    /// cheeks × any indication`), a policy id.
    pub subject: String,
    /// Which aspect (`removed`, `added`, `effect`, `condition`, `days`, `max_depth_mm`, ...).
    pub aspect: String,
    /// Tighter, looser or neutral.
    pub direction: Direction,
    /// The old value, rendered; absent for an addition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// The new value, rendered; absent for a removal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// Where it is written in the old document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_at: Option<Location>,
    /// Where it is written in the new document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_at: Option<Location>,
}

impl Change {
    /// One line for people: `looser  rule isotretinoin.washout days: 180 -> 90 (... line 12 -> line 12)`.
    pub fn describe(&self) -> String {
        self.line(&self.subject, "")
    }

    /// The line of [`Self::describe`] about `subject`, with `extra` after the values.
    fn line(&self, subject: &str, extra: &str) -> String {
        let values = match (&self.old, &self.new) {
            (Some(o), Some(n)) => format!(": {o} -> {n}"),
            (Some(o), None) => format!(": {o}"),
            (None, Some(n)) => format!(": {n}"),
            (None, None) => String::new(),
        };
        let at = |l: &Option<Location>| l.as_ref().map_or("-".to_owned(), Location::to_string);
        format!(
            "{:<7} {} {subject} {}{values}{extra} (old {}, new {})",
            self.direction.as_str(),
            self.area.as_str(),
            self.aspect,
            at(&self.old_at),
            at(&self.new_at),
        )
    }
}

/// Changes that say the same thing about the same entry (one edited number reaching many grid
/// cells): one line for people, the cells counted and summarised.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    /// The first change of the group (its direction, area, aspect, values and locations).
    pub first: &'a Change,
    /// The subject of every change in the group.
    pub subjects: Vec<&'a str>,
}

impl Group<'_> {
    /// One line: the single change as [`Change::describe`], or for many grid cells the edited
    /// value once, with the cells it reaches summarised (`3 treatments × 4 devices × nurse × …`).
    pub fn describe(&self) -> String {
        if self.subjects.len() == 1 {
            return self.first.describe();
        }
        self.first.line(
            &summarise(&self.subjects),
            &format!(" for {} cells", self.subjects.len()),
        )
    }
}

/// The cells of a group by position (`treatment × device × role × setting × zone ×
/// indications`): a position with one value names it, a few are listed, more are counted.
fn summarise(subjects: &[&str]) -> String {
    const LABELS: [&str; 6] = [
        "treatments",
        "devices",
        "roles",
        "settings",
        "zones",
        "indication sets",
    ];
    let parts: Vec<Vec<&str>> = subjects.iter().map(|s| s.split(" × ").collect()).collect();
    let width = parts.iter().map(Vec::len).max().unwrap_or(0);
    (0..width)
        .map(|i| {
            let mut seen: Vec<&str> = Vec::new();
            for p in &parts {
                if let Some(v) = p.get(i)
                    && !seen.contains(v)
                {
                    seen.push(v);
                }
            }
            match seen.len() {
                0 => String::new(),
                1..=3 => seen.join(", "),
                n => format!("{n} {}", LABELS.get(i).copied().unwrap_or("values")),
            }
        })
        .collect::<Vec<_>>()
        .join(" × ")
}

/// The semantic difference between two versions of a rule set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// The old version.
    pub old: RuleSetRef,
    /// The new version.
    pub new: RuleSetRef,
    /// Every change, loosenings first.
    pub changes: Vec<Change>,
}

impl Diff {
    /// The changes grouped by what changed and where (direction, area, aspect, values, and the
    /// entry they point at), in order: what `protocolctl diff` prints by default.
    pub fn groups(&self) -> Vec<Group<'_>> {
        let mut out: Vec<Group<'_>> = Vec::new();
        for c in &self.changes {
            let same = |g: &Group<'_>| {
                let f = g.first;
                (
                    f.direction,
                    f.area,
                    &f.aspect,
                    &f.old,
                    &f.new,
                    &f.old_at,
                    &f.new_at,
                ) == (
                    c.direction,
                    c.area,
                    &c.aspect,
                    &c.old,
                    &c.new,
                    &c.old_at,
                    &c.new_at,
                )
            };
            match out.iter_mut().find(|g| same(g)) {
                Some(g) => g.subjects.push(&c.subject),
                None => out.push(Group {
                    first: c,
                    subjects: vec![&c.subject],
                }),
            }
        }
        out
    }

    /// The changes that may make a decision more permissive.
    pub fn loosenings(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.direction == Direction::Looser)
    }

    /// Whether any change loosens.
    pub fn is_looser(&self) -> bool {
        self.loosenings().next().is_some()
    }
}

/// Compiles both sides and lists every change between them. Either side failing to compile is
/// its load error (the diff of an invalid document means nothing).
pub fn diff(old: Side<'_>, new: Side<'_>) -> Result<Diff, LoadError> {
    let old_rs = compile(old.doc, old.base)?;
    let new_rs = compile(new.doc, new.base)?;
    let (o, n) = (&*old_rs.0, &*new_rs.0);
    let (old_loc, new_loc) = (locate::Locator::new(old), locate::Locator::new(new));
    let mut changes = Vec::new();
    let mut cx = Cx {
        old_loc: &old_loc,
        new_loc: &new_loc,
        out: &mut changes,
    };
    grid::diff(o, n, &mut cx);
    rules::diff(o, n, &mut cx);
    policies::diff(old, new, &mut cx);
    service_codes::diff(o, n, &mut cx);
    changes.sort_by(|a, b| {
        b.direction
            .cmp(&a.direction)
            .then(a.area.cmp(&b.area))
            .then(a.subject.cmp(&b.subject))
    });
    Ok(Diff {
        old: o.meta.clone(),
        new: n.meta.clone(),
        changes,
    })
}

/// What every part of the diff writes to.
pub(crate) struct Cx<'a> {
    pub old_loc: &'a locate::Locator,
    pub new_loc: &'a locate::Locator,
    pub out: &'a mut Vec<Change>,
}

impl Cx<'_> {
    /// Records a change located by `key` (see [`locate::Locator`]) in both documents.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        area: Area,
        key: &str,
        subject: impl Into<String>,
        aspect: impl Into<String>,
        direction: Direction,
        old: Option<String>,
        new: Option<String>,
    ) {
        self.out.push(Change {
            area,
            subject: subject.into(),
            aspect: aspect.into(),
            direction,
            old_at: self.old_loc.get(key),
            new_at: self.new_loc.get(key),
            old,
            new,
        });
    }
}

/// Tighter when `new` is greater (a longer wait), looser when smaller.
pub(crate) fn more_is_tighter<T: PartialOrd>(old: T, new: T) -> Direction {
    if new > old {
        Direction::Tighter
    } else if new < old {
        Direction::Looser
    } else {
        Direction::Neutral
    }
}
