//! `WatchDepthLimits`: the current limits on subscribe, then new limits whenever the served rule
//! set changes (the `generation` counter that every catalog swap bumps) and the limits for this
//! request differ (a new rule-set version that leaves them unchanged sends nothing: heartbeats
//! carry the current version); a heartbeat on idle streams; on server shutdown, `UNAVAILABLE` (`SHUTTING_DOWN`, with
//! `RetryInfo`): retryable, so a device's watch loop reconnects (to another replica) rather than
//! taking a clean end for "no more limits".
//!
//! The subscription, heartbeats, shutdown and budgets are the door's ([`crate::app::watch`],
//! shared with `WatchRuleSets`): a latest-value design with no task and no queue per stream, the
//! limits computed from the catalog served when tonic polls the stream (only when the client's
//! HTTP/2 window has room), so a slow client holds at most one message.
//!
//! Resuming: `resume_etag` is the `etag` of the last message a client saw; when the limits'
//! etag is unchanged the stream starts with a heartbeat rather than a duplicate of the limits.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use protocol_engine::DepthLimitsRequest;
use tonic::Status;

use super::status::status;
use super::{convert, pb};
use crate::app::watch::{Board, Subscription, Wake};
use crate::app::{App, AppError};
use crate::auth::Caller;

/// The limits of each clinic and request for the current rule-set generation, computed once
/// (through the door) and shared by every stream asking the same: devices of one model at one
/// clinic ask the same question, and on an activation one answer serves them all. (So a
/// recomputation shared by many streams counts once in the decisions metric.)
pub type DepthBoard = Board<pb::GetDepthLimitsResponse>;

type Item = Result<pb::WatchDepthLimitsResponse, Status>;

/// The response stream of `WatchDepthLimits`.
pub type WatchStream = Pin<Box<dyn Stream<Item = Item> + Send + 'static>>;

/// The limits for a caller now, through the door (so from the catalog served now), with their
/// etag.
pub fn current(
    app: &App,
    caller: &Caller,
    req: &DepthLimitsRequest,
) -> Result<pb::GetDepthLimitsResponse, Status> {
    Ok(convert::depth_answer(
        &app.ask_active(caller, req).map_err(status)?,
        req,
    ))
}

/// The part of an answer a device acts on: the limits, not the rule-set reference.
fn same_limits(a: &pb::GetDepthLimitsResponse, b: &pb::GetDepthLimitsResponse) -> bool {
    a.zones == b.zones && a.client == b.client && a.indication == b.indication
}

fn limits(l: pb::GetDepthLimitsResponse) -> Item {
    Ok(pb::WatchDepthLimitsResponse {
        update: Some(pb::watch_depth_limits_response::Update::Limits(l)),
    })
}

fn heartbeat(last: &pb::GetDepthLimitsResponse) -> Item {
    Ok(pb::WatchDepthLimitsResponse {
        update: Some(pb::watch_depth_limits_response::Update::Heartbeat(
            pb::Heartbeat {
                ruleset: last.ruleset.clone(),
                etag: last.etag.clone(),
            },
        )),
    })
}

/// Everything one stream holds between polls.
struct Watch {
    app: App,
    caller: Arc<Caller>,
    req: DepthLimitsRequest,
    board: Arc<DepthBoard>,
    /// This stream's key on the board: its clinic and request.
    key: String,
    sub: Subscription,
    /// The limits last sent (with the rule set and etag now served, when those changed alone).
    last: Arc<pb::GetDepthLimitsResponse>,
    /// Sent on the next poll: the opening message.
    pending: Option<Item>,
    done: bool,
}

impl Watch {
    /// The limits now, shared with every stream of the same clinic and request.
    fn now(&self) -> Result<Arc<pb::GetDepthLimitsResponse>, Status> {
        self.board.get(self.sub.generation(), &self.key, || {
            current(&self.app, &self.caller, &self.req)
        })
    }

    async fn next(&mut self) -> Option<Item> {
        if self.done {
            return None;
        }
        if let Some(item) = self.pending.take() {
            return Some(item);
        }
        loop {
            match self.sub.wake().await {
                Wake::End => {
                    self.done = true;
                    return Some(Err(status(AppError::ShuttingDown)));
                }
                Wake::Heartbeat => return Some(heartbeat(&self.last)),
                Wake::Changed => match self.now() {
                    Ok(now) if !same_limits(&now, &self.last) => {
                        self.last = now;
                        self.sub.sent();
                        return Some(limits((*self.last).clone()));
                    }
                    // The same limits: the heartbeats name the rule set and etag now in force.
                    Ok(now) => self.last = now,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
            }
        }
    }
}

/// Starts a stream. An invalid request fails the call itself (INVALID_ARGUMENT), not the stream;
/// past the watch budgets RESOURCE_EXHAUSTED (`WATCH_STREAMS_EXHAUSTED`, with `RetryInfo`).
pub fn depth_limits(
    app: App,
    caller: Arc<Caller>,
    req: DepthLimitsRequest,
    resume_etag: Option<String>,
    board: Arc<DepthBoard>,
) -> Result<WatchStream, Status> {
    // Subscribe first, then read: a swap in between is seen as a change, never missed.
    let sub = app.subscribe(&caller).map_err(status)?;
    let key = format!(
        "{}\n{}",
        caller.tenant.as_deref().unwrap_or_default(),
        serde_json::to_string(&req).unwrap_or_default()
    );
    let mut state = Watch {
        app,
        caller,
        req,
        board,
        key,
        sub,
        last: Arc::new(pb::GetDepthLimitsResponse::default()),
        pending: None,
        done: false,
    };
    let first = state.now()?;
    // A device that kept a quoted etag (as this server sent before) resumes all the same.
    let resumed = resume_etag.as_deref().map(convert::plain_etag);
    state.pending = Some(if resumed == Some(first.etag.as_str()) {
        heartbeat(&first)
    } else {
        limits((*first).clone())
    });
    state.last = first;
    Ok(Box::pin(futures::stream::unfold(
        state,
        |mut w| async move { w.next().await.map(|item| (item, w)) },
    )))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use protocol_engine::{Format, parse_document};
    use tokio_stream::StreamExt;

    use super::*;
    use crate::auth::ApiKeys;
    use crate::catalog::{Catalog, Origin};
    use crate::context::Context;
    use crate::state::AppState;

    fn catalog(version: &str, cheeks_mm: &str) -> Catalog {
        let yaml = format!(
            r#"id: mini
version: "{version}"
sources:
  - {{id: ifu, title: IFU, url: "https://example.org/ifu", grade: IFU}}
facts:
  - {{id: pregnant, type: bool, question: Pregnant?}}
zones:
  - {{id: cheeks, name: Cheeks}}
procedures:
  - {{id: microneedling, name: Microneedling}}
indications:
  - {{id: acne_scars, name: Acne scars}}
settings:
  - {{id: clinic, name: Clinic}}
roles:
  - {{id: physician, name: Physician}}
treatments:
  - id: microneedling
    name: Microneedling
    description: Collagen induction.
    needle: true
    setting: clinic
    roles: [physician]
    best_for: [acne_scars]
    min_interval_days: {{value: 28, evidence: IFU, sources: [ifu]}}
    course:
      sessions: {{value: 3, evidence: IFU, sources: [ifu]}}
      max_sessions: {{value: 6, evidence: IFU, sources: [ifu]}}
      interval_days: {{value: 28, evidence: IFU, sources: [ifu]}}
    zones:
      - {{zone: cheeks, max_depth_mm: {{value: {cheeks_mm}, evidence: IFU, sources: [ifu]}}, start_depth_mm: 0.25}}
    aftercare:
      duration_days: {{value: 3, evidence: IFU, sources: [ifu]}}
      instructions: [{{text: SPF}}]
    results:
      - {{milestone: Glow, days: 7, after: first_session, evidence: IFU, sources: [ifu]}}
    downtime: 1-3 days
devices:
  - id: pen
    name: Pen
    treatments: [microneedling]
    max_depth_mm: {{value: 2.5, evidence: IFU, sources: [ifu]}}
contraindications:
  - {{id: pregnancy, when: {{fact: pregnant, eq: true}}, effect: contraindicate, severity: absolute, evidence: IFU, sources: [ifu], staff_message: s, client_message: c}}
"#
        );
        let doc = parse_document(&yaml, Format::Yaml).expect("test rule set parses");
        Catalog::from_documents(vec![doc], Origin::Directory).expect("test rule set compiles")
    }

    fn request() -> DepthLimitsRequest {
        DepthLimitsRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            treatment: "microneedling".into(),
            device: "pen".into(),
            role: "physician".into(),
            zone: None,
            indication: None,
            facts: None,
            questionnaire_response: None,
            date: None,
            history: None,
        }
    }

    fn cheeks(item: Option<Item>) -> (f64, String) {
        match item.map(|i| i.map(|u| u.update)) {
            Some(Ok(Some(pb::watch_depth_limits_response::Update::Limits(l)))) => (
                l.zones[0].max_depth_mm,
                l.ruleset.map(|r| r.version).unwrap_or_default(),
            ),
            other => panic!("expected limits, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn sends_new_limits_when_the_rule_set_changes_them() {
        let state = AppState::new(catalog("1", "1.5"));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let ctx = Context {
            state: state.clone(),
            keys: Arc::new(ApiKeys::open()),
            shutdown: stopped,
            heartbeat: Duration::from_secs(3600),
            max_staleness_secs: 300,
            stale_policy: crate::config::StalePolicy::Serve,
            store: None,
            decision_log: None,
        };
        let app = App::new(ctx);
        let mut stream = depth_limits(
            app.clone(),
            Arc::new(Caller::open()),
            request(),
            None,
            Arc::default(),
        )
        .expect("stream starts");
        assert_eq!(cheeks(stream.next().await), (1.5, "1".into()));

        // A new version with the same limits: nothing is sent.
        state.swap(catalog("2", "1.5"));
        let quiet = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
        assert!(
            quiet.is_err(),
            "unchanged limits must not be re-sent: {quiet:?}"
        );

        // A version that changes them: the new limits, with the new version.
        state.swap(catalog("3", "1.0"));
        let next = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("an update");
        assert_eq!(cheeks(next), (1.0, "3".into()));

        // A client resuming with the etag it last saw gets a heartbeat, not the same limits again;
        // one with an outdated etag gets the limits.
        let etag = current(&app, &Caller::open(), &request())
            .expect("limits")
            .etag;
        let mut resumed = depth_limits(
            app.clone(),
            Arc::new(Caller::open()),
            request(),
            Some(etag.clone()),
            Arc::default(),
        )
        .expect("stream starts");
        match resumed.next().await {
            Some(Ok(pb::WatchDepthLimitsResponse {
                update: Some(pb::watch_depth_limits_response::Update::Heartbeat(h)),
            })) => assert_eq!(h.etag, etag),
            other => panic!("expected a heartbeat, got {other:?}"),
        }
        let mut outdated = depth_limits(
            app.clone(),
            Arc::new(Caller::open()),
            request(),
            Some("\"old\"".into()),
            Arc::default(),
        )
        .expect("stream starts");
        assert_eq!(cheeks(outdated.next().await), (1.0, "3".into()));

        // A subscriber that does not read while three versions go by gets the latest only.
        state.swap(catalog("4", "0.9"));
        state.swap(catalog("5", "0.8"));
        state.swap(catalog("6", "0.7"));
        let next = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("an update");
        assert_eq!(cheeks(next), (0.7, "6".into()));
        let quiet = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
        assert!(
            quiet.is_err(),
            "intermediate versions must not be queued: {quiet:?}"
        );

        // Shutdown ends the stream with a retryable UNAVAILABLE, then nothing.
        stop.send(true).expect("stream listening");
        let end = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("stream ends");
        let status = end.expect("a last item").expect_err("UNAVAILABLE");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        let after = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("stream over");
        assert!(after.is_none(), "{after:?}");
    }
}
