//! Every kind of bad input gets a clear error naming the field — problem+json over REST,
//! INVALID_ARGUMENT with `google.rpc.BadRequest` over gRPC — and never a 500 or a hang.

use protocol_tests::{Server, pb};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::api::common::*;

/// Posts raw bytes with a content type; returns status and body.
async fn post_raw(
    server: &Server,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = http().post(server.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let ct = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.json().await.unwrap_or(Value::Null);
    (status, ct, body)
}

async fn post_json(server: &Server, path: &str, body: &str) -> (StatusCode, Option<String>, Value) {
    post_raw(
        server,
        path,
        Some("application/json"),
        body.as_bytes().to_vec(),
    )
    .await
}

fn valid_check() -> Value {
    json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": {"pregnant": false}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_bad_bodies_name_the_field() {
    let server = Server::start().expect("server starts");
    let elig = "/v1/eligibility";
    // (case, path, body, expected field)
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("malformed JSON", elig, r#"{"treatment": "microneedling", "#.into(), ""),
        ("not an object", elig, "[1, 2]".into(), ""),
        ("unknown field", elig, r#"{"treatment":"microneedling","date":"2026-12-01","history":[],"colour":"red"}"#.into(), "colour"),
        ("missing field", elig, r#"{"treatment":"microneedling","date":"2026-12-01"}"#.into(), "history"),
        ("wrong type", elig, r#"{"treatment":5,"date":"2026-12-01","history":[]}"#.into(), "treatment"),
        ("wrong fact type", elig, r#"{"treatment":"microneedling","date":"2026-12-01","history":[],"facts":{"pregnant":"yes"}}"#.into(), "facts.pregnant"),
        ("unknown fact", elig, r#"{"treatment":"microneedling","date":"2026-12-01","history":[],"facts":{"pregnancy":true}}"#.into(), "facts.pregnancy"),
        ("unknown treatment", elig, r#"{"treatment":"botox","date":"2026-12-01","history":[]}"#.into(), "treatment"),
        ("unknown zone", elig, r#"{"treatment":"microneedling","date":"2026-12-01","history":[],"zones":["elbow"]}"#.into(), "zones[0]"),
        ("unknown device", elig, r#"{"treatment":"microneedling","date":"2026-12-01","history":[],"device":"laser_gun"}"#.into(), "device"),
        ("impossible date", elig, r#"{"treatment":"microneedling","date":"2026-02-30","history":[]}"#.into(), "date"),
        ("impossible history date", elig, r#"{"treatment":"microneedling","date":"2026-12-01","history":[{"procedure":"ipl","date":"2026-13-01"}]}"#.into(), "history[0].date"),
        ("unknown procedure", elig, r#"{"treatment":"microneedling","date":"2026-12-01","history":[{"procedure":"tattoo","date":"2026-01-01"}]}"#.into(), "history[0].procedure"),
        ("unknown field in history", elig, r#"{"treatment":"microneedling","date":"2026-12-01","history":[{"procedure":"ipl","date":"2026-01-01","where":"face"}]}"#.into(), "history[0].where"),
        ("contraindications: unknown treatment", "/v1/contraindications:check", r#"{"treatments":["nope"],"facts":{}}"#.into(), "treatments[0]"),
        ("depth: unknown role", "/v1/depth-limits", r#"{"treatment":"microneedling","device":"dermapen_4","role":"janitor"}"#.into(), "role"),
        ("depth: unknown zone", "/v1/depth-limits", r#"{"treatment":"microneedling","device":"dermapen_4","role":"nurse","zone":"elbow"}"#.into(), "zone"),
        ("plan: impossible date", "/v1/plans", r#"{"indication":"acne_scars","zones":["cheeks"],"history":[],"start_date":"2026-04-31","role":"physician"}"#.into(), "start_date"),
        ("batch: not a list", "/v1/eligibility:batch", r#"{"checks": {}}"#.into(), "checks"),
        ("batch: bad item", "/v1/eligibility:batch", json!({"checks": [valid_check(), {"treatment": "nope", "date": "2026-12-01", "history": []}]}).to_string(), "checks[1].treatment"),
        ("batch: bad item date", "/v1/eligibility:batch", json!({"checks": [valid_check(), {"treatment": "microneedling", "date": "2026-02-30", "history": []}]}).to_string(), "checks[1].date"),
    ];
    let mut failures = Vec::new();
    for (name, path, body, field) in cases {
        let (status, ct, problem) = post_json(&server, path, &body).await;
        let fields = problem_fields(&problem);
        if status != StatusCode::BAD_REQUEST
            || ct.as_deref() != Some("application/problem+json")
            || !fields.iter().any(|f| f == field)
            || problem["status"] != 400
            || problem["type"]
                .as_str()
                .is_none_or(|t| !t.ends_with("invalid-request"))
        {
            failures.push(format!(
                "{name}: expected 400 problem+json naming '{field}', got {status} {ct:?} {problem}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_limits_and_media_types() {
    let server = Server::start().expect("server starts");

    // A batch of 101 names `checks`.
    let checks: Vec<Value> = (0..101).map(|_| valid_check()).collect();
    let (status, _, problem) = post_json(
        &server,
        "/v1/eligibility:batch",
        &json!({"checks": checks}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_fields(&problem), ["checks"]);

    // 257 KiB of otherwise valid JSON (the limit is 256 KiB): 413.
    let mut big = valid_check();
    big["facts"]["pad"] = json!("x".repeat(257 * 1024));
    let (status, ct, problem) = post_raw(
        &server,
        "/v1/eligibility",
        Some("application/json"),
        big.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    assert_eq!(problem["status"], 413);

    // Wrong or missing content type: 415.
    let body = valid_check().to_string().into_bytes();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let (status, rct, problem) = post_raw(&server, "/v1/eligibility", ct, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type {ct:?}"
        );
        assert_eq!(rct.as_deref(), Some("application/problem+json"));
        assert_eq!(problem["status"], 415);
    }
    // A JSON content type with parameters is fine.
    let (status, _, _) = post_raw(
        &server,
        "/v1/eligibility",
        Some("application/json; charset=utf-8"),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_bad_queries_and_paths() {
    let server = Server::start().expect("server starts");
    let http = http();
    let cases: [(&str, &str); 4] = [
        ("treatment=microneedling&role=nurse", "device"),
        (
            "treatment=microneedling&device=dermapen_4&role=nurse&colour=red",
            "colour",
        ),
        (
            "treatment=microneedling&device=dermapen_4&role=nurse&zone=elbow",
            "zone",
        ),
        ("treatment=nope&device=dermapen_4&role=nurse", "treatment"),
    ];
    for (query, field) in cases {
        let res = http
            .get(server.url(&format!("/v1/depth-limits?{query}")))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        let problem: Value = res.json().await.expect("json");
        assert!(
            problem_fields(&problem).iter().any(|f| f == field),
            "{query}: expected '{field}', got {problem}"
        );
    }
    let res = http
        .get(server.url("/v1/treatments/laser_tattoo_removal"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        res.headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let res = http
        .get(server.url("/v2/nothing"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = http.get(server.url("/v1/plans")).send().await.expect("get");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// Odd inputs of every shape to every endpoint: answers are 2xx or 4xx, never 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_client_sends_is_a_server_error() {
    let server = Server::start().expect("server starts");
    let bodies = [
        "",
        "null",
        "0",
        "\"x\"",
        "{}",
        "[]",
        "{\"facts\":null}",
        "{\"history\":null}",
        "{\"treatment\":null,\"date\":null,\"history\":null}",
        "{\"treatment\":\"microneedling\",\"date\":\"99999-01-01\",\"history\":[]}",
        "{\"treatment\":\"microneedling\",\"date\":\"2026-12-01\",\"history\":[],\"facts\":{\"fitzpatrick\":1e308}}",
        "{\"treatment\":\"microneedling\",\"date\":\"2026-12-01\",\"history\":[],\"facts\":{\"fitzpatrick\":-1}}",
        "{\"treatment\":\"microneedling\",\"date\":\"2026-12-01\",\"history\":[],\"facts\":{\"date_of_birth\":\"2030-01-01\"}}",
        "{\"treatment\":\"microneedling\",\"date\":\"2026-12-01\",\"history\":[],\"facts\":{\"isotretinoin_last_dose\":12}}",
        "{\"treatment\":\"microneedling\",\"date\":\"2026-12-01\",\"history\":[],\"zones\":[]}",
        "{\"checks\":[]}",
        "{\"checks\":[null]}",
        "{\"indication\":\"acne_scars\",\"zones\":[],\"history\":[],\"start_date\":\"2026-12-01\",\"role\":\"self\"}",
        "{\"treatment\":\"microdermabrasion\",\"device\":\"microdermabrasion_wand\",\"role\":\"nurse\"}",
        "\u{0}\u{1}\u{2}",
        "{\"a\":",
        "{\"treatment\":\"\u{1F489}\"}",
    ];
    let paths = [
        "/v1/eligibility",
        "/v1/eligibility:batch",
        "/v1/contraindications:check",
        "/v1/depth-limits",
        "/v1/plans",
    ];
    for path in paths {
        for body in bodies {
            let (status, _, problem) = post_json(&server, path, body).await;
            assert!(
                status.is_success() || status.is_client_error(),
                "{path} {body:?}: {status} {problem}"
            );
            if status.is_client_error() {
                has_reason_and_instance(&problem, &format!("{path} {body:?}"));
            }
        }
    }
}

/// A problem names its stable `reason` (what gRPC's `ErrorInfo` says) and its `instance`.
fn has_reason_and_instance(problem: &Value, what: &str) {
    let reason = problem["reason"].as_str().unwrap_or_default();
    assert!(
        !reason.is_empty() && reason.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
        "{what}: no reason in {problem}"
    );
    assert!(
        problem["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("urn:treatment-protocol:request:")),
        "{what}: no instance in {problem}"
    );
}

/// Every REST error carries `reason` and `instance`, extractor rejections and fallbacks
/// included: an unknown path (404), a wrong method (405), a wrong media type (415), an
/// impossible date (the docs' `2026-02-30`), an unknown field, JSON that does not parse, and a
/// bad CDS Hooks call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_error_names_its_reason_and_instance() {
    let server = Server::start().expect("server starts");
    let res = http()
        .get(server.url("/v1/nowhere"))
        .send()
        .await
        .expect("404");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    has_reason_and_instance(&res.json().await.expect("json"), "404");
    let res = http()
        .get(server.url("/v1/eligibility"))
        .send()
        .await
        .expect("405");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    has_reason_and_instance(&res.json().await.expect("json"), "405");
    let (status, _, problem) = post_raw(
        &server,
        "/v1/eligibility",
        Some("text/plain"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    has_reason_and_instance(&problem, "415");
    let mut impossible = valid_check();
    impossible["date"] = json!("2026-02-30");
    let mut unknown = valid_check();
    unknown["colour"] = json!("blue");
    let mut no_history = valid_check();
    no_history
        .as_object_mut()
        .expect("object")
        .remove("history");
    for (what, body) in [
        ("2026-02-30", impossible.to_string()),
        ("unknown field", unknown.to_string()),
        ("no history", no_history.to_string()),
        ("bad JSON", "{\"treatment\":".to_owned()),
    ] {
        let (status, _, problem) = post_json(&server, "/v1/eligibility", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {problem}");
        has_reason_and_instance(&problem, what);
    }
    let (status, _, problem) = post_json(&server, "/cds-services/nowhere", "{}").await;
    assert!(status.is_client_error(), "{problem}");
    has_reason_and_instance(&problem, "CDS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_invalid_argument_names_the_field() {
    let server = Server::start().expect("server starts");
    let mut client = server.grpc().await.expect("client");

    let base = |date: &str, treatment: &str| pb::CheckEligibilityRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: treatment.into(),
        date: date.into(),
        history: Some(pb::HistoryList::default()),
        ..Default::default()
    };
    let cases: Vec<(&str, pb::CheckEligibilityRequest, &str)> = vec![
        (
            "unknown treatment",
            base("2026-12-01", "botox"),
            "treatment",
        ),
        (
            "impossible date",
            base("2026-02-30", "microneedling"),
            "date",
        ),
        ("not a date", base("next tuesday", "microneedling"), "date"),
        (
            "history date",
            pb::CheckEligibilityRequest {
                explain: false,
                ruleset_version: None,
                ruleset_digest: None,
                history: Some(pb::HistoryList {
                    entries: vec![pb::HistoryEntry {
                        procedure: "ipl".into(),
                        date: "2026-13-01".into(),
                    }],
                }),
                ..base("2026-12-01", "microneedling")
            },
            "history[0].date",
        ),
        (
            "wrong fact type",
            eligibility_pb(
                &json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": {"pregnant": "yes"}}),
            ),
            "facts.pregnant",
        ),
        (
            "integer fact given a fraction",
            eligibility_pb(
                &json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": {"fitzpatrick": 2.5}}),
            ),
            "facts.fitzpatrick",
        ),
        (
            "unknown zone",
            pb::CheckEligibilityRequest {
                explain: false,
                ruleset_version: None,
                ruleset_digest: None,
                zones: vec!["elbow".into()],
                ..base("2026-12-01", "microneedling")
            },
            "zones[0]",
        ),
    ];
    for (name, req, field) in cases {
        let st = client.check_eligibility(req).await.expect_err(name);
        assert_eq!(st.code(), tonic::Code::InvalidArgument, "{name}: {st:?}");
        let fields = bad_request_fields(&st);
        assert!(
            fields.iter().any(|f| f == field),
            "{name}: expected '{field}', got {fields:?}"
        );
    }

    // Batches: over the limit names `checks`, a bad item `checks[i].…`.
    let ok = eligibility_pb(&valid_check());
    let st = client
        .check_eligibility_batch(pb::CheckEligibilityBatchRequest {
            checks: vec![ok.clone(); 101],
        })
        .await
        .expect_err("101 checks");
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    assert_eq!(bad_request_fields(&st), ["checks"]);
    let st = client
        .check_eligibility_batch(pb::CheckEligibilityBatchRequest {
            checks: vec![
                ok.clone(),
                base("2026-02-30", "microneedling"),
                base("2026-12-01", "nope"),
            ],
        })
        .await
        .expect_err("bad items");
    let fields = bad_request_fields(&st);
    assert!(fields.contains(&"checks[1].date".to_owned()), "{fields:?}");
    let ok_batch = client
        .check_eligibility_batch(pb::CheckEligibilityBatchRequest {
            checks: vec![ok.clone(); 100],
        })
        .await
        .expect("100 checks")
        .into_inner();
    assert_eq!(ok_batch.results.len(), 100);

    // Other methods.
    let st = client
        .get_depth_limits(pb::GetDepthLimitsRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            treatment: "microneedling".into(),
            device: "dermapen_4".into(),
            role: "janitor".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad role");
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    assert!(bad_request_fields(&st).contains(&"role".to_owned()));
    let st = client
        .build_plan(pb::BuildPlanRequest {
            ruleset_version: None,
            ruleset_digest: None,
            indication: "acne_scars".into(),
            start_date: "2026-04-31".into(),
            role: "physician".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad plan date");
    assert!(bad_request_fields(&st).contains(&"start_date".to_owned()));
    let st = client
        .check_contraindications(pb::CheckContraindicationsRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            date: Some("2026-00-10".into()),
            ..Default::default()
        })
        .await
        .expect_err("bad date");
    assert!(bad_request_fields(&st).contains(&"date".to_owned()));
    let st = client
        .get_treatment(pb::GetTreatmentRequest {
            code: "laser_tattoo_removal".into(),
        })
        .await
        .expect_err("unknown treatment");
    assert_eq!(st.code(), tonic::Code::NotFound);

    // A message above 256 KiB is refused, not processed.
    let mut big = ok;
    big.treatment = "x".repeat(260 * 1024);
    let st = client.check_eligibility(big).await.expect_err("too big");
    assert_ne!(st.code(), tonic::Code::Ok);
    assert_ne!(st.code(), tonic::Code::Internal);
}

/// Bytes that are not a protobuf message are the client's fault: INVALID_ARGUMENT, not INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_malformed_protobuf_is_invalid_argument() {
    use prost::bytes::Bytes;
    use protocol_tests::raw::RawCodec;
    use tonic::codegen::http::uri::PathAndQuery;

    let server = Server::start().expect("server starts");
    let mut client = tonic::client::Grpc::new(server.channel().await.expect("channel"));
    for garbage in [
        &b"\xff\xff\xff\xff"[..],
        &b"\x0a\x7fshort"[..],
        &b"\x12\x05\xc3\x28\xa0\xa1\xff"[..],
    ] {
        client.ready().await.expect("ready");
        let st = client
            .unary::<Bytes, usize, RawCodec>(
                tonic::Request::new(Bytes::from_static(garbage)),
                PathAndQuery::from_static(
                    "/treatment.protocol.v1.TreatmentProtocolService/CheckEligibility",
                ),
                RawCodec,
            )
            .await
            .expect_err("garbage refused");
        assert_eq!(
            st.code(),
            tonic::Code::InvalidArgument,
            "{garbage:?}: {st:?}"
        );
    }
}

/// A treatment listed thousands of times is refused (not answered thousands of times), and the
/// error lists at most 50 violations over both protocols, so an answer is never larger than the
/// question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_treatments_are_refused_with_a_bounded_error() {
    let server = Server::start().expect("server starts");
    let treatments: Vec<&str> = std::iter::repeat_n("microneedling", 3_500).collect();
    let body = json!({"treatments": treatments, "facts": {}, "date": "2026-12-01", "history": []});
    let (status, _, problem) =
        post_json(&server, "/v1/contraindications:check", &body.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let errors = problem["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 50, "capped");
    assert_eq!(errors[0]["field"], "treatments[1]");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("3499 fields are invalid")),
        "{problem}"
    );
    assert!(problem.to_string().len() < 16 * 1024, "small answer");

    let mut grpc = server.grpc().await.expect("grpc client");
    let st = grpc
        .check_contraindications(pb::CheckContraindicationsRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            treatments: treatments.iter().map(|t| (*t).to_owned()).collect(),
            facts: None,
            questionnaire_response_json: None,
            date: Some("2026-12-01".into()),
            history: Some(pb::HistoryList { entries: vec![] }),
        })
        .await
        .expect_err("refused");
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    let fields = bad_request_fields(&st);
    assert_eq!(fields.len(), 50);
    assert_eq!(fields[0], "treatments[1]");
}

/// Issue 13 item 6: a batch names every check at fault (each read on its own), an impossible
/// date says what is expected instead of the date parser's wording, and an unknown id names the
/// allowed values or the nearest one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_say_what_is_expected_and_name_every_bad_check() {
    let server = Server::start().expect("server starts");
    let check = |date: &str| json!({"treatment": "microneedling", "date": date, "facts": {}, "history": []});
    let mut bad_history = check("2026-12-01");
    bad_history["history"] = json!([{"procedure": "ipl", "date": "2026-02-30"}]);
    let batch = json!({"checks": [
        check("2026-13-01"),
        check("2026-12-01"),
        bad_history,
        check("2026-12-01T10:00:00Z"),
    ]});
    let (status, _, body) = post_json(&server, "/v1/eligibility:batch", &batch.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        problem_fields(&body),
        [
            "checks[0].date",
            "checks[2].history[0].date",
            "checks[3].date"
        ],
        "{body}"
    );
    let messages: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    for m in &messages {
        assert!(m.contains("YYYY-MM-DD"), "{m}");
        assert!(
            !m.contains("parse") && !m.contains("jiff"),
            "parser wording leaks: {m}"
        );
    }
    assert!(
        messages[0].contains("month must be 01 to 12"),
        "{}",
        messages[0]
    );
    assert!(messages[1].contains("has days 01 to 28"), "{}", messages[1]);

    // Unknown ids: the allowed values when none is close, the nearest one when one is.
    for (path, body, field, expected) in [
        (
            "/v1/depth-limits",
            json!({"treatment": "microneedling", "device": "dermapen_4", "role": "doctor"}),
            "role",
            "expected one of: ",
        ),
        (
            "/v1/eligibility",
            json!({"treatment": "microneedlng", "date": "2026-12-01", "history": []}),
            "treatment",
            "did you mean 'microneedling'?",
        ),
        (
            "/v1/eligibility",
            json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": {"rosacea": "sometimes"}}),
            "facts.rosacea",
            "expected one of: none",
        ),
        (
            "/v1/eligibility",
            json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "device": "skinpen_precision", "role": "self"}),
            "role",
            "expected one of: ",
        ),
    ] {
        let (status, _, answer) = post_json(&server, path, &body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let error = answer["errors"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["field"] == field))
            .unwrap_or_else(|| panic!("{field} not named: {answer}"));
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{field}: {message}");
    }
}
