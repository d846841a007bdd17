//! The FHIR views of the bundled base (issue 15 §2): the Questionnaire holds FHIR's invariants
//! that no schema checks (here; `scripts/fhir-validate` also runs FHIR's own models over it), and
//! a QuestionnaireResponse decides exactly as the same answers sent as `facts` (for generated
//! answer sets too, every treatment and the contraindication check: a property), with every
//! fault named by the item it is in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::collections::HashSet;
use std::path::Path;

use jiff::civil::date;
use protocol_engine::fhir::{Questionnaire, answer_system};
use protocol_engine::*;
use serde_json::{Value, json};

fn base() -> RuleSet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rulesets/base.yaml");
    let text = std::fs::read_to_string(path).expect("rulesets/base.yaml");
    compile(&parse_document(&text, Format::Yaml).expect("parses"), None).expect("compiles")
}

fn request(facts: Value, qr: Option<Value>) -> EligibilityRequest {
    EligibilityRequest {
        treatment: "microneedling".into(),
        date: date(2026, 12, 1),
        facts: serde_json::from_value(facts).expect("facts"),
        questionnaire_response: qr,
        history: Vec::new(),
        zones: None,
        device: None,
        role: None,
        indication: None,
        ruleset_version: None,
        ruleset_digest: None,
        explain: false,
    }
}

fn qr(items: Value) -> Value {
    json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": items})
}

fn fields(e: &RequestError) -> Vec<&str> {
    e.violations.iter().map(|v| v.field.as_str()).collect()
}

#[test]
fn the_questionnaire_has_an_item_per_fact_typed_as_the_fact() {
    let rs = base();
    let q: Questionnaire = rs.questionnaire();
    let facts = rs.facts().facts;
    let ids: HashSet<&str> = q.item.iter().map(|i| i.link_id.as_str()).collect();
    assert_eq!(ids.len(), q.item.len(), "linkIds are unique (que-2)");
    for f in &facts {
        let item = q
            .item
            .iter()
            .find(|i| i.link_id == f.id)
            .unwrap_or_else(|| panic!("an item for {}", f.id));
        assert_eq!(item.text, f.question);
        assert_eq!(item.code, f.codes);
        let expected = match f.fact_type.as_str() {
            "bool" => "boolean",
            "integer" => "integer",
            "enum" => "choice",
            _ => "date",
        };
        assert_eq!(item.item_type, expected, "{}", f.id);
        if f.null_means.is_some() {
            let gate = format!("{}.null_means", f.id);
            assert!(ids.contains(gate.as_str()), "{gate}");
            assert_eq!(item.enable_when[0].question, gate);
            assert!(!item.enable_when[0].answer_boolean);
        }
    }
    for item in &q.item {
        for w in &item.enable_when {
            assert!(
                ids.contains(w.question.as_str()),
                "enableWhen targets exist"
            );
        }
    }
    let fitz = q
        .item
        .iter()
        .find(|i| i.link_id == "fitzpatrick")
        .expect("fitzpatrick");
    let bounds: Vec<i64> = fitz.extension.iter().map(|e| e.value_integer).collect();
    assert_eq!(bounds, [1, 6]);
    let rosacea = q
        .item
        .iter()
        .find(|i| i.link_id == "rosacea")
        .expect("rosacea");
    assert_eq!(rosacea.answer_option.len(), 3);
    assert_eq!(
        rosacea.answer_option[0].value_coding.system,
        answer_system("rosacea")
    );
    assert_eq!(
        rosacea.answer_option[2].value_coding.display,
        "Papulopustular (bumps and pimples)"
    );
    let served: Vec<&str> = q
        .use_context
        .iter()
        .map(|u| u.value_codeable_concept.coding[0].code.as_str())
        .collect();
    assert_eq!(
        served,
        [
            "microneedling",
            "microneedling_prp",
            "rf_microneedling",
            "home_microneedling",
            "microdermabrasion"
        ]
    );
    assert_eq!(q.identifier[0].value, rs.meta().digest);
}

#[test]
fn a_response_decides_as_the_same_facts() {
    let rs = base();
    let facts = json!({
        "pregnant": false, "fitzpatrick": 3, "rosacea": "papulopustular",
        "isotretinoin_last_dose": null, "date_of_birth": "1990-04-02"
    });
    let response = qr(json!([
        {"linkId": "pregnant", "answer": [{"valueBoolean": false}]},
        {"linkId": "fitzpatrick", "answer": [{"valueInteger": 3}]},
        {"linkId": "rosacea", "answer": [{"valueCoding": {"system": answer_system("rosacea"), "code": "papulopustular"}}]},
        {"linkId": "isotretinoin_last_dose.null_means", "answer": [{"valueBoolean": true}]},
        {"linkId": "date_of_birth", "answer": [{"valueDate": "1990-04-02"}]},
        {"linkId": "active_acne"}
    ]));
    let by_facts = rs.eligibility(&request(facts, None)).expect("facts");
    let by_qr = rs
        .eligibility(&request(json!({}), Some(response)))
        .expect("response");
    assert_eq!(by_qr, by_facts);

    let dated = qr(json!([
        {"linkId": "isotretinoin_last_dose.null_means", "answer": [{"valueBoolean": false}]},
        {"linkId": "isotretinoin_last_dose", "answer": [{"valueDate": "2026-10-01"}]}
    ]));
    let a = rs
        .eligibility(&request(json!({}), Some(dated)))
        .expect("dated");
    let b = rs
        .eligibility(&request(
            json!({"isotretinoin_last_dose": "2026-10-01"}),
            None,
        ))
        .expect("facts");
    assert_eq!(a, b);
    assert_eq!(a.decision, Decision::Deferred);
}

#[test]
fn faults_name_the_item_answer_and_value() {
    let rs = base();
    let response = qr(json!([
        {"linkId": "pregnant", "answer": [{"valueBoolean": true}]},
        {"linkId": "pregnent", "answer": [{"valueBoolean": true}]},
        {"linkId": "fitzpatrick", "answer": [{"valueString": "3"}]},
        {"linkId": "pregnant", "answer": [{"valueBoolean": false}]},
        {"linkId": "fitzpatrick", "answer": [{"valueInteger": 9}]},
        {"linkId": "sunburn", "answer": [{"valueBoolean": true}, {"valueBoolean": false}]},
        {"linkId": "rosacea", "answer": [{"valueCoding": {"code": "purple"}}]},
        {"linkId": "date_of_birth", "answer": [{"valueDate": "1990-04"}]},
        {"linkId": "isotretinoin_last_dose.null_means", "answer": [{"valueBoolean": true}]},
        {"linkId": "isotretinoin_last_dose", "answer": [{"valueDate": "2026-01-01"}]}
    ]));
    let e = rs
        .eligibility(&request(json!({}), Some(response)))
        .expect_err("refused");
    let f = fields(&e);
    for expected in [
        "questionnaire_response.item[1].linkId",
        "questionnaire_response.item[2].answer[0].valueString",
        "questionnaire_response.item[3].linkId",
        "questionnaire_response.item[4].linkId",
        "questionnaire_response.item[5].answer[1]",
        "questionnaire_response.item[6].answer[0].valueCoding",
        "questionnaire_response.item[7].answer[0].valueDate",
        "questionnaire_response.item[9].answer[0].valueDate",
    ] {
        assert!(f.contains(&expected), "{expected} in {e}");
    }
    let unknown = e
        .violations
        .iter()
        .find(|v| v.field.ends_with("item[1].linkId"));
    assert!(
        unknown.is_some_and(|v| v.message.contains("did you mean 'pregnant'")),
        "{e}"
    );

    // An integer out of range is named at its value, by the same check as `facts`.
    let e = rs
        .eligibility(&request(
            json!({}),
            Some(qr(
                json!([{"linkId": "fitzpatrick", "answer": [{"valueInteger": 9}]}]),
            )),
        ))
        .expect_err("out of range");
    assert_eq!(
        fields(&e),
        ["questionnaire_response.item[0].answer[0].valueInteger"]
    );
    assert!(
        e.violations[0].message.contains("out of range 1..=6"),
        "{e}"
    );
}

#[test]
fn status_resource_type_and_both_answer_forms_are_checked() {
    let rs = base();
    for status in ["entered-in-error", "stopped"] {
        let mut r = qr(json!([]));
        r["status"] = json!(status);
        let e = rs
            .eligibility(&request(json!({}), Some(r)))
            .expect_err("status");
        assert_eq!(fields(&e), ["questionnaire_response.status"]);
    }
    for status in ["completed", "in-progress", "amended"] {
        let mut r = qr(json!([]));
        r["status"] = json!(status);
        let answer = rs.eligibility(&request(json!({}), Some(r))).expect(status);
        assert_eq!(
            answer.decision,
            Decision::Incomplete,
            "unanswered is unknown"
        );
    }
    let e = rs
        .eligibility(&request(
            json!({}),
            Some(json!({"resourceType": "Patient", "status": "completed"})),
        ))
        .expect_err("not a response");
    assert_eq!(fields(&e), ["questionnaire_response.resourceType"]);
    let e = rs
        .eligibility(&request(json!({"pregnant": true}), Some(qr(json!([])))))
        .expect_err("both");
    assert_eq!(fields(&e), ["facts", "questionnaire_response"]);
    let e = rs
        .contraindications(&ContraindicationRequest {
            treatments: None,
            facts: Default::default(),
            questionnaire_response: Some(qr(json!([{"linkId": "nope"}]))),
            date: None,
            history: None,
            ruleset_version: None,
            ruleset_digest: None,
            explain: false,
        })
        .expect_err("unknown linkId");
    assert_eq!(fields(&e), ["questionnaire_response.item[0].linkId"]);
}

// ---- Property: a response decides as the same facts, whatever the answers ---------------------

/// The answer a seed picks for a fact (`None`: left unanswered).
fn answer(f: &FactInfo, seed: u16) -> Option<Value> {
    if seed.is_multiple_of(5) {
        return None;
    }
    let n = i64::from(seed);
    Some(match f.fact_type.as_str() {
        "bool" => json!(seed.is_multiple_of(2)),
        "integer" => {
            let (min, max) = (f.min.unwrap_or(0), f.max.unwrap_or(0));
            json!(min + n % (max - min + 1))
        }
        "enum" => json!(f.values[seed as usize % f.values.len()]),
        _ if f.null_means.is_some() && seed.is_multiple_of(3) => Value::Null,
        _ => {
            let d = date(2020, 1, 1)
                .checked_add(jiff::Span::new().days(n % 2500))
                .expect("date");
            json!(d.to_string())
        }
    })
}

/// The QuestionnaireResponse giving `facts`: gates "never" for null, "no" before a date.
fn response_of(facts: &serde_json::Map<String, Value>, rs: &RuleSet) -> Value {
    let mut items = Vec::new();
    for f in rs.facts().facts {
        let Some(v) = facts.get(&f.id) else { continue };
        if f.null_means.is_some() {
            items.push(json!({"linkId": format!("{}.null_means", f.id),
                "answer": [{"valueBoolean": v.is_null()}]}));
            if v.is_null() {
                continue;
            }
        }
        let value = match f.fact_type.as_str() {
            "bool" => json!({"valueBoolean": v}),
            "integer" => json!({"valueInteger": v}),
            "enum" => json!({"valueCoding": {"system": answer_system(&f.id), "code": v}}),
            _ => json!({"valueDate": v}),
        };
        items.push(json!({"linkId": f.id, "answer": [value]}));
    }
    qr(Value::Array(items))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn any_answers_decide_the_same_as_facts_or_as_a_response(
        seeds in proptest::collection::vec(0u16..u16::MAX, 64),
    ) {
        let rs = base();
        let mut facts = serde_json::Map::new();
        for (f, seed) in rs.facts().facts.iter().zip(&seeds) {
            if let Some(v) = answer(f, *seed) {
                facts.insert(f.id.clone(), v);
            }
        }
        let response = response_of(&facts, &rs);
        for t in rs.treatments().treatments {
            let mut by_facts = request(Value::Object(facts.clone()), None);
            let mut by_response = request(json!({}), Some(response.clone()));
            by_facts.treatment = t.code.clone();
            by_response.treatment = t.code.clone();
            proptest::prop_assert_eq!(rs.eligibility(&by_facts), rs.eligibility(&by_response));
        }
        let contra = |facts: Value, qr: Option<Value>| ContraindicationRequest {
            treatments: None,
            facts: serde_json::from_value(facts).expect("facts"),
            questionnaire_response: qr,
            date: Some(date(2026, 12, 1)),
            history: Some(Vec::new()),
            ruleset_version: None,
            ruleset_digest: None,
            explain: false,
        };
        proptest::prop_assert_eq!(
            rs.contraindications(&contra(Value::Object(facts), None)),
            rs.contraindications(&contra(json!({}), Some(response)))
        );
    }
}

/// One record scenario (`tests/records/*.yaml`): FHIR resources as an EHR sends them, and what
/// the bundled base reads from them. Only what `want` lists is asserted; a key it does not know
/// is an error (a typo never passes).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordCase {
    name: String,
    resources: Vec<Value>,
    want: RecordWant,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordWant {
    /// Facts the record answers, with their values.
    #[serde(default)]
    facts: serde_json::Map<String, Value>,
    /// Facts the record must leave unknown (never "no").
    #[serde(default)]
    unknown: Vec<String>,
    /// The whole history read, when given.
    #[serde(default)]
    history: Option<Vec<HistoryEntry>>,
    /// How many notes the card gets, when given.
    #[serde(default)]
    notes: Option<usize>,
    /// Texts some note contains.
    #[serde(default)]
    notes_contain: Vec<String>,
}

/// Every record scenario: the clinical reading of a record (a refuted condition answers no, a
/// yes wins over a no, only an allergy record answers an allergy fact, a resolved condition
/// answers a history fact) pinned as data, as the clinical scenarios pin decisions. Every
/// mismatch of every case is reported, not the first.
#[test]
fn record_scenarios_read_as_written() {
    use protocol_engine::ehr::{index, record, resource};
    let rs = base();
    let ix = index::of(&rs);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/records");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/records")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "record scenarios: {}", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("case");
        let case: RecordCase =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let resources: Vec<_> = case
            .resources
            .iter()
            .enumerate()
            .map(|(i, v)| {
                resource::resource(v, &format!("resources[{i}]"))
                    .unwrap_or_else(|e| panic!("{}: {}: {}", path.display(), e.field, e.message))
            })
            .collect();
        let got = record::read(&ix, &resources, &[]);
        let mut bad = |what: String| failures.push(format!("{}: {what}", case.name));
        for (fact, want) in &case.want.facts {
            if got.facts.get(fact) != Some(want) {
                bad(format!(
                    "{fact}: expected {want}, got {:?}",
                    got.facts.get(fact)
                ));
            }
        }
        for fact in &case.want.unknown {
            if let Some(v) = got.facts.get(fact) {
                bad(format!("{fact}: expected unknown, got {v}"));
            }
        }
        if let Some(history) = &case.want.history
            && &got.history != history
        {
            bad(format!(
                "history: expected {history:?}, got {:?}",
                got.history
            ));
        }
        if let Some(n) = case.want.notes
            && got.notes.len() != n
        {
            bad(format!("notes: expected {n}, got {:?}", got.notes));
        }
        for text in &case.want.notes_contain {
            if !got.notes.iter().any(|n| n.contains(text.as_str())) {
                bad(format!("no note contains {text:?}: {:?}", got.notes));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
