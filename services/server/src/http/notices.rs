//! `GET /v1/rulesets:watch`: rule-set notices as Server-Sent Events, for browsers and simple HTTP
//! clients (the REST twin of gRPC `WatchRuleSets`; the stream itself is the door's,
//! [`crate::app::notices`]).
//!
//! Events, each one `data:` line of JSON (a [`RuleSetNotice`]):
//!
//! ```text
//! event: ruleset
//! id: sha256:90aa…/sha256:b1b7…
//! data: {"status":"serving","ruleset":{"id":"clinic-aurora","version":"2026.12.1",…},"revision":"sha256:90aa…/sha256:b1b7…"}
//!
//! event: heartbeat
//! data: {"status":"serving",…}
//! ```
//!
//! A `ruleset` event carries the notice's `revision` as its id, so an `EventSource` that
//! reconnects sends it back as `Last-Event-ID` and is not told again what it already knows;
//! `?since=<revision>` does the same for a first connection. Heartbeats carry no id.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::caller::{Authorized, EligibilityScope};
use super::extract::StrictQuery;
use super::problem::Problem;
use crate::app::App;
use crate::app::notices::{NoticeEvent, RuleSetNotice};

/// The query of `GET /v1/rulesets:watch`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WatchQuery {
    /// The `revision` the client already has (as `Last-Event-ID`, which wins when both are
    /// sent): when it names the rule set in force the stream opens with a heartbeat.
    pub since: Option<String>,
}

const LAST_EVENT_ID: &str = "last-event-id";

/// One event, framed: `event`, for a notice its `id`, one `data` line.
fn frame(event: &NoticeEvent) -> Bytes {
    let (name, shared, with_id) = match event {
        NoticeEvent::Notice(n) => ("ruleset", n, true),
        NoticeEvent::Heartbeat(n) => ("heartbeat", n, false),
    };
    // Rendered once per notice, whatever the number of streams that send it.
    let json = shared.json();
    let notice = &shared.notice;
    let mut out = String::with_capacity(json.len() + notice.revision.len() + 32);
    out.push_str("event: ");
    out.push_str(name);
    out.push('\n');
    if with_id {
        out.push_str("id: ");
        // An event id ends at a line break: none can come from a digest, id or version, and
        // none is ever sent.
        out.extend(
            notice
                .revision
                .chars()
                .filter(|c| !matches!(c, '\r' | '\n' | '\0')),
        );
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(json);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// Which rule set answers for the caller's clinic, now and whenever it changes.
///
/// A Server-Sent Events stream for booking systems that hold future appointments: re-check them
/// when the `revision` changes. Resume with `Last-Event-ID` (or `?since=`) and nothing is
/// repeated or missed. The stream never ends while the server runs; heartbeats keep it alive.
#[utoipa::path(
    get,
    path = "/v1/rulesets:watch",
    tag = "notices",
    params(
        WatchQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last `ruleset` event received (a notice's `revision`), sent by `EventSource` when it reconnects"),
    ),
    responses(
        (status = 200, description = "A Server-Sent Events stream: a `ruleset` event (id: the notice's `revision`) at once unless resumed at the rule set in force, another within a second of every activation that changes it, a `heartbeat` event every `PROTOCOL_WATCH_HEARTBEAT_SECS` on an idle stream (and first when resumed at the state in force). Each event's data is one notice.",
            body = RuleSetNotice, content_type = "text/event-stream"),
        (status = 400, description = "An unknown query parameter, or a `Last-Event-ID` that is not text", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `eligibility` scope", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Past the watch-stream budgets (per key or in total; shared with gRPC watches), with `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn watch_rulesets(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    headers: HeaderMap,
    StrictQuery(query): StrictQuery<WatchQuery>,
) -> Result<Response, Problem> {
    let since = match headers.get(LAST_EVENT_ID) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| Problem::field("Last-Event-ID", "must be text (a notice's revision)"))?
                .to_owned(),
        ),
        None => query.since,
    };
    let events = app.watch_rulesets(caller, since.as_deref())?;
    let body = Body::from_stream(events.map(|e| Ok::<_, Infallible>(frame(&e))));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Proxies that buffer answers (nginx) pass this one through as it comes.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::app::notices::{NoticeStatus, RefusedRuleSet, Shared};

    #[test]
    fn events_are_framed_with_the_revision_as_id_and_one_data_line() {
        let n = Arc::new(Shared::from(RuleSetNotice {
            status: NoticeStatus::Unavailable,
            ruleset: None,
            refused: Some(RefusedRuleSet {
                id: "clinic-aurora".into(),
                version: "2026.12.1".into(),
                detail: "digest\nmismatch".into(),
            }),
            revision: "unavailable:clinic-aurora@2026.12.1".into(),
        }));
        let text =
            String::from_utf8(frame(&NoticeEvent::Notice(n.clone())).to_vec()).expect("utf-8");
        assert!(
            text.starts_with("event: ruleset\nid: unavailable:clinic-aurora@2026.12.1\ndata: {"),
            "{text}"
        );
        assert!(
            text.ends_with("}\n\n") && text.matches('\n').count() == 4,
            "{text}"
        );
        let beat = String::from_utf8(frame(&NoticeEvent::Heartbeat(n)).to_vec()).expect("utf-8");
        assert!(beat.starts_with("event: heartbeat\ndata: {"), "{beat}");
    }
}
