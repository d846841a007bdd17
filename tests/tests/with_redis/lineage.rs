//! What a replica serves never moves back without a rollback, whatever Redis loses
//! (`store::lineage`): a Redis that lost its data, or went back, is put back by the replicas that
//! verified a later state; a replica that would seed it waits for them, and a seed that wins the
//! race anyway is undone, never adopted.
//!
//! The red team's reproduction (issue 26, finding 1): kill Redis, restart it empty on the same
//! port, start a replica with `PROTOCOL_SEED_EMPTY_REDIS=true` at once. It seeded the bundled
//! sets in 6 of 7 trials, and the running replicas adopted the seed: Aurora back to the bundled
//! cheeks cap, `/readyz` ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol_server::catalog::Catalog;
use protocol_server::store::RuleSetStore;
use protocol_tests::redis_server::{CHANNEL, PREFIX};
use protocol_tests::{KEY_AURORA, Server, ServerBuilder};
use serde_json::Value;

use crate::with_redis::common::*;

/// Every answer a watched replica gave for Aurora's cheeks, in order: (replica, version).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    fn push(&self, replica: &str, version: String) {
        self.0
            .lock()
            .expect("lock")
            .push((replica.to_owned(), version));
    }

    fn of(&self, replica: &str) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(r, _)| r == replica)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Asks a replica (by its REST base URL) what it serves Aurora's devices every 20 ms, until
/// dropped. A refusal (503 while it has loaded nothing) is no answer and is not recorded.
struct Watcher {
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    fn start(replica: &str, base: String, seen: Seen) -> Self {
        let replica = replica.to_owned();
        let task = tokio::spawn(async move {
            loop {
                if let Some(version) = served_cheeks(&base).await {
                    seen.push(&replica, version);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { task }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The Aurora rule-set version a device is served by the replica at `base`, if it answers 200.
async fn served_cheeks(base: &str) -> Option<String> {
    let res = http()
        .get(format!("{base}/v1/depth-limits"))
        .bearer_auth(KEY_AURORA)
        .query(&[
            ("treatment", "microneedling"),
            ("device", "dermapen_4"),
            ("role", "physician"),
            ("zone", "cheeks"),
        ])
        .send()
        .await
        .ok()?;
    if res.status().as_u16() != 200 {
        return None;
    }
    let body: Value = res.json().await.ok()?;
    body["ruleset"]["version"].as_str().map(str::to_owned)
}

fn base(server: &Server) -> String {
    server.url("")
}

/// A replica on the fleet's Redis, started off the runtime (start-up blocks), seeding an empty
/// Redis only with `seed` and after `grace_secs`.
async fn replica(redis_url: String, seed: bool, grace_secs: u64) -> Server {
    tokio::task::spawn_blocking(move || {
        ServerBuilder::new()
            .with_keys()
            .env("PROTOCOL_REDIS_URL", &redis_url)
            .env("PROTOCOL_RECONCILE_INTERVAL_SECS", "1")
            .env(
                "PROTOCOL_SEED_EMPTY_REDIS",
                if seed { "true" } else { "false" },
            )
            .env("PROTOCOL_SEED_GRACE_SECS", &grace_secs.to_string())
            .spawn()
            .expect("replica starts")
    })
    .await
    .expect("spawned")
}

/// Sends `signal` (`-STOP`, `-CONT`) to each replica's process.
fn signal(replicas: &[&Server], signal: &str) {
    for replica in replicas {
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(replica.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }
}

/// Waits until both replicas serve `version` (the activating replica, too, learns it from its
/// own notice): from then on, anything older is a regression, not propagation.
async fn both_serve(fleet: &Fleet, version: &str) {
    for replica in [&fleet.a, &fleet.b] {
        let served = within(Duration::from_secs(2), || async {
            served_cheeks(&base(replica)).await.as_deref() == Some(version)
        })
        .await;
        assert!(served.is_some(), "the fleet serves {version}");
    }
}

fn active_in_redis(fleet: &Fleet, id: &str) -> String {
    fleet
        .redis
        .cli(&["HGET", &format!("{PREFIX}:active"), id])
        .expect("hget")
        .trim()
        .to_owned()
}

/// Versions are `2026.12.N` with one digit N, and the bundled `2026.11.1`: their text order is
/// their order.
fn assert_never_back(seen: &Seen, replica: &str, floor: &str) {
    let versions = seen.of(replica);
    let mut highest = floor.to_owned();
    for (i, v) in versions.iter().enumerate() {
        assert!(
            *v >= highest,
            "{replica} served {v} after {highest} (answer {i} of {}): {versions:?}",
            versions.len()
        );
        highest = v.clone();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_seeding_a_redis_that_lost_its_data_never_rolls_a_clinic_back() {
    let _serial = serial().await;
    // Three trials of the red team's reproduction, with the shipped grace (10 s).
    for trial in 0..3 {
        let mut fleet = Fleet::start();
        roll_out_to_fleet(&fleet, "2026.12.1", 0.8, BUNDLED_VERSION).await;
        both_serve(&fleet, "2026.12.1").await;
        let seen = Seen::default();
        let _a = Watcher::start("A", base(&fleet.a), seen.clone());
        let _b = Watcher::start("B", base(&fleet.b), seen.clone());

        fleet.redis.restart().expect("redis restarts, empty");
        let c = replica(fleet.redis.url(), true, 10).await;
        let _c = Watcher::start("C", base(&c), seen.clone());
        let settled = within(Duration::from_secs(5), || async {
            served_cheeks(&base(&c)).await.as_deref() == Some("2026.12.1")
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        for r in ["A", "B"] {
            assert_never_back(&seen, r, "2026.12.1");
        }
        let by_c = seen.of("C");
        assert!(
            settled.is_some() && by_c.iter().all(|v| v == "2026.12.1"),
            "trial {trial}: the new replica serves what the fleet verified, never the bundled seed: {by_c:?}\n{}",
            c.output().join("\n")
        );
        assert_eq!(active_in_redis(&fleet, "clinic-aurora"), "2026.12.1");
        let (_, ready) = readyz(&fleet.a).await;
        assert_eq!(served_version(&ready, "clinic-aurora"), "2026.12.1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_seed_that_wins_the_race_is_undone_not_adopted() {
    let _serial = serial().await;
    let mut fleet = Fleet::start();
    roll_out_to_fleet(&fleet, "2026.12.1", 0.8, BUNDLED_VERSION).await;
    both_serve(&fleet, "2026.12.1").await;
    let seen = Seen::default();
    let _a = Watcher::start("A", base(&fleet.a), seen.clone());
    let _b = Watcher::start("B", base(&fleet.b), seen.clone());

    // A Redis emptied and seeded with the bundled rule sets before any replica noticed (as a
    // replica without the grace, or of an older release, would): the replicas are stopped
    // (SIGSTOP: a long pause) while Redis restarts and the seed lands, then go on.
    signal(&[&fleet.a, &fleet.b], "-STOP");
    fleet.redis.restart().expect("redis restarts, empty");
    let stale = RuleSetStore::open(&fleet.redis.url()).expect("a store client");
    let bundled = Catalog::bundled().expect("bundled rule sets");
    let seeded = stale.seed_if_empty(&bundled).await;
    signal(&[&fleet.a, &fleet.b], "-CONT");
    assert!(seeded.expect("seeds"), "the stale seed got there first");
    // And a replica started on it with the seed flag, without the grace.
    let c = replica(fleet.redis.url(), true, 0).await;
    let _c = Watcher::start("C", base(&c), seen.clone());

    let restored = within(Duration::from_secs(8), || async {
        active_in_redis(&fleet, "clinic-aurora") == "2026.12.1"
            && served_cheeks(&base(&c)).await.as_deref() == Some("2026.12.1")
    })
    .await;
    assert!(
        restored.is_some(),
        "the replicas that verified 2026.12.1 put it back, and the seeding replica adopts it:\nA: {}\nC: {}",
        fleet.a.output().join("\n"),
        c.output().join("\n")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    for r in ["A", "B"] {
        assert_never_back(&seen, r, "2026.12.1");
    }
    // C may have served the stale seed for a moment (it verified nothing else); it never goes
    // back once it has the fleet's state.
    assert_never_back(&seen, "C", BUNDLED_VERSION);
    assert_eq!(seen.of("C").last().map(String::as_str), Some("2026.12.1"));
    let (_, ready) = readyz(&fleet.a).await;
    assert_eq!(ready["status"], "ready", "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_went_back_is_not_adopted_and_is_put_back() {
    let _serial = serial().await;
    let fleet = Fleet::start();
    roll_out_to_fleet(&fleet, "2026.12.1", 0.8, BUNDLED_VERSION).await;
    both_serve(&fleet, "2026.12.1").await;
    let lineage = fleet
        .redis
        .cli(&["HGETALL", &format!("{PREFIX}:lineage")])
        .expect("hgetall");
    let fields: Vec<&str> = lineage.split_whitespace().collect();
    let pairs: BTreeMap<&str, &str> = fields.chunks(2).map(|p| (p[0], p[1])).collect();
    assert_eq!(pairs["seq"], "2", "seed 1, one activation 2: {lineage}");
    let seen = Seen::default();
    let _a = Watcher::start("A", base(&fleet.a), seen.clone());
    let _b = Watcher::start("B", base(&fleet.b), seen.clone());

    // A failover to a replica that missed the last activation: the pointer and the lineage as
    // they were before it, announced.
    let active = format!("{PREFIX}:active");
    let lineage_key = format!("{PREFIX}:lineage");
    fleet
        .redis
        .cli(&["HSET", &active, "clinic-aurora", BUNDLED_VERSION])
        .expect("hset");
    fleet
        .redis
        .cli(&["HSET", &lineage_key, "seq", "1"])
        .expect("hset");
    fleet
        .redis
        .cli(&["PUBLISH", CHANNEL, "{}"])
        .expect("publish");

    let put_back = within(Duration::from_secs(5), || async {
        active_in_redis(&fleet, "clinic-aurora") == "2026.12.1"
    })
    .await;
    assert!(put_back.is_some(), "{}", fleet.a.output().join("\n"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for r in ["A", "B"] {
        assert_never_back(&seen, r, "2026.12.1");
    }
    let seq = fleet
        .redis
        .cli(&["HGET", &lineage_key, "seq"])
        .expect("hget");
    assert_eq!(
        seq.trim(),
        "2",
        "put back at the lineage the replicas verified"
    );
    let logs = [fleet.a.output(), fleet.b.output()].concat().join("\n");
    assert!(
        logs.contains("redis holds an older rule-set state than this replica verified"),
        "the alarm is logged"
    );
}

/// One step of an interleaving.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Activate Aurora's next version (each one tighter: no approval needed) on a replica.
    Activate,
    /// Redis restarts empty (no persistence).
    LoseRedis,
    /// A replica restarts (a new process, remembering nothing), seeding an empty Redis or not.
    Restart { which: usize, seed: bool },
    /// Redis restarts empty and, at once, a replica restarts (a compose service or a pod
    /// restarting with it: the red team's race).
    LoseRedisAndRestart { which: usize, seed: bool },
    /// Redis restarts empty and is seeded with the bundled rule sets before any replica notices
    /// (a replica of an older release, or one without the grace).
    StaleSeed,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Step::Activate),
        Just(Step::LoseRedis),
        (0usize..2, any::<bool>()).prop_map(|(which, seed)| Step::Restart { which, seed }),
        (0usize..2, any::<bool>())
            .prop_map(|(which, seed)| Step::LoseRedisAndRestart { which, seed }),
        Just(Step::StaleSeed),
    ]
}

/// Any interleaving of Redis losses, replica restarts (with and without the seed flag, one
/// replica at a time, as a rolling restart or a crashed pod) and activations never serves Aurora
/// a version older than one a replica process served before, nor a new process a version older
/// than the last activated: real processes, generated interleavings, repeated trials.
#[test]
fn no_interleaving_of_redis_loss_restarts_and_activations_serves_an_older_version() {
    use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
    let _serial = serial_blocking();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut runner = TestRunner::new(Config {
        cases: 3,
        max_shrink_iters: 0,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(step(), 5..8), |steps| {
            runtime.block_on(interleaving(steps));
            Ok(())
        })
        .expect("no interleaving serves an older version");
}

/// Tighter and tighter cheeks caps, one per activation (no approval needed).
const CAPS: [f64; 8] = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6];

async fn interleaving(steps: Vec<Step>) {
    eprintln!("interleaving: {steps:?}");
    let Fleet { mut redis, a, b } = Fleet::start();
    let redis_url = redis.url();
    let seen = Seen::default();
    // (name, server, its watcher, the version last activated when it started: its floor)
    let mut replicas: Vec<(String, Server, Watcher, String)> = Vec::new();
    for (name, server) in [("A0", a), ("B0", b)] {
        let watcher = Watcher::start(name, base(&server), seen.clone());
        replicas.push((name.into(), server, watcher, BUNDLED_VERSION.into()));
    }
    let mut latest = BUNDLED_VERSION.to_owned();
    let mut n = 0;
    for (i, step) in steps.iter().enumerate() {
        let restart = match *step {
            Step::Activate => {
                n += 1;
                let version = format!("2026.12.{n}");
                roll_out(&replicas[i % 2].1, &version, CAPS[n - 1], &latest).await;
                latest = version;
                None
            }
            Step::LoseRedis => {
                redis.restart().expect("redis restarts, empty");
                None
            }
            Step::Restart { which, seed } => Some((which, seed)),
            Step::LoseRedisAndRestart { which, seed } => {
                redis.restart().expect("redis restarts, empty");
                Some((which, seed))
            }
            Step::StaleSeed => {
                // The replicas paused while it happens, so the seed surely lands first.
                let servers: Vec<&Server> = replicas.iter().map(|r| &r.1).collect();
                signal(&servers, "-STOP");
                redis.restart().expect("redis restarts, empty");
                let stale = RuleSetStore::open(&redis_url).expect("a store client");
                let bundled = Catalog::bundled().expect("bundled rule sets");
                let seeded = stale.seed_if_empty(&bundled).await;
                signal(&servers, "-CONT");
                assert!(seeded.expect("answers"), "the stale seed lands");
                None
            }
        };
        if let Some((which, seed)) = restart {
            let name = format!("{}{}", ["A", "B"][which], i + 1);
            // Stopped first: the old process is gone before the new one starts.
            drop(replicas.remove(which));
            let server = replica(redis_url.clone(), seed, 5).await;
            let watcher = Watcher::start(&name, base(&server), seen.clone());
            replicas.insert(which, (name, server, watcher, latest.clone()));
        }
        // Redis holds the last activated version again, and every replica serves it (a replica
        // restarted onto an emptied Redis serves once the other puts the state back).
        let held = within(Duration::from_secs(10), || async {
            redis
                .cli(&["HGET", &format!("{PREFIX}:active"), "clinic-aurora"])
                .map(|v| v.trim() == latest)
                .unwrap_or(false)
        })
        .await;
        assert!(
            held.is_some(),
            "after {step:?} (step {i} of {steps:?}) redis does not hold {latest}"
        );
        for (name, server, ..) in &replicas {
            let settled = within(Duration::from_secs(10), || async {
                served_cheeks(&base(server)).await.as_deref() == Some(latest.as_str())
            })
            .await;
            assert!(
                settled.is_some(),
                "after {step:?} (step {i} of {steps:?}) {name} does not serve {latest}: {:?}\n{}",
                seen.of(name),
                server.output().join("\n")
            );
        }
    }
    for (name, _, _, floor) in &replicas {
        assert_never_back(&seen, name, floor);
    }
    for name in ["A0", "B0"] {
        assert_never_back(&seen, name, BUNDLED_VERSION);
    }
}
