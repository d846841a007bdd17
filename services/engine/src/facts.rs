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
            (FactKind::Date { .. }, Value::Null) => Ok(FactVal::Never),
            (_, Value::Null) => Err("null is only allowed for date facts (where it means never); leave the fact out if it is unknown".to_owned()),
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
            (FactKind::Date { .. }, Value::String(s)) => crate::wire::parse_strict_date(s).map(FactVal::Date),
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
