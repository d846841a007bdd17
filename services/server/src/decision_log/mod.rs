//! The decision log (opt-in with `PROTOCOL_DECISION_LOG_URL`): every decision, with who asked,
//! the rule set that answered, the request (fact values masked) and the answer, written to
//! PostgreSQL for a clinic's audit trail.
//!
//! The request path never waits on PostgreSQL: the door's [`crate::app::Recorder`] puts each
//! decision on a bounded queue ([`DecisionLog::record`]) and the [`writer`] task inserts them in
//! batches. When the queue is full (PostgreSQL slow or down), the `drop` policy drops the
//! decision at once and the `wait` policy waits up to `PROTOCOL_DECISION_LOG_WAIT_MS` for room
//! first; either way a decision that does not fit is still answered and counted in
//! [`DecisionLog::dropped`] (`/readyz`, the `protocol.decision_log.dropped` metric, a warning in
//! the log). The batch the writer holds when PostgreSQL goes away is kept and written when it
//! is back. At shutdown the server waits a few seconds for the queue to be written
//! ([`DecisionLog::flush`]).

mod read;
mod schema;
mod writer;

pub use read::{LoggedDecision, ReadError};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::{DecisionLogWhenFull, Settings};

/// One decision, as stored (`decision_log` table, one column each).
#[derive(Debug, Clone)]
pub struct Entry {
    pub decision_id: String,
    /// RFC 3339.
    pub decided_at: String,
    pub clinic: Option<String>,
    pub key_id: Option<String>,
    pub operation: &'static str,
    pub ruleset_id: String,
    pub ruleset_version: String,
    pub ruleset_digest: String,
    pub treatment: String,
    pub decision: &'static str,
    /// The request with every fact value masked ([`mask_facts`]).
    pub request: Value,
    pub answer: Value,
}

/// The handle the door holds; cheap to clone.
#[derive(Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<Entry>,
    when_full: DecisionLogWhenFull,
    wait: Duration,
    pub(crate) stats: Arc<Stats>,
    reader: Arc<read::Reader>,
}

/// What the log reports (`/readyz`, metrics).
#[derive(Debug, Default)]
pub struct Stats {
    /// Decisions not logged (queue full).
    pub dropped: AtomicU64,
    /// Decisions written.
    pub written: AtomicU64,
    /// The last write or connection attempt succeeded.
    pub up: AtomicBool,
    /// Decisions taken off the queue and not written yet (the writer's batch).
    pub writing: AtomicU64,
}

impl DecisionLog {
    /// Checks the settings and starts the writer (which connects, migrates and retries on its
    /// own: PostgreSQL being down at start delays no request). `None` without a URL.
    pub fn start(settings: &Settings) -> anyhow::Result<Option<Self>> {
        let Some(url) = settings.decision_log_url.as_deref() else {
            return Ok(None);
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .context("PROTOCOL_DECISION_LOG_URL: not a PostgreSQL connection string")?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if settings.decision_log_queue == 0 || settings.decision_log_batch == 0 {
            anyhow::bail!(
                "PROTOCOL_DECISION_LOG_QUEUE and PROTOCOL_DECISION_LOG_BATCH must be at least 1"
            );
        }
        let (tx, rx) = mpsc::channel(settings.decision_log_queue);
        let stats = Arc::new(Stats::default());
        let reader = Arc::new(read::Reader::new(config.clone()));
        tokio::spawn(writer::run(
            config,
            rx,
            stats.clone(),
            writer::Options {
                batch: settings.decision_log_batch,
                retention_days: settings.decision_log_retention_days,
            },
        ));
        Ok(Some(Self {
            tx,
            when_full: settings.decision_log_when_full,
            wait: Duration::from_millis(settings.decision_log_wait_ms),
            stats,
            reader,
        }))
    }

    /// Queues one decision; never fails the request. With the `wait` policy and a full queue,
    /// the calling worker thread waits (at most the configured time) for room.
    pub fn record(&self, entry: Entry) {
        let entry = match self.tx.try_send(entry) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Closed(_)) => return self.drop_one(),
            Err(mpsc::error::TrySendError::Full(entry)) => entry,
        };
        if self.when_full == DecisionLogWhenFull::Wait && !self.wait.is_zero() {
            // The request path is synchronous code on a worker of the multi-threaded runtime:
            // block this worker (the runtime moves its other tasks elsewhere) until there is
            // room or the wait is over.
            if let Ok(handle) = tokio::runtime::Handle::try_current()
                && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            {
                let sent = tokio::task::block_in_place(|| {
                    handle
                        .block_on(self.tx.send_timeout(entry, self.wait))
                        .is_ok()
                });
                if sent {
                    return;
                }
            }
        }
        self.drop_one();
    }

    fn drop_one(&self) {
        let before = self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        // The writer reports the count; the first drop is said at once.
        if before == 0 {
            tracing::warn!(
                "decision log: queue full, decisions are answered but not logged (counted in protocol.decision_log.dropped)"
            );
        }
    }

    /// The logged decision `id` of `clinic` (`None`: the open server's), if any.
    pub async fn find(
        &self,
        id: uuid::Uuid,
        clinic: Option<&str>,
    ) -> Result<Option<LoggedDecision>, ReadError> {
        self.reader.find(id, clinic).await
    }

    /// Waits (at most `limit`) until every queued decision is written: at shutdown, so the
    /// decisions answered last are not lost with the process. Gives up early, saying how many
    /// remain, when PostgreSQL is down.
    pub async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let pending = || self.queued() as u64 + self.stats.writing.load(Ordering::Relaxed);
        while pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = pending();
        if left > 0 {
            tracing::warn!(
                left,
                "decision log: shutting down with decisions not written"
            );
        }
    }

    /// Decisions not logged since start.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Decisions written since start.
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Whether the last attempt to reach PostgreSQL succeeded.
    pub fn is_up(&self) -> bool {
        self.stats.up.load(Ordering::Relaxed)
    }

    /// Decisions waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// The request as logged: every `facts` object (at any depth) keeps its keys, the names of the
/// facts given, and each value becomes `"masked"`. Fact values are health data and never leave
/// the process; a hash would not hide them either (a yes/no or a small number is found by
/// hashing every possible value).
pub fn mask_facts(mut request: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if k == "facts"
                        && let Value::Object(facts) = child
                    {
                        for value in facts.values_mut() {
                            *value = Value::String("masked".into());
                        }
                    } else if k == "questionnaire_response" {
                        *child = mask_response(child);
                    } else {
                        walk(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut request);
    request
}

/// A QuestionnaireResponse as logged: only which questions were answered (each item's
/// `linkId`, its answers `"masked"`). Everything else goes: the answers are health data, and a
/// response may carry the patient's identity (`subject`, `author`, `contained`, narrative text).
fn mask_response(response: &Value) -> Value {
    let items: Vec<Value> = response
        .get("item")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let mut kept = serde_json::Map::new();
                    if let Some(id) = item.get("linkId") {
                        kept.insert("linkId".into(), id.clone());
                    }
                    if let Some(answers) = item.get("answer").and_then(Value::as_array) {
                        kept.insert(
                            "answer".into(),
                            Value::Array(vec![Value::String("masked".into()); answers.len()]),
                        );
                    }
                    Value::Object(kept)
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({"item": items})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_questionnaire_response_keeps_only_its_link_ids() {
        let masked = mask_facts(json!({
            "treatment": "microneedling",
            "questionnaire_response": {
                "resourceType": "QuestionnaireResponse",
                "status": "completed",
                "subject": {"reference": "Patient/123", "display": "Jane Doe"},
                "item": [
                    {"linkId": "pregnant", "text": "Pregnant?", "answer": [{"valueBoolean": true}]},
                    {"linkId": "fitzpatrick", "answer": [{"valueInteger": 4}]},
                ],
            },
        }));
        assert_eq!(
            masked,
            json!({
                "treatment": "microneedling",
                "questionnaire_response": {"item": [
                    {"linkId": "pregnant", "answer": ["masked"]},
                    {"linkId": "fitzpatrick", "answer": ["masked"]},
                ]},
            })
        );
    }

    #[test]
    fn fact_values_are_masked_at_any_depth() {
        let masked = mask_facts(json!({
            "treatment": "botox",
            "facts": {"pregnant": true, "age": 47},
            "checks": [{"facts": {"on_isotretinoin": false}}],
            "history": [{"procedure": "peel", "date": "2026-01-01"}],
        }));
        assert_eq!(
            masked,
            json!({
                "treatment": "botox",
                "facts": {"pregnant": "masked", "age": "masked"},
                "checks": [{"facts": {"on_isotretinoin": "masked"}}],
                "history": [{"procedure": "peel", "date": "2026-01-01"}],
            })
        );
    }
}
