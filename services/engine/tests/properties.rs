//! The safety invariants of docs/design.md §5, as property tests on the bundled rule set:
//!
//! - an overlay only tightens: a generated overlay is refused exactly when it loosens something,
//!   and an accepted one never makes a client bookable, a depth deeper or a wait shorter;
//! - no depth limit is above the device's labelled maximum;
//! - making a contraindication fact true never improves the outcome;
//! - removing an answer never turns a non-bookable answer into a bookable one;
//! - the contraindication check with a date agrees with the eligibility check (two paths, one answer);
//! - (a) a client contraindicated on a date is cleared by no answer given without that date
//!   (contraindication check, depth limits with facts, a plan starting that day);
//! - (b) removing one answer from a bookable client never deepens a depth limit, lengthens or
//!   deepens a plan, or (while still bookable) drops a precaution.
//! - a fixed-length device (roller, stamp) never serves a setting whose cap is below its needles:
//!   compile refuses exactly those rule sets, and an accepted one answers its needle length.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::{Date, date};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use protocol_engine::*;
use serde_json::{Value, json};

fn base_doc() -> RuleSetDoc {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rulesets/base.yaml");
    let text = std::fs::read_to_string(path).expect("rulesets/base.yaml");
    parse_document(&text, Format::Yaml).expect("base parses")
}

fn base() -> (RuleSetDoc, RuleSet) {
    let doc = base_doc();
    let rs = compile(&doc, None).expect("base compiles");
    (doc, rs)
}

/// Procedures from the contract (docs/design.md §7): every rule set must know them.
const PROCEDURES: &[&str] = &[
    "microneedling",
    "microneedling_prp",
    "rf_microneedling",
    "microdermabrasion",
    "chemical_peel_superficial",
    "chemical_peel_medium",
    "laser_nonablative",
    "laser_ablative",
    "ipl",
    "botulinum_toxin",
    "ha_filler",
    "biostimulator_filler",
    "waxing",
    "facial_surgery",
    "radiotherapy",
];

const CHECK_DATE: Date = date(2026, 12, 1);

/// A random client: each declared fact answered (with a value of its type) or left out.
fn client(facts: &FactList) -> BoxedStrategy<Facts> {
    client_answering(facts, 1, 4, 3)
}

/// A client with every fact answered, most of them healthy: bookable often enough to test what
/// removing one answer does.
fn answered_client(facts: &FactList) -> BoxedStrategy<Facts> {
    client_answering(facts, 0, 1, 60)
}

/// Each fact left out with weight `out` against `answered`; a bool is false with weight
/// `healthy` against 1 for true.
fn client_answering(
    facts: &FactList,
    out: u32,
    answered: u32,
    healthy: u32,
) -> BoxedStrategy<Facts> {
    let per_fact: Vec<BoxedStrategy<Option<(String, Value)>>> = facts
        .facts
        .iter()
        .map(|f| {
            let id = f.id.clone();
            let value: BoxedStrategy<Value> = match f.fact_type.as_str() {
                "bool" => prop_oneof![healthy => Just(false), 1 => Just(true)].prop_map(Value::Bool).boxed(),
                "integer" => (f.min.unwrap_or(0)..=f.max.unwrap_or(0)).prop_map(|n| json!(n)).boxed(),
                "enum" => proptest::sample::select(f.values.clone()).prop_map(Value::String).boxed(),
                _ if f.null_means.is_none() => (1940i16..2014, 1i8..=12, 1i8..=28).prop_map(|(y, m, d)| json!(date(y, m, d).to_string())).boxed(),
                _ => prop_oneof![
                    2 => Just(Value::Null),
                    3 => (-800i64..30).prop_map(|days| json!(CHECK_DATE.checked_add(jiff::Span::new().days(days)).unwrap_or(CHECK_DATE).to_string())),
                ]
                .boxed(),
            };
            if out == 0 {
                value.prop_map(move |v| Some((id.clone(), v))).boxed()
            } else {
                prop_oneof![out => Just(None), answered => value.prop_map(move |v| Some((id.clone(), v)))].boxed()
            }
        })
        .collect();
    per_fact
        .prop_map(|answers| answers.into_iter().flatten().collect::<Facts>())
        .boxed()
}

fn history() -> impl Strategy<Value = Vec<HistoryEntry>> {
    proptest::collection::vec(
        (proptest::sample::select(PROCEDURES), 0i64..400).prop_map(|(p, ago)| HistoryEntry {
            procedure: p.to_owned(),
            date: CHECK_DATE
                .checked_sub(jiff::Span::new().days(ago))
                .unwrap_or(CHECK_DATE),
        }),
        0..4,
    )
}

fn eligibility(
    rs: &RuleSet,
    treatment: &str,
    facts: &Facts,
    history: &[HistoryEntry],
) -> Eligibility {
    eligibility_on(rs, treatment, CHECK_DATE, facts, history)
}

/// [`eligibility`] on another date.
fn eligibility_on(
    rs: &RuleSet,
    treatment: &str,
    date: Date,
    facts: &Facts,
    history: &[HistoryEntry],
) -> Eligibility {
    let req = EligibilityRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: treatment.to_owned(),
        date,
        facts: facts.clone(),
        questionnaire_response: None,
        history: history.to_vec(),
        zones: None,
        device: None,
        role: None,
        indication: None,
    };
    rs.eligibility(&req).expect("a generated request is valid")
}

/// How far from "treat now" an answer is: non-bookable answers that ask for more information or a
/// review rank together (either way the client is not booked).
fn rank(d: Decision) -> u8 {
    match d {
        Decision::Eligible => 0,
        Decision::EligibleWithPrecautions => 1,
        Decision::NeedsReview | Decision::Incomplete => 2,
        Decision::Deferred => 3,
        Decision::Contraindicated => 4,
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn making_a_contraindication_fact_true_never_improves_the_outcome() {
    let (_, rs) = base();
    let facts = rs.facts();
    let bools: Vec<String> = facts
        .facts
        .iter()
        .filter(|f| f.fact_type == "bool")
        .map(|f| f.id.clone())
        .collect();
    let treatments = treatment_codes(&rs);
    let strategy = (
        client(&facts),
        history(),
        proptest::sample::select(bools),
        proptest::sample::select(treatments),
    );
    runner()
        .run(&strategy, |(mut facts, history, fact, treatment)| {
            facts.insert(fact.clone(), Value::Bool(false));
            let without = eligibility(&rs, &treatment, &facts, &history);
            facts.insert(fact.clone(), Value::Bool(true));
            let with = eligibility(&rs, &treatment, &facts, &history);
            prop_assert!(
                rank(with.decision) >= rank(without.decision),
                "{treatment}: {fact}=true gave {:?}, false gave {:?}",
                with.decision,
                without.decision
            );
            prop_assert!(!with.bookable || without.bookable);
            Ok(())
        })
        .expect("property holds");
}

#[test]
fn removing_an_answer_never_makes_a_client_bookable() {
    let (_, rs) = base();
    let facts = rs.facts();
    let ids: Vec<String> = facts.facts.iter().map(|f| f.id.clone()).collect();
    let treatments = treatment_codes(&rs);
    let strategy = (
        client(&facts),
        history(),
        proptest::sample::select(ids),
        proptest::sample::select(treatments),
    );
    runner()
        .run(&strategy, |(mut facts, history, fact, treatment)| {
            let before = eligibility(&rs, &treatment, &facts, &history);
            facts.remove(&fact);
            let after = eligibility(&rs, &treatment, &facts, &history);
            prop_assert!(
                before.bookable || !after.bookable,
                "{treatment}: removing {fact} turned {:?} into {:?}",
                before.decision,
                after.decision
            );
            Ok(())
        })
        .expect("property holds");
}

#[test]
fn no_depth_limit_exceeds_the_devices_labelled_maximum() {
    let (_, rs) = base();
    let facts = rs.facts();
    let treatments = rs.treatments().treatments;
    let combos: Vec<(String, String, String)> = treatments
        .iter()
        .filter(|t| t.needle)
        .flat_map(|t| {
            t.devices.iter().flat_map(move |d| {
                t.roles
                    .iter()
                    .map(move |r| (t.code.clone(), d.clone(), r.clone()))
            })
        })
        .collect();
    assert!(
        !combos.is_empty(),
        "the bundled rule set has needle treatments with devices"
    );
    let indications: Vec<Option<String>> = std::iter::once(None)
        .chain(
            treatments
                .iter()
                .flat_map(|t| t.best_for.iter().cloned().map(Some)),
        )
        .collect();
    runner()
        .run(
            &(
                proptest::sample::select(combos),
                client(&facts),
                proptest::sample::select(indications),
            ),
            |((t, d, r), facts, indication)| {
                let req = DepthLimitsRequest {
                    explain: false,
                    ruleset_version: None,
                    ruleset_digest: None,
                    treatment: t.clone(),
                    device: d.clone(),
                    role: r,
                    zone: None,
                    indication,
                    facts: Some(facts),
                    questionnaire_response: None,
                    date: None,
                    history: None,
                };
                let limits = rs.depth_limits(&req).expect("valid request");
                let max = rs
                    .device_max_depth(&d)
                    .expect("needle devices have a labelled maximum");
                prop_assert!(!limits.zones.is_empty(), "{t} has zones");
                for z in &limits.zones {
                    prop_assert!(
                        z.max_depth_mm <= max,
                        "{t}/{d}/{}: {} mm above the labelled {} mm",
                        z.zone,
                        z.max_depth_mm.mm(),
                        max.mm()
                    );
                    prop_assert!(!z.bound_by.is_empty());
                }
                Ok(())
            },
        )
        .expect("property holds");
}

#[test]
fn contraindication_check_with_a_date_agrees_with_eligibility() {
    let (_, rs) = base();
    let facts = rs.facts();
    runner()
        .run(&(client(&facts), history()), |(facts, history)| {
            let req = ContraindicationRequest {
                explain: false,
                ruleset_version: None,
                ruleset_digest: None,
                treatments: None,
                facts: facts.clone(),
                questionnaire_response: None,
                date: Some(CHECK_DATE),
                history: Some(history.clone()),
            };
            let report = rs.contraindications(&req).expect("valid");
            prop_assert!(report.not_evaluated.is_empty());
            for outcome in &report.results {
                let single = eligibility(&rs, &outcome.treatment, &facts, &history);
                prop_assert_eq!(outcome.decision, single.decision, "{}", outcome.treatment);
                prop_assert_eq!(&outcome.missing_facts, &single.missing_facts);
            }
            Ok(())
        })
        .expect("property holds");
}

/// One generated overlay change: the value, and whether it loosens the base.
#[derive(Debug, Clone)]
struct Change {
    yaml: String,
    loosens: bool,
}

fn quantity_value(q: &QuantityDoc) -> Option<f64> {
    match q {
        QuantityDoc::Sourced(s) => Some(s.value),
        QuantityDoc::Policy(_) => None,
    }
}

/// Candidate overlay changes derived from the base: each either tightens or loosens.
fn changes(doc: &RuleSetDoc) -> Vec<BoxedStrategy<Change>> {
    let mut out: Vec<BoxedStrategy<Change>> = Vec::new();
    for t in doc.treatments.iter().map(|s| &s.value) {
        if let Some(days) = quantity_value(&t.min_interval_days) {
            let id = t.id.clone();
            out.push(
                (-10i64..20)
                    .prop_map(move |delta| {
                        let v = (days as i64 + delta).max(0);
                        Change {
                            yaml: format!("- {{id: {id}, min_interval_days: {v}}}"),
                            loosens: (v as f64) < days,
                        }
                    })
                    .boxed(),
            );
        }
        for z in &t.zones {
            if let Some(mm) = quantity_value(&z.max_depth_mm) {
                let (id, zone) = (t.id.clone(), z.zone.clone());
                out.push(
                    (-4i64..3)
                        .prop_map(move |steps| {
                            let v = ((mm * 100.0).round() as i64 + steps * 5).max(5) as f64 / 100.0;
                            Change {
                                yaml: format!("- {{id: {id}, zones: {{{zone}: {v}}}}}"),
                                loosens: v > mm + 1e-9,
                            }
                        })
                        .boxed(),
                );
            }
        }
    }
    out
}

fn policy_choices(doc: &RuleSetDoc) -> Vec<BoxedStrategy<Change>> {
    doc.policies
        .iter()
        .map(|s| s.value.clone())
        .map(|p| {
            let default = p
                .options
                .iter()
                .find(|o| o.id == p.default)
                .map(|o| o.value)
                .unwrap_or(0.0);
            let unit = p.unit;
            let id = p.id.clone();
            proptest::sample::select(p.options.clone())
                .prop_map(move |o| Change {
                    yaml: format!("{id}: {}", o.id),
                    loosens: match unit {
                        PolicyUnit::Days => o.value < default,
                        PolicyUnit::Mm => o.value > default,
                    },
                })
                .boxed()
        })
        .collect()
}

#[test]
fn an_overlay_is_refused_exactly_when_it_loosens_and_otherwise_only_tightens() {
    let (doc, rs) = base();
    let treatment_changes = changes(&doc);
    let policy_changes = policy_choices(&doc);
    assert!(!treatment_changes.is_empty() && !policy_changes.is_empty());
    let facts = rs.facts();
    let treatments = treatment_codes(&rs);
    let strategy = (
        proptest::sample::subsequence((0..treatment_changes.len()).collect::<Vec<_>>(), 1..4),
        proptest::sample::subsequence((0..policy_changes.len()).collect::<Vec<_>>(), 0..3),
        any::<u64>(),
        client(&facts),
        history(),
        proptest::sample::select(treatments),
    );
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(tix, pix, seed, facts, history, treatment)| {
            // Draw the chosen changes deterministically from the seed.
            let mut inner = TestRunner::new_with_rng(
                Config::default(),
                proptest::test_runner::TestRng::from_seed(
                    proptest::test_runner::RngAlgorithm::ChaCha,
                    &seed_bytes(seed),
                ),
            );
            let picked_t: Vec<Change> = tix
                .iter()
                .map(|i| {
                    treatment_changes[*i]
                        .new_tree(&mut inner)
                        .expect("value")
                        .current()
                })
                .collect();
            let picked_p: Vec<Change> = pix
                .iter()
                .map(|i| {
                    policy_changes[*i]
                        .new_tree(&mut inner)
                        .expect("value")
                        .current()
                })
                .collect();
            // Two changes to the same treatment would be two list items with one id; keep it simple
            // and skip such draws.
            let mut ids = BTreeMap::new();
            for c in &picked_t {
                let id = c.yaml.split(',').next().unwrap_or_default().to_owned();
                if ids.insert(id, ()).is_some() {
                    return Ok(());
                }
            }
            let loosens = picked_t.iter().chain(&picked_p).any(|c| c.loosens);
            let mut yaml = String::from("id: clinic-prop\nversion: '1'\nextends: base\n");
            if !picked_p.is_empty() {
                yaml.push_str("choose:\n");
                for c in &picked_p {
                    yaml.push_str(&format!("  {}\n", c.yaml));
                }
            }
            yaml.push_str("tighten:\n  treatments:\n");
            for c in &picked_t {
                yaml.push_str(&format!("    {}\n", c.yaml));
            }
            let overlay = parse_document(&yaml, Format::Yaml).expect("generated overlay parses");
            match compile(&overlay, Some(&doc)) {
                Err(e) => prop_assert!(loosens, "a tightening overlay was refused:\n{yaml}\n{e}"),
                Ok(clinic) => {
                    prop_assert!(!loosens, "a loosening overlay was accepted:\n{yaml}");
                    let b = eligibility(&rs, &treatment, &facts, &history);
                    let o = eligibility(&clinic, &treatment, &facts, &history);
                    prop_assert!(
                        rank(o.decision) >= rank(b.decision),
                        "{treatment}: overlay {:?} vs base {:?}\n{yaml}",
                        o.decision,
                        b.decision
                    );
                    if let (Some(bd), Some(od)) = (b.earliest_date, o.earliest_date) {
                        prop_assert!(od >= bd, "overlay earliest date {od} before base {bd}");
                    }
                    for t in rs.treatments().treatments.iter().filter(|t| t.needle) {
                        for d in &t.devices {
                            for r in &t.roles {
                                let req = DepthLimitsRequest {
                                    explain: false,
                                    ruleset_version: None,
                                    ruleset_digest: None,
                                    treatment: t.code.clone(),
                                    device: d.clone(),
                                    role: r.clone(),
                                    zone: None,
                                    indication: None,
                                    facts: None,
                                    questionnaire_response: None,
                                    date: None,
                                    history: None,
                                };
                                let (Ok(bl), Ok(ol)) =
                                    (rs.depth_limits(&req), clinic.depth_limits(&req))
                                else {
                                    continue;
                                };
                                for (bz, oz) in bl.zones.iter().zip(&ol.zones) {
                                    prop_assert!(
                                        oz.max_depth_mm <= bz.max_depth_mm,
                                        "{}: overlay deeper in {}",
                                        t.code,
                                        oz.zone
                                    );
                                }
                            }
                        }
                    }
                }
            }
            Ok(())
        })
        .expect("property holds");
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in seed.to_le_bytes().iter().cycle().take(32).enumerate() {
        out[i] = *b;
    }
    out
}

/// A check date within a year and a half after `CHECK_DATE`, so waits and ages land on both sides.
fn check_date() -> impl Strategy<Value = Date> {
    (0i64..540).prop_map(|days| {
        CHECK_DATE
            .checked_add(jiff::Span::new().days(days))
            .unwrap_or(CHECK_DATE)
    })
}

/// A plan request for `t` that the rule set accepts: its first role, device, zone and indication.
fn plan_request(
    rs: &RuleSet,
    t: &TreatmentInfo,
    facts: &Facts,
    history: &[HistoryEntry],
    start: Date,
) -> PlanRequest {
    let indication = t
        .best_for
        .first()
        .cloned()
        .or_else(|| {
            rs.treatments()
                .treatments
                .iter()
                .find_map(|x| x.best_for.first().cloned())
        })
        .expect("the rule set has an indication");
    PlanRequest {
        ruleset_version: None,
        ruleset_digest: None,
        indication,
        zones: if t.zones.is_empty() {
            vec!["cheeks".into()]
        } else {
            t.zones.iter().map(|z| z.zone.clone()).collect()
        },
        facts: facts.clone(),
        questionnaire_response: None,
        history: history.to_vec(),
        start_date: start,
        role: t.roles.first().cloned().expect("a role performs it"),
        device: t.needle.then(|| t.devices.first().cloned()).flatten(),
        treatment: Some(t.code.clone()),
    }
}

fn depth_request(
    t: &TreatmentInfo,
    facts: &Facts,
    date: Option<Date>,
    history: Option<&[HistoryEntry]>,
) -> DepthLimitsRequest {
    DepthLimitsRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: t.code.clone(),
        device: t.devices.first().cloned().expect("a needle device"),
        role: t.roles.first().cloned().expect("a role performs it"),
        zone: None,
        indication: None,
        facts: Some(facts.clone()),
        questionnaire_response: None,
        date,
        history: history.map(<[HistoryEntry]>::to_vec),
    }
}

/// (a) For any client and date `d`: if the eligibility check on `d` refuses the client outright
/// (a contraindication fired), no answer given without that date clears them: not the
/// contraindication check (with or without history), not the depth limits with facts, and no
/// plan starting on `d`.
#[test]
fn an_answer_without_the_date_never_clears_a_client_contraindicated_on_it() {
    let (_, rs) = base();
    let facts = rs.facts();
    let treatments = rs.treatments().treatments;
    let mut runner = TestRunner::new(Config {
        cases: 1024,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(
                prop_oneof![client(&facts), answered_client(&facts)],
                history(),
                check_date(),
                proptest::sample::select(treatments),
            ),
            |(facts, history, date, t)| {
                let on_date = rs
                    .eligibility(&EligibilityRequest {
                        explain: false,
                        ruleset_version: None,
                        ruleset_digest: None,
                        treatment: t.code.clone(),
                        date,
                        facts: facts.clone(),
                        questionnaire_response: None,
                        history: history.clone(),
                        zones: None,
                        device: None,
                        role: None,
                        indication: None,
                    })
                    .expect("valid");
                if on_date.decision != Decision::Contraindicated {
                    return Ok(());
                }
                for h in [None, Some(history.clone())] {
                    let report = rs
                        .contraindications(&ContraindicationRequest {
                            explain: false,
                            ruleset_version: None,
                            ruleset_digest: None,
                            treatments: Some(vec![t.code.clone()]),
                            facts: facts.clone(),
                            questionnaire_response: None,
                            date: None,
                            history: h,
                        })
                        .expect("valid");
                    prop_assert!(
                        report.results.iter().all(|r| !r.bookable),
                        "{}: contraindicated on {date}, cleared without a date: {:?}",
                        t.code,
                        report.results
                    );
                }
                if t.needle {
                    for h in [None, Some(history.as_slice())] {
                        let limits = rs
                            .depth_limits(&depth_request(&t, &facts, None, h))
                            .expect("valid");
                        let client = limits.client.expect("facts give a client outcome");
                        prop_assert!(!client.bookable, "{}: depth limits cleared", t.code);
                    }
                }
                let plan = rs
                    .plan(&plan_request(&rs, &t, &facts, &history, date))
                    .expect("valid");
                prop_assert_eq!(plan.status, PlanStatus::NotBookable);
                prop_assert!(plan.schedule.is_empty());
                Ok(())
            },
        )
        .expect("property holds");
}

/// (b) Removing any one answer from a bookable client never yields a deeper depth limit, a
/// longer plan or, where the answer stays bookable, fewer precautions.
#[test]
fn removing_an_answer_never_deepens_lengthens_or_drops_precautions() {
    let (_, rs) = base();
    let facts = rs.facts();
    let ids: Vec<String> = facts.facts.iter().map(|f| f.id.clone()).collect();
    let treatments = rs.treatments().treatments;
    let mut runner = TestRunner::new(Config {
        cases: 1024,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(
                answered_client(&facts),
                history(),
                check_date(),
                proptest::sample::select(ids),
                proptest::sample::select(treatments),
            ),
            |(facts, history, date, fact, t)| {
                let plan_before = rs
                    .plan(&plan_request(&rs, &t, &facts, &history, date))
                    .expect("valid");
                if !plan_before.first_session.bookable {
                    return Ok(());
                }
                let mut fewer = facts.clone();
                fewer.remove(&fact);
                let plan_after = rs
                    .plan(&plan_request(&rs, &t, &fewer, &history, date))
                    .expect("valid");
                prop_assert!(plan_after.schedule.len() <= plan_before.schedule.len());
                for (a, b) in plan_after.schedule.iter().zip(&plan_before.schedule) {
                    for (za, zb) in a.zones.iter().zip(&b.zones) {
                        prop_assert!(za.depth_mm <= zb.depth_mm, "{}: deeper session", t.code);
                        prop_assert!(za.max_depth_mm <= zb.max_depth_mm);
                    }
                }
                let (before, after) = (&plan_before.first_session, &plan_after.first_session);
                if after.bookable {
                    for p in &before.precautions {
                        prop_assert!(
                            after.precautions.iter().any(|q| q.rule == p.rule),
                            "{}: removing {fact} dropped precaution {}",
                            t.code,
                            p.rule
                        );
                    }
                }
                if t.needle {
                    let limits = |f: &Facts| {
                        rs.depth_limits(&depth_request(&t, f, Some(date), Some(&history)))
                            .expect("valid")
                    };
                    let (lb, la) = (limits(&facts), limits(&fewer));
                    for zb in &lb.zones {
                        let za = la.zones.iter().find(|z| z.zone == zb.zone);
                        let za = za.expect("the same zones are answered");
                        prop_assert!(
                            za.max_depth_mm <= zb.max_depth_mm,
                            "{} {}: removing {fact} deepened {} -> {} mm",
                            t.code,
                            zb.zone,
                            zb.max_depth_mm.mm(),
                            za.max_depth_mm.mm()
                        );
                    }
                }
                Ok(())
            },
        )
        .expect("property holds");
}

/// A small rule set with one roller or pen serving a home treatment and a clinic treatment.
fn fixed_fixture(home_cap: Option<f64>, needle: f64, fixed: bool, zone_cap: f64) -> String {
    let cap = home_cap.map_or(String::new(), |mm| {
        format!(", max_depth_mm: {{value: {mm}, evidence: INFERRED, note: policy}}")
    });
    let fixed = if fixed { "\n    fixed_depth: true" } else { "" };
    let treatment = |id: &str, setting: &str, role: &str| {
        format!(
            "  - id: {id}\n    name: {id}\n    description: d\n    needle: true\n    setting: {setting}\n    roles: [{role}]\n    best_for: [dull]\n    min_interval_days: {{value: 7, evidence: INFERRED, note: why}}\n    course:\n      sessions: {{value: 3, evidence: INFERRED, note: why}}\n      max_sessions: {{value: 6, evidence: INFERRED, note: why}}\n      interval_days: {{value: 7, evidence: INFERRED, note: why}}\n    zones:\n      - {{zone: cheeks, max_depth_mm: {{value: {zone_cap}, evidence: INFERRED, note: why}}, start_depth_mm: 0.01}}\n    aftercare: {{duration_days: {{value: 1, evidence: INFERRED, note: why}}, instructions: []}}\n    downtime: none\n"
        )
    };
    format!(
        "id: fx\nversion: '1'\nsources: [{{id: ifu, title: IFU, url: u, grade: IFU}}]\nfacts: [{{id: pregnant, type: bool, question: Pregnant?}}]\nzones: [{{id: cheeks, name: Cheeks}}]\nprocedures: [{{id: clinic_mn, name: C}}, {{id: home_mn, name: H}}]\nindications: [{{id: dull, name: Dull}}]\nsettings:\n  - {{id: clinic, name: Clinic}}\n  - {{id: home, name: Home{cap}}}\nroles: [{{id: physician, name: P}}, {{id: self, name: S}}]\ntreatments:\n{}{}devices:\n  - id: roller\n    name: Roller\n    treatments: [clinic_mn, home_mn]\n    max_depth_mm: {{value: {needle}, evidence: INFERRED, note: why}}{fixed}\ncontraindications:\n  - {{id: pregnancy, when: {{fact: pregnant, eq: true}}, effect: contraindicate, severity: absolute, evidence: IFU, sources: [ifu], staff_message: s, client_message: c}}\n",
        treatment("clinic_mn", "clinic", "physician"),
        treatment("home_mn", "home", "self"),
    )
}

#[test]
fn a_fixed_length_device_never_serves_a_setting_capped_below_its_needles() {
    let mm = |hundredths: u32| f64::from(hundredths) / 100.0;
    let strategy = (
        proptest::option::weighted(0.8, 1u32..=100),
        1u32..=150,
        any::<bool>(),
        1u32..=300,
    );
    runner()
        .run(&strategy, |(cap, needle, fixed, zone)| {
            let (cap, needle, zone_cap) = (cap.map(mm), mm(needle), mm(zone));
            let text = fixed_fixture(cap, needle, fixed, zone_cap);
            let doc = parse_document(&text, Format::Yaml).expect("fixture parses");
            let violates = fixed && cap.is_some_and(|c| c < needle);
            match compile(&doc, None) {
                Err(e) => {
                    prop_assert!(violates, "refused without a violation:\n{text}\n{e}");
                    prop_assert!(
                        e.problems
                            .iter()
                            .any(|p| p.path == "devices[0].treatments[1]" && p.line.is_some()),
                        "the error names the device's home treatment and its line: {e}"
                    );
                }
                Ok(rs) => {
                    prop_assert!(
                        !violates,
                        "a fixed {needle} mm roller serves a {cap:?} mm home cap"
                    );
                    let req = DepthLimitsRequest {
                        explain: false,
                        ruleset_version: None,
                        ruleset_digest: None,
                        treatment: "home_mn".into(),
                        device: "roller".into(),
                        role: "self".into(),
                        zone: None,
                        indication: None,
                        facts: None,
                        questionnaire_response: None,
                        date: None,
                        history: None,
                    };
                    let limits = rs.depth_limits(&req).expect("valid request");
                    for z in &limits.zones {
                        if let Some(cap) = cap {
                            prop_assert!(z.max_depth_mm.mm() <= cap + 1e-9);
                        }
                        if fixed && zone_cap >= needle {
                            // Nothing but the needle itself binds a fixed device that fits.
                            prop_assert!(z.bound_by.contains(&Bound::Device), "{:?}", z.bound_by);
                        }
                    }
                }
            }
            Ok(())
        })
        .expect("property holds");
}

/// A scheduled plan never puts a session on a date the client could not book: every session is
/// bookable when checked on its own date (history as given, booked procedures included).
#[test]
fn every_session_of_a_scheduled_plan_is_bookable_on_its_date() {
    let (_, rs) = base();
    let facts = rs.facts();
    let treatments = rs.treatments().treatments;
    let booked = proptest::collection::vec(
        (proptest::sample::select(PROCEDURES), -30i64..120).prop_map(|(p, ahead)| HistoryEntry {
            procedure: p.to_owned(),
            date: CHECK_DATE
                .checked_add(jiff::Span::new().days(ahead))
                .unwrap_or(CHECK_DATE),
        }),
        0..3,
    );
    runner()
        .run(
            &(
                answered_client(&facts),
                booked,
                proptest::sample::select(treatments),
            ),
            |(facts, history, t)| {
                let plan = rs
                    .plan(&plan_request(&rs, &t, &facts, &history, CHECK_DATE))
                    .expect("valid");
                if plan.status != PlanStatus::Scheduled {
                    return Ok(());
                }
                for session in &plan.schedule {
                    let e = rs
                        .eligibility(&EligibilityRequest {
                            explain: false,
                            ruleset_version: None,
                            ruleset_digest: None,
                            treatment: t.code.clone(),
                            date: session.date,
                            facts: facts.clone(),
                            questionnaire_response: None,
                            history: history.clone(),
                            zones: Some(plan_request(&rs, &t, &facts, &history, CHECK_DATE).zones),
                            device: plan_request(&rs, &t, &facts, &history, CHECK_DATE).device,
                            role: None,
                            indication: Some(plan.indication.clone()),
                        })
                        .expect("valid");
                    prop_assert!(
                        e.bookable,
                        "{}: session {} on {} is {:?}",
                        t.code,
                        session.number,
                        session.date,
                        e.decision
                    );
                }
                Ok(())
            },
        )
        .expect("property holds");
}

/// A day count from the document: a sourced value, or a policy's default option.
fn doc_days(q: &QuantityDoc, doc: &RuleSetDoc) -> i64 {
    let value = match q {
        QuantityDoc::Sourced(s) => s.value,
        QuantityDoc::Policy(p) => doc
            .policies
            .iter()
            .map(|s| &s.value)
            .find(|x| x.id == p.policy)
            .and_then(|x| x.options.iter().find(|o| o.id == x.default))
            .map_or(0.0, |o| o.value),
    };
    #[allow(clippy::cast_possible_truncation)]
    let days = value as i64;
    days
}

/// The oracle, read from the document and not from the engine: does a `procedure` on the day
/// `offset` days from the session (negative before, positive booked after) conflict with a
/// session of `treatment`? Every interaction in both of its orders, each treatment's minimum
/// interval in both.
fn conflicts(doc: &RuleSetDoc, treatment: &str, procedure: &str, offset: i64) -> bool {
    let all: Vec<String> = doc.treatments.iter().map(|t| t.value.id.clone()).collect();
    let applies =
        |x: &InteractionDoc, t: &str| x.applies_to.as_ref().unwrap_or(&all).iter().any(|a| a == t);
    let min_interval = doc
        .treatments
        .iter()
        .map(|t| &t.value)
        .find(|t| t.id == treatment && t.id == procedure)
        .is_some_and(|t| doc_days(&t.min_interval_days, doc) > offset.abs());
    let interaction = doc.interactions.iter().map(|s| &s.value).any(|x| {
        if offset <= 0 {
            // The procedure first (same day counts as first): its wait.
            x.after == procedure && applies(x, treatment) && doc_days(&x.days, doc) > -offset
        } else {
            // The session first: the procedure's own `then`, or an interaction from this
            // treatment to the procedure's treatment.
            let then = x
                .then
                .as_ref()
                .and_then(|t| t.days.as_ref())
                .map_or(0, |q| doc_days(q, doc));
            (x.after == procedure && applies(x, treatment) && then > offset)
                || (x.after == treatment
                    && applies(x, procedure)
                    && doc_days(&x.days, doc) > offset)
        }
    });
    min_interval || interaction
}

/// Every treatment's code.
fn treatment_codes(rs: &RuleSet) -> Vec<String> {
    rs.treatments()
        .treatments
        .into_iter()
        .map(|t| t.code)
        .collect()
}

/// Issue 22 A: history holds past and booked procedures. Adding one to a bookable client's
/// history never leaves a session that conflicts with it bookable, in either order, and never
/// refuses one that does not conflict.
#[test]
fn a_booked_or_past_procedure_blocks_exactly_the_sessions_it_conflicts_with() {
    let (doc, rs) = base();
    let facts = rs.facts();
    let treatments = treatment_codes(&rs);
    runner()
        .run(
            &(
                answered_client(&facts),
                proptest::sample::select(treatments),
                proptest::sample::select(PROCEDURES),
                -60i64..60,
            ),
            |(facts, t, p, offset)| {
                let before = eligibility(&rs, &t, &facts, &[]);
                if !before.bookable {
                    return Ok(());
                }
                let entry = HistoryEntry {
                    procedure: p.to_owned(),
                    date: CHECK_DATE
                        .checked_add(jiff::Span::new().days(offset))
                        .expect("in range"),
                };
                let after = eligibility(&rs, &t, &facts, &[entry]);
                let conflict = conflicts(&doc, &t, p, offset);
                prop_assert_eq!(
                    after.bookable,
                    !conflict,
                    "{} on {} with {} {} days {}: {:?} {:?}",
                    t,
                    CHECK_DATE,
                    p,
                    offset.abs(),
                    if offset > 0 { "after" } else { "before" },
                    after.decision,
                    after
                        .reasons
                        .iter()
                        .map(|r| r.info.rule.clone())
                        .collect::<Vec<_>>()
                );
                Ok(())
            },
        )
        .expect("property holds");
}

/// Issue 22 A: a deferral's earliest date is a day the client can be booked on, whatever is
/// booked around it (never a day a booked procedure forbids).
#[test]
fn the_earliest_date_of_a_deferral_is_free_of_every_wait() {
    let (_, rs) = base();
    let facts = rs.facts();
    let treatments = treatment_codes(&rs);
    let around = proptest::collection::vec(
        (proptest::sample::select(PROCEDURES), -90i64..90).prop_map(|(p, offset)| HistoryEntry {
            procedure: p.to_owned(),
            date: CHECK_DATE
                .checked_add(jiff::Span::new().days(offset))
                .unwrap_or(CHECK_DATE),
        }),
        1..5,
    );
    runner()
        .run(
            &(
                answered_client(&facts),
                proptest::sample::select(treatments),
                around,
            ),
            |(facts, t, history)| {
                let e = eligibility(&rs, &t, &facts, &history);
                let Some(day) = e.earliest_date else {
                    return Ok(());
                };
                let then = eligibility_on(&rs, &t, day, &facts, &history);
                prop_assert!(
                    then.decision != Decision::Deferred,
                    "{t}: earliest date {day} is itself deferred by {:?}",
                    then.reasons
                        .iter()
                        .map(|r| r.info.rule.clone())
                        .collect::<Vec<_>>()
                );
                // And no earlier day from the request's date on is free of waits.
                let mut d = CHECK_DATE;
                while d < day {
                    let o = eligibility_on(&rs, &t, d, &facts, &history);
                    prop_assert!(
                        o.decision == Decision::Deferred,
                        "{t}: {d} is free but the earliest date was {day}"
                    );
                    d = d.checked_add(jiff::Span::new().days(1)).expect("in range");
                }
                Ok(())
            },
        )
        .expect("property holds");
}

/// Issue 22 A: two appointments are one pair whichever is checked. A client bookable for `x` on
/// a day and for `t` some days later (each alone) is told the same about the two together when
/// `x` is checked with `t` booked after it as when `t` is checked with `x` before it.
#[test]
fn a_pair_of_sessions_gets_one_answer_whichever_is_checked() {
    let (_, rs) = base();
    let facts = rs.facts();
    let treatments = treatment_codes(&rs);
    runner()
        .run(
            &(
                answered_client(&facts),
                proptest::sample::select(treatments.clone()),
                proptest::sample::select(treatments),
                0i64..60,
            ),
            |(facts, x, t, k)| {
                let later = CHECK_DATE
                    .checked_add(jiff::Span::new().days(k))
                    .expect("in range");
                if !eligibility_on(&rs, &x, CHECK_DATE, &facts, &[]).bookable
                    || !eligibility_on(&rs, &t, later, &facts, &[]).bookable
                {
                    return Ok(());
                }
                let entry = |p: &str, date: Date| HistoryEntry {
                    procedure: p.to_owned(),
                    date,
                };
                let first = eligibility_on(&rs, &x, CHECK_DATE, &facts, &[entry(&t, later)]);
                let second = eligibility_on(&rs, &t, later, &facts, &[entry(&x, CHECK_DATE)]);
                prop_assert_eq!(
                    first.bookable,
                    second.bookable,
                    "{} on {} then {} {} days later: checking the first says {:?} {:?}, the second {:?} {:?}",
                    x,
                    CHECK_DATE,
                    t,
                    k,
                    first.decision,
                    first.reasons.iter().map(|r| r.info.rule.clone()).collect::<Vec<_>>(),
                    second.decision,
                    second.reasons.iter().map(|r| r.info.rule.clone()).collect::<Vec<_>>()
                );
                Ok(())
            },
        )
        .expect("property holds");
}
