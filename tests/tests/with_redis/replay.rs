//! Replay: a decision request pins a version of the caller's rule set (`ruleset_version` or
//! `ruleset_digest`) and is answered from that immutable version, over REST and gRPC alike;
//! an unknown version, or another clinic's, is 404 / `NOT_FOUND` naming it.

use protocol_tests::json_pb::{depth_pb, eligibility_pb};
use protocol_tests::redis_server::RedisServer;
use protocol_tests::{
    KEY_AURORA, KEY_BASE, KEY_ELIGIBILITY_ONLY, KEY_PLATFORM, Server, ServerBuilder,
};
use serde_json::{Value, json};
use tonic::Code;

use crate::with_redis::common::*;

fn cheeks_request(pin: Value) -> Value {
    let mut req = json!({
        "treatment": "microneedling",
        "device": "dermapen_4",
        "role": "physician",
        "zone": "cheeks",
    });
    if let (Some(req), Some(pin)) = (req.as_object_mut(), pin.as_object()) {
        req.extend(pin.clone());
    }
    req
}

/// `POST /v1/depth-limits` (the cheeks) with `pin`, as `key`.
async fn rest_cheeks(server: &Server, key: &str, pin: Value) -> (u16, Value) {
    let res = http()
        .post(server.url("/v1/depth-limits"))
        .bearer_auth(key)
        .json(&cheeks_request(pin))
        .send()
        .await
        .expect("answered");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `GetDepthLimits` (the cheeks) with `pin`, as `key`: the cap and version, or the status.
async fn grpc_cheeks(
    server: &Server,
    key: &str,
    pin: Value,
) -> Result<(f64, String), tonic::Status> {
    let mut grpc = server.grpc().await.expect("grpc");
    let res = grpc
        .get_depth_limits(with_key(depth_pb(&cheeks_request(pin)), key))
        .await?
        .into_inner();
    Ok((
        res.zones[0].max_depth_mm,
        res.ruleset.map(|r| r.version).unwrap_or_default(),
    ))
}

async fn rest_eligibility(server: &Server, key: &str, pin: Value) -> (u16, Value) {
    let mut req = eligibility_request();
    if let (Some(req), Some(pin)) = (req.as_object_mut(), pin.as_object()) {
        req.extend(pin.clone());
    }
    let res = http()
        .post(server.url("/v1/eligibility"))
        .bearer_auth(key)
        .json(&req)
        .send()
        .await
        .expect("answered");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn cap_and_version(body: &Value) -> (f64, String) {
    (
        body["zones"][0]["max_depth_mm"]
            .as_f64()
            .unwrap_or(f64::NAN),
        body["ruleset"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_version_is_answered_from_that_version_over_rest_and_grpc() {
    let redis = RedisServer::start().expect("redis-server starts");
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .spawn()
        .expect("server starts");
    roll_out(&server, "2026.12.1", 1.0, BUNDLED_VERSION).await;
    roll_out(&server, "2026.12.2", 0.8, "2026.12.1").await;
    let now = within(std::time::Duration::from_secs(2), || async {
        cheeks(&server).await.1 == "2026.12.2"
    })
    .await;
    assert!(now.is_some(), "2026.12.2 is served");

    // Unpinned: the active version.
    let (status, body) = rest_cheeks(&server, KEY_AURORA, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cap_and_version(&body), (0.8, "2026.12.2".into()));

    // Pinned by version: that version's cap, and the answer names it (on the base served now).
    let pin = json!({"ruleset_version": "2026.12.1"});
    let (status, old) = rest_cheeks(&server, KEY_AURORA, pin.clone()).await;
    assert_eq!(status, 200, "{old}");
    assert_eq!(cap_and_version(&old), (1.0, "2026.12.1".into()));
    assert_eq!(old["ruleset"]["id"], "clinic-aurora");
    assert!(old["ruleset"]["base"]["version"].is_string(), "{old}");
    let grpc = grpc_cheeks(&server, KEY_AURORA, pin.clone()).await;
    assert_eq!(grpc.expect("grpc pinned"), (1.0, "2026.12.1".into()));

    // GET with the pin in the query, as a device would.
    let res = http()
        .get(server.url("/v1/depth-limits"))
        .bearer_auth(KEY_AURORA)
        .query(&[
            ("treatment", "microneedling"),
            ("device", "dermapen_4"),
            ("role", "physician"),
            ("zone", "cheeks"),
            ("ruleset_version", "2026.12.1"),
        ])
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(cap_and_version(&body), (1.0, "2026.12.1".into()));

    // Pinned by digest: the same version.
    let digest = old["ruleset"]["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    let by_digest = json!({"ruleset_digest": digest});
    let (status, body) = rest_cheeks(&server, KEY_AURORA, by_digest.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cap_and_version(&body), (1.0, "2026.12.1".into()));
    let grpc = grpc_cheeks(&server, KEY_AURORA, by_digest).await;
    assert_eq!(grpc.expect("grpc by digest"), (1.0, "2026.12.1".into()));
    // A version with another version's digest names nothing.
    let (status, body) = rest_cheeks(
        &server,
        KEY_AURORA,
        json!({"ruleset_version": "2026.12.2", "ruleset_digest": digest}),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // Eligibility pinned, REST and gRPC: the same rule set named.
    let (status, rest) = rest_eligibility(&server, KEY_AURORA, pin.clone()).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["ruleset"]["version"], "2026.12.1");
    let mut req = eligibility_request();
    req["ruleset_version"] = json!("2026.12.1");
    let mut grpc = server.grpc().await.expect("grpc");
    let answer = grpc
        .check_eligibility(with_key(eligibility_pb(&req), KEY_AURORA))
        .await
        .expect("grpc eligibility")
        .into_inner();
    let named = answer.ruleset.expect("ruleset");
    assert_eq!(named.version, "2026.12.1");
    assert_eq!(
        named.digest,
        rest["ruleset"]["digest"].as_str().expect("digest")
    );
    assert_eq!(rest["bookable"].as_bool(), Some(answer.bookable));

    // An unknown version: 404 / NOT_FOUND naming it.
    let unknown = json!({"ruleset_version": "2099.1.1"});
    let (status, body) = rest_cheeks(&server, KEY_AURORA, unknown.clone()).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("2099.1.1"),
        "{body}"
    );
    let status = grpc_cheeks(&server, KEY_AURORA, unknown)
        .await
        .expect_err("unknown version refused");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("2099.1.1"), "{status:?}");

    // Another clinic's version: Borealis (served the base) cannot pin Aurora's 2026.12.1 (its
    // key is a booking key: it pins no version but the one served now), and Aurora cannot pin
    // a version only Borealis published (unknown to it).
    let (status, body) = rest_eligibility(&server, KEY_BASE, pin.clone()).await;
    assert_eq!(status, 403, "{body}");
    let status = grpc_cheeks(&server, KEY_BASE, pin.clone())
        .await
        .expect_err("another clinic's version refused");
    assert_eq!(status.code(), Code::PermissionDenied);
    let borealis = AURORA_YAML
        .replace("id: clinic-aurora", "id: clinic-borealis")
        .replace(
            &format!("version: \"{BUNDLED_VERSION}\""),
            "version: \"2026.12.9\"",
        );
    let (status, body) = publish(&server, KEY_PLATFORM, &borealis).await;
    assert!(status == 201 || status == 200, "{status} {body}");
    let (status, body) =
        rest_cheeks(&server, KEY_AURORA, json!({"ruleset_version": "2026.12.9"})).await;
    assert_eq!(status, 404, "{body}");

    // A batch pins one version for all its checks, or is refused naming the odd one out.
    let mut one = eligibility_request();
    one["ruleset_version"] = json!("2026.12.1");
    let res = http()
        .post(server.url("/v1/eligibility:batch"))
        .bearer_auth(KEY_AURORA)
        .json(&json!({"checks": [one.clone(), one.clone()]}))
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["results"][1]["ruleset"]["version"], "2026.12.1");
    let res = http()
        .post(server.url("/v1/eligibility:batch"))
        .bearer_auth(KEY_AURORA)
        .json(&json!({"checks": [one, eligibility_request()]}))
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().await.expect("json");
    assert!(
        body.to_string().contains("checks[1].ruleset_version"),
        "{body}"
    );
}

#[tokio::test]
async fn without_redis_only_the_version_served_now_can_be_pinned() {
    let server = ServerBuilder::new()
        .with_keys()
        .spawn()
        .expect("server starts");
    let (status, body) = rest_cheeks(
        &server,
        KEY_AURORA,
        json!({"ruleset_version": BUNDLED_VERSION}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ruleset"]["version"], BUNDLED_VERSION);
    let (status, body) =
        rest_cheeks(&server, KEY_AURORA, json!({"ruleset_version": "2026.12.1"})).await;
    assert_eq!(status, 404, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("2026.12.1") && detail.contains("Redis"),
        "{body}"
    );
    let status = grpc_cheeks(&server, KEY_AURORA, json!({"ruleset_version": "2026.12.1"}))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::NotFound);
}

/// Issue 26: a draft (a version never activated) answered a pinned request, was retired, and
/// still answered from the replica's cache of pinned versions. Retired, it is gone here too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_draft_is_not_answered_from_the_pinned_cache() {
    let fleet = Fleet::start();
    let (status, body) = publish(&fleet.a, KEY_AURORA, &aurora("2026.12.7", 0.9)).await;
    assert_eq!(status, 201, "{body}");
    let pin = json!({"ruleset_version": "2026.12.7"});
    // Asked twice: the second answer comes from the cache.
    for _ in 0..2 {
        let (status, body) = rest_cheeks(&fleet.a, KEY_AURORA, pin.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ruleset"]["version"], "2026.12.7");
    }
    let res = http()
        .delete(fleet.a.url("/v1/rulesets/clinic-aurora/versions/2026.12.7"))
        .bearer_auth(KEY_AURORA)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200, "retired");
    let (status, body) = rest_cheeks(&fleet.a, KEY_AURORA, pin).await;
    assert_eq!(status, 404, "a retired version is not answered: {body}");
}

/// Issue 26: a booking system's key pinned a draft (a version never activated) and got a
/// bookable, logged decision from it. Any version but the one served now is a replay: it takes
/// the `audit` scope, or `admin` (the clinic's rule authors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_auditor_may_pin_a_version_other_than_the_one_served_now() {
    let fleet = Fleet::start();
    let (status, body) = publish(&fleet.a, KEY_AURORA, &aurora("2026.12.8", 0.9)).await;
    assert_eq!(status, 201, "{body}");
    let mut draft = eligibility_request();
    draft["ruleset_version"] = json!("2026.12.8");
    let answer = fleet
        .a
        .as_key(KEY_ELIGIBILITY_ONLY)
        .eligibility(&draft)
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.body["reason"], "SCOPE_MISSING", "{}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`audit`")),
        "{}",
        answer.body
    );
    // The version served now, pinned, is answered to the booking key.
    let mut now = eligibility_request();
    now["ruleset_version"] = json!(BUNDLED_VERSION);
    let answer = fleet.a.as_key(KEY_ELIGIBILITY_ONLY).eligibility(&now).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The clinic's admin key (its rule author) replays the draft.
    let answer = fleet.a.as_key(KEY_AURORA).eligibility(&draft).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["ruleset"]["version"], "2026.12.8");
}
