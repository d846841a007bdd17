//! Explain mode on the fixture rule set: every rule's condition tree with each node's result and
//! the values it read, agreeing with the decision it explains.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use jiff::civil::{Date, date};
use protocol_engine::*;
use serde_json::{Value, json};

fn mini() -> RuleSet {
    let doc = parse_document(include_str!("fixtures/mini.yaml"), Format::Yaml).expect("parses");
    compile(&doc, None).expect("compiles")
}

const DAY: Date = date(2026, 12, 1);

fn request(facts: Value) -> EligibilityRequest {
    EligibilityRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        date: DAY,
        facts: serde_json::from_value(facts).expect("facts"),
        questionnaire_response: None,
        history: vec![],
        zones: None,
        device: None,
        role: None,
        indication: None,
    }
}

fn rule<'a>(explained: &'a [RuleExplanation], id: &str) -> &'a RuleExplanation {
    explained
        .iter()
        .find(|r| r.rule == id)
        .unwrap_or_else(|| panic!("rule {id} explained"))
}

#[test]
fn a_contraindication_that_fires_and_one_that_is_unknown_show_their_trees() {
    let rs = mini();
    // Pregnant; rosacea unanswered.
    let req = request(json!({
        "date_of_birth": "1990-01-01", "pregnant": true, "fitzpatrick": 2,
        "isotretinoin_last_dose": null,
    }));
    let explained = rs.explain_eligibility(&req).expect("valid");

    let pregnancy = rule(&explained, "pregnancy");
    assert_eq!(pregnancy.result, Truth::True);
    assert_eq!(pregnancy.condition.test, "pregnant = true");
    assert_eq!(pregnancy.condition.result, Truth::True);
    assert_eq!(
        pregnancy.condition.used,
        vec![Used {
            input: "pregnant".into(),
            value: Some("true".into())
        }]
    );

    let rosacea = rule(&explained, "rosacea_active");
    assert_eq!(rosacea.result, Truth::Unknown);
    assert_eq!(rosacea.condition.test, "rosacea in [papulopustular]");
    assert_eq!(rosacea.condition.used[0].input, "rosacea");
    assert_eq!(
        rosacea.condition.used[0].value, None,
        "unanswered: no value"
    );

    let pih = rule(&explained, "pih_risk");
    assert_eq!(pih.result, Truth::False);
    assert_eq!(pih.condition.used[0].value.as_deref(), Some("2"));

    // The washout reads the dose date (null: never) and the check date.
    let washout = rule(&explained, "isotretinoin_washout");
    assert_eq!(washout.result, Truth::False);
    let used: Vec<(&str, Option<&str>)> = washout
        .condition
        .used
        .iter()
        .map(|u| (u.input.as_str(), u.value.as_deref()))
        .collect();
    assert_eq!(
        used,
        vec![
            ("isotretinoin_last_dose", Some("null")),
            ("date", Some("2026-12-01"))
        ]
    );

    // Serialised as the API shows it.
    let json = serde_json::to_value(pregnancy).expect("serialises");
    assert_eq!(json["result"], "true");
    assert_eq!(json["condition"]["used"][0]["value"], "true");
}

#[test]
fn explanations_agree_with_the_decision_they_explain() {
    let rs = mini();
    let answers = [
        json!({}),
        json!({"pregnant": false, "fitzpatrick": 5, "rosacea": "none"}),
        json!({"date_of_birth": "2012-05-01", "pregnant": false, "fitzpatrick": 1,
               "rosacea": "papulopustular", "isotretinoin_last_dose": "2026-10-01"}),
        json!({"date_of_birth": "1990-01-01", "pregnant": true, "fitzpatrick": 2,
               "rosacea": "none", "isotretinoin_last_dose": null}),
    ];
    for facts in answers {
        let req = request(facts.clone());
        let decision = rs.eligibility(&req).expect("valid");
        let explained = rs.explain_eligibility(&req).expect("valid");
        let fired: Vec<&str> = explained
            .iter()
            .filter(|r| r.result == Truth::True)
            .map(|r| r.rule.as_str())
            .collect();
        let reasons: Vec<&str> = decision
            .reasons
            .iter()
            .map(|r| r.info.rule.as_str())
            .collect();
        assert_eq!(fired, reasons, "{facts}");
        for r in &explained {
            if r.result == Truth::True
                && let Some(reason) = decision.reasons.iter().find(|x| x.info.rule == r.rule)
            {
                assert_eq!(r.until, reason.until, "{facts}: {}", r.rule);
            }
        }
        let unknown = explained.iter().any(|r| r.result == Truth::Unknown);
        assert_eq!(
            unknown,
            !decision.missing_facts.is_empty() || !decision.missing_inputs.is_empty(),
            "{facts}"
        );
    }
}
