//! A FHIR R4 `QuestionnaireResponse` read back into facts: the same answers a request's `facts`
//! carries, checked by the same code.
//!
//! One step, separate from reading `facts`: the response becomes a facts map (fact id → JSON
//! answer) and that map goes through the ordinary fact parsing, whose faults (`facts.<id>`) are
//! renamed to the answer they came from (`questionnaire_response.item[3].answer[0].valueInteger`).
//! So every rule about an answer (ranges, enum values, strict dates, the calendar horizon) holds
//! for both ways of sending it, and only what is FHIR's own is checked here:
//!
//! - `resourceType` is `QuestionnaireResponse`; `status` is `completed`, `in-progress` or
//!   `amended` (an answer set `entered-in-error` or `stopped` is not the client's answers);
//! - every item has a `linkId` naming a question of the rule set, once; no nested items;
//! - at most one answer per item (no question repeats), with exactly one `value[x]` of the
//!   item's type: `valueBoolean`, `valueInteger`, `valueCoding` (of the fact's answer system, or
//!   without a system) or `valueDate`;
//! - a date answered while its gate `<fact>.null_means` says "never" contradicts it.
//!
//! An item without an answer is unanswered: the fact stays unknown, as when it is left out of
//! `facts`. The gate answered `true` is the explicit `null` ("never").

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::{Map, Value};

use super::ANSWER_SYSTEM_PREFIX;
use crate::api::Facts;
use crate::error::{RequestError, Violations};
use crate::facts::FactValues;
use crate::intake::parse_facts;
use crate::model::{Compiled, FactKind};
use crate::suggest;

/// The statuses whose answers are read.
pub const ACCEPTED_STATUSES: [&str; 3] = ["completed", "in-progress", "amended"];
/// The linkId of a date fact's "never" gate is the fact id and this suffix.
pub const NULL_MEANS_SUFFIX: &str = ".null_means";
/// The request field the response is sent in; every fault's path starts with it.
const FIELD: &str = "questionnaire_response";

/// Parses a request's answers: its `facts`, or, when it carries one, its QuestionnaireResponse
/// (giving both is refused, naming both: which one would be meant?).
pub(crate) fn parse_answers(
    rs: &Compiled,
    facts: &Facts,
    response: Option<&Value>,
    errors: &mut Violations,
) -> FactValues {
    let Some(response) = response else {
        return parse_facts(rs, facts, errors);
    };
    if !facts.is_empty() {
        let message = "send the answers once: either `facts` or `questionnaire_response`, not both";
        errors.push("facts", message);
        errors.push(FIELD, message);
    }
    let read = read_response(rs, response, errors);
    let mut inner = Violations::default();
    let values = parse_facts(rs, &read.facts, &mut inner);
    for v in inner.into_vec() {
        let field = v
            .field
            .strip_prefix("facts.")
            .and_then(|id| read.paths.get(id))
            .cloned()
            .unwrap_or(v.field);
        errors.push(field, v.message);
    }
    values
}

/// The facts a response answers, and where each answer was (for renaming faults).
struct Read {
    facts: Facts,
    /// Fact id → path of the answer value it came from.
    paths: HashMap<String, String>,
}

/// What one item of the response answers.
enum Asked<'a> {
    /// A fact, by id, with its kind.
    Fact(&'a str, &'a FactKind),
    /// The "never" gate of a date fact.
    Gate(&'a str),
}

fn read_response(rs: &Compiled, response: &Value, errors: &mut Violations) -> Read {
    let mut read = Read {
        facts: Facts::new(),
        paths: HashMap::new(),
    };
    let Some(obj) = response.as_object() else {
        errors.push(
            FIELD,
            "expected a FHIR QuestionnaireResponse (a JSON object)",
        );
        return read;
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("QuestionnaireResponse") {
        errors.push(
            format!("{FIELD}.resourceType"),
            "expected \"QuestionnaireResponse\"",
        );
    }
    match obj.get("status").and_then(Value::as_str) {
        Some(s) if ACCEPTED_STATUSES.contains(&s) => {}
        Some(s) => errors.push(
            format!("{FIELD}.status"),
            format!(
                "'{}' is not an answer set to decide on: expected one of {}",
                s.chars().take(32).collect::<String>(),
                ACCEPTED_STATUSES.join(", ")
            ),
        ),
        None => errors.push(
            format!("{FIELD}.status"),
            format!("required: one of {}", ACCEPTED_STATUSES.join(", ")),
        ),
    }
    let items = match obj.get("item") {
        None => return read,
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(format!("{FIELD}.item"), "expected an array of items");
            return read;
        }
    };
    // linkId → index of the item that answered it first.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    // Date facts whose gate says "never", with the gate's path.
    let mut never: HashMap<&str, String> = HashMap::new();
    let mut dates: Vec<(&str, String)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{FIELD}.item[{i}]");
        let Some(item) = item.as_object() else {
            errors.push(path, "expected an item (a JSON object)");
            continue;
        };
        let Some(link_id) = item.get("linkId").and_then(Value::as_str) else {
            errors.push(format!("{path}.linkId"), "required: the question's linkId");
            continue;
        };
        match seen.entry(link_id) {
            Entry::Occupied(first) => {
                errors.push(
                    format!("{path}.linkId"),
                    format!(
                        "duplicate linkId '{}' (also {FIELD}.item[{}]): answer each question once",
                        clip(link_id),
                        first.get()
                    ),
                );
                continue;
            }
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
        let Some(asked) = asked(rs, link_id) else {
            let known = rs.facts.iter();
            errors.push(
                format!("{path}.linkId"),
                suggest::unknown("linkId", link_id, known),
            );
            continue;
        };
        if item.contains_key("item") {
            errors.push(
                format!("{path}.item"),
                "this questionnaire has no groups or nested items",
            );
        }
        let Some((value_path, value)) = answer(item, &path, errors) else {
            continue;
        };
        match asked {
            Asked::Gate(fact) => {
                if let Some(b) = typed(value, "valueBoolean", &value_path, errors) {
                    let value_path = format!("{value_path}.valueBoolean");
                    if b.as_bool() == Some(true) {
                        never.insert(fact, value_path.clone());
                        read.facts.insert(fact.to_owned(), Value::Null);
                        read.paths.insert(fact.to_owned(), value_path);
                    }
                }
            }
            Asked::Fact(fact, kind) => {
                let expected = match kind {
                    FactKind::Bool => "valueBoolean",
                    FactKind::Integer { .. } => "valueInteger",
                    FactKind::Enum { .. } => "valueCoding",
                    FactKind::Date { .. } => "valueDate",
                };
                let Some(v) = typed(value, expected, &value_path, errors) else {
                    continue;
                };
                let value_path = format!("{value_path}.{expected}");
                let v = match kind {
                    FactKind::Enum { .. } => match coding_code(fact, v, &value_path, errors) {
                        Some(code) => code,
                        None => continue,
                    },
                    _ => v.clone(),
                };
                if matches!(kind, FactKind::Date { .. }) {
                    dates.push((fact, value_path.clone()));
                }
                // A gate answered "never" earlier keeps its null: the contradiction is named below.
                if !never.contains_key(fact) {
                    read.facts.insert(fact.to_owned(), v);
                    read.paths.insert(fact.to_owned(), value_path);
                }
            }
        }
    }
    for (fact, path) in dates {
        if let Some(gate) = never.get(fact) {
            errors.push(
                path,
                format!("answered, but {gate} says '{fact}' never applies: send one or the other"),
            );
        }
    }
    read
}

/// The question a linkId names: a fact, or the "never" gate of a date fact that has one.
fn asked<'a>(rs: &'a Compiled, link_id: &'a str) -> Option<Asked<'a>> {
    if let Some(fact) = link_id.strip_suffix(NULL_MEANS_SUFFIX) {
        let ix = rs.facts.get(fact)?;
        return match rs.fact_defs.get(usize::from(ix)).map(|d| &d.kind) {
            Some(FactKind::Date {
                null_means: Some(_),
            }) => Some(Asked::Gate(fact)),
            _ => None,
        };
    }
    let ix = rs.facts.get(link_id)?;
    let def = rs.fact_defs.get(usize::from(ix))?;
    Some(Asked::Fact(link_id, &def.kind))
}

/// The one answer of an item (`None`: unanswered, or a fault recorded): its `value[x]` object
/// and the path of that answer.
fn answer<'a>(
    item: &'a Map<String, Value>,
    path: &str,
    errors: &mut Violations,
) -> Option<(String, &'a Map<String, Value>)> {
    let answers = match item.get("answer") {
        None => return None,
        Some(Value::Array(a)) => a,
        Some(_) => {
            errors.push(format!("{path}.answer"), "expected an array of answers");
            return None;
        }
    };
    if answers.len() > 1 {
        errors.push(
            format!("{path}.answer[1]"),
            format!(
                "{} answers to a question that takes one (no question repeats)",
                answers.len()
            ),
        );
        return None;
    }
    let first = answers.first()?;
    let at = format!("{path}.answer[0]");
    let Some(obj) = first.as_object() else {
        errors.push(at, "expected an answer (a JSON object)");
        return None;
    };
    if obj.contains_key("item") {
        errors.push(
            format!("{at}.item"),
            "this questionnaire has no groups or nested items",
        );
    }
    Some((at, obj))
}

/// The answer's value, when it is exactly one `value[x]` and the expected one.
fn typed<'a>(
    answer: &'a Map<String, Value>,
    expected: &str,
    at: &str,
    errors: &mut Violations,
) -> Option<&'a Value> {
    let values: Vec<(&String, &Value)> = answer
        .iter()
        .filter(|(k, _)| k.starts_with("value"))
        .collect();
    match values.as_slice() {
        [] => {
            errors.push(at, format!("no value: expected {expected}"));
            None
        }
        [(key, v)] if key.as_str() == expected => Some(v),
        [(key, _)] => {
            errors.push(
                format!("{at}.{}", clip(key)),
                format!("this question takes {expected}, not {}", clip(key)),
            );
            None
        }
        [_, (second, _), ..] => {
            errors.push(
                format!("{at}.{}", clip(second)),
                format!("one value per answer: expected {expected} alone"),
            );
            None
        }
    }
}

/// The code of an enum answer's Coding, which must be of the fact's answer system (or name none).
fn coding_code(fact: &str, v: &Value, at: &str, errors: &mut Violations) -> Option<Value> {
    let Some(coding) = v.as_object() else {
        errors.push(at, "expected a Coding (system, code)");
        return None;
    };
    if let Some(system) = coding.get("system") {
        let expected = format!("{ANSWER_SYSTEM_PREFIX}{fact}");
        if system.as_str() != Some(expected.as_str()) {
            errors.push(
                format!("{at}.system"),
                format!("expected '{expected}' (the answers of '{fact}'), or no system"),
            );
            return None;
        }
    }
    match coding.get("code") {
        Some(code @ Value::String(_)) => Some(code.clone()),
        _ => {
            errors.push(format!("{at}.code"), "required: the answer's code");
            None
        }
    }
}

/// At most 64 characters of caller input in a message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

impl crate::RuleSet {
    /// The answers of a QuestionnaireResponse as facts (fact id → JSON answer), read and checked
    /// exactly as a request's `questionnaire_response`, for a door with other sources of facts
    /// beside it (CDS Hooks: the patient's coded record, merged with these answers). Faults are
    /// named under `at` (`prefetch.intake.item[3].answer[0].valueInteger`) instead of
    /// `questionnaire_response`.
    pub fn answers_of(&self, response: &Value, at: &str) -> Result<Facts, RequestError> {
        let rs = &*self.0;
        let mut errors = Violations::default();
        let read = read_response(rs, response, &mut errors);
        let mut inner = Violations::default();
        let _ = parse_facts(rs, &read.facts, &mut inner);
        for v in inner.into_vec() {
            let field = v
                .field
                .strip_prefix("facts.")
                .and_then(|id| read.paths.get(id))
                .cloned()
                .unwrap_or(v.field);
            errors.push(field, v.message);
        }
        let mut violations = errors.into_vec();
        for v in &mut violations {
            if let Some(rest) = v.field.strip_prefix(FIELD) {
                v.field = format!("{at}{rest}");
            }
        }
        if violations.is_empty() {
            Ok(read.facts)
        } else {
            Err(RequestError { violations })
        }
    }
}
