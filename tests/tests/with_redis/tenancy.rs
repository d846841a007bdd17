//! Administration stays inside the caller's clinic, over REST and gRPC alike: an `admin` key
//! manages only the rule set whose id is its tenant; reading another clinic's overlay, publishing,
//! activating or rolling back another clinic's overlay or the base, and creating a rule set, need
//! `platform`. A clinic's key may read the active version of the base it extends (read only).
//!
//! The reproduction this pins: with clinic A's admin-only key a base without the pregnancy rule
//! was published and activated, and a pregnant client of clinic B became bookable.

use protocol_tests::redis_server::RedisServer;
use protocol_tests::{
    KEY_AURORA, KEY_BASE, KEY_BOREALIS_ADMIN, KEY_PLATFORM, Server, ServerBuilder, pb,
};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use crate::with_redis::common::*;

const BASE_YAML: &str = include_str!("../../../rulesets/base.yaml");

fn admin(
    channel: tonic::transport::Channel,
) -> pb::rule_set_admin_service_client::RuleSetAdminServiceClient<tonic::transport::Channel> {
    pb::rule_set_admin_service_client::RuleSetAdminServiceClient::new(channel)
}

fn k<T>(key: &str, msg: T) -> tonic::Request<T> {
    with_key(msg, key)
}

/// The bundled base as a new version without its pregnancy rule (what the attacker published).
fn base_without_pregnancy(version: &str) -> String {
    let text = BASE_YAML.replace(
        &format!("version: \"{BUNDLED_VERSION}\""),
        &format!("version: \"{version}\""),
    );
    let start = text
        .find("  - id: pregnancy\n")
        .expect("the base has a pregnancy rule");
    let end = start
        + 4
        + text[start + 4..]
            .find("\n  - id: ")
            .expect("a rule follows the pregnancy rule");
    format!("{}{}", &text[..start], &text[end + 1..])
}

/// A new overlay for Borealis, whose clients would see its messages.
fn borealis_overlay() -> String {
    AURORA_YAML
        .replace("id: clinic-aurora", "id: clinic-borealis")
        .replace(
            &format!("version: \"{BUNDLED_VERSION}\""),
            "version: \"2026.12.9\"",
        )
}

async fn rest(
    server: &Server,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = server.url(path);
    let req = match method {
        "GET" => http().get(url),
        _ => http().post(url),
    }
    .bearer_auth(key);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let res = req.send().await.expect("answered");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn refused_rest(what: &str, (status, body): (u16, Value), id: &str) {
    assert_eq!(status, 403, "{what}: {body}");
    assert_eq!(
        body["type"], "urn:treatment-protocol:problem:forbidden",
        "{what}: {body}"
    );
    assert_eq!(body["id"], id, "{what}: {body}");
    assert!(
        matches!(
            body["reason"].as_str(),
            Some("RULESET_NOT_YOURS" | "RULESET_CREATION_NEEDS_PLATFORM")
        ),
        "{what}: {body}"
    );
}

fn refused_grpc(what: &str, result: Result<impl std::fmt::Debug, tonic::Status>, id: &str) {
    let st = result.expect_err(what);
    assert_eq!(st.code(), Code::PermissionDenied, "{what}: {st:?}");
    let info = st
        .get_details_error_info()
        .expect("ErrorInfo on every error");
    assert!(
        matches!(
            info.reason.as_str(),
            "RULESET_NOT_YOURS" | "RULESET_CREATION_NEEDS_PLATFORM"
        ),
        "{what}: {info:?}"
    );
    assert_eq!(info.domain, "treatment-protocol");
    assert_eq!(
        info.metadata.get("id").map(String::as_str),
        Some(id),
        "{what}"
    );
}

async fn eligibility(server: &Server, key: &str, facts: Value) -> Value {
    let (status, body) = rest(
        server,
        key,
        "POST",
        "/v1/eligibility",
        Some(json!({"treatment": "microneedling", "date": "2026-12-01", "facts": facts,
                    "history": [], "device": "dermapen_4", "zones": ["cheeks"], "indication": "acne_scars"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_admin_key_never_crosses_into_another_rule_set() {
    let redis = RedisServer::start().expect("redis starts");
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .spawn()
        .expect("server starts");
    let mut grpc = admin(server.channel().await.expect("channel"));

    // A clinic's key reads the base its overlay extends, read only and the active version only
    // (to author and diff against what the server serves, issue 23); any other version of it is
    // refused like another clinic's rule set.
    let (status, versions) = rest(
        &server,
        KEY_AURORA,
        "GET",
        "/v1/rulesets/base/versions",
        None,
    )
    .await;
    assert_eq!(status, 200, "{versions}");
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(1),
        "{versions}"
    );
    assert_eq!(versions["active"]["version"], BUNDLED_VERSION, "{versions}");
    let (status, doc) = rest(
        &server,
        KEY_AURORA,
        "GET",
        &format!("/v1/rulesets/base/versions/{BUNDLED_VERSION}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["document"]["id"], "base", "{doc}");
    refused_rest(
        "read another version of the base",
        rest(
            &server,
            KEY_AURORA,
            "GET",
            "/v1/rulesets/base/versions/2099.1.1",
            None,
        )
        .await,
        "base",
    );
    let listed = grpc
        .get_rule_set_version(k(
            KEY_AURORA,
            pb::GetRuleSetVersionRequest {
                id: "base".into(),
                version: BUNDLED_VERSION.into(),
            },
        ))
        .await
        .expect("the active base, over gRPC too");
    assert!(listed.into_inner().active);

    // Read: another clinic's overlay, by another clinic's key.
    for (key, id) in [(KEY_BOREALIS_ADMIN, "clinic-aurora")] {
        refused_rest(
            "read versions",
            rest(
                &server,
                key,
                "GET",
                &format!("/v1/rulesets/{id}/versions"),
                None,
            )
            .await,
            id,
        );
        refused_rest(
            "read a version",
            rest(
                &server,
                key,
                "GET",
                &format!("/v1/rulesets/{id}/versions/{BUNDLED_VERSION}"),
                None,
            )
            .await,
            id,
        );
        refused_grpc(
            "read versions",
            grpc.list_rule_set_versions(k(key, pb::ListRuleSetVersionsRequest { id: id.into() }))
                .await,
            id,
        );
        refused_grpc(
            "read a version",
            grpc.get_rule_set_version(k(
                key,
                pb::GetRuleSetVersionRequest {
                    id: id.into(),
                    version: BUNDLED_VERSION.into(),
                },
            ))
            .await,
            id,
        );
    }
    // Listing shows only what a key may manage.
    let (status, list) = rest(&server, KEY_AURORA, "GET", "/v1/rulesets", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["rulesets"]
            .as_array()
            .map(|a| a.iter().map(|r| r["id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("clinic-aurora")])
    );
    let (_, list) = rest(&server, KEY_BOREALIS_ADMIN, "GET", "/v1/rulesets", None).await;
    assert_eq!(list["rulesets"], json!([]), "{list}");
    let listed = grpc
        .list_rule_sets(k(KEY_BOREALIS_ADMIN, pb::ListRuleSetsRequest {}))
        .await
        .expect("lists")
        .into_inner();
    assert!(listed.rulesets.is_empty(), "{listed:?}");

    // Publish: a base without the pregnancy rule, another clinic's overlay, a new clinic's overlay.
    let evil_base = base_without_pregnancy("2026.12.9");
    for (key, doc, id) in [
        (KEY_AURORA, evil_base.clone(), "base"),
        (
            KEY_BOREALIS_ADMIN,
            aurora("2026.12.9", 0.9),
            "clinic-aurora",
        ),
        (KEY_AURORA, borealis_overlay(), "clinic-borealis"),
        (KEY_BOREALIS_ADMIN, borealis_overlay(), "clinic-borealis"),
        // Its own id, but not an overlay of the base: a whole rule set (no tighten-only check),
        // or one extending another clinic's (which would probe whether that one exists).
        (
            KEY_AURORA,
            aurora("2026.12.8", 0.9).replace("extends: base\n", ""),
            "clinic-aurora",
        ),
        (
            KEY_AURORA,
            aurora("2026.12.7", 0.9).replace("extends: base", "extends: clinic-borealis"),
            "clinic-aurora",
        ),
    ] {
        let (status, body) = publish(&server, key, &doc).await;
        refused_rest("publish", (status, body), id);
        refused_grpc(
            "publish",
            grpc.publish_rule_set(k(
                key,
                pb::PublishRuleSetRequest {
                    document: doc,
                    format: pb::DocumentFormat::Yaml as i32,
                },
            ))
            .await,
            id,
        );
    }

    // The platform publishes both (the base drops a rule, so it declares the loosening); clinic
    // keys still may not activate or roll back them.
    let declared =
        format!("{evil_base}loosening: {{reason: \"tenancy test\", approved_by: \"platform\"}}\n");
    let (status, body) = publish(&server, KEY_PLATFORM, &declared).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = publish(&server, KEY_PLATFORM, &aurora("2026.12.9", 0.9)).await;
    assert_eq!(status, 201, "{body}");
    for (key, id) in [
        (KEY_AURORA, "base"),
        (KEY_BOREALIS_ADMIN, "clinic-aurora"),
        (KEY_BOREALIS_ADMIN, "base"),
    ] {
        let body = json!({"version": "2026.12.9", "expected_current": BUNDLED_VERSION});
        refused_rest(
            "activate",
            rest(
                &server,
                key,
                "POST",
                &format!("/v1/rulesets/{id}/activate"),
                Some(body),
            )
            .await,
            id,
        );
        refused_grpc(
            "activate",
            grpc.activate_rule_set(k(
                key,
                pb::ActivateRuleSetRequest {
                    id: id.into(),
                    version: "2026.12.9".into(),
                    expected_current: Some(BUNDLED_VERSION.into()),
                    expect_none_active: false,
                    approval: None,
                    dry_run: false,
                },
            ))
            .await,
            id,
        );
        refused_rest(
            "rollback",
            rest(
                &server,
                key,
                "POST",
                &format!("/v1/rulesets/{id}/rollback"),
                None,
            )
            .await,
            id,
        );
        refused_grpc(
            "rollback",
            grpc.rollback_rule_set(k(
                key,
                pb::RollbackRuleSetRequest {
                    id: id.into(),
                    to_version: None,
                    expected_current: None,
                    approval: None,
                    dry_run: false,
                },
            ))
            .await,
            id,
        );
    }

    // Nothing changed for clinic B's pregnant client: still contraindicated, from the bundled base.
    let mut facts = healthy_facts();
    facts["pregnant"] = json!(true);
    let answer = eligibility(&server, KEY_BASE, facts).await;
    assert_eq!(answer["decision"], "contraindicated", "{answer}");
    assert_eq!(answer["ruleset"]["version"], BUNDLED_VERSION, "{answer}");

    // Its own overlay, a clinic key manages: Aurora activates the version the platform published.
    let (status, body) = activate(&server, "clinic-aurora", "2026.12.9", BUNDLED_VERSION).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contradictory_activation_is_refused_over_grpc() {
    let redis = RedisServer::start().expect("redis starts");
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .spawn()
        .expect("server starts");
    let mut grpc = admin(server.channel().await.expect("channel"));
    let st = grpc
        .activate_rule_set(with_key(
            pb::ActivateRuleSetRequest {
                id: "clinic-aurora".into(),
                version: BUNDLED_VERSION.into(),
                expected_current: Some(BUNDLED_VERSION.into()),
                expect_none_active: true,
                approval: None,
                dry_run: false,
            },
            KEY_AURORA,
        ))
        .await
        .expect_err("contradiction");
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    let bad = st.get_details_bad_request().expect("BadRequest");
    assert_eq!(bad.field_violations[0].field, "expect_none_active");
    assert_eq!(
        st.get_details_error_info().map(|i| i.reason),
        Some("INVALID_REQUEST".into())
    );
}
