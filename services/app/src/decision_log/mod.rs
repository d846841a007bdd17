//! The decision log (opt-in with `PROTOCOL_DECISION_LOG_URL`): every decision, with who asked,
//! the rule set that answered, the request (the facts named in `PROTOCOL_DECISION_LOG_MASK`
//! dropped or hashed, [`mask`]) and the answer, written to PostgreSQL for a clinic's audit trail.
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

mod mask;
mod read;
mod schema;
mod writer;

pub use mask::{HASH_PREFIX, MaskHow, MaskRule, Masked, Masking};
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
    /// The request as asked; [`DecisionLog::record`] masks it before it is queued.
    pub request: Value,
    pub answer: Value,
    /// The facts of `request` masked, and how (set by [`DecisionLog::record`]).
    pub masked_facts: Masked,
}

/// The handle the door holds; cheap to clone.
#[derive(Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<Entry>,
    when_full: DecisionLogWhenFull,
    wait: Duration,
    pub(crate) stats: Arc<Stats>,
    reader: Arc<read::Reader>,
    masking: Arc<Masking>,
    /// How many of each clinic's latest decisions a dry run re-decides.
    pub impact_sample: u32,
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
    ///
    /// `known_facts`: every fact the rule sets served at start declare; the masking setting may
    /// name only those (checked even without a URL, so a typo is found before the log is on).
    pub fn start<'a>(
        settings: &Settings,
        known_facts: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<Option<Self>> {
        let masking = masking(settings, known_facts)?;
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
            masking: Arc::new(masking),
            impact_sample: settings.decision_log_impact_sample,
        }))
    }

    /// A log whose entries go to the returned receiver instead of PostgreSQL: for tests of what
    /// would be stored.
    #[cfg(test)]
    pub(crate) fn capture(masking: Masking) -> (Self, mpsc::Receiver<Entry>) {
        let (tx, rx) = mpsc::channel(100_000);
        let config: tokio_postgres::Config = "host=localhost".parse().expect("valid");
        let log = Self {
            tx,
            when_full: DecisionLogWhenFull::Drop,
            wait: Duration::ZERO,
            stats: Arc::default(),
            reader: Arc::new(read::Reader::new(config)),
            masking: Arc::new(masking),
            impact_sample: 0,
        };
        (log, rx)
    }

    /// Masks the named facts of one decision and queues it; never fails the request. With the
    /// `wait` policy and a full queue, the calling worker thread waits (at most the configured
    /// time) for room.
    pub fn record(&self, mut entry: Entry) {
        // Applied with no mask configured too: a QuestionnaireResponse is always cut to its
        // answers (its subject, author, contained resources and narrative are never kept).
        let (request, masked) = self.masking.apply(std::mem::take(&mut entry.request));
        entry.request = request;
        entry.masked_facts = masked;
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

    /// The latest [`Self::impact_sample`] decisions of each clinic rule set `ruleset` answered
    /// (only `clinic`'s when given).
    pub async fn recent(
        &self,
        ruleset: &str,
        clinic: Option<&str>,
    ) -> Result<Vec<LoggedDecision>, ReadError> {
        self.reader
            .recent(ruleset, clinic, self.impact_sample)
            .await
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

/// The masking the settings ask for, checked against the facts the rule sets declare.
fn masking<'a>(
    settings: &Settings,
    known_facts: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<Masking> {
    let key = match (
        &settings.decision_log_mask_key,
        &settings.decision_log_mask_key_file,
    ) {
        (Some(_), Some(_)) => anyhow::bail!(
            "set either PROTOCOL_DECISION_LOG_MASK_KEY or PROTOCOL_DECISION_LOG_MASK_KEY_FILE, not both"
        ),
        (Some(k), None) => Some(k.as_bytes().to_vec()),
        (None, Some(path)) => {
            let mut key = std::fs::read(path).with_context(|| {
                format!(
                    "PROTOCOL_DECISION_LOG_MASK_KEY_FILE: reading {}",
                    path.display()
                )
            })?;
            if key.ends_with(b"\n") {
                key.pop();
                if key.ends_with(b"\r") {
                    key.pop();
                }
            }
            Some(key)
        }
        (None, None) => None,
    };
    Masking::new(&settings.decision_log_mask, key, known_facts).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod without_a_mask {
    use serde_json::json;

    use super::*;

    /// Issue 26: with no mask configured (the default) the whole QuestionnaireResponse was
    /// stored, subject and narrative included.
    #[tokio::test]
    async fn a_questionnaire_response_is_cut_to_its_answers_with_no_mask_configured() {
        let masking = Masking::new(&[], None, ["pregnant"]).expect("no rules");
        let (log, mut rx) = DecisionLog::capture(masking);
        log.record(Entry {
            decision_id: "d".into(),
            decided_at: "2026-12-01T00:00:00Z".into(),
            clinic: None,
            key_id: None,
            operation: "eligibility",
            ruleset_id: "base".into(),
            ruleset_version: "v".into(),
            ruleset_digest: "sha256:x".into(),
            treatment: "microneedling".into(),
            decision: "incomplete",
            request: json!({"questionnaire_response": {
                "resourceType": "QuestionnaireResponse", "status": "completed",
                "subject": {"reference": "Patient/jane-doe"}, "author": {"display": "Jane Doe"},
                "text": {"div": "<div>Jane Doe's answers</div>"},
                "item": [{"linkId": "pregnant", "answer": [{"valueBoolean": false}]}]}}),
            answer: json!({}),
            masked_facts: Masked::new(),
        });
        let stored = rx.recv().await.expect("queued");
        let text = stored.request.to_string();
        assert!(
            !text.contains("Jane Doe") && !text.contains("jane-doe"),
            "{text}"
        );
        assert_eq!(
            stored.request["questionnaire_response"]["item"][0]["linkId"],
            "pregnant"
        );
    }
}
