//! `GET /openapi.json` is a valid OpenAPI 3.1 document that describes every route the server has,
//! and every operation it describes exists on the server.

use std::collections::BTreeSet;

use protocol_tests::Server;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

/// Every route of DESIGN §5 this server implements, with its methods (the document may describe
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
