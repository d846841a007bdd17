//! A Server-Sent Events client for the REST rule-set notices (`GET /v1/rulesets:watch`): a real
//! HTTP client (reqwest, streaming the body) and a real SSE parser (`eventsource-stream`), as a
//! booking system would read them.

use std::pin::Pin;

use anyhow::Context;
use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// One event as received.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// `ruleset` or `heartbeat`.
    pub event: String,
    /// The event id (a notice's `revision`; empty for heartbeats).
    pub id: String,
    /// The notice.
    pub data: Value,
}

impl SseEvent {
    /// `ruleset.version` of the notice.
    pub fn version(&self) -> &str {
        self.data["ruleset"]["version"].as_str().unwrap_or_default()
    }

    /// `ruleset.id` of the notice.
    pub fn ruleset_id(&self) -> &str {
        self.data["ruleset"]["id"].as_str().unwrap_or_default()
    }
}

type Parsed = Pin<
    Box<
        dyn Stream<
                Item = Result<
                    eventsource_stream::Event,
                    eventsource_stream::EventStreamError<reqwest::Error>,
                >,
            > + Send,
    >,
>;

/// An open event stream.
pub struct Events {
    inner: Parsed,
}

impl Events {
    /// The next event as parsed, its data unread; `None` when the server ended the stream.
    pub async fn next_raw(&mut self) -> anyhow::Result<Option<eventsource_stream::Event>> {
        match self.inner.next().await {
            None => Ok(None),
            Some(Err(e)) => Err(anyhow::anyhow!("event stream: {e}")),
            Some(Ok(e)) => Ok(Some(e)),
        }
    }

    /// The next event; `None` when the server ended the stream.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        match self.inner.next().await {
            None => Ok(None),
            Some(Err(e)) => Err(anyhow::anyhow!("event stream: {e}")),
            Some(Ok(e)) => Ok(Some(SseEvent {
                event: e.event,
                id: e.id,
                data: serde_json::from_str(&e.data)
                    .with_context(|| format!("event data is JSON: {}", e.data))?,
            })),
        }
    }
}

/// A client for event streams: no overall timeout (a stream lasts as long as it is read).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("http client")
}

/// `GET <url>` (the watch endpoint, with any query) as `key`, with `Last-Event-ID` when given.
/// `Err` with the status and body when the server refused the stream.
pub async fn open(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    last_event_id: Option<&str>,
) -> Result<Events, (u16, Value, reqwest::header::HeaderMap)> {
    let mut req = client
        .get(url)
        .bearer_auth(key)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) => return Err((0, Value::String(e.to_string()), Default::default())),
    };
    let status = res.status().as_u16();
    let is_events = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if status != 200 || !is_events {
        let headers = res.headers().clone();
        let body = res.json().await.unwrap_or(Value::Null);
        return Err((status, body, headers));
    }
    Ok(Events {
        inner: Box::pin(res.bytes_stream().eventsource()),
    })
}
