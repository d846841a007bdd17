//! CDS Hooks 2.0 through the real binary: discovery, the `appointment-book` call and feedback,
//! every answer (and every request sent) validated against the CDS Hooks 2.0 JSON Schemas of
//! `tests/schemas/cds-hooks` with the `jsonschema` crate; errors as problem+json naming the field;
//! and the engine's clinical scenarios replayed as hook calls whose FHIR prefetch is built from
//! each scenario's facts and history through the rule set's codes, asserting the same decisions.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use protocol_tests::{KEY_AURORA, KEY_BASE, KEY_BOREALIS_ADMIN, Server, workspace_root};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const SERVICE: &str = "/cds-services/treatment-eligibility";
const EXTENSION: &str = "org.treatment-protocol.decision";
const TREATMENT_SYSTEM: &str = "urn:treatment-protocol:treatment";

// ---- schemas ------------------------------------------------------------------------------------

fn validator(name: &str) -> jsonschema::Validator {
    let path = workspace_root().join("tests/schemas/cds-hooks").join(name);
    let text = std::fs::read_to_string(&path).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::draft202012::new(&schema).expect("schema compiles")
}

struct Schemas {
    discovery: jsonschema::Validator,
    request: jsonschema::Validator,
    response: jsonschema::Validator,
    feedback: jsonschema::Validator,
}

fn schemas() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(|| Schemas {
        discovery: validator("discovery-response.json"),
        request: validator("service-request.json"),
        response: validator("service-response.json"),
        feedback: validator("feedback-request.json"),
    })
}

/// Every schema violation of `instance`, with where it is.
fn violations(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_valid(v: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors = violations(v, instance);
    assert!(errors.is_empty(), "{what} is not valid: {errors:#?}\n{instance:#}");
}

// ---- building hook calls ------------------------------------------------------------------------

fn bundle(resources: Vec<Value>) -> Value {
    if resources.is_empty() {
        return Value::Null;
    }
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
    })
}

/// A hook call for one proposed appointment of `patient`.
fn hook_call(appointment: Value, prefetch: Value) -> Value {
    json!({
        "hook": "appointment-book",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {
            "userId": "PractitionerRole/booking-desk",
            "patientId": "p1",
            "appointments": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": appointment}]},
        },
        "prefetch": prefetch,
    })
}

fn appointment(service_type: Value, start: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "id": "apt-1",
        "status": "proposed",
        "serviceType": [service_type],
        "start": start,
        "end": start.replacen("T10:00", "T11:00", 1),
        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "needs-action"}],
    })
}

fn local_treatment(code: &str) -> Value {
    json!({"coding": [{"system": TREATMENT_SYSTEM, "code": code}]})
}

fn empty_prefetch() -> Value {
    json!({
        "patient": {"resourceType": "Patient", "id": "p1"},
        "conditions": null, "medicationStatements": null, "medicationRequests": null,
        "procedures": null, "observations": null,
    })
}

async fn post(server: &Server, key: Option<&str>, path: &str, body: &Value) -> (StatusCode, Value) {
    let mut req = http().post(server.url(path)).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Calls the service with a schema-valid request and checks the answer against the schema.
async fn call(server: &Server, key: &str, body: &Value) -> Value {
    assert_valid(&schemas().request, body, "the hook call sent");
    let (status, answer) = post(server, Some(key), SERVICE, body).await;
    assert_eq!(status, StatusCode::OK, "{answer:#}");
    assert_valid(&schemas().response, &answer, "the hook response");
    answer
}

// ---- the service --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_the_appointment_book_service() {
    let server = Server::start_with_keys().expect("server starts");
    // Open, like /openapi.json: a CDS client's JWT is not a key of this API.
    let res = http()
        .get(server.url("/cds-services"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert_valid(&schemas().discovery, &body, "discovery");
    let s = &body["services"][0];
    assert_eq!(s["hook"], "appointment-book");
    assert_eq!(s["id"], "treatment-eligibility");
    for key in [
        "patient",
        "conditions",
        "medicationStatements",
        "medicationRequests",
        "procedures",
        "observations",
    ] {
        let template = s["prefetch"][key].as_str().expect("template");
        assert!(template.contains("{{context.patientId}}"), "{template}");
    }
    // The schema is not a rubber stamp: a 3.0-ballot field and an empty title fail it.
    let mut wrong = body.clone();
    wrong["services"][0]["version"] = json!("STU3");
    wrong["services"][0]["title"] = json!("");
    assert_eq!(violations(&schemas().discovery, &wrong).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_record_gives_an_incomplete_card_naming_the_questions() {
    let server = Server::start_with_keys().expect("server starts");
    let body = hook_call(
        appointment(local_treatment("microneedling"), "2026-12-01T10:00:00+01:00"),
        empty_prefetch(),
    );
    let answer = call(&server, KEY_BASE, &body).await;
    let cards = answer["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 1, "{answer:#}");
    let card = &cards[0];
    assert_eq!(card["indicator"], "warning");
    let ext = &card["extension"][EXTENSION];
    assert_eq!(ext["decision"], "incomplete");
    assert_eq!(ext["date"], "2026-12-01");
    assert_eq!(ext["ruleset"]["id"], "base");
    let missing = ext["missing_facts"].as_array().expect("missing facts");
    assert!(missing.contains(&json!("pregnant")), "{ext}");
    let detail = card["detail"].as_str().expect("detail");
    assert!(detail.contains("Are you pregnant"), "{detail}");
    assert!(card["summary"].as_str().expect("summary").chars().count() < 140);

    // The same call answered for Aurora's key comes from Aurora's overlay.
    let aurora = call(&server, KEY_AURORA, &body).await;
    assert_eq!(
        aurora["cards"][0]["extension"][EXTENSION]["ruleset"]["id"],
        "clinic-aurora"
    );

    // The 2.0-era plain array of appointments is read the same.
    let mut plain = body.clone();
    plain["context"]["appointments"] = json!([appointment(
        local_treatment("microneedling"),
        "2026-12-01T10:00:00+01:00"
    )]);
    let again = call(&server, KEY_BASE, &plain).await;
    assert_eq!(again["cards"][0]["extension"][EXTENSION]["decision"], "incomplete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_service_s_appointment_gets_no_card() {
    let server = Server::start_with_keys().expect("server starts");
    let body = hook_call(
        appointment(
            json!({"coding": [{"system": "http://snomed.info/sct", "code": "34043003", "display": "Dental consultation"}]}),
            "2026-12-01T10:00:00Z",
        ),
        empty_prefetch(),
    );
    let answer = call(&server, KEY_BASE, &body).await;
    assert_eq!(answer, json!({"cards": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_field() {
    let server = Server::start_with_keys().expect("server starts");
    let good = hook_call(
        appointment(local_treatment("microneedling"), "2026-12-01T10:00:00Z"),
        empty_prefetch(),
    );

    // Authentication: the API key as bearer token, scope `eligibility`.
    assert_eq!(post(&server, None, SERVICE, &good).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(&server, Some("eyJhbGciOiJFUzM4NCJ9.e30.sig"), SERVICE, &good).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&server, Some(KEY_BOREALIS_ADMIN), SERVICE, &good).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, p) = post(&server, Some(KEY_BASE), "/cds-services/nope", &good).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{p}");

    // No prefetch, or no procedure history: 412 (no FHIR server is called, even when named).
    let mut no_prefetch = good.clone();
    no_prefetch.as_object_mut().expect("object").remove("prefetch");
    no_prefetch["fhirServer"] = json!("https://ehr.example.org/fhir");
    let (status, p) = post(&server, Some(KEY_BASE), SERVICE, &no_prefetch).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{p}");
    assert_eq!(p["status"], 412);
    let mut no_history = good.clone();
    no_history["prefetch"]
        .as_object_mut()
        .expect("object")
        .remove("procedures");
    let (status, p) = post(&server, Some(KEY_BASE), SERVICE, &no_history).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{p}");
    let mut failed = good.clone();
    failed["prefetch"]["procedures"] = json!({"resourceType": "OperationOutcome", "issue": []});
    let (status, _) = post(&server, Some(KEY_BASE), SERVICE, &failed).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);

    // Bad fields, each named.
    let cases: Vec<(&str, Box<dyn Fn(&mut Value)>)> = vec![
        ("hook", Box::new(|b| b["hook"] = json!("order-select"))),
        ("hookInstance", Box::new(|b| b["hookInstance"] = json!("1"))),
        ("context.userId", Box::new(|b| b["context"]["userId"] = json!("someone"))),
        (
            "context.appointments",
            Box::new(|b| b["context"]["appointments"] = json!("x")),
        ),
        (
            "context.appointments.entry[0].resource.resourceType",
            Box::new(|b| {
                b["context"]["appointments"]["entry"][0]["resource"]["resourceType"] = json!("Encounter")
            }),
        ),
        (
            "context.appointments.entry[0].resource.start",
            Box::new(|b| {
                b["context"]["appointments"]["entry"][0]["resource"]["start"] = json!("soon")
            }),
        ),
        (
            "prefetch.conditions.entry[0].resource.code",
            Box::new(|b| {
                b["prefetch"]["conditions"] = json!({"resourceType": "Bundle", "entry": [
                    {"resource": {"resourceType": "Condition", "code": "pregnant"}}]})
            }),
        ),
        (
            "prefetch.patient.id",
            Box::new(|b| b["prefetch"]["patient"]["id"] = json!("someone-else")),
        ),
        (
            "prefetch.procedures.entry[0].resource.subject",
            Box::new(|b| {
                b["prefetch"]["procedures"] = json!({"resourceType": "Bundle", "entry": [
                    {"resource": {"resourceType": "Procedure", "status": "completed",
                     "subject": {"reference": "Patient/p2"}}}]})
            }),
        ),
        ("bogus", Box::new(|b| b["bogus"] = json!(1))),
    ];
    for (field, change) in cases {
        let mut body = good.clone();
        change(&mut body);
        let (status, p) = post(&server, Some(KEY_BASE), SERVICE, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {p}");
        assert!(
            problem_fields(&p).iter().any(|f| f == field),
            "{field} not named: {p:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_is_accepted_and_checked() {
    let server = Server::start_with_keys().expect("server starts");
    let path = format!("{SERVICE}/feedback");
    let good = json!({"feedback": [
        {"card": "0190a8c2-8f4e-7c3a-9d2b-3c4d5e6f7a8b", "outcome": "accepted",
         "acceptedSuggestions": [{"id": "0190a8c2-8f4e-7c3a-9d2b-3c4d5e6f7a8c"}],
         "outcomeTimestamp": "2026-12-01T09:00:00Z"},
        {"card": "0190a8c2-8f4e-7c3a-9d2b-3c4d5e6f7a8d", "outcome": "overridden",
         "overrideReason": {"reason": {"system": "http://terminology.cds-hooks.org/CodeSystem/OverrideReasons",
                                       "code": "patient-refused", "display": "Patient refused"},
                            "userComment": "discussed"},
         "outcomeTimestamp": "2026-12-01T09:01:00.5Z"}
    ]});
    assert_valid(&schemas().feedback, &good, "the feedback sent");
    let (status, _) = post(&server, Some(KEY_BASE), &path, &good).await;
    assert_eq!(status, StatusCode::OK);
    // The same feedback again: idempotent, still 200.
    assert_eq!(post(&server, Some(KEY_BASE), &path, &good).await.0, StatusCode::OK);
    assert_eq!(post(&server, None, &path, &good).await.0, StatusCode::UNAUTHORIZED);

    let mut bad = good.clone();
    bad["feedback"][0]
        .as_object_mut()
        .expect("object")
        .remove("acceptedSuggestions");
    bad["feedback"][1]["outcomeTimestamp"] = json!("2026-12-01T10:01:00+01:00");
    bad["feedback"][1]["outcome"] = json!("overridden");
    let (status, p) = post(&server, Some(KEY_BASE), &path, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        problem_fields(&p),
        vec![
            "feedback[0].acceptedSuggestions".to_owned(),
            "feedback[1].outcomeTimestamp".to_owned()
        ],
        "{p:#}"
    );
    let (status, p) = post(&server, Some(KEY_BASE), &path, &json!({"feedback": [{"card": "x", "outcome": "ignored", "outcomeTimestamp": "2026-12-01T09:00:00Z"}]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_fields(&p), vec!["feedback[0].outcome".to_owned()], "{p:#}");
}

#[allow(dead_code)]
fn _unused(_: BTreeMap<String, Value>) {}
