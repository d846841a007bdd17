//! The decision log's schema: the SQL files of `migrations/decision_log` (`V<n>__<name>.sql`,
//! refinery's convention), embedded in the binary and applied in order at start by refinery,
//! each once, recorded with its checksum in `decision_log_schema_history`. A released file is
//! never edited (refinery refuses a database whose applied migration no longer matches its
//! file): a change is a new file.
//!
//! refinery takes no lock of its own, so the run holds a PostgreSQL advisory lock on its
//! connection: replicas starting together apply each migration once, the others wait and then
//! find nothing to do.

use tokio_postgres::Client;

mod embedded {
    refinery::embed_migrations!("migrations/decision_log");
}

/// The table refinery records applied migrations in.
pub const HISTORY_TABLE: &str = "decision_log_schema_history";

/// Any number, the same on every replica: the advisory lock of the migrations.
const LOCK: i64 = 0x7072_6f74_6f63_6f6c; // "protocol"

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migration: {0}")]
    Refinery(#[from] refinery::Error),
}

/// Applies the migrations not applied yet; idempotent.
pub async fn migrate(client: &mut Client) -> Result<(), MigrateError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await?;
    let report = embedded::migrations::runner()
        .set_migration_table_name(HISTORY_TABLE)
        .run_async(client)
        .await;
    // Released on every path (and with the session, should the connection drop).
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await;
    let report = report?;
    unlocked?;
    for m in report.applied_migrations() {
        tracing::info!(
            version = m.version(),
            name = m.name(),
            "decision log: migration applied"
        );
    }
    Ok(())
}
