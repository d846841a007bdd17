//! The admin API over REST (`/v1/rulesets`): publish, activate, roll back, list versions, and
//! read the active version for `diff --remote`.
//!
//! The server comes from `PROTOCOL_URL`, the key from `PROTOCOL_API_KEY`. Activation and
//! rollback are compare-and-set by default: the active version is read first and sent as
//! `expected_current`, so two authors never overwrite each other's activation unknowingly.

use std::path::Path;

use anyhow::{Context, bail};
use protocol_engine::RuleSetDoc;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::files::format_of;

pub struct Remote {
    url: String,
    key: Option<String>,
    http: Client,
}

/// An answer that is not a success: the problem+json body, rendered.
fn problem(status: u16, body: &Value) -> anyhow::Error {
    let mut text = format!(
        "{status} {}: {}",
        body["title"].as_str().unwrap_or("error"),
        body["detail"].as_str().unwrap_or_default()
    );
    for e in body["errors"].as_array().into_iter().flatten() {
        let line = e["line"]
            .as_u64()
            .map(|l| format!(" (line {l})"))
            .unwrap_or_default();
        text.push_str(&format!(
            "\n  - {}{line}: {}",
            e["field"].as_str().unwrap_or_default(),
            e["message"].as_str().unwrap_or_default()
        ));
    }
    anyhow::anyhow!(text)
}

impl Remote {
    pub fn new(url: &str, key: Option<String>) -> anyhow::Result<Self> {
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            key,
            http: Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .context("building the HTTP client")?,
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.url));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    fn send(&self, r: RequestBuilder) -> anyhow::Result<Value> {
        let res: Response = r
            .send()
            .with_context(|| format!("reaching {} (PROTOCOL_URL)", self.url))?;
        let status = res.status().as_u16();
        let body: Value = res.json().unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(problem(status, &body))
        }
    }

    pub fn publish(&self, file: &Path) -> anyhow::Result<Value> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let content_type = match format_of(file) {
            Some(protocol_engine::Format::Json) => "application/json",
            _ => "application/yaml",
        };
        self.send(
            self.req(reqwest::Method::POST, "/v1/rulesets")
                .header("content-type", content_type)
                .body(text),
        )
    }

    pub fn versions(&self, id: &str) -> anyhow::Result<Value> {
        self.send(self.req(reqwest::Method::GET, &format!("/v1/rulesets/{id}/versions")))
    }

    /// The active version now, `None` when none is.
    pub fn active(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(self.versions(id)?["active"]["version"]
            .as_str()
            .map(str::to_owned))
    }

    /// Activates `version`; `expected` is the version believed active (`None`: none may be),
    /// or, with `unchecked`, no check at all.
    pub fn activate(
        &self,
        id: &str,
        version: &str,
        expected: Option<String>,
        unchecked: bool,
        guard: &Value,
    ) -> anyhow::Result<Value> {
        let mut body = if unchecked {
            json!({ "version": version })
        } else {
            json!({ "version": version, "expected_current": expected })
        };
        merge(&mut body, guard);
        self.send(
            self.req(
                reqwest::Method::POST,
                &format!("/v1/rulesets/{id}/activate"),
            )
            .json(&body),
        )
    }

    pub fn rollback(
        &self,
        id: &str,
        to: Option<&str>,
        expected: Option<String>,
        guard: &Value,
    ) -> anyhow::Result<Value> {
        let Some(expected) = expected else {
            bail!("rule set '{id}' has no active version: nothing to roll back");
        };
        let mut body = json!({ "expected_current": expected });
        if let Some(to) = to {
            body["to_version"] = json!(to);
        }
        merge(&mut body, guard);
        self.send(
            self.req(
                reqwest::Method::POST,
                &format!("/v1/rulesets/{id}/rollback"),
            )
            .json(&body),
        )
    }

    /// The stored document of one version, as the server canonicalised it.
    pub fn document(&self, id: &str, version: &str) -> anyhow::Result<Value> {
        let body = self.send(self.req(
            reqwest::Method::GET,
            &format!("/v1/rulesets/{id}/versions/{version}"),
        ))?;
        Ok(body["document"].clone())
    }

    /// The activation history of `id`, oldest first.
    pub fn history(&self, id: &str) -> anyhow::Result<Value> {
        self.send(self.req(reqwest::Method::GET, &format!("/v1/rulesets/{id}/history")))
    }

    /// Retires a version never activated.
    pub fn retire(&self, id: &str, version: &str) -> anyhow::Result<Value> {
        self.send(self.req(
            reqwest::Method::DELETE,
            &format!("/v1/rulesets/{id}/versions/{version}"),
        ))
    }

    /// The document of the active version of `id`.
    pub fn active_document(&self, id: &str) -> anyhow::Result<RuleSetDoc> {
        let Some(version) = self.active(id)? else {
            bail!("rule set '{id}' has no active version on the server");
        };
        let document = self.document(id, &version)?;
        let text = serde_json::to_string(&document)?;
        protocol_engine::parse_document(&text, protocol_engine::Format::Json)
            .map_err(|e| anyhow::anyhow!("the server's '{id}' {version}: {e}"))
    }
}

/// `versions` for people: one line per version, the active one marked, any declared loosening.
pub fn versions_human(body: &Value) -> String {
    let mut out = format!("{}\n", body["id"].as_str().unwrap_or_default());
    for v in body["versions"].as_array().into_iter().flatten() {
        let mark = if v["active"] == true { "*" } else { " " };
        let retired = v["retired_at"]
            .as_str()
            .map(|r| format!(" retired {r}"))
            .unwrap_or_default();
        let loosening = if v["loosening"].is_object() {
            format!(
                " loosening: \"{}\" approved by {}",
                v["loosening"]["reason"].as_str().unwrap_or_default(),
                v["loosening"]["approved_by"].as_str().unwrap_or_default()
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{mark} {} {} {}{retired}{loosening}\n",
            v["version"].as_str().unwrap_or_default(),
            v["published_at"].as_str().unwrap_or_default(),
            v["digest"].as_str().unwrap_or_default(),
        ));
    }
    out
}

/// Adds the fields of `extra` (an object) to `body`.
fn merge(body: &mut Value, extra: &Value) {
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
}

/// What an activation or rollback changed (or would change), for people: one line per rule set
/// served, each loosening under it with where it is, and how to approve them on a dry run.
pub fn impact_human(a: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for r in a["impact"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {} {} -> {}: {} looser, {} tighter, {} neutral",
            r["ruleset"].as_str().unwrap_or_default(),
            r["from"].as_str().unwrap_or("-"),
            r["to"].as_str().unwrap_or_default(),
            r["looser"],
            r["tighter"],
            r["neutral"]
        );
        for c in r["changes"].as_array().into_iter().flatten() {
            if c["direction"] != "looser" {
                continue;
            }
            let at = match (c["path"].as_str(), c["line"].as_u64()) {
                (Some(p), Some(l)) => format!(" (line {l}, {p})"),
                (Some(p), None) => format!(" ({p})"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "    looser {} {} {}: {} -> {}{at}",
                c["area"].as_str().unwrap_or_default(),
                c["subject"].as_str().unwrap_or_default(),
                c["aspect"].as_str().unwrap_or_default(),
                c["old"].as_str().unwrap_or("-"),
                c["new"].as_str().unwrap_or("-"),
            );
        }
    }
    let traffic = &a["traffic"];
    if let Some(error) = traffic["error"].as_str() {
        let _ = writeln!(out, "impact on logged decisions unknown: {error}");
    } else if let Some(clinics) = traffic["clinics"].as_array() {
        let _ = writeln!(
            out,
            "impact on the latest {} logged decisions of each clinic:",
            traffic["sample_per_clinic"]
        );
        if clinics.is_empty() {
            let _ = writeln!(out, "  no logged decision of an affected clinic");
        }
        for c in clinics {
            let _ = writeln!(out, "  {}", traffic_line(c));
        }
    }
    if a["dry_run"] == true
        && let Some(digest) = a["loosenings"].as_str()
    {
        let _ = writeln!(
            out,
            "it loosens what clinics are served: approve with --approve {digest} --reason ... --approver ... (from another API key than the publisher's)"
        );
    }
    out
}

/// One clinic's traffic impact: `clinic-aurora (clinic-aurora): 3 of 40 logged decisions
/// change: eligible -> deferred 2; 1 caps deeper, 0 shallower`.
fn traffic_line(c: &Value) -> String {
    let outcomes: Vec<String> = c["outcomes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            format!(
                "{} -> {} {}",
                o["from"].as_str().unwrap_or_default(),
                o["to"].as_str().unwrap_or_default(),
                o["count"]
            )
        })
        .collect();
    let mut line = format!(
        "{} ({}): {} of {} logged decisions change",
        c["clinic"].as_str().unwrap_or("open"),
        c["ruleset"].as_str().unwrap_or_default(),
        c["changed"],
        c["decisions"]
    );
    if !outcomes.is_empty() {
        line.push_str(&format!(": {}", outcomes.join(", ")));
    }
    line.push_str(&format!(
        "; {} caps deeper, {} shallower",
        c["deeper"], c["shallower"]
    ));
    if c["not_replayable"].as_u64().unwrap_or(0) > 0 {
        line.push_str(&format!("; {} not replayable", c["not_replayable"]));
    }
    line
}

/// `history` for people: one line per move, oldest first, with what it changed and any approval.
pub fn history_human(body: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{}\n", body["id"].as_str().unwrap_or_default());
    for e in body["history"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "{} {} {} (was {}) by {}",
            e["at"].as_str().unwrap_or_default(),
            e["action"].as_str().unwrap_or_default(),
            e["version"].as_str().unwrap_or_default(),
            e["previous"].as_str().unwrap_or("none"),
            e["by"].as_str().unwrap_or("-"),
        );
        if let Some(effect) = e["effect"].as_str() {
            let _ = write!(out, "; {effect}");
        }
        if let Some(a) = e["approval"].as_object() {
            let _ = write!(
                out,
                "; approved by {}: \"{}\"",
                a.get("approver")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                a.get("reason").and_then(Value::as_str).unwrap_or_default()
            );
        }
        out.push('\n');
    }
    out
}
