//! Helpers of the Redis tests: a Redis with two replicas, rule-set variants, polling.

use std::time::{Duration, Instant};

pub use protocol_tests::fixtures::{bearer as with_key, healthy_facts};
use protocol_tests::redis_server::RedisServer;
use protocol_tests::{KEY_AURORA, KEY_PLATFORM, Server, ServerBuilder};
use serde_json::{Value, json};

pub const AURORA_YAML: &str = include_str!("../../../rulesets/clinics/clinic-aurora.yaml");
pub const BUNDLED_VERSION: &str = "2026.12.0";
/// Aurora's bundled cap for microneedling on the cheeks.
pub const BUNDLED_CHEEKS_MM: f64 = 1.2;

/// Held by tests that assert a deadline or load the machine, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// [`SERIAL`], from an async test.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// [`SERIAL`], from a test outside a runtime (the docs test's chains load the machine: servers,
/// Redis, a pip install).
pub fn serial_blocking() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.blocking_lock()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// One Redis and two replicas (A and B) with the test keys.
pub struct Fleet {
    pub redis: RedisServer,
    pub a: Server,
    pub b: Server,
}

impl Fleet {
    pub fn start() -> Self {
        Self::start_with(|b| b)
    }

    /// Both replicas configured by `tweak` on top of keys and Redis (reconcile every second).
    pub fn start_with(tweak: impl Fn(ServerBuilder) -> ServerBuilder) -> Self {
        let redis = RedisServer::start().expect("redis-server starts");
        let a = tweak(ServerBuilder::new().with_keys().with_redis(&redis))
            .spawn()
            .expect("replica A starts");
        let b = tweak(ServerBuilder::new().with_keys().with_redis(&redis))
            .spawn()
            .expect("replica B starts");
        Self { redis, a, b }
    }
}

/// The Aurora overlay under `version`, with its microneedling cheeks cap set to `cheeks_mm`
/// (tightened below the bundled 1.2 mm).
pub fn aurora(version: &str, cheeks_mm: f64) -> String {
    let text = AURORA_YAML
        .replace(
            &format!("version: \"{BUNDLED_VERSION}\""),
            &format!("version: \"{version}\""),
        )
        .replace(
            "zones: {cheeks: 1.2,",
            &format!("zones: {{cheeks: {cheeks_mm},"),
        );
    assert!(
        text.contains(&format!("cheeks: {cheeks_mm},")),
        "cap replaced"
    );
    text
}

/// `POST /v1/rulesets` with a YAML body; returns status and body.
pub async fn publish(server: &Server, key: &str, yaml: &str) -> (u16, Value) {
    let answer = server.as_key(key).publish_yaml(yaml).await;
    (answer.status, answer.body)
}

/// `POST /v1/rulesets/{id}/activate` (through [`approved_move`]: a loosening is approved).
pub async fn activate(server: &Server, id: &str, version: &str, expected: &str) -> (u16, Value) {
    approved_move(
        server,
        &format!("/v1/rulesets/{id}/activate"),
        json!({"version": version, "expected_current": expected}),
        &[],
    )
    .await
}

/// An admin move (`activate` or `rollback` body at `path`) by Aurora's key, first as a dry run:
/// when it loosens what any clinic is served, it is sent with the approval of exactly those
/// loosenings, from the platform key (four eyes: not the key that published them).
pub async fn approved_move(
    server: &Server,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let post = |key: &'static str, body: Value| async move {
        let mut req = http().post(server.url(path)).bearer_auth(key).json(&body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.expect("answered");
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap_or(Value::Null))
    };
    let mut dry = body.clone();
    dry["dry_run"] = json!(true);
    let (status, preview) = post(KEY_AURORA, dry).await;
    // A refusal, or (a retried Idempotency-Key) the first answer: nothing to approve.
    if status != 200 || preview["dry_run"] != true {
        return (status, preview);
    }
    match preview["loosenings"].as_str() {
        None => post(KEY_AURORA, body).await,
        Some(digest) => {
            let mut approved = body;
            approved["approval"] = json!({
                "reason": "test: approved by the clinic's medical director",
                "approver": "Dr. Test",
                "loosenings": digest,
            });
            post(KEY_PLATFORM, approved).await
        }
    }
}

/// Publishes and activates an Aurora variant on `server`; panics unless both succeed.
pub async fn roll_out(server: &Server, version: &str, cheeks_mm: f64, expected: &str) -> Value {
    let (status, body) = publish(server, KEY_AURORA, &aurora(version, cheeks_mm)).await;
    assert!(
        status == 201 || status == 200,
        "publish {version}: {status} {body}"
    );
    let (status, body) = activate(server, "clinic-aurora", version, expected).await;
    assert_eq!(status, 200, "activate {version}: {body}");
    body
}

/// Rolls an Aurora variant out on replica A and waits (2 s at most) until B serves it too.
pub async fn roll_out_to_fleet(fleet: &Fleet, version: &str, cheeks_mm: f64, expected: &str) {
    roll_out(&fleet.a, version, cheeks_mm, expected).await;
    let served = within(Duration::from_secs(2), || async {
        cheeks(&fleet.b).await.1 == version
    })
    .await;
    assert!(served.is_some(), "B serves {version}");
}

/// What a device sees: Aurora's microneedling limit on the cheeks (dermapen_4, physician), the
/// rule-set version and the ETag.
pub async fn cheeks(server: &Server) -> (f64, String, String) {
    let res = http()
        .get(server.url("/v1/depth-limits"))
        .bearer_auth(KEY_AURORA)
        .query(&[
            ("treatment", "microneedling"),
            ("device", "dermapen_4"),
            ("role", "physician"),
            ("zone", "cheeks"),
        ])
        .send()
        .await
        .expect("depth limits answered");
    assert_eq!(res.status().as_u16(), 200, "depth limits");
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = res.json().await.expect("json");
    (
        body["zones"][0]["max_depth_mm"]
            .as_f64()
            .unwrap_or(f64::NAN),
        body["ruleset"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        etag,
    )
}

pub fn eligibility_request() -> Value {
    json!({
        "treatment": "microneedling",
        "date": "2026-12-01",
        "facts": healthy_facts(),
        "history": [],
    })
}

/// `POST /v1/eligibility` as Aurora: status and body.
pub async fn eligibility(server: &Server) -> (u16, Value) {
    eligibility_as(server, KEY_AURORA).await
}

/// `POST /v1/eligibility` with `key`: status and body.
pub async fn eligibility_as(server: &Server, key: &str) -> (u16, Value) {
    let answer = server.as_key(key).eligibility(&eligibility_request()).await;
    (answer.status, answer.body)
}

/// `GET /readyz` with an admin key (which lists the clinic overlays): status and body.
pub async fn readyz(server: &Server) -> (u16, Value) {
    // The platform's key: an operator's view, every clinic and the last error in full.
    let answer = server.as_key(KEY_PLATFORM).readyz().await;
    (answer.status, answer.body)
}

/// The active version of `id` that `/readyz` reports.
pub fn served_version(ready: &Value, id: &str) -> String {
    ready["rulesets"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .and_then(|r| r["version"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Polls `check` every 10 ms until it holds or `within` passes; returns the time it took.
pub async fn within<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
