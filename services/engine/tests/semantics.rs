//! The decision semantics of docs/design.md §4 on a small fixture rule set, independent of the clinical
//! content: three-valued logic, deferral dates, depth bounds, and request errors naming fields.

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

/// Every fact of the fixture answered, healthy.
fn answered() -> Facts {
    serde_json::from_value(json!({
        "date_of_birth": "1990-01-01", "pregnant": false, "fitzpatrick": 2, "rosacea": "none",
        "isotretinoin_last_dose": null,
    }))
    .expect("facts")
}

fn check(facts: Facts, history: Vec<HistoryEntry>) -> Eligibility {
    let req = EligibilityRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        date: DAY,
        facts,
        questionnaire_response: None,
        history,
        zones: None,
        device: None,
        role: None,
        indication: None,
    };
    mini().eligibility(&req).expect("valid")
}

fn with(pairs: &[(&str, Value)]) -> Facts {
    let mut f = answered();
    for (k, v) in pairs {
        f.insert((*k).to_owned(), v.clone());
    }
    f
}

fn fired(e: &Eligibility) -> Vec<&str> {
    e.reasons.iter().map(|r| r.info.rule.as_str()).collect()
}

#[test]
fn a_fully_answered_healthy_client_is_eligible() {
    let e = check(answered(), vec![]);
    assert_eq!(e.decision, Decision::Eligible);
    assert!(e.bookable && e.reasons.is_empty() && e.missing_facts.is_empty());
    assert_eq!(e.ruleset.id, "mini");
}

#[test]
fn an_unanswered_fact_is_unknown_never_no() {
    let mut facts = answered();
    facts.remove("pregnant");
    let e = check(facts, vec![]);
    assert_eq!(e.decision, Decision::Incomplete);
    assert!(!e.bookable);
    assert_eq!(e.missing_facts, vec!["pregnant"]);
}

#[test]
fn an_unknown_that_cannot_change_the_answer_does_not_make_it_incomplete() {
    let mut facts = with(&[("pregnant", json!(true))]);
    facts.remove("fitzpatrick");
    let e = check(facts, vec![]);
    assert_eq!(
        e.decision,
        Decision::Contraindicated,
        "the strongest fired rule wins"
    );
    assert_eq!(
        e.missing_facts,
        vec!["fitzpatrick"],
        "still listed, so the intake can ask"
    );
}

#[test]
fn a_precaution_leaves_the_client_bookable() {
    let e = check(with(&[("fitzpatrick", json!(5))]), vec![]);
    assert_eq!(e.decision, Decision::EligibleWithPrecautions);
    assert!(e.bookable);
    assert_eq!(e.precautions.len(), 1);
    assert_eq!(e.precautions[0].depth_cap_mm.map(DepthMm::mm), Some(1.0));
}

#[test]
fn a_washout_defers_to_the_last_dose_plus_the_policy_days() {
    let e = check(
        with(&[("isotretinoin_last_dose", json!("2026-09-02"))]),
        vec![],
    );
    assert_eq!(e.decision, Decision::Deferred);
    assert_eq!(
        e.earliest_date,
        Some(date(2027, 3, 1)),
        "2026-09-02 + 180 days"
    );
    assert_eq!(e.reasons[0].until, Some(date(2027, 3, 1)));
}

#[test]
fn null_for_a_date_fact_means_never() {
    let e = check(with(&[("isotretinoin_last_dose", Value::Null)]), vec![]);
    assert_eq!(e.decision, Decision::Eligible);
}

#[test]
fn the_latest_deferral_sets_the_earliest_date() {
    let e = check(
        with(&[("isotretinoin_last_dose", json!("2026-06-15"))]),
        vec![
            HistoryEntry {
                procedure: "botulinum_toxin".into(),
                date: date(2026, 11, 25),
            },
            HistoryEntry {
                procedure: "microneedling".into(),
                date: date(2026, 11, 20),
            },
        ],
    );
    assert_eq!(e.decision, Decision::Deferred);
    let mut rules = fired(&e);
    rules.sort_unstable();
    assert_eq!(
        rules,
        vec![
            "botox_gap",
            "isotretinoin_washout",
            "microneedling.min_interval"
        ]
    );
    assert_eq!(
        e.earliest_date,
        Some(date(2026, 12, 18)),
        "max(2026-12-12 washout, 2026-12-09 botox, 2026-12-18 interval)"
    );
}

#[test]
fn a_deferral_until_resolved_gives_no_date() {
    let e = check(
        with(&[("rosacea", json!("papulopustular"))]),
        vec![HistoryEntry {
            procedure: "botulinum_toxin".into(),
            date: date(2026, 11, 25),
        }],
    );
    assert_eq!(e.decision, Decision::Deferred);
    assert_eq!(e.earliest_date, None);
}

#[test]
fn no_date_is_given_while_an_unanswered_rule_could_move_it() {
    let mut facts = answered();
    facts.remove("isotretinoin_last_dose");
    let e = check(
        facts,
        vec![HistoryEntry {
            procedure: "botulinum_toxin".into(),
            date: date(2026, 11, 25),
        }],
    );
    assert_eq!(e.decision, Decision::Deferred);
    assert_eq!(e.earliest_date, None);
    assert_eq!(e.missing_facts, vec!["isotretinoin_last_dose"]);
}

#[test]
fn under_eighteen_on_the_check_date_is_contraindicated() {
    let e = check(with(&[("date_of_birth", json!("2008-12-02"))]), vec![]);
    assert_eq!(
        e.decision,
        Decision::Contraindicated,
        "17 years old until 2026-12-02"
    );
    let e = check(with(&[("date_of_birth", json!("2008-12-01"))]), vec![]);
    assert_eq!(e.decision, Decision::Eligible, "18 on the day");
}

fn limits(role: &str, facts: Option<Facts>) -> DepthLimits {
    let req = DepthLimitsRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        device: "pen".into(),
        role: role.into(),
        zone: None,
        indication: None,
        date: facts.as_ref().map(|_| date(2026, 12, 1)),
        history: facts.as_ref().map(|_| Vec::new()),
        facts,
        questionnaire_response: None,
    };
    mini().depth_limits(&req).expect("valid")
}

fn zone<'a>(l: &'a DepthLimits, z: &str) -> &'a ZoneLimit {
    l.zones.iter().find(|x| x.zone == z).expect("zone present")
}

fn bounds(z: &ZoneLimit) -> Vec<String> {
    z.bound_by.iter().map(Bound::label).collect()
}

#[test]
fn depth_is_the_minimum_of_every_cap_and_names_all_that_bind() {
    let l = limits("physician", None);
    let cheeks = zone(&l, "cheeks");
    assert_eq!(cheeks.max_depth_mm.mm(), 1.5);
    assert_eq!(bounds(cheeks), vec!["zone", "device_evaluated"]);
    assert_eq!(bounds(zone(&l, "forehead")), vec!["zone"]);
    let l = limits("aesthetician", None);
    assert_eq!(zone(&l, "cheeks").max_depth_mm.mm(), 0.5);
    assert_eq!(bounds(zone(&l, "cheeks")), vec!["role"]);
}

#[test]
fn a_fired_precaution_caps_only_its_zones() {
    let l = limits("physician", Some(with(&[("fitzpatrick", json!(6))])));
    assert_eq!(zone(&l, "cheeks").max_depth_mm.mm(), 1.0);
    assert_eq!(bounds(zone(&l, "cheeks")), vec!["precaution:pih_risk"]);
    assert_eq!(zone(&l, "forehead").max_depth_mm.mm(), 0.75);
    assert_eq!(
        l.client.as_ref().map(|c| c.decision),
        Some(Decision::EligibleWithPrecautions)
    );
}

#[test]
fn a_zone_without_a_cap_is_refused_not_unlimited() {
    let doc = parse_document(
        &include_str!("fixtures/mini.yaml").replace(
            "  - {id: forehead, name: Forehead}\n",
            "  - {id: forehead, name: Forehead}\n  - {id: neck, name: Neck}\n",
        ),
        Format::Yaml,
    )
    .expect("parses");
    let rs = compile(&doc, None).expect("compiles");
    let req = DepthLimitsRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        device: "pen".into(),
        role: "physician".into(),
        zone: Some("neck".into()),
        indication: None,
        facts: None,
        questionnaire_response: None,
        date: None,
        history: None,
    };
    let err = rs.depth_limits(&req).expect_err("no cap, no answer");
    assert_eq!(err.violations[0].field, "zone");
    assert!(err.violations[0].message.contains("no depth cap"), "{err}");
}

#[test]
fn request_errors_name_each_field() {
    let mut facts = answered();
    facts.insert("pregnent".into(), json!(true));
    facts.insert("fitzpatrick".into(), json!("three"));
    facts.insert("pregnant".into(), Value::Null);
    let req = EligibilityRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        date: DAY,
        facts,
        questionnaire_response: None,
        history: vec![HistoryEntry {
            procedure: "botox".into(),
            date: DAY,
        }],
        zones: Some(vec!["nose".into()]),
        device: Some("pem".into()),
        role: None,
        indication: None,
    };
    let err = mini().eligibility(&req).expect_err("invalid");
    let fields: Vec<&str> = err.violations.iter().map(|v| v.field.as_str()).collect();
    for f in [
        "facts.pregnent",
        "facts.fitzpatrick",
        "facts.pregnant",
        "history[0].procedure",
        "zones[0]",
        "device",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let pregnent = err
        .violations
        .iter()
        .find(|v| v.field == "facts.pregnent")
        .map(|v| v.message.as_str());
    assert_eq!(
        pregnent,
        Some("unknown fact 'pregnent' (did you mean 'pregnant'?)")
    );
}

#[test]
fn a_plan_ramps_from_a_conservative_first_session_to_the_limit() {
    let req = PlanRequest {
        ruleset_version: None,
        ruleset_digest: None,
        indication: "acne_scars".into(),
        zones: vec!["cheeks".into()],
        facts: answered(),
        questionnaire_response: None,
        history: vec![],
        start_date: DAY,
        role: "physician".into(),
        device: Some("pen".into()),
        treatment: None,
    };
    let plan = mini().plan(&req).expect("valid");
    assert_eq!(plan.status, PlanStatus::Scheduled);
    let dates: Vec<Date> = plan.schedule.iter().map(|s| s.date).collect();
    assert_eq!(
        dates,
        vec![date(2026, 12, 1), date(2026, 12, 29), date(2027, 1, 26)]
    );
    let depths: Vec<f64> = plan
        .schedule
        .iter()
        .map(|s| s.zones[0].depth_mm.mm())
        .collect();
    assert_eq!(depths, vec![0.5, 1.0, 1.5]);
    assert_eq!(
        plan.results[0].date,
        date(2026, 12, 8),
        "glow 7 days after the first session"
    );
}

#[test]
fn a_plan_for_a_client_who_may_not_be_treated_schedules_nothing() {
    let req = PlanRequest {
        ruleset_version: None,
        ruleset_digest: None,
        indication: "acne_scars".into(),
        zones: vec!["cheeks".into()],
        facts: with(&[("pregnant", json!(true))]),
        questionnaire_response: None,
        history: vec![],
        start_date: DAY,
        role: "physician".into(),
        device: Some("pen".into()),
        treatment: None,
    };
    let plan = mini().plan(&req).expect("valid");
    assert_eq!(plan.status, PlanStatus::NotBookable);
    assert!(plan.schedule.is_empty() && plan.results.is_empty());
    assert_eq!(plan.first_session.decision, Decision::Contraindicated);
}

#[test]
fn the_digest_ignores_formatting_but_not_content() {
    let text = include_str!("fixtures/mini.yaml");
    let a = parse_document(text, Format::Yaml).expect("parses");
    let b = parse_document(&format!("# a comment\n{text}\n\n"), Format::Yaml).expect("parses");
    assert_eq!(digest_of(&a), digest_of(&b));
    let c =
        parse_document(&text.replace("Pregnancy.", "Pregnancy!"), Format::Yaml).expect("parses");
    assert_ne!(digest_of(&a), digest_of(&c));
    let json =
        parse_document(&canonical_json(&a), Format::Json).expect("canonical JSON parses back");
    assert_eq!(
        digest_of(&json),
        digest_of(&a),
        "the stored form has the same digest"
    );
}

/// Botulinum toxin every 27 days from the check date: each 14-day wait ends 13 days before the
/// next toxin, which must itself come 14 days after the session (both orders of `botox_gap`).
fn toxin_chain(n: i64) -> Vec<HistoryEntry> {
    (0..n)
        .map(|i| HistoryEntry {
            procedure: "botulinum_toxin".into(),
            date: DAY
                .checked_add(jiff::Span::new().days(27 * i))
                .expect("in range"),
        })
        .collect()
}

#[test]
fn the_earliest_date_follows_a_short_chain_of_booked_waits_and_a_long_one_promises_none() {
    // Three toxins: the first day free is 14 days after the last (day 54 + 14).
    let e = check(answered(), toxin_chain(3));
    assert_eq!(e.decision, Decision::Deferred);
    assert_eq!(e.earliest_date, Some(date(2027, 2, 7)), "{e:?}");
    // Forty: past the bound on the days decided again, no date is promised (never a wrong one,
    // and a crafted history cannot multiply the work of a decision by its length).
    let e = check(answered(), toxin_chain(40));
    assert_eq!(e.decision, Decision::Deferred);
    assert_eq!(e.earliest_date, None, "{e:?}");
}
