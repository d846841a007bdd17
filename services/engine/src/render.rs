//! Writing an eligibility answer as JSON without serialising the rule set's shared text again for
//! every request: each rule's reason, each precaution, each fact and treatment name and the
//! rule-set reference are serialised once per rule set (by serde, from the very types the
//! general path serialises), and an answer is those fragments copied in order with the few
//! values that differ per client (the date, the decision, a deferral's end).
//!
//! The bytes are those of `serde_json::to_vec(&Eligibility)` for the same answer: the engine's
//! scenario runner checks every eligibility scenario against it.

use std::io::Write as _;

use jiff::civil::Date;
use serde::Serialize;

use crate::decide::Outcome;
use crate::ids::Missing;
use crate::model::{Compiled, Effect};

/// The pre-serialised fragments of one rule set, built when it is compiled.
#[derive(Debug, Default)]
pub(crate) struct Fragments {
    /// By rule index: the rule's reason as a JSON object without its closing brace (a deferral's
    /// `until` may follow).
    reason_open: Vec<Box<str>>,
    /// By rule index: the precaution's JSON object, for precaution rules; empty otherwise.
    precaution: Vec<Box<str>>,
    /// By fact index: the fact id as a JSON string.
    fact: Vec<Box<str>>,
    /// By treatment index: the treatment id as a JSON string.
    treatment: Vec<Box<str>>,
    /// The rule-set reference as a JSON object.
    ruleset: Box<str>,
}

fn json<T: Serialize + ?Sized>(value: &T) -> Box<str> {
    // Serialising these types cannot fail (string keys, no maps with other keys).
    serde_json::to_string(value).unwrap_or_default().into()
}

impl Fragments {
    pub fn of(rs: &Compiled) -> Self {
        let reason_open = rs
            .rules
            .iter()
            .map(|r| {
                let full = json(&*r.info);
                full.strip_suffix('}').unwrap_or(&full).into()
            })
            .collect();
        let precaution = rs
            .rules
            .iter()
            .map(|r| match &r.effect {
                Effect::Precaution(p) => json(&**p),
                _ => Box::from(""),
            })
            .collect();
        Self {
            reason_open,
            precaution,
            fact: rs.facts.iter().map(json).collect(),
            treatment: rs.treatments.iter().map(json).collect(),
            ruleset: json(&rs.meta),
        }
    }

    /// A generous size for an answer, so that its buffer is allocated once.
    fn size_hint(&self, o: &Outcome) -> usize {
        let reasons: usize = o
            .fired
            .iter()
            .map(|f| {
                self.reason_open.get(f.rule).map_or(0, |r| r.len())
                    + self.precaution.get(f.rule).map_or(0, |p| p.len())
                    + 32
            })
            .sum();
        let missing = o.missing.facts.len() * 40;
        256 + self.ruleset.len() + reasons + missing
    }
}

/// Writes `"YYYY-MM-DD"` (jiff's rendering, as serde writes a date): by hand for the four-digit
/// years requests carry, through jiff for any other.
fn date(out: &mut Vec<u8>, d: Date) {
    let (y, m, day) = (d.year(), d.month(), d.day());
    match (u16::try_from(y), u8::try_from(m), u8::try_from(day)) {
        (Ok(y @ 0..=9999), Ok(m), Ok(day)) => {
            let digit = |n: u16| b'0' + (n % 10) as u8;
            out.extend_from_slice(&[
                b'"',
                digit(y / 1000),
                digit(y / 100),
                digit(y / 10),
                digit(y),
                b'-',
                b'0' + m / 10,
                b'0' + m % 10,
                b'-',
                b'0' + day / 10,
                b'0' + day % 10,
                b'"',
            ]);
        }
        // Writing to a Vec cannot fail.
        _ => {
            let _ = write!(out, "\"{d}\"");
        }
    }
}

/// Writes a JSON string: as it is when nothing in it needs escaping (ids, a decision id), else
/// escaped by serde_json.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Writes the eligibility answer for `treatment` on `date` as a JSON object: the fields of
/// [`crate::Eligibility`] in its order, then `extra` (string fields the caller adds, such as a
/// decision id).
pub(crate) fn eligibility(
    rs: &Compiled,
    f: &Fragments,
    treatment: crate::ids::Ix,
    on: Date,
    o: &Outcome,
    extra: &[(&str, &str)],
    out: &mut Vec<u8>,
) {
    out.reserve(
        f.size_hint(o)
            + extra
                .iter()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>(),
    );
    out.extend_from_slice(b"{\"treatment\":");
    out.extend_from_slice(
        f.treatment
            .get(usize::from(treatment))
            .map_or("\"\"", |t| t)
            .as_bytes(),
    );
    out.extend_from_slice(b",\"date\":");
    date(out, on);
    out.extend_from_slice(b",\"decision\":\"");
    out.extend_from_slice(o.decision.as_str().as_bytes());
    out.extend_from_slice(if o.decision.bookable() {
        b"\",\"bookable\":true,\"earliest_date\":"
    } else {
        b"\",\"bookable\":false,\"earliest_date\":"
    });
    match o.earliest_date {
        Some(d) => date(out, d),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"reasons\":[");
    for (i, fired) in o.fired.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(f.reason_open.get(fired.rule).map_or("{", |r| r).as_bytes());
        if let Some(until) = fired.until {
            out.extend_from_slice(b",\"until\":");
            date(out, until);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"missing_facts\":[");
    missing_facts(f, o.missing, out);
    out.extend_from_slice(b"],\"missing_inputs\":[");
    for (i, input) in o.missing.inputs().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(input.name().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"],\"precautions\":[");
    for (i, rule) in o.fired_precautions(rs).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(f.precaution.get(rule).map_or("", |p| p).as_bytes());
    }
    out.extend_from_slice(b"],\"ruleset\":");
    out.extend_from_slice(f.ruleset.as_bytes());
    for (key, value) in extra {
        out.push(b',');
        string(out, key);
        out.push(b':');
        string(out, value);
    }
    out.push(b'}');
}

fn missing_facts(f: &Fragments, missing: Missing, out: &mut Vec<u8>) {
    for (i, ix) in missing.facts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(f.fact.get(usize::from(ix)).map_or("\"\"", |n| n).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_strings_are_written_as_serde_writes_them() {
        for d in [
            jiff::civil::date(2026, 12, 1),
            jiff::civil::date(0, 1, 1),
            jiff::civil::date(9999, 12, 31),
            jiff::civil::date(-1, 6, 15),
            jiff::civil::Date::MAX,
        ] {
            let mut out = Vec::new();
            date(&mut out, d);
            assert_eq!(
                String::from_utf8_lossy(&out),
                serde_json::to_string(&d).expect("serializes")
            );
        }
        for s in [
            "decision_id",
            "019ad1c2-0000-7000",
            "a\"b",
            "é",
            "tab\t",
            "",
        ] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(
                String::from_utf8_lossy(&out),
                serde_json::to_string(s).expect("serializes")
            );
        }
    }
}
