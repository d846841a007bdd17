//! `GET /openapi.json` is a valid OpenAPI 3.1 document that describes every route the server has,
//! and every operation it describes exists on the server.

use std::collections::BTreeSet;

use protocol_tests::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::common::*;

/// Every route of the contract (docs/design.md §7) this server implements, with its methods (the document may describe
/// more, e.g. the rule-set admin API; each documented operation is checked against the server).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/eligibility"),
    ("post", "/v1/eligibility:batch"),
    ("post", "/v1/eligibility:calendar"),
    ("post", "/v1/contraindications:check"),
    ("get", "/v1/depth-limits"),
    ("post", "/v1/depth-limits"),
    ("post", "/v1/plans"),
    ("get", "/v1/treatments"),
    ("get", "/v1/treatments/{code}"),
    ("get", "/v1/facts"),
    ("get", "/v1/catalogue"),
    ("get", "/healthz"),
    ("get", "/readyz"),
];

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.insert(r.clone());
            }
            o.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_valid_and_complete() {
    let server = Server::start().expect("server starts");
    let http = http();
    let res = http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("openapi.json");
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.expect("body");

    // Structurally valid OpenAPI 3.1 (typed parse of the whole document).
    let spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    let version = spec.validate_version().expect("supported version");
    assert_eq!((version.major, version.minor), (3, 1));
    assert!(!spec.info.title.is_empty());

    let doc: Value = serde_json::from_str(&text).expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in ROUTES {
        let op = &paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from the document"))[*method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(
            op["responses"]
                .as_object()
                .is_some_and(|r| r.contains_key("200")),
            "{method} {path} has no 200 response"
        );
        assert!(
            op["operationId"].is_string(),
            "{method} {path} has no operationId"
        );
    }
    // Every $ref resolves.
    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "unresolved $ref {r}");
    }
    // The API key scheme is declared and used.
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    assert!(doc["paths"]["/v1/eligibility"]["post"]["security"].is_array());
    // The request types are those the handlers parse (a field of each).
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for (schema, field) in [
        ("EligibilityRequest", "treatment"),
        ("EligibilityBatchRequest", "checks"),
        ("PlanRequest", "start_date"),
        ("Problem", "errors"),
    ] {
        assert!(
            schemas
                .get(schema)
                .and_then(|s| s["properties"].get(field))
                .is_some(),
            "{schema}.{field} missing"
        );
    }

    // Every documented operation exists on the server: never a 405, and never the router's own
    // 404 (a 404 about a resource, such as an unknown treatment code, is fine).
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in item
            .keys()
            .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
        {
            let concrete = path.replace("{code}", "microneedling");
            let concrete = concrete
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let url = server.url(&concrete);
            let req = match method.as_str() {
                "get" => http.get(&url),
                "delete" => http.delete(&url),
                "put" => http.put(&url),
                "patch" => http.patch(&url),
                _ => http.post(&url),
            };
            let res = req
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("request");
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let router_404 = status == StatusCode::NOT_FOUND
                && body["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("no resource at"));
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && !router_404,
                "{method} {path}: {status} {body}"
            );
        }
    }
}

/// Issue 13 items 1 and 5: `facts` is typed from the rule set that answers the caller (the key's
/// clinic; the base without a key), an unknown key is refused, and `/openapi.json`, `/v1/facts`
/// and `/v1/treatments*` carry a strong `ETag` that `If-None-Match` turns into `304`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_types_facts_per_clinic_and_catalogue_answers_revalidate() {
    let server = Server::start_with_keys().expect("server starts");
    let http = http();
    let get = |path: &str, key: Option<&str>, etag: Option<&str>| {
        let mut req = http.get(server.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(etag) = etag {
            req = req.header("if-none-match", etag);
        }
        req.send()
    };

    let base = get("/openapi.json", None, None).await.expect("base doc");
    assert_eq!(base.status(), StatusCode::OK);
    let base: Value = base.json().await.expect("json");
    let aurora = get("/openapi.json", Some(protocol_tests::KEY_AURORA), None)
        .await
        .expect("aurora doc");
    let aurora: Value = aurora.json().await.expect("json");
    assert_eq!(base["info"]["x-ruleset"]["id"], "base");
    assert_eq!(aurora["info"]["x-ruleset"]["id"], "clinic-aurora");
    // A key with one scope still gets its clinic's contract.
    let narrow: Value = get(
        "/openapi.json",
        Some(protocol_tests::KEY_ELIGIBILITY_ONLY),
        None,
    )
    .await
    .expect("doc")
    .json()
    .await
    .expect("json");
    assert_eq!(narrow["info"]["x-ruleset"]["id"], "clinic-aurora");
    let unknown = get("/openapi.json", Some("not-a-key"), None)
        .await
        .expect("answer");
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    // Every fact of GET /v1/facts is a typed property of Facts, and every request's `facts`
    // points at it.
    let facts: Value = get("/v1/facts", Some(protocol_tests::KEY_AURORA), None)
        .await
        .expect("facts")
        .json()
        .await
        .expect("json");
    let schema = &aurora["components"]["schemas"]["Facts"];
    assert_eq!(schema["additionalProperties"], false);
    for f in facts["facts"].as_array().expect("facts") {
        let id = f["id"].as_str().expect("id");
        let p = &schema["properties"][id];
        assert_eq!(
            p["description"]
                .as_str()
                .map(|d| d.starts_with(f["question"].as_str().unwrap_or("?"))),
            Some(true),
            "{id}: {p}"
        );
        let expected_type = match f["type"].as_str() {
            Some("bool") => json!("boolean"),
            Some("integer") => json!("integer"),
            Some("enum") => json!("string"),
            Some("date") if f.get("null_means").is_some() => json!(["string", "null"]),
            Some("date") => json!("string"),
            other => panic!("{id}: type {other:?}"),
        };
        assert_eq!(p["type"], expected_type, "{id}");
        if f["type"] == "enum" {
            assert_eq!(p["enum"], f["values"], "{id}");
        }
        if f["type"] == "integer" {
            assert_eq!(
                (&p["minimum"], &p["maximum"]),
                (&f["min"], &f["max"]),
                "{id}"
            );
        }
    }
    let schemas = aurora["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for request in [
        "EligibilityRequest",
        "ContraindicationRequest",
        "PlanRequest",
    ] {
        assert_eq!(
            schemas[request]["properties"]["facts"]["$ref"], "#/components/schemas/Facts",
            "{request}"
        );
    }
    assert_eq!(
        schemas["DepthLimitsRequest"]["properties"]["facts"]["oneOf"][0]["$ref"],
        "#/components/schemas/Facts"
    );
    // Item 2 details: decision_id is a UUID, the depth-limits GET declares If-None-Match, and
    // every /v1 operation declares a 4xx (Redocly's operation-4xx-response is off for the probes).
    let decision_id = aurora
        .pointer("/components/schemas/EligibilityResponse")
        .map(|s| s.to_string())
        .unwrap_or_default();
    assert!(decision_id.contains(r#""format":"uuid""#), "{decision_id}");
    let params = aurora["paths"]["/v1/depth-limits"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "If-None-Match" && p["in"] == "header")
    );
    for (path, item) in aurora["paths"].as_object().expect("paths") {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().expect("item") {
            let codes = op["responses"].as_object().expect("responses");
            assert!(
                codes.keys().any(|c| c.starts_with('4')),
                "{method} {path} declares no 4xx"
            );
        }
    }

    // Conditional GETs: ETag, Cache-Control, and 304 on a match.
    for path in [
        "/openapi.json",
        "/v1/facts",
        "/v1/treatments",
        "/v1/treatments/microneedling",
    ] {
        let res = get(path, Some(protocol_tests::KEY_AURORA), None)
            .await
            .expect("answer");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let etag = res.headers()["etag"].to_str().expect("etag").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{path}: {etag}"
        );
        assert_eq!(
            res.headers()["cache-control"],
            "private, no-cache",
            "{path}"
        );
        let again = get(path, Some(protocol_tests::KEY_AURORA), Some(&etag))
            .await
            .expect("answer");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str(), "{path}");
        // Another clinic's rule set is another validator.
        let other = get(path, Some(protocol_tests::KEY_BASE), Some(&etag))
            .await
            .expect("answer");
        assert_eq!(
            other.status(),
            StatusCode::OK,
            "{path}: base key, aurora's ETag"
        );
    }
}
