//! Checks over the bundled rule sets (`rulesets/`) that no single scenario covers: every clinic
//! needle treatment keeps the gaps plain microneedling has, and every number carries its
//! provenance (a source, or an INFERRED / CLINIC_POLICY mark with its reasoning).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use protocol_engine::*;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every bundled document with the file it came from, base first.
fn documents() -> Vec<(String, RuleSetDoc)> {
    let mut files = vec![root().join("rulesets/base.yaml")];
    let mut clinics: Vec<PathBuf> = std::fs::read_dir(root().join("rulesets/clinics"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    clinics.sort();
    files.extend(clinics);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("rule set file");
            let doc = parse_document(&text, Format::Yaml)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), doc)
        })
        .collect()
}

fn base() -> RuleSetDoc {
    documents()
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d.extends.is_none())
        .expect("a base rule set")
}

fn days(q: &QuantityDoc, doc: &RuleSetDoc) -> f64 {
    match q {
        QuantityDoc::Sourced(s) => s.value,
        QuantityDoc::Policy(p) => doc
            .policies
            .iter()
            .map(|s| &s.value)
            .find(|x| x.id == p.policy)
            .and_then(|x| x.options.iter().find(|o| o.id == x.default))
            .map_or(0.0, |o| o.value),
    }
}

/// (after, treatment) -> the longest gap the rule set requires.
fn gaps(doc: &RuleSetDoc) -> BTreeMap<(String, String), f64> {
    let all: Vec<String> = doc.treatments.iter().map(|t| t.value.id.clone()).collect();
    let mut out = BTreeMap::new();
    for x in doc.interactions.iter().map(|s| &s.value) {
        let d = days(&x.days, doc);
        for t in x.applies_to.as_ref().unwrap_or(&all) {
            let slot = out.entry((x.after.clone(), t.clone())).or_insert(0.0);
            if d > *slot {
                *slot = d;
            }
        }
    }
    out
}

#[test]
fn every_clinic_needle_treatment_keeps_the_gaps_plain_microneedling_has() {
    let doc = base();
    let gaps = gaps(&doc);
    let needle_clinic: Vec<&TreatmentDoc> = doc
        .treatments
        .iter()
        .map(|s| &s.value)
        .filter(|t| t.needle && t.setting == "clinic")
        .collect();
    assert!(needle_clinic.iter().any(|t| t.id == "microneedling"));
    let reference: Vec<(&String, f64)> = gaps
        .iter()
        .filter(|((after, _), _)| after == "microneedling")
        .map(|((_, to), d)| (to, *d))
        .collect();
    assert!(!reference.is_empty(), "plain microneedling has gaps");
    let mut missing = Vec::new();
    for t in &needle_clinic {
        for (to, d) in &reference {
            // A treatment's gap to itself is its minimum interval, checked elsewhere.
            if **to == t.id {
                continue;
            }
            let have = gaps.get(&(t.id.clone(), (*to).clone())).copied();
            if have.is_none_or(|h| h < *d) {
                missing.push(format!(
                    "after {} before {to}: plain microneedling waits {d} days, {} has {have:?}",
                    t.id, t.id
                ));
            }
        }
    }
    assert!(missing.is_empty(), "missing gaps:\n{}", missing.join("\n"));
}

/// Walks a document's JSON form and reports every number without its provenance: a number that
/// carries an evidence grade (`{value|days, evidence, sources, note}`: quantities, policy options,
/// milestones) must cite at least one catalogued source, unless it is marked `INFERRED` or
/// `CLINIC_POLICY`, which must say why in a non-empty `note`.
fn unbacked(v: &Value, path: &str, catalogue: &BTreeSet<String>, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let numeric = |k: &str| map.get(k).is_some_and(Value::is_number);
            if let Some(grade) = map.get("evidence").and_then(Value::as_str)
                && (numeric("value") || numeric("days"))
            {
                let sources: Vec<&str> = map
                    .get("sources")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let note = map
                    .get("note")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.trim().is_empty());
                for s in &sources {
                    if !catalogue.contains(*s) {
                        out.push(format!(
                            "{path}: cites '{s}', which is not in the catalogue"
                        ));
                    }
                }
                match grade {
                    "INFERRED" | "CLINIC_POLICY" if !note => {
                        out.push(format!("{path}: {grade} without a note saying why"));
                    }
                    "INFERRED" | "CLINIC_POLICY" => {}
                    _ if sources.is_empty() => {
                        out.push(format!("{path}: graded {grade} but cites no source"));
                    }
                    _ => {}
                }
            }
            for (k, x) in map {
                // A depth given as a bare number (a start depth, a precaution's cap) carries no
                // grade and no source: outside an overlay's `tighten` (whose items say why at
                // the item), every depth is a sourced quantity.
                if k.ends_with("_mm") && x.is_number() && !path.contains(".tighten") {
                    out.push(format!(
                        "{path}.{k}: a bare number; give {{value, evidence, sources, note}}"
                    ));
                }
                unbacked(x, &format!("{path}.{k}"), catalogue, out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                unbacked(x, &format!("{path}[{i}]"), catalogue, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_number_has_a_source_or_says_why_it_is_inferred() {
    let docs = documents();
    let base_sources: BTreeSet<String> =
        base().sources.iter().map(|s| s.value.id.clone()).collect();
    let mut problems = Vec::new();
    for (file, doc) in &docs {
        let mut catalogue = base_sources.clone();
        catalogue.extend(doc.sources.iter().map(|s| s.value.id.clone()));
        let json = serde_json::to_value(doc).expect("a document serialises");
        unbacked(&json, file, &catalogue, &mut problems);
        // An overlay's tightened numbers become CLINIC_POLICY: each tightening says why.
        if let Some(tighten) = json.get("tighten").and_then(Value::as_object) {
            for (section, items) in tighten {
                for (i, item) in items.as_array().into_iter().flatten().enumerate() {
                    let note = item
                        .get("note")
                        .and_then(Value::as_str)
                        .is_some_and(|n| !n.trim().is_empty());
                    let sources = item
                        .get("sources")
                        .and_then(Value::as_array)
                        .is_some_and(|a| !a.is_empty());
                    if !(note && sources) {
                        problems.push(format!(
                            "{file}: tighten.{section}[{i}] needs `sources` and a `note` (the clinic's reason)"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "numbers without provenance ({}):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn compiled_base() -> RuleSet {
    compile(&base(), None).expect("base compiles")
}

#[test]
fn clinic_needle_treatments_say_how_long_a_session_takes() {
    let rs = compiled_base();
    for code in ["microneedling", "microneedling_prp", "rf_microneedling"] {
        let t = rs.treatment(code).expect("treatment");
        assert_eq!(
            t.session_minutes,
            Some(SessionMinutes { min: 30, max: 60 }),
            "{code}"
        );
    }
}

#[test]
fn aftercare_for_prp_rf_and_home_covers_48_to_72_hours_spf_and_no_actives() {
    let doc = base();
    for code in [
        "microneedling_prp",
        "rf_microneedling",
        "home_microneedling",
    ] {
        let t = doc
            .treatments
            .iter()
            .map(|s| &s.value)
            .find(|t| t.id == code)
            .expect("treatment");
        let text = t
            .aftercare
            .instructions
            .iter()
            .map(|i| i.text.to_lowercase())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains("spf"), "{code}: SPF");
        assert!(text.contains("retinoids"), "{code}: no actives");
        let days = match &t.aftercare.duration_days {
            QuantityDoc::Sourced(s) => s.value,
            QuantityDoc::Policy(_) => 0.0,
        };
        assert!(
            (2.0..=3.0).contains(&days),
            "{code}: 48-72 h, got {days} days"
        );
        let precare = t
            .precare
            .iter()
            .map(|i| i.text.to_lowercase())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(precare.contains("cleanse"), "{code}: cleansing before");
    }
    let home_doc = doc
        .treatments
        .iter()
        .map(|s| &s.value)
        .find(|t| t.id == "home_microneedling")
        .expect("home");
    assert!(
        home_doc
            .precare
            .iter()
            .any(|i| i.text.contains("Consult a dermatologist")),
        "home use: consult a dermatologist first"
    );
}

/// Issue 22 A: every gap of the bundled rule sets states both orders (`then`: a sourced wait, or
/// why no source gives one). The engine loads a document without `then` as it was written
/// (older published versions, replay), so this is where the bundled data is held to it.
#[test]
fn every_bundled_interaction_states_both_orders() {
    let mut missing = Vec::new();
    for (file, doc) in documents() {
        for x in doc.interactions.iter().map(|s| &s.value) {
            match &x.then {
                Some(ThenDoc {
                    days: Some(_),
                    unstated: None,
                }) => {}
                Some(ThenDoc {
                    days: None,
                    unstated: Some(why),
                }) if !why.trim().is_empty() => {}
                _ => missing.push(format!("{file}: interaction '{}' states no `then`", x.id)),
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
