//! `protocolctl eval REQUEST.json --rulesets DIR [--clinic ID] [--explain]`: one decision,
//! offline, from the rule set the server would use for that clinic (its overlay, else the base).
//! With `--explain`, the answer carries the engine's explanation as the server's does with
//! `explain: true`: each rule's condition tree with every node's result and the values it read
//! (eligibility: `explanation`; contraindications: each outcome's `explanation`; depth limits:
//! each zone's `bounds`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use clap::ValueEnum;
use protocol_engine::{RequestError, RuleSet};
use serde_json::Value;

use crate::files::rulesets;

/// The question asked, as the REST path names it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Check {
    Eligibility,
    Contraindications,
    DepthLimits,
    Plan,
}

/// The answer, or the request's faults naming each field.
pub fn run(
    request: &Path,
    rulesets_dir: &Path,
    base: Option<&Path>,
    clinic: Option<&str>,
    check: Check,
    explain: bool,
) -> anyhow::Result<Result<Value, RequestError>> {
    if explain && matches!(check, Check::Plan) {
        bail!(
            "--explain: plans have no explanation (explain the first session with --check eligibility)"
        );
    }
    let all = rulesets(rulesets_dir, base)?;
    let rs = pick(&all, clinic)?;
    let text = std::fs::read_to_string(request)
        .with_context(|| format!("reading {}", request.display()))?;
    let mut body: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", request.display()))?;
    if explain && let Value::Object(map) = &mut body {
        map.insert("explain".into(), Value::Bool(true));
    }
    fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, RequestError> {
        serde_json::from_value(v).map_err(|e| RequestError::field("request", e.to_string()))
    }
    fn json<T: serde::Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap_or(Value::Null)
    }
    Ok(match check {
        Check::Eligibility => parse(body).and_then(|r: protocol_engine::EligibilityRequest| {
            let mut answer = json(&rs.eligibility(&r)?);
            // The engine explains eligibility in a second walk, as the server does.
            if r.explain
                && let Value::Object(map) = &mut answer
            {
                map.insert("explanation".into(), json(&rs.explain_eligibility(&r)?));
            }
            Ok(answer)
        }),
        Check::Contraindications => {
            parse(body).and_then(|r| rs.contraindications(&r).map(|a| json(&a)))
        }
        Check::DepthLimits => parse(body).and_then(|r| rs.depth_limits(&r).map(|a| json(&a))),
        Check::Plan => parse(body).and_then(|r| rs.plan(&r).map(|a| json(&a))),
    })
}

/// The clinic's overlay when the folder has one, else the base (the one rule set without
/// `extends`), as the server answers a key of that clinic.
fn pick<'a>(
    all: &'a BTreeMap<String, RuleSet>,
    clinic: Option<&str>,
) -> anyhow::Result<&'a RuleSet> {
    if let Some(rs) = clinic.and_then(|c| all.get(c)) {
        return Ok(rs);
    }
    let bases: Vec<&RuleSet> = all.values().filter(|r| r.meta().base.is_none()).collect();
    match bases.as_slice() {
        [one] => Ok(one),
        _ => bail!(
            "the folder holds {} base rule sets: name the rule set with --clinic",
            bases.len()
        ),
    }
}
