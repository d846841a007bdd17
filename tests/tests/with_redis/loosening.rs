//! Issue 14, section 2, black-box: the loosening guard on publish. A version more permissive
//! than the *active* version of the same rule set is refused (422 naming each loosening, with
//! its path and line) unless the document declares `loosening: {reason, approved_by}`; the
//! declaration is stored with the version and listed with it.

use protocol_tests::redis_server::RedisServer;
use protocol_tests::{KEY_AURORA, Server, ServerBuilder};
use serde_json::Value;

use crate::with_redis::common::*;

fn server(redis: &RedisServer) -> Server {
    ServerBuilder::new()
        .with_keys()
        .with_redis(redis)
        .spawn()
        .expect("server starts")
}

const DECLARED: &str =
    "loosening: {reason: \"SkinPen study: 1.0 mm on cheeks is safe\", approved_by: \"Dr. Vale\"}\n";

async fn versions(server: &Server) -> Value {
    let res = http()
        .get(server.url("/v1/rulesets/clinic-aurora/versions"))
        .bearer_auth(KEY_AURORA)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.expect("json")
}

fn version<'a>(list: &'a Value, v: &str) -> &'a Value {
    list["versions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["version"] == v))
        .unwrap_or_else(|| panic!("version {v} listed: {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looser_version_is_refused_unless_the_loosening_is_declared() {
    let redis = RedisServer::start().expect("redis starts");
    let server = server(&redis);
    roll_out(&server, "2026.12.1", 0.8, BUNDLED_VERSION).await;

    // Deeper on the cheeks than the active 0.8 mm: refused, naming where and what.
    let (status, body) = publish(&server, KEY_AURORA, &aurora("2026.12.2", 1.0)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["type"],
        "urn:treatment-protocol:problem:invalid-ruleset"
    );
    let errors = body["errors"].as_array().expect("errors").clone();
    assert!(!errors.is_empty(), "{body}");
    for e in &errors {
        let message = e["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("loosens the active version '2026.12.1'")
                && message.contains("loosening: {reason, approved_by}"),
            "{e}"
        );
    }
    let cheeks_cell = errors
        .iter()
        .find(|e| {
            let m = e["message"].as_str().unwrap_or_default();
            m.contains("microneedling ×") && m.contains("cheeks") && m.contains("0.8 -> 1")
        })
        .unwrap_or_else(|| panic!("the cheeks cap is named: {body}"));
    assert!(
        cheeks_cell["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("tighten.treatments[")),
        "{cheeks_cell}"
    );

    // A declaration with an empty approver is itself refused, naming the field.
    let blank = format!(
        "{}loosening: {{reason: \"new study\", approved_by: \" \"}}\n",
        aurora("2026.12.2", 1.0)
    );
    let (status, body) = publish(&server, KEY_AURORA, &blank).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("loosening.approved_by"), "{body}");

    // Declared: published, and the declaration is listed with the version.
    let declared = format!("{}{DECLARED}", aurora("2026.12.2", 1.0));
    let (status, body) = publish(&server, KEY_AURORA, &declared).await;
    assert_eq!(status, 201, "{body}");
    let list = versions(&server).await;
    assert_eq!(
        version(&list, "2026.12.2")["loosening"]["approved_by"],
        "Dr. Vale",
        "{list}"
    );
    assert!(
        version(&list, "2026.12.1").get("loosening").is_none(),
        "{list}"
    );
    // gRPC lists the same declaration.
    let channel = server.channel().await.expect("channel");
    let listed =
        protocol_tests::pb::rule_set_admin_service_client::RuleSetAdminServiceClient::new(channel)
            .list_rule_set_versions(with_key(
                protocol_tests::pb::ListRuleSetVersionsRequest {
                    id: "clinic-aurora".into(),
                },
                KEY_AURORA,
            ))
            .await
            .expect("listed")
            .into_inner();
    let declared = listed
        .versions
        .iter()
        .find(|v| v.version == "2026.12.2")
        .and_then(|v| v.loosening.as_ref())
        .expect("the declaration over gRPC");
    assert_eq!(declared.approved_by, "Dr. Vale");
    assert!(
        listed
            .versions
            .iter()
            .find(|v| v.version == "2026.12.1")
            .is_some_and(|v| v.loosening.is_none())
    );

    // Tighter than the active version needs no declaration.
    let (status, body) = publish(&server, KEY_AURORA, &aurora("2026.12.3", 0.7)).await;
    assert_eq!(status, 201, "{body}");
}
