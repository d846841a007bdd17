//! REST behaviour beyond single decisions: batch, ETag/304 on depth limits, the catalogue
//! endpoints, probes.

use protocol_tests::{KEY_AURORA, KEY_BASE, Server, ServerBuilder};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

use crate::api::common::*;

const DEPTH_QUERY: [(&str, &str); 3] = [
    ("treatment", "microneedling"),
    ("device", "dermapen_4"),
    ("role", "nurse"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_limits_etag_and_304() {
    let server = Server::start().expect("server starts");
    let http = http();
    let url = server.url("/v1/depth-limits");

    let first = http
        .get(&url)
        .query(&DEPTH_QUERY)
        .send()
        .await
        .expect("get");
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .expect("ETag header")
        .to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "strong ETag expected, got {etag}"
    );
    let body: Value = first.json().await.expect("json");
    let cheeks = body["zones"]
        .as_array()
        .and_then(|z| z.iter().find(|z| z["zone"] == "cheeks"))
        .expect("cheeks");
    assert_eq!(cheeks["max_depth_mm"], json!(1.5));

    // Same query again: same ETag; with If-None-Match: 304 and no body.
    let again = http
        .get(&url)
        .query(&DEPTH_QUERY)
        .send()
        .await
        .expect("get");
    assert_eq!(
        again.headers().get(ETAG).and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    let not_modified = http
        .get(&url)
        .query(&DEPTH_QUERY)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("conditional get");
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        not_modified
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    assert!(not_modified.bytes().await.expect("body").is_empty());

    // A list and a weak form match too; another tag does not.
    let listed = http
        .get(&url)
        .query(&DEPTH_QUERY)
        .header(IF_NONE_MATCH, format!("\"nope\", W/{etag}"))
        .send()
        .await
        .expect("get");
    assert_eq!(listed.status(), StatusCode::NOT_MODIFIED);
    let other = http
        .get(&url)
        .query(&DEPTH_QUERY)
        .header(IF_NONE_MATCH, "\"0000\"")
        .send()
        .await
        .expect("get");
    assert_eq!(other.status(), StatusCode::OK);

    // Another query has another ETag.
    let zone = http
        .get(&url)
        .query(&DEPTH_QUERY)
        .query(&[("zone", "cheeks")])
        .send()
        .await
        .expect("get");
    assert_ne!(
        zone.headers().get(ETAG).and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    let zone: Value = zone.json().await.expect("json");
    assert_eq!(zone["zones"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_differs_between_clinics() {
    let server = Server::start_with_keys().expect("server starts");
    let http = http();
    let mut tags = Vec::new();
    for key in [KEY_BASE, KEY_AURORA] {
        let res = http
            .get(server.url("/v1/depth-limits"))
            .query(&DEPTH_QUERY)
            .bearer_auth(key)
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::OK);
        tags.push(res.headers().get(ETAG).cloned().expect("etag"));
    }
    assert_ne!(tags[0], tags[1]);
    // Aurora's ETag does not validate Aurora's limits for the base key.
    let res = http
        .get(server.url("/v1/depth-limits"))
        .query(&DEPTH_QUERY)
        .bearer_auth(KEY_BASE)
        .header(IF_NONE_MATCH, tags[1].clone())
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);
}

/// A tiny rule set, to control what the server serves.
pub fn mini_ruleset(version: &str, cheeks_mm: &str) -> String {
    format!(
        r#"id: mini
version: "{version}"
sources:
  - {{id: ifu, title: Device IFU, url: "https://example.org/ifu", grade: IFU}}
facts:
  - {{id: date_of_birth, type: date, question: Date of birth?}}
  - {{id: pregnant, type: bool, question: Are you pregnant?}}
zones:
  - {{id: cheeks, name: Cheeks}}
  - {{id: forehead, name: Forehead}}
procedures:
  - {{id: microneedling, name: Microneedling}}
indications:
  - {{id: acne_scars, name: Acne scars}}
settings:
  - {{id: clinic, name: Clinic}}
roles:
  - {{id: physician, name: Physician}}
treatments:
  - id: microneedling
    name: Microneedling
    description: Collagen induction.
    needle: true
    setting: clinic
    roles: [physician]
    best_for: [acne_scars]
    min_interval_days: {{value: 28, evidence: IFU, sources: [ifu]}}
    course:
      sessions: {{value: 3, evidence: IFU, sources: [ifu]}}
      max_sessions: {{value: 6, evidence: IFU, sources: [ifu]}}
      interval_days: {{value: 28, evidence: IFU, sources: [ifu]}}
    zones:
      - {{zone: cheeks, max_depth_mm: {{value: {cheeks_mm}, evidence: IFU, sources: [ifu]}}, start_depth_mm: 0.5}}
      - {{zone: forehead, max_depth_mm: {{value: 0.75, evidence: IFU, sources: [ifu]}}, start_depth_mm: 0.25}}
    aftercare:
      duration_days: {{value: 3, evidence: IFU, sources: [ifu]}}
      instructions: [{{text: SPF from 24 h}}]
    results:
      - {{milestone: Glow, days: 7, after: first_session, evidence: IFU, sources: [ifu]}}
    downtime: 1-3 days
devices:
  - id: pen
    name: Pen
    treatments: [microneedling]
    max_depth_mm: {{value: 2.5, evidence: IFU, sources: [ifu]}}
contraindications:
  - id: pregnancy
    when: {{fact: pregnant, eq: true}}
    effect: contraindicate
    severity: absolute
    evidence: IFU
    sources: [ifu]
    staff_message: Pregnancy.
    client_message: Not during pregnancy.
"#
    )
}

/// A rule-set folder replaces the bundled rule sets, and a new rule-set version changes the ETag
/// of the same query (a device's cached limits are revalidated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rulesets_dir_is_served_and_versions_change_the_etag() {
    let http = http();
    let query = [
        ("treatment", "microneedling"),
        ("device", "pen"),
        ("role", "physician"),
        ("zone", "cheeks"),
    ];
    let mut seen = Vec::new();
    for (version, mm) in [("1", "1.5"), ("2", "1.0")] {
        let server = ServerBuilder::new()
            .with_rulesets(vec![("base.yaml".into(), mini_ruleset(version, mm))])
            .spawn()
            .expect("server starts");
        let ready: Value = http
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        assert_eq!(ready["origin"], "directory");
        assert_eq!(ready["rulesets"][0]["id"], "mini");
        assert_eq!(ready["rulesets"][0]["version"], version);
        let res = http
            .get(server.url("/v1/depth-limits"))
            .query(&query)
            .send()
            .await
            .expect("get");
        let etag = res.headers().get(ETAG).cloned().expect("etag");
        let body: Value = res.json().await.expect("json");
        assert_eq!(
            body["zones"][0]["max_depth_mm"].as_f64(),
            mm.parse::<f64>().ok()
        );
        seen.push(etag);
    }
    assert_ne!(seen[0], seen[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_in_order_with_decision_ids() {
    let server = Server::start().expect("server starts");
    let mut pregnant = healthy_facts();
    pregnant["pregnant"] = json!(true);
    let checks: Vec<Value> = vec![
        json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": healthy_facts()}),
        json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": pregnant}),
        json!({"treatment": "microdermabrasion", "date": "2026-12-02", "history": [], "facts": healthy_facts()}),
    ];
    let res = http()
        .post(server.url("/v1/eligibility:batch"))
        .json(&json!({"checks": checks}))
        .send()
        .await
        .expect("batch");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["decision"], "eligible");
    assert_eq!(results[1]["decision"], "contraindicated");
    assert_eq!(results[2]["treatment"], "microdermabrasion");
    let mut ids: Vec<&str> = results
        .iter()
        .filter_map(|r| r["decision_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3);
    ids.dedup();
    assert_eq!(ids.len(), 3, "decision ids must be unique");

    // Exactly 100 is fine.
    let hundred: Vec<Value> = (0..100)
        .map(|_| json!({"treatment": "microneedling", "date": "2026-12-01", "history": []}))
        .collect();
    let res = http()
        .post(server.url("/v1/eligibility:batch"))
        .json(&json!({"checks": hundred}))
        .send()
        .await
        .expect("batch");
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_probes_and_plans() {
    let server = Server::start().expect("server starts");
    let http = http();

    let treatments: Value = http
        .get(server.url("/v1/treatments"))
        .send()
        .await
        .expect("treatments")
        .json()
        .await
        .expect("json");
    let codes: Vec<&str> = treatments["treatments"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["code"].as_str())
        .collect();
    for code in [
        "microneedling",
        "microneedling_prp",
        "rf_microneedling",
        "home_microneedling",
        "microdermabrasion",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let one: Value = http
        .get(server.url("/v1/treatments/microneedling"))
        .send()
        .await
        .expect("treatment")
        .json()
        .await
        .expect("json");
    assert_eq!(one["code"], "microneedling");
    assert_eq!(one["needle"], true);

    let facts: Value = http
        .get(server.url("/v1/facts"))
        .send()
        .await
        .expect("facts")
        .json()
        .await
        .expect("json");
    let pregnant = facts["facts"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["id"] == "pregnant"))
        .expect("pregnant fact");
    assert_eq!(pregnant["type"], "bool");
    assert!(pregnant["question"].as_str().is_some_and(|q| !q.is_empty()));

    let health = http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    let ready = http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["origin"], "bundled");
    assert_eq!(ready["redis"], "not_configured");
    assert!(ready["ruleset_age_seconds"].as_i64().is_some());
    let ids: Vec<&str> = ready["rulesets"]
        .as_array()
        .expect("rulesets")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"base") && ids.contains(&"clinic-aurora"),
        "{ids:?}"
    );
    assert!(
        ready["rulesets"][0]["digest"]
            .as_str()
            .is_some_and(|d| d.len() > 32)
    );

    let plan = http
        .post(server.url("/v1/plans"))
        .json(&json!({
            "indication": "acne_scars", "zones": ["cheeks", "forehead"], "facts": healthy_facts(),
            "history": [], "start_date": "2026-12-01", "role": "physician", "device": "dermapen_4"
        }))
        .send()
        .await
        .expect("plan");
    assert_eq!(plan.status(), StatusCode::OK);
    assert!(
        plan.headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let plan: Value = plan.json().await.expect("json");
    assert_eq!(plan["status"], "scheduled");
    assert_eq!(plan["schedule"].as_array().map(Vec::len), Some(3));
}
