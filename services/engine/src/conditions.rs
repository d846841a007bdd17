//! Compiled conditions and their three-valued evaluation.
//!
//! A fact that was not answered makes a comparison *unknown*, never false: `all` is false as
//! soon as one part is false, `any` true as soon as one part is true, and otherwise unknown
//! parts keep the whole unknown. Unknown results carry the facts that would settle them.

use jiff::civil::Date;
use jiff::{Span, Unit};

use crate::facts::{FactSet, FactVal, FactValues};
use crate::model::Ix;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    True,
    False,
    Unknown,
}

impl Tri {
    fn from_bool(b: bool) -> Self {
        if b { Tri::True } else { Tri::False }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Cmp {
    fn holds(self, left: i64, right: i64) -> bool {
        match self {
            Cmp::Eq => left == right,
            Cmp::Lt => left < right,
            Cmp::Lte => left <= right,
            Cmp::Gt => left > right,
            Cmp::Gte => left >= right,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    BoolEq(Ix, bool),
    IntCmp(Ix, Cmp, i64),
    IntIn(Ix, Vec<i64>),
    /// Enum value in a set, as a bit mask over the declared values.
    EnumIn(Ix, u64),
    /// A date fact within `days` before the check date.
    FactWithin(Ix, i64),
    /// A past procedure within `days` before the check date.
    ProcedureWithin(Ix, i64),
    /// Age in whole years from the date-of-birth fact.
    Age(Ix, Cmp, i64),
}

/// What a condition is evaluated against.
pub(crate) struct Ctx<'a> {
    pub facts: &'a FactValues,
    pub date: Option<Date>,
    pub history: Option<&'a [(Ix, Date)]>,
}

/// `start + days`, saturating at the calendar's end rather than failing.
pub(crate) fn add_days(start: Date, days: i64) -> Date {
    start
        .checked_add(Span::new().days(days))
        .unwrap_or(Date::MAX)
}

impl Cond {
    pub fn eval(&self, ctx: &Ctx<'_>, missing: &mut FactSet) -> Tri {
        match self {
            Cond::All(parts) => {
                let mut unknown = FactSet::default();
                let mut any_unknown = false;
                for part in parts {
                    let mut m = FactSet::default();
                    match part.eval(ctx, &mut m) {
                        Tri::False => return Tri::False,
                        Tri::Unknown => {
                            any_unknown = true;
                            unknown.union(m);
                        }
                        Tri::True => {}
                    }
                }
                if any_unknown {
                    missing.union(unknown);
                    Tri::Unknown
                } else {
                    Tri::True
                }
            }
            Cond::Any(parts) => {
                let mut unknown = FactSet::default();
                let mut any_unknown = false;
                for part in parts {
                    let mut m = FactSet::default();
                    match part.eval(ctx, &mut m) {
                        Tri::True => return Tri::True,
                        Tri::Unknown => {
                            any_unknown = true;
                            unknown.union(m);
                        }
                        Tri::False => {}
                    }
                }
                if any_unknown {
                    missing.union(unknown);
                    Tri::Unknown
                } else {
                    Tri::False
                }
            }
            Cond::Not(inner) => match inner.eval(ctx, missing) {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Unknown => Tri::Unknown,
            },
            Cond::BoolEq(f, want) => match ctx.facts.get(*f) {
                FactVal::Bool(b) => Tri::from_bool(b == *want),
                _ => unknown(*f, missing),
            },
            Cond::IntCmp(f, cmp, right) => match ctx.facts.get(*f) {
                FactVal::Int(v) => Tri::from_bool(cmp.holds(v, *right)),
                _ => unknown(*f, missing),
            },
            Cond::IntIn(f, set) => match ctx.facts.get(*f) {
                FactVal::Int(v) => Tri::from_bool(set.contains(&v)),
                _ => unknown(*f, missing),
            },
            Cond::EnumIn(f, mask) => match ctx.facts.get(*f) {
                FactVal::Enum(i) => Tri::from_bool(mask & (1u64 << i) != 0),
                _ => unknown(*f, missing),
            },
            Cond::FactWithin(f, days) => match (ctx.facts.get(*f), ctx.date) {
                (FactVal::Never, _) => Tri::False,
                (FactVal::Date(d), Some(date)) => Tri::from_bool(date < add_days(d, *days)),
                (FactVal::Date(_), None) => Tri::Unknown,
                _ => unknown(*f, missing),
            },
            Cond::ProcedureWithin(p, days) => match (ctx.history, ctx.date) {
                (Some(history), Some(date)) => Tri::from_bool(
                    history
                        .iter()
                        .any(|(q, d)| q == p && *d <= date && date < add_days(*d, *days)),
                ),
                _ => Tri::Unknown,
            },
            Cond::Age(dob, cmp, years) => match (ctx.facts.get(*dob), ctx.date) {
                (FactVal::Date(born), Some(date)) => match born.until((Unit::Year, date)) {
                    Ok(span) => Tri::from_bool(cmp.holds(i64::from(span.get_years()), *years)),
                    Err(_) => Tri::Unknown,
                },
                (FactVal::Date(_), None) => Tri::Unknown,
                _ => unknown(*dob, missing),
            },
        }
    }

    /// Whether evaluating needs the check date / the history.
    pub fn needs(&self) -> (bool, bool) {
        match self {
            Cond::All(parts) | Cond::Any(parts) => parts.iter().fold((false, false), |acc, c| {
                let n = c.needs();
                (acc.0 || n.0, acc.1 || n.1)
            }),
            Cond::Not(inner) => inner.needs(),
            Cond::FactWithin(..) | Cond::Age(..) => (true, false),
            Cond::ProcedureWithin(..) => (true, true),
            _ => (false, false),
        }
    }
}

fn unknown(f: Ix, missing: &mut FactSet) -> Tri {
    missing.insert(f);
    Tri::Unknown
}
