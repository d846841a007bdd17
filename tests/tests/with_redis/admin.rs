//! The rule-set admin API over REST and gRPC: scope `admin`, validation before storing,
//! immutable versions, compare-and-set activation, roll back. Every answer names id, version and
//! digest.

use protocol_tests::{KEY_AURORA, KEY_BASE, KEY_PLATFORM, Server, ServerBuilder, pb};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use crate::with_redis::common::*;

fn admin_client(
    channel: tonic::transport::Channel,
) -> pb::rule_set_admin_service_client::RuleSetAdminServiceClient<tonic::transport::Channel> {
    pb::rule_set_admin_service_client::RuleSetAdminServiceClient::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_admin_api_answers_503_naming_the_setting() {
    let server = Server::start_with_keys().expect("server starts");
    let res = http()
        .get(server.url("/v1/rulesets"))
        .bearer_auth(KEY_AURORA)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(
        res.headers()["content-type"].to_str().ok(),
        Some("application/problem+json")
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["type"],
        "urn:treatment-protocol:problem:redis-not-configured"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("PROTOCOL_REDIS_URL"),
        "{body}"
    );

    // Authentication comes first: 401 without a key, 403 without the admin scope.
    let res = http()
        .get(server.url("/v1/rulesets"))
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 401);
    let (status, _) = publish(&server, KEY_BASE, &aurora("2026.12.1", 1.0)).await;
    assert_eq!(status, 403, "a key without the admin scope");

    let mut grpc = admin_client(server.channel().await.expect("channel"));
    let st = grpc
        .list_rule_sets(with_key(pb::ListRuleSetsRequest {}, KEY_AURORA))
        .await
        .expect_err("no redis");
    assert_eq!(st.code(), Code::FailedPrecondition);
    assert!(
        st.message().contains("PROTOCOL_REDIS_URL"),
        "{}",
        st.message()
    );
    let st = grpc
        .list_rule_sets(with_key(pb::ListRuleSetsRequest {}, KEY_BASE))
        .await
        .expect_err("no admin scope");
    assert_eq!(st.code(), Code::PermissionDenied);

    // /readyz says Redis is not configured and the bundled rule sets are served.
    let (status, ready) = readyz(&server).await;
    assert_eq!(status, 200);
    assert_eq!(ready["redis"], "not_configured");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["origin"], "bundled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_validates_first_and_versions_are_immutable() {
    let redis = protocol_tests::redis_server::RedisServer::start().expect("redis starts");
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .spawn()
        .expect("server starts");

    // A new Aurora version that tightens the cheeks: 201, naming id, version and digest.
    let yaml = aurora("2026.12.1", 1.0);
    let (status, body) = publish(&server, KEY_AURORA, &yaml).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "clinic-aurora");
    assert_eq!(body["version"], "2026.12.1");
    assert!(
        body["digest"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sha256:")
    );
    assert_eq!(body["created"], true);
    let digest = body["digest"].clone();

    // The same content again: idempotent, 200, same digest.
    let (status, again) = publish(&server, KEY_AURORA, &yaml).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["digest"], digest);

    // The same version with other content: 409, naming the version.
    let (status, conflict) = publish(&server, KEY_AURORA, &aurora("2026.12.1", 0.9)).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["type"], "urn:treatment-protocol:problem:conflict");
    assert_eq!(conflict["version"], "2026.12.1");

    // An overlay that loosens the base (cheeks deeper than the base allows): 422 naming the field.
    let (status, loose) = publish(&server, KEY_AURORA, &aurora("2026.12.2", 9.5)).await;
    assert_eq!(status, 422, "{loose}");
    assert_eq!(
        loose["type"],
        "urn:treatment-protocol:problem:invalid-ruleset"
    );
    let fields: Vec<&str> = loose["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields.iter().any(|f| f.contains("cheeks")),
        "the loosened field is named: {loose}"
    );

    // Broken YAML: 422 naming the line.
    let (status, broken) = publish(&server, KEY_AURORA, "id: x\nversion: [unclosed\n").await;
    assert_eq!(status, 422, "{broken}");

    // JSON works too; other media types are 415.
    let doc: Value = serde_saphyr::from_str(&aurora("2026.12.3", 0.9)).expect("yaml");
    let res = http()
        .post(server.url("/v1/rulesets"))
        .bearer_auth(KEY_AURORA)
        .json(&doc)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 201);
    let res = http()
        .post(server.url("/v1/rulesets"))
        .bearer_auth(KEY_AURORA)
        .header("content-type", "text/plain")
        .body(yaml.clone())
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 415);

    // The stored version: its document and digest.
    let res = http()
        .get(server.url("/v1/rulesets/clinic-aurora/versions/2026.12.1"))
        .bearer_auth(KEY_AURORA)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200);
    let fetched: Value = res.json().await.expect("json");
    assert_eq!(fetched["digest"], digest);
    assert_eq!(fetched["active"], false, "publishing does not activate");
    assert_eq!(fetched["document"]["version"], "2026.12.1");
    let res = http()
        .get(server.url("/v1/rulesets/clinic-aurora/versions/1999.1.1"))
        .bearer_auth(KEY_AURORA)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_activate_with_expected_current_and_roll_back() {
    let redis = protocol_tests::redis_server::RedisServer::start().expect("redis starts");
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .spawn()
        .expect("server starts");

    // Seeded from the bundled rule sets on first start (the platform sees every rule set).
    let res = http()
        .get(server.url("/v1/rulesets"))
        .bearer_auth(KEY_PLATFORM)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200);
    let list: Value = res.json().await.expect("json");
    let ids: Vec<&str> = list["rulesets"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["base", "clinic-aurora"]);
    for r in list["rulesets"].as_array().into_iter().flatten() {
        assert_eq!(r["active"]["version"], BUNDLED_VERSION, "{r}");
        assert!(
            r["active"]["digest"]
                .as_str()
                .unwrap_or_default()
                .starts_with("sha256:")
        );
    }

    let (status, _) = publish(&server, KEY_AURORA, &aurora("2026.12.1", 1.0)).await;
    assert_eq!(status, 201);

    // A stale expectation loses, naming both versions.
    let (status, problem) = activate(&server, "clinic-aurora", "2026.12.1", "2020.1.1").await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["current"], BUNDLED_VERSION);
    assert_eq!(problem["version"], "2026.12.1");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("2020.1.1")
    );

    // The right one wins and names what it replaced.
    let (status, done) = activate(&server, "clinic-aurora", "2026.12.1", BUNDLED_VERSION).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["version"], "2026.12.1");
    assert_eq!(done["previous"], BUNDLED_VERSION);
    assert!(
        done["digest"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sha256:")
    );

    // Unknown version: 404.
    let (status, _) = activate(&server, "clinic-aurora", "2099.1.1", "2026.12.1").await;
    assert_eq!(status, 404);

    // Versions, oldest first, with the active one marked.
    let res = http()
        .get(server.url("/v1/rulesets/clinic-aurora/versions"))
        .bearer_auth(KEY_AURORA)
        .send()
        .await
        .expect("answered");
    let versions: Value = res.json().await.expect("json");
    assert_eq!(versions["active"]["version"], "2026.12.1");
    let listed: Vec<(&str, bool)> = versions["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    (
                        v["version"].as_str().unwrap_or_default(),
                        v["active"] == true,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed, [(BUNDLED_VERSION, false), ("2026.12.1", true)]);

    // Roll back (to the version active before), served at once by this replica. It loosens
    // what Aurora is served (cheeks 1.0 -> 1.2 mm): refused without an approval, naming it.
    let res = http()
        .post(server.url("/v1/rulesets/clinic-aurora/rollback"))
        .bearer_auth(KEY_AURORA)
        .json(&json!({"expected_current": "2026.12.1"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 422);
    let refusal: Value = res.json().await.expect("json");
    assert!(
        refusal
            .to_string()
            .contains("loosens what 'clinic-aurora' serves"),
        "{refusal}"
    );
    let (status, back) = approved_move(
        &server,
        "/v1/rulesets/clinic-aurora/rollback",
        json!({"expected_current": "2026.12.1"}),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["impact"][0]["ruleset"], "clinic-aurora", "{back}");
    assert_eq!(back["version"], BUNDLED_VERSION);
    assert_eq!(back["previous"], "2026.12.1");
    let rolled_back = within(std::time::Duration::from_secs(2), || async {
        cheeks(&server).await.1 == BUNDLED_VERSION
    })
    .await;
    assert!(rolled_back.is_some(), "the rolled-back version is served");
    assert_eq!(cheeks(&server).await.0, BUNDLED_CHEEKS_MM);

    // Nothing active before the first version: 409.
    let res = http()
        .post(server.url("/v1/rulesets/clinic-aurora/rollback"))
        .bearer_auth(KEY_AURORA)
        .json(&json!({"expected_current": BUNDLED_VERSION}))
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_activations_exactly_one_wins() {
    let fleet = Fleet::start();
    let mut current = BUNDLED_VERSION.to_owned();
    for round in 0..5 {
        let (v1, v2) = (format!("2026.12.{round}1"), format!("2026.12.{round}2"));
        for (v, mm) in [(&v1, 1.0), (&v2, 0.9)] {
            // Either may have won the round before: the deeper one declares its loosening.
            let doc = format!(
                "{}loosening: {{reason: \"concurrency test\", approved_by: \"test\"}}\n",
                aurora(v, mm)
            );
            let (status, body) = publish(&fleet.a, KEY_AURORA, &doc).await;
            assert_eq!(status, 201, "{body}");
        }
        // One activation through each replica, both expecting the same current version.
        let (ra, rb) = tokio::join!(
            activate(&fleet.a, "clinic-aurora", &v1, &current),
            activate(&fleet.b, "clinic-aurora", &v2, &current),
        );
        let mut statuses = [ra.0, rb.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}: {ra:?} {rb:?}");
        let (winner, loser) = if ra.0 == 200 {
            (ra.1, rb.1)
        } else {
            (rb.1, ra.1)
        };
        assert_eq!(
            loser["current"], winner["version"],
            "the loser names the winner"
        );
        current = winner["version"].as_str().unwrap_or_default().to_owned();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_admin_publishes_activates_and_maps_errors() {
    let redis = protocol_tests::redis_server::RedisServer::start().expect("redis starts");
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .spawn()
        .expect("server starts");
    let mut grpc = admin_client(server.channel().await.expect("channel"));

    let published = grpc
        .publish_rule_set(with_key(
            pb::PublishRuleSetRequest {
                document: aurora("2026.12.1", 1.0),
                format: pb::DocumentFormat::Yaml as i32,
            },
            KEY_AURORA,
        ))
        .await
        .expect("published")
        .into_inner();
    assert_eq!(
        (
            published.id.as_str(),
            published.version.as_str(),
            published.created
        ),
        ("clinic-aurora", "2026.12.1", true)
    );
    assert!(published.digest.starts_with("sha256:"));

    // Same version, other content: ALREADY_EXISTS with ErrorInfo.
    let st = grpc
        .publish_rule_set(with_key(
            pb::PublishRuleSetRequest {
                document: aurora("2026.12.1", 0.9),
                format: pb::DocumentFormat::Yaml as i32,
            },
            KEY_AURORA,
        ))
        .await
        .expect_err("conflict");
    assert_eq!(st.code(), Code::AlreadyExists);

    // A loosening overlay: INVALID_ARGUMENT with BadRequest naming the field.
    let st = grpc
        .publish_rule_set(with_key(
            pb::PublishRuleSetRequest {
                document: aurora("2026.12.2", 9.5),
                format: pb::DocumentFormat::Yaml as i32,
            },
            KEY_AURORA,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(st.code(), Code::InvalidArgument);
    let fields: Vec<String> = st
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default();
    assert!(fields.iter().any(|f| f.contains("cheeks")), "{fields:?}");

    // CAS loss: ABORTED with ErrorInfo naming the current version.
    let st = grpc
        .activate_rule_set(with_key(
            pb::ActivateRuleSetRequest {
                id: "clinic-aurora".into(),
                version: "2026.12.1".into(),
                expected_current: Some("2020.1.1".into()),
                expect_none_active: false,
                approval: None,
                dry_run: false,
            },
            KEY_AURORA,
        ))
        .await
        .expect_err("stale expectation");
    assert_eq!(st.code(), Code::Aborted);
    let info = st.get_details_error_info().expect("error info");
    assert_eq!(
        info.metadata.get("current").map(String::as_str),
        Some(BUNDLED_VERSION)
    );

    let done = grpc
        .activate_rule_set(with_key(
            pb::ActivateRuleSetRequest {
                id: "clinic-aurora".into(),
                version: "2026.12.1".into(),
                expected_current: Some(BUNDLED_VERSION.into()),
                expect_none_active: false,
                approval: None,
                dry_run: false,
            },
            KEY_AURORA,
        ))
        .await
        .expect("activated")
        .into_inner();
    assert_eq!(done.previous.as_deref(), Some(BUNDLED_VERSION));
    assert_eq!(done.digest, published.digest);

    let doc = grpc
        .get_rule_set_version(with_key(
            pb::GetRuleSetVersionRequest {
                id: "clinic-aurora".into(),
                version: "2026.12.1".into(),
            },
            KEY_AURORA,
        ))
        .await
        .expect("fetched")
        .into_inner();
    assert!(doc.active);
    assert_eq!(doc.digest, published.digest);
    let json: Value = serde_json::from_str(&doc.document_json).expect("canonical json");
    assert_eq!(json["id"], "clinic-aurora");

    let versions = grpc
        .list_rule_set_versions(with_key(
            pb::ListRuleSetVersionsRequest {
                id: "clinic-aurora".into(),
            },
            KEY_AURORA,
        ))
        .await
        .expect("listed")
        .into_inner();
    // One shape with REST's listing: `active: {version, digest}`.
    let active = versions.active.clone().expect("an active version");
    assert_eq!(active.version, "2026.12.1");
    assert_eq!(active.digest, published.digest);
    let rest = http()
        .get(server.url("/v1/rulesets/clinic-aurora/versions"))
        .bearer_auth(KEY_AURORA)
        .send()
        .await
        .expect("listed")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(
        rest["active"],
        serde_json::json!({"version": active.version, "digest": active.digest})
    );
    assert_eq!(versions.versions.len(), 2);

    // Going back loosens Aurora's cheeks (1.0 -> 1.2 mm): refused without an approval, naming
    // the loosening; a dry run names its digest and moves nothing; the platform key approves.
    let rollback =
        |approval: Option<pb::LooseningApproval>, dry_run: bool| pb::RollbackRuleSetRequest {
            id: "clinic-aurora".into(),
            to_version: None,
            expected_current: Some("2026.12.1".into()),
            approval,
            dry_run,
        };
    let st = grpc
        .rollback_rule_set(with_key(rollback(None, false), KEY_AURORA))
        .await
        .expect_err("a loosening needs an approval");
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    let preview = grpc
        .rollback_rule_set(with_key(rollback(None, true), KEY_AURORA))
        .await
        .expect("previewed")
        .into_inner();
    assert!(preview.dry_run);
    assert_eq!(preview.impact.len(), 1, "{preview:?}");
    assert!(preview.impact[0].looser > 0, "{preview:?}");
    let approval = pb::LooseningApproval {
        reason: "test: back to the base's cheeks".into(),
        approver: "Dr. Test".into(),
        loosenings: preview.loosenings.clone().expect("it loosens"),
    };
    let back = grpc
        .rollback_rule_set(with_key(rollback(Some(approval), false), KEY_PLATFORM))
        .await
        .expect("rolled back")
        .into_inner();
    assert_eq!(back.version, BUNDLED_VERSION);
    assert!(!back.dry_run);

    let st = grpc
        .list_rule_set_versions(with_key(
            pb::ListRuleSetVersionsRequest { id: "nope".into() },
            KEY_PLATFORM,
        ))
        .await
        .expect_err("unknown");
    assert_eq!(st.code(), Code::NotFound);
}
