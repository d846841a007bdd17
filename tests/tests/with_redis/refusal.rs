//! A replica serves only rule sets it verified from Redis, and refuses one rule set at a time:
//!
//! - a replica that never loaded anything from Redis (started while Redis was down) serves no
//!   clinic, and never re-seeds an empty Redis from its bundled rule sets (that rolled the fleet
//!   back); only a replica holding rule sets it read from Redis puts them back;
//! - one corrupt payload refuses that rule set (and the overlays that need it): its clinic is
//!   answered fail-closed, naming it, every other clinic as usual, and `/readyz` lists it.

use std::time::Duration;

use protocol_tests::redis_server::PREFIX;
use protocol_tests::{KEY_AURORA, KEY_BASE, ServerBuilder};

use crate::with_redis::common::*;

/// `kill -STOP` / `kill -CONT` of a replica.
fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}

/// The active pointers in Redis (`HGETALL`), as redis-cli prints them.
fn active_pointers(redis: &protocol_tests::redis_server::RedisServer) -> String {
    redis
        .cli(&["HGETALL", &format!("{PREFIX}:active")])
        .expect("hgetall")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_never_loaded_from_redis_neither_serves_nor_reseeds_it() {
    let _serial = serial().await;
    let mut fleet = Fleet::start();
    roll_out_to_fleet(&fleet, "2026.12.1", 1.0, BUNDLED_VERSION).await;

    // Redis goes away; replica C starts meanwhile (with the first-deployment seeding setting on,
    // the worst case: seeding applies only to a Redis found empty at start).
    fleet.redis.kill();
    let c = ServerBuilder::new()
        .with_keys()
        .with_redis(&fleet.redis)
        .spawn()
        .expect("C starts without redis");
    let (status, ready) = readyz(&c).await;
    assert_eq!(status, 503, "C has verified nothing: not ready: {ready}");
    assert_eq!(ready["origin"], "none", "{ready}");
    let (status, problem) = eligibility(&c).await;
    assert_eq!(
        status, 503,
        "never answered from the bundled rule sets: {problem}"
    );
    assert_eq!(
        problem["type"], "urn:treatment-protocol:problem:ruleset-unavailable",
        "{problem}"
    );

    // Redis comes back empty (no persistence) while A is paused and B gone: only C could re-seed,
    // and must not.
    signal(fleet.a.pid(), "-STOP");
    fleet.b.terminate().expect("B stops");
    fleet.redis.restart().expect("redis restarts empty");
    let alarm = within(Duration::from_secs(5), || async {
        readyz(&c).await.1["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no active rule sets"))
    })
    .await;
    assert!(
        alarm.is_some(),
        "C raises the alarm: {}",
        readyz(&c).await.1
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        active_pointers(&fleet.redis).trim(),
        "",
        "C never seeds Redis from its bundled rule sets"
    );
    assert_eq!(readyz(&c).await.0, 503);
    assert_eq!(eligibility(&c).await.0, 503);

    // A, which holds what Redis had activated, puts it back; C then serves it.
    signal(fleet.a.pid(), "-CONT");
    let restored = within(Duration::from_secs(6), || async {
        active_pointers(&fleet.redis).contains("2026.12.1")
    })
    .await;
    assert!(
        restored.is_some(),
        "A re-seeds the activated versions: {}",
        active_pointers(&fleet.redis)
    );
    let healed = within(Duration::from_secs(6), || async {
        readyz(&c).await.0 == 200
    })
    .await;
    assert!(healed.is_some(), "{}", readyz(&c).await.1);
    let (mm, version, _) = cheeks(&c).await;
    assert_eq!(
        (mm, version.as_str()),
        (1.0, "2026.12.1"),
        "never the bundled 1.2 mm"
    );
}

/// Overwrites the stored payload of `id@version` so that it no longer matches its digest.
pub(crate) fn corrupt(redis: &protocol_tests::redis_server::RedisServer, id: &str, version: &str) {
    let key = format!("{PREFIX}:doc:{id}:{version}");
    let good = redis.cli(&["GET", &key]).expect("get");
    assert!(good.len() > 100, "payload stored: {good}");
    let tampered = good.trim().replacen("\"id\"", "\"id\" ", 1);
    redis.cli(&["SET", &key, &tampered]).expect("set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_corrupt_payload_refuses_only_its_clinic_on_a_new_replica() {
    let _serial = serial().await;
    let fleet = Fleet::start();
    roll_out_to_fleet(&fleet, "2026.12.1", 0.8, BUNDLED_VERSION).await;
    corrupt(&fleet.redis, "clinic-aurora", "2026.12.1");

    let c = ServerBuilder::new()
        .with_keys()
        .with_redis(&fleet.redis)
        .spawn()
        .expect("C starts");
    // The other clinics are answered from the verified base.
    let (status, body) = eligibility_as(&c, KEY_BASE).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ruleset"]["id"], "base");
    // Aurora is refused, naming its rule set, never answered from the bundled overlay or the base.
    let (status, problem) = eligibility(&c).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        problem["type"],
        "urn:treatment-protocol:problem:ruleset-unavailable"
    );
    assert_eq!(problem["reason"], "RULESET_REFUSED", "{problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("clinic-aurora") && detail.contains("2026.12.1"),
        "{problem}"
    );
    let mut client = c.grpc().await.expect("grpc");
    let status = client
        .check_eligibility(with_key(
            protocol_tests::json_pb::eligibility_pb(&eligibility_request()),
            KEY_AURORA,
        ))
        .await
        .expect_err("refused over gRPC too");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("ErrorInfo");
    assert_eq!(info.reason, "RULESET_REFUSED");
    assert_eq!(
        info.metadata.get("id").map(String::as_str),
        Some("clinic-aurora")
    );
    // /readyz keeps C in rotation for the clinics it can answer, and names the refusal.
    let (status, ready) = readyz(&c).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["origin"], "redis");
    let refused = ready["refused"].as_array().cloned().unwrap_or_default();
    assert_eq!(refused.len(), 1, "{ready}");
    assert_eq!(refused[0]["id"], "clinic-aurora");
    assert_eq!(refused[0]["version"], "2026.12.1");
    assert!(
        refused[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("digest")),
        "{ready}"
    );
    // Replicas that verified 2026.12.1 before it was damaged keep serving it.
    assert_eq!(cheeks(&fleet.a).await.0, 0.8);

    // Publishing and activating a good Aurora version heals C for Aurora.
    roll_out(&fleet.a, "2026.12.2", 0.9, "2026.12.1").await;
    let healed = within(Duration::from_secs(3), || async {
        eligibility(&c).await.0 == 200
    })
    .await;
    assert!(healed.is_some(), "{}", readyz(&c).await.1);
    assert_eq!(cheeks(&c).await.0, 0.9);

    // A corrupt base refuses every clinic: a new replica is not ready at all.
    corrupt(&fleet.redis, "base", BUNDLED_VERSION);
    let d = ServerBuilder::new()
        .with_keys()
        .with_redis(&fleet.redis)
        .spawn()
        .expect("D starts");
    let (status, ready) = readyz(&d).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(eligibility_as(&d, KEY_BASE).await.0, 503);
    assert_eq!(eligibility(&d).await.0, 503);
}
