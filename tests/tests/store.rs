//! The Redis rule-set store and the sync task against real `redis-server` processes (the
//! library's store, driven directly; the black-box admin tests are in `redis/`).
//!
//! Each test starts its own `redis-server` on a free port (no persistence) and kills it on drop,
//! so tests run in parallel and never touch a shared Redis. Timing assertions poll with a
//! deadline; the only speed asserted is the 1-second propagation contract.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use protocol_engine::{Format, RuleSetDoc, parse_document};
use protocol_server::catalog::{Catalog, Origin};
use protocol_server::config::Settings;
use protocol_server::state::AppState;
use protocol_server::store::{
    Activated, Activation, Approval, Expected, Guard, Rollback, RuleSetStore, StoreError,
    StoreOptions, SyncOptions, connect_and_load, spawn_sync,
};
use protocol_tests::redis_server::RedisServer;

const BASE: &str = include_str!("../../rulesets/base.yaml");
const AURORA: &str = include_str!("../../rulesets/clinics/clinic-aurora.yaml");
const BUNDLED_VERSION: &str = "2026.12.0";

/// A store whose publisher may approve its own loosenings (these tests publish with no key);
/// four eyes are tested in `loosening_moves_need_an_approval_from_another_key`.
fn store(redis: &RedisServer) -> RuleSetStore {
    let options = StoreOptions {
        single_person_approval: true,
        ..StoreOptions::default()
    };
    RuleSetStore::open_with(&redis.url(), options).expect("valid url")
}

/// The approval of exactly the loosenings a dry run of the same move names (none needed when it
/// loosens nothing).
fn approval_of(preview: &protocol_server::store::MoveOutcome) -> Guard {
    Guard {
        approval: preview.effect.loosenings_digest().map(|d| Approval {
            reason: "test: the clinic's medical director approves going back".into(),
            approver: "Dr. Test".into(),
            loosenings: d,
        }),
        dry_run: false,
    }
}

/// [`RuleSetStore::activate_by`] with its loosenings approved.
async fn activate_approved(
    s: &RuleSetStore,
    id: &str,
    version: &str,
    expected: Option<&str>,
    by: Option<&str>,
) -> Result<Activated, StoreError> {
    let item = || Activation {
        id: id.to_owned(),
        version: version.to_owned(),
        expected: Expected::from(expected),
    };
    let dry = Guard {
        approval: None,
        dry_run: true,
    };
    let preview = s.activate_guarded(item(), by, &dry).await?;
    s.activate_guarded(item(), by, &approval_of(&preview))
        .await
        .map(|m| m.activated)
}

/// [`RuleSetStore::rollback`] with its loosenings approved.
async fn rollback_approved(
    s: &RuleSetStore,
    id: &str,
    request: &Rollback,
    by: Option<&str>,
) -> Result<Activated, StoreError> {
    let dry = Guard {
        approval: None,
        dry_run: true,
    };
    let preview = s.rollback_guarded(id, request, by, &dry).await?;
    s.rollback_guarded(id, request, by, &approval_of(&preview))
        .await
        .map(|m| m.activated)
}

/// [`store`], for a test whose local `store` shadows it.
fn store_of(redis: &RedisServer) -> RuleSetStore {
    store(redis)
}

async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

fn bundled() -> Catalog {
    Catalog::bundled().expect("bundled rule sets compile")
}

/// The Aurora overlay under another version, with `min_interval_days` set to `interval` (so each
/// variant has its own content and digest).
fn aurora(version: &str, interval: u32) -> RuleSetDoc {
    let text = AURORA
        .replace(
            &format!("version: \"{BUNDLED_VERSION}\""),
            &format!("version: \"{version}\""),
        )
        .replace(
            "min_interval_days: 42",
            &format!("min_interval_days: {interval}"),
        );
    parse_document(&text, Format::Yaml).expect("overlay parses")
}

/// A seeded store: the bundled base and Aurora overlay active.
async fn seeded(redis: &RedisServer) -> RuleSetStore {
    let s = store(redis);
    assert!(s.seed_if_empty(&bundled()).await.expect("seeds"));
    s
}

async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn served_version(state: &AppState, id: &str) -> Option<String> {
    state
        .catalog
        .load()
        .rulesets
        .get(id)
        .map(|rs| rs.meta().version.clone())
}

fn fast_sync() -> SyncOptions {
    SyncOptions {
        reconcile_interval: Duration::from_millis(300),
        max_backoff: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn publish_is_idempotent_and_the_same_version_with_other_content_is_a_conflict() {
    let redis = RedisServer::start().expect("redis starts");
    let s = seeded(&redis).await;

    let first = s.publish(aurora("2026.12.1", 45)).await.expect("publishes");
    assert!(first.created);
    assert_eq!(first.id, "clinic-aurora");
    assert_eq!(first.version, "2026.12.1");
    assert!(first.digest.starts_with("sha256:"));

    let again = s
        .publish(aurora("2026.12.1", 45))
        .await
        .expect("idempotent");
    assert!(!again.created);
    assert_eq!(again.digest, first.digest);

    let err = s
        .publish(aurora("2026.12.1", 50))
        .await
        .expect_err("other content under the same version");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(
        matches!(err, StoreError::Conflict { ref id, ref version, .. } if id == "clinic-aurora" && version == "2026.12.1")
    );
    assert!(err.to_string().contains(&first.digest), "{err}");

    let versions = s.list_versions("clinic-aurora").await.expect("lists");
    let names: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(names, [BUNDLED_VERSION, "2026.12.1"]);
    assert!(versions[0].active && !versions[1].active);
    assert_eq!(versions[1].digest, first.digest);

    let fetched = s
        .fetch("clinic-aurora", "2026.12.1")
        .await
        .expect("fetches");
    assert_eq!(fetched.digest, first.digest);
    assert_eq!(fetched.document.version, "2026.12.1");
    assert_eq!(
        fetched.json,
        protocol_engine::canonical_json(&fetched.document)
    );
    assert_eq!(protocol_engine::digest_of(&fetched.document), first.digest);

    let missing = s
        .fetch("clinic-aurora", "1999.1.1")
        .await
        .expect_err("absent");
    assert!(matches!(missing, StoreError::NotFound { .. }));
    let missing = s.list_versions("clinic-nowhere").await.expect_err("absent");
    assert!(matches!(missing, StoreError::NotFound { .. }));
}

#[tokio::test]
async fn an_invalid_document_is_refused_naming_the_field() {
    let redis = RedisServer::start().expect("redis starts");
    let s = seeded(&redis).await;

    let text = AURORA
        .replace("version: \"2026.12.0\"", "version: \"2026.12.9\"")
        .replace("zones: {cheeks: 2.5}", "zones: {elbows: 2.5}");
    let err = s
        .publish_text(&text, Format::Yaml)
        .await
        .expect_err("unknown zone");
    assert!(matches!(err, StoreError::Invalid(_)));
    let message = err.to_string();
    assert!(message.contains("tighten.treatments[2]"), "{message}");
    assert!(message.contains("elbows"), "{message}");

    let err = s
        .publish_text("id: x\nversion: \"1\"\nnot_a_field: 1\n", Format::Yaml)
        .await
        .expect_err("unknown key");
    assert!(err.to_string().contains("not_a_field"), "{err}");

    let mut bad_id = aurora("2026.12.9", 45);
    bad_id.id = "clinic:aurora".into();
    let err = s.publish(bad_id).await.expect_err("':' in an id");
    assert!(err.to_string().contains("id"), "{err}");

    // Nothing of it was stored.
    let versions = s.list_versions("clinic-aurora").await.expect("lists");
    assert_eq!(versions.len(), 1);
}

#[tokio::test]
async fn an_overlay_that_loosens_the_base_is_refused() {
    let redis = RedisServer::start().expect("redis starts");
    let s = seeded(&redis).await;

    let text = AURORA
        .replace("version: \"2026.12.0\"", "version: \"2026.12.2\"")
        .replace(
            "{id: nurse, max_depth_mm: 1.0,",
            "{id: nurse, max_depth_mm: 2.0,",
        );
    let err = s
        .publish_text(&text, Format::Yaml)
        .await
        .expect_err("nurse 2.0 mm loosens the base's 1.5 mm");
    assert!(matches!(err, StoreError::Invalid(_)));
    let message = err.to_string();
    assert!(
        message.contains("tighten.roles[0].max_depth_mm"),
        "{message}"
    );
    assert!(message.contains("base 1.5 mm"), "{message}");
    assert!(
        s.fetch("clinic-aurora", "2026.12.2").await.is_err(),
        "not stored"
    );
}

#[tokio::test]
async fn an_overlay_needs_an_active_base() {
    let redis = RedisServer::start().expect("redis starts");
    let s = store(&redis);
    let err = s
        .publish(aurora("2026.12.1", 45))
        .await
        .expect_err("no base active");
    assert!(err.to_string().contains("extends"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_activations_exactly_one_wins() {
    let redis = RedisServer::start().expect("redis starts");
    let s = seeded(&redis).await;
    const VERSIONS: [&str; 3] = ["2026.12.1", "2026.12.2", "2026.12.3"];
    let versions = VERSIONS;
    for (n, v) in versions.iter().enumerate() {
        s.publish(aurora(v, 45 + n as u32))
            .await
            .expect("publishes");
    }

    let mut current = BUNDLED_VERSION.to_owned();
    for round in 0..6 {
        // Two contenders, both expecting the version active now, both activating another one.
        let mut others = VERSIONS.into_iter().filter(|v| *v != current);
        let (va, vb) = (
            others.next().expect("two others"),
            others.next().expect("two others"),
        );
        let (a, b) = (store(&redis), store(&redis));
        let (ca, cb) = (current.clone(), current.clone());
        let first = tokio::spawn(async move {
            activate_approved(&a, "clinic-aurora", va, Some(ca.as_str()), None).await
        });
        let second = tokio::spawn(async move {
            activate_approved(&b, "clinic-aurora", vb, Some(cb.as_str()), None).await
        });
        let results = [first.await.expect("joins"), second.await.expect("joins")];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        let winner = results
            .iter()
            .find_map(|r| r.as_ref().ok())
            .expect("one winner");
        assert_eq!(winner.previous.as_deref(), Some(current.as_str()));
        let loser = results
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("one loser");
        match loser {
            StoreError::Conflict { current: now, .. } => {
                assert_eq!(now.as_deref(), Some(winner.version.as_str()), "{loser}");
            }
            other => panic!("expected a conflict, got {other}"),
        }
        assert!(matches!(loser, StoreError::Conflict { .. }));
        let active = s.active_versions().await.expect("reads");
        assert_eq!(active["clinic-aurora"], winner.version);
        current = winner.version.clone();
    }
}

#[tokio::test]
async fn load_active_serves_the_activated_digest_and_rollback_returns() {
    let redis = RedisServer::start().expect("redis starts");
    let s = seeded(&redis).await;
    let before = s.load_active().await.expect("loads");
    assert_eq!(before.origin, Origin::Redis);
    let bundled_digest = before.rulesets["clinic-aurora"].meta().digest.clone();

    let published = s.publish(aurora("2026.12.1", 45)).await.expect("publishes");
    let activated = s
        .activate("clinic-aurora", "2026.12.1", Some(BUNDLED_VERSION))
        .await
        .expect("activates");
    assert_eq!(activated.digest, published.digest);
    assert_eq!(activated.previous.as_deref(), Some(BUNDLED_VERSION));

    let after = s.load_active().await.expect("loads");
    let meta = after.rulesets["clinic-aurora"].meta();
    assert_eq!(meta.version, "2026.12.1");
    assert_eq!(meta.digest, published.digest);

    // A stale expectation is a conflict naming the version active now.
    let err = s
        .activate("clinic-aurora", BUNDLED_VERSION, Some(BUNDLED_VERSION))
        .await
        .expect_err("stale expectation");
    assert!(err.to_string().contains("'2026.12.1' is active"), "{err}");

    // Rolling forward is not a rollback; rolling back is.
    s.publish(aurora("2026.12.3", 47)).await.expect("publishes");
    let to = |v: &str| Rollback {
        to_version: Some(v.to_owned()),
        expected_current: Some("2026.12.1".to_owned()),
        idempotency_key: None,
    };
    let err = s
        .rollback("clinic-aurora", &to("2026.12.3"), None)
        .await
        .expect_err("never active");
    assert!(matches!(err, StoreError::Invalid(_)));
    // Going back loosens what Aurora is served (45 days -> 42): refused without an approval.
    let err = s
        .rollback("clinic-aurora", &to(BUNDLED_VERSION), None)
        .await
        .expect_err("a loosening needs an approval");
    assert!(
        err.to_string()
            .contains("loosens what 'clinic-aurora' serves"),
        "{err}"
    );
    let back = rollback_approved(&s, "clinic-aurora", &to(BUNDLED_VERSION), None)
        .await
        .expect("rolls back");
    assert_eq!(back.digest, bundled_digest);
    assert_eq!(back.previous.as_deref(), Some("2026.12.1"));
    let now = s.load_active().await.expect("loads");
    assert_eq!(now.rulesets["clinic-aurora"].meta().digest, bundled_digest);

    // Activating a version never published is a 404.
    let err = s
        .activate("clinic-aurora", "2030.1.1", None)
        .await
        .expect_err("unpublished");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn activation_validates_the_whole_resulting_catalog() {
    let redis = RedisServer::start().expect("redis starts");
    let s = seeded(&redis).await;

    // A base whose nurse cap (0.8 mm) is below the active overlay's (1.0 mm): the overlay would
    // loosen it, so the base alone cannot be activated.
    let stricter_base = BASE
        .replace("version: \"2026.12.0\"", "version: \"2026.12.1\"")
        .replace(
            "name: Registered nurse\n    max_depth_mm: {value: 1.5, evidence: INFERRED",
            "name: Registered nurse\n    max_depth_mm: {value: 0.8, evidence: INFERRED",
        );
    let base_doc = parse_document(&stricter_base, Format::Yaml).expect("parses");
    assert_eq!(base_doc.version, "2026.12.1");
    s.publish(base_doc)
        .await
        .expect("a base is validated on its own");
    let err = s
        .activate("base", "2026.12.1", Some(BUNDLED_VERSION))
        .await
        .expect_err("breaks the active overlay");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("clinic-aurora"), "{err}");
    assert_eq!(
        s.active_versions().await.expect("reads")["base"],
        BUNDLED_VERSION
    );

    // Together with an overlay that fits it, in one step, it can. The overlay itself is
    // published against the base active now (1.5 mm), which 0.7 mm also tightens.
    let fitting = AURORA
        .replace("version: \"2026.12.0\"", "version: \"2026.12.1\"")
        .replace(
            "{id: nurse, max_depth_mm: 1.0,",
            "{id: nurse, max_depth_mm: 0.7,",
        );
    s.publish_text(&fitting, Format::Yaml)
        .await
        .expect("publishes");
    let done = s
        .activate_many(&[
            Activation {
                id: "base".into(),
                version: "2026.12.1".into(),
                expected: Expected::Version(BUNDLED_VERSION.into()),
            },
            Activation {
                id: "clinic-aurora".into(),
                version: "2026.12.1".into(),
                expected: Expected::Version(BUNDLED_VERSION.into()),
            },
        ])
        .await
        .expect("activates both");
    assert_eq!(done.len(), 2);
    let active = s.active_versions().await.expect("reads");
    assert_eq!(active["base"], "2026.12.1");
    assert_eq!(active["clinic-aurora"], "2026.12.1");
}

#[tokio::test]
async fn a_corrupted_payload_is_refused_naming_it() {
    let redis = RedisServer::start().expect("redis starts");
    let s = seeded(&redis).await;
    let mut conn = raw(&redis).await;

    // Valid JSON of a valid document, but not what was published under this key.
    let other = protocol_engine::canonical_json(&aurora(BUNDLED_VERSION, 60));
    let key = s.keys().doc("clinic-aurora", BUNDLED_VERSION);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&other)
        .query_async(&mut conn)
        .await
        .expect("writes");
    let err = s.load_active().await.expect_err("refused");
    match &err {
        StoreError::Corrupt {
            id,
            version,
            reason,
        } => {
            assert_eq!(id, "clinic-aurora");
            assert_eq!(version, BUNDLED_VERSION);
            assert!(reason.contains("digest mismatch"), "{reason}");
        }
        other => panic!("expected corrupt, got {other}"),
    }
    assert!(err.to_string().contains("clinic-aurora"), "{err}");
    assert!(s.fetch("clinic-aurora", BUNDLED_VERSION).await.is_err());

    // Not even JSON.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .expect("writes");
    let err = s.load_active().await.expect_err("refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn seeding_happens_once() {
    let redis = RedisServer::start().expect("redis starts");
    let s = store(&redis);
    let (a, b) = (store(&redis), store(&redis));
    let catalog = bundled();
    // Two replicas starting together: exactly one seeds.
    let (ra, rb) = tokio::join!(a.seed_if_empty(&catalog), b.seed_if_empty(&catalog));
    let seeded = [ra.expect("seeds"), rb.expect("seeds")];
    assert_eq!(seeded.iter().filter(|s| **s).count(), 1, "{seeded:?}");
    assert!(!s.seed_if_empty(&catalog).await.expect("no-op"));

    let loaded = s.load_active().await.expect("loads");
    assert_eq!(loaded.refs(), catalog.refs());
}

#[tokio::test]
async fn connect_and_load_covers_down_empty_and_active() {
    // Redis configured but down: nothing (never the bundled rule sets, which Redis did not
    // activate), at once.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let settings = Settings::parse_from([
        "protocol-server",
        "--redis-url",
        &format!("redis://127.0.0.1:{port}/"),
    ]);
    let started = Instant::now();
    let (catalog, store) = connect_and_load(&settings, bundled())
        .await
        .expect("url is valid");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(catalog.origin, Origin::None);
    assert!(catalog.for_tenant(None).is_err());
    assert!(store.is_some());

    // Up and empty: nothing, unless seeding a first deployment is asked for.
    let redis = RedisServer::start().expect("redis starts");
    let settings = Settings::parse_from(["protocol-server", "--redis-url", &redis.url()]);
    let (catalog, _) = connect_and_load(&settings, bundled())
        .await
        .expect("url is valid");
    assert_eq!(catalog.origin, Origin::None);
    assert!(
        store_of(&redis)
            .active_versions()
            .await
            .expect("reads")
            .is_empty(),
        "not seeded"
    );
    let settings = Settings::parse_from([
        "protocol-server",
        "--redis-url",
        &redis.url(),
        "--seed-empty-redis",
        "true",
    ]);
    let (catalog, store) = connect_and_load(&settings, bundled())
        .await
        .expect("url is valid");
    assert_eq!(catalog.origin, Origin::Redis);
    assert_eq!(catalog.refs(), bundled().refs());
    let store = store.expect("configured");

    // Up with active versions: those.
    store
        .publish(aurora("2026.12.1", 45))
        .await
        .expect("publishes");
    store
        .activate("clinic-aurora", "2026.12.1", None)
        .await
        .expect("activates");
    let (catalog, _) = connect_and_load(&settings, bundled())
        .await
        .expect("url is valid");
    assert_eq!(
        catalog.rulesets["clinic-aurora"].meta().version,
        "2026.12.1"
    );

    // An active version that fails verification: refused on its own, the base still served.
    let mut conn = raw(&redis).await;
    let _: () = redis::cmd("SET")
        .arg(store.keys().doc("clinic-aurora", "2026.12.1"))
        .arg("{}")
        .query_async(&mut conn)
        .await
        .expect("writes");
    let (catalog, _) = connect_and_load(&settings, bundled())
        .await
        .expect("url is valid");
    assert_eq!(catalog.origin, Origin::Redis);
    assert_eq!(catalog.refused["clinic-aurora"].version, "2026.12.1");
    assert!(catalog.for_tenant(Some("clinic-aurora")).is_err());
    assert_eq!(
        catalog
            .for_tenant(Some("clinic-borealis"))
            .map(|rs| rs.meta().id.clone()),
        Ok("base".to_owned())
    );

    // No Redis configured: no store.
    let settings = Settings::parse_from(["protocol-server"]);
    let (_, store) = connect_and_load(&settings, bundled())
        .await
        .expect("no url");
    assert!(store.is_none());

    // A malformed URL is a configuration error.
    let settings = Settings::parse_from(["protocol-server", "--redis-url", "nonsense://"]);
    assert!(connect_and_load(&settings, bundled()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_activation_reaches_every_replica_within_one_second() {
    let redis = RedisServer::start().expect("redis starts");
    let admin = seeded(&redis).await;
    let replicas: Vec<AppState> = (0..2).map(|_| AppState::new(bundled())).collect();
    let tasks: Vec<_> = replicas
        .iter()
        .map(|state| spawn_sync(state.clone(), store(&redis), fast_sync()))
        .collect();
    for state in &replicas {
        assert!(
            eventually(Duration::from_secs(5), || state
                .health
                .redis_up
                .load(Ordering::Relaxed))
            .await
        );
    }

    for (n, version) in ["2026.12.1", "2026.12.2", "2026.12.3"].iter().enumerate() {
        admin
            .publish(aurora(version, 45 + n as u32))
            .await
            .expect("publishes");
        let generations: Vec<u64> = replicas.iter().map(|s| *s.generation.borrow()).collect();
        let activated = Instant::now();
        admin
            .activate("clinic-aurora", version, None)
            .await
            .expect("activates");
        for (state, generation) in replicas.iter().zip(generations) {
            let arrived = eventually(Duration::from_secs(1), || {
                served_version(state, "clinic-aurora").as_deref() == Some(*version)
            })
            .await;
            assert!(arrived, "{version} not served within 1 s");
            assert!(*state.generation.borrow() > generation, "watchers told");
        }
        eprintln!(
            "{version}: both replicas serve it after {:?}",
            activated.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_millis(1000)).await; // a few keep-alive pings
    for state in &replicas {
        assert_eq!(state.catalog.load().origin, Origin::Redis);
        assert!(state.health.age_secs() <= 1);
        assert!(state.health.last_error().is_none());
        // The subscription's keep-alive pings held: no spurious loss, no reconnect.
        assert_eq!(state.health.redis_errors.load(Ordering::Relaxed), 0);
        assert_eq!(state.health.reconnects.load(Ordering::Relaxed), 0);
    }
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupted_active_payload_is_refused_and_the_last_good_kept() {
    let redis = RedisServer::start().expect("redis starts");
    let admin = seeded(&redis).await;
    let state = AppState::new(bundled());
    let task = spawn_sync(state.clone(), store(&redis), fast_sync());
    assert!(
        eventually(Duration::from_secs(5), || state.catalog.load().origin
            == Origin::Redis)
        .await
    );
    let good = state.catalog.load().refs();

    // Published properly, then damaged in place, then made active behind the store's back.
    admin
        .publish(aurora("2026.12.1", 45))
        .await
        .expect("publishes");
    let mut conn = raw(&redis).await;
    let damaged = protocol_engine::canonical_json(&aurora("2026.12.1", 30));
    let _: () = redis::cmd("SET")
        .arg(admin.keys().doc("clinic-aurora", "2026.12.1"))
        .arg(damaged)
        .query_async(&mut conn)
        .await
        .expect("writes");
    let _: () = redis::cmd("HSET")
        .arg(admin.keys().active())
        .arg("clinic-aurora")
        .arg("2026.12.1")
        .query_async(&mut conn)
        .await
        .expect("writes");
    let _: () = redis::cmd("PUBLISH")
        .arg(admin.keys().channel())
        .arg("{}")
        .query_async(&mut conn)
        .await
        .expect("publishes");

    assert!(
        eventually(Duration::from_secs(3), || state
            .health
            .refused
            .load(Ordering::Relaxed)
            > 0)
        .await
    );
    assert_eq!(state.catalog.load().refs(), good, "last good kept");
    let error = state.health.last_error().expect("reported");
    assert!(
        error.contains("clinic-aurora") && error.contains("2026.12.1"),
        "{error}"
    );
    assert!(state.health.redis_up.load(Ordering::Relaxed));

    // Pointing back at a good version is picked up: nothing of the refusal was cached.
    let _: () = redis::cmd("HSET")
        .arg(admin.keys().active())
        .arg("clinic-aurora")
        .arg(BUNDLED_VERSION)
        .query_async(&mut conn)
        .await
        .expect("writes");
    assert!(
        eventually(Duration::from_secs(3), || state
            .health
            .last_error()
            .is_none())
        .await
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_keep_serving_through_a_redis_outage_and_recover_by_themselves() {
    let mut redis = RedisServer::start().expect("redis starts");
    let admin = seeded(&redis).await;
    admin
        .publish(aurora("2026.12.1", 45))
        .await
        .expect("publishes");
    admin
        .activate("clinic-aurora", "2026.12.1", None)
        .await
        .expect("activates");

    let state = AppState::new(bundled());
    let task = spawn_sync(state.clone(), store(&redis), fast_sync());
    assert!(
        eventually(Duration::from_secs(5), || served_version(
            &state,
            "clinic-aurora"
        )
        .as_deref()
            == Some("2026.12.1"))
        .await
    );
    assert!(state.health.redis_configured.load(Ordering::Relaxed));
    let served = state.catalog.load().refs();

    redis.kill();
    assert!(
        eventually(Duration::from_secs(5), || !state
            .health
            .redis_up
            .load(Ordering::Relaxed))
        .await,
        "outage noticed"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(state.catalog.load().refs(), served, "last good kept");
    assert!(state.health.redis_errors.load(Ordering::Relaxed) > 0);
    assert!(state.health.last_error().is_some());

    // Restarted without persistence: empty. The replica re-seeds it with what it serves.
    redis.restart().expect("redis restarts");
    assert!(
        eventually(Duration::from_secs(10), || state
            .health
            .redis_up
            .load(Ordering::Relaxed))
        .await,
        "recovered without a restart of the task"
    );
    assert!(state.health.reconnects.load(Ordering::Relaxed) >= 1);
    let fresh = store(&redis);
    let deadline = Instant::now() + Duration::from_secs(5);
    let active = loop {
        match fresh.active_versions().await {
            Ok(active) if !active.is_empty() => break active,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("not re-seeded: {other:?}"),
        }
    };
    assert_eq!(
        active.get("clinic-aurora").map(String::as_str),
        Some("2026.12.1"),
        "re-seeded with the last good rule sets"
    );

    // And the subscription is back: a new activation arrives within 1 s.
    fresh
        .publish(aurora("2026.12.5", 49))
        .await
        .expect("publishes");
    tokio::time::sleep(Duration::from_millis(1500)).await; // let the subscriber re-subscribe
    fresh
        .activate("clinic-aurora", "2026.12.5", Some("2026.12.1"))
        .await
        .expect("activates");
    assert!(
        eventually(Duration::from_secs(1), || served_version(
            &state,
            "clinic-aurora"
        )
        .as_deref()
            == Some("2026.12.5"))
        .await
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_started_while_redis_was_down_never_seeds_it_and_picks_up_what_is_activated() {
    let mut redis = RedisServer::not_started().expect("a free port");
    let state = AppState::new(Catalog::none());
    let task = spawn_sync(state.clone(), store(&redis), fast_sync());
    assert!(
        eventually(Duration::from_secs(3), || state
            .health
            .redis_errors
            .load(Ordering::Relaxed)
            > 0)
        .await
    );
    assert!(!state.health.redis_up.load(Ordering::Relaxed));
    assert_eq!(state.catalog.load().origin, Origin::None);

    // Redis comes back empty: the replica has nothing it read from Redis, so it raises the alarm
    // rather than seeding Redis with rule sets nobody activated.
    redis.restart().expect("redis restarts");
    assert!(
        eventually(Duration::from_secs(10), || state
            .health
            .last_error()
            .is_some_and(|e| e.contains("no active rule sets")))
        .await,
        "{:?}",
        state.health.last_error()
    );
    assert!(state.health.redis_up.load(Ordering::Relaxed));
    assert!(
        store(&redis)
            .active_versions()
            .await
            .expect("reads")
            .is_empty()
    );
    assert_eq!(state.catalog.load().origin, Origin::None);

    // An operator seeds it: the replica serves what Redis holds.
    assert!(
        store(&redis)
            .seed_if_empty(&bundled())
            .await
            .expect("seeds")
    );
    assert!(
        eventually(Duration::from_secs(10), || state.catalog.load().origin
            == Origin::Redis)
        .await
    );
    assert_eq!(state.catalog.load().refs(), bundled().refs());
    assert_eq!(state.health.last_error(), None);
    task.abort();
}

#[test]
fn staleness_applies_only_with_redis_and_the_fail_closed_policy() {
    let state = AppState::new(bundled());
    let health = &state.health;
    let old = jiff::Timestamp::now().as_second() - 1000;
    health.last_sync_unix.store(old, Ordering::Relaxed);
    assert!(
        !health.is_stale(Duration::from_secs(300)),
        "no redis: never stale"
    );

    health.redis_configured.store(true, Ordering::Relaxed);
    assert!(health.is_stale(Duration::from_secs(300)));
    assert!(!health.is_stale(Duration::from_secs(2000)));

    let max = Duration::from_secs(300);
    let serve = Settings::parse_from(["protocol-server"]);
    assert!(
        !health.refuses_decisions(serve.stale_policy, max),
        "default keeps serving"
    );
    let closed = Settings::parse_from(["protocol-server", "--stale-policy", "fail-closed"]);
    assert!(health.refuses_decisions(closed.stale_policy, max));
    health.mark_loaded();
    assert!(!health.refuses_decisions(closed.stale_policy, max));
}

#[tokio::test]
async fn concurrent_rollbacks_with_one_idempotency_key_roll_back_once() {
    let redis = RedisServer::start().expect("redis starts");
    let s = seeded(&redis).await;
    s.publish(aurora("2026.12.1", 45)).await.expect("publishes");
    let (other, third) = (store(&redis), store(&redis));
    // Several rounds: the race (one request reading the pointer before another's rollback and
    // the history after it) is narrow; each round is one more chance to lose it.
    for round in 0..8 {
        // activate_many records every pointer it moves, with who moved it.
        s.activate_many_by(
            &[Activation {
                id: "clinic-aurora".into(),
                version: "2026.12.1".into(),
                expected: Expected::Version(BUNDLED_VERSION.into()),
            }],
            Some("ops"),
        )
        .await
        .expect("activates");
        let request = Rollback {
            to_version: None,
            expected_current: None,
            idempotency_key: Some(format!("one-rollback-{round}")),
        };
        let (a, b, c) = tokio::join!(
            rollback_approved(&s, "clinic-aurora", &request, Some("ops")),
            rollback_approved(&other, "clinic-aurora", &request, Some("ops")),
            rollback_approved(&third, "clinic-aurora", &request, Some("ops")),
        );
        let (a, b, c) = (a.expect("first"), b.expect("second"), c.expect("third"));
        assert_eq!(a, b, "both answer the one rollback");
        assert_eq!(a, c, "all answer the one rollback");
        assert_eq!(a.version, BUNDLED_VERSION);
    }
    let history = s.history("clinic-aurora").await.expect("history");
    let actions: Vec<(&str, &str, Option<&str>)> = history
        .iter()
        .map(|e| (e.version.as_str(), e.action.as_str(), e.by.as_deref()))
        .collect();
    let mut expected = vec![(BUNDLED_VERSION, "seed", None)];
    for _ in 0..8 {
        expected.push(("2026.12.1", "activate", Some("ops")));
        expected.push((BUNDLED_VERSION, "rollback", Some("ops")));
    }
    assert_eq!(actions, expected, "one rollback per round");
    // Without a key or an expectation it is refused before anything is read.
    let err = s
        .rollback("clinic-aurora", &Rollback::default(), None)
        .await
        .expect_err("unguarded");
    assert!(
        matches!(err, StoreError::PreconditionRequired { .. }),
        "{err}"
    );
}

// ---- The guard at the point of effect (issue 23) ----------------------------------------------

/// A store with four eyes on (the default options).
fn four_eyes_store(redis: &RedisServer) -> RuleSetStore {
    RuleSetStore::open(&redis.url()).expect("valid url")
}

/// Aurora with its interval set, declaring a loosening so that it may be published over a
/// stricter active version (publishing is not serving: the guard at activation still applies).
fn aurora_declared(version: &str, interval: u32) -> RuleSetDoc {
    let mut doc = aurora(version, interval);
    doc.loosening = Some(protocol_engine::LooseningDoc {
        reason: "test: a shorter interval".into(),
        approved_by: "Dr. Author".into(),
    });
    doc
}

fn dry() -> Guard {
    Guard {
        approval: None,
        dry_run: true,
    }
}

#[tokio::test]
async fn loosening_moves_need_an_approval_from_another_key() {
    let redis = RedisServer::start().expect("redis starts");
    let s = four_eyes_store(&redis);
    assert!(s.seed_if_empty(&bundled()).await.expect("seeds"));

    // A tightening (42 -> 45 days) needs no approval.
    s.publish_by(aurora("2026.12.1", 45), Some("author"))
        .await
        .expect("publishes");
    s.activate_by(
        "clinic-aurora",
        "2026.12.1",
        Some(BUNDLED_VERSION),
        Some("author"),
    )
    .await
    .expect("a tightening activates");

    // A looser version (45 -> 43 days) published by `author`.
    s.publish_by(aurora_declared("2026.12.2", 43), Some("author"))
        .await
        .expect("publishes with its loosening declared");
    let item = || Activation {
        id: "clinic-aurora".into(),
        version: "2026.12.2".into(),
        expected: Expected::Version("2026.12.1".into()),
    };

    // Refused without an approval, naming the loosening and the digest to approve.
    let err = s
        .activate_guarded(item(), Some("author"), &Guard::default())
        .await
        .expect_err("a loosening needs an approval");
    let text = err.to_string();
    assert!(text.contains("microneedling.min_interval"), "{text}");
    assert!(text.contains("loosenings: \"sha256:"), "{text}");

    // A dry run names it and moves nothing.
    let history_before = s.history("clinic-aurora").await.expect("history");
    let preview = s
        .activate_guarded(item(), Some("author"), &dry())
        .await
        .expect("previews");
    assert!(preview.dry_run);
    assert_eq!(preview.effect.rulesets.len(), 1, "{preview:?}");
    assert_eq!(preview.effect.rulesets[0].ruleset, "clinic-aurora");
    let digest = preview.effect.loosenings_digest().expect("it loosens");
    assert_eq!(
        s.active_versions().await.expect("reads")["clinic-aurora"],
        "2026.12.1"
    );
    assert_eq!(
        s.history("clinic-aurora").await.expect("history"),
        history_before
    );

    // An approval of other loosenings is refused; the publisher may not approve its own.
    let approve = |loosenings: &str| Guard {
        approval: Some(Approval {
            reason: "New trial data".into(),
            approver: "Dr. Vale".into(),
            loosenings: loosenings.into(),
        }),
        dry_run: false,
    };
    let err = s
        .activate_guarded(item(), Some("reviewer"), &approve("sha256:00"))
        .await
        .expect_err("another digest");
    assert!(err.to_string().contains("approval.loosenings"), "{err}");
    let err = s
        .activate_guarded(item(), Some("author"), &approve(&digest))
        .await
        .expect_err("four eyes");
    assert!(err.to_string().contains("four eyes"), "{err}");

    // Another key approves it: served, and the history records the effect and the approval.
    let done = s
        .activate_guarded(item(), Some("reviewer"), &approve(&digest))
        .await
        .expect("approved");
    assert_eq!(done.activated.version, "2026.12.2");
    let history = s.history("clinic-aurora").await.expect("history");
    let last = history.last().expect("an entry");
    assert_eq!(last.by.as_deref(), Some("reviewer"));
    assert_eq!(
        last.approval.as_ref().map(|a| a.approver.as_str()),
        Some("Dr. Vale")
    );
    assert!(
        last.effect
            .as_deref()
            .is_some_and(|e| e.contains(" looser") && !e.contains(" 0 looser")),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_base_that_loosens_an_overlay_is_refused_and_its_dry_run_names_every_clinic() {
    let redis = RedisServer::start().expect("redis starts");
    let s = four_eyes_store(&redis);
    assert!(s.seed_if_empty(&bundled()).await.expect("seeds"));
    // A new base: microneedling on the forehead to 1.0 mm (0.75 before), which Aurora does not
    // tighten, so Aurora's clients get it too.
    let old = "{zone: forehead, max_depth_mm: {value: 0.75,";
    assert!(BASE.contains(old));
    let text = BASE
        .replacen(old, "{zone: forehead, max_depth_mm: {value: 1.0,", 1)
        .replacen(
            &format!("version: \"{BUNDLED_VERSION}\""),
            "version: \"2026.12.9\"\nloosening: {reason: \"test\", approved_by: \"Dr. Author\"}",
            1,
        );
    let base = parse_document(&text, Format::Yaml).expect("parses");
    s.publish_by(base, Some("author")).await.expect("publishes");
    let item = || Activation {
        id: "base".into(),
        version: "2026.12.9".into(),
        expected: Expected::Version(BUNDLED_VERSION.into()),
    };
    let preview = s
        .activate_guarded(item(), Some("reviewer"), &dry())
        .await
        .expect("previews");
    let names: Vec<&str> = preview
        .effect
        .rulesets
        .iter()
        .map(|r| r.ruleset.as_str())
        .collect();
    assert_eq!(names, ["base", "clinic-aurora"], "{preview:?}");
    assert!(
        preview
            .effect
            .rulesets
            .iter()
            .all(|r| r.changes.iter().any(|c| c.aspect == "max_depth_mm")),
        "{preview:?}"
    );
    let err = s
        .activate_guarded(item(), Some("reviewer"), &Guard::default())
        .await
        .expect_err("the base loosens every clinic");
    assert!(
        err.to_string()
            .contains("loosens what 'clinic-aurora' serves"),
        "{err}"
    );
    assert_eq!(
        s.active_versions().await.expect("reads")["base"],
        BUNDLED_VERSION
    );
}

/// Issue 23: no sequence of publish, activate, rollback and retire calls without an approval
/// ever serves Aurora a looser rule set than before. The oracle reads what is served (the
/// minimum interval and the cheeks cap of the compiled active catalog), not the diff the guard
/// uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_unapproved_sequence_ever_serves_a_looser_rule_set() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    #[derive(Debug, Clone)]
    enum Op {
        Publish { interval: u32, cheeks: u8 },
        Activate(usize),
        Rollback,
        Retire(usize),
    }
    let op = prop_oneof![
        (40u32..48, 10u8..14).prop_map(|(interval, cheeks)| Op::Publish { interval, cheeks }),
        (0usize..8).prop_map(Op::Activate),
        Just(Op::Rollback),
        (0usize..8).prop_map(Op::Retire),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 12,
        failure_persistence: None,
        ..Config::default()
    });
    let rt = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(op, 4..10), |ops| {
            rt.block_on(async {
                let redis = RedisServer::start().expect("redis starts");
                let s = four_eyes_store(&redis);
                assert!(s.seed_if_empty(&bundled()).await.expect("seeds"));
                let served = |c: &Catalog| {
                    let t = c.rulesets["clinic-aurora"]
                        .treatment("microneedling")
                        .expect("microneedling");
                    let cheeks = t
                        .zones
                        .iter()
                        .find(|z| z.zone == "cheeks")
                        .map(|z| z.max_depth_mm.mm())
                        .unwrap_or(0.0);
                    (t.min_interval_days, cheeks)
                };
                let mut now = served(&s.load_active().await.expect("loads"));
                let mut published: Vec<String> = Vec::new();
                for (n, op) in ops.iter().enumerate() {
                    let active = s.active_versions().await.expect("reads")["clinic-aurora"].clone();
                    let _ = match op {
                        Op::Publish { interval, cheeks } => {
                            let v = format!("2027.1.{n}");
                            let mut doc = aurora_declared(&v, *interval);
                            let text = serde_json::to_string(&doc).expect("json");
                            let text = text.replace(
                                "\"cheeks\":1.2",
                                &format!("\"cheeks\":{}", f64::from(*cheeks) / 10.0),
                            );
                            doc = serde_json::from_str(&text).expect("doc");
                            let r = s.publish_by(doc, Some("author")).await;
                            if r.is_ok() {
                                published.push(v);
                            }
                            Ok(())
                        }
                        Op::Activate(i) => match published.get(i % published.len().max(1)) {
                            Some(v) => s
                                .activate_by(
                                    "clinic-aurora",
                                    v,
                                    Some(active.as_str()),
                                    Some("author"),
                                )
                                .await
                                .map(|_| ()),
                            None => Ok(()),
                        },
                        Op::Rollback => s
                            .rollback(
                                "clinic-aurora",
                                &Rollback {
                                    to_version: None,
                                    expected_current: Some(active.clone()),
                                    idempotency_key: None,
                                },
                                Some("author"),
                            )
                            .await
                            .map(|_| ()),
                        Op::Retire(i) => match published.get(i % published.len().max(1)) {
                            Some(v) => s
                                .retire("clinic-aurora", v, Some("author"))
                                .await
                                .map(|_| ()),
                            None => Ok(()),
                        },
                    };
                    let next = served(&s.load_active().await.expect("loads"));
                    prop_assert!(
                        next.0 >= now.0 && next.1 <= now.1,
                        "step {n} {op:?}: served (interval, cheeks) went from {now:?} to {next:?}"
                    );
                    now = next;
                }
                Ok(())
            })
        })
    });
    result.expect("property holds");
}
