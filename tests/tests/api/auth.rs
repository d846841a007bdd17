//! API keys: 401 vs 403 over REST, UNAUTHENTICATED vs PERMISSION_DENIED over gRPC, probes open,
//! and tenant isolation: a clinic's key sees its overlay, a clinic without one sees the base.

use protocol_tests::{KEY_AURORA, KEY_BASE, KEY_ELIGIBILITY_ONLY, Server, pb};
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};

use crate::api::common::*;

fn check() -> Value {
    json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": healthy_facts()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_401_and_403_are_distinct() {
    let server = Server::start_with_keys().expect("server starts");
    let http = http();
    let elig = server.url("/v1/eligibility");

    let none = http
        .post(&elig)
        .json(&check())
        .send()
        .await
        .expect("request");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers().contains_key(WWW_AUTHENTICATE));
    let body: Value = none.json().await.expect("problem");
    assert_eq!(body["status"], 401);

    let wrong = http
        .post(&elig)
        .bearer_auth("not-a-key")
        .json(&check())
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let basic = http
        .post(&elig)
        .basic_auth("user", Some("pw"))
        .json(&check())
        .send()
        .await
        .expect("request");
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    // Authentication comes before body checks: a bad body without a key is still 401.
    let bad_body = http
        .post(&elig)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("request");
    assert_eq!(bad_body.status(), StatusCode::UNAUTHORIZED);

    let ok = http
        .post(&elig)
        .bearer_auth(KEY_ELIGIBILITY_ONLY)
        .json(&check())
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), StatusCode::OK);

    // The eligibility-only key may not ask for depths or plans.
    let depth = http
        .get(server.url("/v1/depth-limits"))
        .query(&[
            ("treatment", "microneedling"),
            ("device", "dermapen_4"),
            ("role", "nurse"),
        ])
        .bearer_auth(KEY_ELIGIBILITY_ONLY)
        .send()
        .await
        .expect("request");
    assert_eq!(depth.status(), StatusCode::FORBIDDEN);
    let body: Value = depth.json().await.expect("problem");
    assert_eq!(body["status"], 403);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("devices"))
    );
    let plan = http
        .post(server.url("/v1/plans"))
        .bearer_auth(KEY_ELIGIBILITY_ONLY)
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(plan.status(), StatusCode::FORBIDDEN);

    for path in [
        "/v1/treatments",
        "/v1/facts",
        "/v1/treatments/microneedling",
    ] {
        let res = http.get(server.url(path)).send().await.expect("request");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // Probes and the API description need no key.
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let res = http.get(server.url(path)).send().await.expect("request");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unauthenticated_and_permission_denied_are_distinct() {
    let server = Server::start_with_keys().expect("server starts");
    let mut client = server.grpc().await.expect("client");
    let req = || eligibility_pb(&check());

    let st = client
        .check_eligibility(with_key(req(), None))
        .await
        .expect_err("no key");
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
    let st = client
        .check_eligibility(with_key(req(), Some("not-a-key")))
        .await
        .expect_err("bad key");
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
    client
        .check_eligibility(with_key(req(), Some(KEY_ELIGIBILITY_ONLY)))
        .await
        .expect("eligibility scope is enough");

    let depth = pb::GetDepthLimitsRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        device: "dermapen_4".into(),
        role: "nurse".into(),
        ..Default::default()
    };
    let st = client
        .get_depth_limits(with_key(depth.clone(), Some(KEY_ELIGIBILITY_ONLY)))
        .await
        .expect_err("no devices scope");
    assert_eq!(st.code(), tonic::Code::PermissionDenied);
    let st = client
        .watch_depth_limits(with_key(depth.into(), Some(KEY_ELIGIBILITY_ONLY)))
        .await
        .expect_err("no devices scope");
    assert_eq!(st.code(), tonic::Code::PermissionDenied);
    let st = client
        .build_plan(with_key(
            pb::BuildPlanRequest::default(),
            Some(KEY_ELIGIBILITY_ONLY),
        ))
        .await
        .expect_err("no plans scope");
    assert_eq!(st.code(), tonic::Code::PermissionDenied);
    let st = client
        .list_facts(with_key(pb::ListFactsRequest {}, None))
        .await
        .expect_err("no key");
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
}

/// A clinic's key sees its overlay; a clinic without an overlay sees the base; never another
/// clinic's rules. Checked over both protocols, on a decision and on a depth the overlay tightens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_their_own_rule_set() {
    let server = Server::start_with_keys().expect("server starts");
    let http = http();
    let mut client = server.grpc().await.expect("client");

    for (key, ruleset, nurse_cheeks) in
        [(KEY_AURORA, "clinic-aurora", 1.0), (KEY_BASE, "base", 1.5)]
    {
        let rest: Value = http
            .post(server.url("/v1/eligibility"))
            .bearer_auth(key)
            .json(&check())
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        assert_eq!(rest["ruleset"]["id"], ruleset, "{rest}");
        let g = client
            .check_eligibility(with_key(eligibility_pb(&check()), Some(key)))
            .await
            .expect("grpc")
            .into_inner();
        let g_ruleset = g.ruleset.expect("ruleset");
        assert_eq!(g_ruleset.id, ruleset);
        assert_eq!(json!(g_ruleset.digest), rest["ruleset"]["digest"]);
        if ruleset == "clinic-aurora" {
            assert_eq!(g_ruleset.base.map(|b| b.id).as_deref(), Some("base"));
        }

        let depth: Value = http
            .get(server.url("/v1/depth-limits"))
            .query(&[
                ("treatment", "microneedling"),
                ("device", "dermapen_4"),
                ("role", "nurse"),
                ("zone", "cheeks"),
            ])
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        assert_eq!(
            depth["zones"][0]["max_depth_mm"].as_f64(),
            Some(nurse_cheeks),
            "{depth}"
        );
        assert_eq!(depth["ruleset"]["id"], ruleset);

        // An overlay rule (Aurora refuses RF microneedling on anticoagulants) fires for Aurora only.
        let mut facts = healthy_facts();
        facts["anticoagulants"] = json!(true);
        let rf = json!({"treatment": "rf_microneedling", "date": "2026-12-01", "history": [], "facts": facts});
        let answer = client
            .check_eligibility(with_key(eligibility_pb(&rf), Some(key)))
            .await
            .expect("grpc")
            .into_inner();
        let fired = answer
            .reasons
            .iter()
            .any(|r| r.rule == "aurora_anticoagulants_rf");
        assert_eq!(fired, ruleset == "clinic-aurora", "{:?}", answer.reasons);
    }
}
