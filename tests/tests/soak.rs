//! The soak: two replicas on one Redis with the decision log on a real PostgreSQL, under mixed
//! traffic for `SOAK_SECS` (20 in the suite; `scripts/soak` runs 1,800 on the release binary):
//! REST and gRPC eligibility checks of two clinics, a device watching its depth limits (gRPC),
//! a booking system on rule-set events (SSE), and a rule author publishing and activating a
//! tighter Aurora version every few seconds. A third of the way in Redis is lost (restarted
//! empty: the replicas put back what they verified); two thirds in PostgreSQL stops for 5 s.
//!
//! It holds: every decision is answered (no error of any kind), no decision is lost (every one
//! answered is a row of the log, or counted as dropped by the replica that made it), both
//! replicas serve the last activated version at the end. It reports, per interval, the replicas'
//! resident memory and the p99 of each kind of call, and the errors by kind (`SOAK_REPORT=<file>`
//! writes the report as Markdown).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol_tests::fixtures::bearer;
use protocol_tests::postgres_server::PostgresServer;
use protocol_tests::{KEY_AURORA, KEY_BASE, Server, pb, sse};

use crate::with_redis::common::*;

/// What the traffic saw, shared by its tasks.
#[derive(Default)]
struct Tally {
    /// (kind, elapsed since start, latency) of every answered call.
    calls: Vec<(&'static str, Duration, Duration)>,
    /// kind: what went wrong → how often.
    errors: BTreeMap<String, usize>,
    /// Decisions answered (each one a row of the log, or a counted drop).
    decisions: usize,
    /// Watch updates and SSE events received.
    pushed: usize,
    activations: usize,
}

type Shared = Arc<Mutex<Tally>>;

fn note(tally: &Shared, f: impl FnOnce(&mut Tally)) {
    if let Ok(mut t) = tally.lock() {
        f(&mut t);
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn p99(mut v: Vec<Duration>) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    Some(v[(v.len() * 99).div_ceil(100).saturating_sub(1)])
}

fn soak_secs() -> u64 {
    std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// REST eligibility checks, alternating clinics and replicas, until `stop`.
async fn rest_traffic(urls: [String; 2], tally: Shared, start: Instant, stop: Arc<AtomicBool>) {
    let client = http();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let key = if i.is_multiple_of(2) {
            KEY_AURORA
        } else {
            KEY_BASE
        };
        let t = Instant::now();
        let res = client
            .post(&urls[i % 2])
            .bearer_auth(key)
            .json(&eligibility_request())
            .send()
            .await;
        match res {
            Ok(r) if r.status() == 200 => note(&tally, |x| {
                x.calls.push(("rest", start.elapsed(), t.elapsed()));
                x.decisions += 1;
            }),
            Ok(r) => note(&tally, |x| {
                *x.errors.entry(format!("rest {}", r.status())).or_default() += 1;
            }),
            Err(e) => note(&tally, |x| {
                *x.errors.entry(format!("rest: {e}")).or_default() += 1;
            }),
        }
        i += 1;
    }
}

/// gRPC eligibility checks on one replica, until `stop`.
async fn grpc_traffic(server: &Server, tally: Shared, start: Instant, stop: Arc<AtomicBool>) {
    let mut client = server.grpc().await.expect("grpc client");
    let request = protocol_tests::json_pb::eligibility_pb(&eligibility_request());
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        match client
            .check_eligibility(bearer(request.clone(), KEY_AURORA))
            .await
        {
            Ok(_) => note(&tally, |x| {
                x.calls.push(("grpc", start.elapsed(), t.elapsed()));
                x.decisions += 1;
            }),
            Err(st) => note(&tally, |x| {
                *x.errors.entry(format!("grpc {:?}", st.code())).or_default() += 1;
            }),
        }
    }
}

/// A device watching its limits (reconnecting as devices do), until `stop`.
async fn watch_traffic(server: &Server, tally: Shared, stop: Arc<AtomicBool>) {
    let mut client = server.grpc().await.expect("grpc client");
    while !stop.load(Ordering::Relaxed) {
        let request = pb::WatchDepthLimitsRequest {
            treatment: "microneedling".into(),
            device: "dermapen_4".into(),
            role: "physician".into(),
            zone: Some("cheeks".into()),
            ..Default::default()
        };
        let Ok(stream) = client.watch_depth_limits(bearer(request, KEY_AURORA)).await else {
            note(&tally, |x| {
                *x.errors.entry("watch open".into()).or_default() += 1
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut stream = stream.into_inner();
        while !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(Duration::from_millis(500), stream.message()).await {
                Ok(Ok(Some(_))) => note(&tally, |x| x.pushed += 1),
                Ok(_) => break,
                Err(_) => {}
            }
        }
    }
}

/// A booking system on rule-set events, until `stop`.
async fn sse_traffic(server: &Server, tally: Shared, stop: Arc<AtomicBool>) {
    let client = sse::client();
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut events) =
            sse::open(&client, &server.url("/v1/rulesets:watch"), KEY_AURORA, None).await
        else {
            note(&tally, |x| {
                *x.errors.entry("sse open".into()).or_default() += 1
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(Duration::from_millis(500), events.next_raw()).await {
                Ok(Ok(Some(_))) => note(&tally, |x| x.pushed += 1),
                Ok(_) => break,
                Err(_) => {}
            }
        }
    }
}

/// The rule author: a tighter Aurora cheeks cap every 3 s; a refused move (Redis down) is tried
/// again with the next one. Returns the last version activated.
async fn author(server: &Server, tally: Shared, stop: Arc<AtomicBool>) -> String {
    let mut active = BUNDLED_VERSION.to_owned();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        n += 1;
        // 1.09, 1.08, ... 0.10 mm: never looser, so no approval is needed.
        let version = format!("2026.12.{}", 100 + n);
        let mm = (110 - n.min(100)) as f64 / 100.0;
        let (status, _) = publish(server, KEY_AURORA, &aurora(&version, mm)).await;
        if status != 201 && status != 200 {
            note(&tally, |x| {
                *x.errors
                    .entry(format!("admin publish {status}"))
                    .or_default() += 1
            });
            continue;
        }
        let (status, body) = activate(server, "clinic-aurora", &version, &active).await;
        if status == 200 {
            active = version;
            note(&tally, |x| x.activations += 1);
        } else {
            let reason = body["reason"].as_str().unwrap_or_default().to_owned();
            note(&tally, |x| {
                *x.errors
                    .entry(format!("admin activate {status} {reason}"))
                    .or_default() += 1;
            });
        }
    }
    active
}

/// Rows of the decision log.
fn rows(pg: &PostgresServer) -> usize {
    pg.psql("SELECT count(*) FROM decision_log")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_traffic_through_a_redis_loss_and_a_postgres_stop() {
    let _serial = serial().await;
    let secs = soak_secs();
    let pg = PostgresServer::start().expect("postgres");
    let mut fleet = Fleet::start_with(|b| b.env("PROTOCOL_DECISION_LOG_URL", &pg.url()));
    let tally: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();

    let rest = tokio::spawn(rest_traffic(
        [
            fleet.a.url("/v1/eligibility"),
            fleet.b.url("/v1/eligibility"),
        ],
        tally.clone(),
        start,
        stop.clone(),
    ));
    let (a, b) = (&fleet.a, &fleet.b);
    let traffic = async {
        tokio::join!(
            grpc_traffic(b, tally.clone(), start, stop.clone()),
            watch_traffic(a, tally.clone(), stop.clone()),
            sse_traffic(b, tally.clone(), stop.clone()),
            author(a, tally.clone(), stop.clone()),
        )
    };
    let (pids, interval) = ([a.pid(), b.pid()], Duration::from_secs((secs / 20).max(1)));
    let mut samples: Vec<(u64, u64, u64)> = Vec::new(); // (second, RSS A, RSS B), KiB
    let redis = &mut fleet.redis;
    let faults = async {
        let mut redis_lost = false;
        // When PostgreSQL was stopped, until it is resumed 5 s later.
        let mut pg_stopped: Option<Duration> = None;
        let mut pg_resumed = false;
        while start.elapsed() < Duration::from_secs(secs) {
            tokio::time::sleep(interval).await;
            let t = start.elapsed();
            samples.push((t.as_secs(), rss_kib(pids[0]), rss_kib(pids[1])));
            if !redis_lost && t >= Duration::from_secs(secs / 3) {
                redis.restart().expect("redis restarts, empty");
                redis_lost = true;
            }
            if pg_stopped.is_none() && t >= Duration::from_secs(2 * secs / 3) {
                pg.signal_all("-STOP");
                pg_stopped = Some(t);
            }
            if let Some(at) = pg_stopped
                && !pg_resumed
                && t >= at + Duration::from_secs(5)
            {
                pg.signal_all("-CONT");
                pg_resumed = true;
            }
        }
        if !pg_resumed {
            pg.signal_all("-CONT");
        }
        stop.store(true, Ordering::Relaxed);
    };
    let ((_, _, _, last), ()) = tokio::join!(traffic, faults);
    rest.await.expect("rest traffic");

    // Every decision is a row or a counted drop, once both logs have written what they hold.
    let settled = within(Duration::from_secs(60), || async {
        let (_, ra) = readyz(a).await;
        let (_, rb) = readyz(b).await;
        ra["decision_log"]["queued"] == 0 && rb["decision_log"]["queued"] == 0
    })
    .await;
    assert!(settled.is_some(), "the decision logs drain");
    let dropped: u64 = [readyz(a).await.1, readyz(b).await.1]
        .iter()
        .map(|r| r["decision_log"]["dropped"].as_u64().unwrap_or(0))
        .sum();
    let tally = Arc::try_unwrap(tally)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .expect("every task ended");
    let written = rows(&pg);
    let lost = tally.decisions as i64 - written as i64 - dropped as i64;
    let report = report(secs, &tally, &samples, written, dropped, lost, &last);
    eprintln!("{report}");
    if let Ok(path) = std::env::var("SOAK_REPORT") {
        std::fs::write(&path, &report).expect("report written");
    }

    let decision_errors: usize = tally
        .errors
        .iter()
        .filter(|(k, _)| !k.starts_with("admin") && !k.ends_with("open"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        decision_errors, 0,
        "every decision is answered: {:?}",
        tally.errors
    );
    assert_eq!(lost, 0, "no decision is lost");
    assert!(tally.activations > 0, "the author activated versions");
    for replica in [a, b] {
        let served = within(Duration::from_secs(10), || async {
            cheeks(replica).await.1 == last
        })
        .await;
        assert!(
            served.is_some(),
            "both replicas serve the last activation {last}"
        );
    }
}

fn report(
    secs: u64,
    tally: &Tally,
    samples: &[(u64, u64, u64)],
    written: usize,
    dropped: u64,
    lost: i64,
    last: &str,
) -> String {
    let mut out = format!(
        "Soak of {secs} s: {} decisions answered ({} rows, {dropped} counted drops, {lost} lost), \
         {} activations (last {last}), {} pushed updates and events.\n\n\
         | s | RSS A (MiB) | RSS B (MiB) | REST p99 (ms) | gRPC p99 (ms) | calls |\n|---|---|---|---|---|---|\n",
        tally.decisions, written, tally.activations, tally.pushed
    );
    let mut from = 0;
    for (t, ra, rb) in samples {
        let window: Vec<_> = tally
            .calls
            .iter()
            .filter(|(_, at, _)| at.as_secs() >= from && at.as_secs() < *t)
            .collect();
        let of = |kind: &str| {
            p99(window
                .iter()
                .filter(|(k, _, _)| *k == kind)
                .map(|(_, _, l)| *l)
                .collect())
            .map_or("-".to_owned(), |d| {
                format!("{:.1}", d.as_secs_f64() * 1000.0)
            })
        };
        out.push_str(&format!(
            "| {t} | {} | {} | {} | {} | {} |\n",
            ra / 1024,
            rb / 1024,
            of("rest"),
            of("grpc"),
            window.len()
        ));
        from = *t;
    }
    out.push_str("\nErrors by kind: ");
    if tally.errors.is_empty() {
        out.push_str("none.\n");
    } else {
        let list: Vec<String> = tally
            .errors
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        out.push_str(&list.join("; "));
        out.push('\n');
    }
    out
}
