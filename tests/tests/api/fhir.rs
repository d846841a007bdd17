//! Issue 15 §2 and §4 through the real binary: `GET /fhir/Questionnaire/{ruleset}` served like
//! `/v1/facts` (scope, tenant, `?clinic=`, `ETag`), and a QuestionnaireResponse built from that
//! Questionnaire deciding exactly as the same answers sent as `facts`, over REST and gRPC, with
//! faults naming the item and `facts` + response refused as `422` naming both.
//! (FHIR's own models validate the same resources in `tests/tests/fhir.rs`.)

use protocol_tests::{KEY_AURORA, KEY_BASE, KEY_ELIGIBILITY_ONLY, Server, pb};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::common::*;
use protocol_tests::fhir::response_to;

async fn get(server: &Server, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = http().get(server.url(path));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.expect("send")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_questionnaire_is_served_as_fhir_json_with_an_etag() {
    let server = Server::start().expect("server starts");
    let res = get(&server, "/fhir/Questionnaire/base", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/fhir+json");
    let etag = res.headers()["etag"].to_str().expect("etag").to_owned();
    let q: Value = res.json().await.expect("json");
    assert_eq!(q["resourceType"], "Questionnaire");
    assert_eq!(q["id"], "base");
    assert_eq!(q["status"], "active");
    let facts: Value = get(&server, "/v1/facts", None)
        .await
        .json()
        .await
        .expect("facts");
    let pregnant = q["item"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["linkId"] == "pregnant"))
        .expect("pregnant item");
    let fact = facts["facts"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == "pregnant"))
        .expect("pregnant fact");
    assert_eq!(pregnant["text"], fact["question"]);
    assert_eq!(pregnant["code"], fact["codes"]);
    assert_eq!(
        q["digest"]
            .as_str()
            .or(q["identifier"][0]["value"].as_str()),
        facts["ruleset"]["digest"].as_str()
    );

    let again = http()
        .get(server.url("/fhir/Questionnaire/base"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Errors on the FHIR base are OperationOutcomes, with the problem's reason and instance.
    let res = get(&server, "/fhir/Questionnaire/nope", None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let outcome = operation_outcome(res).await;
    assert_eq!(outcome["issue"][0]["code"], "not-found", "{outcome}");
    assert_eq!(outcome_reason(&outcome), "NOT_FOUND", "{outcome}");
    let res = get(&server, "/fhir/Questionnaire/base?color=red", None).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let outcome = operation_outcome(res).await;
    assert_eq!(outcome["issue"][0]["code"], "invalid", "{outcome}");
    assert_eq!(outcome["issue"][1]["expression"][0], "color", "{outcome}");
    // Paths and methods the FHIR base does not serve, too.
    let res = get(&server, "/fhir/Patient/1", None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        operation_outcome(res).await["issue"][0]["code"],
        "not-found"
    );
    let res = http()
        .delete(server.url("/fhir/Questionnaire/base"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        operation_outcome(res).await["issue"][0]["code"],
        "not-supported"
    );
    let open_clinic = get(
        &server,
        "/fhir/Questionnaire/clinic-aurora?clinic=clinic-aurora",
        None,
    )
    .await;
    assert_eq!(
        open_clinic.status(),
        StatusCode::OK,
        "an open server holds platform"
    );
    let aurora: Value = open_clinic.json().await.expect("json");
    assert_eq!(aurora["id"], "clinic-aurora");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_key_reads_its_own_clinic_questionnaire_only() {
    let server = Server::start_with_keys().expect("server starts");
    let res = get(&server, "/fhir/Questionnaire/base", None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let outcome = operation_outcome(res).await;
    assert_eq!(outcome_reason(&outcome), "API_KEY_MISSING", "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "login");
    // A read answers the resource with the id asked, or refuses it: Aurora is checked against
    // its overlay's questions, so the base's id is refused, naming the id to read.
    for path in [
        "/fhir/Questionnaire/clinic-aurora",
        "/fhir/Questionnaire/clinic-aurora?clinic=clinic-aurora",
    ] {
        let res = get(&server, path, Some(KEY_ELIGIBILITY_ONLY)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let q: Value = res.json().await.expect("json");
        assert_eq!(q["id"], "clinic-aurora", "{path}");
        assert_eq!(
            q["url"],
            "urn:treatment-protocol:questionnaire:clinic-aurora"
        );
    }
    for path in [
        "/fhir/Questionnaire/base",
        "/fhir/Questionnaire/base?clinic=clinic-aurora",
    ] {
        let res = get(&server, path, Some(KEY_ELIGIBILITY_ONLY)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let outcome = operation_outcome(res).await;
        assert!(
            outcome["issue"][0]["diagnostics"]
                .as_str()
                .is_some_and(|d| d.contains("Questionnaire/clinic-aurora")),
            "{path}: {outcome}"
        );
    }
    let res = get(
        &server,
        "/fhir/Questionnaire/base?clinic=clinic-borealis",
        Some(KEY_AURORA),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let outcome = operation_outcome(res).await;
    assert_eq!(outcome_reason(&outcome), "SCOPE_MISSING", "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "forbidden");
    // Borealis has no overlay: its key is served the base.
    let q: Value = get(&server, "/fhir/Questionnaire/base", Some(KEY_BASE))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(q["id"], "base");
    let res = get(&server, "/fhir/Questionnaire/clinic-aurora", Some(KEY_BASE)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_decides_as_the_same_facts_over_rest_and_grpc() {
    let server = Server::start().expect("server starts");
    let q: Value = get(&server, "/fhir/Questionnaire/base", None)
        .await
        .json()
        .await
        .expect("json");
    let facts = healthy_facts();
    let response = response_to(&q, &facts);
    let by_facts =
        json!({"treatment": "microneedling", "date": "2026-12-01", "facts": facts, "history": []});
    let by_response = json!({"treatment": "microneedling", "date": "2026-12-01", "questionnaire_response": response, "history": []});
    let post = |body: Value| {
        let url = server.url("/v1/eligibility");
        async move {
            let res = http().post(url).json(&body).send().await.expect("send");
            assert_eq!(res.status(), StatusCode::OK);
            let mut v: Value = res.json().await.expect("json");
            v.as_object_mut().map(|o| o.remove("decision_id"));
            v
        }
    };
    let a = post(by_facts.clone()).await;
    let b = post(by_response.clone()).await;
    assert_eq!(a, b, "the same answers, the same decision");
    assert_eq!(a["decision"], "eligible");

    let res = http()
        .post(server.url("/v1/contraindications:check"))
        .json(&json!({"questionnaire_response": response_to(&q, &json!({"pregnant": true}))}))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let report: Value = res.json().await.expect("json");
    let microneedling = report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|o| o["treatment"] == "microneedling"))
        .expect("microneedling");
    assert_eq!(microneedling["decision"], "contraindicated");

    let mut client = server.grpc().await.expect("grpc");
    let by_grpc = client
        .check_eligibility(eligibility_pb(&by_response))
        .await
        .expect("CheckEligibility")
        .into_inner();
    assert_eq!(decision_name(by_grpc.decision), "eligible");
    let grpc_facts = client
        .check_eligibility(eligibility_pb(&by_facts))
        .await
        .expect("CheckEligibility")
        .into_inner();
    assert_eq!(by_grpc.missing_facts, grpc_facts.missing_facts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_name_the_item_and_both_forms_are_422_naming_both() {
    let server = Server::start().expect("server starts");
    let bad = json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
        {"linkId": "pregnant", "answer": [{"valueBoolean": false}]},
        {"linkId": "fitzpatrick", "answer": [{"valueInteger": 3}]},
        {"linkId": "rosacea", "answer": [{"valueString": "none"}]},
        {"linkId": "fitzpatrick", "answer": [{"valueInteger": 7}]},
    ]});
    let body = json!({"treatment": "microneedling", "date": "2026-12-01", "questionnaire_response": bad, "history": []});
    let res = http()
        .post(server.url("/v1/eligibility"))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let problem: Value = res.json().await.expect("json");
    assert_eq!(
        problem_fields(&problem),
        [
            "questionnaire_response.item[2].answer[0].valueString",
            "questionnaire_response.item[3].linkId"
        ]
    );

    let both = json!({"treatment": "microneedling", "date": "2026-12-01", "facts": {"pregnant": false},
        "questionnaire_response": {"resourceType": "QuestionnaireResponse", "status": "completed"}, "history": []});
    let res = http()
        .post(server.url("/v1/eligibility"))
        .json(&both)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.expect("json");
    assert_eq!(
        problem_fields(&problem),
        ["facts", "questionnaire_response"]
    );
    assert_eq!(problem["reason"], "ANSWERS_SENT_TWICE");

    let batch = json!({"checks": [both]});
    let res = http()
        .post(server.url("/v1/eligibility:batch"))
        .json(&batch)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.expect("json");
    assert_eq!(
        problem_fields(&problem),
        ["checks[0].facts", "checks[0].questionnaire_response"]
    );

    let mut client = server.grpc().await.expect("grpc");
    let st = client
        .check_eligibility(eligibility_pb(&both))
        .await
        .expect_err("refused");
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    assert_eq!(bad_request_fields(&st), ["facts", "questionnaire_response"]);
    let st = client
        .check_contraindications(pb::CheckContraindicationsRequest {
            questionnaire_response_json: contraindication_pb(&json!({"questionnaire_response": {
                "resourceType": "QuestionnaireResponse", "status": "stopped"}}))
            .questionnaire_response_json,
            ..contraindication_pb(&json!({}))
        })
        .await
        .expect_err("refused");
    assert_eq!(bad_request_fields(&st), ["questionnaire_response.status"]);

    // A key repeated inside the response is refused, never read last-wins: over REST naming it,
    // over gRPC (JSON text, read by the same reader) under `questionnaire_response`.
    let repeated = r#"{"treatment": "microneedling", "date": "2026-12-01", "history": [],
        "questionnaire_response": {"resourceType": "QuestionnaireResponse", "status": "completed",
        "item": [{"linkId": "pregnant", "answer": [{"valueBoolean": true}], "answer": [{"valueBoolean": false}]}]}}"#;
    let res = http()
        .post(server.url("/v1/eligibility"))
        .header("content-type", "application/json")
        .body(repeated)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let problem: Value = res.json().await.expect("json");
    assert_eq!(
        problem_fields(&problem),
        ["questionnaire_response.item[0].answer"]
    );
    let st = client
        .check_eligibility(pb::CheckEligibilityRequest {
            questionnaire_response_json: Some(
                r#"{"resourceType": "QuestionnaireResponse", "status": "completed", "status": "stopped"}"#.into(),
            ),
            ..eligibility_pb(&json!({"treatment": "microneedling", "date": "2026-12-01", "history": []}))
        })
        .await
        .expect_err("refused");
    assert_eq!(bad_request_fields(&st), ["questionnaire_response"]);
    assert!(
        st.message().contains("status") || format!("{st:?}").contains("status"),
        "{st:?}"
    );
}

/// `GET /fhir/metadata` answered 404 before: FHIR clients read a server's CapabilityStatement
/// first. It is open (it names no clinic or rule set) even where keys are required, and says the
/// base offers the Questionnaire read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fhir_base_states_its_capabilities_without_a_key() {
    let server = Server::start_with_keys().expect("server starts");
    let res = get(&server, "/fhir/metadata", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/fhir+json");
    let cs: Value = res.json().await.expect("json");
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["rest"][0]["resource"][0]["type"], "Questionnaire");
    assert_eq!(
        cs["rest"][0]["resource"][0]["interaction"][0]["code"],
        "read"
    );
}

/// An error answered on the FHIR base: an OperationOutcome, with the request's id as its
/// instance extension (the same id as the `x-request-id` header).
async fn operation_outcome(res: reqwest::Response) -> Value {
    assert_eq!(res.headers()["content-type"], "application/fhir+json");
    let request_id = res.headers()["x-request-id"]
        .to_str()
        .expect("text")
        .to_owned();
    let outcome: Value = res.json().await.expect("json");
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    assert_eq!(outcome["issue"][0]["severity"], "error", "{outcome}");
    assert_eq!(
        outcome["extension"][0]["valueString"],
        format!("urn:treatment-protocol:request:{request_id}"),
        "{outcome}"
    );
    outcome
}

/// The stable reason an OperationOutcome carries (as gRPC's `ErrorInfo.reason`).
fn outcome_reason(outcome: &Value) -> &str {
    assert_eq!(
        outcome["issue"][0]["details"]["coding"][0]["system"],
        "urn:treatment-protocol:reason"
    );
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

/// FHIR's `_format` and `_pretty` on both reads: JSON asked any way it is spelled, pretty when
/// asked; another format refused naming `_format`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fhir_base_takes_format_and_pretty() {
    let server = Server::start().expect("server starts");
    for path in ["/fhir/Questionnaire/base", "/fhir/metadata"] {
        let plain = get(&server, path, None).await.text().await.expect("text");
        for format in ["json", "application/json", "application/fhir%2Bjson"] {
            let res = get(&server, &format!("{path}?_format={format}"), None).await;
            assert_eq!(res.status(), StatusCode::OK, "{path} {format}");
            assert_eq!(res.text().await.expect("text"), plain, "{path} {format}");
        }
        let pretty = get(&server, &format!("{path}?_pretty=true"), None)
            .await
            .text()
            .await
            .expect("text");
        assert!(pretty.contains("\n  \""), "{path}: indented");
        let a: Value = serde_json::from_str(&pretty).expect("json");
        let b: Value = serde_json::from_str(&plain).expect("json");
        assert_eq!(a, b, "{path}: the same resource");
        let res = get(&server, &format!("{path}?_format=xml"), None).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let outcome = operation_outcome(res).await;
        assert_eq!(outcome["issue"][1]["expression"][0], "_format", "{outcome}");
    }
}

/// `GET /fhir/Questionnaire?url=`: what SDC form fillers search by. A searchset Bundle with the
/// caller's Questionnaire when its canonical URL is the one asked, none otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_questionnaire_is_found_by_its_canonical_url() {
    let server = Server::start_with_keys().expect("server starts");
    let search = |query: &'static str| {
        let server = &server;
        async move {
            let res = get(
                server,
                &format!("/fhir/Questionnaire{query}"),
                Some(KEY_AURORA),
            )
            .await;
            assert_eq!(res.status(), StatusCode::OK, "{query}");
            assert_eq!(res.headers()["content-type"], "application/fhir+json");
            res.json::<Value>().await.expect("json")
        }
    };
    let found = search("?url=urn:treatment-protocol:questionnaire:clinic-aurora").await;
    assert_eq!(found["resourceType"], "Bundle", "{found}");
    assert_eq!(found["type"], "searchset");
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["id"], "clinic-aurora");
    assert_eq!(found["entry"][0]["search"]["mode"], "match");
    let all = search("").await;
    assert_eq!(all["total"], 1);
    // The base's form is not the one Aurora is checked against: not found by its URL either.
    let none = search("?url=urn:treatment-protocol:questionnaire:base").await;
    assert_eq!(none["total"], 0, "{none}");
    assert_eq!(none["entry"], json!([]));
    let res = get(&server, "/fhir/Questionnaire?title=x", Some(KEY_AURORA)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        operation_outcome(res).await["issue"][1]["expression"][0],
        "title"
    );
}

/// A QuestionnaireResponse is taken everywhere facts go (issue 25, item 4): a calendar, depth
/// limits and a plan answer it as the same facts, over REST and gRPC; both at once is refused
/// naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_is_taken_everywhere_facts_go() {
    let app = protocol_tests::TestApp::start();
    let q = app.open().questionnaire("base").await.body;
    let facts = healthy_facts();
    let response = response_to(&q, &facts);
    let with = |mut body: Value, answers: &str| {
        match answers {
            "facts" => body["facts"] = facts.clone(),
            "response" => body["questionnaire_response"] = response.clone(),
            _ => {
                body["facts"] = facts.clone();
                body["questionnaire_response"] = response.clone();
            }
        }
        body
    };
    let calendar = json!({"history": [], "slots": [
        {"treatment": "microneedling", "date": "2026-12-01"},
        {"treatment": "microneedling", "date": "2026-12-15"}]});
    let depth = json!({"treatment": "microneedling", "device": "dermapen_4", "role": "nurse",
        "date": "2026-12-01", "history": []});
    let plan = json!({"indication": "acne_scars", "zones": ["cheeks"], "history": [],
        "start_date": "2026-12-01", "role": "physician", "device": "dermapen_4"});
    let asker = app.open();
    let strip = |mut v: Value| {
        // Each answer has its own decision ids.
        if let Some(slots) = v["results"].as_array_mut() {
            for s in slots {
                s["eligibility"]
                    .as_object_mut()
                    .map(|o| o.remove("decision_id"));
            }
        }
        v
    };
    for (what, body) in [("calendar", &calendar), ("depth", &depth), ("plan", &plan)] {
        let ask = |body: Value| {
            let asker = asker.clone();
            async move {
                match what {
                    "calendar" => asker.eligibility_calendar(&body).await,
                    "depth" => asker.depth_limits(&body).await,
                    _ => asker.plan(&body).await,
                }
            }
        };
        let by_facts = ask(with(body.clone(), "facts")).await;
        let by_response = ask(with(body.clone(), "response")).await;
        assert_eq!(by_facts.status, 200, "{what}: {}", by_facts.body);
        assert_eq!(by_response.status, 200, "{what}: {}", by_response.body);
        assert_eq!(
            strip(by_facts.body.clone()),
            strip(by_response.body),
            "{what}: the same answers"
        );
        let twice = ask(with(body.clone(), "both")).await;
        assert_eq!(twice.status, 422, "{what}: {}", twice.body);
        assert_eq!(twice.body["reason"], "ANSWERS_SENT_TWICE", "{what}");
        // gRPC takes the response as JSON text and answers as REST does.
        let mut grpc = app.server.grpc().await.expect("client");
        let grpc_body = with(body.clone(), "response");
        match what {
            "calendar" => {
                let r = grpc
                    .check_eligibility_calendar(calendar_pb(&grpc_body))
                    .await
                    .expect("calendar")
                    .into_inner();
                let grpc_decisions: Vec<String> = r
                    .results
                    .iter()
                    .map(|slot| match &slot.result {
                        Some(pb::calendar_slot_result::Result::Eligibility(e)) => {
                            decision_name(e.decision)
                        }
                        other => panic!("a slot refused: {other:?}"),
                    })
                    .collect();
                let rest_decisions: Vec<String> = by_facts.body["results"]
                    .as_array()
                    .expect("results")
                    .iter()
                    .map(|slot| {
                        slot["eligibility"]["decision"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect();
                assert_eq!(grpc_decisions, rest_decisions, "{what}");
            }
            "depth" => {
                let r = grpc
                    .get_depth_limits(depth_pb(&grpc_body))
                    .await
                    .expect("depth")
                    .into_inner();
                assert_eq!(depth_grpc(&r), depth_rest(&by_facts.body), "{what}");
            }
            _ => {
                let r = grpc
                    .build_plan(plan_pb(&grpc_body))
                    .await
                    .expect("plan")
                    .into_inner();
                assert_eq!(plan_grpc(&r), plan_rest(&by_facts.body), "{what}");
            }
        }
    }
}
