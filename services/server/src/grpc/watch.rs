//! `WatchDepthLimits`: the current limits on subscribe, then new limits whenever the served rule
//! set changes (the `generation` counter that every catalog swap bumps) and the limits for this
//! request differ (a new rule-set version that leaves them unchanged sends nothing: heartbeats
//! carry the current version); a heartbeat on idle streams; a clean end (OK) on server shutdown.
//!
//! One small task per stream feeds a bounded channel; it stops as soon as the client goes away.

use std::sync::Arc;

use protocol_engine::DepthLimitsRequest;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{convert, pb, status};
use crate::auth::Caller;
use crate::context::Context;

type Item = Result<pb::DepthLimitsUpdate, Status>;

/// The limits for a caller now, from the catalog served now.
fn current(
    ctx: &Context,
    caller: &Caller,
    req: &DepthLimitsRequest,
) -> Result<pb::DepthLimits, Status> {
    let catalog = ctx.catalog();
    let rs = Context::ruleset(&catalog, caller).map_err(status::no_ruleset)?;
    rs.depth_limits(req)
        .map(|d| convert::depth_limits(&d))
        .map_err(status::invalid)
}

/// The part of an answer a device acts on: the limits, not the rule-set reference.
fn same_limits(a: &pb::DepthLimits, b: &pb::DepthLimits) -> bool {
    a.zones == b.zones && a.client == b.client && a.indication == b.indication
}

fn limits(l: pb::DepthLimits) -> Item {
    Ok(pb::DepthLimitsUpdate {
        update: Some(pb::depth_limits_update::Update::Limits(l)),
    })
}

/// Starts a stream. An invalid request fails the call itself (INVALID_ARGUMENT), not the stream.
pub fn depth_limits(
    ctx: Context,
    caller: Arc<Caller>,
    req: DepthLimitsRequest,
) -> Result<ReceiverStream<Item>, Status> {
    let first = current(&ctx, &caller, &req)?;
    let (tx, rx) = mpsc::channel::<Item>(4);
    let mut generation = ctx.state.generation.subscribe();
    let mut shutdown = ctx.shutdown.clone();
    let heartbeat = ctx.heartbeat;
    tokio::spawn(async move {
        let mut last = first.clone();
        if tx.send(limits(first)).await.is_err() {
            return;
        }
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tx.closed() => break,
                changed = generation.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    match current(&ctx, &caller, &req) {
                        Ok(now) if !same_limits(&now, &last) => {
                            last = now.clone();
                            if tx.send(limits(now)).await.is_err() {
                                break;
                            }
                            ticker.reset();
                        }
                        Ok(now) => last.ruleset = now.ruleset,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            break;
                        }
                    }
                }
                _ = ticker.tick() => {
                    let beat = pb::DepthLimitsUpdate {
                        update: Some(pb::depth_limits_update::Update::Heartbeat(pb::Heartbeat {
                            ruleset: last.ruleset.clone(),
                        })),
                    };
                    if tx.send(Ok(beat)).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use protocol_engine::{Format, parse_document};
    use tokio_stream::StreamExt;

    use super::*;
    use crate::auth::ApiKeys;
    use crate::catalog::{Catalog, Origin};
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
"#
        );
        let doc = parse_document(&yaml, Format::Yaml).expect("test rule set parses");
        Catalog::from_documents(vec![doc], Origin::Directory).expect("test rule set compiles")
    }

    fn request() -> DepthLimitsRequest {
        DepthLimitsRequest {
            treatment: "microneedling".into(),
            device: "pen".into(),
            role: "physician".into(),
            zone: None,
            indication: None,
            facts: None,
        }
    }

    fn cheeks(item: Option<Item>) -> (f64, String) {
        match item.map(|i| i.map(|u| u.update)) {
            Some(Ok(Some(pb::depth_limits_update::Update::Limits(l)))) => (
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
        };
        let mut stream =
            depth_limits(ctx, Arc::new(Caller::open()), request()).expect("stream starts");
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

        // Shutdown ends the stream cleanly.
        stop.send(true).expect("stream listening");
        let end = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("stream ends");
        assert!(end.is_none(), "{end:?}");
    }
}
