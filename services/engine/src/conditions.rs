//! Compiled conditions and their three-valued evaluation.
//!
//! A fact that was not answered makes a comparison *unknown*, never false: `all` is false as
//! soon as one part is false, `any` true as soon as one part is true, and otherwise unknown
//! parts keep the whole unknown. Unknown results carry the facts that would settle them.

use jiff::civil::Date;
use jiff::{Span, Unit};

use crate::facts::{FactVal, FactValues};
use crate::ids::{Input, Ix, Missing};

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
    /// The device of the request is one of these (by device index).
    DeviceIn(Vec<Ix>),
    /// One of the request's zones is one of these (by zone index).
    ZoneIn(Vec<Ix>),
    /// The request's indication is one of these (by indication index).
    IndicationIn(Vec<Ix>),
}

/// What a condition is evaluated against.
///
/// Every input but the facts may be absent (a contraindication check has no date, a depth-limit
/// request no history); a condition that needs an absent input is unknown and says so in
/// [`Missing`], exactly as one over an unanswered fact.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub facts: &'a FactValues,
    pub date: Option<Date>,
    pub history: Option<&'a [(Ix, Date)]>,
    pub device: Option<Ix>,
    pub zones: Option<&'a [Ix]>,
    pub indication: Option<Ix>,
}

impl<'a> Ctx<'a> {
    /// Facts only: every other input absent.
    pub fn facts_only(facts: &'a FactValues) -> Self {
        Self {
            facts,
            date: None,
            history: None,
            device: None,
            zones: None,
            indication: None,
        }
    }
}

/// `start + days`. Request dates are bounded at parse by the rule set's horizon (the most days
/// any rule or plan adds to a date), so on a validated request this never reaches the end of the
/// calendar; the saturation is a backstop, not a semantics.
pub(crate) fn add_days(start: Date, days: i64) -> Date {
    start
        .checked_add(Span::new().days(days))
        .unwrap_or(Date::MAX)
}

impl Cond {
    pub fn eval(&self, ctx: &Ctx<'_>, missing: &mut Missing) -> Tri {
        match self {
            Cond::All(parts) => {
                let mut unknown = Missing::default();
                let mut any_unknown = false;
                for part in parts {
                    let mut m = Missing::default();
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
                let mut unknown = Missing::default();
                let mut any_unknown = false;
                for part in parts {
                    let mut m = Missing::default();
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
                (FactVal::Date(_), None) => need(Input::Date, missing),
                _ => unknown(*f, missing),
            },
            Cond::ProcedureWithin(p, days) => {
                let Some(history) = ctx.history else {
                    if ctx.date.is_none() {
                        missing.input(Input::Date);
                    }
                    return need(Input::History, missing);
                };
                let mut past = history.iter().filter(|(q, _)| q == p).peekable();
                if past.peek().is_none() {
                    // Never had it: false whatever the date.
                    return Tri::False;
                }
                match ctx.date {
                    Some(date) => {
                        Tri::from_bool(past.any(|(_, d)| *d <= date && date < add_days(*d, *days)))
                    }
                    None => need(Input::Date, missing),
                }
            }
            Cond::Age(dob, cmp, years) => match (ctx.facts.get(*dob), ctx.date) {
                (FactVal::Date(born), Some(date)) => match born.until((Unit::Year, date)) {
                    Ok(span) => Tri::from_bool(cmp.holds(i64::from(span.get_years()), *years)),
                    Err(_) => unknown(*dob, missing),
                },
                (FactVal::Date(_), None) => need(Input::Date, missing),
                _ => unknown(*dob, missing),
            },
            Cond::DeviceIn(devices) => match ctx.device {
                Some(d) => Tri::from_bool(devices.contains(&d)),
                None => need(Input::Device, missing),
            },
            Cond::ZoneIn(zones) => match ctx.zones {
                Some(asked) => Tri::from_bool(asked.iter().any(|z| zones.contains(z))),
                None => need(Input::Zones, missing),
            },
            Cond::IndicationIn(indications) => match ctx.indication {
                Some(i) => Tri::from_bool(indications.contains(&i)),
                None => need(Input::Indication, missing),
            },
        }
    }
}

impl Cond {
    /// The most days this condition adds to a date (for the rule set's horizon).
    pub fn max_days(&self) -> i64 {
        match self {
            Cond::All(parts) | Cond::Any(parts) => {
                parts.iter().map(Cond::max_days).max().unwrap_or(0)
            }
            Cond::Not(inner) => inner.max_days(),
            Cond::FactWithin(_, days) | Cond::ProcedureWithin(_, days) => *days,
            _ => 0,
        }
    }
}

fn unknown(f: Ix, missing: &mut Missing) -> Tri {
    missing.fact(f);
    Tri::Unknown
}

fn need(input: Input, missing: &mut Missing) -> Tri {
    missing.input(input);
    Tri::Unknown
}
