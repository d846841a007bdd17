//! The engine's named clinical scenarios (`services/engine/tests/cases/**`), end to end over REST
//! and over gRPC against one running server: each answer must meet the scenario's headline
//! expectations, and the two protocols must give identical answers (decision, reasons, missing
//! facts, earliest date, precautions, depths, schedule, rule set). Error scenarios must name the
//! same field over both.
//!
//! Clinic-overlay scenarios (`ruleset: clinic-aurora`) use the Aurora key; base scenarios use the
//! key of a clinic without an overlay, which sees the base — tenant resolution is part of the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use protocol_tests::{KEY_AURORA, KEY_BASE, Server, workspace_root};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::common::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    ruleset: String,
    check: String,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    facts: Map<String, Value>,
    #[serde(default)]
    unset: Vec<String>,
    request: Map<String, Value>,
    #[serde(default)]
    want: Option<Map<String, Value>>,
    #[serde(default)]
    want_error: Option<WantError>,
    /// A request gRPC cannot express (an empty repeated field is an absent one in proto3).
    #[serde(default)]
    rest_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WantError {
    field: String,
    /// Checked by the engine's runner (the message text); here the field is what both
    /// protocols must name.
    #[serde(default)]
    #[expect(dead_code, reason = "the engine's runner checks the message")]
    contains: Option<String>,
}

fn cases_dir() -> PathBuf {
    workspace_root().join("services/engine/tests/cases")
}

fn case_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            case_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml")
            && p.file_name().is_some_and(|n| n != "clients.yaml")
        {
            out.push(p);
        }
    }
}

/// The request body exactly as the engine's scenario runner builds it.
fn request(case: &Case, clients: &BTreeMap<String, Map<String, Value>>) -> Value {
    let mut facts = case
        .client
        .as_ref()
        .and_then(|c| clients.get(c).cloned())
        .unwrap_or_default();
    facts.extend(case.facts.clone());
    for f in &case.unset {
        facts.remove(f);
    }
    let mut req = case.request.clone();
    let has_facts = case.client.is_some() || !case.facts.is_empty();
    if has_facts || case.check != "depth_limits" {
        req.insert("facts".into(), Value::Object(facts));
    }
    Value::Object(req)
}

/// What went wrong with one scenario, or `None`.
async fn run_case(
    server: &Server,
    http: &reqwest::Client,
    grpc: &mut protocol_tests::pb::treatment_protocol_service_client::TreatmentProtocolServiceClient<
        tonic::transport::Channel,
    >,
    case: &Case,
    body: &Value,
) -> Result<(), String> {
    let key = if case.ruleset == "base" {
        KEY_BASE
    } else {
        KEY_AURORA
    };
    let path = match case.check.as_str() {
        "eligibility" => "/v1/eligibility",
        "contraindications" => "/v1/contraindications:check",
        "depth_limits" => "/v1/depth-limits",
        "plan" => "/v1/plans",
        other => return Err(format!("unknown check '{other}'")),
    };
    let res = http
        .post(server.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let rest: Value = res.json().await.map_err(|e| e.to_string())?;

    let grpc_result: Result<Value, tonic::Status> = match case.check.as_str() {
        "eligibility" => grpc
            .check_eligibility(with_key(eligibility_pb(body), Some(key)))
            .await
            .map(|r| eligibility_grpc(r.get_ref())),
        "contraindications" => grpc
            .check_contraindications(with_key(contraindication_pb(body), Some(key)))
            .await
            .map(|r| contraindications_grpc(r.get_ref())),
        "depth_limits" => grpc
            .get_depth_limits(with_key(depth_pb(body), Some(key)))
            .await
            .map(|r| depth_grpc(r.get_ref())),
        _ => grpc
            .build_plan(with_key(plan_pb(body), Some(key)))
            .await
            .map(|r| plan_grpc(r.get_ref())),
    };

    if let Some(want) = &case.want_error {
        if status != 400 {
            return Err(format!("REST: expected 400, got {status}: {rest}"));
        }
        let fields = problem_fields(&rest);
        if !fields.contains(&want.field) {
            return Err(format!(
                "REST: expected an error on '{}', got {fields:?}",
                want.field
            ));
        }
        if case.rest_only {
            return Ok(());
        }
        let st = match grpc_result {
            Ok(v) => {
                return Err(format!(
                    "gRPC: expected INVALID_ARGUMENT, got an answer {v}"
                ));
            }
            Err(st) => st,
        };
        if st.code() != tonic::Code::InvalidArgument {
            return Err(format!("gRPC: expected INVALID_ARGUMENT, got {st:?}"));
        }
        let fields = bad_request_fields(&st);
        if !fields.contains(&want.field) {
            return Err(format!(
                "gRPC: expected a violation on '{}', got {fields:?}",
                want.field
            ));
        }
        return Ok(());
    }

    if status != 200 {
        return Err(format!("REST: expected 200, got {status}: {rest}"));
    }
    let got_grpc = grpc_result.map_err(|st| format!("gRPC failed: {st:?}"))?;
    let got_rest = match case.check.as_str() {
        "eligibility" => eligibility_rest(&rest),
        "contraindications" => contraindications_rest(&rest),
        "depth_limits" => depth_rest(&rest),
        _ => plan_rest(&rest),
    };
    if got_rest != got_grpc {
        return Err(format!(
            "REST and gRPC disagree:\n  REST: {got_rest}\n  gRPC: {got_grpc}"
        ));
    }
    if rest["ruleset"]["id"] != json!(case.ruleset) {
        return Err(format!(
            "expected rule set '{}', got {}",
            case.ruleset, rest["ruleset"]["id"]
        ));
    }
    if case.check == "eligibility" && rest["decision_id"].as_str().is_none_or(str::is_empty) {
        return Err("REST eligibility answer has no decision_id".into());
    }
    if let Some(want) = &case.want {
        check_headline(&case.check, want, &rest)?;
    }
    Ok(())
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

fn fired(outcome: &Value) -> Vec<String> {
    let mut n: Vec<String> = outcome["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["rule"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

fn same_number(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The scenario's expectations on an outcome (decision, date, fired rules, missing facts).
fn check_outcome(want: &Map<String, Value>, got: &Value, at: &str) -> Result<(), String> {
    for (k, w) in want {
        let ok = match k.as_str() {
            "decision" | "bookable" | "earliest_date" => &got[k] == w,
            "fired" => names(w) == fired(got),
            "missing_facts" | "missing_inputs" => names(w) == names(&got[k]),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}{k}: expected {w}, got {}", got[k]));
        }
    }
    Ok(())
}

/// The headline expectations of a scenario, checked on the REST answer (the gRPC answer is
/// identical by the comparison before).
fn check_headline(check: &str, want: &Map<String, Value>, got: &Value) -> Result<(), String> {
    match check {
        "eligibility" => check_outcome(want, got, ""),
        "contraindications" => {
            if let Some(w) = want.get("missing_inputs")
                && names(w) != names(&got["missing_inputs"])
            {
                return Err(format!(
                    "missing_inputs: expected {w}, got {}",
                    got["missing_inputs"]
                ));
            }
            if let Some(per) = want.get("results").and_then(Value::as_object) {
                for (t, w) in per {
                    let g = got["results"]
                        .as_array()
                        .and_then(|a| a.iter().find(|r| r["treatment"] == json!(t)))
                        .ok_or_else(|| format!("results.{t}: missing"))?;
                    check_outcome(
                        w.as_object().ok_or("bad case")?,
                        g,
                        &format!("results.{t}."),
                    )?;
                }
            }
            Ok(())
        }
        "depth_limits" => {
            if let Some(w) = want.get("client").and_then(Value::as_object) {
                check_outcome(w, &got["client"], "client.")?;
            }
            if let Some(per) = want.get("zones").and_then(Value::as_object) {
                for (z, w) in per {
                    let g = got["zones"]
                        .as_array()
                        .and_then(|a| a.iter().find(|r| r["zone"] == json!(z)))
                        .ok_or_else(|| format!("zones.{z}: missing"))?;
                    if let Some(max) = w.get("max_depth_mm")
                        && !same_number(max, &g["max_depth_mm"])
                    {
                        return Err(format!(
                            "zones.{z}.max_depth_mm: expected {max}, got {}",
                            g["max_depth_mm"]
                        ));
                    }
                    if let Some(b) = w.get("bound_by")
                        && names(b) != names(&g["bound_by"])
                    {
                        return Err(format!(
                            "zones.{z}.bound_by: expected {b}, got {}",
                            g["bound_by"]
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => {
            for k in ["status", "treatment", "sessions", "interval_days"] {
                if let Some(w) = want.get(k)
                    && !same_number(w, &got[k])
                {
                    return Err(format!("{k}: expected {w}, got {}", got[k]));
                }
            }
            if let Some(w) = want.get("first_session_decision")
                && &got["first_session"]["decision"] != w
            {
                return Err(format!(
                    "first_session.decision: expected {w}, got {}",
                    got["first_session"]["decision"]
                ));
            }
            if let Some(w) = want.get("schedule_dates") {
                let dates: Vec<Value> = got["schedule"]
                    .as_array()
                    .map(|a| a.iter().map(|s| s["date"].clone()).collect())
                    .unwrap_or_default();
                if &Value::Array(dates.clone()) != w {
                    return Err(format!("schedule dates: expected {w}, got {dates:?}"));
                }
            }
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_scenarios_agree_over_rest_and_grpc() {
    let server = Server::start_with_keys().expect("server starts");
    let http = http();
    let mut grpc = server.grpc().await.expect("grpc client");
    let dir = cases_dir();
    let clients: BTreeMap<String, Map<String, Value>> =
        std::fs::read_to_string(dir.join("clients.yaml"))
            .map(|t| serde_saphyr::from_str(&t).expect("clients.yaml parses"))
            .unwrap_or_default();
    let mut files = Vec::new();
    case_files(&dir, &mut files);
    assert!(
        files.len() >= 20,
        "expected the engine's scenario files under {}",
        dir.display()
    );

    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("case file");
        let case: Case = match serde_saphyr::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{}: does not parse: {e}", path.display()));
                continue;
            }
        };
        let body = request(&case, &clients);
        if let Err(e) = run_case(&server, &http, &mut grpc, &case, &body).await {
            failures.push(format!("{} ({}): {e}", case.name, path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

/// The three named scenarios of the issue, spelled out: pregnant → contraindicated; healthy and
/// fully answered → bookable; pregnancy unanswered → incomplete, asking for `pregnant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headline_decisions_over_both_protocols() {
    let server = Server::start().expect("server starts");
    let http = http();
    let mut grpc = server.grpc().await.expect("grpc client");

    let mut pregnant = healthy_facts();
    pregnant["pregnant"] = json!(true);
    let mut unanswered = healthy_facts();
    unanswered
        .as_object_mut()
        .expect("object")
        .remove("pregnant");
    let cases = [
        (pregnant, "contraindicated", false),
        (healthy_facts(), "eligible", true),
        (unanswered, "incomplete", false),
    ];
    for (facts, decision, bookable) in cases {
        let body = json!({"treatment": "microneedling", "date": "2026-12-01", "history": [], "facts": facts});
        let rest: Value = http
            .post(server.url("/v1/eligibility"))
            .json(&body)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        let g = grpc
            .check_eligibility(with_key(eligibility_pb(&body), None))
            .await
            .expect("grpc answer")
            .into_inner();
        assert_eq!(rest["decision"], json!(decision), "{rest}");
        assert_eq!(rest["bookable"], json!(bookable));
        assert_eq!(decision_name(g.decision), decision);
        assert_eq!(g.bookable, bookable);
        assert_eq!(eligibility_rest(&rest), eligibility_grpc(&g));
        if decision == "incomplete" {
            assert!(g.missing_facts.contains(&"pregnant".to_owned()));
        }
        if decision == "contraindicated" {
            assert!(g.reasons.iter().any(|r| r.rule == "pregnancy"));
        }
        assert_ne!(rest["decision_id"], json!(g.decision_id));
        assert_eq!(g.decision_id.len(), 36);
    }
}
