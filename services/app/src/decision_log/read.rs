//! Reading one logged decision back (`GET /v1/decisions/{decision_id}`, gRPC `GetDecision`),
//! on a connection of its own, opened on first use and again after a failure: audit reads are
//! rare and must not queue behind the writer's batches.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{Client, Config, NoTls, Row};

/// Why the log cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the decision log is off on this server: set PROTOCOL_DECISION_LOG_URL to keep one")]
    Off,
    #[error("the decision log's PostgreSQL is unreachable: {0}")]
    Unreachable(String),
}

/// One logged decision, as stored (docs/operate.md, "Decision log").
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoggedDecision {
    /// The decision's id: the `decision_id` of an eligibility answer.
    #[schema(format = "uuid")]
    pub decision_id: String,
    /// When it was decided (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub decided_at: String,
    /// The clinic of the key that asked.
    pub clinic: Option<String>,
    /// The name of the key that asked.
    pub key_id: Option<String>,
    /// `eligibility`, `contraindications`, `depth_limits` or `plan`.
    pub operation: String,
    /// The rule set that answered.
    pub ruleset_id: String,
    pub ruleset_version: String,
    pub ruleset_digest: String,
    pub treatment: String,
    /// The outcome (`eligible`, `deferred`, ...).
    pub decision: String,
    /// The request as asked, but for the facts the server masks
    /// (`PROTOCOL_DECISION_LOG_MASK`): each left out (`drop`) or replaced by `hmac-sha256:<hex>`
    /// (`hash`).
    #[schema(value_type = Object)]
    pub request: Value,
    /// The answer as given.
    #[schema(value_type = Object)]
    pub answer: Value,
    /// The facts of this request that were masked, and how (`drop` or `hash`): a replay treats
    /// them as unanswered.
    pub masked_facts: BTreeMap<String, String>,
}

pub struct Reader {
    config: Config,
    client: Mutex<Option<Client>>,
}

/// The columns of a [`LoggedDecision`], in its order.
const COLUMNS: &str = "decision_id::text,
        to_char(decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
        clinic, key_id, operation, ruleset_id, ruleset_version, ruleset_digest, treatment,
        decision, request::text, answer::text, masked_facts::text";

/// One decision by id, of one clinic.
fn select_one() -> String {
    format!(
        "SELECT {COLUMNS} FROM decision_log
         WHERE decision_id = $1::text::uuid AND clinic IS NOT DISTINCT FROM $2::text"
    )
}

/// The latest `$3` decisions of each clinic answered by rule set `$1` (of clinic `$2` only,
/// when given), newest first per clinic. Served by the index of migration V3.
fn select_recent() -> String {
    format!(
        "SELECT {COLUMNS} FROM (
            SELECT *, row_number() OVER (PARTITION BY clinic ORDER BY decided_at DESC) AS nth
              FROM decision_log
             WHERE ruleset_id = $1::text AND ($2::text IS NULL OR clinic = $2::text)
         ) latest
         WHERE nth <= $3::bigint
         ORDER BY clinic NULLS FIRST, decided_at DESC"
    )
}

impl Reader {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            client: Mutex::new(None),
        }
    }

    /// The decision `id` of `clinic` (`None`: the open server's), if logged.
    pub async fn find(
        &self,
        id: uuid::Uuid,
        clinic: Option<&str>,
    ) -> Result<Option<LoggedDecision>, ReadError> {
        let rows = self
            .query(&select_one(), &[&id.to_string(), &clinic])
            .await?;
        Ok(rows.first().map(decision))
    }

    /// The latest `per_clinic` decisions of each clinic that rule set `ruleset` answered (only
    /// `clinic`'s when given): the traffic a change of that rule set is previewed on.
    pub async fn recent(
        &self,
        ruleset: &str,
        clinic: Option<&str>,
        per_clinic: u32,
    ) -> Result<Vec<LoggedDecision>, ReadError> {
        let rows = self
            .query(
                &select_recent(),
                &[&ruleset, &clinic, &i64::from(per_clinic)],
            )
            .await?;
        Ok(rows.iter().map(decision).collect())
    }

    /// Runs a read on the reader's connection, opening it first if needed; a failed query
    /// drops the connection so the next read opens a new one.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, ReadError> {
        let unreachable = |e: tokio_postgres::Error| ReadError::Unreachable(e.to_string());
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            let (client, connection) = self.config.connect(NoTls).await.map_err(unreachable)?;
            tokio::spawn(connection);
            *guard = Some(client);
        }
        let Some(client) = guard.as_ref() else {
            return Err(ReadError::Unreachable("no connection".into()));
        };
        match client.query(sql, params).await {
            Ok(rows) => Ok(rows),
            Err(e) => {
                *guard = None;
                Err(unreachable(e))
            }
        }
    }
}

/// A row of [`COLUMNS`] as a logged decision.
fn decision(r: &Row) -> LoggedDecision {
    let json = |i: usize| serde_json::from_str(r.get::<_, &str>(i)).unwrap_or(Value::Null);
    LoggedDecision {
        decision_id: r.get(0),
        decided_at: r.get(1),
        clinic: r.get(2),
        key_id: r.get(3),
        operation: r.get(4),
        ruleset_id: r.get(5),
        ruleset_version: r.get(6),
        ruleset_digest: r.get(7),
        treatment: r.get(8),
        decision: r.get(9),
        request: json(10),
        answer: json(11),
        masked_facts: serde_json::from_str(r.get::<_, &str>(12)).unwrap_or_default(),
    }
}
