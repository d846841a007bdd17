//! What changed between two answers to the same request (a logged decision and its replay), as
//! a list of differences an auditor reads without diffing JSON by eye.
//!
//! Each difference names a path in the answer and whether something was added, removed or
//! changed there, with the value before and after. Lists of rules, zones, sessions, treatments
//! and milestones are matched by their identity (`reasons[rule=pregnancy]`,
//! `zones[zone=cheeks].max_depth_mm`), not by position, so one reason more does not show as every
//! later reason changed (the reason RFC 6902 JSON Patch, index-based, was not used); lists of
//! names (`missing_facts`) are compared as sets. `ruleset` objects are left out: the replay shows
//! both rule sets beside the answers.

use serde::Serialize;
use serde_json::Value;

/// One difference between the answer before and the answer after.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AnswerChange {
    /// Where, in the answer: `decision`, `earliest_date`, `reasons[rule=pregnancy]`,
    /// `missing_facts`, `zones[zone=cheeks].max_depth_mm`, `client.decision`, ...
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: ChangeKind,
    /// The value before (absent for `added`); for a list of names, the name removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The value after (absent for `removed`); for a list of names, the name added.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }
}

/// The keys that identify an item of a list of objects in an answer, tried in this order.
const IDENTITIES: [&str; 6] = ["rule", "zone", "treatment", "number", "milestone", "bound"];

/// The differences from `before` to `after`, in path order.
pub fn diff(before: &Value, after: &Value) -> Vec<AnswerChange> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn change(
    path: String,
    change: ChangeKind,
    before: Option<&Value>,
    after: Option<&Value>,
) -> AnswerChange {
    AnswerChange {
        path,
        change,
        before: before.cloned(),
        after: after.cloned(),
    }
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<AnswerChange>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys.into_iter().filter(|k| *k != "ruleset") {
                let at = join(path, key);
                match (b.get(key), a.get(key)) {
                    (Some(b), None) => out.push(change(at, ChangeKind::Removed, Some(b), None)),
                    (None, Some(a)) => out.push(change(at, ChangeKind::Added, None, Some(a))),
                    (Some(b), Some(a)) => walk(&at, b, a, out),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            if let Some(key) = identity(b, a) {
                by_identity(path, key, b, a, out);
            } else if b.iter().chain(a).all(|v| !v.is_object() && !v.is_array()) {
                let removed: Vec<&Value> = b.iter().filter(|v| !a.contains(v)).collect();
                let added: Vec<&Value> = a.iter().filter(|v| !b.contains(v)).collect();
                if removed.is_empty() && added.is_empty() {
                    // The same names in another order.
                    out.push(change(
                        path.to_owned(),
                        ChangeKind::Changed,
                        Some(before),
                        Some(after),
                    ));
                }
                for v in removed {
                    out.push(change(path.to_owned(), ChangeKind::Removed, Some(v), None));
                }
                for v in added {
                    out.push(change(path.to_owned(), ChangeKind::Added, None, Some(v)));
                }
            } else {
                out.push(change(
                    path.to_owned(),
                    ChangeKind::Changed,
                    Some(before),
                    Some(after),
                ));
            }
        }
        _ => out.push(change(
            path.to_owned(),
            ChangeKind::Changed,
            Some(before),
            Some(after),
        )),
    }
}

/// The identity key every item of both lists carries with a distinct scalar value, if any.
fn identity(b: &[Value], a: &[Value]) -> Option<&'static str> {
    IDENTITIES.into_iter().find(|key| {
        [b, a].iter().all(|list| {
            let ids: Vec<&Value> = list.iter().filter_map(|item| item.get(key)).collect();
            ids.len() == list.len()
                && ids.iter().all(|v| !v.is_object() && !v.is_array())
                && (1..ids.len()).all(|i| !ids[..i].contains(&ids[i]))
        }) && !(b.is_empty() && a.is_empty())
    })
}

fn by_identity(path: &str, key: &str, b: &[Value], a: &[Value], out: &mut Vec<AnswerChange>) {
    let id_of = |v: &Value| -> String {
        match v.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    };
    let at = |v: &Value| format!("{path}[{key}={}]", id_of(v));
    for item in b {
        match a.iter().find(|x| x.get(key) == item.get(key)) {
            Some(now) => walk(&at(item), item, now, out),
            None => out.push(change(at(item), ChangeKind::Removed, Some(item), None)),
        }
    }
    for item in a {
        if !b.iter().any(|x| x.get(key) == item.get(key)) {
            out.push(change(at(item), ChangeKind::Added, None, Some(item)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(changes: &[AnswerChange]) -> Vec<(String, &'static str)> {
        changes
            .iter()
            .map(|c| (c.path.clone(), c.change.as_str()))
            .collect()
    }

    #[test]
    fn decision_reasons_dates_and_names_are_each_one_change() {
        let before = json!({
            "decision": "eligible", "bookable": true, "earliest_date": null,
            "reasons": [{"rule": "a", "until": "2026-12-01"}, {"rule": "b"}],
            "missing_facts": ["x", "y"],
            "ruleset": {"version": "1"},
        });
        let after = json!({
            "decision": "deferred", "bookable": false, "earliest_date": "2027-01-01",
            "reasons": [{"rule": "c"}, {"rule": "a", "until": "2027-01-01"}],
            "missing_facts": ["y", "z"],
            "ruleset": {"version": "2"},
        });
        let changes = diff(&before, &after);
        assert_eq!(
            paths(&changes),
            [
                ("bookable".into(), "changed"),
                ("decision".into(), "changed"),
                ("earliest_date".into(), "changed"),
                ("missing_facts".into(), "removed"),
                ("missing_facts".into(), "added"),
                ("reasons[rule=a].until".into(), "changed"),
                ("reasons[rule=b]".into(), "removed"),
                ("reasons[rule=c]".into(), "added"),
            ]
        );
        assert_eq!(changes[1].before, Some(json!("eligible")));
        assert_eq!(changes[1].after, Some(json!("deferred")));
        assert_eq!(changes[3].before, Some(json!("x")));
        assert_eq!(changes[4].after, Some(json!("z")));
        assert!(
            diff(&before, &before).is_empty(),
            "no change, no difference"
        );
    }

    #[test]
    fn depth_limits_are_matched_by_zone() {
        let before = json!({"zones": [{"zone": "cheeks", "max_depth_mm": 1.5}, {"zone": "forehead", "max_depth_mm": 0.5}]});
        let after = json!({"zones": [{"zone": "forehead", "max_depth_mm": 0.5}, {"zone": "cheeks", "max_depth_mm": 1.0}]});
        let changes = diff(&before, &after);
        assert_eq!(
            paths(&changes),
            [("zones[zone=cheeks].max_depth_mm".into(), "changed")]
        );
    }
}
