//! The decision log's schema: the SQL files of `migrations/decision_log`, applied in order at
//! start (each once, recorded in `decision_log_migrations`), under an advisory lock so that
//! replicas starting together do not race.

use tokio_postgres::Client;

/// `(version, name, SQL)`, in order. A released file is never edited: a change is a new file.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "decision_log",
        include_str!("../../migrations/decision_log/0001_decision_log.sql"),
    ),
    (
        2,
        "masked_facts",
        include_str!("../../migrations/decision_log/0002_masked_facts.sql"),
    ),
];

/// Any number, the same on every replica: the advisory lock of the migrations.
const LOCK: i64 = 0x7072_6f74_6f63_6f6c; // "protocol"

/// Applies the migrations not applied yet; idempotent.
pub async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS decision_log_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM decision_log_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO decision_log_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        tracing::info!(version, name, "decision log: migration applied");
    }
    tx.commit().await
}
