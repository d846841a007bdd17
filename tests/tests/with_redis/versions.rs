//! Issue 12, items 3 and 4, black-box: documents validated strictly when published (no YAML tags
//! or aliases, a canonical size cap, complete bases, sane names), retiring a version never
//! activated, the activation history, and a rollback that returns to the version *active* before
//! and happens once however often it is retried.

use protocol_tests::redis_server::RedisServer;
use protocol_tests::{KEY_AURORA, KEY_BOREALIS_ADMIN, KEY_PLATFORM, Server, ServerBuilder};
use serde_json::{Value, json};

use crate::with_redis::common::*;

fn server(redis: &RedisServer) -> Server {
    ServerBuilder::new()
        .with_keys()
        .with_redis(redis)
        .spawn()
        .expect("server starts")
}

/// Any admin call: method, path, optional JSON body and extra headers; status and body.
async fn call(
    server: &Server,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let url = server.url(path);
    let mut req = match method {
        "GET" => http().get(url),
        "DELETE" => http().delete(url),
        _ => http().post(url),
    }
    .bearer_auth(key);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("answered");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The `errors` of a problem as "field: message" lines.
fn errors(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["field"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn assert_invalid_ruleset(what: &str, (status, body): &(u16, Value)) {
    assert_eq!(*status, 422, "{what}: {body}");
    assert_eq!(
        body["type"], "urn:treatment-protocol:problem:invalid-ruleset",
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_tags_and_aliases_are_refused_naming_the_line() {
    let redis = RedisServer::start().expect("redis starts");
    let server = server(&redis);
    let doc = aurora("2026.12.1", 1.0);
    assert!(doc.contains("\ntitle: Aurora Skin Clinic protocol\n"));

    // `!!binary` would decode base64 into the title; `!secret` is an application tag; an anchor
    // and an alias let one spelling stand for another value. All refused, naming the line (6).
    for (what, replaced) in [
        ("!!binary", "\ntitle: !!binary QXVyb3Jh\n"),
        ("!secret", "\ntitle: !secret Aurora\n"),
        ("!!str", "\ntitle: !!str Aurora\n"),
    ] {
        let yaml = doc.replace("\ntitle: Aurora Skin Clinic protocol\n", replaced);
        let refused = publish(&server, KEY_AURORA, &yaml).await;
        assert_invalid_ruleset(what, &refused);
        let errs = errors(&refused.1).join("\n");
        assert!(errs.contains("line 6"), "{what}: {errs}");
        assert!(errs.contains("tag"), "{what}: {errs}");
        assert!(errs.contains("title"), "{what} names the path: {errs}");
    }

    // The example: `id: &i clinic-aurora` / `version: *i`.
    let yaml = doc
        .replace("\nid: clinic-aurora\n", "\nid: &i clinic-aurora\n")
        .replace("\ntitle: Aurora Skin Clinic protocol\n", "\ntitle: *i\n");
    let refused = publish(&server, KEY_AURORA, &yaml).await;
    assert_invalid_ruleset("anchor and alias", &refused);
    let errs = errors(&refused.1).join("\n");
    assert!(errs.contains("line 4") && errs.contains("anchor"), "{errs}");

    // An alias bomb (a few hundred bytes, a megabyte once expanded): refused before expansion.
    let mut bomb = String::from("id: clinic-aurora\nversion: \"2026.12.2\"\nextends: base\n");
    bomb.push_str("a0: &a0 \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let refused = publish(&server, KEY_AURORA, &bomb).await;
    assert_invalid_ruleset("alias bomb", &refused);

    // Nothing was stored.
    let (status, versions) = call(
        &server,
        KEY_AURORA,
        "GET",
        "/v1/rulesets/clinic-aurora/versions",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(versions["versions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canonical_form_above_the_limit_is_refused_naming_its_size() {
    let redis = RedisServer::start().expect("redis starts");
    let server = server(&redis);
    // A title of quotes: under 1 MiB as YAML, twice that as canonical JSON (each `"` is `\"`).
    let title = format!("x{}", "\"".repeat(700_000));
    let yaml = aurora("2026.12.1", 1.0).replace(
        "\ntitle: Aurora Skin Clinic protocol\n",
        &format!("\ntitle: {title}\n"),
    );
    assert!(
        yaml.len() < 1024 * 1024,
        "the body itself is within the limit"
    );
    let refused = publish(&server, KEY_AURORA, &yaml).await;
    assert_invalid_ruleset("oversized canonical form", &refused);
    let detail = format!("{} {}", refused.1["detail"], errors(&refused.1).join(" "));
    assert!(detail.contains("1048576"), "names the limit: {detail}");
    assert!(
        detail.contains("canonical"),
        "names what is measured: {detail}"
    );
    let size = detail
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .unwrap_or_default();
    assert!(size > 1_400_000, "names the size: {detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_base_is_refused_one_problem_per_missing_part() {
    let redis = RedisServer::start().expect("redis starts");
    let server = server(&redis);
    let refused = publish(&server, KEY_PLATFORM, "id: x\nversion: \"1\"\n").await;
    assert_invalid_ruleset("id and version only", &refused);
    let fields: Vec<String> = refused.1["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for part in [
        "facts",
        "zones",
        "procedures",
        "indications",
        "settings",
        "roles",
        "treatments",
        "devices",
        "contraindications",
    ] {
        assert!(
            fields.iter().any(|f| f == &format!("x: {part}")),
            "{part} named: {fields:?}"
        );
    }
    let (status, _) = call(
        &server,
        KEY_PLATFORM,
        "GET",
        "/v1/rulesets/x/versions",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 404, "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_versions_must_start_with_a_letter_or_digit() {
    let redis = RedisServer::start().expect("redis starts");
    let server = server(&redis);
    for version in [".", "..", "-1", "_x", ".hidden"] {
        let refused = publish(&server, KEY_AURORA, &aurora(version, 1.0)).await;
        assert_invalid_ruleset(version, &refused);
        let errs = errors(&refused.1).join("\n");
        assert!(errs.starts_with("version:"), "{version}: {errs}");
    }
    let yaml = aurora("2026.12.1", 1.0).replace("\nid: clinic-aurora\n", "\nid: ..\n");
    let refused = publish(&server, KEY_PLATFORM, &yaml).await;
    assert_invalid_ruleset("id ..", &refused);
    assert!(
        errors(&refused.1).join("\n").starts_with("id:"),
        "{}",
        refused.1
    );
    // Path segments too: `..` never reaches the store as an id or version.
    let (status, body) = call(
        &server,
        KEY_PLATFORM,
        "GET",
        "/v1/rulesets/base/versions/.%2E",
        None,
        &[],
    )
    .await;
    assert!(status == 422 || status == 404, "{status} {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_retires_a_version_never_activated() {
    let redis = RedisServer::start().expect("redis starts");
    let server = server(&redis);
    for (v, mm) in [("2026.12.1", 1.0), ("2026.12.2", 0.9)] {
        let (status, body) = publish(&server, KEY_AURORA, &aurora(v, mm)).await;
        assert_eq!(status, 201, "{body}");
    }
    let path = "/v1/rulesets/clinic-aurora/versions/2026.12.1";

    // Another clinic's admin key may not; the owner may.
    let (status, body) = call(&server, KEY_BOREALIS_ADMIN, "DELETE", path, None, &[]).await;
    assert_eq!(status, 403, "{body}");
    let (status, retired) = call(&server, KEY_AURORA, "DELETE", path, None, &[]).await;
    assert_eq!(status, 200, "{retired}");
    assert_eq!(retired["id"], "clinic-aurora");
    assert_eq!(retired["version"], "2026.12.1");
    assert!(retired["retired_at"].is_string(), "{retired}");
    // Retiring again answers the same (idempotent).
    let (status, again) = call(&server, KEY_AURORA, "DELETE", path, None, &[]).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["retired_at"], retired["retired_at"]);

    // The payload is gone, the name stays reserved and listed as retired.
    let (status, gone) = call(&server, KEY_AURORA, "GET", path, None, &[]).await;
    assert_eq!(status, 410, "{gone}");
    let (status, body) = publish(&server, KEY_AURORA, &aurora("2026.12.1", 1.0)).await;
    assert_eq!(
        status, 409,
        "a retired version is not published again: {body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("retired"),
        "{body}"
    );
    let (status, body) = activate(&server, "clinic-aurora", "2026.12.1", BUNDLED_VERSION).await;
    assert_eq!(status, 410, "a retired version is not activated: {body}");
    let (_, versions) = call(
        &server,
        KEY_AURORA,
        "GET",
        "/v1/rulesets/clinic-aurora/versions",
        None,
        &[],
    )
    .await;
    let listed: Vec<(String, bool, bool)> = versions["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    (
                        v["version"].as_str().unwrap_or_default().to_owned(),
                        v["retired_at"].is_string(),
                        v["ever_active"] == true,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        listed,
        [
            (BUNDLED_VERSION.to_owned(), false, true),
            ("2026.12.1".to_owned(), true, false),
            ("2026.12.2".to_owned(), false, false),
        ],
        "{versions}"
    );

    // A version that is active, or ever was, stays: 409 naming it.
    let (status, body) = call(
        &server,
        KEY_AURORA,
        "DELETE",
        &format!("/v1/rulesets/clinic-aurora/versions/{BUNDLED_VERSION}"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["version"], BUNDLED_VERSION);
    let (status, body) = activate(&server, "clinic-aurora", "2026.12.2", BUNDLED_VERSION).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = activate(&server, "clinic-aurora", BUNDLED_VERSION, "2026.12.2").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server,
        KEY_AURORA,
        "DELETE",
        "/v1/rulesets/clinic-aurora/versions/2026.12.2",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 409, "once active, kept for replay: {body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("2026.12.2"),
        "{body}"
    );
    let (status, _) = call(
        &server,
        KEY_AURORA,
        "DELETE",
        "/v1/rulesets/clinic-aurora/versions/2099.1.1",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 404);
}

/// The versions of the Aurora history, oldest first.
async fn history(server: &Server) -> Vec<(String, Option<String>, String)> {
    let (status, body) = call(
        server,
        KEY_AURORA,
        "GET",
        "/v1/rulesets/clinic-aurora/history",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["history"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["version"].as_str().unwrap_or_default().to_owned(),
                        e["previous"].as_str().map(str::to_owned),
                        e["action"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_returns_to_the_version_active_before_and_happens_once() {
    let redis = RedisServer::start().expect("redis starts");
    let server = server(&redis);
    for (v, mm) in [("2026.12.1", 1.0), ("2026.12.2", 0.9)] {
        let (status, body) = publish(&server, KEY_AURORA, &aurora(v, mm)).await;
        assert_eq!(status, 201, "{body}");
    }
    // 2026.12.2 replaces the bundled version directly: 2026.12.1 was published, never active.
    let (status, body) = activate(&server, "clinic-aurora", "2026.12.2", BUNDLED_VERSION).await;
    assert_eq!(status, 200, "{body}");

    // Without `expected_current` or an `Idempotency-Key`: 428 naming the field; nothing moves.
    let rollback = "/v1/rulesets/clinic-aurora/rollback";
    let (status, body) = call(&server, KEY_AURORA, "POST", rollback, None, &[]).await;
    assert_eq!(status, 428, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("expected_current"),
        "{body}"
    );

    // Back to the version active before (the bundled one), not the one published before.
    let (status, back) = approved_move(
        &server,
        rollback,
        json!({"expected_current": "2026.12.2"}),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["version"], BUNDLED_VERSION, "{back}");
    assert_eq!(back["previous"], "2026.12.2");

    // Forward again, then a rollback retried with the same key: the first answer, once.
    let (status, body) = activate(&server, "clinic-aurora", "2026.12.2", BUNDLED_VERSION).await;
    assert_eq!(status, 200, "{body}");
    let key = [("idempotency-key", "rollback-7f3a")];
    let (s1, first) = approved_move(&server, rollback, json!({}), &key).await;
    let (s2, second) = approved_move(&server, rollback, json!({}), &key).await;
    assert_eq!((s1, s2), (200, 200), "{first} {second}");
    assert_eq!(first, second, "the retry answers what the first did");
    assert_eq!(first["version"], BUNDLED_VERSION);
    // The same key for another request is refused.
    let (status, body) = call(
        &server,
        KEY_AURORA,
        "POST",
        rollback,
        Some(json!({"to_version": "2026.12.1"})),
        &key,
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // The history: seeded, activated, rolled back, activated, rolled back once.
    let seen = history(&server).await;
    let expected: Vec<(String, Option<String>, String)> = vec![
        (BUNDLED_VERSION.into(), None, "seed".into()),
        (
            "2026.12.2".into(),
            Some(BUNDLED_VERSION.into()),
            "activate".into(),
        ),
        (
            BUNDLED_VERSION.into(),
            Some("2026.12.2".into()),
            "rollback".into(),
        ),
        (
            "2026.12.2".into(),
            Some(BUNDLED_VERSION.into()),
            "activate".into(),
        ),
        (
            BUNDLED_VERSION.into(),
            Some("2026.12.2".into()),
            "rollback".into(),
        ),
    ];
    assert_eq!(seen, expected);
    let (_, body) = call(
        &server,
        KEY_AURORA,
        "GET",
        "/v1/rulesets/clinic-aurora/history",
        None,
        &[],
    )
    .await;
    let last = &body["history"][4];
    // The rollback loosened what Aurora is served: approved by the platform key (four eyes),
    // and the entry records what it changed and the approval.
    assert_eq!(
        last["by"], "platform-ops",
        "who: the caller's key id: {body}"
    );
    assert!(
        last["effect"]
            .as_str()
            .is_some_and(|e| e.contains("clinic-aurora")),
        "{body}"
    );
    assert_eq!(last["approval"]["approver"], "Dr. Test", "{body}");
    assert!(
        last["digest"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sha256:")
    );
    assert!(last["at"].is_string(), "{last}");

    // Nothing before the first activation: 409.
    let (status, body) = call(
        &server,
        KEY_AURORA,
        "POST",
        rollback,
        Some(json!({"expected_current": BUNDLED_VERSION})),
        &[],
    )
    .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_history_retire_and_idempotent_rollback() {
    use protocol_tests::pb;
    use tonic::Code;
    use tonic_types::StatusExt;

    let redis = RedisServer::start().expect("redis starts");
    let server = server(&redis);
    let mut grpc = pb::rule_set_admin_service_client::RuleSetAdminServiceClient::new(
        server.channel().await.expect("channel"),
    );
    for (v, mm) in [("2026.12.1", 1.0), ("2026.12.2", 0.9)] {
        let (status, body) = publish(&server, KEY_AURORA, &aurora(v, mm)).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = activate(&server, "clinic-aurora", "2026.12.2", BUNDLED_VERSION).await;
    assert_eq!(status, 200, "{body}");

    // Retire: never active is fine; active once is FAILED_PRECONDITION naming it.
    let retired = grpc
        .retire_rule_set_version(with_key(
            pb::RetireRuleSetVersionRequest {
                id: "clinic-aurora".into(),
                version: "2026.12.1".into(),
            },
            KEY_AURORA,
        ))
        .await
        .expect("retired")
        .into_inner();
    assert_eq!(retired.version, "2026.12.1");
    assert_eq!(retired.by.as_deref(), Some("aurora-all"));
    let st = grpc
        .retire_rule_set_version(with_key(
            pb::RetireRuleSetVersionRequest {
                id: "clinic-aurora".into(),
                version: BUNDLED_VERSION.into(),
            },
            KEY_AURORA,
        ))
        .await
        .expect_err("was active");
    assert_eq!(st.code(), Code::FailedPrecondition, "{st:?}");
    let info = st.get_details_error_info().expect("error info");
    assert_eq!(info.reason, "VERSION_WAS_ACTIVE");
    assert_eq!(
        info.metadata.get("version").map(String::as_str),
        Some(BUNDLED_VERSION)
    );
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
    let marks: Vec<(bool, bool)> = versions
        .versions
        .iter()
        .map(|v| (v.ever_active, v.retired_at.is_some()))
        .collect();
    assert_eq!(marks, [(true, false), (false, true), (true, false)]);

    // Rollback without a guard: FAILED_PRECONDITION naming `expected_current`.
    let rollback = || pb::RollbackRuleSetRequest {
        id: "clinic-aurora".into(),
        to_version: None,
        expected_current: None,
        approval: None,
        dry_run: false,
    };
    let st = grpc
        .rollback_rule_set(with_key(rollback(), KEY_AURORA))
        .await
        .expect_err("no guard");
    assert_eq!(st.code(), Code::FailedPrecondition, "{st:?}");
    assert!(
        st.message().contains("expected_current"),
        "{}",
        st.message()
    );

    // With `idempotency-key` metadata, twice: one rollback, the same answer. It loosens what
    // Aurora is served, so a dry run names the loosenings and the platform key approves them.
    let preview = grpc
        .rollback_rule_set(with_key(
            pb::RollbackRuleSetRequest {
                dry_run: true,
                expected_current: Some("2026.12.2".into()),
                ..rollback()
            },
            KEY_AURORA,
        ))
        .await
        .expect("previewed")
        .into_inner();
    let approval = pb::LooseningApproval {
        reason: "test: back to the bundled version".into(),
        approver: "Dr. Test".into(),
        loosenings: preview.loosenings.clone().expect("it loosens"),
    };
    let keyed = || {
        let mut req = with_key(
            pb::RollbackRuleSetRequest {
                approval: Some(approval.clone()),
                ..rollback()
            },
            KEY_PLATFORM,
        );
        req.metadata_mut()
            .insert("idempotency-key", "grpc-rollback-1".parse().expect("ascii"));
        req
    };
    let first = grpc
        .rollback_rule_set(keyed())
        .await
        .expect("rolled back")
        .into_inner();
    let again = grpc
        .rollback_rule_set(keyed())
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(first.version, BUNDLED_VERSION);
    assert_eq!(first.previous.as_deref(), Some("2026.12.2"));

    let history = grpc
        .get_rule_set_history(with_key(
            pb::GetRuleSetHistoryRequest {
                id: "clinic-aurora".into(),
            },
            KEY_AURORA,
        ))
        .await
        .expect("history")
        .into_inner();
    let actions: Vec<(&str, &str)> = history
        .history
        .iter()
        .map(|e| (e.version.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            (BUNDLED_VERSION, "seed"),
            ("2026.12.2", "activate"),
            (BUNDLED_VERSION, "rollback"),
        ]
    );
    // Another clinic's admin key may not read it.
    let st = grpc
        .get_rule_set_history(with_key(
            pb::GetRuleSetHistoryRequest {
                id: "clinic-aurora".into(),
            },
            KEY_BOREALIS_ADMIN,
        ))
        .await
        .expect_err("not yours");
    assert_eq!(st.code(), Code::PermissionDenied);
}
