//! Reading a request against the compiled rule set: answers checked against their declarations,
//! procedure ids resolved, dates kept within the rule set's horizon.

use jiff::civil::Date;
use serde_json::Value;

use crate::api::{Facts, HistoryEntry};
use crate::error::Violations;
use crate::facts::{FactVal, FactValues};
use crate::ids::Ix;
use crate::model::{Compiled, FactKind};
use crate::suggest;

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
                None => Err(match suggest::closest(s, values.iter().map(|v| &**v)) {
                    Some(near) => format!("'{}' is not an answer to this question (did you mean '{near}'?)", s.chars().take(64).collect::<String>()),
                    None => format!("'{}' is not an answer to this question ({})", s.chars().take(64).collect::<String>(), suggest::allowed(values)),
                }),
            },
            (FactKind::Enum { values }, _) => Err(format!("expected a string: {}", suggest::allowed(values))),
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
pub(crate) fn within_horizon(rs: &Compiled, date: Date) -> Result<(), String> {
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
