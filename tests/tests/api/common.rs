//! Helpers shared by the test modules: HTTP client, gRPC request builders from the same JSON the
//! REST tests send, and projections of REST and gRPC answers onto one comparable shape.

use protocol_tests::fixtures::bearer;
pub use protocol_tests::fixtures::healthy_facts;
use protocol_tests::pb;
use serde_json::{Value, json};

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// A gRPC request with a bearer key.
pub fn with_key<T>(msg: T, key: Option<&str>) -> tonic::Request<T> {
    match key {
        Some(key) => bearer(msg, key),
        None => tonic::Request::new(msg),
    }
}

/// The `field`s of a problem+json body.
pub fn problem_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The field violations of a gRPC status's `google.rpc.BadRequest`.
pub fn bad_request_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

pub use protocol_tests::json_pb::*;

// ---- projections: one comparable shape for both protocols --------------------------------------

/// `DECISION_ELIGIBLE_WITH_PRECAUTIONS` → `eligible_with_precautions`.
pub fn decision_name(d: i32) -> String {
    pb::Decision::try_from(d)
        .map(|d| {
            d.as_str_name()
                .trim_start_matches("DECISION_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown({d})"))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn rest_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn ruleset_rest(v: &Value) -> Value {
    json!({"id": v["id"], "version": v["version"], "digest": v["digest"]})
}

fn ruleset_grpc(r: &Option<pb::RuleSetRef>) -> Value {
    match r {
        Some(r) => json!({"id": r.id, "version": r.version, "digest": r.digest}),
        None => Value::Null,
    }
}

fn outcome_rest(v: &Value) -> Value {
    json!({
        "decision": v["decision"],
        "bookable": v["bookable"],
        "reasons": v["reasons"].as_array().map(|a| a.iter().map(|r| json!({
            "rule": r["rule"], "effect": r["effect"], "severity": r["severity"],
            "evidence": r["evidence"], "until": r.get("until").cloned().unwrap_or(Value::Null),
            "sources": r["sources"].as_array().map(|s| s.iter().map(|s| s["id"].clone()).collect::<Vec<_>>()),
        })).collect::<Vec<_>>()),
        "missing_facts": sorted(rest_strings(&v["missing_facts"])),
        "missing_inputs": sorted(rest_strings(&v["missing_inputs"])),
        "precautions": v["precautions"].as_array().map(|a| a.iter().map(|p| json!({
            "rule": p["rule"],
            "depth_cap_mm": p.get("depth_cap_mm").cloned().unwrap_or(Value::Null),
            "zones": rest_strings(&p["zones"]),
            "instructions": p["instructions"],
        })).collect::<Vec<_>>()),
    })
}

fn reasons_grpc(reasons: &[pb::Reason]) -> Value {
    reasons
        .iter()
        .map(|r| {
            json!({
                "rule": r.rule, "effect": r.effect, "severity": r.severity, "evidence": r.evidence,
                "until": r.until,
                "sources": r.sources.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn precautions_grpc(ps: &[pb::Precaution]) -> Value {
    ps.iter()
        .map(|p| {
            json!({
                "rule": p.rule, "depth_cap_mm": p.depth_cap_mm, "zones": p.zones,
                "instructions": p.instructions,
            })
        })
        .collect()
}

pub fn eligibility_rest(v: &Value) -> Value {
    let mut o = outcome_rest(v);
    o["earliest_date"] = v["earliest_date"].clone();
    o["ruleset"] = ruleset_rest(&v["ruleset"]);
    o
}

pub fn eligibility_grpc(e: &pb::CheckEligibilityResponse) -> Value {
    json!({
        "decision": decision_name(e.decision),
        "bookable": e.bookable,
        "reasons": reasons_grpc(&e.reasons),
        "missing_facts": sorted(e.missing_facts.clone()),
        "missing_inputs": sorted(e.missing_inputs.clone()),
        "precautions": precautions_grpc(&e.precautions),
        "earliest_date": e.earliest_date,
        "ruleset": ruleset_grpc(&e.ruleset),
    })
}

fn outcome_grpc(o: &pb::TreatmentOutcome) -> Value {
    json!({
        "decision": decision_name(o.decision),
        "bookable": o.bookable,
        "reasons": reasons_grpc(&o.reasons),
        "missing_facts": sorted(o.missing_facts.clone()),
        "missing_inputs": sorted(o.missing_inputs.clone()),
        "precautions": precautions_grpc(&o.precautions),
    })
}

pub fn contraindications_rest(v: &Value) -> Value {
    json!({
        "results": v["results"].as_array().map(|a| a.iter().map(|r| {
            let mut o = outcome_rest(r);
            o["treatment"] = r["treatment"].clone();
            o
        }).collect::<Vec<_>>()),
        "missing_facts": sorted(rest_strings(&v["missing_facts"])),
        "missing_inputs": sorted(rest_strings(&v["missing_inputs"])),
        "not_evaluated": sorted(rest_strings(&v["not_evaluated"])),
        "ruleset": ruleset_rest(&v["ruleset"]),
    })
}

pub fn contraindications_grpc(r: &pb::CheckContraindicationsResponse) -> Value {
    json!({
        "results": r.results.iter().map(|o| {
            let mut v = outcome_grpc(o);
            v["treatment"] = json!(o.treatment);
            v
        }).collect::<Vec<_>>(),
        "missing_facts": sorted(r.missing_facts.clone()),
        "missing_inputs": sorted(r.missing_inputs.clone()),
        "not_evaluated": sorted(r.not_evaluated.clone()),
        "ruleset": ruleset_grpc(&r.ruleset),
    })
}

pub fn depth_rest(v: &Value) -> Value {
    json!({
        "zones": v["zones"].as_array().map(|a| a.iter().map(|z| json!({
            "zone": z["zone"], "max_depth_mm": z["max_depth_mm"], "bound_by": z["bound_by"],
        })).collect::<Vec<_>>()),
        "client": v.get("client").map(outcome_rest).unwrap_or(Value::Null),
        "ruleset": ruleset_rest(&v["ruleset"]),
    })
}

pub fn depth_grpc(d: &pb::GetDepthLimitsResponse) -> Value {
    json!({
        "zones": d.zones.iter().map(|z| json!({
            "zone": z.zone, "max_depth_mm": z.max_depth_mm, "bound_by": z.bound_by,
        })).collect::<Vec<_>>(),
        "client": d.client.as_ref().map(outcome_grpc).unwrap_or(Value::Null),
        "ruleset": ruleset_grpc(&d.ruleset),
    })
}

pub fn plan_rest(v: &Value) -> Value {
    json!({
        "status": v["status"], "treatment": v["treatment"], "sessions": v["sessions"],
        "session_minutes": v.get("session_minutes").cloned().unwrap_or(Value::Null),
        "interval_days": v["interval_days"],
        "schedule": v["schedule"].as_array().map(|a| a.iter().map(|s| json!({
            "number": s["number"], "date": s["date"],
            "zones": s["zones"].as_array().map(|z| z.iter().map(|z| json!({
                "zone": z["zone"], "depth_mm": z["depth_mm"], "max_depth_mm": z["max_depth_mm"],
            })).collect::<Vec<_>>()),
        })).collect::<Vec<_>>()),
        "precare": v["precare"],
        "results": v["results"].as_array().map(|a| a.iter().map(|m| json!({"milestone": m["milestone"], "date": m["date"]})).collect::<Vec<_>>()),
        "first_session": eligibility_rest(&v["first_session"]),
        "blocked_session": v.get("blocked_session").map(|b| json!({
            "number": b["number"], "eligibility": eligibility_rest(&b["eligibility"]),
        })).unwrap_or(Value::Null),
        "ruleset": ruleset_rest(&v["ruleset"]),
    })
}

pub fn plan_grpc(p: &pb::BuildPlanResponse) -> Value {
    let status = pb::PlanStatus::try_from(p.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("PLAN_STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    json!({
        "status": status, "treatment": p.treatment, "sessions": p.sessions,
        "session_minutes": p.session_minutes.as_ref().map(|m| json!({"min": m.min, "max": m.max})),
        "interval_days": p.interval_days,
        "schedule": p.schedule.iter().map(|s| json!({
            "number": s.number, "date": s.date,
            "zones": s.zones.iter().map(|z| json!({
                "zone": z.zone, "depth_mm": z.depth_mm, "max_depth_mm": z.max_depth_mm,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "precare": p.precare,
        "results": p.results.iter().map(|m| json!({"milestone": m.milestone, "date": m.date})).collect::<Vec<_>>(),
        "first_session": p.first_session.as_ref().map(eligibility_grpc).unwrap_or(Value::Null),
        "blocked_session": p.blocked_session.as_ref().map(|b| json!({
            "number": b.number,
            "eligibility": b.eligibility.as_ref().map(eligibility_grpc).unwrap_or(Value::Null),
        })).unwrap_or(Value::Null),
        "ruleset": ruleset_grpc(&p.ruleset),
    })
}

/// Polls `f` every 50 ms until it is true (`Some`) or `bound` passes (`None`).
pub async fn within<F, Fut>(bound: std::time::Duration, mut f: F) -> Option<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < bound {
        if f().await {
            return Some(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

/// Reads until the server closes the connection (EOF or reset); `false` if it is still open after
/// `bound`.
pub async fn closed_within(mut s: tokio::net::TcpStream, bound: std::time::Duration) -> bool {
    closes(&mut s, bound).await
}

/// [`closed_within`], keeping the stream (what the server sends meanwhile is read and dropped).
pub async fn closes(s: &mut tokio::net::TcpStream, bound: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(bound, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}
