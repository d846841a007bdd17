//! The wire never guesses: a fact given twice, a `history` left out over gRPC, a fact value with no
//! kind, and a date that is not exactly `YYYY-MM-DD` are refused naming the field — problem+json
//! over REST, INVALID_ARGUMENT with `google.rpc.BadRequest` over gRPC — on every request that
//! carries them. None of them may read as an answer (last-one-wins, "no procedures", "never", or a
//! date with its time dropped).

use prost::Message;
use prost::bytes::Bytes;
use prost::encoding::{WireType, encode_key, encode_varint};
use protocol_tests::raw::RawCodec;
use protocol_tests::{Server, pb};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tonic::codegen::http::uri::PathAndQuery;

use crate::api::common::*;

/// Posts a JSON text; returns status, content type and body.
async fn post_text(server: &Server, path: &str, body: &str) -> (StatusCode, String, Value) {
    let res = http()
        .post(server.url(path))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = res.status();
    let ct = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ct, res.json().await.unwrap_or(Value::Null))
}

/// Runs REST cases `(name, path, body, field)`, each expected to be a 400 problem+json naming
/// `field`; returns the failures.
async fn rest_refusals(server: &Server, cases: Vec<(&str, &str, String, &str)>) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, path, body, field) in cases {
        let (status, ct, problem) = post_text(server, path, &body).await;
        let fields = problem_fields(&problem);
        if status != StatusCode::BAD_REQUEST
            || ct != "application/problem+json"
            || !fields.iter().any(|f| f == field)
        {
            failures.push(format!(
                "{name}: expected 400 problem+json naming '{field}', got {status} {ct} {problem}"
            ));
        }
    }
    failures
}

/// The facts of a healthy client as JSON text with `pregnant` answered first `first`, then again
/// (as the healthy client's `false`): `{"pregnant": true, "date_of_birth": ..., "pregnant": false, ...}`.
fn facts_with_pregnant_twice(first: &str) -> String {
    let healthy = healthy_facts().to_string();
    format!("{{\"pregnant\":{first},{}", &healthy[1..])
}

fn eligibility_text(facts: &str) -> String {
    format!(r#"{{"treatment":"microneedling","date":"2026-12-01","history":[],"facts":{facts}}}"#)
}

fn healthy_check() -> Value {
    json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": healthy_facts()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_refuses_a_fact_given_twice() {
    let server = Server::start().expect("server starts");
    let conflicting = facts_with_pregnant_twice("true");
    let repeated = facts_with_pregnant_twice("false");
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "eligibility: conflicting answers",
            "/v1/eligibility",
            eligibility_text(&conflicting),
            "facts.pregnant",
        ),
        (
            "eligibility: the same answer twice",
            "/v1/eligibility",
            eligibility_text(&repeated),
            "facts.pregnant",
        ),
        (
            "batch",
            "/v1/eligibility:batch",
            format!(
                r#"{{"checks":[{},{}]}}"#,
                healthy_check(),
                eligibility_text(&conflicting)
            ),
            "checks[1].facts.pregnant",
        ),
        (
            "contraindications",
            "/v1/contraindications:check",
            format!(r#"{{"facts":{conflicting}}}"#),
            "facts.pregnant",
        ),
        (
            "depth limits with facts",
            "/v1/depth-limits",
            format!(
                r#"{{"treatment":"microneedling","device":"dermapen_4","role":"physician","facts":{conflicting}}}"#
            ),
            "facts.pregnant",
        ),
        (
            "plans",
            "/v1/plans",
            format!(
                r#"{{"indication":"acne_scars","zones":["cheeks"],"history":[],"start_date":"2026-12-01","role":"physician","device":"dermapen_4","facts":{conflicting}}}"#
            ),
            "facts.pregnant",
        ),
    ];
    let failures = rest_refusals(&server, cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The same facts, each given once, are answered.
    let (status, _, body) = post_text(
        &server,
        "/v1/eligibility",
        &eligibility_text(&healthy_facts().to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["bookable"], true, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_dates_are_exactly_yyyy_mm_dd() {
    let server = Server::start().expect("server starts");
    let elig = |date: &str, history_date: &str, facts: Value| {
        json!({
            "treatment": "microneedling", "date": date, "facts": facts,
            "history": [{"procedure": "botulinum_toxin", "date": history_date}],
        })
        .to_string()
    };
    let healthy = healthy_facts;
    let with_fact = |id: &str, v: &str| {
        let mut f = healthy_facts();
        f[id] = json!(v);
        f
    };
    let plan = |start: &str, history_date: &str| {
        json!({
            "indication": "acne_scars", "zones": ["cheeks"], "start_date": start,
            "role": "physician", "device": "dermapen_4", "facts": healthy_facts(),
            "history": [{"procedure": "ipl", "date": history_date}],
        })
        .to_string()
    };
    let elig_path = "/v1/eligibility";
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("basic format", elig_path, elig("20261201", "2026-10-01", healthy()), "date"),
        // Issue 26: a year-0 birth date cleared every age rule.
        ("year 0 birth", elig_path, elig("2026-12-01", "2026-10-01", with_fact("date_of_birth", "0000-01-01")), "facts.date_of_birth"),
        ("year 1 birth", elig_path, elig("2026-12-01", "2026-10-01", with_fact("date_of_birth", "0001-01-01")), "facts.date_of_birth"),
        ("history: year 1", elig_path, elig("2026-12-01", "0001-10-01", healthy()), "history[0].date"),
        ("date and time", elig_path, elig("2026-12-01T10:00", "2026-10-01", healthy()), "date"),
        ("date and zoned time", elig_path, elig("2026-12-01T10:00:00Z", "2026-10-01", healthy()), "date"),
        ("one-digit day", elig_path, elig("2026-12-1", "2026-10-01", healthy()), "date"),
        ("signed six-digit year", elig_path, elig("+002026-12-01", "2026-10-01", healthy()), "date"),
        ("padded", elig_path, elig(" 2026-12-01", "2026-10-01", healthy()), "date"),
        ("history: basic format", elig_path, elig("2026-12-01", "20261001", healthy()), "history[0].date"),
        ("history: date and time", elig_path, elig("2026-12-01", "2026-10-01T23:59", healthy()), "history[0].date"),
        ("date of birth: basic format", elig_path, elig("2026-12-01", "2026-10-01", with_fact("date_of_birth", "19900514")), "facts.date_of_birth"),
        ("last isotretinoin dose: date and time", elig_path, elig("2026-12-01", "2026-10-01", with_fact("isotretinoin_last_dose", "2026-01-01T08:00")), "facts.isotretinoin_last_dose"),
        (
            "batch",
            "/v1/eligibility:batch",
            json!({"checks": [healthy_check(), {"treatment": "microneedling", "date": "2026-12-01T10:00", "history": [], "facts": healthy_facts()}]}).to_string(),
            "checks[1].date",
        ),
        (
            "contraindications: date",
            "/v1/contraindications:check",
            json!({"facts": healthy_facts(), "date": "20261201"}).to_string(),
            "date",
        ),
        (
            "contraindications: history date",
            "/v1/contraindications:check",
            json!({"facts": healthy_facts(), "date": "2026-12-01", "history": [{"procedure": "ipl", "date": "2026-10-01T10:00"}]}).to_string(),
            "history[0].date",
        ),
        (
            "depth limits: fact date",
            "/v1/depth-limits",
            json!({"treatment": "microneedling", "device": "dermapen_4", "role": "physician", "facts": with_fact("date_of_birth", "1990-05-14T00:00")}).to_string(),
            "facts.date_of_birth",
        ),
        ("plans: start date", "/v1/plans", plan("20261201", "2026-10-01"), "start_date"),
        ("plans: history date", "/v1/plans", plan("2026-12-01", "2026-10-01T10:00"), "history[0].date"),
    ];
    let failures = rest_refusals(&server, cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Well-formed dates are answered.
    let (status, _, body) = post_text(
        &server,
        elig_path,
        &elig("2026-12-01", "2026-10-01", healthy()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// ---- gRPC -------------------------------------------------------------------------------------

const SERVICE: &str = "/treatment.protocol.v1.TreatmentProtocolService/";

/// Sends pre-encoded request bytes to a unary method of the service.
async fn call_raw(server: &Server, method: &str, body: Vec<u8>) -> Result<usize, tonic::Status> {
    let mut client = tonic::client::Grpc::new(server.channel().await.expect("channel"));
    client.ready().await.expect("ready");
    let path = PathAndQuery::try_from(format!("{SERVICE}{method}")).expect("path");
    client
        .unary::<Bytes, usize, RawCodec>(tonic::Request::new(Bytes::from(body)), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Opens a WatchDepthLimits stream with pre-encoded request bytes.
async fn watch_raw(server: &Server, body: Vec<u8>) -> Result<(), tonic::Status> {
    let mut client = tonic::client::Grpc::new(server.channel().await.expect("channel"));
    client.ready().await.expect("ready");
    let path = PathAndQuery::try_from(format!("{SERVICE}WatchDepthLimits")).expect("path");
    let mut stream = client
        .server_streaming::<Bytes, usize, RawCodec>(
            tonic::Request::new(Bytes::from(body)),
            path,
            RawCodec,
        )
        .await?
        .into_inner();
    stream.message().await.map(|_| ())
}

/// Records a failure unless `result` is INVALID_ARGUMENT naming `field`.
fn expect_invalid<T: std::fmt::Debug>(
    failures: &mut Vec<String>,
    name: &str,
    result: Result<T, tonic::Status>,
    field: &str,
) {
    match result {
        Err(st) if st.code() == tonic::Code::InvalidArgument => {
            let fields = bad_request_fields(&st);
            if !fields.iter().any(|f| f == field) {
                failures.push(format!(
                    "{name}: expected '{field}', got {fields:?} ({st:?})"
                ));
            }
        }
        other => failures.push(format!(
            "{name}: expected INVALID_ARGUMENT naming '{field}', got {other:?}"
        )),
    }
}

fn one_fact(id: &str, value: Value) -> prost_types::Struct {
    pb_struct(json!({ id: value }).as_object().expect("object"))
}

/// A length-delimited field: key, length, bytes.
fn field(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    encode_key(tag, WireType::LengthDelimited, &mut out);
    encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// The facts of a healthy client as one encoded `Struct` in which `pregnant` is a map entry twice
/// (`true`, then the healthy client's `false`): prost keeps the last.
fn struct_with_pregnant_twice() -> Vec<u8> {
    let mut bytes = one_fact("pregnant", json!(true)).encode_to_vec();
    bytes.extend(pb_struct(healthy_facts().as_object().expect("object")).encode_to_vec());
    bytes
}

/// `message` (encoded) followed by a second `facts` field (number `tag`) saying `pregnant: true`:
/// protobuf merges the two, so the key is there twice.
fn facts_field_twice(message: &impl Message, tag: u32) -> Vec<u8> {
    let mut bytes = message.encode_to_vec();
    bytes.extend(field(
        tag,
        &one_fact("pregnant", json!(true)).encode_to_vec(),
    ));
    bytes
}

fn healthy_check_pb() -> pb::CheckEligibilityRequest {
    eligibility_pb(&healthy_check())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_a_fact_key_given_twice() {
    let server = Server::start().expect("server starts");
    let mut failures = Vec::new();

    // One Struct with the key twice; and the facts field twice, merged.
    let mut no_facts = healthy_check_pb();
    no_facts.facts = None;
    let mut in_one_struct = no_facts.encode_to_vec();
    in_one_struct.extend(field(3, &struct_with_pregnant_twice()));
    let r = call_raw(&server, "CheckEligibility", in_one_struct.clone()).await;
    expect_invalid(
        &mut failures,
        "eligibility: one struct",
        r,
        "facts.pregnant",
    );
    let r = call_raw(
        &server,
        "CheckEligibility",
        facts_field_twice(&healthy_check_pb(), 3),
    )
    .await;
    expect_invalid(
        &mut failures,
        "eligibility: facts twice",
        r,
        "facts.pregnant",
    );

    // A batch names the check.
    let mut batch = pb::CheckEligibilityBatchRequest {
        checks: vec![healthy_check_pb()],
    }
    .encode_to_vec();
    batch.extend(field(1, &in_one_struct));
    let r = call_raw(&server, "CheckEligibilityBatch", batch).await;
    expect_invalid(&mut failures, "batch", r, "checks[1].facts.pregnant");

    // Every other request with facts.
    let contra = contraindication_pb(&json!({"facts": healthy_facts()}));
    let r = call_raw(
        &server,
        "CheckContraindications",
        facts_field_twice(&contra, 2),
    )
    .await;
    expect_invalid(&mut failures, "contraindications", r, "facts.pregnant");
    let depth = depth_pb(
        &json!({"treatment": "microneedling", "device": "dermapen_4", "role": "physician", "facts": healthy_facts()}),
    );
    let r = call_raw(&server, "GetDepthLimits", facts_field_twice(&depth, 6)).await;
    expect_invalid(&mut failures, "depth limits", r, "facts.pregnant");
    let r = watch_raw(&server, facts_field_twice(&depth, 6)).await;
    expect_invalid(&mut failures, "watch depth limits", r, "facts.pregnant");
    let plan = plan_pb(&json!({
        "indication": "acne_scars", "zones": ["cheeks"], "history": [], "start_date": "2026-12-01",
        "role": "physician", "device": "dermapen_4", "facts": healthy_facts(),
    }));
    let r = call_raw(&server, "BuildPlan", facts_field_twice(&plan, 3)).await;
    expect_invalid(&mut failures, "plan", r, "facts.pregnant");

    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Each key once (the facts field given twice with different keys merges): answered.
    let mut split = healthy_check_pb();
    let mut facts = healthy_facts();
    facts.as_object_mut().map(|o| o.remove("pregnant"));
    split.facts = Some(pb_struct(facts.as_object().expect("object")));
    let mut bytes = split.encode_to_vec();
    bytes.extend(field(
        3,
        &one_fact("pregnant", json!(false)).encode_to_vec(),
    ));
    call_raw(&server, "CheckEligibility", bytes)
        .await
        .expect("each fact once is answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_history_must_be_sent() {
    let server = Server::start().expect("server starts");
    let mut client = server.grpc().await.expect("client");
    let mut failures = Vec::new();

    // `history` left out (not an empty list): refused, never "no procedures".
    let no_history = pb::CheckEligibilityRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        date: "2026-12-01".into(),
        facts: healthy_check_pb().facts,
        questionnaire_response_json: None,
        ..Default::default()
    };
    let r = client.check_eligibility(no_history.clone()).await;
    expect_invalid(&mut failures, "eligibility", r, "history");
    let r = client
        .check_eligibility_batch(pb::CheckEligibilityBatchRequest {
            checks: vec![healthy_check_pb(), no_history],
        })
        .await;
    expect_invalid(&mut failures, "batch", r, "checks[1].history");
    let r = client
        .build_plan(pb::BuildPlanRequest {
            ruleset_version: None,
            ruleset_digest: None,
            indication: "acne_scars".into(),
            zones: vec!["cheeks".into()],
            facts: healthy_check_pb().facts,
            start_date: "2026-12-01".into(),
            role: "physician".into(),
            device: Some("dermapen_4".into()),
            ..Default::default()
        })
        .await;
    expect_invalid(&mut failures, "plan", r, "history");
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // An empty history that is sent is "no procedures": answered.
    let e = client
        .check_eligibility(healthy_check_pb())
        .await
        .expect("empty history answered")
        .into_inner();
    assert!(e.bookable, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_fact_value_without_a_kind_is_refused() {
    let server = Server::start().expect("server starts");
    let mut client = server.grpc().await.expect("client");
    let mut failures = Vec::new();

    let mut facts = pb_struct(healthy_facts().as_object().expect("object"));
    facts.fields.insert(
        "isotretinoin_last_dose".into(),
        prost_types::Value { kind: None },
    );
    let mut req = healthy_check_pb();
    req.facts = Some(facts.clone());
    let r = client.check_eligibility(req.clone()).await;
    expect_invalid(
        &mut failures,
        "eligibility",
        r,
        "facts.isotretinoin_last_dose",
    );
    let r = client
        .check_eligibility_batch(pb::CheckEligibilityBatchRequest {
            checks: vec![healthy_check_pb(), req],
        })
        .await;
    expect_invalid(
        &mut failures,
        "batch",
        r,
        "checks[1].facts.isotretinoin_last_dose",
    );
    let r = client
        .check_contraindications(pb::CheckContraindicationsRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            facts: Some(facts.clone()),
            ..Default::default()
        })
        .await;
    expect_invalid(
        &mut failures,
        "contraindications",
        r,
        "facts.isotretinoin_last_dose",
    );
    let mut depth = depth_pb(
        &json!({"treatment": "microneedling", "device": "dermapen_4", "role": "physician"}),
    );
    depth.facts = Some(facts);
    let r = client.get_depth_limits(depth).await;
    expect_invalid(
        &mut failures,
        "depth limits",
        r,
        "facts.isotretinoin_last_dose",
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // An explicit null is "never": answered.
    let e = client
        .check_eligibility(healthy_check_pb())
        .await
        .expect("explicit null answered")
        .into_inner();
    assert!(e.bookable, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_dates_are_exactly_yyyy_mm_dd() {
    let server = Server::start().expect("server starts");
    let mut client = server.grpc().await.expect("client");
    let mut failures = Vec::new();

    let check = |date: &str, history_date: &str, dob: &str| {
        let mut facts = healthy_facts();
        facts["date_of_birth"] = json!(dob);
        eligibility_pb(&json!({
            "treatment": "microneedling", "date": date, "facts": facts,
            "history": [{"procedure": "botulinum_toxin", "date": history_date}],
        }))
    };
    let cases = [
        (
            "basic format",
            check("20261201", "2026-10-01", "1990-05-14"),
            "date",
        ),
        (
            "date and time",
            check("2026-12-01T10:00", "2026-10-01", "1990-05-14"),
            "date",
        ),
        (
            "history",
            check("2026-12-01", "20261001", "1990-05-14"),
            "history[0].date",
        ),
        (
            "date of birth",
            check("2026-12-01", "2026-10-01", "1990-05-14T00:00"),
            "facts.date_of_birth",
        ),
    ];
    for (name, req, field) in cases {
        let r = client.check_eligibility(req).await;
        expect_invalid(&mut failures, name, r, field);
    }
    let r = client
        .check_eligibility_batch(pb::CheckEligibilityBatchRequest {
            checks: vec![
                healthy_check_pb(),
                check("2026-12-01T10:00", "2026-10-01", "1990-05-14"),
            ],
        })
        .await;
    expect_invalid(&mut failures, "batch", r, "checks[1].date");
    let r = client
        .check_contraindications(contraindication_pb(&json!({
            "facts": healthy_facts(), "date": "20261201",
        })))
        .await;
    expect_invalid(&mut failures, "contraindications: date", r, "date");
    let r = client
        .check_contraindications(contraindication_pb(&json!({
            "facts": healthy_facts(), "date": "2026-12-01",
            "history": [{"procedure": "ipl", "date": "2026-10-01T10:00"}],
        })))
        .await;
    expect_invalid(
        &mut failures,
        "contraindications: history",
        r,
        "history[0].date",
    );
    let r = client
        .build_plan(plan_pb(&json!({
            "indication": "acne_scars", "zones": ["cheeks"], "history": [],
            "start_date": "2026-12-01T09:00", "role": "physician", "device": "dermapen_4",
            "facts": healthy_facts(),
        })))
        .await;
    expect_invalid(&mut failures, "plan", r, "start_date");
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let ok = client
        .check_eligibility(check("2026-12-01", "2026-10-01", "1990-05-14"))
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

/// A key given twice is refused on every JSON door, at any depth, even inside what a request
/// keeps as JSON (a CDS prefetch, a QuestionnaireResponse): never the last one kept. The CDS
/// cases are the red team's (issue 26): an intake answer given `true` then `false`, the
/// `procedures` prefetch given twice (the second `null`), an appointment's `status` twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_given_twice_is_refused_on_every_json_door() {
    let server = Server::start().expect("server");
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(
            protocol_tests::workspace_root().join("docs/examples/cds-appointment-book.json"),
        )
        .expect("example"),
    )
    .expect("json");
    let hook = serde_json::to_string(&example).expect("text");
    let twice = |text: &str, once: &str, doubled: &str| {
        assert_eq!(text.matches(once).count(), 1, "{once}");
        text.replacen(once, doubled, 1)
    };
    let qr = r#"{"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"pregnant","answer":[{"valueBoolean":true}],"answer":[{"valueBoolean":false}]}]}"#;
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "CDS intake answer",
            "/cds-services/treatment-eligibility",
            twice(
                &hook,
                r#"{"linkId":"breastfeeding","answer":[{"valueBoolean":false}]}"#,
                r#"{"linkId":"breastfeeding","answer":[{"valueBoolean":true}],"answer":[{"valueBoolean":false}]}"#,
            ),
            "prefetch.intake.item[1].answer",
        ),
        (
            "CDS procedures prefetch",
            "/cds-services/treatment-eligibility",
            twice(&hook, r#""procedures":{"#, r#""procedures":null,"procedures":{"#),
            "prefetch.procedures",
        ),
        (
            "CDS appointment status",
            "/cds-services/treatment-eligibility",
            twice(&hook, r#""status":"proposed""#, r#""status":"proposed","status":"cancelled""#),
            "context.appointments.entry[0].resource.status",
        ),
        (
            "eligibility QuestionnaireResponse",
            "/v1/eligibility",
            format!(r#"{{"treatment":"microneedling","date":"2026-12-01","history":[],"questionnaire_response":{qr}}}"#),
            "questionnaire_response.item[0].answer",
        ),
        (
            "plan start date",
            "/v1/plans",
            r#"{"indication":"acne_scars","zones":["cheeks"],"facts":{},"history":[],"start_date":"2026-12-01","start_date":"2027-06-01"}"#.to_owned(),
            "start_date",
        ),
        (
            "depth limits zone",
            "/v1/depth-limits",
            r#"{"treatment":"microneedling","device":"dermapen_4","role":"nurse","zone":"cheeks","zone":"neck","facts":{}}"#.to_owned(),
            "zone",
        ),
        (
            "calendar slot date",
            "/v1/eligibility:calendar",
            r#"{"facts":{},"history":[],"slots":[{"treatment":"microneedling","date":"2026-12-01","date":"2026-12-02"}]}"#.to_owned(),
            "slots[0].date",
        ),
        (
            "batch check treatment",
            "/v1/eligibility:batch",
            r#"{"checks":[{"treatment":"microneedling","treatment":"microdermabrasion","date":"2026-12-01","facts":{},"history":[]}]}"#.to_owned(),
            "checks[0].treatment",
        ),
        (
            "contraindications treatments",
            "/v1/contraindications:check",
            r#"{"facts":{},"treatments":["microneedling"],"treatments":["microdermabrasion"]}"#.to_owned(),
            "treatments",
        ),
        (
            "CDS feedback outcome",
            "/cds-services/treatment-eligibility/feedback",
            r#"{"feedback":[{"card":"01a22b20-e688-746b-8ecc-1eb03917e606","outcome":"overridden","outcome":"accepted","outcomeTimestamp":"2026-12-01T09:05:00Z"}]}"#.to_owned(),
            "feedback[0].outcome",
        ),
    ];
    let failures = rest_refusals(&server, cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A body of more JSON values than any request needs is refused before it is read into a tree
/// (issue 26: `{"a":{}}` repeated in a CDS prefetch took a replica over its memory limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_too_many_json_values_is_refused_before_it_is_read() {
    let server = Server::start().expect("server");
    let many = vec![r#"{"a":{}}"#; 150_000].join(",");
    let body = format!(
        r#"{{"hook":"appointment-book","hookInstance":"d1577c69-dfbe-44ad-ba6d-3e05e953b2ea","context":{{"userId":"PractitionerRole/x","patientId":"p1","appointments":[]}},"prefetch":{{"conditions":[{many}]}}}}"#
    );
    assert!(body.len() < 4 * 1024 * 1024, "{}", body.len());
    let (status, _, problem) =
        post_text(&server, "/cds-services/treatment-eligibility", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        problem.to_string().contains("more than 200000 JSON values"),
        "{problem}"
    );
}

/// A name longer than any id (a 250,000-character fact) gets no "did you mean" search, and the
/// answer echoes it clipped, not whole (issue 26: it cost 223 ms of CPU and a 400 KB answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_long_name_is_refused_clipped() {
    let server = Server::start().expect("server");
    let name = format!("pregnant{}", "x".repeat(250_000));
    for path in ["/v1/eligibility", "/v1/contraindications:check"] {
        let body = json!({"treatment": "microneedling", "date": "2026-12-01", "history": [],
                          "facts": {name.clone(): true}});
        let (status, _, problem) = post_text(&server, path, &body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        let text = problem.to_string();
        assert!(
            text.len() < 4_000,
            "{path}: an answer of {} bytes",
            text.len()
        );
        assert!(
            !text.contains("did you mean"),
            "{path}: {}",
            &text[..200.min(text.len())]
        );
    }
}

/// Issue 26: a singular field given twice on the wire was read last-wins (REST refuses a key
/// given twice). Refused on every request, named as REST names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_a_singular_field_given_twice() {
    let server = Server::start().expect("server starts");
    let mut failures = Vec::new();
    // `treatment` twice: prost would keep the second.
    let mut twice = healthy_check_pb().encode_to_vec();
    twice.extend(
        pb::CheckEligibilityRequest {
            treatment: "chemical_peel_superficial".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let r = call_raw(&server, "CheckEligibility", twice).await;
    expect_invalid(&mut failures, "treatment twice", r, "treatment");
    // A fact answered `true`, then `null`, in one Value.
    let mut no_facts = healthy_check_pb();
    no_facts.facts = None;
    let mut entry = vec![0x0a, 8];
    entry.extend(b"pregnant");
    entry.extend([0x12, 4, 0x20, 0x01, 0x08, 0x00]);
    let mut facts = vec![0x0a, u8::try_from(entry.len()).expect("short")];
    facts.extend(&entry);
    let mut msg = no_facts.encode_to_vec();
    msg.extend(field(3, &facts));
    let r = call_raw(&server, "CheckEligibility", msg).await;
    expect_invalid(&mut failures, "two kinds in one value", r, "facts.pregnant");
    // Another request: a depth question's `device` twice.
    let mut depth = pb::GetDepthLimitsRequest {
        treatment: "microneedling".into(),
        device: "dermapen_4".into(),
        role: "physician".into(),
        ..Default::default()
    }
    .encode_to_vec();
    depth.extend(
        pb::GetDepthLimitsRequest {
            device: "skinpen_precision".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let r = call_raw(&server, "GetDepthLimits", depth).await;
    expect_invalid(&mut failures, "device twice", r, "device");
    // Once each: answered.
    let r = call_raw(
        &server,
        "CheckEligibility",
        healthy_check_pb().encode_to_vec(),
    )
    .await;
    if let Err(st) = r {
        failures.push(format!("a request given once is answered: {st:?}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
