//! Rule-set notices at the door: the `eligibility` scope, and one watch budget shared with
//! `WatchDepthLimits` (REST 429 with `Retry-After`, gRPC RESOURCE_EXHAUSTED, the same reason).

use std::time::Duration;

use protocol_tests::sse;
use protocol_tests::{KEY_AURORA, KEY_BOREALIS_ADMIN, ServerBuilder, pb};
use serde_json::{Value, json};
use tonic_types::StatusExt;

use crate::api::common::*;

fn depth_request() -> pb::GetDepthLimitsRequest {
    pb::GetDepthLimitsRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        device: "dermapen_4".into(),
        role: "nurse".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_need_the_eligibility_scope_and_share_the_watch_budget() {
    let server = ServerBuilder::new()
        .with_keys()
        .env("PROTOCOL_MAX_WATCH_STREAMS_PER_KEY", "2")
        .spawn()
        .expect("server starts");
    let url = server.url("/v1/rulesets:watch");
    let client = sse::client();
    let mut grpc = server.grpc().await.expect("client");

    // No key, a key without `eligibility`: refused before any stream opens.
    let res = client.get(&url).send().await.expect("answered");
    assert_eq!(res.status().as_u16(), 401);
    let Err((status, body, _)) = sse::open(&client, &url, KEY_BOREALIS_ADMIN, None).await else {
        panic!("an admin-only key may not watch notices");
    };
    assert_eq!(
        (status, body["reason"].as_str()),
        (403, Some("SCOPE_MISSING"))
    );
    let st = grpc
        .watch_rule_sets(with_key(pb::WatchRuleSetsRequest::default(), None))
        .await
        .expect_err("no key");
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
    let st = grpc
        .watch_rule_sets(with_key(
            pb::WatchRuleSetsRequest::default(),
            Some(KEY_BOREALIS_ADMIN),
        ))
        .await
        .expect_err("no eligibility scope");
    assert_eq!(st.code(), tonic::Code::PermissionDenied);
    let Err((status, body, _)) =
        sse::open(&client, &format!("{url}?sinse=x"), KEY_AURORA, None).await
    else {
        panic!("an unknown parameter is refused");
    };
    assert_eq!(status, 400);
    assert_eq!(problem_fields(&body), vec!["sinse".to_owned()]);

    // One budget for every kind of watch: a device stream and a notice stream fill the key's two.
    let mut depth = grpc
        .watch_depth_limits(with_key(depth_request().into(), Some(KEY_AURORA)))
        .await
        .expect("depth watch")
        .into_inner();
    depth.message().await.expect("ok").expect("first");
    let mut events = sse::open(&client, &url, KEY_AURORA, None)
        .await
        .unwrap_or_else(|(s, b, _)| panic!("{s} {b}"));
    events.next().await.expect("ok").expect("first");

    let Err((status, body, headers)) = sse::open(&client, &url, KEY_AURORA, None).await else {
        panic!("a third watch for a key allowed two");
    };
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["reason"], "WATCH_STREAMS_EXHAUSTED");
    assert_eq!(
        body["type"],
        "urn:treatment-protocol:problem:too-many-streams"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("per key")
    );
    assert!(headers.contains_key("retry-after"));
    let st = grpc
        .watch_rule_sets(with_key(
            pb::WatchRuleSetsRequest::default(),
            Some(KEY_AURORA),
        ))
        .await
        .expect_err("a third watch over gRPC");
    assert_eq!(st.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        st.get_details_error_info().map(|i| i.reason),
        Some("WATCH_STREAMS_EXHAUSTED".into())
    );
    assert!(st.get_details_retry_info().is_some());

    // Closing the SSE stream gives its place back.
    drop(events);
    let start = std::time::Instant::now();
    loop {
        match grpc
            .watch_rule_sets(with_key(
                pb::WatchRuleSetsRequest::default(),
                Some(KEY_AURORA),
            ))
            .await
        {
            Ok(_) => break,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the closed stream's place was not released: {e}"),
        }
    }
}

/// Every event the stream sends is what `/openapi.json` declares for it: an event object (`event`,
/// `id`, `data`) whose `data` is a JSON `RuleSetNotice` — the opening `ruleset` event, and the
/// `heartbeat` a client resuming at the rule set in force gets first (`?since=`). Checked with a
/// JSON Schema validator made by others, as schemathesis checks an event stream.
#[tokio::test]
async fn every_event_is_what_the_contract_declares() {
    let server = ServerBuilder::new().with_keys().spawn().expect("server");
    let doc: Value = reqwest::get(server.url("/openapi.json"))
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let media = &doc["paths"]["/v1/rulesets:watch"]["get"]["responses"]["200"]["content"]["text/event-stream"];
    // The schemas resolve against the whole document (its `components`).
    let against = |schema: &Value| {
        let mut root = doc.clone();
        root["$ref"] = json!("#/$defs/it");
        root["$defs"] = json!({"it": schema});
        jsonschema::draft202012::new(&root).expect("the declared schema compiles")
    };
    let event_schema = against(&media["schema"]);
    let content = &media["schema"]["properties"]["data"];
    assert_eq!(content["contentMediaType"], "application/json", "{media}");
    let data_schema = against(&content["contentSchema"]);

    let client = sse::client();
    let url = server.url("/v1/rulesets:watch");
    let mut events = sse::open(&client, &url, KEY_AURORA, None)
        .await
        .unwrap_or_else(|(s, b, _)| panic!("{s} {b}"));
    let opening = events.next_raw().await.expect("an event").expect("open");
    let revision = opening.id.clone();
    let mut resumed = sse::open(
        &client,
        &format!("{url}?since={revision}"),
        KEY_AURORA,
        None,
    )
    .await
    .unwrap_or_else(|(s, b, _)| panic!("{s} {b}"));
    let heartbeat = resumed.next_raw().await.expect("an event").expect("open");
    assert_eq!(opening.event, "ruleset");
    assert_eq!(heartbeat.event, "heartbeat");
    for e in [opening, heartbeat] {
        let mut object = json!({"event": e.event, "data": e.data});
        if !e.id.is_empty() {
            object["id"] = json!(e.id);
        }
        let errors: Vec<String> = event_schema
            .iter_errors(&object)
            .map(|err| err.to_string())
            .collect();
        assert!(errors.is_empty(), "{object}: {errors:?}");
        let data: Value = serde_json::from_str(&e.data).expect("JSON data");
        let errors: Vec<String> = data_schema
            .iter_errors(&data)
            .map(|err| err.to_string())
            .collect();
        assert!(errors.is_empty(), "{data}: {errors:?}");
    }
}
