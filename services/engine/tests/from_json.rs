//! The fast read of an eligibility body (`RuleSet::read_eligibility`) against the general path
//! (`serde_json::from_slice::<EligibilityRequest>` then `RuleSet::eligibility`) on generated
//! bodies, valid and not: a fact given twice or unknown, values of every wrong kind, unknown
//! fields and ids, zones twice, explanations and pins. The fast read must answer exactly the
//! bodies the general path answers (but those that ask for an explanation or pin a version,
//! which it leaves to it), with the same bytes; a body the general path refuses it must leave
//! to the general path, which names the fault. About one generated body in six is answered.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use proptest::prelude::*;
use protocol_engine::*;
use serde_json::{Map, Value, json};

/// The bundled base rule set, compiled once for every case.
static RULESET: std::sync::LazyLock<RuleSet> = std::sync::LazyLock::new(|| {
    let text = include_str!("../../../rulesets/base.yaml");
    compile(&parse_document(text, Format::Yaml).expect("parses"), None).expect("compiles")
});

fn ruleset() -> &'static RuleSet {
    &RULESET
}

fn load_body() -> Map<String, Value> {
    match serde_json::from_str(include_str!("../../../scripts/load-eligibility.json")) {
        Ok(Value::Object(m)) => m,
        other => panic!("the load body is an object: {other:?}"),
    }
}

/// Answers of every kind, right and wrong for some fact.
fn answers() -> Vec<Value> {
    vec![
        json!(true),
        json!(false),
        Value::Null,
        json!(0),
        json!(3),
        json!(6),
        json!(7),
        json!(-1),
        json!(3.0),
        json!(18446744073709551615u64),
        json!("none"),
        json!("papulopustular"),
        json!("bogus"),
        json!("2025-01-10"),
        json!("2026-11-20"),
        json!("2026-13-01"),
        json!("20250110"),
        json!("9999-12-31"),
        json!([]),
        json!({}),
    ]
}

/// Values for the request's own fields; `None` leaves the field out.
fn field_choices(field: &str) -> Vec<Option<Value>> {
    let some = |v: Value| Some(v);
    match field {
        "treatment" => vec![
            some(json!("microneedling")),
            some(json!("rf_microneedling")),
            some(json!("microdermabrasion")),
            some(json!("home_microneedling")),
            some(json!("nope")),
            some(json!(5)),
            None,
        ],
        "date" => vec![
            some(json!("2026-12-01")),
            some(json!("2025-03-01")),
            some(json!("2026-02-30")),
            some(json!("20261201")),
            some(json!("9999-12-01")),
            None,
        ],
        "zones" => vec![
            None,
            some(Value::Null),
            some(json!([])),
            some(json!(["cheeks"])),
            some(json!(["cheeks", "cheeks"])),
            some(json!(["cheeks", "forehead", "chin"])),
            some(json!(["decolletage", "abdomen"])),
            some(json!(["nope"])),
            some(json!("cheeks")),
        ],
        "device" => vec![
            None,
            some(Value::Null),
            some(json!("dermapen_4")),
            some(json!("skinpen_precision")),
            some(json!("microdermabrasion_wand")),
            some(json!("nope")),
        ],
        "role" => vec![
            None,
            some(Value::Null),
            some(json!("nurse")),
            some(json!("aesthetician")),
            some(json!("self")),
            some(json!("nope")),
        ],
        "indication" => vec![
            None,
            some(json!("acne_scars")),
            some(json!("stretch_marks")),
            some(json!("nope")),
        ],
        "history" => vec![
            some(json!([])),
            some(json!([{"procedure": "botulinum_toxin", "date": "2026-11-25"}])),
            some(json!([
                {"procedure": "botulinum_toxin", "date": "2026-09-15"},
                {"procedure": "microneedling", "date": "2026-11-20"}
            ])),
            some(json!([{"procedure": "nope", "date": "2026-09-15"}])),
            some(json!([{"procedure": "ipl", "date": "x"}])),
            some(json!([{"procedure": "ipl", "date": "2026-09-15", "x": 1}])),
            some(json!([["ipl", "2026-09-15"]])),
            some(Value::Null),
            None,
        ],
        "explain" => vec![
            None,
            some(json!(false)),
            some(json!(true)),
            some(Value::Null),
        ],
        "ruleset_version" => vec![None, None, some(Value::Null), some(json!("2026.11.1"))],
        "ruleset_digest" => vec![None, None, some(Value::Null), some(json!("sha256:00"))],
        _ => vec![None],
    }
}

const FIELDS: [&str; 10] = [
    "treatment",
    "date",
    "zones",
    "device",
    "role",
    "indication",
    "history",
    "explain",
    "ruleset_version",
    "ruleset_digest",
];

/// A body from the choices: the load body's facts (each kept, left out or replaced), the
/// request's fields, and text edits serde cannot express (a key twice).
fn body(picks: &[usize]) -> (Vec<u8>, bool) {
    let base = load_body();
    let mut pick = picks.iter().copied().cycle();
    let mut next = |n: usize| pick.next().unwrap_or(0) % n.max(1);
    let mut request = Map::new();
    for field in FIELDS {
        // Mostly the field's first (valid) choice, so that many bodies are answered.
        let choices = field_choices(field);
        let choice = if next(4) > 0 { 0 } else { next(choices.len()) };
        if let Some(v) = choices[choice].clone() {
            request.insert(field.into(), v);
        }
    }
    let answers = answers();
    let mut facts = Map::new();
    if let Some(Value::Object(given)) = base.get("facts") {
        for (id, v) in given {
            match next(96) {
                0 => {}
                1 => {
                    facts.insert(id.clone(), answers[next(answers.len())].clone());
                }
                _ => {
                    facts.insert(id.clone(), v.clone());
                }
            }
        }
    }
    if next(20) == 0 {
        facts.insert("not_a_fact".into(), json!(true));
    }
    match next(8) {
        0 => {}
        1 => {
            request.insert("facts".into(), Value::Null);
        }
        _ => {
            request.insert("facts".into(), Value::Object(facts));
        }
    }
    if next(20) == 0 {
        request.insert("questionnaire_response".into(), json!({}));
    }
    let mut text = serde_json::to_string(&Value::Object(request.clone())).unwrap_or_default();
    match next(20) {
        // A fact given twice (the same answer, or another).
        0 => {
            text = text.replacen(
                "\"facts\":{",
                "\"facts\":{\"pregnant\":false,\"pregnant\":false,",
                1,
            )
        }
        1 => {
            text = text.replacen(
                "\"facts\":{",
                "\"facts\":{\"fitzpatrick\":3,\"fitzpatrick\":2,",
                1,
            )
        }
        // A request field twice.
        2 => text = text.replacen('{', "{\"treatment\":\"microneedling\",", 1),
        3 => text = format!("{text} x"),
        _ => {}
    }
    let left_to_general = request.get("explain") == Some(&json!(true))
        || [
            "ruleset_version",
            "ruleset_digest",
            "questionnaire_response",
        ]
        .iter()
        .any(|k| request.get(*k).is_some_and(|v| !v.is_null()));
    (text.into_bytes(), left_to_general)
}

fn general(rs: &RuleSet, body: &[u8]) -> Option<Vec<u8>> {
    let req: EligibilityRequest = serde_json::from_slice(body).ok()?;
    let answer = rs.eligibility(&req).ok()?;
    serde_json::to_vec(&answer).ok()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_fast_read_answers_what_the_general_path_answers(picks in prop::collection::vec(0usize..1000, 96)) {
        let rs = ruleset();
        let (body, left_to_general) = body(&picks);
        let text = String::from_utf8_lossy(&body).into_owned();
        let fast = rs.read_eligibility(&body).map(|read| {
            let mut out = Vec::new();
            read.decide().write_json(&[], &mut out);
            out
        });
        match (fast, general(rs, &body)) {
            (Some(_), _) if left_to_general => prop_assert!(false, "explained or pinned, yet read: {text}"),
            (Some(got), Some(want)) => prop_assert_eq!(
                String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "{}", text
            ),
            (Some(got), None) => prop_assert!(false, "read a body the general path refuses: {text}\n{}", String::from_utf8_lossy(&got)),
            (None, Some(_)) => prop_assert!(left_to_general, "left a body the general path answers: {text}"),
            (None, None) => {}
        }
    }
}

#[test]
fn the_load_body_and_its_variants_are_read() {
    let rs = ruleset();
    let body = include_bytes!("../../../scripts/load-eligibility.json");
    let read = rs.read_eligibility(body).expect("the load body is read");
    assert_eq!(read.treatment(), "microneedling");
    let verdict = read.decide();
    assert_eq!(verdict.decision(), Decision::EligibleWithPrecautions);
    let mut out = Vec::new();
    verdict.write_json(&[("decision_id", "x\"y")], &mut out);
    let mut want: Value =
        serde_json::from_slice(&general(rs, body).expect("answered")).expect("json");
    want["decision_id"] = json!("x\"y");
    assert_eq!(
        serde_json::from_slice::<Value>(&out).expect("valid JSON"),
        want
    );
    // Whitespace, escapes in names and values, and the fields in another order.
    let escaped = br#" { "history" : [ ] , "date" : "2026-12-01", "tre\u0061tment":"microneedling",
        "facts": {"pregn\u0061nt": false, "rosacea": "n\u006fne"} } "#;
    assert!(rs.read_eligibility(escaped).is_some());
    assert!(general(rs, escaped).is_some());
}
