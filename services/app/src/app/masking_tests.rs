//! The property of the decision log's masking, through the door's own recording path: for any
//! client (generated facts of every type), any masking setting and every kind of request
//! (eligibility, batch, calendar, contraindications, depth limits, plans), no fact the setting
//! names keeps its value in what would be stored: a dropped fact is absent from every `facts`
//! object of the row, a hashed one is an `hmac-sha256:` string, the row says so in
//! `masked_facts`, and the value's text (dates, enum answers) appears nowhere in the stored
//! request. Facts not named are stored as given.
//!
//! The answer part of a row is the engine's answer, which carries rules, dates and fact *names*
//! but never a fact value; a date it computes (an `earliest_date` after a last dose) is derived
//! from one, which docs/operate.md says.

use std::collections::BTreeMap;

use proptest::prelude::*;
use protocol_engine::{
    ContraindicationRequest, DepthLimitsRequest, EligibilityRequest, FactInfo, PlanRequest, RuleSet,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Calendar;
use super::questions::{Batch, Question, Recorder};
use crate::auth::Caller;
use crate::catalog::Catalog;
use crate::decision_log::{DecisionLog, Entry, HASH_PREFIX, MaskHow, MaskRule, Masking};

const KEY: &[u8] = b"a-test-key-of-32-bytes-----------";

/// The bundled base rule set, compiled once.
fn base() -> &'static RuleSet {
    static CATALOG: std::sync::LazyLock<Catalog> =
        std::sync::LazyLock::new(|| Catalog::bundled().expect("bundled rule sets"));
    &CATALOG.rulesets[CATALOG.base_id()]
}

/// A valid answer for `fact`, distinctive where the type allows (dates far from every request
/// date; enum values as declared).
fn answer(fact: &FactInfo) -> BoxedStrategy<Value> {
    match fact.fact_type.as_str() {
        "bool" => any::<bool>().prop_map(Value::Bool).boxed(),
        "integer" => (fact.min.unwrap_or(0)..=fact.max.unwrap_or(100))
            .prop_map(|i| json!(i))
            .boxed(),
        "enum" => proptest::sample::select(fact.values.clone())
            .prop_map(Value::String)
            .boxed(),
        // 2000-01-01 .. 2025-12-28: every request below is dated 2026 or 2027, history 1999.
        _ => (2000i16..2026, 1i8..=12, 1i8..=28)
            .prop_map(|(y, m, d)| json!(format!("{y:04}-{m:02}-{d:02}")))
            .boxed(),
    }
}

/// Some of the facts answered (each maybe), and a masking of some of them.
fn client_and_masking(
    facts: Vec<FactInfo>,
) -> impl Strategy<Value = (BTreeMap<String, Value>, Vec<MaskRule>)> {
    let per_fact: Vec<_> = facts
        .into_iter()
        .map(|f| {
            let id = f.id.clone();
            (
                proptest::option::weighted(0.8, answer(&f)),
                proptest::option::weighted(
                    0.4,
                    prop_oneof![Just(MaskHow::Drop), Just(MaskHow::Hash)],
                ),
            )
                .prop_map(move |(value, how)| (id.clone(), value, how))
        })
        .collect();
    per_fact.prop_map(|all| {
        let mut client = BTreeMap::new();
        let mut rules = Vec::new();
        for (id, value, how) in all {
            if let Some(v) = value {
                client.insert(id.clone(), v);
            }
            if let Some(how) = how {
                rules.push(MaskRule { fact: id, how });
            }
        }
        (client, rules)
    })
}

/// Asks `request` (as JSON) as question `Q` through the door's recording path.
fn ask_and_record<Q: Question + DeserializeOwned>(rs: &RuleSet, log: &DecisionLog, request: Value) {
    let caller = Caller::open();
    let q: Q = serde_json::from_value(request).expect("a well-formed request");
    let rec = Recorder::open(Q::OPERATION.name(), rs, &caller, Some(log));
    let answer = q.ask(rs).expect("every generated request is valid");
    q.record(&answer, &rec);
}

fn ask_batch(rs: &RuleSet, log: &DecisionLog, checks: Vec<Value>) {
    let caller = Caller::open();
    let q = Batch(
        checks
            .into_iter()
            .map(|c| serde_json::from_value(c).expect("a check"))
            .collect::<Vec<EligibilityRequest>>(),
    );
    let rec = Recorder::open(Batch::OPERATION.name(), rs, &caller, Some(log));
    let answer = q.ask(rs).expect("every generated check is valid");
    q.record(&answer, &rec);
}

/// Every request kind for this client: the decisions they record.
fn every_kind(rs: &RuleSet, log: &DecisionLog, facts: &Value) {
    let history = json!([{"procedure": "microneedling", "date": "1999-06-01"}]);
    let check = |treatment: &str| json!({"treatment": treatment, "date": "2026-12-01", "facts": facts, "history": history});
    ask_and_record::<EligibilityRequest>(rs, log, check("microneedling"));
    ask_batch(
        rs,
        log,
        vec![check("microneedling"), check("microdermabrasion")],
    );
    ask_and_record::<Calendar>(
        rs,
        log,
        json!({"facts": facts, "history": history, "slots": [
            {"treatment": "microneedling", "date": "2026-12-01"},
            {"treatment": "microneedling", "date": "2027-03-01", "zones": ["cheeks"]},
        ]}),
    );
    ask_and_record::<ContraindicationRequest>(
        rs,
        log,
        json!({"facts": facts, "date": "2026-12-01", "history": history}),
    );
    ask_and_record::<DepthLimitsRequest>(
        rs,
        log,
        json!({"treatment": "microneedling", "device": "dermapen_4", "role": "nurse",
               "zone": "cheeks", "facts": facts, "date": "2026-12-01", "history": history}),
    );
    ask_and_record::<PlanRequest>(
        rs,
        log,
        json!({"indication": "acne_scars", "zones": ["cheeks"], "facts": facts,
               "history": history, "start_date": "2026-12-01", "role": "nurse",
               "device": "dermapen_4"}),
    );
}

/// Every `facts` object in `v`, at any depth.
fn facts_objects<'a>(v: &'a Value, out: &mut Vec<&'a serde_json::Map<String, Value>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("facts", Value::Object(f)) => out.push(f),
                    _ => facts_objects(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| facts_objects(i, out)),
        _ => {}
    }
}

/// The request's text with every `facts` object left out.
fn without_facts(request: &Value) -> String {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("facts");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut request = request.clone();
    strip(&mut request);
    request.to_string()
}

fn check_entry(entry: &Entry, client: &BTreeMap<String, Value>, rules: &[MaskRule]) {
    let mut objects = Vec::new();
    facts_objects(&entry.request, &mut objects);
    assert!(!objects.is_empty(), "{}", entry.request);
    let request_text = entry.request.to_string();
    for (name, value) in client {
        let rule = rules.iter().find(|r| &r.fact == name);
        for facts in &objects {
            match rule.map(|r| r.how) {
                None => assert_eq!(facts.get(name), Some(value), "kept as given"),
                Some(MaskHow::Drop) => assert!(!facts.contains_key(name), "{name} dropped"),
                Some(MaskHow::Hash) => {
                    let stored = facts[name].as_str().expect("a hash");
                    assert!(stored.starts_with(HASH_PREFIX), "{stored}");
                }
            }
        }
        if let Some(rule) = rule {
            assert_eq!(
                entry.masked_facts.get(name),
                Some(&rule.how),
                "named in the row"
            );
            // The same text may stand in the row on its own right: another fact, not masked,
            // given the same value (`last_tan_date` on the same day as `date_of_birth`), or the
            // request's own date or history; only a text nothing else explains is a leak.
            let explained = client.iter().any(|(other, v)| {
                v == value && other != name && !rules.iter().any(|r| &r.fact == other)
            }) || without_facts(&entry.request).contains(&value.to_string());
            if let Value::String(text) = value
                && !explained
            {
                assert!(
                    !request_text.contains(&format!("\"{text}\"")),
                    "{name}={text} in {request_text}"
                );
            }
        }
    }
    for name in entry.masked_facts.keys() {
        assert!(client.contains_key(name), "only facts present are listed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_named_fact_never_keeps_its_value_in_a_stored_row(
        (client, rules) in client_and_masking(base().facts().facts)
    ) {
        let rs = base();
        let known: Vec<String> = rs.facts().facts.into_iter().map(|f| f.id).collect();
        let masking = Masking::new(&rules, Some(KEY.to_vec()), known.iter().map(String::as_str))
            .expect("a valid masking");
        let (log, mut rx) = DecisionLog::capture(masking);
        let facts = serde_json::to_value(&client).expect("json");
        every_kind(rs, &log, &facts);
        let mut operations = std::collections::BTreeSet::new();
        while let Ok(entry) = rx.try_recv() {
            operations.insert(entry.operation);
            check_entry(&entry, &client, &rules);
        }
        // Every kind recorded at least once (an incomplete client still gets decisions).
        prop_assert!(operations.contains("eligibility"), "{operations:?}");
        prop_assert!(operations.contains("contraindications"), "{operations:?}");
        prop_assert!(operations.contains("plan"), "{operations:?}");
        prop_assert!(operations.contains("depth_limits"), "{operations:?}");
    }
}
