//! An eligibility decision from request bytes to answer bytes: what a server does per request,
//! beside a hand-written floor over the same contraindication rules.
//!
//! `cargo bench -p protocol-engine --bench from_json` (figures in docs/performance.md). Two
//! bodies, both the fully answered client of `scripts/load-eligibility.json` (the server load
//! test's body): as it is (`healthy`: one precaution fires, `eligible_with_precautions`), and
//! with four contraindications answered yes (`four_rules_fire`: pregnant, bleeding disorder,
//! metal allergy, skin cancer in the area; `contraindicated` with four reasons).
//!
//! - `typed`: `serde_json::from_slice::<EligibilityRequest>`, `RuleSet::eligibility`,
//!   `serde_json::to_vec` of the answer: the general path every request took before issue 16.
//! - `seed`: `RuleSet::read_eligibility` (the body read straight into the rule set's fact slots)
//!   and `Verdict::write_json` (the answer written from pre-serialised texts), the path the
//!   server takes for a plain request since issue 16.
//! - `floor`: serde into plain structs (borrowed strings, only the facts its rules read) and
//!   plain `if`s over twelve of the rule set's contraindication rules for microneedling, the
//!   answer rendered by serde: the least a hand-written service would do. It checks no other
//!   fact, no zone, device, role or history, and cites no source, so it is a floor, not a peer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use protocol_engine::*;
use serde::{Deserialize, Serialize};

fn ruleset() -> RuleSet {
    let text = include_str!("../../../rulesets/base.yaml");
    compile(&parse_document(text, Format::Yaml).expect("parses"), None).expect("compiles")
}

/// The load test's body, and the same client with four contraindications.
fn bodies() -> [(&'static str, Vec<u8>); 2] {
    let healthy = include_str!("../../../scripts/load-eligibility.json");
    let mut four: serde_json::Value = serde_json::from_str(healthy).expect("load body parses");
    for fact in [
        "pregnant",
        "bleeding_disorder",
        "metal_allergy",
        "skin_cancer_in_area",
    ] {
        four["facts"][fact] = serde_json::Value::Bool(true);
    }
    four["facts"]["hsv_history"] = serde_json::Value::Bool(false);
    [
        ("healthy", healthy.as_bytes().to_vec()),
        (
            "four_rules_fire",
            serde_json::to_vec(&four).expect("serializes"),
        ),
    ]
}

/// Before issue 16: the typed request, the engine, the typed answer.
fn typed(rs: &RuleSet, body: &[u8]) -> Vec<u8> {
    let req: EligibilityRequest = serde_json::from_slice(body).expect("valid request");
    let answer = rs.eligibility(&req).expect("valid request");
    serde_json::to_vec(&answer).expect("serializes")
}

/// Since issue 16: the body read straight into the rule set's slots, the answer written from its
/// pre-serialised texts (with a decision id, as the server writes it).
fn seed(rs: &RuleSet, body: &[u8]) -> Vec<u8> {
    let read = rs.read_eligibility(body).expect("valid request");
    let mut out = Vec::new();
    read.decide().write_json(
        &[("decision_id", "019ad1c2-0000-7000-8000-000000000000")],
        &mut out,
    );
    out
}

mod floor {
    //! The hand-written floor: structs and `if`s.

    use super::*;

    #[derive(Deserialize)]
    pub struct Request<'a> {
        #[serde(borrow)]
        pub treatment: &'a str,
        #[serde(borrow)]
        pub date: &'a str,
        #[serde(borrow)]
        pub facts: Facts<'a>,
    }

    /// Only the facts the floor's rules read; the others are skipped unread.
    #[derive(Deserialize, Default)]
    #[serde(default)]
    pub struct Facts<'a> {
        #[serde(borrow)]
        pub date_of_birth: Option<&'a str>,
        pub pregnant: Option<bool>,
        pub breastfeeding: Option<bool>,
        pub skin_cancer_in_area: Option<bool>,
        pub bleeding_disorder: Option<bool>,
        pub metal_allergy: Option<bool>,
        pub isotretinoin_current: Option<bool>,
        #[serde(borrow)]
        pub isotretinoin_last_dose: Option<&'a str>,
        pub open_wounds: Option<bool>,
        pub active_hsv: Option<bool>,
        pub keloid_history: Option<bool>,
        pub anticoagulants: Option<bool>,
        pub hsv_history: Option<bool>,
    }

    #[derive(Serialize)]
    pub struct Reason {
        pub rule: &'static str,
        pub summary: &'static str,
        pub client_message: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub until: Option<jiff::civil::Date>,
    }

    #[derive(Serialize)]
    pub struct Answer<'a> {
        pub treatment: &'a str,
        pub date: jiff::civil::Date,
        pub decision: Decision,
        pub bookable: bool,
        pub reasons: Vec<Reason>,
        pub precautions: Vec<&'static str>,
    }

    fn reason(rule: &'static str, summary: &'static str, client_message: &'static str) -> Reason {
        Reason {
            rule,
            summary,
            client_message,
            until: None,
        }
    }

    pub fn decide(body: &[u8]) -> Vec<u8> {
        let req: Request<'_> = serde_json::from_slice(body).expect("valid request");
        let date: jiff::civil::Date = req.date.parse().expect("a date");
        let f = &req.facts;
        let yes = |v: Option<bool>| v == Some(true);
        let mut decision = Decision::Eligible;
        let mut reasons = Vec::new();
        let mut precautions = Vec::new();
        let mut fire = |d: Decision, r: Reason| {
            decision = decision.max(d);
            reasons.push(r);
        };
        if let Some(dob) = f
            .date_of_birth
            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        {
            let age = dob.until(date).and_then(|s| s.total(jiff::Unit::Year));
            if age.is_ok_and(|a| a < 18.0) {
                fire(
                    Decision::Contraindicated,
                    reason(
                        "minor",
                        "Client is under 18.",
                        "These treatments are for adults (18 and over) only.",
                    ),
                );
            }
        }
        if yes(f.pregnant) {
            fire(
                Decision::Contraindicated,
                reason(
                    "pregnancy",
                    "Pregnancy: contraindicated by the SkinPen IFU.",
                    "Needle treatments are not offered during pregnancy.",
                ),
            );
        }
        if yes(f.breastfeeding) {
            fire(
                Decision::NeedsReview,
                reason(
                    "breastfeeding",
                    "Breastfeeding: physician sign-off.",
                    "While breastfeeding, a clinician must approve the treatment first.",
                ),
            );
        }
        if yes(f.skin_cancer_in_area) {
            fire(
                Decision::Contraindicated,
                reason(
                    "skin_cancer_in_area",
                    "Active skin cancer or suspicious lesion in the treatment area.",
                    "We cannot treat an area with skin cancer or a suspicious mole; please see a dermatologist.",
                ),
            );
        }
        if yes(f.bleeding_disorder) {
            fire(
                Decision::Contraindicated,
                reason(
                    "bleeding_disorder",
                    "Haemorrhagic disorder or haemostatic dysfunction.",
                    "Needle treatments are not offered with a bleeding disorder.",
                ),
            );
        }
        if yes(f.metal_allergy) {
            fire(
                Decision::Contraindicated,
                reason(
                    "metal_allergy",
                    "Allergy to stainless steel.",
                    "Steel needles cannot be used with a metal allergy.",
                ),
            );
        }
        if yes(f.isotretinoin_current) {
            fire(
                Decision::Contraindicated,
                reason(
                    "isotretinoin_current",
                    "Currently taking isotretinoin.",
                    "Needle treatments are not offered while you take isotretinoin.",
                ),
            );
        }
        if let Some(last) = f
            .isotretinoin_last_dose
            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        {
            let until = last
                .checked_add(jiff::Span::new().days(183))
                .expect("in range");
            if date < until {
                let mut r = reason(
                    "isotretinoin_washout",
                    "Isotretinoin washout.",
                    "Needle treatments must wait after your last isotretinoin dose.",
                );
                r.until = Some(until);
                fire(Decision::Deferred, r);
            }
        }
        if yes(f.open_wounds) {
            fire(
                Decision::Deferred,
                reason(
                    "open_wounds",
                    "Open wounds in the area.",
                    "Please wait until the skin has healed.",
                ),
            );
        }
        if yes(f.active_hsv) {
            fire(
                Decision::Deferred,
                reason(
                    "active_hsv",
                    "Active cold sore.",
                    "Please wait until the cold sore has healed.",
                ),
            );
        }
        if yes(f.keloid_history) {
            fire(
                Decision::NeedsReview,
                reason(
                    "keloid_history",
                    "Keloid history.",
                    "A clinician must approve the treatment first.",
                ),
            );
        }
        if yes(f.anticoagulants) {
            fire(
                Decision::NeedsReview,
                reason(
                    "anticoagulants",
                    "Anticoagulants.",
                    "A clinician must approve the treatment first.",
                ),
            );
        }
        if yes(f.hsv_history) {
            fire(
                Decision::EligibleWithPrecautions,
                reason(
                    "hsv_history",
                    "HSV history: antiviral prophylaxis before treatment.",
                    "You will need an antiviral medicine before the treatment to prevent a cold-sore flare.",
                ),
            );
            precautions.push("Antiviral prophylaxis: valacyclovir 500 mg twice daily from the day before (or the morning of) the procedure; continue 5-7 days for facial work.");
        }
        let answer = Answer {
            treatment: req.treatment,
            date,
            decision,
            bookable: decision.bookable(),
            reasons,
            precautions,
        };
        serde_json::to_vec(&answer).expect("serializes")
    }
}

fn benches(c: &mut Criterion) {
    let rs = ruleset();
    let mut group = c.benchmark_group("eligibility_from_json");
    for (name, body) in bodies() {
        let answer: serde_json::Value =
            serde_json::from_slice(&typed(&rs, &body)).expect("an answer");
        let expected = if name == "healthy" {
            ("eligible_with_precautions", 1)
        } else {
            ("contraindicated", 4)
        };
        assert_eq!(
            (
                answer["decision"].as_str().unwrap_or_default(),
                answer["reasons"].as_array().map_or(0, Vec::len)
            ),
            expected,
            "{name}: {answer}"
        );
        group.bench_with_input(BenchmarkId::new("typed", name), &body, |b, body| {
            b.iter(|| typed(&rs, black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("seed", name), &body, |b, body| {
            b.iter(|| seed(&rs, black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("floor", name), &body, |b, body| {
            b.iter(|| floor::decide(black_box(body)))
        });
        // The strict check every general JSON door makes before its typed read (issue 26):
        // what it adds to a body read the typed way.
        group.bench_with_input(BenchmarkId::new("strict_check", name), &body, |b, body| {
            b.iter(|| {
                protocol_engine::wire::check_json(
                    black_box(body),
                    protocol_engine::wire::MAX_JSON_VALUES,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(from_json, benches);
criterion_main!(from_json);
