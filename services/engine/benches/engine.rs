//! Engine benchmarks on the bundled rule set with a realistic, fully answered client.
//!
//! `cargo bench -p protocol-engine --bench engine` (figures in docs/performance.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::civil::date;
use protocol_engine::*;
use serde_json::json;

/// The bundled base rule set, or the file named by `PROTOCOL_BENCH_RULESET` (to compare engines
/// on one rule set, or rule sets on one engine).
fn ruleset() -> RuleSet {
    let text = match std::env::var("PROTOCOL_BENCH_RULESET") {
        Ok(path) => std::fs::read_to_string(path).expect("PROTOCOL_BENCH_RULESET is readable"),
        Err(_) => include_str!("../../../rulesets/base.yaml").to_owned(),
    };
    compile(&parse_document(&text, Format::Yaml).expect("parses"), None).expect("compiles")
}

/// A healthy 34-year-old, Fitzpatrick III, every intake question the rule set declares answered:
/// no to every yes/no question, `none` where a choice offers it, "never" for dated history.
fn client(rs: &RuleSet) -> Facts {
    rs.facts()
        .facts
        .iter()
        .map(|f| {
            let answer = match (f.id.as_str(), f.fact_type.as_str()) {
                ("date_of_birth", _) => json!("1992-04-17"),
                ("fitzpatrick", _) => json!(3),
                (_, "bool") => json!(false),
                (_, "integer") => json!(f.min.unwrap_or_default()),
                (_, "enum") if f.values.iter().any(|v| v == "none") => json!("none"),
                (_, "enum") => json!(f.values.first()),
                _ => serde_json::Value::Null,
            };
            (f.id.clone(), answer)
        })
        .collect()
}

fn history() -> Vec<HistoryEntry> {
    vec![
        HistoryEntry {
            procedure: "microneedling".into(),
            date: date(2026, 9, 1),
        },
        HistoryEntry {
            procedure: "botulinum_toxin".into(),
            date: date(2026, 6, 10),
        },
    ]
}

fn benches(c: &mut Criterion) {
    let rs = ruleset();
    let eligibility = EligibilityRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        date: date(2026, 12, 1),
        facts: client(&rs),
        questionnaire_response: None,
        history: history(),
        zones: Some(vec!["cheeks".into(), "forehead".into()]),
        device: Some("dermapen_4".into()),
        role: Some("nurse".into()),
        indication: Some("acne_scars".into()),
    };
    assert!(
        rs.eligibility(&eligibility).expect("valid").bookable,
        "the benchmark client is bookable"
    );
    c.bench_function("eligibility", |b| {
        b.iter(|| rs.eligibility(black_box(&eligibility)))
    });

    let contraindications = ContraindicationRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatments: None,
        facts: client(&rs),
        questionnaire_response: None,
        date: None,
        history: None,
    };
    c.bench_function("contraindications_all_treatments", |b| {
        b.iter(|| rs.contraindications(black_box(&contraindications)))
    });

    let depth = DepthLimitsRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        device: "dermapen_4".into(),
        role: "nurse".into(),
        zone: None,
        indication: Some("acne_scars".into()),
        facts: Some(client(&rs)),
        questionnaire_response: None,
        date: None,
        history: None,
    };
    c.bench_function("depth_limits_all_zones", |b| {
        b.iter(|| rs.depth_limits(black_box(&depth)))
    });

    let plan = PlanRequest {
        ruleset_version: None,
        ruleset_digest: None,
        indication: "acne_scars".into(),
        zones: vec!["cheeks".into(), "forehead".into(), "chin".into()],
        facts: client(&rs),
        questionnaire_response: None,
        history: history(),
        start_date: date(2026, 12, 1),
        role: "nurse".into(),
        device: Some("dermapen_4".into()),
        treatment: None,
    };
    c.bench_function("plan", |b| b.iter(|| rs.plan(black_box(&plan))));
}

criterion_group!(engine, benches);
criterion_main!(engine);
