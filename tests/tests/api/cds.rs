//! CDS Hooks 2.0 through the real binary: discovery, the `appointment-book` call and feedback,
//! every answer (and every request sent) validated against the CDS Hooks 2.0 JSON Schemas of
//! `tests/schemas/cds-hooks` with the `jsonschema` crate; errors as problem+json naming the field;
//! and the engine's clinical scenarios replayed as hook calls whose FHIR prefetch is built from
//! each scenario's facts and history through the rule set's codes, asserting the same decisions.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use protocol_tests::{
    KEY_AURORA, KEY_BASE, KEY_BOREALIS_ADMIN, Server, ServerBuilder, workspace_root,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::common::*;

const SERVICE: &str = "/cds-services/treatment-eligibility";
const EXTENSION: &str = "org.treatment-protocol.decision";
const APPOINTMENTS: &str = "org.treatment-protocol.appointments";
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
    assert!(
        errors.is_empty(),
        "{what} is not valid: {errors:#?}\n{instance:#}"
    );
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
        appointment(
            local_treatment("microneedling"),
            "2026-12-01T10:00:00+01:00",
        ),
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
    assert_eq!(
        again["cards"][0]["extension"][EXTENSION]["decision"],
        "incomplete"
    );
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
    // No card, and the EHR can tell why: not this service's to check, with the codes it sent.
    assert_eq!(answer["cards"], json!([]), "{answer}");
    assert_eq!(
        answer["extension"][APPOINTMENTS],
        json!([{"appointment": 0, "id": "apt-1", "status": "not-ours",
                "service_type": [{"system": "http://snomed.info/sct", "code": "34043003"}]}]),
        "{answer}"
    );
}

/// A SNOMED CT code an EHR books microneedling under (issue 25: one EHR sent it). Not encoded in
/// the base (no published artefact here confirms the concept): a clinic maps it in its overlay.
const SNOMED_MICRONEEDLING: &str = "787876004";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_s_service_codes_book_its_treatments_and_a_checked_appointment_says_so() {
    let root = workspace_root().join("rulesets");
    let base = std::fs::read_to_string(root.join("base.yaml")).expect("base");
    let aurora = std::fs::read_to_string(root.join("clinics/clinic-aurora.yaml")).expect("aurora");
    let aurora = format!(
        "{aurora}\nservice_codes:\n  - {{system: \"http://snomed.info/sct\", code: \"{SNOMED_MICRONEEDLING}\", display: Microneedling of skin, treatment: microneedling}}\n  - {{system: \"https://aurora.example/services\", code: MN-60, treatment: microneedling}}\n"
    );
    let server = ServerBuilder::new()
        .with_keys()
        .with_rulesets(vec![
            ("base.yaml".into(), base),
            ("clinics/clinic-aurora.yaml".into(), aurora),
        ])
        .spawn()
        .expect("server starts");
    for (system, code) in [
        ("http://snomed.info/sct", SNOMED_MICRONEEDLING),
        ("https://aurora.example/services", "MN-60"),
    ] {
        let body = hook_call(
            appointment(
                json!({"coding": [{"system": system, "code": code}]}),
                "2026-12-01T10:00:00Z",
            ),
            empty_prefetch(),
        );
        // Aurora maps the code: checked as microneedling (an empty record: incomplete).
        let answer = call(&server, KEY_AURORA, &body).await;
        let card = &answer["cards"][0];
        assert_eq!(
            card["extension"][EXTENSION]["treatment"], "microneedling",
            "{answer}"
        );
        let entry = &answer["extension"][APPOINTMENTS][0];
        assert_eq!(
            (
                &entry["status"],
                &entry["treatment"],
                &entry["decision"],
                &entry["bookable"],
                &entry["card"]
            ),
            (
                &json!("checked"),
                &json!("microneedling"),
                &json!("incomplete"),
                &json!(false),
                &card["uuid"]
            ),
            "{answer}"
        );
        // Borealis (the base) maps no such code: not ours, said so.
        let answer = call(&server, KEY_BASE, &body).await;
        assert_eq!(answer["cards"], json!([]), "{answer}");
        assert_eq!(
            answer["extension"][APPOINTMENTS][0]["status"], "not-ours",
            "{answer}"
        );
    }
}

/// A change to a good hook call that makes it bad.
type Change = Box<dyn Fn(&mut Value)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_field() {
    let server = Server::start_with_keys().expect("server starts");
    let good = hook_call(
        appointment(local_treatment("microneedling"), "2026-12-01T10:00:00Z"),
        empty_prefetch(),
    );

    // Authentication: the API key as bearer token, scope `eligibility`.
    assert_eq!(
        post(&server, None, SERVICE, &good).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(
            &server,
            Some("eyJhbGciOiJFUzM4NCJ9.e30.sig"),
            SERVICE,
            &good
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&server, Some(KEY_BOREALIS_ADMIN), SERVICE, &good)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, p) = post(&server, Some(KEY_BASE), "/cds-services/nope", &good).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{p}");

    // No prefetch, or no procedure history: 412 (no FHIR server is called, even when named).
    let mut no_prefetch = good.clone();
    no_prefetch
        .as_object_mut()
        .expect("object")
        .remove("prefetch");
    no_prefetch["fhirServer"] = json!("https://ehr.example.org/fhir");
    let (status, p) = post(&server, Some(KEY_BASE), SERVICE, &no_prefetch).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{p}");
    assert_eq!(p["status"], 412);
    // ... and says why the server it named was not read (none may be called here).
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("was not called")
                && d.contains("https://ehr.example.org/fhir")
                && d.contains("PROTOCOL_CDS_FHIR_SERVERS")),
        "{p}"
    );
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

    // A whole record is larger than the API's 256 KiB: hook calls may hold up to 4 MiB.
    let filler = |n: usize| {
        let obs = json!({"resource": {"resourceType": "Observation", "status": "final",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}]},
            "valueQuantity": {"value": 36.6, "unit": "Cel"}, "note": [{"text": "x".repeat(20_000)}]}});
        json!({"resourceType": "Bundle", "type": "searchset", "entry": vec![obs; n]})
    };
    let mut large = good.clone();
    large["prefetch"]["observations"] = filler(60);
    let (status, p) = post(&server, Some(KEY_BASE), SERVICE, &large).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    large["prefetch"]["observations"] = filler(250);
    let (status, p) = post(&server, Some(KEY_BASE), SERVICE, &large).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("4194304")),
        "{p}"
    );

    // Intake answers are read by the engine as a request's questionnaire_response: a wrong
    // answer is named by its path in the prefetch.
    let mut intake = good.clone();
    intake["prefetch"]["intake"] = json!({"resourceType": "QuestionnaireResponse", "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "item": [{"linkId": "pregnant", "answer": [{"valueInteger": 3}]}]});
    let (status, p) = post(&server, Some(KEY_BASE), SERVICE, &intake).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{p}");
    let fields = problem_fields(&p);
    assert!(
        !fields.is_empty()
            && fields
                .iter()
                .all(|f| f.starts_with("prefetch.intake.item[0].answer[0]")),
        "{p:#}"
    );

    // Bad fields, each named.
    let cases: Vec<(&str, Change)> = vec![
        ("hook", Box::new(|b| b["hook"] = json!("order-select"))),
        ("hookInstance", Box::new(|b| b["hookInstance"] = json!("1"))),
        (
            "context.userId",
            Box::new(|b| b["context"]["userId"] = json!("someone")),
        ),
        (
            "context.appointments",
            Box::new(|b| b["context"]["appointments"] = json!("x")),
        ),
        // More appointments than the door's cap on one call's checks (as a batch).
        (
            "context.appointments",
            Box::new(|b| {
                let one = b["context"]["appointments"]["entry"][0].clone();
                b["context"]["appointments"]["entry"] = json!(vec![one; 101]);
            }),
        ),
        (
            "context.appointments.entry[0].resource.resourceType",
            Box::new(|b| {
                b["context"]["appointments"]["entry"][0]["resource"]["resourceType"] =
                    json!("Encounter")
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
        // Issue 26: not provably about the hook's patient (another patient's pregnancy decided a
        // booking): an absolute URL on no server of the call, an identifier alone, no subject.
        (
            "prefetch.observations.entry[0].resource.subject",
            Box::new(|b| {
                b["prefetch"]["observations"] = json!({"resourceType": "Bundle", "entry": [
                    {"resource": {"resourceType": "Observation", "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
                     "subject": {"reference": "https://other-ehr.example/fhir/Patient/p1"}}}]})
            }),
        ),
        (
            "prefetch.observations.entry[0].resource.subject",
            Box::new(|b| {
                b["prefetch"]["observations"] = json!({"resourceType": "Bundle", "entry": [
                    {"resource": {"resourceType": "Observation", "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
                     "subject": {"identifier": {"system": "urn:mrn", "value": "123"}}}}]})
            }),
        ),
        (
            "prefetch.observations.entry[0].resource.subject",
            Box::new(|b| {
                b["prefetch"]["observations"] = json!({"resourceType": "Bundle", "entry": [
                    {"resource": {"resourceType": "Observation", "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]}}}]})
            }),
        ),
        ("bogus", Box::new(|b| b["bogus"] = json!(1))),
        (
            "context.appointments",
            Box::new(|b| {
                let one = b["context"]["appointments"]["entry"][0].clone();
                b["context"]["appointments"]["entry"] = json!(vec![one; 101]);
            }),
        ),
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
    assert_eq!(
        post(&server, Some(KEY_BASE), &path, &good).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&server, None, &path, &good).await.0,
        StatusCode::UNAUTHORIZED
    );

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
    assert_eq!(
        problem_fields(&p),
        vec!["feedback[0].outcome".to_owned()],
        "{p:#}"
    );
}

// ---- the clinical scenarios through CDS Hooks ---------------------------------------------------

const LOINC: &str = "http://loinc.org";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const ATC: &str = "http://www.whocc.no/atc";

/// A scenario file (the subset of `services/engine/src/scenario.rs`'s format read here).
#[derive(Debug, serde::Deserialize)]
struct Case {
    name: String,
    ruleset: String,
    check: String,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    facts: serde_json::Map<String, Value>,
    #[serde(default)]
    unset: Vec<String>,
    request: serde_json::Map<String, Value>,
    #[serde(default)]
    want: Option<serde_json::Map<String, Value>>,
}

/// A rule set's codes, read from what the server publishes to the key's clinic.
struct Coded {
    /// Fact id → (type, codes).
    facts: BTreeMap<String, (String, Vec<(String, String)>)>,
    procedures: BTreeMap<String, Vec<(String, String)>>,
    zones: BTreeMap<String, Vec<(String, String)>>,
    indications: BTreeMap<String, Vec<(String, String)>>,
    treatments: BTreeMap<String, Vec<(String, String)>>,
}

fn codes_of(v: &Value) -> Vec<(String, String)> {
    v["codes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["system"].as_str().unwrap_or_default().to_owned(),
                        c["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn get_json(server: &Server, key: &str, path: &str) -> Value {
    let res = http()
        .get(server.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.json().await.expect("json")
}

async fn coded(server: &Server, key: &str) -> Coded {
    let facts = get_json(server, key, "/v1/facts").await;
    let catalogue = get_json(server, key, "/v1/catalogue").await;
    let treatments = get_json(server, key, "/v1/treatments").await;
    let named = |list: &Value, id: &str| -> BTreeMap<String, Vec<(String, String)>> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|x| (x[id].as_str().unwrap_or_default().to_owned(), codes_of(x)))
            .collect()
    };
    Coded {
        facts: facts["facts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                (
                    f["id"].as_str().unwrap_or_default().to_owned(),
                    (
                        f["type"].as_str().unwrap_or_default().to_owned(),
                        codes_of(f),
                    ),
                )
            })
            .collect(),
        procedures: named(&catalogue["procedures"], "id"),
        zones: named(&catalogue["zones"], "id"),
        indications: named(&catalogue["indications"], "id"),
        treatments: named(&treatments["treatments"], "code"),
    }
}

fn cc(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn status(code: &str, system: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

const CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const ALLERGY_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";

/// A yes/no finding as a Condition: active and confirmed, or refuted.
fn condition(system: &str, code: &str, yes: bool) -> Value {
    let (clinical, verification) = if yes {
        ("active", "confirmed")
    } else {
        ("inactive", "refuted")
    };
    json!({
        "resourceType": "Condition",
        "clinicalStatus": status(clinical, CLINICAL),
        "verificationStatus": status(verification, VERIFICATION),
        "code": cc(system, code),
        "subject": {"reference": "Patient/p1"},
    })
}

/// How one fact's answer travels as FHIR, through its codes: `Err` when it cannot.
fn fact_resource(
    id: &str,
    kind: &str,
    codes: &[(String, String)],
    shared: &BTreeMap<(String, String), usize>,
    value: &Value,
) -> Result<(&'static str, Value), String> {
    // A code of this fact alone, when there is one: a shared code answers its other facts too.
    let (system, code) = codes
        .iter()
        .find(|c| shared.get(*c) == Some(&1))
        .or_else(|| codes.first())
        .ok_or_else(|| format!("fact `{id}` has no code"))?;
    let (system, code) = (system.as_str(), code.as_str());
    let medication = system == RXNORM || system == ATC;
    let subject = json!({"reference": "Patient/p1"});
    Ok(match (kind, value) {
        ("bool", Value::Bool(yes)) if id.ends_with("_allergy") => {
            let (clinical, verification) = if *yes {
                ("active", "confirmed")
            } else {
                ("inactive", "refuted")
            };
            (
                "allergies",
                json!({"resourceType": "AllergyIntolerance",
                       "clinicalStatus": status(clinical, ALLERGY_CLINICAL),
                       "verificationStatus": status(verification, ALLERGY_VERIFICATION),
                       "code": cc(system, code), "patient": subject}),
            )
        }
        ("bool", Value::Bool(yes)) if medication => (
            "medicationStatements",
            json!({"resourceType": "MedicationStatement",
                   "status": if *yes { "active" } else { "not-taken" },
                   "medicationCodeableConcept": cc(system, code), "subject": subject}),
        ),
        ("bool", Value::Bool(yes)) if system == LOINC => (
            "observations",
            json!({"resourceType": "Observation", "status": "final", "code": cc(system, code),
                   "valueBoolean": yes, "subject": subject}),
        ),
        ("bool", Value::Bool(true)) if id.ends_with("_history") => {
            let mut c = condition(system, code, true);
            c["clinicalStatus"] = status("resolved", CLINICAL);
            ("conditions", c)
        }
        ("bool", Value::Bool(yes)) => ("conditions", condition(system, code, *yes)),
        ("date", Value::String(d)) if medication => (
            "medicationStatements",
            json!({"resourceType": "MedicationStatement", "status": "completed",
                   "medicationCodeableConcept": cc(system, code),
                   "effectivePeriod": {"end": d}, "subject": subject}),
        ),
        ("date", Value::String(d)) => (
            "observations",
            json!({"resourceType": "Observation", "status": "final", "code": cc(system, code),
                   "valueDateTime": d, "subject": subject}),
        ),
        ("integer", Value::Number(n)) => (
            "observations",
            json!({"resourceType": "Observation", "status": "final", "code": cc(system, code),
                   "valueInteger": n, "subject": subject}),
        ),
        ("enum", Value::String(v)) if v == "none" => ("conditions", condition(system, code, false)),
        ("enum", Value::String(v)) => (
            "observations",
            json!({"resourceType": "Observation", "status": "final", "code": cc(system, code),
                   "valueString": v, "subject": subject}),
        ),
        _ => return Err(format!("fact `{id}` = {value} has no FHIR form here")),
    })
}

/// A fact's answer as an item of the intake QuestionnaireResponse (linkId = fact id; a date's
/// "never" is its gate `<fact>.null_means` answered yes).
fn intake_item(id: &str, kind: &str, value: &Value) -> Value {
    match (kind, value) {
        ("bool", v) => json!({"linkId": id, "answer": [{"valueBoolean": v}]}),
        ("integer", v) => json!({"linkId": id, "answer": [{"valueInteger": v}]}),
        ("enum", v) => json!({"linkId": id, "answer": [{"valueCoding": {
            "system": format!("urn:treatment-protocol:answer:{id}"), "code": v}}]}),
        ("date", Value::Null) => {
            json!({"linkId": format!("{id}.null_means"), "answer": [{"valueBoolean": true}]})
        }
        (_, v) => json!({"linkId": id, "answer": [{"valueDate": v}]}),
    }
}

/// The hook call of an eligibility scenario, or why it cannot be carried; with the facts only
/// the intake questionnaire carried (no code) and whether the treatment went by the clinic's
/// local code.
struct Built {
    body: Value,
    by_intake: Vec<String>,
    local_treatment: bool,
}

fn build(case: &Case, facts: &serde_json::Map<String, Value>, c: &Coded) -> Result<Built, String> {
    let req = &case.request;
    if req.contains_key("role") {
        return Err("`role` has no place in an Appointment here".into());
    }
    let mut shared: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (_, codes) in c.facts.values() {
        for code in codes {
            *shared.entry(code.clone()).or_default() += 1;
        }
    }
    let mut prefetch: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut patient = json!({"resourceType": "Patient", "id": "p1"});
    let mut by_intake = Vec::new();
    let mut intake = Vec::new();
    for (id, value) in facts {
        if id == "date_of_birth" {
            patient["birthDate"] = value.clone();
            continue;
        }
        let (kind, codes) = c
            .facts
            .get(id)
            .ok_or_else(|| format!("fact `{id}` is not declared"))?;
        match fact_resource(id, kind, codes, &shared, value) {
            Ok((key, resource)) => prefetch.entry(key).or_default().push(resource),
            Err(_) => {
                by_intake.push(id.clone());
                intake.push(intake_item(id, kind, value));
            }
        }
    }
    for h in req
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let procedure = h["procedure"].as_str().unwrap_or_default();
        let code = match c.procedures.get(procedure).and_then(|p| p.first()) {
            Some((s, c)) => cc(s, c),
            None if c.treatments.contains_key(procedure) => cc(TREATMENT_SYSTEM, procedure),
            None => return Err(format!("procedure `{procedure}` has no code")),
        };
        prefetch.entry("procedures").or_default().push(json!({
            "resourceType": "Procedure", "status": "completed", "code": code,
            "performedDateTime": h["date"], "subject": {"reference": "Patient/p1"},
        }));
    }
    let treatment = req["treatment"].as_str().unwrap_or_default();
    let (service_type, local_treatment) = match c.treatments.get(treatment).and_then(|t| t.first())
    {
        Some((s, code)) => (cc(s, code), false),
        None => (local_treatment(treatment), true),
    };
    let date = req["date"].as_str().unwrap_or_default();
    let mut appt = appointment(service_type, &format!("{date}T10:00:00+01:00"));
    if let Some(zones) = req.get("zones").and_then(Value::as_array) {
        let sites = zones
            .iter()
            .map(|z| {
                let z = z.as_str().unwrap_or_default();
                c.zones
                    .get(z)
                    .and_then(|codes| codes.first())
                    .map(|(s, code)| cc(s, code))
                    .ok_or_else(|| format!("zone `{z}` has no code"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if sites.is_empty() {
            return Err("an empty zone list has no FHIR form".into());
        }
        appt["basedOn"] = json!([{"reference": "#sr"}]);
        appt["contained"] = json!([{"resourceType": "ServiceRequest", "id": "sr", "status": "draft",
            "intent": "proposal", "subject": {"reference": "Patient/p1"}, "bodySite": sites}]);
    }
    if let Some(device) = req.get("device").and_then(Value::as_str) {
        appt["participant"]
            .as_array_mut()
            .expect("participants")
            .push(
                json!({"actor": {"reference": format!("Device/{device}")}, "status": "accepted"}),
            );
    }
    if let Some(ind) = req.get("indication").and_then(Value::as_str) {
        let (s, code) = c
            .indications
            .get(ind)
            .and_then(|codes| codes.first())
            .ok_or_else(|| format!("indication `{ind}` has no code"))?;
        appt["reasonCode"] = json!([cc(s, code)]);
    }
    let mut pf = json!({"patient": patient});
    for (key, _) in [
        ("conditions", ()),
        ("allergies", ()),
        ("medicationStatements", ()),
        ("medicationRequests", ()),
        ("procedures", ()),
        ("observations", ()),
    ] {
        pf[key] = bundle(prefetch.remove(key).unwrap_or_default());
    }
    pf["intake"] = if intake.is_empty() {
        Value::Null
    } else {
        json!({"resourceType": "QuestionnaireResponse", "status": "completed",
               "authored": "2026-11-01T09:00:00Z", "subject": {"reference": "Patient/p1"},
               "item": intake})
    };
    Ok(Built {
        body: hook_call(appt, pf),
        by_intake,
        local_treatment,
    })
}

fn strings(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinical_scenarios_replayed_through_cds_hooks_decide_the_same() {
    let server = Server::start_with_keys().expect("server starts");
    let root = workspace_root().join("services/engine/tests/cases");
    let clients: BTreeMap<String, serde_json::Map<String, Value>> = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("clients.yaml")).expect("clients"),
    )
    .expect("clients parse");
    let base = coded(&server, KEY_BASE).await;
    let aurora = coded(&server, KEY_AURORA).await;

    let mut files = Vec::new();
    for dir in ["eligibility", "overlay"] {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("cases dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        files.extend(entries);
    }
    let (mut asked, mut carried, mut local, mut codes_alone, mut decided_by_codes) =
        (0, 0, 0, 0, 0);
    let mut intake_facts: BTreeMap<String, usize> = BTreeMap::new();
    let mut not_carried: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for path in files {
        let case: Case =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).expect("case")).expect("parse");
        let Some(want) = case.want.as_ref() else {
            continue; // a refusal scenario: the REST tests check it
        };
        if case.check != "eligibility" {
            continue;
        }
        asked += 1;
        let mut facts = case
            .client
            .as_ref()
            .and_then(|c| clients.get(c).cloned())
            .unwrap_or_default();
        facts.extend(case.facts.clone());
        for f in &case.unset {
            facts.remove(f);
        }
        let (key, codes) = if case.ruleset == "base" {
            (KEY_BASE, &base)
        } else {
            (KEY_AURORA, &aurora)
        };
        let built = match build(&case, &facts, codes) {
            Ok(b) => b,
            Err(why) => {
                not_carried.push(format!("{}: {why}", case.name));
                continue;
            }
        };
        let answer = call(&server, key, &built.body).await;
        let cards = answer["cards"].as_array().cloned().unwrap_or_default();
        let ext = cards
            .first()
            .map(|c| c["extension"][EXTENSION].clone())
            .unwrap_or_else(|| json!({"decision": "eligible", "bookable": true}));
        carried += 1;
        codes_alone += usize::from(built.by_intake.is_empty());
        // Without the intake answers (the coded record alone): the same decision?
        let mut coded_only = built.body.clone();
        coded_only["prefetch"]["intake"] = Value::Null;
        let alone = call(&server, key, &coded_only).await;
        let alone = alone["cards"][0]["extension"][EXTENSION]["decision"]
            .as_str()
            .unwrap_or("eligible")
            .to_owned();
        decided_by_codes += usize::from(ext["decision"].as_str() == Some(alone.as_str()));
        for f in &built.by_intake {
            *intake_facts.entry(f.clone()).or_default() += 1;
        }
        local += usize::from(built.local_treatment);
        assert!(
            cards.len() <= 1,
            "{}: one card per appointment: {answer:#}",
            case.name
        );
        let mut wrong = Vec::new();
        for (k, w) in want {
            let ok = match k.as_str() {
                "decision" | "earliest_date" | "bookable" => {
                    ext.get(k.as_str()).unwrap_or(&Value::Null) == w
                }
                "fired" => strings(w) == strings(&ext["rules"]),
                "missing_facts" | "missing_inputs" => strings(w) == strings(&ext[k.as_str()]),
                other => panic!("{}: unknown expectation key {other}", case.name),
            };
            if !ok {
                let key = if k == "fired" { "rules" } else { k.as_str() };
                wrong.push(format!(
                    "{k}: want {w}, got {}",
                    ext.get(key).unwrap_or(&Value::Null)
                ));
            }
        }
        if let Some(card) = cards.first() {
            let indicator = match ext["decision"].as_str().unwrap_or_default() {
                "contraindicated" => "critical",
                "eligible_with_precautions" => "info",
                _ => "warning",
            };
            if card["indicator"] != indicator {
                wrong.push(format!(
                    "indicator {} for {}",
                    card["indicator"], ext["decision"]
                ));
            }
            if ext["decision"] == "deferred" && ext.get("earliest_date").is_some() {
                let moved = &card["suggestions"][0]["actions"][0]["resource"]["start"];
                let want_start = format!(
                    "{}T10:00:00+01:00",
                    ext["earliest_date"].as_str().unwrap_or_default()
                );
                if moved != &json!(want_start) || card["selectionBehavior"] != "at-most-one" {
                    wrong.push(format!("rebooking suggestion: {card}"));
                }
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", case.name, wrong.join("; ")));
        }
    }
    println!(
        "CDS Hooks replay: {carried} of {asked} eligibility scenarios carried through FHIR \
         prefetch, {codes_alone} of them by standard codes alone, the others with intake \
         answers (QuestionnaireResponse) for facts without a code; {decided_by_codes} decide \
         the same from the coded record alone (intake answers left out: unknown); {local} \
         booked by the clinic's local treatment code; {} not carried:",
        not_carried.len()
    );
    println!("  facts carried by intake answers (scenarios): {intake_facts:?}");
    for n in &not_carried {
        println!("  not carried: {n}");
    }
    assert!(
        failures.is_empty(),
        "decisions differ through CDS Hooks:\n{}",
        failures.join("\n")
    );
    assert!(
        carried * 10 >= asked * 8,
        "only {carried} of {asked} scenarios carried:\n{}",
        not_carried.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_call_answers_as_documented() {
    let server = Server::start_with_keys().expect("server starts");
    let path = workspace_root().join("docs/examples/cds-appointment-book.json");
    let body: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("example")).expect("JSON");
    let answer = call(&server, KEY_BASE, &body).await;
    let card = &answer["cards"][0];
    assert_eq!(
        answer["cards"].as_array().map(Vec::len),
        Some(1),
        "{answer:#}"
    );
    assert_eq!(card["indicator"], "warning");
    let ext = &card["extension"][EXTENSION];
    assert_eq!(ext["decision"], "deferred");
    assert_eq!(ext["earliest_date"], "2027-03-01");
    assert_eq!(
        strings(&ext["rules"]),
        strings(&json!([
            "isotretinoin_washout",
            "isotretinoin_recent_signoff"
        ]))
    );
    // Every fact answered by the record or the intake questionnaire: none missing.
    assert!(ext.get("missing_facts").is_none(), "{ext}");
    assert_eq!(
        card["uuid"],
        card["detail"]
            .as_str()
            .map(|d| {
                d.rsplit("decision `")
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches("`.")
                    .to_owned()
            })
            .map(Value::from)
            .unwrap_or_default()
    );
    assert_eq!(card["source"]["topic"]["code"], "isotretinoin_washout");
    assert!(
        card["source"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );
    assert_eq!(card["selectionBehavior"], "at-most-one");
    let action = &card["suggestions"][0]["actions"][0];
    assert_eq!(action["type"], "update");
    assert_eq!(action["resource"]["id"], "apt-1");
    assert_eq!(action["resource"]["start"], "2027-03-01T10:00:00+01:00");
    assert_eq!(action["resource"]["end"], "2027-03-01T11:00:00+01:00");

    // Pregnant on the record: contraindicated, a critical card.
    let mut pregnant = body.clone();
    pregnant["prefetch"]["conditions"] = json!({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "Condition", "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "77386006", "display": "Pregnant"}]}}}]});
    let answer = call(&server, KEY_BASE, &pregnant).await;
    assert_eq!(answer["cards"][0]["indicator"], "critical", "{answer:#}");
    assert_eq!(
        answer["cards"][0]["extension"][EXTENSION]["decision"],
        "contraindicated"
    );
    let detail = answer["cards"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("disagrees about `pregnant`"), "{detail}");

    // The same appointment twice in one Bundle: one card each, each its own decision.
    let mut two = body.clone();
    let entry = two["context"]["appointments"]["entry"][0].clone();
    two["context"]["appointments"]["entry"] = json!([entry.clone(), entry]);
    let answer = call(&server, KEY_BASE, &two).await;
    let cards = answer["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 2);
    assert_ne!(cards[0]["uuid"], cards[1]["uuid"]);
    // Two sessions proposed 10 days apart: each is booked for the other, so each card names the
    // minimum interval between sessions (waits hold in both orders; issue 22).
    let mut apart = body.clone();
    let mut later = entry.clone();
    later["resource"]["id"] = json!("apt-2");
    later["resource"]["start"] = json!("2026-12-11T10:00:00+01:00");
    later["resource"]["end"] = json!("2026-12-11T11:00:00+01:00");
    apart["context"]["appointments"]["entry"] = json!([entry.clone(), later]);
    let answer = call(&server, KEY_BASE, &apart).await;
    let cards = answer["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 2, "{answer:#}");
    for card in cards {
        let rules = strings(&card["extension"][EXTENSION]["rules"]);
        assert!(
            rules.iter().any(|r| r.ends_with(".min_interval")),
            "each session sees the other: {rules:?}"
        );
    }
    // Alone, the first is held by the record's waits only (no interval rule).
    let alone = call(&server, KEY_BASE, &body).await;
    assert!(
        !strings(&alone["cards"][0]["extension"][EXTENSION]["rules"])
            .iter()
            .any(|r| r.ends_with(".min_interval")),
        "{alone:#}"
    );
    // A cancelled appointment is not checked (the schema wants `proposed`, so it is posted as is).
    two["context"]["appointments"]["entry"][1]["resource"]["status"] = json!("cancelled");
    let (status, answer) = post(&server, Some(KEY_BASE), SERVICE, &two).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["cards"].as_array().map(Vec::len),
        Some(1),
        "{answer:#}"
    );
}

// ---- completing the prefetch from the EHR's FHIR server ----------------------------------------

/// A small real FHIR server (axum on a free port) holding the example's record: reads and
/// searches answered from it, the procedure search in two pages, every request needing the
/// access token. Returns its base URL and the paths it was asked for.
async fn fhir_server(record: Value) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode as Status};
    use axum::routing::get;

    type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;
    let seen: Seen = Seen::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/fhir", listener.local_addr().expect("addr"));
    let state = (record, seen.clone(), base.clone());
    async fn search(
        State((record, seen, base)): State<(Value, Seen, String)>,
        Path(kind): Path<String>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
    ) -> Result<axum::Json<Value>, Status> {
        let query = query.unwrap_or_default();
        seen.lock().expect("lock").push(format!("{kind}?{query}"));
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer ehr-token-1")
        {
            return Err(Status::UNAUTHORIZED);
        }
        let key = match kind.as_str() {
            "Condition" => "conditions",
            "AllergyIntolerance" => "allergies",
            "MedicationStatement" => "medicationStatements",
            "MedicationRequest" => "medicationRequests",
            "Procedure" => "procedures",
            "Observation" => "observations",
            "QuestionnaireResponse" => "intake",
            _ => return Err(Status::NOT_FOUND),
        };
        let found = &record[key];
        let entries = match found.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => found["entry"].clone(),
            Some(_) => json!([{"resource": found}]),
            None => json!([]),
        };
        // The procedures in two pages: the first empty, with a link to the second.
        if key == "procedures" && !query.contains("page=2") {
            return Ok(axum::Json(
                json!({"resourceType": "Bundle", "type": "searchset", "entry": [],
                "link": [{"relation": "next", "url": format!("{base}/Procedure?{query}&page=2")}]}),
            ));
        }
        Ok(axum::Json(
            json!({"resourceType": "Bundle", "type": "searchset", "entry": entries}),
        ))
    }
    async fn read(
        State((record, seen, _)): State<(Value, Seen, String)>,
        Path((kind, id)): Path<(String, String)>,
        headers: HeaderMap,
    ) -> Result<axum::Json<Value>, Status> {
        seen.lock().expect("lock").push(format!("{kind}/{id}"));
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer ehr-token-1")
        {
            return Err(Status::UNAUTHORIZED);
        }
        match (kind.as_str(), record["patient"]["id"].as_str()) {
            ("Patient", Some(p)) if p == id => Ok(axum::Json(record["patient"].clone())),
            _ => Err(Status::NOT_FOUND),
        }
    }
    let app = axum::Router::new()
        .route("/fhir/{kind}", get(search))
        .route("/fhir/{kind}/{id}", get(read))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_not_prefetched_is_read_from_an_allowed_fhir_server() {
    let path = workspace_root().join("docs/examples/cds-appointment-book.json");
    let mut body: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("example")).expect("JSON");
    let record = body["prefetch"].clone();
    let (base, seen) = fhir_server(record).await;
    let server = protocol_tests::ServerBuilder::new()
        .with_keys()
        .env("PROTOCOL_CDS_FHIR_SERVERS", &format!("{base}/"))
        .spawn()
        .expect("server starts");
    body.as_object_mut().expect("object").remove("prefetch");
    body["fhirServer"] = json!(base);
    body["fhirAuthorization"] = json!({"access_token": "ehr-token-1", "token_type": "Bearer",
        "expires_in": 300, "scope": "patient/*.read", "subject": "treatment-eligibility"});
    let answer = call(&server, KEY_BASE, &body).await;
    let ext = &answer["cards"][0]["extension"][EXTENSION];
    assert_eq!(ext["decision"], "deferred", "{answer:#}");
    assert_eq!(ext["earliest_date"], "2027-03-01");
    assert!(ext.get("missing_facts").is_none(), "{ext}");
    let asked = seen.lock().expect("lock").clone();
    assert!(asked.contains(&"Patient/p1".to_owned()), "{asked:?}");
    assert!(
        asked
            .iter()
            .any(|a| a.starts_with("Procedure?patient=p1") && a.ends_with("page=2")),
        "the second page was not followed: {asked:?}"
    );
    assert_eq!(
        asked.len(),
        9,
        "one request per prefetch key, two pages of procedures: {asked:?}"
    );

    // What was prefetched is not fetched again.
    seen.lock().expect("lock").clear();
    body["prefetch"] = json!({"procedures": null});
    let answer = call(&server, KEY_BASE, &body).await;
    assert_eq!(
        answer["cards"][0]["extension"][EXTENSION]["decision"],
        "deferred"
    );
    assert!(
        !seen
            .lock()
            .expect("lock")
            .iter()
            .any(|a| a.starts_with("Procedure"))
    );

    // A wrong token: nothing can be read, so no procedure history: 412.
    body["fhirAuthorization"]["access_token"] = json!("stolen");
    body.as_object_mut().expect("object").remove("prefetch");
    let (status, p) = post(&server, Some(KEY_BASE), SERVICE, &body).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{p}");

    // A server the operator did not allow is never called.
    seen.lock().expect("lock").clear();
    body["fhirAuthorization"]["access_token"] = json!("ehr-token-1");
    body["fhirServer"] = json!(base.replace("/fhir", "/other"));
    let (status, p) = post(&server, Some(KEY_BASE), SERVICE, &body).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(seen.lock().expect("lock").is_empty());
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("is not one this service may call")),
        "the 412 says the server was not allowed: {p}"
    );

    // A prefetched search with more pages is not a whole history: 412.
    let mut paged = body.clone();
    paged["fhirServer"] = json!(base.replace("/fhir", "/other"));
    paged["prefetch"] = json!({"procedures": {"resourceType": "Bundle", "type": "searchset", "entry": [],
        "link": [{"relation": "next", "url": "https://ehr.example.org/fhir/Procedure?page=2"}]}});
    let (status, _) = post(&server, Some(KEY_BASE), SERVICE, &paged).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

/// Issue 26: a clinic's FHIR server is that clinic's only: another clinic's key cannot make the
/// service read it (and its auditor then read the other clinic's data in the decision log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_s_fhir_server_is_never_read_for_another_clinic() {
    let path = workspace_root().join("docs/examples/cds-appointment-book.json");
    let mut body: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("example")).expect("JSON");
    let record = body["prefetch"].clone();
    let (base, seen) = fhir_server(record).await;
    let server = protocol_tests::ServerBuilder::new()
        .with_keys()
        .env(
            "PROTOCOL_CDS_FHIR_SERVERS",
            &format!("clinic-borealis={base}"),
        )
        .spawn()
        .expect("server starts");
    body.as_object_mut().expect("object").remove("prefetch");
    body["fhirServer"] = json!(base);
    body["fhirAuthorization"] = json!({"access_token": "ehr-token-1", "token_type": "Bearer",
        "expires_in": 300, "scope": "patient/*.read", "subject": "treatment-eligibility"});
    // Aurora's key: Borealis's server is not one it may have read.
    let (status, p) = post(&server, Some(KEY_AURORA), SERVICE, &body).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{p}");
    assert!(
        seen.lock().expect("lock").is_empty(),
        "called for another clinic"
    );
    // Borealis's own key: read.
    let answer = call(&server, KEY_BASE, &body).await;
    assert_eq!(
        answer["cards"][0]["extension"][EXTENSION]["decision"], "deferred",
        "{answer:#}"
    );
    assert!(!seen.lock().expect("lock").is_empty());
}
