//! Managed Redis shapes, against real processes: a TLS-only `redis-server` with a private CA
//! (certificates made here with rcgen), one that requires client certificates, an ACL user with
//! only the commands and keys the service needs, and a primary + replica + three Sentinels where
//! the primary is SIGKILLed during a stream of publishes and activations.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use protocol_tests::redis_server::{PREFIX, RedisOptions, RedisServer, RedisTls};
use protocol_tests::{KEY_AURORA, KEY_PLATFORM, Server, ServerBuilder};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

use crate::with_redis::common::{
    BUNDLED_VERSION, activate, approved_move, aurora, cheeks, http, publish, readyz, roll_out,
    serial, served_version, within,
};

/// A private CA and what it signs, as PEM files: a server certificate for 127.0.0.1 and
/// localhost, and a client certificate.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "protocol test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
            .expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("CA written");
        for (name, sans, usage) in [
            (
                "server",
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            (
                "client",
                vec!["protocol-server".to_owned()],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        ] {
            let mut params = CertificateParams::new(sans).expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &ca).expect("signed");
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).expect("written");
            std::fs::write(
                dir.path().join(format!("{name}-key.pem")),
                key.serialize_pem(),
            )
            .expect("written");
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// A TLS-only server with this CA's server certificate.
    fn redis(&self, require_client_cert: bool) -> RedisServer {
        RedisServer::start_with(RedisOptions {
            tls: Some(RedisTls {
                cert_file: self.path("server.pem"),
                key_file: self.path("server-key.pem"),
                ca_file: self.ca(),
                require_client_cert,
                cli_cert: Some((self.path("client.pem"), self.path("client-key.pem"))),
            }),
            ..RedisOptions::default()
        })
        .expect("TLS redis-server starts")
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Waits until `/readyz` says Redis is down with an error, and returns that error.
async fn redis_down_error(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let (_, ready) = readyz(server).await;
        if ready["redis"] == "down"
            && let Some(error) = ready["last_error"].as_str()
        {
            return error.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never said redis is down: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The active version of `id` in this Redis, read with redis-cli.
fn active_in(redis: &RedisServer, id: &str) -> String {
    redis
        .cli(&["HGET", &format!("{PREFIX}:active"), id])
        .expect("redis-cli HGET")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca_publishes_activates_and_serves() {
    let pki = Pki::new();
    let redis = pki.redis(false);
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .env("PROTOCOL_REDIS_CA_FILE", path_str(&pki.ca()))
        .spawn()
        .expect("server starts with rediss://");
    let (status, ready) = readyz(&server).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["redis"], "up", "{ready}");
    assert_eq!(ready["origin"], "redis", "seeded over TLS: {ready}");

    roll_out(&server, "2026.12.1", 1.0, BUNDLED_VERSION).await;
    let served = within(Duration::from_secs(2), || async {
        cheeks(&server).await.0 == 1.0
    })
    .await;
    assert!(served.is_some(), "the activation is served");
    assert_eq!(active_in(&redis, "clinic-aurora"), "2026.12.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_wrong_ca_is_refused_clearly_without_hanging() {
    let pki = Pki::new();
    let other = Pki::new();
    let redis = pki.redis(false);
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .env("PROTOCOL_REDIS_CA_FILE", path_str(&other.ca()))
        .spawn()
        .expect("the server starts (and waits for Redis)");
    let error = redis_down_error(&server).await;
    assert!(error.to_lowercase().contains("certificate"), "{error}");

    // An admin write is answered promptly with 503, not held.
    let started = Instant::now();
    let (status, body) = publish(&server, KEY_PLATFORM, &aurora("2026.12.1", 1.0)).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let logged = server.output().join("\n");
    assert!(
        logged.contains("UnknownIssuer") || logged.contains("certificate"),
        "the log says why: {logged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_requiring_client_certificates_accepts_ours_and_refuses_none() {
    let pki = Pki::new();
    let redis = pki.redis(true);
    let with_cert = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .env("PROTOCOL_REDIS_CA_FILE", path_str(&pki.ca()))
        .env(
            "PROTOCOL_REDIS_CERT_FILE",
            path_str(&pki.path("client.pem")),
        )
        .env(
            "PROTOCOL_REDIS_KEY_FILE",
            path_str(&pki.path("client-key.pem")),
        )
        .spawn()
        .expect("server starts with a client certificate");
    roll_out(&with_cert, "2026.12.1", 1.0, BUNDLED_VERSION).await;
    assert_eq!(active_in(&redis, "clinic-aurora"), "2026.12.1");

    let without = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .env("PROTOCOL_REDIS_CA_FILE", path_str(&pki.ca()))
        .spawn()
        .expect("the server starts (and waits for Redis)");
    redis_down_error(&without).await;
}

#[test]
fn redis_settings_that_cannot_work_stop_the_server_naming_them() {
    let pki = Pki::new();
    let cases = [
        // A CA file for a plaintext URL.
        (
            vec![
                ("PROTOCOL_REDIS_URL", "redis://127.0.0.1:6379/".to_owned()),
                ("PROTOCOL_REDIS_CA_FILE", path_str(&pki.ca()).to_owned()),
            ],
            "PROTOCOL_REDIS_CA_FILE",
        ),
        (
            vec![
                ("PROTOCOL_REDIS_URL", "rediss://127.0.0.1:6379/".to_owned()),
                ("PROTOCOL_REDIS_CA_FILE", "/nonexistent/ca.pem".to_owned()),
            ],
            "/nonexistent/ca.pem",
        ),
        (
            vec![
                ("PROTOCOL_REDIS_URL", "rediss://127.0.0.1:6379/".to_owned()),
                (
                    "PROTOCOL_REDIS_CERT_FILE",
                    path_str(&pki.path("client.pem")).to_owned(),
                ),
            ],
            "PROTOCOL_REDIS_KEY_FILE",
        ),
        (
            vec![("PROTOCOL_REDIS_SENTINELS", "127.0.0.1:26379".to_owned())],
            "PROTOCOL_REDIS_MASTER_NAME",
        ),
    ];
    for (env, named) in cases {
        let mut builder = ServerBuilder::new();
        for (k, v) in &env {
            builder = builder.env(k, v);
        }
        let (status, output) = builder
            .run_to_exit(Duration::from_secs(10))
            .expect("exits by itself");
        assert!(!status.success(), "{env:?}: {output}");
        assert!(output.contains(named), "{env:?} names {named}: {output}");
    }
}

/// The ACL user of docs/operate.md: the service's keys and channel, and only the commands it
/// sends (scripts included: Redis checks the commands a script calls too).
const ACL_COMMANDS: &str = "-@all +ping +get +hget +hgetall +hexists +zrange +lrange \
    +smembers +scan +exists +evalsha +eval +script|load +set +del +hset +hlen +llen +rpush +sadd \
    +sismember +zadd +zscore +publish +subscribe +unsubscribe +wait +hmget +hsetnx +hincrby \
    +multi +exec";

fn acl_redis() -> RedisServer {
    RedisServer::start_with(RedisOptions {
        users: vec![
            "default off".to_owned(),
            "admin on >admin-pass ~* &* +@all".to_owned(),
            format!(
                "protocol on >s3cret-protocol ~protocol:* resetchannels &protocol:* {ACL_COMMANDS}"
            ),
        ],
        cli_auth: Some(("admin".to_owned(), "admin-pass".to_owned())),
        ..RedisOptions::default()
    })
    .expect("redis-server with ACL users starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_with_only_what_the_service_needs_works_and_a_wrong_password_fails_clearly() {
    let redis = acl_redis();
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("redis-password");
    std::fs::write(&password_file, "s3cret-protocol\n").expect("written");
    // A password file (a mounted secret) and the user as a setting.
    let a = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .env("PROTOCOL_REDIS_USERNAME", "protocol")
        .env("PROTOCOL_REDIS_PASSWORD_FILE", path_str(&password_file))
        .spawn()
        .expect("server starts with an ACL user");
    // Both in the URL.
    let b = ServerBuilder::new()
        .with_keys()
        .env(
            "PROTOCOL_REDIS_URL",
            &format!(
                "redis://protocol:s3cret-protocol@127.0.0.1:{}/",
                redis.port()
            ),
        )
        .env("PROTOCOL_RECONCILE_INTERVAL_SECS", "1")
        .spawn()
        .expect("server starts with credentials in the URL");
    let (_, ready) = readyz(&a).await;
    assert_eq!(ready["origin"], "redis", "seeded as the ACL user: {ready}");

    roll_out(&a, "2026.12.1", 1.0, BUNDLED_VERSION).await;
    let reached = within(Duration::from_secs(2), || async {
        cheeks(&b).await.0 == 1.0
    })
    .await;
    assert!(
        reached.is_some(),
        "B (subscribed as the ACL user) serves A's activation"
    );
    roll_out(&b, "2026.12.2", 0.9, "2026.12.1").await;
    let reached = within(Duration::from_secs(2), || async {
        cheeks(&a).await.0 == 0.9
    })
    .await;
    assert!(reached.is_some(), "A serves B's activation");
    // Roll back (the activation history) and list: the other scripts and reads.
    // It loosens (0.9 -> 1.0 mm): approved, as an operator would, through a dry run first.
    let (status, body) = approved_move(
        &a,
        "/v1/rulesets/clinic-aurora/rollback",
        serde_json::json!({"expected_current": "2026.12.2"}),
        &[("idempotency-key", "acl-rollback-1")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(active_via(&b).await, "2026.12.1");
    let denied = redis.cli(&["ACL", "LOG"]).expect("ACL LOG");
    assert!(denied.trim().is_empty(), "no command was denied: {denied}");

    let wrong = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .env("PROTOCOL_REDIS_USERNAME", "protocol")
        .env("PROTOCOL_REDIS_PASSWORD", "not-the-password")
        .spawn()
        .expect("the server starts (and waits for Redis)");
    let error = redis_down_error(&wrong).await;
    assert!(
        error.contains("WRONGPASS") || error.to_lowercase().contains("auth"),
        "{error}"
    );
    assert!(!error.contains("not-the-password"), "{error}");
    let logged = wrong.output().join("\n");
    assert!(
        !logged.contains("not-the-password"),
        "the password is never logged"
    );
    assert!(!a.output().join("\n").contains("s3cret-protocol"));
    assert!(!b.output().join("\n").contains("s3cret-protocol"));
}

// === Sentinel ===

const MASTER: &str = "protocol";

/// `SENTINEL master <name>` as field → value.
fn sentinel_master(sentinel: &RedisServer) -> std::collections::BTreeMap<String, String> {
    let out = sentinel
        .cli(&["SENTINEL", "master", MASTER])
        .unwrap_or_default();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    lines
        .chunks(2)
        .filter_map(|kv| Some((kv.first()?.to_string(), kv.get(1)?.to_string())))
        .collect()
}

/// The port of the master the sentinel names now.
fn named_master_port(sentinel: &RedisServer) -> Option<u16> {
    let out = sentinel
        .cli(&["SENTINEL", "get-master-addr-by-name", MASTER])
        .ok()?;
    out.lines().nth(1)?.trim().parse().ok()
}

/// Polls a blocking check every 50 ms.
fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// `2026.12.<n>` → n (the bundled version is 0).
fn seq(version: &str) -> u32 {
    version
        .strip_prefix("2026.12.")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The active version of clinic-aurora according to this server's store (retries through 503s).
async fn active_via(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = http()
            .get(server.url("/v1/rulesets/clinic-aurora/versions"))
            .bearer_auth(KEY_AURORA)
            .send()
            .await;
        if let Ok(res) = res
            && res.status().as_u16() == 200
            && let Ok(body) = res.json::<Value>().await
        {
            let versions = body["versions"].as_array().cloned().unwrap_or_default();
            if let Some(active) = versions.iter().find(|v| v["active"] == true) {
                return active["version"].as_str().unwrap_or_default().to_owned();
            }
        }
        assert!(Instant::now() < deadline, "the store never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_failover_during_activations_loses_and_reverts_no_acknowledged_activation() {
    let _serial = serial().await;
    let mut primary = RedisServer::start().expect("primary starts");
    let replica = RedisServer::start_with(RedisOptions {
        replica_of: Some(primary.port()),
        ..RedisOptions::default()
    })
    .expect("replica starts");
    let sentinels: Vec<RedisServer> = (0..3)
        .map(|_| RedisServer::sentinel(primary.port(), MASTER, 2).expect("sentinel starts"))
        .collect();
    wait_for("the replica to sync", Duration::from_secs(15), || {
        replica
            .cli(&["INFO", "replication"])
            .is_ok_and(|i| i.contains("master_link_status:up"))
    });
    wait_for(
        "the sentinels to know each other and the replica",
        Duration::from_secs(20),
        || {
            sentinels.iter().all(|s| {
                let m = sentinel_master(s);
                m.get("num-other-sentinels").map(String::as_str) == Some("2")
                    && m.get("num-slaves").map(String::as_str) == Some("1")
            })
        },
    );
    let addrs = sentinels
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect::<Vec<_>>()
        .join(",");
    let start = || {
        ServerBuilder::new()
            .with_keys()
            .env("PROTOCOL_REDIS_SENTINELS", &addrs)
            .env("PROTOCOL_REDIS_MASTER_NAME", MASTER)
            .env("PROTOCOL_RECONCILE_INTERVAL_SECS", "1")
            .env("PROTOCOL_SEED_EMPTY_REDIS", "true")
            .env("PROTOCOL_SEED_GRACE_SECS", "0")
            .spawn()
            .expect("server starts with sentinels")
    };
    let servers = Arc::new([start(), start()]);
    for s in servers.iter() {
        let (_, ready) = readyz(s).await;
        assert_eq!(ready["origin"], "redis", "{ready}");
    }

    // What each server serves, sampled every 25 ms until the end.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (servers, done) = (servers.clone(), done.clone());
        tokio::spawn(async move {
            let mut samples: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
            while !done.load(Ordering::Relaxed) {
                for (i, s) in servers.iter().enumerate() {
                    let (status, ready) = readyz(s).await;
                    if status == 200 {
                        samples[i].push(seq(&served_version(&ready, "clinic-aurora")));
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            samples
        })
    };

    // Once 4 activations succeeded, another task stalls the replica (SIGSTOP, and its link cut)
    // for 1.5 s while the stream goes on — a write only the primary holds is what a failover
    // loses — then
    // SIGKILLs the primary and lets the replica go on. Once the sentinels have promoted the
    // replica, the old primary is restarted as its replica (as an orchestrator would), so that
    // writes can be acknowledged again.
    let acked_count = Arc::new(AtomicUsize::new(0));
    let replica = Arc::new(replica);
    let killer = {
        let (acked_count, replica) = (acked_count.clone(), replica.clone());
        tokio::spawn(async move {
            while acked_count.load(Ordering::Relaxed) < 4 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            replica.pause().expect("replica stalled");
            // Cut its link, so that what the primary takes from now on is only the primary's
            // (a paused replica would still find it in its socket buffer).
            primary
                .cli(&["CLIENT", "KILL", "TYPE", "replica"])
                .expect("replica link cut");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            primary.kill();
            replica.resume().expect("replica resumed");
            primary
        })
    };

    let mut acked: Vec<u32> = Vec::new();
    let mut failed = 0;
    let mut expected = BUNDLED_VERSION.to_owned();
    let mut killer = Some(killer);
    let mut killed_primary: Option<RedisServer> = None;
    let mut restarted: Option<RedisServer> = None;
    let mut acked_at_kill = usize::MAX;
    let mut killed_at: Option<Instant> = None;
    let mut promoted_after: Option<Duration> = None;
    let stream_started = Instant::now();
    for n in 1.. {
        assert!(
            stream_started.elapsed() < Duration::from_secs(60),
            "the stream did not recover: {acked:?}"
        );
        if killer.as_ref().is_some_and(|k| k.is_finished()) {
            let k = killer.take().expect("killer");
            killed_primary = Some(k.await.expect("killed"));
            acked_at_kill = acked.len();
            killed_at = Some(Instant::now());
        }
        if let Some(old) = killed_primary.as_mut()
            && named_master_port(&sentinels[0]) == Some(replica.port())
            && old.restart_as_replica_of(replica.port()).is_ok()
        {
            // Restarted once: from now on it is a replica (kept until the end of the test).
            restarted = killed_primary.take();
            promoted_after = killed_at.map(|at| at.elapsed());
        }
        if acked.len() >= acked_at_kill.saturating_add(3) {
            break;
        }
        let server = &servers[n % 2];
        let version = format!("2026.12.{n}");
        let (status, _) = publish(server, KEY_AURORA, &aurora(&version, 1.0)).await;
        if status != 201 && status != 200 {
            failed += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let (status, body) = activate(server, "clinic-aurora", &version, &expected).await;
        if status == 200 {
            acked.push(u32::try_from(n).expect("small"));
            acked_count.store(acked.len(), Ordering::Relaxed);
            expected = version;
        } else {
            assert!(
                status == 503 || status == 409,
                "an activation fails only as unavailable or as a conflict: {status} {body}"
            );
            failed += 1;
            // Not acknowledged: it may or may not have been applied. Learn what is active.
            expected = active_via(server).await;
        }
    }
    assert!(failed > 0, "the failover was noticed by the admin");
    assert!(restarted.is_some(), "the old primary rejoined as a replica");
    let last_acked = *acked.last().expect("acknowledged activations");

    // The master the sentinels name now (the promoted replica; or, when the sentinels failed
    // over once more under load, the old primary that rejoined as its replica) holds the last
    // acknowledged activation (or a later one), and every acknowledged version is still
    // published.
    let named = named_master_port(&sentinels[1]);
    let master = [Some(&*replica), restarted.as_ref()]
        .into_iter()
        .flatten()
        .find(|r| Some(r.port()) == named)
        .unwrap_or_else(|| {
            panic!(
                "the sentinels name {named:?}, neither server; their logs:\n{}",
                sentinels
                    .iter()
                    .map(RedisServer::sentinel_log)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    let active = active_in(master, "clinic-aurora");
    assert!(
        seq(&active) >= last_acked,
        "active {active}, last acknowledged 2026.12.{last_acked}"
    );
    let digests = master
        .cli(&["HKEYS", &format!("{PREFIX}:digests:clinic-aurora")])
        .expect("HKEYS");
    for n in &acked {
        assert!(
            digests.lines().any(|l| l.trim() == format!("2026.12.{n}")),
            "2026.12.{n} was acknowledged and is lost: {digests}"
        );
    }

    // Every server follows the new master: serves what it holds, and a new activation arrives
    // within a few seconds.
    for s in servers.iter() {
        let got = within(Duration::from_secs(5), || async {
            cheeks(s).await.1 == active
        })
        .await;
        assert!(got.is_some(), "a server serves the new master's {active}");
    }
    let next = format!("2026.12.{}", seq(&active) + 1000);
    roll_out(&servers[0], &next, 0.8, &active).await;
    acked.push(seq(&next));
    for s in servers.iter() {
        let took = within(Duration::from_secs(3), || async {
            cheeks(s).await.1 == next
        })
        .await;
        assert!(took.is_some(), "a new activation reaches every server");
    }

    // Nothing reverted: once a server served an acknowledged version, it never served an older one.
    done.store(true, Ordering::Relaxed);
    let samples = sampler.await.expect("sampler");
    for (i, served) in samples.iter().enumerate() {
        let mut high = 0;
        for &v in served {
            assert!(
                v >= high,
                "server {i} went back from 2026.12.{high} (acknowledged) to 2026.12.{v}: {served:?}"
            );
            if acked.contains(&v) {
                high = high.max(v);
            }
        }
    }
    eprintln!(
        "sentinel failover: {} activations acknowledged ({acked:?}), {failed} refused; the \
         sentinels named the replica {promoted_after:?} after the primary was killed",
        acked.len()
    );
}
