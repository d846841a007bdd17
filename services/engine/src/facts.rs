//! A client's answers, checked against the fact declarations and laid out by fact index.

use jiff::civil::Date;
use serde_json::Value;

use crate::api::{Facts, HistoryEntry};
use crate::error::Violations;
use crate::model::{Compiled, FactKind, Ix};
use crate::suggest;

/// One answer. `Unknown` is "not answered"; `Never` is an explicit `null` for a date fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FactVal {
    Unknown,
    Never,
    Bool(bool),
    Int(i64),
    Enum(u8),
    Date(Date),
}

/// Answers by fact index.
pub(crate) struct FactValues(pub Vec<FactVal>);

impl FactValues {
    pub fn get(&self, ix: Ix) -> FactVal {
        self.0
            .get(usize::from(ix))
            .copied()
            .unwrap_or(FactVal::Unknown)
    }
}

/// A small set of fact indices (rule sets declare at most 128 facts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FactSet([u64; 2]);

pub(crate) const MAX_FACTS: usize = 128;

impl FactSet {
    pub fn insert(&mut self, ix: Ix) {
        let i = usize::from(ix);
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    pub fn union(&mut self, other: FactSet) {
        self.0[0] |= other.0[0];
        self.0[1] |= other.0[1];
    }

    pub fn iter(self) -> impl Iterator<Item = Ix> {
        (0..MAX_FACTS)
            .filter(move |i| self.0[i / 64] & (1 << (i % 64)) != 0)
            .filter_map(|i| Ix::try_from(i).ok())
    }
}

/// A request input (not a fact) that a rule needs to be decided: the check date, the procedure
/// history, the device, the zones or the indication. Absent, it is unknown exactly as an unanswered fact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    Date,
    History,
    Device,
    Zones,
    Indication,
}

impl Input {
    const ALL: [Input; 5] = [
        Input::Date,
        Input::History,
        Input::Device,
        Input::Zones,
        Input::Indication,
    ];

    fn bit(self) -> u8 {
        match self {
            Input::Date => 1,
            Input::History => 2,
            Input::Device => 4,
            Input::Zones => 8,
            Input::Indication => 16,
        }
    }

    /// The request field that would supply it.
    pub fn name(self) -> &'static str {
        match self {
            Input::Date => "date",
            Input::History => "history",
            Input::Device => "device",
            Input::Zones => "zones",
            Input::Indication => "indication",
        }
    }
}

/// What an undecided rule still needs: facts to ask and request inputs to send. Every unknown
/// result of a condition records here why it is unknown, so that nothing undecided can pass for
/// "no" without naming what would decide it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Missing {
    pub facts: FactSet,
    inputs: u8,
}

impl Missing {
    pub fn fact(&mut self, ix: Ix) {
        self.facts.insert(ix);
    }

    pub fn input(&mut self, input: Input) {
        self.inputs |= input.bit();
    }

    pub fn union(&mut self, other: Missing) {
        self.facts.union(other.facts);
        self.inputs |= other.inputs;
    }

    pub fn needs(self, input: Input) -> bool {
        self.inputs & input.bit() != 0
    }

    pub fn inputs(self) -> impl Iterator<Item = Input> {
        Input::ALL.into_iter().filter(move |i| self.needs(*i))
    }
}

/// Checks each answer against its declaration; every fault names `facts.<id>`.
pub(crate) fn parse_facts(rs: &Compiled, facts: &Facts, errors: &mut Violations) -> FactValues {
    let mut values = vec![FactVal::Unknown; rs.facts.len()];
    for (id, raw) in facts {
        // The field name is built only for an error: this runs for every fact of every request.
        let field = || format!("facts.{id}");
        let Some(ix) = rs.facts.get(id) else {
            errors.push(field(), suggest::unknown("fact", id, rs.facts.iter()));
            continue;
        };
        let Some(def) = rs.fact_defs.get(usize::from(ix)) else {
            continue;
        };
        let parsed = match (&def.kind, raw) {
            (FactKind::Date { null_means: Some(_) }, Value::Null) => Ok(FactVal::Never),
            (FactKind::Date { null_means: None }, Value::Null) => Err("null is not an answer to this question (it declares no meaning for null); leave the fact out if it is unknown".to_owned()),
            (_, Value::Null) => Err("null is only allowed for date facts that declare what it means (never); leave the fact out if it is unknown".to_owned()),
            (FactKind::Bool, Value::Bool(b)) => Ok(FactVal::Bool(*b)),
            (FactKind::Bool, _) => Err("expected true or false".to_owned()),
            (FactKind::Integer { min, max }, Value::Number(n)) => match n.as_i64() {
                Some(v) if (*min..=*max).contains(&v) => Ok(FactVal::Int(v)),
                Some(v) => Err(format!("{v} is out of range {min}..={max}")),
                None => Err("expected a whole number".to_owned()),
            },
            (FactKind::Integer { .. }, _) => Err("expected a whole number".to_owned()),
            (FactKind::Enum { values }, Value::String(s)) => match values.iter().position(|v| **v == **s) {
                Some(i) => u8::try_from(i).map(FactVal::Enum).map_err(|_| "too many values".to_owned()),
                None => Err(format!("'{s}' is not one of {}", values.join(", "))),
            },
            (FactKind::Enum { values }, _) => Err(format!("expected one of {}", values.join(", "))),
            (FactKind::Date { .. }, Value::String(s)) => crate::wire::parse_strict_date(s)
                .and_then(|d| within_horizon(rs, d).map(|()| FactVal::Date(d))),
            (FactKind::Date { .. }, _) => Err("expected a date (YYYY-MM-DD) or null for never".to_owned()),
        };
        match parsed {
            Ok(v) => {
                if let Some(slot) = values.get_mut(usize::from(ix)) {
                    *slot = v;
                }
            }
            Err(message) => errors.push(field(), message),
        }
    }
    FactValues(values)
}

/// Resolves procedure ids in a history; faults name `history[i].procedure`.
pub(crate) fn parse_history(
    rs: &Compiled,
    history: &[HistoryEntry],
    errors: &mut Violations,
) -> Vec<(Ix, Date)> {
    let mut out = Vec::with_capacity(history.len());
    for (i, entry) in history.iter().enumerate() {
        check_date(rs, &format!("history[{i}].date"), entry.date, errors);
        match rs.procedures.get(&entry.procedure) {
            Some(ix) => out.push((ix, entry.date)),
            None => errors.push(
                format!("history[{i}].procedure"),
                suggest::unknown("procedure", &entry.procedure, rs.procedures.iter()),
            ),
        }
    }
    out
}

/// Refuses a request date whose consequences would run past the end of the calendar.
fn within_horizon(rs: &Compiled, date: Date) -> Result<(), String> {
    let last = Date::MAX
        .checked_sub(jiff::Span::new().days(rs.horizon_days))
        .unwrap_or(Date::MIN);
    if date <= last {
        Ok(())
    } else {
        Err(format!(
            "'{date}' is too late: this rule set looks up to {} days past a date, beyond the calendar's end; use a date up to {last}",
            rs.horizon_days
        ))
    }
}

/// Checks a request date (`date`, `start_date`, `history[i].date`), naming the field.
pub(crate) fn check_date(rs: &Compiled, field: &str, date: Date, errors: &mut Violations) {
    if let Err(message) = within_horizon(rs, date) {
        errors.push(field, message);
    }
}
