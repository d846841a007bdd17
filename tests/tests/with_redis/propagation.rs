//! An activation on one replica reaches the other replica and every watching device within a
//! second (pub/sub; the periodic reconcile is the safety net, tested in `faults`).
//!
//! The second is counted from the activation's answer: that is when the rule author knows the
//! change is made. The activation's own time (the guard compares the rule sets, in a debug build,
//! on two shared cores) is not propagation; counting it made these tests fail under CI's load
//! while every replica and stream had the change within the second.

use std::time::Duration;

use protocol_tests::{KEY_AURORA, KEY_BASE, pb};
use tokio_stream::StreamExt;

use crate::with_redis::common::*;

fn watch_request(resume_etag: Option<String>) -> pb::WatchDepthLimitsRequest {
    pb::WatchDepthLimitsRequest {
        treatment: "microneedling".into(),
        device: "dermapen_4".into(),
        role: "physician".into(),
        zone: Some("cheeks".into()),
        resume_etag,
        ..Default::default()
    }
}

fn limits_of(update: pb::WatchDepthLimitsResponse) -> Option<pb::GetDepthLimitsResponse> {
    match update.update {
        Some(pb::watch_depth_limits_response::Update::Limits(l)) => Some(l),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_on_replica_a_is_served_by_replica_b_within_a_second() {
    let _serial = serial().await;
    let fleet = Fleet::start();
    let (mm, version, etag_before) = cheeks(&fleet.b).await;
    assert_eq!((mm, version.as_str()), (BUNDLED_CHEEKS_MM, BUNDLED_VERSION));

    // Aurora's medical director tightens microneedling on the cheeks to 0.8 mm.
    let (status, body) = publish(&fleet.a, KEY_AURORA, &aurora("2026.12.1", 0.8)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = activate(&fleet.a, "clinic-aurora", "2026.12.1", BUNDLED_VERSION).await;
    assert_eq!(status, 200, "{body}");
    let started = std::time::Instant::now();

    let served = within(Duration::from_secs(1), || async {
        cheeks(&fleet.b).await.1 == "2026.12.1"
    })
    .await;
    assert!(
        served.is_some() && started.elapsed() < Duration::from_millis(1100),
        "replica B did not serve 2026.12.1 within 1 s of the activation"
    );
    let (mm, _, etag_after) = cheeks(&fleet.b).await;
    assert_eq!(mm, 0.8, "replica B serves the tightened cheeks limit");
    assert_ne!(
        etag_after, etag_before,
        "REST devices see the change through the ETag"
    );

    // Decisions on B name the new version too; the base (other clinics) is unchanged.
    let (status, decision) = eligibility(&fleet.b).await;
    assert_eq!(status, 200);
    assert_eq!(decision["ruleset"]["version"], "2026.12.1");
    let (_, ready) = readyz(&fleet.b).await;
    assert_eq!(served_version(&ready, "clinic-aurora"), "2026.12.1");
    assert_eq!(served_version(&ready, "base"), BUNDLED_VERSION);
    assert_eq!(ready["origin"], "redis");
    assert_eq!(ready["redis"], "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_device_receives_new_limits_within_a_second() {
    let _serial = serial().await;
    let fleet = Fleet::start();
    let mut client = fleet.b.grpc().await.expect("client");

    // A device of Aurora watching on replica B, and one of another clinic (base rule set).
    let mut aurora_stream = client
        .watch_depth_limits(with_key(watch_request(None), KEY_AURORA))
        .await
        .expect("watch")
        .into_inner();
    let first = limits_of(aurora_stream.message().await.expect("ok").expect("first"))
        .expect("limits first");
    assert_eq!(first.zones[0].max_depth_mm, BUNDLED_CHEEKS_MM);
    assert!(!first.etag.is_empty());
    let mut base_stream = client
        .watch_depth_limits(with_key(watch_request(None), KEY_BASE))
        .await
        .expect("watch")
        .into_inner();
    base_stream.message().await.expect("ok").expect("first");

    let (status, _) = publish(&fleet.a, KEY_AURORA, &aurora("2026.12.1", 0.8)).await;
    assert_eq!(status, 201);
    let (status, _) = activate(&fleet.a, "clinic-aurora", "2026.12.1", BUNDLED_VERSION).await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();

    let update = tokio::time::timeout(Duration::from_secs(1), aurora_stream.message())
        .await
        .expect("an update within 1 s")
        .expect("ok")
        .expect("message");
    let elapsed = started.elapsed();
    let limits = limits_of(update).expect("new limits, not a heartbeat");
    assert_eq!(limits.zones[0].max_depth_mm, 0.8);
    assert_eq!(
        limits.ruleset.as_ref().map(|r| r.version.as_str()),
        Some("2026.12.1"),
        "the update carries the rule-set version"
    );
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");

    // The base's limits did not change: nothing is pushed to the other clinic's device.
    let quiet = tokio::time::timeout(Duration::from_millis(500), base_stream.next()).await;
    assert!(quiet.is_err(), "unchanged limits are not pushed: {quiet:?}");

    // A device that reconnects with the etag it last saw gets a heartbeat, not the same limits.
    let mut resumed = client
        .watch_depth_limits(with_key(
            watch_request(Some(limits.etag.clone())),
            KEY_AURORA,
        ))
        .await
        .expect("watch")
        .into_inner();
    match resumed.message().await.expect("ok").expect("first").update {
        Some(pb::watch_depth_limits_response::Update::Heartbeat(h)) => {
            assert_eq!(h.etag, limits.etag);
            assert_eq!(h.ruleset.map(|r| r.version), Some("2026.12.1".into()));
        }
        other => panic!("expected a heartbeat on resume, got {other:?}"),
    }
    // One that last saw the old limits gets the new ones at once.
    let mut stale = client
        .watch_depth_limits(with_key(watch_request(Some(first.etag)), KEY_AURORA))
        .await
        .expect("watch")
        .into_inner();
    let now = limits_of(stale.message().await.expect("ok").expect("first")).expect("limits");
    assert_eq!(now.zones[0].max_depth_mm, 0.8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watch_streams_get_heartbeats_naming_the_version() {
    let fleet = Fleet::start_with(|b| b.env("PROTOCOL_WATCH_HEARTBEAT_SECS", "1"));
    let mut client = fleet.a.grpc().await.expect("client");
    let mut stream = client
        .watch_depth_limits(with_key(watch_request(None), KEY_AURORA))
        .await
        .expect("watch")
        .into_inner();
    stream.message().await.expect("ok").expect("first");
    let beat = tokio::time::timeout(Duration::from_secs(3), stream.message())
        .await
        .expect("a heartbeat")
        .expect("ok")
        .expect("message");
    match beat.update {
        Some(pb::watch_depth_limits_response::Update::Heartbeat(h)) => {
            assert_eq!(h.ruleset.map(|r| r.version), Some(BUNDLED_VERSION.into()));
            assert!(!h.etag.is_empty());
        }
        other => panic!("expected a heartbeat, got {other:?}"),
    }
}
