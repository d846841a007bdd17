//! The rule-set store and the sync task against real `redis-server` processes (the library's
//! store, driven directly; the black-box admin tests are in `with_redis/`). What the store
//! answers is the conformance suite ([`conformance`]: on Redis and in memory); what is Redis's
//! own (corrupted payloads, outages, pub/sub, the sync task) is here.
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

mod conformance;

const BASE: &str = include_str!("../../../rulesets/base.yaml");
const AURORA: &str = include_str!("../../../rulesets/clinics/clinic-aurora.yaml");
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
            // The swap stores the catalog, then tells the watchers: a read between the two sees
            // the version before the generation (seen once under a full run's load).
            let told = eventually(Duration::from_millis(200), || {
                *state.generation.borrow() > generation
            })
            .await;
            assert!(told, "watchers told");
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

// ---- The guard at the point of effect (issue 23) ----------------------------------------------

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
