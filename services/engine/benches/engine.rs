//! Engine benchmarks on the bundled rule set with a realistic, fully answered client.
//!
//! `cargo bench -p protocol-engine --bench engine` (figures in the README).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::civil::date;
use protocol_engine::*;
use serde_json::json;

fn ruleset() -> RuleSet {
    let text = include_str!("../../../rulesets/base.yaml");
    compile(&parse_document(text, Format::Yaml).expect("parses"), None).expect("compiles")
}

/// A healthy 34-year-old, Fitzpatrick III, every intake question answered.
fn client() -> Facts {
    let mut facts: Facts = serde_json::from_value(json!({
        "date_of_birth": "1992-04-17", "fitzpatrick": 3, "rosacea": "none",
        "isotretinoin_last_dose": null,
    }))
    .expect("facts");
    for id in [
        "pregnant",
        "breastfeeding",
        "active_acne",
        "open_wounds",
        "sunburn",
        "skin_infection",
        "active_hsv",
        "hsv_history",
        "keloid_history",
        "bleeding_disorder",
        "anticoagulants",
        "immunosuppressed",
        "diabetes_uncontrolled",
        "autoimmune_disease",
        "scleroderma_active",
        "chemotherapy_current",
        "eczema_psoriasis_active",
        "metal_allergy",
        "gold_allergy",
        "anaesthetic_allergy",
        "pacemaker_or_implant",
        "metal_implant_in_area",
        "skin_cancer_in_area",
        "tattoo_in_area",
        "isotretinoin_current",
    ] {
        facts.insert(id.to_owned(), json!(false));
    }
    facts
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
        treatment: "microneedling".into(),
        date: date(2026, 12, 1),
        facts: client(),
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
        treatments: None,
        facts: client(),
        date: None,
        history: None,
    };
    c.bench_function("contraindications_all_treatments", |b| {
        b.iter(|| rs.contraindications(black_box(&contraindications)))
    });

    let depth = DepthLimitsRequest {
        treatment: "microneedling".into(),
        device: "dermapen_4".into(),
        role: "nurse".into(),
        zone: None,
        indication: Some("acne_scars".into()),
        facts: Some(client()),
        date: None,
        history: None,
    };
    c.bench_function("depth_limits_all_zones", |b| {
        b.iter(|| rs.depth_limits(black_box(&depth)))
    });

    let plan = PlanRequest {
        indication: "acne_scars".into(),
        zones: vec!["cheeks".into(), "forehead".into(), "chin".into()],
        facts: client(),
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
