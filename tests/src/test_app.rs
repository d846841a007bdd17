//! [`TestApp`]: a running server and a method per operation it answers, so a test says what it
//! asks ("eligibility, as Aurora's key"), not how a URL is spelled. The operations the door
//! answers are also reachable by their registry entry ([`Asker::ask`], an exhaustive match on
//! [`Operation`]): an operation added to the registry without a way for the tests to ask it does
//! not compile.

use std::time::Duration;

use protocol_server::app::operations::Operation;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::{Server, ServerBuilder};

/// A running `protocol-server` (killed on drop).
pub struct TestApp {
    pub server: Server,
}

/// One REST answer: the status, the headers and the body (JSON, or `Value::Null` when empty or
/// not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// A header's value, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    /// A server in open mode on the bundled rule sets.
    pub fn start() -> Self {
        Self::new(ServerBuilder::new())
    }

    /// A server with the test keys, on the bundled rule sets.
    pub fn start_with_keys() -> Self {
        Self::new(ServerBuilder::new().with_keys())
    }

    /// A server as `builder` configures it.
    pub fn new(builder: ServerBuilder) -> Self {
        Self::of(builder.spawn().expect("the server starts"))
    }

    /// The app of a server already started.
    pub fn of(server: Server) -> Self {
        Self { server }
    }

    /// Asks without a key (open mode, or to be refused).
    pub fn open(&self) -> Asker<'_> {
        self.server.open()
    }

    /// Asks with `key`.
    pub fn as_key<'a>(&'a self, key: &'a str) -> Asker<'a> {
        self.server.as_key(key)
    }
}

impl Server {
    /// Asks this server without a key (a replica of a fleet, where a test holds servers).
    pub fn open(&self) -> Asker<'_> {
        Asker::new(self, None)
    }

    /// Asks this server with `key`.
    pub fn as_key<'a>(&'a self, key: &'a str) -> Asker<'a> {
        Asker::new(self, Some(key))
    }
}

/// Who asks a server: a key, or none, with an HTTP client of its own (a client's pool belongs
/// to the runtime that made it, and each test has its own runtime).
#[derive(Clone)]
pub struct Asker<'a> {
    server: &'a Server,
    http: reqwest::Client,
    key: Option<&'a str>,
}

impl<'a> Asker<'a> {
    fn new(server: &'a Server, key: Option<&'a str>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("http client");
        Self { server, http, key }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut req = self.http.request(method, self.server.url(path));
        if let Some(body) = body {
            req = req.json(body);
        }
        self.answer(req).await
    }

    /// Sends `req` with this asker's key and reads the answer.
    async fn answer(&self, mut req: reqwest::RequestBuilder) -> Answer {
        if let Some(key) = self.key {
            req = req.bearer_auth(key);
        }
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => panic!(
                "the server does not answer ({e}); what it printed last:\n{}",
                self.last_output()
            ),
        };
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("a body");
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// The server's last lines of output, for a failure to show why it does not answer.
    fn last_output(&self) -> String {
        let out = self.server.output();
        out[out.len().saturating_sub(30)..].join("\n")
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// The operation `op` of the registry, asked with `input`: the body of a POST, or for a
    /// read the treatment code, questionnaire id or query (`GET`s ignore what they do not use).
    pub async fn ask(&self, op: Operation, input: &Value) -> Answer {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        match op {
            Operation::Eligibility => self.eligibility(input).await,
            Operation::Contraindications => self.contraindications(input).await,
            Operation::DepthLimits => self.depth_limits(input).await,
            Operation::Plan => self.plan(input).await,
            Operation::ListTreatments => self.treatments().await,
            Operation::GetTreatment => self.treatment(&text(input)).await,
            Operation::GetCatalogue => self.catalogue().await,
            Operation::ListFacts => self.facts().await,
            Operation::GetQuestionnaire => self.questionnaire(&text(input)).await,
        }
    }

    // ---- questions -------------------------------------------------------------------------

    /// `POST /v1/eligibility`.
    pub async fn eligibility(&self, body: &Value) -> Answer {
        self.post("/v1/eligibility", body).await
    }

    /// `POST /v1/eligibility:batch`.
    pub async fn eligibility_batch(&self, body: &Value) -> Answer {
        self.post("/v1/eligibility:batch", body).await
    }

    /// `POST /v1/eligibility:calendar`.
    pub async fn eligibility_calendar(&self, body: &Value) -> Answer {
        self.post("/v1/eligibility:calendar", body).await
    }

    /// `POST /v1/contraindications:check`.
    pub async fn contraindications(&self, body: &Value) -> Answer {
        self.post("/v1/contraindications:check", body).await
    }

    /// `POST /v1/depth-limits`.
    pub async fn depth_limits(&self, body: &Value) -> Answer {
        self.post("/v1/depth-limits", body).await
    }

    /// `GET /v1/depth-limits?{query}`.
    pub async fn depth_limits_query(&self, query: &str) -> Answer {
        self.get(&format!("/v1/depth-limits?{query}")).await
    }

    /// `POST /v1/plans`.
    pub async fn plan(&self, body: &Value) -> Answer {
        self.post("/v1/plans", body).await
    }

    /// `GET /v1/treatments`.
    pub async fn treatments(&self) -> Answer {
        self.get("/v1/treatments").await
    }

    /// `GET /v1/treatments/{code}`.
    pub async fn treatment(&self, code: &str) -> Answer {
        self.get(&format!("/v1/treatments/{code}")).await
    }

    /// `GET /v1/catalogue`.
    pub async fn catalogue(&self) -> Answer {
        self.get("/v1/catalogue").await
    }

    /// `GET /v1/facts`.
    pub async fn facts(&self) -> Answer {
        self.get("/v1/facts").await
    }

    /// `GET /fhir/Questionnaire/{ruleset}`.
    pub async fn questionnaire(&self, ruleset: &str) -> Answer {
        self.get(&format!("/fhir/Questionnaire/{ruleset}")).await
    }

    // ---- decisions ---------------------------------------------------------------------------

    /// `GET /v1/decisions/{id}`.
    pub async fn decision(&self, id: &str) -> Answer {
        self.get(&format!("/v1/decisions/{id}")).await
    }

    /// `POST /v1/decisions/{id}:replay`.
    pub async fn replay(&self, id: &str, body: &Value) -> Answer {
        self.post(&format!("/v1/decisions/{id}:replay"), body).await
    }

    // ---- rule-set administration -------------------------------------------------------------

    /// `GET /v1/rulesets`.
    pub async fn rulesets(&self) -> Answer {
        self.get("/v1/rulesets").await
    }

    /// `POST /v1/rulesets` with a YAML document.
    pub async fn publish_yaml(&self, yaml: &str) -> Answer {
        let req = self
            .http
            .post(self.server.url("/v1/rulesets"))
            .header("content-type", "application/yaml")
            .body(yaml.to_owned());
        self.answer(req).await
    }

    /// `GET /v1/rulesets/{id}/versions`.
    pub async fn versions(&self, id: &str) -> Answer {
        self.get(&format!("/v1/rulesets/{id}/versions")).await
    }

    /// `GET /v1/rulesets/{id}/versions/{version}`.
    pub async fn version(&self, id: &str, version: &str) -> Answer {
        self.get(&format!("/v1/rulesets/{id}/versions/{version}"))
            .await
    }

    /// `DELETE /v1/rulesets/{id}/versions/{version}`.
    pub async fn retire(&self, id: &str, version: &str) -> Answer {
        self.send(
            reqwest::Method::DELETE,
            &format!("/v1/rulesets/{id}/versions/{version}"),
            None,
        )
        .await
    }

    /// `GET /v1/rulesets/{id}/history`.
    pub async fn history(&self, id: &str) -> Answer {
        self.get(&format!("/v1/rulesets/{id}/history")).await
    }

    /// `POST /v1/rulesets/{id}/activate`.
    pub async fn activate(&self, id: &str, body: &Value) -> Answer {
        self.post(&format!("/v1/rulesets/{id}/activate"), body)
            .await
    }

    /// `POST /v1/rulesets/{id}/rollback`.
    pub async fn rollback(&self, id: &str, body: &Value) -> Answer {
        self.post(&format!("/v1/rulesets/{id}/rollback"), body)
            .await
    }

    // ---- probes and documents ----------------------------------------------------------------

    /// `GET /healthz`.
    pub async fn healthz(&self) -> Answer {
        self.get("/healthz").await
    }

    /// `GET /readyz`.
    pub async fn readyz(&self) -> Answer {
        self.get("/readyz").await
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> Answer {
        self.get("/openapi.json").await
    }
}
