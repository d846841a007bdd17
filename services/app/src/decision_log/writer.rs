//! The writer task: connects (and reconnects), applies the migrations, and inserts the queued
//! decisions in batches, one statement per batch. A batch that fails is kept and retried after
//! reconnecting, so what was taken off the queue is not lost to a PostgreSQL restart; meanwhile
//! the queue fills and what does not fit is dropped and counted ([`super::DecisionLog::record`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_postgres::{Client, Config, NoTls};

use super::{Entry, Stats, schema};

pub struct Options {
    /// Most decisions per insert.
    pub batch: usize,
    /// Rows older than this are deleted (hourly); `None` keeps them.
    pub retention_days: Option<u32>,
}

/// Longest pause between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the count of dropped decisions is logged, when it grew.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// The longest a connection, a migration or one batch's write may take: a stalled PostgreSQL
/// (it accepts, then never answers) is then down, in `/readyz` and the metric, not up forever
/// while every decision queues (issue 26). A batch written again after a timeout is written
/// once (`ON CONFLICT DO NOTHING` on the decision id).
const STALL: Duration = Duration::from_secs(10);
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

const INSERT: &str = "INSERT INTO decision_log (decision_id, decided_at, clinic, key_id, operation,
        ruleset_id, ruleset_version, ruleset_digest, treatment, decision, request, answer,
        masked_facts)
    SELECT d::uuid, t::timestamptz, c, k, o, ri, rv, rd, tr, de, rq::jsonb, an::jsonb, m::jsonb
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                $13::text[])
        AS u(d, t, c, k, o, ri, rv, rd, tr, de, rq, an, m)
    ON CONFLICT (decision_id) DO NOTHING";

/// Runs until every sender is gone and the queue is empty.
pub async fn run(config: Config, mut rx: mpsc::Receiver<Entry>, stats: Arc<Stats>, opt: Options) {
    let mut held: Vec<Entry> = Vec::with_capacity(opt.batch);
    let mut backoff = Duration::from_millis(100);
    let mut reported = 0u64;
    let mut last_report = Instant::now();
    let mut last_retention: Option<Instant> = None;
    loop {
        let connected = within(connect(&config), "connecting").await;
        let mut client = match connected {
            Ok(c) => c,
            Err(e) => {
                stats.up.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, "decision log: PostgreSQL unreachable, retrying");
                report(&stats, &mut reported, &mut last_report);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let migrated = within(schema::migrate(&mut client), "migrating").await;
        if let Err(e) = migrated {
            stats.up.store(false, Ordering::Relaxed);
            tracing::warn!(error = %e, "decision log: migration failed, retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        stats.up.store(true, Ordering::Relaxed);
        backoff = Duration::from_millis(100);
        if !held.is_empty() {
            tracing::info!(
                held = held.len(),
                "decision log: PostgreSQL back, writing what was held"
            );
        }
        loop {
            report(&stats, &mut reported, &mut last_report);
            if let Some(days) = opt.retention_days
                && last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY)
            {
                last_retention = Some(Instant::now());
                match client
                    .execute(
                        "DELETE FROM decision_log WHERE decided_at < now() - make_interval(days => $1)",
                        &[&(days as i32)],
                    )
                    .await
                {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, days, "decision log: retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "decision log: retention failed"),
                }
            }
            if held.is_empty() {
                // Wake up now and then to report drops and apply the retention.
                match tokio::time::timeout(REPORT_EVERY, rx.recv_many(&mut held, opt.batch)).await {
                    Ok(0) => return,
                    Ok(n) => stats.writing.store(n as u64, Ordering::Relaxed),
                    Err(_) => continue,
                }
            }
            let written = within(insert(&client, &held), "writing").await;
            match written {
                Ok(()) => {
                    stats
                        .written
                        .fetch_add(held.len() as u64, Ordering::Relaxed);
                    held.clear();
                    stats.writing.store(0, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.up.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, held = held.len(), "decision log: write failed, reconnecting");
                    break;
                }
            }
        }
    }
}

/// `step`'s result within [`STALL`], its error as text (a timeout says what stalled).
async fn within<T, E: std::fmt::Display>(
    step: impl std::future::Future<Output = Result<T, E>>,
    what: &str,
) -> Result<T, String> {
    match tokio::time::timeout(STALL, step).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "PostgreSQL did not answer within {} s while {what}",
            STALL.as_secs()
        )),
    }
}

async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "decision log: connection closed");
        }
    });
    Ok(client)
}

async fn insert(client: &Client, batch: &[Entry]) -> Result<(), tokio_postgres::Error> {
    let col = |f: fn(&Entry) -> String| batch.iter().map(f).collect::<Vec<String>>();
    let opt = |f: fn(&Entry) -> Option<String>| batch.iter().map(f).collect::<Vec<_>>();
    client
        .execute(
            INSERT,
            &[
                &col(|e| e.decision_id.clone()),
                &col(|e| e.decided_at.clone()),
                &opt(|e| e.clinic.clone()),
                &opt(|e| e.key_id.clone()),
                &col(|e| e.operation.to_owned()),
                &col(|e| e.ruleset_id.clone()),
                &col(|e| e.ruleset_version.clone()),
                &col(|e| e.ruleset_digest.clone()),
                &col(|e| e.treatment.clone()),
                &col(|e| e.decision.to_owned()),
                &col(|e| e.request.to_string()),
                &col(|e| e.answer.to_string()),
                &col(|e| masked_json(&e.masked_facts)),
            ],
        )
        .await
        .map(drop)
}

/// `{"pregnant": "drop", "date_of_birth": "hash"}`.
fn masked_json(masked: &super::Masked) -> String {
    let map: serde_json::Map<String, serde_json::Value> = masked
        .iter()
        .map(|(k, how)| (k.clone(), how.as_str().into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Logs the count of dropped decisions when it grew since the last report.
fn report(stats: &Stats, reported: &mut u64, last: &mut Instant) {
    let dropped = stats.dropped.load(Ordering::Relaxed);
    if dropped > *reported && last.elapsed() >= REPORT_EVERY {
        tracing::warn!(
            dropped,
            since_last = dropped - *reported,
            "decision log: decisions answered but not logged (queue full)"
        );
        *reported = dropped;
        *last = Instant::now();
    }
}
