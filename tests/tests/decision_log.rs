//! The decision log (docs/operate.md, "Decision log") against a real PostgreSQL that each test
//! starts on a free port: the real binary logs every decision made over REST and gRPC, with
//! its `decision_id`, who asked and the rule set that answered, and no fact value; PostgreSQL
//! killed mid-stream costs no answer, the drops are counted, and writes resume when it is back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use protocol_server::auth::hash_key;
use protocol_server::grpc::pb;
use protocol_server::grpc::pb::decision_log_service_client::DecisionLogServiceClient;
use protocol_tests::fixtures::{bearer, healthy_facts};
use protocol_tests::json_pb::{contraindication_pb, eligibility_pb};
use protocol_tests::postgres_server::PostgresServer;
use protocol_tests::{KEY_AURORA, KEY_BASE, Server, ServerBuilder, keys_yaml};
use serde_json::{Value, json};

/// An Aurora key with the `audit` scope only (the clinic's auditor).
const KEY_AURORA_AUDIT: &str = "tp-test-aurora-audit-4e1f07";

/// The test keys and the auditor's, inline.
fn keys_with_auditor() -> String {
    format!(
        "{}- {{id: aurora-audit, tenant: clinic-aurora, scopes: [audit], sha256: \"{}\"}}\n",
        keys_yaml(),
        hash_key(KEY_AURORA_AUDIT)
    )
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

fn eligibility_request() -> Value {
    json!({
        "treatment": "microneedling",
        "date": "2026-12-01",
        "facts": healthy_facts(),
        "history": [],
    })
}

/// The masking every server of these tests runs with: one fact dropped, one hashed.
const MASK: &str = "pregnant:drop,date_of_birth:hash";
/// The hashing key (inline here; a key file in production).
const MASK_KEY: &str = "decision-log-test-key-0123456789";

fn server(pg: &PostgresServer, tweak: impl Fn(ServerBuilder) -> ServerBuilder) -> Server {
    tweak(
        ServerBuilder::new()
            .env("PROTOCOL_API_KEYS", &keys_with_auditor())
            .env("PROTOCOL_DECISION_LOG_URL", &pg.url())
            .env("PROTOCOL_DECISION_LOG_MASK", MASK)
            .env("PROTOCOL_DECISION_LOG_MASK_KEY", MASK_KEY),
    )
    .spawn()
    .expect("server starts")
}

async fn post(server: &Server, path: &str, key: &str, body: &Value) -> Value {
    let res = http()
        .post(server.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.expect("json")
}

async fn readyz(server: &Server) -> Value {
    http()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json")
}

/// Every row of the log, as JSON objects.
fn rows(pg: &PostgresServer) -> Vec<Value> {
    let out = pg
        .psql("SELECT coalesce(json_agg(t ORDER BY decided_at), '[]') FROM decision_log t")
        .expect("query");
    serde_json::from_str(out.trim()).expect("rows")
}

fn count(pg: &PostgresServer) -> usize {
    pg.psql("SELECT count(*) FROM decision_log")
        .ok()
        .and_then(|o| o.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `check` holds (up to `secs`).
async fn until(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_over_rest_and_grpc_are_logged_with_their_ids_and_no_fact_values() {
    let pg = PostgresServer::start().expect("postgres");
    let server = server(&pg, |b| b);

    // REST: one check, a batch of two, a contraindication check.
    let one = post(
        &server,
        "/v1/eligibility",
        KEY_AURORA,
        &eligibility_request(),
    )
    .await;
    let batch = post(
        &server,
        "/v1/eligibility:batch",
        KEY_BASE,
        &json!({"checks": [eligibility_request(), eligibility_request()]}),
    )
    .await;
    let contra_req = json!({"treatments": ["microneedling"], "facts": healthy_facts()});
    post(
        &server,
        "/v1/contraindications:check",
        KEY_AURORA,
        &contra_req,
    )
    .await;
    // gRPC: one check and a contraindication check.
    let mut grpc = server.grpc().await.expect("grpc client");
    let g = grpc
        .check_eligibility(bearer(eligibility_pb(&eligibility_request()), KEY_AURORA))
        .await
        .expect("grpc eligibility")
        .into_inner();
    grpc.check_contraindications(bearer(contraindication_pb(&contra_req), KEY_AURORA))
        .await
        .expect("grpc contraindications");

    let mut ids = BTreeSet::new();
    ids.insert(one["decision_id"].as_str().expect("id").to_owned());
    for r in batch["results"].as_array().expect("results") {
        ids.insert(r["decision_id"].as_str().expect("id").to_owned());
    }
    ids.insert(g.decision_id.clone());
    assert_eq!(ids.len(), 4);

    // 4 eligibility decisions and 2 contraindication decisions, written asynchronously.
    assert!(
        until(15, || count(&pg) >= 6).await,
        "6 rows expected, got {}: {}",
        count(&pg),
        pg.log()
    );
    let rows = rows(&pg);
    assert_eq!(rows.len(), 6, "{rows:#?}");
    let logged: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["operation"] == "eligibility")
        .map(|r| r["decision_id"].as_str().expect("present").to_owned())
        .collect();
    assert_eq!(logged, ids, "the answers' decision ids are the rows'");
    assert_eq!(
        rows.iter()
            .filter(|r| r["operation"] == "contraindications")
            .count(),
        2
    );

    let row = rows
        .iter()
        .find(|r| r["decision_id"] == one["decision_id"])
        .expect("present");
    assert_eq!(row["clinic"], "clinic-aurora");
    assert_eq!(row["key_id"], "aurora-all");
    assert_eq!(row["treatment"], "microneedling");
    assert_eq!(row["decision"], one["decision"]);
    assert_eq!(row["ruleset_id"], one["ruleset"]["id"]);
    assert_eq!(row["ruleset_version"], one["ruleset"]["version"]);
    assert_eq!(row["ruleset_digest"], one["ruleset"]["digest"]);
    assert_eq!(
        row["answer"]["decision_id"],
        Value::Null,
        "the answer as the engine gave it"
    );
    assert_eq!(row["answer"]["decision"], one["decision"]);
    let base_row = rows
        .iter()
        .find(|r| r["key_id"] == "borealis-all")
        .expect("the batch's rows");
    assert_eq!(base_row["clinic"], "clinic-borealis");

    // The masked facts: `pregnant` dropped, `date_of_birth` hashed (keyed, the same in every
    // row), every other fact as given; each row names what was masked.
    let facts = healthy_facts();
    let dob = facts["date_of_birth"].as_str().expect("a date").to_owned();
    let mut hashes = BTreeSet::new();
    for row in &rows {
        let logged = row["request"]["facts"].as_object().expect("facts");
        assert_eq!(logged.get("pregnant"), None, "{row}");
        let hashed = logged["date_of_birth"].as_str().expect("hashed");
        assert!(hashed.starts_with("hmac-sha256:"), "{row}");
        hashes.insert(hashed.to_owned());
        assert!(!row.to_string().contains(&dob), "{row}");
        for (name, value) in facts.as_object().expect("present") {
            if name != "pregnant" && name != "date_of_birth" {
                assert_eq!(logged.get(name), Some(value), "{name} as given: {row}");
            }
        }
        assert_eq!(
            row["masked_facts"],
            json!({"pregnant": "drop", "date_of_birth": "hash"}),
            "{row}"
        );
    }
    assert_eq!(hashes.len(), 1, "one value, one hash: {hashes:?}");
    // The server's own log names no fact value either (it never saw the rows' content).
    let output = server.output().join("\n");
    assert!(!output.contains("\"facts\""), "{output}");

    // The clinic's auditor reads a decision back by the id on the answer, REST and gRPC.
    let id = one["decision_id"].as_str().expect("id");
    let res = get_decision(&server, id, KEY_AURORA_AUDIT).await;
    assert_eq!(res.0, 200, "{}", res.1);
    assert_eq!(res.1["decision_id"], id);
    assert_eq!(res.1["clinic"], "clinic-aurora");
    assert_eq!(res.1["ruleset_digest"], one["ruleset"]["digest"]);
    assert_eq!(res.1["request"]["facts"], row["request"]["facts"]);
    assert_eq!(res.1["answer"]["decision"], one["decision"]);
    let mut audit = DecisionLogServiceClient::new(server.channel().await.expect("channel"));
    let g_row = audit
        .get_decision(bearer(
            pb::GetDecisionRequest {
                decision_id: g.decision_id.clone(),
            },
            KEY_AURORA_AUDIT,
        ))
        .await
        .expect("grpc GetDecision")
        .into_inner();
    assert_eq!(g_row.decision_id, g.decision_id);
    assert_eq!(g_row.clinic, "clinic-aurora");
    assert_eq!(
        g_row.ruleset,
        g.ruleset.map(|r| pb::RuleSetRef { base: None, ..r })
    );

    // Tenant-bound: Borealis's decision is not found for Aurora's auditor (REST and gRPC).
    let borealis_id = base_row["decision_id"].as_str().expect("id");
    let res = get_decision(&server, borealis_id, KEY_AURORA_AUDIT).await;
    assert_eq!(res.0, 404, "{}", res.1);
    let st = audit
        .get_decision(bearer(
            pb::GetDecisionRequest {
                decision_id: borealis_id.into(),
            },
            KEY_AURORA_AUDIT,
        ))
        .await
        .expect_err("another clinic's decision");
    assert_eq!(st.code(), tonic::Code::NotFound);
    // The `audit` scope is needed; a bad id is named.
    assert_eq!(get_decision(&server, id, KEY_AURORA).await.0, 403);
    let res = get_decision(&server, "not-a-uuid", KEY_AURORA_AUDIT).await;
    assert_eq!(res.0, 400, "{}", res.1);
    assert!(res.1.to_string().contains("decision_id"), "{}", res.1);
}

async fn get_decision(server: &Server, id: &str, key: &str) -> (u16, Value) {
    let res = http()
        .get(server.url(&format!("/v1/decisions/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .expect("answered");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// A masking setting naming a fact no rule set declares (a typo would store the fact as given)
/// or hashing without a key stops the server at start, naming the setting.
#[test]
fn a_masking_setting_that_cannot_work_stops_the_server_at_start() {
    for (mask, expected) in [
        ("pregnnt:drop", "did you mean 'pregnant'"),
        ("pregnant:blur", "drop or hash"),
        ("date_of_birth:hash", "PROTOCOL_DECISION_LOG_MASK_KEY_FILE"),
    ] {
        let (status, output) = ServerBuilder::new()
            .env(
                "PROTOCOL_DECISION_LOG_URL",
                "postgres://postgres@127.0.0.1:1/postgres",
            )
            .env("PROTOCOL_DECISION_LOG_MASK", mask)
            .run_to_exit(Duration::from_secs(30))
            .expect("exits");
        assert!(!status.success(), "{mask}: {output}");
        assert!(output.contains(expected), "{mask}: {output}");
        let setting = output.to_lowercase().replace('-', "_");
        assert!(setting.contains("decision_log_mask"), "{mask}: {output}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_decision_log_reading_one_says_it_is_off() {
    let server = ServerBuilder::new()
        .env("PROTOCOL_API_KEYS", &keys_with_auditor())
        .spawn()
        .expect("server starts");
    let id = "01937c4e-8a5b-7c3d-9e2f-0a1b2c3d4e5f";
    let (status, problem) = get_decision(&server, id, KEY_AURORA_AUDIT).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["reason"], "DECISION_LOG_OFF");
    assert_eq!(readyz(&server).await["decision_log"], Value::Null);
    let mut audit = DecisionLogServiceClient::new(server.channel().await.expect("channel"));
    let st = audit
        .get_decision(bearer(
            pb::GetDecisionRequest {
                decision_id: id.into(),
            },
            KEY_AURORA_AUDIT,
        ))
        .await
        .expect_err("off");
    assert_eq!(st.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_killed_mid_stream_costs_no_answer_counts_drops_and_writes_resume() {
    let mut pg = PostgresServer::start().expect("postgres");
    let server = server(&pg, |b| {
        b.env("PROTOCOL_DECISION_LOG_QUEUE", "5")
            .env("PROTOCOL_DECISION_LOG_BATCH", "2")
    });
    let mut made = 0usize;
    for _ in 0..3 {
        post(
            &server,
            "/v1/eligibility",
            KEY_AURORA,
            &eligibility_request(),
        )
        .await;
        made += 1;
    }
    assert!(until(15, || count(&pg) == 3).await, "{}", pg.log());

    pg.kill();
    assert!(!pg.listening());
    // Every decision is still answered, REST and gRPC, without waiting on PostgreSQL.
    let mut grpc = server.grpc().await.expect("grpc client");
    let started = Instant::now();
    for _ in 0..20 {
        post(
            &server,
            "/v1/eligibility",
            KEY_AURORA,
            &eligibility_request(),
        )
        .await;
        grpc.check_eligibility(bearer(eligibility_pb(&eligibility_request()), KEY_AURORA))
            .await
            .expect("answered while PostgreSQL is down");
        made += 2;
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "40 decisions took {:?}",
        started.elapsed()
    );
    let ready = readyz(&server).await;
    let log = &ready["decision_log"];
    assert!(log["dropped"].as_u64().expect("present") > 0, "{ready}");
    assert!(
        until(15, || {
            // The writer notices at its next write.
            block_on(readyz(&server))["decision_log"]["status"] == "down"
        })
        .await
    );

    pg.restart().expect("postgres back");
    // Decisions after the outage are written, and so is what the log held (its queue and the
    // batch it was writing): every decision is either a row or counted as dropped.
    for _ in 0..3 {
        post(
            &server,
            "/v1/eligibility",
            KEY_AURORA,
            &eligibility_request(),
        )
        .await;
        made += 1;
    }
    let settled = until(30, || {
        let r = block_on(readyz(&server));
        let dropped = r["decision_log"]["dropped"].as_u64().unwrap_or(0) as usize;
        r["decision_log"]["queued"] == 0 && count(&pg) + dropped == made
    })
    .await;
    let ready = readyz(&server).await;
    let dropped = ready["decision_log"]["dropped"].as_u64().expect("present") as usize;
    assert!(
        settled,
        "made {made}, rows {}, {ready}\n{}",
        count(&pg),
        server.output().join("\n")
    );
    assert_eq!(ready["decision_log"]["status"], "up");
    assert_eq!(
        ready["status"], "ready",
        "the log never makes a replica unready"
    );
    assert!(
        count(&pg) > 3 + 3,
        "what was held is written too: {}",
        count(&pg)
    );
    assert_eq!(
        ready["decision_log"]["written"].as_u64().expect("present") as usize,
        made - dropped
    );
}

/// Runs a future to completion from synchronous code inside the multi-threaded runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// Issue 26: a PostgreSQL that holds its connections and answers nothing (stopped, not killed)
/// left `/readyz` saying the log was up while every decision queued. Now the write times out:
/// down, then up again and every decision written once it answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_postgres_is_down_in_readyz_and_the_queue_is_written_when_it_answers() {
    let pg = PostgresServer::start().expect("postgres");
    let server = server(&pg, |b| b);
    post(
        &server,
        "/v1/eligibility",
        KEY_AURORA,
        &eligibility_request(),
    )
    .await;
    assert!(until(15, || count(&pg) == 1).await, "{}", pg.log());
    assert_eq!(readyz(&server).await["decision_log"]["status"], "up");

    pg.signal_all("-STOP");
    post(
        &server,
        "/v1/eligibility",
        KEY_AURORA,
        &eligibility_request(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        last = readyz(&server).await;
        if last["decision_log"]["status"] == "down" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pg.signal_all("-CONT");
    assert_eq!(last["decision_log"]["status"], "down", "{last}");
    assert!(until(40, || count(&pg) == 2).await, "{}", pg.log());
    let deadline = Instant::now() + Duration::from_secs(20);
    while readyz(&server).await["decision_log"]["status"] != "up" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(readyz(&server).await["decision_log"]["status"], "up");
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_answered_just_before_shutdown_are_written() {
    let pg = PostgresServer::start().expect("postgres");
    let mut server = server(&pg, |b| b);
    let mut ids = BTreeSet::new();
    for _ in 0..10 {
        let a = post(
            &server,
            "/v1/eligibility",
            KEY_AURORA,
            &eligibility_request(),
        )
        .await;
        ids.insert(a["decision_id"].as_str().expect("id").to_owned());
    }
    server.terminate().expect("SIGTERM");
    let status = server.wait_exit(Duration::from_secs(30)).expect("exits");
    assert!(status.success(), "{status}");
    let logged: BTreeSet<String> = rows(&pg)
        .iter()
        .map(|r| r["decision_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(logged, ids);
}

/// `wait` holds a decision up to `PROTOCOL_DECISION_LOG_WAIT_MS` for room in a full queue, then
/// answers it unlogged and counts it; `drop` answers at once. PostgreSQL is down from the start
/// (nothing listens on the URL's port), so the queue of one stays full.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_waits_under_wait_and_drops_at_once_under_drop() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    for (policy, slow) in [("wait", true), ("drop", false)] {
        let server = ServerBuilder::new()
            .env("PROTOCOL_API_KEYS", &keys_with_auditor())
            .env("PROTOCOL_DECISION_LOG_URL", &url)
            .env("PROTOCOL_DECISION_LOG_QUEUE", "1")
            .env("PROTOCOL_DECISION_LOG_WHEN_FULL", policy)
            .env("PROTOCOL_DECISION_LOG_WAIT_MS", "300")
            .spawn()
            .expect("server starts with PostgreSQL down");
        // The first fills the queue.
        post(
            &server,
            "/v1/eligibility",
            KEY_AURORA,
            &eligibility_request(),
        )
        .await;
        let started = Instant::now();
        for _ in 0..3 {
            post(
                &server,
                "/v1/eligibility",
                KEY_AURORA,
                &eligibility_request(),
            )
            .await;
        }
        let took = started.elapsed();
        if slow {
            assert!(took >= Duration::from_millis(900), "{policy}: {took:?}");
        } else {
            assert!(took < Duration::from_millis(600), "{policy}: {took:?}");
        }
        let ready = readyz(&server).await;
        assert_eq!(ready["decision_log"]["dropped"], 3, "{policy}: {ready}");
        assert_eq!(ready["decision_log"]["status"], "down", "{policy}: {ready}");
        assert_eq!(ready["status"], "ready", "{policy}: {ready}");
    }
}

/// `POST /v1/decisions/{id}:replay` with `body` (none: an empty body) as `key`.
async fn replay(server: &Server, id: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = http()
        .post(server.url(&format!("/v1/decisions/{id}:replay")))
        .bearer_auth(key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("answered");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// The healthy client without the facts the test servers mask: its decisions replay exactly.
fn unmasked_facts() -> Value {
    let mut facts = healthy_facts();
    let map = facts.as_object_mut().expect("an object");
    map.remove("pregnant");
    map.remove("date_of_birth");
    facts
}

/// The id of the row of `operation` logged last (the decisions without an id on their answer).
fn last_row_id(pg: &PostgresServer, operation: &str) -> String {
    let out = pg
        .psql(&format!(
            "SELECT decision_id FROM decision_log WHERE operation = '{operation}' \
             ORDER BY decided_at DESC LIMIT 1"
        ))
        .expect("query");
    out.trim().to_owned()
}

/// Replay over REST and gRPC, with a real PostgreSQL and a real Redis holding two versions of
/// Aurora's overlay: a decision replays against the version that answered (exactly, when no
/// fact was masked), or against another version, with the differences listed; masked facts are
/// named and treated as unanswered, never silently; the replay is not logged; another clinic's
/// decision is not found; the `audit` scope is needed.
#[tokio::test(flavor = "multi_thread")]
async fn a_logged_decision_replays_against_its_version_or_another_over_rest_and_grpc() {
    let pg = PostgresServer::start().expect("postgres");
    let redis = protocol_tests::redis_server::RedisServer::start().expect("redis");
    let server = server(&pg, |b| b.with_redis(&redis));

    // A: every fact answered (two of them masked in the log). B: the masked facts left out.
    let a = post(
        &server,
        "/v1/eligibility",
        KEY_AURORA,
        &eligibility_request(),
    )
    .await;
    let mut b_req = eligibility_request();
    b_req["facts"] = unmasked_facts();
    let b = post(&server, "/v1/eligibility", KEY_AURORA, &b_req).await;
    // C: depth limits with a client (a row with an id of its own).
    let depth_req = json!({
        "treatment": "microneedling", "device": "dermapen_4", "role": "physician",
        "zone": "cheeks", "facts": unmasked_facts(), "date": "2026-12-01", "history": [],
    });
    let c_answer = post(&server, "/v1/depth-limits", KEY_AURORA, &depth_req).await;
    let bundled = c_answer["ruleset"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    // D: Borealis's decision.
    let d = post(&server, "/v1/eligibility", KEY_BASE, &eligibility_request()).await;
    assert!(until(15, || count(&pg) >= 4).await, "{}", pg.log());
    let c = last_row_id(&pg, "depth_limits");

    // A new version of Aurora's overlay, tighter on the cheeks, is published and activated.
    let yaml = include_str!("../../rulesets/clinics/clinic-aurora.yaml")
        .replace(&format!("version: \"{bundled}\""), "version: \"2026.12.9\"")
        .replace("zones: {cheeks: 1.2,", "zones: {cheeks: 0.8,");
    let res = http()
        .post(server.url("/v1/rulesets"))
        .bearer_auth(KEY_AURORA)
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .expect("publish");
    assert!(res.status().is_success(), "{:?}", res.text().await);
    let res = http()
        .post(server.url("/v1/rulesets/clinic-aurora/activate"))
        .bearer_auth(KEY_AURORA)
        .json(&json!({"version": "2026.12.9", "expected_current": bundled}))
        .send()
        .await
        .expect("activate");
    assert!(res.status().is_success(), "{:?}", res.text().await);
    let written = readyz(&server).await["decision_log"]["written"].clone();

    // B against the version that answered (no longer the active one): the same answer.
    let id_b = b["decision_id"].as_str().expect("id");
    let (status, r) = replay(&server, id_b, KEY_AURORA_AUDIT, None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["operation"], "eligibility");
    assert_eq!(r["original"]["ruleset"]["version"], bundled.as_str());
    assert_eq!(r["replayed"]["ruleset"]["version"], bundled.as_str());
    assert_eq!(r["replayed"]["ruleset"]["digest"], b["ruleset"]["digest"]);
    assert_eq!(r["changed"], false, "{r}");
    assert_eq!(r["changes"], json!([]));
    assert_eq!(r["masked_facts"], json!({}));
    assert_eq!(r["replayed"]["decision"], b["decision"]);

    // A: its masked facts are named and treated as unanswered, so the replay says what that
    // changed instead of passing it off as the same decision.
    let id_a = a["decision_id"].as_str().expect("id");
    let (status, r) = replay(&server, id_a, KEY_AURORA_AUDIT, Some(json!({}))).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["masked_facts"],
        json!({"pregnant": "drop", "date_of_birth": "hash"})
    );
    assert_eq!(r["original"]["decision"], a["decision"]);
    assert_eq!(r["replayed"]["decision"], "incomplete", "{r}");
    assert_eq!(r["changed"], true);
    let changes = r["changes"].as_array().expect("changes");
    assert!(
        changes.contains(&json!({"path": "decision", "change": "changed",
            "before": a["decision"], "after": "incomplete"})),
        "{r}"
    );
    assert!(
        changes.contains(&json!({"path": "missing_facts", "change": "added", "after": "pregnant"})),
        "{r}"
    );

    // C against the new version: the tighter cap is the one difference, REST and gRPC.
    let (status, r) = replay(&server, &c, KEY_AURORA_AUDIT, None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["changed"], false, "against its own version: {r}");
    let (status, r) = replay(
        &server,
        &c,
        KEY_AURORA_AUDIT,
        Some(json!({"ruleset_version": "2026.12.9"})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["operation"], "depth_limits");
    assert_eq!(r["replayed"]["ruleset"]["version"], "2026.12.9");
    assert_eq!(
        r["changes"],
        json!([{"path": "zones[zone=cheeks].max_depth_mm", "change": "changed",
                "before": 1.2, "after": 0.8}]),
        "{r}"
    );
    let mut audit = DecisionLogServiceClient::new(server.channel().await.expect("channel"));
    let g = audit
        .replay_decision(bearer(
            pb::ReplayDecisionRequest {
                decision_id: c.clone(),
                ruleset_version: Some("2026.12.9".into()),
                ruleset_digest: None,
            },
            KEY_AURORA_AUDIT,
        ))
        .await
        .expect("grpc ReplayDecision")
        .into_inner();
    assert_eq!(g.decision_id, c);
    assert!(g.changed);
    assert_eq!(g.changes.len(), 1, "{g:?}");
    assert_eq!(g.changes[0].path, "zones[zone=cheeks].max_depth_mm");
    assert_eq!(g.changes[0].change(), pb::AnswerChangeKind::Changed);
    assert_eq!(
        g.replayed
            .as_ref()
            .and_then(|s| s.ruleset.as_ref())
            .map(|r| r.version.as_str()),
        Some("2026.12.9")
    );
    assert_eq!(
        g.original
            .as_ref()
            .and_then(|s| s.ruleset.as_ref())
            .map(|r| r.version.as_str()),
        Some(bundled.as_str())
    );
    let g = audit
        .replay_decision(bearer(
            pb::ReplayDecisionRequest {
                decision_id: id_a.into(),
                ruleset_version: None,
                ruleset_digest: None,
            },
            KEY_AURORA_AUDIT,
        ))
        .await
        .expect("grpc ReplayDecision")
        .into_inner();
    assert_eq!(
        g.masked_facts.get("pregnant").map(String::as_str),
        Some("drop")
    );
    assert_eq!(
        g.replayed.map(|s| s.decision).as_deref(),
        Some("incomplete")
    );

    // An unknown version: 404 / NOT_FOUND naming it.
    let (status, r) = replay(
        &server,
        &c,
        KEY_AURORA_AUDIT,
        Some(json!({"ruleset_version": "2099.1.1"})),
    )
    .await;
    assert_eq!(status, 404, "{r}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("2099.1.1"),
        "{r}"
    );

    // Tenant-bound: Borealis's decision is not found for Aurora's auditor (REST and gRPC).
    let id_d = d["decision_id"].as_str().expect("id");
    let (status, r) = replay(&server, id_d, KEY_AURORA_AUDIT, None).await;
    assert_eq!(status, 404, "{r}");
    let st = audit
        .replay_decision(bearer(
            pb::ReplayDecisionRequest {
                decision_id: id_d.into(),
                ruleset_version: None,
                ruleset_digest: None,
            },
            KEY_AURORA_AUDIT,
        ))
        .await
        .expect_err("another clinic's decision");
    assert_eq!(st.code(), tonic::Code::NotFound);
    // The `audit` scope is needed; a body field that does not exist is named; POST without
    // `:replay` is not an operation.
    assert_eq!(replay(&server, id_a, KEY_AURORA, None).await.0, 403);
    let st = audit
        .replay_decision(bearer(
            pb::ReplayDecisionRequest {
                decision_id: id_a.into(),
                ruleset_version: None,
                ruleset_digest: None,
            },
            KEY_AURORA,
        ))
        .await
        .expect_err("no audit scope");
    assert_eq!(st.code(), tonic::Code::PermissionDenied);
    let (status, r) = replay(
        &server,
        id_a,
        KEY_AURORA_AUDIT,
        Some(json!({"version": "x"})),
    )
    .await;
    assert_eq!(status, 400, "{r}");
    assert!(r.to_string().contains("version"), "{r}");
    let res = http()
        .post(server.url(&format!("/v1/decisions/{id_a}")))
        .bearer_auth(KEY_AURORA_AUDIT)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), 404);

    // Replays are not decisions: nothing more was written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(readyz(&server).await["decision_log"]["written"], written);
    assert_eq!(count(&pg), 4);
}

/// The schema (refinery, `services/app/migrations/decision_log`): a fresh database is
/// migrated at the first start, each migration recorded once with its checksum; a second start
/// applies nothing and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_database_is_migrated_once_and_a_second_start_is_a_no_op() {
    let pg = PostgresServer::start().expect("postgres");
    let history = || {
        pg.psql(
            "SELECT coalesce(json_agg(h ORDER BY version), '[]') FROM decision_log_schema_history h",
        )
        .ok()
        .and_then(|o| serde_json::from_str::<Value>(o.trim()).ok())
        .unwrap_or(Value::Null)
    };
    let up = |server: &Server| block_on(readyz(server))["decision_log"]["status"] == "up";

    let mut first = server(&pg, |b| b);
    assert!(until(15, || up(&first)).await, "{}", pg.log());
    let applied = history();
    let versions: Vec<i64> = applied
        .as_array()
        .expect("rows")
        .iter()
        .map(|m| m["version"].as_i64().expect("version"))
        .collect();
    // Every migration file, in order (`V<n>__<name>.sql`).
    let files = std::fs::read_dir(
        protocol_tests::workspace_root().join("services/app/migrations/decision_log"),
    )
    .expect("migrations")
    .count();
    let expected: Vec<i64> = (1..=files as i64).collect();
    assert_eq!(versions, expected, "{applied}");
    assert!(
        applied
            .as_array()
            .expect("rows")
            .iter()
            .all(|m| m["checksum"].is_string()),
        "{applied}"
    );
    let said = |server: &Server| {
        server
            .output()
            .iter()
            .filter(|l| l.contains("decision log: migration applied"))
            .count()
    };
    assert_eq!(said(&first), files, "{}", first.output().join("\n"));
    // The schema works: a decision is written, with the column the second migration added.
    post(
        &first,
        "/v1/eligibility",
        KEY_AURORA,
        &eligibility_request(),
    )
    .await;
    assert!(until(15, || count(&pg) == 1).await);
    first.terminate().expect("SIGTERM");
    first.wait_exit(Duration::from_secs(30)).expect("exits");

    let second = server(&pg, |b| b);
    assert!(until(15, || up(&second)).await, "{}", pg.log());
    assert_eq!(history(), applied, "nothing applied again");
    assert_eq!(said(&second), 0, "{}", second.output().join("\n"));
    post(
        &second,
        "/v1/eligibility",
        KEY_AURORA,
        &eligibility_request(),
    )
    .await;
    assert!(until(15, || count(&pg) == 2).await);
    assert_eq!(rows(&pg)[1]["masked_facts"]["pregnant"], "drop");
}

/// A dry run of a base activation, with the decision log on (a real PostgreSQL and a real
/// Redis): it names every rule set whose served rules change and, per clinic, how many of its
/// latest logged decisions would be answered differently and how (a cap shallower), over REST,
/// gRPC and protocolctl; nothing is written: Redis keeps its active versions and history,
/// PostgreSQL its rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_of_a_base_change_counts_the_logged_decisions_it_would_change() {
    use pb::rule_set_admin_service_client::RuleSetAdminServiceClient;
    use protocol_tests::KEY_PLATFORM;

    let pg = PostgresServer::start().expect("postgres");
    let redis = protocol_tests::redis_server::RedisServer::start().expect("redis");
    let server = server(&pg, |b| b.with_redis(&redis));

    // Traffic: Aurora (its overlay) and Borealis (the base) each ask for cheeks depth limits
    // twice and eligibility once.
    let depth_req = json!({
        "treatment": "microneedling", "device": "dermapen_4", "role": "physician",
        "zone": "cheeks", "facts": unmasked_facts(), "date": "2026-12-01", "history": [],
    });
    let mut caps = BTreeSet::new();
    for key in [KEY_AURORA, KEY_BASE] {
        for _ in 0..2 {
            let limits = post(&server, "/v1/depth-limits", key, &depth_req).await;
            caps.insert((key, limits["zones"][0]["max_depth_mm"].to_string()));
        }
        post(&server, "/v1/eligibility", key, &eligibility_request()).await;
    }
    assert!(until(15, || count(&pg) >= 6).await, "{}", pg.log());
    assert!(
        caps.contains(&(KEY_BASE, "1.5".to_owned())),
        "the base's cheeks cap for this pen: {caps:?}"
    );

    // A new base, shallower on the cheeks (1.5 -> 1.3 mm); Aurora's overlay caps them at
    // 1.2 mm already, so its physicians' answers do not move.
    let base = include_str!("../../rulesets/base.yaml");
    let bundled = base
        .lines()
        .find_map(|l| l.strip_prefix("version: \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("base version");
    let yaml = base
        .replace(
            &format!("version: \"{bundled}\""),
            "version: \"2026.12.90\"",
        )
        .replace(
            "{zone: cheeks, max_depth_mm: {value: 1.5,",
            "{zone: cheeks, max_depth_mm: {value: 1.3,",
        );
    let res = http()
        .post(server.url("/v1/rulesets"))
        .bearer_auth(KEY_PLATFORM)
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .expect("publish");
    assert!(res.status().is_success(), "{:?}", res.text().await);

    let redis_before = redis_digest(&redis);
    let rows_before = count(&pg);

    // REST.
    let res = http()
        .post(server.url("/v1/rulesets/base/activate"))
        .bearer_auth(KEY_PLATFORM)
        .json(&json!({"version": "2026.12.90", "expected_current": bundled, "dry_run": true}))
        .send()
        .await
        .expect("dry run");
    assert_eq!(res.status(), 200);
    let preview: Value = res.json().await.expect("json");
    assert_eq!(preview["dry_run"], true, "{preview}");
    let rulesets: BTreeSet<&str> = preview["impact"]
        .as_array()
        .expect("impact")
        .iter()
        .filter_map(|r| r["ruleset"].as_str())
        .collect();
    assert!(rulesets.contains("base"), "{preview}");
    assert!(
        rulesets.contains("clinic-aurora"),
        "every overlay: {preview}"
    );
    let traffic = &preview["traffic"];
    assert_eq!(traffic["sample_per_clinic"], 200, "{traffic}");
    let clinic = |name: &str| {
        traffic["clinics"]
            .as_array()
            .expect("clinics")
            .iter()
            .find(|c| c["clinic"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {traffic}"))
    };
    let borealis = clinic("clinic-borealis");
    assert_eq!(
        (
            &borealis["ruleset"],
            &borealis["decisions"],
            &borealis["changed"]
        ),
        (&json!("base"), &json!(3), &json!(2)),
        "{traffic}"
    );
    assert_eq!(
        (&borealis["shallower"], &borealis["deeper"]),
        (&json!(2), &json!(0))
    );
    let aurora = clinic("clinic-aurora");
    assert_eq!(
        (&aurora["ruleset"], &aurora["decisions"], &aurora["changed"]),
        (&json!("clinic-aurora"), &json!(3), &json!(0)),
        "{traffic}"
    );

    // gRPC, the same counts.
    let mut admin = RuleSetAdminServiceClient::new(server.channel().await.expect("channel"));
    let req = bearer(
        pb::ActivateRuleSetRequest {
            id: "base".into(),
            version: "2026.12.90".into(),
            expected_current: Some(bundled.to_owned()),
            dry_run: true,
            ..Default::default()
        },
        KEY_PLATFORM,
    );
    let g = admin
        .activate_rule_set(req)
        .await
        .expect("grpc dry run")
        .into_inner();
    let t = g.traffic.expect("traffic");
    let b = t
        .clinics
        .iter()
        .find(|c| c.clinic.as_deref() == Some("clinic-borealis"))
        .expect("borealis");
    assert_eq!((b.decisions, b.changed, b.shallower), (3, 2, 2), "{t:?}");

    // protocolctl impact.
    let url = server.url("");
    let out = protocol_tests::protocolctl(
        &["impact", "base", "2026.12.90"],
        &[("PROTOCOL_URL", &url), ("PROTOCOL_API_KEY", KEY_PLATFORM)],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(
            "clinic-borealis (base): 2 of 3 logged decisions change; 0 caps deeper, 2 shallower"
        ),
        "{}",
        out.stdout
    );

    // Nothing was written: every Redis key and value as before; PostgreSQL's rows as before.
    assert_eq!(
        redis_digest(&redis),
        redis_before,
        "a dry run writes nothing to Redis"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&pg), rows_before, "a dry run logs no decision");
    let limits = post(&server, "/v1/depth-limits", KEY_BASE, &depth_req).await;
    assert_eq!(limits["zones"][0]["max_depth_mm"], 1.5, "still served");
}

/// A digest of every key in Redis and its value (`DUMP`), sorted: equal digests, same data.
fn redis_digest(redis: &protocol_tests::redis_server::RedisServer) -> String {
    const SCRIPT: &str = "local keys = redis.call('KEYS', '*') table.sort(keys) \
        local parts = {} for _, k in ipairs(keys) do \
        parts[#parts + 1] = k parts[#parts + 1] = redis.call('DUMP', k) end \
        return #keys .. ' keys ' .. redis.sha1hex(table.concat(parts, '\\n'))";
    redis.cli(&["EVAL", SCRIPT, "0"]).expect("digest")
}
