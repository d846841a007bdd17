//! The semantic diff (issue 14 §2), pinned two ways:
//!
//! - mutations of the bundled rule set (drop a rule, raise a cap, shorten a gap, shorten an
//!   interval, switch a policy option) are each caught as looser, naming what changed;
//! - "not looser" means what it says: for generated pairs (bundled, mutated) in both
//!   directions, whenever the diff finds no loosening, no decision of the new version is more
//!   permissive than the old one's for generated clients, histories and dates (bookable where
//!   old was not, an earlier earliest date, a deeper limit, fewer precautions).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::collections::BTreeSet;
use std::path::Path;

use jiff::civil::{Date, date};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use protocol_engine::diff::{Area, Diff, Direction, Side, diff};
use protocol_engine::*;
use serde_json::{Value, json};

fn base_doc() -> RuleSetDoc {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rulesets/base.yaml");
    let text = std::fs::read_to_string(path).expect("rulesets/base.yaml");
    parse_document(&text, Format::Yaml).expect("base parses")
}

fn diff_bases(old: &RuleSetDoc, new: &RuleSetDoc) -> Diff {
    diff(
        Side {
            doc: old,
            base: None,
        },
        Side {
            doc: new,
            base: None,
        },
    )
    .expect("both compile")
}

fn sourced(q: &mut QuantityDoc) -> Option<&mut SourcedDoc> {
    match q {
        QuantityDoc::Sourced(s) => Some(s),
        QuantityDoc::Policy(_) => None,
    }
}

fn loosening<'a>(d: &'a Diff, area: Area, aspect: &str) -> Vec<&'a diff::Change> {
    d.loosenings()
        .filter(|c| c.area == area && c.aspect == aspect)
        .collect()
}

// ---- Mutations, one test per kind -------------------------------------------------------------

#[test]
fn dropping_a_rule_is_looser() {
    let old = base_doc();
    let mut new = old.clone();
    let dropped = new.contraindications.remove(0);
    let d = diff_bases(&old, &new);
    let found = loosening(&d, Area::Rule, "removed");
    assert_eq!(found.len(), 1, "{:#?}", d.changes);
    assert_eq!(found[0].subject, dropped.value.id);
    let at = found[0]
        .old_at
        .as_ref()
        .expect("located in the old document");
    assert_eq!(at.path, "contraindications[0]");
    assert_eq!(at.line, Some(dropped.referenced.line()));
}

#[test]
fn raising_a_cap_is_looser() {
    let old = base_doc();
    let mut new = old.clone();
    let t = new
        .treatments
        .iter_mut()
        .find(|t| t.value.id == "microneedling")
        .expect("microneedling");
    let zone = t
        .value
        .zones
        .iter_mut()
        .find(|z| z.zone == "forehead")
        .expect("forehead");
    let cap = sourced(&mut zone.max_depth_mm).expect("a sourced cap");
    cap.value += 0.25;
    let d = diff_bases(&old, &new);
    let found = loosening(&d, Area::Depth, "max_depth_mm");
    assert!(
        !found.is_empty() && found.iter().all(|c| c.subject.contains("forehead")),
        "{:#?}",
        d.changes
    );
    assert!(found[0].new_at.as_ref().is_some_and(|l| l.line.is_some()));
}

/// Issue 22 review: what decides a plan's start and whom a precaution reaches is diffed too.
#[test]
fn less_preparation_fewer_precaution_zones_or_a_precare_line_left_out_is_looser() {
    let old = base_doc();
    // Preparation before an RF course shortened.
    let mut new = old.clone();
    let p = new
        .contraindications
        .iter_mut()
        .find(|r| r.value.id == "rf_preconditioning")
        .and_then(|r| r.value.precaution.as_mut())
        .expect("rf_preconditioning");
    p.start_after_days = Some(QuantityDoc::Sourced(SourcedDoc {
        value: 7.0,
        evidence: Grade::Clinic,
        sources: vec!["ccomfs_morpheus8".into()],
        note: None,
    }));
    let d = diff_bases(&old, &new);
    assert_eq!(
        loosening(&d, Area::Rule, "start_after_days").len(),
        1,
        "{:#?}",
        d.changes
    );

    // A precaution without a cap scoped to one zone: it no longer reaches a request for others.
    let mut new = old.clone();
    let p = new
        .contraindications
        .iter_mut()
        .find(|r| r.value.id == "pih_risk")
        .and_then(|r| r.value.precaution.as_mut())
        .expect("pih_risk");
    assert!(p.depth_cap_mm.is_none() && p.zones.is_none());
    p.zones = Some(vec!["neck".into()]);
    let d = diff_bases(&old, &new);
    assert_eq!(
        loosening(&d, Area::Rule, "precaution zones").len(),
        1,
        "{:#?}",
        d.changes
    );

    // A precare line left out for more clients.
    let mut new = old.clone();
    let t = new
        .treatments
        .iter_mut()
        .find(|t| t.value.id == "microneedling")
        .expect("microneedling");
    let line = t
        .value
        .precare
        .iter_mut()
        .find(|i| i.text.starts_with("Stop retinoids"))
        .expect("a precare line");
    line.unless = vec!["pih_risk".into()];
    let d = diff_bases(&old, &new);
    let found: Vec<_> = d
        .loosenings()
        .filter(|c| c.area == Area::Course && c.aspect.starts_with("precare 'Stop retinoids"))
        .collect();
    assert_eq!(found.len(), 1, "{:#?}", d.changes);
}

#[test]
fn raising_a_precaution_cap_is_looser() {
    let old = base_doc();
    let mut new = old.clone();
    let rule = new
        .contraindications
        .iter_mut()
        .find_map(|r| {
            r.value
                .precaution
                .as_mut()
                .filter(|p| p.depth_cap_mm.is_some())
        })
        .expect("a precaution with a cap");
    rule.depth_cap_mm = rule
        .depth_cap_mm
        .as_ref()
        .map(|c| DepthDoc::Bare(c.mm() + 0.5));
    let d = diff_bases(&old, &new);
    assert_eq!(
        loosening(&d, Area::Rule, "depth_cap_mm").len(),
        1,
        "{:#?}",
        d.changes
    );
}

#[test]
fn shortening_a_gap_is_looser() {
    let old = base_doc();
    let mut new = old.clone();
    let (id, days) = new
        .interactions
        .iter_mut()
        .find_map(|i| {
            let id = i.value.id.clone();
            sourced(&mut i.value.days)
                .filter(|d| d.value > 1.0)
                .map(|d| (id, d))
        })
        .expect("a sourced gap");
    days.value -= 1.0;
    let d = diff_bases(&old, &new);
    let found = loosening(&d, Area::Rule, "days");
    assert_eq!(found.len(), 1, "{:#?}", d.changes);
    assert_eq!(found[0].subject, id);
}

#[test]
fn shortening_an_interval_is_looser() {
    let old = base_doc();
    let mut new = old.clone();
    let (id, days) = new
        .treatments
        .iter_mut()
        .find_map(|t| {
            let id = t.value.id.clone();
            sourced(&mut t.value.min_interval_days)
                .filter(|d| d.value > 7.0)
                .map(|d| (id, d))
        })
        .expect("a sourced interval");
    days.value -= 1.0;
    let d = diff_bases(&old, &new);
    let found = loosening(&d, Area::Rule, "days");
    assert_eq!(found.len(), 1, "{:#?}", d.changes);
    assert_eq!(found[0].subject, format!("{id}.min_interval"));
}

#[test]
fn switching_a_policy_option_is_looser() {
    let old = base_doc();
    let mut new = old.clone();
    let p = new
        .policies
        .iter_mut()
        .find(|p| p.value.id == "isotretinoin_washout")
        .expect("policy");
    p.value.default = "three_months".into();
    let d = diff_bases(&old, &new);
    assert_eq!(
        loosening(&d, Area::Policy, "default").len(),
        1,
        "{:#?}",
        d.changes
    );
    // And where its number is used: the washout rule waits less.
    assert!(
        !loosening(&d, Area::Rule, "days").is_empty(),
        "{:#?}",
        d.changes
    );
}

#[test]
fn tightening_is_not_looser_and_an_unchanged_version_has_no_changes() {
    let old = base_doc();
    assert!(diff_bases(&old, &old).changes.is_empty());
    let mut new = old.clone();
    let p = new
        .policies
        .iter_mut()
        .find(|p| p.value.id == "isotretinoin_washout")
        .expect("policy");
    p.value.default = "twelve_months".into();
    let t = new
        .treatments
        .iter_mut()
        .find(|t| t.value.id == "microneedling")
        .expect("microneedling");
    for z in &mut t.value.zones {
        if let Some(cap) = sourced(&mut z.max_depth_mm) {
            cap.value = (cap.value - 0.1).max(z.start_depth_mm.mm());
        }
    }
    let d = diff_bases(&old, &new);
    assert!(!d.is_looser(), "{:#?}", d.loosenings().collect::<Vec<_>>());
    assert!(
        d.changes.iter().any(|c| c.direction == Direction::Tighter),
        "{:#?}",
        d.changes
    );
}

// ---- "Not looser" means no decision is more permissive ----------------------------------------

const CHECK_DATE: Date = date(2026, 12, 1);

/// One edit of the bundled base, in either direction.
#[derive(Debug, Clone)]
enum Mutation {
    Policy(usize, usize),
    ZoneCap(usize, usize, f64),
    DeviceCap(usize, f64),
    RoleCap(usize, f64),
    Gap(usize, f64),
    Interval(usize, f64),
    DropRule(usize),
    DropRole(usize, usize),
    PrecautionCap(usize, f64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let factor = prop_oneof![Just(0.8), Just(0.9), Just(1.1), Just(1.25)];
    prop_oneof![
        1 => (0usize..8, 0usize..6).prop_map(|(p, o)| Mutation::Policy(p, o)),
        1 => (0usize..8, 0usize..12, factor.clone()).prop_map(|(t, z, f)| Mutation::ZoneCap(t, z, f)),
        1 => (0usize..12, factor.clone()).prop_map(|(d, f)| Mutation::DeviceCap(d, f)),
        1 => (0usize..6, factor.clone()).prop_map(|(r, f)| Mutation::RoleCap(r, f)),
        1 => (0usize..40, factor.clone()).prop_map(|(i, f)| Mutation::Gap(i, f)),
        1 => (0usize..8, factor.clone()).prop_map(|(t, f)| Mutation::Interval(t, f)),
        3 => (0usize..70).prop_map(Mutation::DropRule),
        1 => (0usize..8, 0usize..4).prop_map(|(t, r)| Mutation::DropRole(t, r)),
        1 => (0usize..80, factor).prop_map(|(i, f)| Mutation::PrecautionCap(i, f)),
    ]
}

fn scale_depth(q: &mut QuantityDoc, f: f64) {
    if let Some(s) = sourced(q) {
        s.value = ((s.value * f * 10.0).round() / 10.0).clamp(0.1, 10.0);
    }
}

fn scale_days(q: &mut QuantityDoc, f: f64) {
    if let Some(s) = sourced(q) {
        s.value = (s.value * f).round().max(0.0);
    }
}

fn apply(doc: &mut RuleSetDoc, m: &Mutation) {
    match *m {
        Mutation::Policy(p, o) => {
            if let Some(p) = doc.policies.get_mut(p)
                && let Some(opt) = p.value.options.get(o % p.value.options.len().max(1))
            {
                p.value.default = opt.id.clone();
            }
        }
        Mutation::ZoneCap(t, z, f) => {
            if let Some(z) = doc
                .treatments
                .get_mut(t)
                .and_then(|t| t.value.zones.get_mut(z))
            {
                scale_depth(&mut z.max_depth_mm, f);
            }
        }
        Mutation::DeviceCap(d, f) => {
            if let Some(q) = doc
                .devices
                .get_mut(d)
                .and_then(|d| d.value.max_depth_mm.as_mut())
            {
                scale_depth(q, f);
            }
        }
        Mutation::RoleCap(r, f) => {
            if let Some(q) = doc
                .roles
                .get_mut(r)
                .and_then(|r| r.value.max_depth_mm.as_mut())
            {
                scale_depth(q, f);
            }
        }
        Mutation::Gap(i, f) => {
            if let Some(i) = doc.interactions.get_mut(i) {
                scale_days(&mut i.value.days, f);
            }
        }
        Mutation::Interval(t, f) => {
            if let Some(t) = doc.treatments.get_mut(t) {
                scale_days(&mut t.value.min_interval_days, f);
            }
        }
        Mutation::DropRule(i) => {
            if i < doc.contraindications.len() {
                doc.contraindications.remove(i);
            }
        }
        Mutation::DropRole(t, r) => {
            if let Some(t) = doc.treatments.get_mut(t)
                && t.value.roles.len() > 1
                && r < t.value.roles.len()
            {
                t.value.roles.remove(r);
            }
        }
        Mutation::PrecautionCap(i, f) => {
            if let Some(p) = doc
                .contraindications
                .get_mut(i)
                .and_then(|r| r.value.precaution.as_mut())
            {
                p.depth_cap_mm = p
                    .depth_cap_mm
                    .as_ref()
                    .map(|c| DepthDoc::Bare(((c.mm() * f * 10.0).round() / 10.0).clamp(0.1, 10.0)));
            }
        }
    }
}

/// A client: each fact answered with a value of its type or left out; a yes/no fact is "no"
/// with weight `healthy` against 1, so most clients have one or two findings, some none.
fn client(facts: &FactList, healthy: u32) -> BoxedStrategy<Facts> {
    let per_fact: Vec<BoxedStrategy<Option<(String, Value)>>> = facts
        .facts
        .iter()
        .map(|f| {
            let id = f.id.clone();
            let value: BoxedStrategy<Value> = match f.fact_type.as_str() {
                "bool" => prop_oneof![healthy => Just(false), 1 => Just(true)]
                    .prop_map(Value::Bool)
                    .boxed(),
                "integer" => (f.min.unwrap_or(0)..=f.max.unwrap_or(0))
                    .prop_map(|n| json!(n))
                    .boxed(),
                "enum" => proptest::sample::select(f.values.clone())
                    .prop_map(Value::String)
                    .boxed(),
                _ if f.null_means.is_none() => (1940i16..2012, 1i8..=12, 1i8..=28)
                    .prop_map(|(y, m, d)| json!(date(y, m, d).to_string()))
                    .boxed(),
                _ => prop_oneof![
                    healthy => Just(Value::Null),
                    1 => (-800i64..30).prop_map(|days| json!(CHECK_DATE
                        .checked_add(jiff::Span::new().days(days))
                        .unwrap_or(CHECK_DATE)
                        .to_string())),
                ]
                .boxed(),
            };
            prop_oneof![1 => Just(None), 400 => value.prop_map(move |v| Some((id.clone(), v)))]
                .boxed()
        })
        .collect();
    per_fact
        .prop_map(|answers| answers.into_iter().flatten().collect::<Facts>())
        .boxed()
}

const PROCEDURES: &[&str] = &[
    "microneedling",
    "microneedling_prp",
    "rf_microneedling",
    "microdermabrasion",
    "botulinum_toxin",
    "ha_filler",
    "waxing",
    "laser_ablative",
];

fn history() -> impl Strategy<Value = Vec<HistoryEntry>> {
    proptest::collection::vec(
        (proptest::sample::select(PROCEDURES), 0i64..800).prop_map(|(p, ago)| HistoryEntry {
            procedure: p.to_owned(),
            date: CHECK_DATE
                .checked_sub(jiff::Span::new().days(ago))
                .unwrap_or(CHECK_DATE),
        }),
        0..2,
    )
}

fn precautions(e: &Eligibility) -> BTreeSet<String> {
    e.precautions.iter().map(|p| p.rule.clone()).collect()
}

/// Every way `new` answers more permissively than `old` for one client and date.
fn more_permissive(
    old: &RuleSet,
    new: &RuleSet,
    facts: &Facts,
    history: &[HistoryEntry],
    days_ahead: i64,
) -> Result<(), String> {
    let date = CHECK_DATE
        .checked_add(jiff::Span::new().days(days_ahead))
        .unwrap_or(CHECK_DATE);
    for t in old.treatments().treatments {
        let req = EligibilityRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            treatment: t.code.clone(),
            date,
            facts: facts.clone(),
            questionnaire_response: None,
            history: history.to_vec(),
            zones: None,
            device: None,
            role: None,
            indication: None,
        };
        let (Ok(o), Ok(n)) = (old.eligibility(&req), new.eligibility(&req)) else {
            continue;
        };
        if n.bookable && !o.bookable {
            return Err(format!(
                "{}: bookable ({:?}) where old was {:?}",
                t.code, n.decision, o.decision
            ));
        }
        if let (Some(od), Some(nd)) = (o.earliest_date, n.earliest_date)
            && nd < od
        {
            return Err(format!("{}: earliest date {nd} before {od}", t.code));
        }
        if o.bookable && n.bookable && !precautions(&n).is_superset(&precautions(&o)) {
            return Err(format!(
                "{}: precautions {:?} lost some of {:?}",
                t.code,
                precautions(&n),
                precautions(&o)
            ));
        }
        for device in &t.devices {
            for role in &t.roles {
                let req = DepthLimitsRequest {
                    explain: false,
                    ruleset_version: None,
                    ruleset_digest: None,
                    treatment: t.code.clone(),
                    device: device.clone(),
                    role: role.clone(),
                    zone: None,
                    indication: None,
                    facts: Some(facts.clone()),
                    questionnaire_response: None,
                    date: Some(date),
                    history: Some(history.to_vec()),
                };
                let (Ok(o), Ok(n)) = (old.depth_limits(&req), new.depth_limits(&req)) else {
                    continue;
                };
                for nz in &n.zones {
                    match o.zones.iter().find(|z| z.zone == nz.zone) {
                        Some(oz) if nz.max_depth_mm > oz.max_depth_mm => {
                            return Err(format!(
                                "{} {device} {role} {}: {} mm deeper than {} mm",
                                t.code,
                                nz.zone,
                                nz.max_depth_mm.mm(),
                                oz.max_depth_mm.mm()
                            ));
                        }
                        None => {
                            return Err(format!(
                                "{} {device} {role}: zone {} newly reachable",
                                t.code, nz.zone
                            ));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn not_looser_means_no_decision_is_more_permissive() {
    let base = base_doc();
    let base_rs = compile(&base, None).expect("base compiles");
    let facts = base_rs.facts();
    let clients = (
        prop_oneof![client(&facts, 60), client(&facts, 15)],
        history(),
        0i64..120,
    );
    let mut outer = TestRunner::new(Config {
        cases: 40,
        failure_persistence: None,
        ..Config::default()
    });
    let (compared, not_looser) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let pairs = proptest::collection::vec(mutation(), 1..3);
    outer
        .run(&(pairs, any::<bool>()), |(mutations, reverse)| {
            let mut mutated = base.clone();
            for m in &mutations {
                apply(&mut mutated, m);
            }
            let Ok(mutated_rs) = compile(&mutated, None) else {
                return Ok(()); // an edit the rule set refuses (a cap below a fixed needle ...)
            };
            let (old, old_rs, new, new_rs) = if reverse {
                (&mutated, &mutated_rs, &base, &base_rs)
            } else {
                (&base, &base_rs, &mutated, &mutated_rs)
            };
            let d = diff_bases(old, new);
            compared.set(compared.get() + 1);
            if d.is_looser() {
                return Ok(());
            }
            not_looser.set(not_looser.get() + 1);
            let mut inner = TestRunner::new(Config {
                cases: 40,
                failure_persistence: None,
                ..Config::default()
            });
            let result = inner.run(&clients, |(facts, history, ahead)| {
                more_permissive(old_rs, new_rs, &facts, &history, ahead)
                    .map_err(TestCaseError::fail)
            });
            prop_assert!(
                result.is_ok(),
                "{mutations:?} (reverse: {reverse}) is not looser by the diff ({:#?}), yet: {result:?}",
                d.changes
            );
            Ok(())
        })
        .expect("property holds");
    let (compared, not_looser) = (compared.get(), not_looser.get());
    assert!(
        compared >= 12 && not_looser >= 4,
        "compared {compared}, not looser {not_looser}"
    );
}

#[test]
fn changing_codes_changes_no_decision_but_the_digest() {
    let old = base_doc();
    let mut new = old.clone();
    for f in &mut new.facts {
        f.value.codes = None;
        f.value.codes_mean = None;
    }
    new.zones[0].value.codes = Some(vec![Coding {
        system: "http://snomed.info/sct".into(),
        code: "52795006".into(),
        display: "Forehead structure".into(),
    }]);
    let d = diff_bases(&old, &new);
    assert!(d.changes.is_empty(), "codes are neutral: {:#?}", d.changes);
    assert_ne!(digest_of(&old), digest_of(&new), "the digest covers codes");
}

// ---- service codes -------------------------------------------------------------------------

/// The base with a `service_codes` table of `rows` (YAML flow mappings).
fn base_with_codes(rows: &[&str]) -> RuleSetDoc {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rulesets/base.yaml");
    let mut text = std::fs::read_to_string(path).expect("rulesets/base.yaml");
    if !rows.is_empty() {
        text.push_str("\nservice_codes:\n");
        for r in rows {
            text.push_str(&format!("  - {r}\n"));
        }
    }
    parse_document(&text, Format::Yaml).expect("parses")
}

#[test]
fn a_service_code_dropped_or_moved_is_looser_and_one_added_tighter() {
    const MN: &str =
        "{system: \"https://clinic.example/services\", code: MN-60, treatment: microneedling}";
    const PRP: &str =
        "{system: \"https://clinic.example/services\", code: MN-60, treatment: microneedling_prp}";
    let (none, mn, prp) = (
        base_with_codes(&[]),
        base_with_codes(&[MN]),
        base_with_codes(&[PRP]),
    );
    let dropped = diff_bases(&mn, &none);
    assert_eq!(
        loosening(&dropped, Area::Codes, "removed").len(),
        1,
        "{dropped:#?}"
    );
    let moved = diff_bases(&mn, &prp);
    let l = loosening(&moved, Area::Codes, "treatment");
    assert_eq!(l.len(), 1, "{moved:#?}");
    assert_eq!(
        (l[0].old.as_deref(), l[0].new.as_deref()),
        (Some("microneedling"), Some("microneedling_prp"))
    );
    assert!(
        l[0].new_at
            .as_ref()
            .is_some_and(|at| at.path == "service_codes[0]")
    );
    let added = diff_bases(&none, &mn);
    assert!(!added.is_looser(), "{added:#?}");
    assert!(
        added
            .changes
            .iter()
            .any(|c| c.area == Area::Codes && c.direction == Direction::Tighter)
    );
}
