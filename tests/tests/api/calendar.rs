//! A booking calendar fits in one request (issue 13, item 4): 100 fully answered checks in a
//! batch, and the calendar form (the client once, 100 slots), over REST and gRPC alike; a bad slot
//! is answered alone, next to the others.

use prost::Message;
use protocol_tests::{Server, pb, workspace_root};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::common::*;

/// The fully answered check the load test sends: 29 facts, two past procedures, zones, device,
/// role and indication.
fn full_check() -> Value {
    let path = workspace_root().join("scripts/load-eligibility.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("load body")).expect("json")
}

/// 100 slots of the full check's treatment, device, zones, role and indication on 100
/// consecutive days, with its facts and history once.
fn full_calendar(slots: usize) -> Value {
    let check = full_check();
    let start: jiff::civil::Date = check["date"].as_str().expect("date").parse().expect("date");
    let slots: Vec<Value> = (0..slots)
        .map(|i| {
            let day = start
                .checked_add(jiff::Span::new().days(i64::try_from(i).expect("i")))
                .expect("day");
            json!({
                "treatment": check["treatment"],
                "date": day.to_string(),
                "zones": check["zones"],
                "device": check["device"],
                "role": check["role"],
                "indication": check["indication"],
            })
        })
        .collect();
    json!({"facts": check["facts"], "history": check["history"], "slots": slots})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_100_fully_answered_checks_fits_in_one_request_on_both_protocols() {
    let server = Server::start().expect("server starts");
    let checks: Vec<Value> = std::iter::repeat_n(full_check(), 100).collect();
    let body = serde_json::to_vec_pretty(&json!({ "checks": checks })).expect("json");
    let compact = serde_json::to_vec(&json!({ "checks": checks })).expect("json");
    let grpc = pb::CheckEligibilityBatchRequest {
        checks: checks.iter().map(eligibility_pb).collect(),
    };
    println!(
        "100 fully answered checks: {} bytes of JSON indented, {} compact, {} as protobuf",
        body.len(),
        compact.len(),
        grpc.encoded_len()
    );
    let res = http()
        .post(server.url("/v1/eligibility:batch"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let rest: Value = res.json().await.expect("json");
    assert_eq!(rest["results"].as_array().map(Vec::len), Some(100));

    let mut client = server.grpc().await.expect("client");
    let answer = client
        .check_eligibility_batch(grpc)
        .await
        .expect("one gRPC call")
        .into_inner();
    assert_eq!(answer.results.len(), 100);
    for (r, g) in rest["results"]
        .as_array()
        .expect("results")
        .iter()
        .zip(&answer.results)
    {
        assert_eq!(eligibility_rest(r), eligibility_grpc(g));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_slot_calendar_for_a_fully_answered_client_is_one_request_on_both_protocols() {
    let server = Server::start().expect("server starts");
    let calendar = full_calendar(100);
    let body = serde_json::to_vec_pretty(&calendar).expect("json");
    let grpc = calendar_pb(&calendar);
    println!(
        "a 100-slot calendar: {} bytes of JSON indented, {} as protobuf",
        body.len(),
        grpc.encoded_len()
    );
    let res = http()
        .post(server.url("/v1/eligibility:calendar"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let rest: Value = res.json().await.expect("json");
    let rest = rest["results"].as_array().expect("results").clone();
    assert_eq!(rest.len(), 100);

    let mut client = server.grpc().await.expect("client");
    let answer = client
        .check_eligibility_calendar(grpc)
        .await
        .expect("one gRPC call")
        .into_inner();
    assert_eq!(answer.results.len(), 100);

    // Each slot is answered as the single check of that slot would be, on both protocols.
    let check = full_check();
    for (i, (r, g)) in rest.iter().zip(&answer.results).enumerate() {
        let Some(pb::calendar_slot_result::Result::Eligibility(g)) = &g.result else {
            panic!("slot {i}: {g:?}");
        };
        let e = &r["eligibility"];
        assert_eq!(e["date"], calendar["slots"][i]["date"], "slot {i} in order");
        assert!(e["decision_id"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(eligibility_rest(e), eligibility_grpc(g), "slot {i}");
        if i % 25 == 0 {
            let mut single = check.clone();
            single["date"] = e["date"].clone();
            let one: Value = http()
                .post(server.url("/v1/eligibility"))
                .json(&single)
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            assert_eq!(eligibility_rest(&one), eligibility_rest(e), "slot {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_slot_is_reported_alone_on_both_protocols() {
    let server = Server::start().expect("server starts");
    let mut calendar = full_calendar(4);
    calendar["slots"][1]["date"] = json!("2026-02-30");
    calendar["slots"][2]["treatment"] = json!("laser_tattoo_removal");
    calendar["slots"][3]["device"] = json!("laser_gun");
    calendar["slots"][3]["role"] = json!("doctor");

    let res = http()
        .post(server.url("/v1/eligibility:calendar"))
        .json(&calendar)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let rest: Value = res.json().await.expect("json");
    let rest = rest["results"].as_array().expect("results").clone();
    let mut client = server.grpc().await.expect("client");
    let grpc = client
        .check_eligibility_calendar(calendar_pb(&calendar))
        .await
        .expect("answered")
        .into_inner()
        .results;
    assert_eq!((rest.len(), grpc.len()), (4, 4));

    let expected: [&[&str]; 4] = [
        &[],
        &["slots[1].date"],
        &["slots[2].treatment"],
        &["slots[3].device", "slots[3].role"],
    ];
    for (i, fields) in expected.iter().enumerate() {
        let grpc_fields: Vec<String> = match &grpc[i].result {
            Some(pb::calendar_slot_result::Result::Problem(p)) => {
                assert!(!p.detail.is_empty(), "{p:?}");
                assert_eq!(p.reason, "INVALID_REQUEST");
                p.field_violations.iter().map(|v| v.field.clone()).collect()
            }
            Some(pb::calendar_slot_result::Result::Eligibility(e)) => {
                assert_eq!(
                    eligibility_grpc(e),
                    eligibility_rest(&rest[i]["eligibility"])
                );
                Vec::new()
            }
            None => panic!("slot {i} unanswered"),
        };
        let mut rest_fields = problem_fields(&rest[i]["problem"]);
        rest_fields.sort();
        let mut grpc_fields = grpc_fields;
        grpc_fields.sort();
        assert_eq!(rest_fields, *fields, "REST slot {i}: {}", rest[i]);
        assert_eq!(grpc_fields, *fields, "gRPC slot {i}");
        if fields.is_empty() {
            assert!(rest[i]["problem"].is_null() && rest[i]["eligibility"].is_object());
        } else {
            assert_eq!(rest[i]["problem"]["status"], 400);
            assert_eq!(rest[i]["problem"]["reason"], "INVALID_REQUEST");
            assert!(rest[i]["eligibility"].is_null());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_every_slot_shares_fails_the_whole_calendar() {
    let server = Server::start().expect("server starts");
    let mut client = server.grpc().await.expect("client");

    // A fact of the wrong type is wrong for every slot: one 400 naming it, not 3 slot problems.
    let mut calendar = full_calendar(3);
    calendar["facts"]["pregnant"] = json!("no");
    calendar["history"][0]["procedure"] = json!("laser_tattoo");
    let res = http()
        .post(server.url("/v1/eligibility:calendar"))
        .json(&calendar)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    let mut fields = problem_fields(&body);
    fields.sort();
    assert_eq!(fields, ["facts.pregnant", "history[0].procedure"]);
    let st = client
        .check_eligibility_calendar(calendar_pb(&calendar))
        .await
        .expect_err("invalid");
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    let mut fields = bad_request_fields(&st);
    fields.sort();
    assert_eq!(fields, ["facts.pregnant", "history[0].procedure"]);

    // A history is required: none is not "no procedures".
    let mut calendar = full_calendar(1);
    calendar.as_object_mut().expect("object").remove("history");
    let st = client
        .check_eligibility_calendar(calendar_pb(&calendar))
        .await
        .expect_err("no history");
    assert_eq!(bad_request_fields(&st), ["history"]);

    // More than 100 slots names `slots`.
    let calendar = full_calendar(101);
    let res = http()
        .post(server.url("/v1/eligibility:calendar"))
        .json(&calendar)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(problem_fields(&body), ["slots"]);
    let st = client
        .check_eligibility_calendar(calendar_pb(&calendar))
        .await
        .expect_err("too many");
    assert_eq!(bad_request_fields(&st), ["slots"]);
}
