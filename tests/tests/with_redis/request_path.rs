//! The request path makes no Redis call: decisions come from the in-memory catalog.

use std::sync::Arc;

use protocol_tests::ServerBuilder;
use protocol_tests::redis_server::RedisServer;

use crate::with_redis::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_eligibility_requests_issue_no_redis_command() {
    let _serial = serial().await;
    let redis = RedisServer::start().expect("redis starts");
    // No periodic reconcile during the test (hourly), so any command would come from requests.
    // The pub/sub connection is idle: its keep-alive ping also runs hourly.
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .env("PROTOCOL_RECONCILE_INTERVAL_SECS", "3600")
        .spawn()
        .expect("server starts");
    // Start-up (load, seed, subscribe, first reconcile) is over once /readyz says `up`.
    let up = within(std::time::Duration::from_secs(5), || async {
        readyz(&server).await.1["redis"] == "up"
    })
    .await;
    assert!(up.is_some());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let before = redis.command_calls().expect("commandstats");
    assert!(
        before.contains_key("hgetall"),
        "the start-up reconcile shows in commandstats: {before:?}"
    );
    let client = http();
    let url = Arc::new(server.url("/v1/eligibility"));
    let body = Arc::new(eligibility_request());
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let mut ok = 0u32;
                for _ in 0..625 {
                    let res = client
                        .post(url.as_str())
                        .bearer_auth(protocol_tests::KEY_AURORA)
                        .json(body.as_ref())
                        .send()
                        .await
                        .expect("answered");
                    if res.status().is_success() {
                        ok += 1;
                    }
                    let _ = res.bytes().await;
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for w in workers {
        ok += w.await.expect("worker");
    }
    assert_eq!(ok, 10_000, "every request answered");
    let after = redis.command_calls().expect("commandstats");

    // Only our own INFO calls differ.
    let changed: Vec<_> = after
        .iter()
        .filter(|(cmd, calls)| cmd.as_str() != "info" && before.get(*cmd) != Some(*calls))
        .map(|(cmd, calls)| (cmd.clone(), before.get(cmd).copied().unwrap_or(0), *calls))
        .collect();
    assert!(
        changed.is_empty(),
        "redis commands issued during 10,000 eligibility requests: {changed:?}"
    );
}
