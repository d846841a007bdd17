//! Checks over the bundled rule sets (`rulesets/`) that no single scenario covers: every clinic
//! needle treatment keeps the gaps plain microneedling has, and every number carries its
//! provenance (a source, or an INFERRED / CLINIC_POLICY mark with its reasoning).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use protocol_engine::*;

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
