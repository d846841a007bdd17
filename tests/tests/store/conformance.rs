//! The store's conformance suite: every case runs on Redis (a real `redis-server` of its own) and
//! on the memory backend, so the two cannot drift apart. A case takes a [`Maker`] of fresh
//! state and asks it for store handles ([`Fixture::store`]: another client of the same state).

use protocol_engine::{Format, parse_document};
use protocol_server::catalog::{Catalog, Origin};
use protocol_server::store::{
    Activation, Approval, Expected, Guard, Lineage, Rollback, RuleSetStore, StoreError,
    StoreOptions,
};
use protocol_tests::redis_server::RedisServer;

use super::{
    AURORA, BASE, BUNDLED_VERSION, activate_approved, aurora, aurora_declared, bundled, dry,
    rollback_approved,
};

/// Fresh state for one case.
pub(super) type Maker = fn() -> Fixture;

/// The state a case runs on, and how to open handles on it.
pub(super) enum Fixture {
    /// A `redis-server` of its own (killed on drop); each handle is a new client.
    Redis(RedisServer),
    /// The memory backend; each handle shares its state.
    Memory(RuleSetStore),
}

impl Fixture {
    fn redis() -> Self {
        Self::Redis(RedisServer::start().expect("redis starts"))
    }

    fn memory() -> Self {
        Self::Memory(RuleSetStore::in_memory(StoreOptions::default()))
    }

    /// A handle with `options`.
    pub(super) fn store_with(&self, options: StoreOptions) -> RuleSetStore {
        match self {
            Self::Redis(redis) => {
                RuleSetStore::open_with(&redis.url(), options).expect("valid url")
            }
            Self::Memory(store) => store.with_options(options),
        }
    }

    /// A handle whose publisher may approve its own loosenings (most cases publish with no
    /// key); four eyes are the case `loosening_moves_need_an_approval_from_another_key`.
    pub(super) fn store(&self) -> RuleSetStore {
        self.store_with(StoreOptions {
            single_person_approval: true,
            ..StoreOptions::default()
        })
    }

    /// A handle with four eyes on (the default options).
    pub(super) fn four_eyes(&self) -> RuleSetStore {
        self.store_with(StoreOptions::default())
    }

    /// A seeded handle: the bundled base and Aurora overlay active.
    pub(super) async fn seeded(&self) -> RuleSetStore {
        let s = self.store();
        assert!(s.seed_if_empty(&bundled()).await.expect("seeds"));
        s
    }
}

/// Each case as a test on each backend.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Fixture::redis).await
                }
            )*
        }
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Fixture::memory).await
                }
            )*
        }
    };
}

conformance!(
    versions_retirement_and_history_are_kept,
    publish_is_idempotent_and_the_same_version_with_other_content_is_a_conflict,
    an_invalid_document_is_refused_naming_the_field,
    an_overlay_that_loosens_the_base_is_refused,
    an_overlay_needs_an_active_base,
    of_two_concurrent_activations_exactly_one_wins,
    load_active_serves_the_activated_digest_and_rollback_returns,
    activation_validates_the_whole_resulting_catalog,
    seeding_happens_once,
    concurrent_rollbacks_with_one_idempotency_key_roll_back_once,
    loosening_moves_need_an_approval_from_another_key,
    a_base_that_loosens_an_overlay_is_refused_and_its_dry_run_names_every_clinic,
    no_unapproved_sequence_ever_serves_a_looser_rule_set,
    every_move_advances_the_lineage_and_a_restore_holds_only_on_the_lineage_read,
);

async fn publish_is_idempotent_and_the_same_version_with_other_content_is_a_conflict(make: Maker) {
    let f = make();
    let s = f.seeded().await;

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

async fn an_invalid_document_is_refused_naming_the_field(make: Maker) {
    let f = make();
    let s = f.seeded().await;

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

async fn an_overlay_that_loosens_the_base_is_refused(make: Maker) {
    let f = make();
    let s = f.seeded().await;

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

async fn an_overlay_needs_an_active_base(make: Maker) {
    let f = make();
    let s = f.store();
    let err = s
        .publish(aurora("2026.12.1", 45))
        .await
        .expect_err("no base active");
    assert!(err.to_string().contains("extends"), "{err}");
}

async fn of_two_concurrent_activations_exactly_one_wins(make: Maker) {
    let f = make();
    let s = f.seeded().await;
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
        let (a, b) = (f.store(), f.store());
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

async fn load_active_serves_the_activated_digest_and_rollback_returns(make: Maker) {
    let f = make();
    let s = f.seeded().await;
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

async fn activation_validates_the_whole_resulting_catalog(make: Maker) {
    let f = make();
    let s = f.seeded().await;

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

async fn seeding_happens_once(make: Maker) {
    let f = make();
    let s = f.store();
    let (a, b) = (f.store(), f.store());
    let catalog = bundled();
    // Two replicas starting together: exactly one seeds.
    let (ra, rb) = tokio::join!(a.seed_if_empty(&catalog), b.seed_if_empty(&catalog));
    let seeded = [ra.expect("seeds"), rb.expect("seeds")];
    assert_eq!(seeded.iter().filter(|s| **s).count(), 1, "{seeded:?}");
    assert!(!s.seed_if_empty(&catalog).await.expect("no-op"));

    let loaded = s.load_active().await.expect("loads");
    assert_eq!(loaded.refs(), catalog.refs());
}

async fn concurrent_rollbacks_with_one_idempotency_key_roll_back_once(make: Maker) {
    let f = make();
    let s = f.seeded().await;
    s.publish(aurora("2026.12.1", 45)).await.expect("publishes");
    let (other, third) = (f.store(), f.store());
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

async fn loosening_moves_need_an_approval_from_another_key(make: Maker) {
    let f = make();
    let s = f.four_eyes();
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

async fn a_base_that_loosens_an_overlay_is_refused_and_its_dry_run_names_every_clinic(make: Maker) {
    let f = make();
    let s = f.four_eyes();
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
async fn no_unapproved_sequence_ever_serves_a_looser_rule_set(make: Maker) {
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
                let f = make();
                let s = f.four_eyes();
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

/// What the listings say after publishing, activating, retiring and rolling back: the versions
/// in publish order with their flags, a retired version's name kept reserved, the history line,
/// the ids, and an idempotency key refused for another request.
async fn versions_retirement_and_history_are_kept(make: Maker) {
    let f = make();
    let s = f.seeded().await;
    for (v, interval) in [("2026.12.1", 45), ("2026.12.2", 46), ("2026.12.3", 47)] {
        s.publish_by(aurora(v, interval), Some("author"))
            .await
            .expect("publishes");
    }
    activate_approved(
        &s,
        "clinic-aurora",
        "2026.12.1",
        Some(BUNDLED_VERSION),
        None,
    )
    .await
    .expect("activates");

    // Retiring: the active and the once-active are kept, an unknown version is not found, a
    // never-active one is retired (twice: the first answer), and its name stays reserved.
    let kept = |e: StoreError, now: bool| {
        assert!(
            matches!(e, StoreError::WasActive { active_now, .. } if active_now == now),
            "{e}"
        );
    };
    kept(
        s.retire("clinic-aurora", "2026.12.1", Some("ops"))
            .await
            .expect_err("active"),
        true,
    );
    kept(
        s.retire("clinic-aurora", BUNDLED_VERSION, Some("ops"))
            .await
            .expect_err("was active"),
        false,
    );
    let missing = s
        .retire("clinic-aurora", "2099.1.1", Some("ops"))
        .await
        .expect_err("never published");
    assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
    let retired = s
        .retire("clinic-aurora", "2026.12.2", Some("ops"))
        .await
        .expect("retires");
    assert_eq!(retired.by.as_deref(), Some("ops"));
    assert!(!retired.digest.is_empty(), "the digest is kept");
    let again = s
        .retire("clinic-aurora", "2026.12.2", Some("someone else"))
        .await
        .expect("idempotent");
    assert_eq!(again, retired, "the first retirement is answered");
    let republish = s
        .publish(aurora("2026.12.2", 46))
        .await
        .expect_err("the name stays reserved");
    assert!(republish.to_string().contains("retired"), "{republish}");
    let fetched = s
        .fetch("clinic-aurora", "2026.12.2")
        .await
        .expect_err("its payload is gone");
    assert!(matches!(fetched, StoreError::Retired { .. }), "{fetched}");
    let activated = s
        .activate("clinic-aurora", "2026.12.2", Some("2026.12.1"))
        .await
        .expect_err("a retired version is not activated");
    assert!(
        matches!(activated, StoreError::Retired { .. }),
        "{activated}"
    );

    let versions = s.list_versions("clinic-aurora").await.expect("lists");
    let listed: Vec<(&str, bool, bool, bool)> = versions
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                v.active,
                v.ever_active,
                v.retired_at_ms.is_some(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (BUNDLED_VERSION, false, true, false),
            ("2026.12.1", true, true, false),
            ("2026.12.2", false, false, true),
            ("2026.12.3", false, false, false),
        ]
    );
    assert!(
        versions
            .windows(2)
            .all(|w| w[0].published_at_ms <= w[1].published_at_ms),
        "publish order"
    );
    assert_eq!(
        s.list_ids().await.expect("ids"),
        ["base", "clinic-aurora"],
        "sorted, each once"
    );
    let unknown = s.list_versions("clinic-nobody").await.expect_err("none");
    assert!(matches!(unknown, StoreError::NotFound { .. }), "{unknown}");

    // A rollback with a key; the same key for another request is refused.
    let request = Rollback {
        to_version: None,
        expected_current: None,
        idempotency_key: Some("back-once".into()),
    };
    let back = rollback_approved(&s, "clinic-aurora", &request, Some("ops"))
        .await
        .expect("rolls back");
    assert_eq!(back.version, BUNDLED_VERSION);
    let other = Rollback {
        to_version: Some(BUNDLED_VERSION.into()),
        ..request.clone()
    };
    let reused = s
        .rollback("clinic-aurora", &other, Some("ops"))
        .await
        .expect_err("another request");
    assert!(
        matches!(reused, StoreError::IdempotencyKeyReused { .. }),
        "{reused}"
    );
    let history = s.history("clinic-aurora").await.expect("history");
    let line: Vec<(&str, &str)> = history
        .iter()
        .map(|e| (e.version.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        line,
        [
            (BUNDLED_VERSION, "seed"),
            ("2026.12.1", "activate"),
            (BUNDLED_VERSION, "rollback"),
        ]
    );
    assert!(s.history("clinic-nobody").await.expect("empty").is_empty());
}

/// The lineage (`store::lineage`): a seed begins an epoch at 1, every move adds one, a refused
/// move adds nothing; a restore writes only while the lineage is the one its replica read, and
/// a first seed never writes over a store that records a lineage.
async fn every_move_advances_the_lineage_and_a_restore_holds_only_on_the_lineage_read(make: Maker) {
    let f = make();
    let s = f.seeded().await;
    let lineage = |s: RuleSetStore| async move {
        s.active_state()
            .await
            .expect("reads")
            .lineage
            .expect("a lineage is recorded")
    };
    let seeded = lineage(s.clone()).await;
    assert_eq!(seeded.seq, 1);
    assert_eq!(seeded.epoch.len(), 32, "{seeded:?}");

    s.publish(aurora("2026.12.1", 45)).await.expect("publishes");
    s.activate("clinic-aurora", "2026.12.1", Some(BUNDLED_VERSION))
        .await
        .expect("activates");
    let moved = lineage(s.clone()).await;
    assert_eq!(
        moved,
        Lineage {
            epoch: seeded.epoch.clone(),
            seq: 2
        }
    );
    s.activate("clinic-aurora", BUNDLED_VERSION, Some(BUNDLED_VERSION))
        .await
        .expect_err("a stale expectation moves nothing");
    assert_eq!(lineage(s.clone()).await, moved);
    assert!(
        !s.seed_if_empty(&bundled()).await.expect("no-op"),
        "a first seed never writes over a store with pointers"
    );

    // A replica that verified seq 5 of this epoch puts its state (the bundled sets) back over
    // seq 2; a second restore that read seq 2 finds the lineage moved and writes nothing.
    let ours = Lineage {
        epoch: seeded.epoch.clone(),
        seq: 5,
    };
    assert!(
        s.restore(&bundled(), Some(moved.clone()), ours.clone())
            .await
            .expect("restores")
    );
    assert_eq!(lineage(s.clone()).await, ours);
    assert_eq!(
        s.active_versions().await.expect("reads")["clinic-aurora"],
        BUNDLED_VERSION
    );
    let history = s.history("clinic-aurora").await.expect("history");
    assert_eq!(
        history.last().map(|e| e.action.as_str()),
        Some("restore"),
        "{history:?}"
    );
    let later = Lineage {
        epoch: seeded.epoch.clone(),
        seq: 9,
    };
    assert!(
        !s.restore(&bundled(), Some(moved), later.clone())
            .await
            .expect("answers"),
        "the lineage read is not the lineage held"
    );
    assert!(
        !s.restore(&bundled(), None, later).await.expect("answers"),
        "'none recorded' does not hold over a recorded lineage"
    );
    assert_eq!(lineage(s.clone()).await, ours);
    // The next move goes on from the restored lineage.
    s.activate("clinic-aurora", "2026.12.1", Some(BUNDLED_VERSION))
        .await
        .expect("activates");
    assert_eq!(lineage(s).await.seq, 6);
}
