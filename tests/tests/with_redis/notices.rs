//! Rule-set notices for booking systems (gRPC `WatchRuleSets`, REST `GET /v1/rulesets:watch` as
//! Server-Sent Events): the rule set that answers for the caller's clinic now, a new notice within
//! a second of an activation that changes it (its overlay, or the base under it), nothing for
//! another clinic's activation, resume by revision, heartbeats.

use std::time::{Duration, Instant};

use protocol_tests::sse::{self, Events, SseEvent};
use protocol_tests::{KEY_BASE, KEY_ELIGIBILITY_ONLY, KEY_PLATFORM, Server, pb};
use serde_json::json;
use tonic::Streaming;

use crate::with_redis::common::*;

const BASE_YAML: &str = include_str!("../../../rulesets/base.yaml");

type Notices = Streaming<pb::WatchRuleSetsResponse>;

/// The bundled base under another version (a new digest, the same rules).
fn base(version: &str) -> String {
    let text = BASE_YAML.replace(
        &format!("version: \"{BUNDLED_VERSION}\""),
        &format!("version: \"{version}\""),
    );
    assert!(text.contains(&format!("version: \"{version}\"")));
    text
}

async fn grpc_watch(server: &Server, key: &str, since: Option<String>) -> Notices {
    server
        .grpc()
        .await
        .expect("client")
        .watch_rule_sets(with_key(
            pb::WatchRuleSetsRequest {
                since_revision: since,
            },
            key,
        ))
        .await
        .expect("watch opens")
        .into_inner()
}

async fn sse_watch(server: &Server, key: &str, last_event_id: Option<&str>) -> Events {
    match sse::open(
        &sse::client(),
        &server.url("/v1/rulesets:watch"),
        key,
        last_event_id,
    )
    .await
    {
        Ok(events) => events,
        Err((status, body, _)) => panic!("watch refused: {status} {body}"),
    }
}

/// The next message within `limit`: `(is_notice, notice)`.
async fn next_grpc(stream: &mut Notices, limit: Duration) -> (bool, pb::RuleSetNotice) {
    let update = tokio::time::timeout(limit, stream.message())
        .await
        .expect("a message in time")
        .expect("the stream is ok")
        .expect("the stream is open");
    match update.update {
        Some(pb::watch_rule_sets_response::Update::Notice(n)) => (true, n),
        Some(pb::watch_rule_sets_response::Update::Heartbeat(n)) => (false, n),
        None => panic!("an empty update"),
    }
}

async fn next_sse(events: &mut Events, limit: Duration) -> SseEvent {
    tokio::time::timeout(limit, events.next())
        .await
        .expect("an event in time")
        .expect("the stream is ok")
        .expect("the stream is open")
}

fn version(n: &pb::RuleSetNotice) -> (&str, &str) {
    let r = n
        .ruleset
        .as_ref()
        .expect("a serving notice names its rule set");
    (r.id.as_str(), r.version.as_str())
}

/// Nothing but heartbeats arrive on `stream` for `quiet`.
async fn grpc_quiet(stream: &mut Notices, quiet: Duration) {
    let until = Instant::now() + quiet;
    while let Ok(got) = tokio::time::timeout_at(until.into(), stream.message()).await {
        if let Ok(Some(pb::WatchRuleSetsResponse {
            update: Some(pb::watch_rule_sets_response::Update::Notice(n)),
        })) = got
        {
            panic!("a notice for another clinic's activation: {n:?}");
        }
    }
}

async fn sse_quiet(events: &mut Events, quiet: Duration) {
    let until = Instant::now() + quiet;
    while let Ok(got) = tokio::time::timeout_at(until.into(), events.next()).await {
        if let Ok(Some(e)) = got {
            assert_eq!(
                e.event, "heartbeat",
                "a notice for another clinic's activation: {e:?}"
            );
        }
    }
}

/// `POST /v1/rulesets/{id}/activate` as `key`.
async fn activate_as(server: &Server, key: &str, id: &str, version: &str, expected: &str) {
    let res = http()
        .post(server.url(&format!("/v1/rulesets/{id}/activate")))
        .bearer_auth(key)
        .json(&json!({"version": version, "expected_current": expected}))
        .send()
        .await
        .expect("activate answered");
    assert_eq!(res.status().as_u16(), 200, "activate {id} {version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_systems_hear_of_their_clinics_rule_set_and_only_theirs() {
    let _serial = serial().await;
    let fleet = Fleet::start();
    // Booking systems on replica B: Aurora (an overlay) and Borealis (no overlay: the base), over
    // both protocols.
    let mut aurora_grpc = grpc_watch(&fleet.b, KEY_ELIGIBILITY_ONLY, None).await;
    let mut borealis_grpc = grpc_watch(&fleet.b, KEY_BASE, None).await;
    let mut aurora_sse = sse_watch(&fleet.b, KEY_ELIGIBILITY_ONLY, None).await;
    let mut borealis_sse = sse_watch(&fleet.b, KEY_BASE, None).await;

    // At once: the rule set in force for each clinic.
    let (is_notice, first) = next_grpc(&mut aurora_grpc, Duration::from_secs(1)).await;
    assert!(is_notice);
    assert_eq!(first.status, pb::rule_set_notice::Status::Serving as i32);
    assert_eq!(version(&first), ("clinic-aurora", BUNDLED_VERSION));
    let base_ref = first.ruleset.as_ref().and_then(|r| r.base.as_ref());
    assert_eq!(base_ref.map(|b| b.id.as_str()), Some("base"));
    let (is_notice, borealis_first) = next_grpc(&mut borealis_grpc, Duration::from_secs(1)).await;
    assert!(is_notice);
    assert_eq!(version(&borealis_first), ("base", BUNDLED_VERSION));
    let e = next_sse(&mut aurora_sse, Duration::from_secs(1)).await;
    assert_eq!(e.event, "ruleset");
    assert_eq!(
        (e.ruleset_id(), e.version()),
        ("clinic-aurora", BUNDLED_VERSION)
    );
    assert_eq!(e.data["status"], "serving");
    assert_eq!(e.id, first.revision, "the SSE id is the notice's revision");
    assert_eq!(e.data["revision"], first.revision.as_str());
    let e = next_sse(&mut borealis_sse, Duration::from_secs(1)).await;
    assert_eq!((e.ruleset_id(), e.version()), ("base", BUNDLED_VERSION));

    // Aurora activates a tighter overlay through replica A: Aurora's booking systems hear of it
    // within a second, on both protocols; Borealis's hear nothing.
    let (status, body) = publish(
        &fleet.a,
        protocol_tests::KEY_AURORA,
        &aurora("2026.12.1", 0.8),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let started = Instant::now();
    activate_as(
        &fleet.a,
        protocol_tests::KEY_AURORA,
        "clinic-aurora",
        "2026.12.1",
        BUNDLED_VERSION,
    )
    .await;
    let (is_notice, n) = next_grpc(&mut aurora_grpc, Duration::from_secs(1)).await;
    assert!(is_notice, "a notice, not a heartbeat: {n:?}");
    assert_eq!(version(&n), ("clinic-aurora", "2026.12.1"));
    assert!(!n.ruleset.as_ref().expect("ruleset").digest.is_empty());
    let e = next_sse(&mut aurora_sse, Duration::from_secs(1)).await;
    assert_eq!(
        (e.event.as_str(), e.ruleset_id(), e.version()),
        ("ruleset", "clinic-aurora", "2026.12.1")
    );
    assert_eq!(e.id, n.revision);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The notice names what every answer names: a booking system compares it with the `ruleset`
    // of the answers it holds.
    let (_, decision) = eligibility(&fleet.b).await;
    assert_eq!(
        decision["ruleset"]["digest"],
        n.ruleset.as_ref().expect("ruleset").digest.as_str()
    );
    grpc_quiet(&mut borealis_grpc, Duration::from_millis(500)).await;
    sse_quiet(&mut borealis_sse, Duration::from_millis(100)).await;

    // A new base changes both clinics' answers (Aurora's overlay is recompiled on it): both hear.
    let res = http()
        .post(fleet.a.url("/v1/rulesets"))
        .bearer_auth(KEY_PLATFORM)
        .header("content-type", "application/yaml")
        .body(base("2026.12.2"))
        .send()
        .await
        .expect("publish answered");
    assert_eq!(res.status().as_u16(), 201, "publish base");
    activate_as(&fleet.a, KEY_PLATFORM, "base", "2026.12.2", BUNDLED_VERSION).await;
    let (is_notice, n) = next_grpc(&mut aurora_grpc, Duration::from_secs(1)).await;
    assert!(is_notice);
    assert_eq!(
        version(&n),
        ("clinic-aurora", "2026.12.1"),
        "the overlay is unchanged"
    );
    let base_now = n
        .ruleset
        .as_ref()
        .and_then(|r| r.base.as_ref())
        .expect("base");
    assert_eq!(base_now.version, "2026.12.2", "its base is new");
    let e = next_sse(&mut aurora_sse, Duration::from_secs(1)).await;
    assert_eq!(e.data["ruleset"]["base"]["version"], "2026.12.2");
    let (is_notice, n) = next_grpc(&mut borealis_grpc, Duration::from_secs(1)).await;
    assert!(is_notice);
    assert_eq!(version(&n), ("base", "2026.12.2"));
    let e = next_sse(&mut borealis_sse, Duration::from_secs(1)).await;
    assert_eq!((e.ruleset_id(), e.version()), ("base", "2026.12.2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_system_resumes_from_the_revision_it_has() {
    let _serial = serial().await;
    let fleet = Fleet::start();
    let mut first = grpc_watch(&fleet.b, KEY_ELIGIBILITY_ONLY, None).await;
    let (_, old) = next_grpc(&mut first, Duration::from_secs(1)).await;
    drop(first);

    // Resumed at the rule set in force: a heartbeat first, not the notice again.
    let mut resumed = grpc_watch(&fleet.b, KEY_ELIGIBILITY_ONLY, Some(old.revision.clone())).await;
    let (is_notice, beat) = next_grpc(&mut resumed, Duration::from_secs(1)).await;
    assert!(!is_notice, "resumed at the current revision: {beat:?}");
    assert_eq!(beat.revision, old.revision);
    let mut events = sse_watch(&fleet.b, KEY_ELIGIBILITY_ONLY, Some(&old.revision)).await;
    let e = next_sse(&mut events, Duration::from_secs(1)).await;
    assert_eq!(e.event, "heartbeat", "{e:?}");
    assert_eq!(e.data["revision"], old.revision.as_str());
    // `?since=` does the same for a first connection; the revision can be made from the
    // `ruleset` of any answer (digest, `/`, base digest).
    let (_, decision) = eligibility(&fleet.b).await;
    let from_answer = format!(
        "{}/{}",
        decision["ruleset"]["digest"].as_str().expect("digest"),
        decision["ruleset"]["base"]["digest"]
            .as_str()
            .expect("base digest")
    );
    assert_eq!(from_answer, old.revision);
    let url = format!(
        "{}?since={}",
        fleet.b.url("/v1/rulesets:watch"),
        from_answer
    );
    let mut by_query = sse::open(&sse::client(), &url, KEY_ELIGIBILITY_ONLY, None)
        .await
        .unwrap_or_else(|(s, b, _)| panic!("{s} {b}"));
    assert_eq!(
        next_sse(&mut by_query, Duration::from_secs(1)).await.event,
        "heartbeat"
    );

    // A new version while the client was away: resuming from the old revision sends it at once.
    roll_out(&fleet.a, "2026.12.1", 0.8, BUNDLED_VERSION).await;
    let (is_notice, n) = next_grpc(&mut resumed, Duration::from_secs(1)).await;
    assert!(is_notice);
    assert_eq!(version(&n), ("clinic-aurora", "2026.12.1"));
    let mut stale = grpc_watch(&fleet.b, KEY_ELIGIBILITY_ONLY, Some(old.revision.clone())).await;
    let (is_notice, now) = next_grpc(&mut stale, Duration::from_secs(1)).await;
    assert!(is_notice);
    assert_eq!(version(&now), ("clinic-aurora", "2026.12.1"));
    let mut events = sse_watch(&fleet.b, KEY_ELIGIBILITY_ONLY, Some(&old.revision)).await;
    let e = next_sse(&mut events, Duration::from_secs(1)).await;
    assert_eq!((e.event.as_str(), e.version()), ("ruleset", "2026.12.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_notice_streams_get_heartbeats_naming_the_rule_set_in_force() {
    let fleet = Fleet::start_with(|b| {
        b.env("PROTOCOL_WATCH_HEARTBEAT_SECS", "1")
            .env("PROTOCOL_HEADER_READ_TIMEOUT_SECS", "1")
    });
    let mut stream = grpc_watch(&fleet.a, KEY_ELIGIBILITY_ONLY, None).await;
    let (_, first) = next_grpc(&mut stream, Duration::from_secs(1)).await;
    let (is_notice, beat) = next_grpc(&mut stream, Duration::from_secs(3)).await;
    assert!(!is_notice, "a heartbeat: {beat:?}");
    assert_eq!(version(&beat), ("clinic-aurora", BUNDLED_VERSION));
    assert_eq!(beat.revision, first.revision);

    let mut events = sse_watch(&fleet.a, KEY_ELIGIBILITY_ONLY, None).await;
    let first = next_sse(&mut events, Duration::from_secs(1)).await;
    let beat = next_sse(&mut events, Duration::from_secs(3)).await;
    assert_eq!(beat.event, "heartbeat");
    // A heartbeat carries no id of its own: the last event id stays the notice's.
    assert_eq!(beat.id, first.id);
    assert_eq!(beat.version(), BUNDLED_VERSION);
    // Still alive well past the REST header-read timeout (1 s here), which bounds the wait for a
    // request head, never a response being streamed.
    for _ in 0..2 {
        let later = next_sse(&mut events, Duration::from_secs(3)).await;
        assert_eq!(later.event, "heartbeat");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_rule_set_is_an_unavailable_notice_naming_it_until_a_good_one_is_active() {
    let _serial = serial().await;
    let fleet = Fleet::start();
    roll_out_to_fleet(&fleet, "2026.12.1", 0.8, BUNDLED_VERSION).await;
    crate::with_redis::refusal::corrupt(&fleet.redis, "clinic-aurora", "2026.12.1");
    // A new replica refuses Aurora's overlay (and only it).
    let c = protocol_tests::ServerBuilder::new()
        .with_keys()
        .with_redis(&fleet.redis)
        .spawn()
        .expect("C starts");

    let mut aurora_grpc = grpc_watch(&c, KEY_ELIGIBILITY_ONLY, None).await;
    let (is_notice, n) = next_grpc(&mut aurora_grpc, Duration::from_secs(1)).await;
    assert!(is_notice);
    assert_eq!(
        n.status,
        pb::rule_set_notice::Status::Unavailable as i32,
        "{n:?}"
    );
    assert!(
        n.ruleset.is_none(),
        "never another rule set in its place: {n:?}"
    );
    let refused = n.refused.as_ref().expect("the refused rule set is named");
    assert_eq!(
        (refused.id.as_str(), refused.version.as_str()),
        ("clinic-aurora", "2026.12.1")
    );
    let mut aurora_sse = sse_watch(&c, KEY_ELIGIBILITY_ONLY, None).await;
    let e = next_sse(&mut aurora_sse, Duration::from_secs(1)).await;
    assert_eq!(e.data["status"], "unavailable", "{e:?}");
    assert_eq!(e.data["refused"]["id"], "clinic-aurora");
    assert_eq!(e.data["refused"]["version"], "2026.12.1");
    assert_eq!(e.id, n.revision);
    // Another clinic is served as usual.
    let mut borealis = grpc_watch(&c, KEY_BASE, None).await;
    let (_, b) = next_grpc(&mut borealis, Duration::from_secs(1)).await;
    assert_eq!(b.status, pb::rule_set_notice::Status::Serving as i32);
    assert_eq!(version(&b).0, "base");

    // A good version activated: Aurora's booking systems hear that it is served again.
    roll_out(&fleet.a, "2026.12.2", 0.8, "2026.12.1").await;
    let (is_notice, n) = next_grpc(&mut aurora_grpc, Duration::from_secs(2)).await;
    assert!(is_notice);
    assert_eq!(n.status, pb::rule_set_notice::Status::Serving as i32);
    assert_eq!(version(&n), ("clinic-aurora", "2026.12.2"));
    let e = next_sse(&mut aurora_sse, Duration::from_secs(2)).await;
    assert_eq!(
        (e.data["status"].as_str(), e.version()),
        (Some("serving"), "2026.12.2")
    );
}
