//! Scenario files: a named client, a request and what a clinician expects.
//!
//! The format of `services/engine/tests/cases` (see docs/authoring.md): a case names a rule set,
//! a check (`eligibility`, `contraindications`, `depth_limits`, `plan`), a client (a preset
//! from `clients.yaml` plus `facts` overrides and `unset` removals), the request, and either
//! `want` (what the answer must say) or `want_error` (the field a refusal must name). Only what
//! a case lists is asserted, and an expectation key the runner does not know is an error, so a
//! typo cannot pass silently.
//!
//! One runner for the engine's own tests and for `protocolctl test`: reading files is the
//! caller's (the engine does no I/O).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{RequestError, RuleSet};

/// Client presets by name: every fact a case starts from.
pub type Clients = BTreeMap<String, Map<String, Value>>;

/// Parses a `clients.yaml` file of presets.
pub fn parse_clients(text: &str) -> Result<Clients, String> {
    serde_saphyr::from_str(text).map_err(|e| format!("clients file does not parse: {e}"))
}

/// The file name of the client presets beside the cases, which is not a case itself.
pub const CLIENTS_FILE: &str = "clients.yaml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
/// One scenario file.
pub struct Case {
    /// What the scenario shows, in a clinician's words.
    pub name: String,
    /// The rule set id it runs against (`base`, `clinic-aurora`).
    pub ruleset: String,
    /// Which question it asks.
    pub check: Check,
    #[serde(default)]
    /// A client preset to start from.
    pub client: Option<String>,
    #[serde(default)]
    /// Answers that override (or add to) the preset's.
    pub facts: Map<String, Value>,
    #[serde(default)]
    /// Answers removed from the preset (left unknown).
    pub unset: Vec<String>,
    /// The request, without `facts` (built from the client).
    pub request: Map<String, Value>,
    #[serde(default)]
    /// What the answer must say (only the keys listed are asserted).
    pub want: Option<Map<String, Value>>,
    #[serde(default)]
    /// The refusal expected instead of an answer.
    pub want_error: Option<WantError>,
    /// A request only REST can send (an empty list: proto3 cannot tell it from an absent one),
    /// so the black-box parity test sends it over REST alone.
    #[serde(default)]
    pub rest_only: bool,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
/// The question a scenario asks.
pub enum Check {
    /// `POST /v1/eligibility`.
    Eligibility,
    /// `POST /v1/contraindications`.
    Contraindications,
    /// `POST /v1/depth-limits`.
    DepthLimits,
    /// `POST /v1/plans`.
    Plan,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
/// A refusal a scenario expects.
pub struct WantError {
    /// The field the refusal must name.
    pub field: String,
    #[serde(default)]
    /// Text its message must contain.
    pub contains: Option<String>,
}

/// Runs one case file against the rule sets by id: `Ok` when the answer is what it wants,
/// else what differs (with the answer).
pub fn run(
    text: &str,
    rulesets: &BTreeMap<String, RuleSet>,
    clients: &Clients,
) -> Result<(), String> {
    let case: Case =
        serde_saphyr::from_str(text).map_err(|e| format!("case file does not parse: {e}"))?;
    let rs = rulesets
        .get(&case.ruleset)
        .ok_or_else(|| format!("no rule set '{}'", case.ruleset))?;

    let mut facts = match &case.client {
        Some(c) => clients
            .get(c)
            .cloned()
            .ok_or_else(|| format!("no client preset '{c}'"))?,
        None => Map::new(),
    };
    facts.extend(case.facts.clone());
    for f in &case.unset {
        facts.remove(f);
    }
    let mut request = case.request.clone();
    let has_facts = case.client.is_some() || !case.facts.is_empty();
    if has_facts || !matches!(case.check, Check::DepthLimits) {
        request.insert("facts".into(), Value::Object(facts));
    }
    let request = Value::Object(request);

    let result: Result<Value, RequestError> = match case.check {
        Check::Eligibility => parse(&request).and_then(|r| Ok(json(&rs.eligibility(&r)?))),
        Check::Contraindications => {
            parse(&request).and_then(|r| Ok(json(&rs.contraindications(&r)?)))
        }
        Check::DepthLimits => parse(&request).and_then(|r| Ok(json(&rs.depth_limits(&r)?))),
        Check::Plan => parse(&request).and_then(|r| Ok(json(&rs.plan(&r)?))),
    };
    let ctx = format!("scenario '{}'", case.name);
    if let Check::Eligibility = case.check {
        same_on_fast_path(rs, &request).map_err(|e| format!("{ctx}: {e}"))?;
    }
    match (result, &case.want, &case.want_error) {
        (Ok(got), Some(want), None) => {
            compare(case.check, want, &got).map_err(|e| format!("{ctx}: {e}\n  answer: {got}"))
        }
        (Err(e), None, Some(want)) => {
            let hit = e.violations.iter().find(|v| v.field == want.field);
            match (hit, &want.contains) {
                (None, _) => Err(format!(
                    "{ctx}: expected an error on '{}', got: {e}",
                    want.field
                )),
                (Some(v), Some(text)) if !v.message.contains(text.as_str()) => Err(format!(
                    "{ctx}: error on '{}' is '{}', expected it to contain '{text}'",
                    v.field, v.message
                )),
                _ => Ok(()),
            }
        }
        (Ok(got), None, Some(want)) => Err(format!(
            "{ctx}: expected an error on '{}', got an answer: {got}",
            want.field
        )),
        (Err(e), Some(_), None) => Err(format!("{ctx}: expected an answer, got error: {e}")),
        _ => Err(format!(
            "{ctx}: a case needs exactly one of `want` or `want_error`"
        )),
    }
}

/// The fast path ([`RuleSet::read_eligibility`]) must give the general path's answer for the
/// same bytes, byte for byte, and take every request the general path answers (but those that
/// ask for an explanation, pin a version or answer with a questionnaire response); a request
/// the general path refuses it leaves to the general path.
fn same_on_fast_path(rs: &RuleSet, request: &Value) -> Result<(), String> {
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let general = serde_json::from_slice::<crate::EligibilityRequest>(&body)
        .ok()
        .and_then(|r| rs.eligibility(&r).ok());
    let explained_or_pinned = request.get("explain") == Some(&Value::Bool(true))
        || [
            "ruleset_version",
            "ruleset_digest",
            "questionnaire_response",
        ]
        .iter()
        .any(|k| request.get(*k).is_some_and(|v| !v.is_null()));
    match (rs.read_eligibility(&body), general) {
        (Some(read), Some(want)) => {
            let verdict = read.decide();
            let mut got = Vec::new();
            verdict.write_json(&[], &mut got);
            let want_bytes = serde_json::to_vec(&want).map_err(|e| e.to_string())?;
            if got != want_bytes {
                return Err(format!(
                    "the fast path wrote\n  {}\nthe general path\n  {}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want_bytes)
                ));
            }
            if read.decide().into_eligibility() != want {
                return Err("the fast path's typed answer differs from the general path's".into());
            }
            Ok(())
        }
        (Some(_), None) => Err("the fast path answered a request the general path refuses".into()),
        (None, Some(_)) if !explained_or_pinned => {
            Err("the fast path left a valid request to the general path".into())
        }
        (None, _) => Ok(()),
    }
}

/// Parses a request, turning a serde error into a field-named request error.
fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, RequestError> {
    serde_json::from_value(v.clone()).map_err(|e| RequestError::field("request", e.to_string()))
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn set(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn fired(outcome: &Value) -> BTreeSet<String> {
    outcome["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["rule"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks every entry of `map` with `f` and reports every mismatch, not only the first (a
/// failing scenario shows all that is wrong with it at once).
fn each(
    map: &Map<String, Value>,
    mut f: impl FnMut(&String, &Value) -> Result<(), String>,
) -> Result<(), String> {
    let errors: Vec<String> = map.iter().filter_map(|(k, v)| f(k, v).err()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn eq(key: &str, want: &Value, got: &Value) -> Result<(), String> {
    let same = match (want, got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == got,
    };
    if same {
        Ok(())
    } else {
        Err(format!("{key}: expected {want}, got {got}"))
    }
}

/// Compares an outcome (eligibility or one treatment of a contraindication check).
fn compare_outcome(want: &Map<String, Value>, got: &Value, prefix: &str) -> Result<(), String> {
    each(want, |key, w| {
        let at = format!("{prefix}{key}");
        match key.as_str() {
            "decision" | "bookable" | "earliest_date" => eq(&at, w, &got[key])?,
            "fired" => {
                let (w, g) = (set(Some(w)), fired(got));
                if w != g {
                    return Err(format!("{at}: expected {w:?}, got {g:?}"));
                }
            }
            "missing_facts" | "missing_inputs" => {
                let (w, g) = (set(Some(w)), set(got.get(key.as_str())));
                if w != g {
                    return Err(format!("{at}: expected {w:?}, got {g:?}"));
                }
            }
            other => return Err(format!("unknown expectation key '{prefix}{other}'")),
        }
        Ok(())
    })?;
    Ok(())
}

fn compare(check: Check, want: &Map<String, Value>, got: &Value) -> Result<(), String> {
    match check {
        Check::Eligibility => compare_outcome(want, got, ""),
        Check::Contraindications => {
            each(want, |key, w| {
                match key.as_str() {
                    "results" => {
                        let per = w
                            .as_object()
                            .ok_or("results: expected a map by treatment")?;
                        each(per, |t, tw| {
                            let g = got["results"]
                                .as_array()
                                .and_then(|a| a.iter().find(|r| r["treatment"] == *t))
                                .ok_or_else(|| {
                                    format!("results.{t}: treatment not in the answer")
                                })?;
                            compare_outcome(
                                tw.as_object().ok_or("expected a map")?,
                                g,
                                &format!("results.{t}."),
                            )?;
                            Ok(())
                        })?;
                    }
                    "missing_facts" | "missing_inputs" | "not_evaluated" => {
                        let (w, g) = (set(Some(w)), set(got.get(key)));
                        if w != g {
                            return Err(format!("{key}: expected {w:?}, got {g:?}"));
                        }
                    }
                    other => return Err(format!("unknown expectation key '{other}'")),
                }
                Ok(())
            })?;
            Ok(())
        }
        Check::DepthLimits => {
            each(want, |key, w| {
                match key.as_str() {
                    "zones" => {
                        let per = w.as_object().ok_or("zones: expected a map by zone")?;
                        each(per, |z, zw| {
                            let g = got["zones"]
                                .as_array()
                                .and_then(|a| a.iter().find(|r| r["zone"] == *z))
                                .ok_or_else(|| format!("zones.{z}: zone not in the answer"))?;
                            for (k, v) in zw.as_object().ok_or("expected a map")? {
                                match k.as_str() {
                                    "max_depth_mm" => eq(
                                        &format!("zones.{z}.max_depth_mm"),
                                        v,
                                        &g["max_depth_mm"],
                                    )?,
                                    "bound_by" => {
                                        let (w, gb) = (set(Some(v)), set(g.get("bound_by")));
                                        if w != gb {
                                            return Err(format!(
                                                "zones.{z}.bound_by: expected {w:?}, got {gb:?}"
                                            ));
                                        }
                                    }
                                    other => {
                                        return Err(format!(
                                            "unknown expectation key 'zones.{z}.{other}'"
                                        ));
                                    }
                                }
                            }
                            Ok(())
                        })?;
                    }
                    "zone_count" => eq(
                        "zone_count",
                        w,
                        &Value::from(got["zones"].as_array().map_or(0, Vec::len)),
                    )?,
                    "client" => compare_outcome(
                        w.as_object().ok_or("client: expected a map")?,
                        &got["client"],
                        "client.",
                    )?,
                    other => return Err(format!("unknown expectation key '{other}'")),
                }
                Ok(())
            })?;
            Ok(())
        }
        Check::Plan => {
            each(want, |key, w| {
                match key.as_str() {
                    "status" | "treatment" | "sessions" | "interval_days" | "session_minutes" => {
                        eq(key, w, &got[key])?
                    }
                    "first_session_decision" => eq(key, w, &got["first_session"]["decision"])?,
                    "first_session" => compare_outcome(
                        w.as_object().ok_or("expected a map")?,
                        &got["first_session"],
                        "first_session.",
                    )?,
                    "blocked_session_number" => eq(key, w, &got["blocked_session"]["number"])?,
                    "blocked_session" => compare_outcome(
                        w.as_object().ok_or("expected a map")?,
                        &got["blocked_session"]["eligibility"],
                        "blocked_session.",
                    )?,
                    "schedule_dates" => {
                        let dates: Vec<Value> = got["schedule"]
                            .as_array()
                            .map(|a| a.iter().map(|s| s["date"].clone()).collect())
                            .unwrap_or_default();
                        eq(key, w, &Value::Array(dates))?;
                    }
                    // Substrings that some precare line must contain, or that none may.
                    "precare_mentions" | "precare_omits" => {
                        let lines: Vec<&str> = got["precare"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        for text in w.as_array().ok_or("expected a list")?.iter() {
                            let text = text.as_str().ok_or("expected text")?;
                            let found = lines.iter().any(|l| l.contains(text));
                            if found != (key == "precare_mentions") {
                                return Err(format!("{key}: '{text}' in precare {lines:?}"));
                            }
                        }
                    }
                    "schedule_length" => eq(
                        key,
                        w,
                        &Value::from(got["schedule"].as_array().map_or(0, Vec::len)),
                    )?,
                    "session_depths" => {
                        // {zone: [depth per session]}
                        let per = w
                            .as_object()
                            .ok_or("session_depths: expected a map by zone")?;
                        for (z, depths) in per {
                            let got_depths: Vec<Value> = got["schedule"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|s| {
                                            s["zones"]
                                                .as_array()?
                                                .iter()
                                                .find(|x| x["zone"] == *z)
                                                .map(|x| x["depth_mm"].clone())
                                        })
                                        .collect()
                                })
                                .unwrap_or_default();
                            let (wv, gv): (Vec<f64>, Vec<f64>) = (
                                depths
                                    .as_array()
                                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                                    .unwrap_or_default(),
                                got_depths.iter().filter_map(Value::as_f64).collect(),
                            );
                            if wv != gv {
                                return Err(format!(
                                    "session_depths.{z}: expected {wv:?}, got {gv:?}"
                                ));
                            }
                        }
                    }
                    other => return Err(format!("unknown expectation key '{other}'")),
                }
                Ok(())
            })?;
            Ok(())
        }
    }
}
