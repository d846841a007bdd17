//! Protobuf requests built from the JSON bodies REST clients send, so one scenario (or one load
//! body) drives both protocols with the same content.

use prost_types::value::Kind;
use serde_json::{Map, Value};

use crate::pb;

pub fn pb_value(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(pb_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(pb_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

pub fn pb_struct(o: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: o.iter().map(|(k, v)| (k.clone(), pb_value(v))).collect(),
    }
}

fn facts(req: &Value) -> Option<prost_types::Struct> {
    req.get("facts").and_then(Value::as_object).map(pb_struct)
}

fn string(req: &Value, key: &str) -> String {
    req[key].as_str().unwrap_or_default().to_owned()
}

fn opt(req: &Value, key: &str) -> Option<String> {
    req.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn strings(req: &Value, key: &str) -> Vec<String> {
    req.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `history` as sent: absent stays unset (a required history is then refused, as in REST).
fn history(req: &Value) -> Option<pb::HistoryList> {
    req.get("history").map(|h| pb::HistoryList {
        entries: h
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|h| pb::HistoryEntry {
                        procedure: string(h, "procedure"),
                        date: string(h, "date"),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub fn eligibility_pb(req: &Value) -> pb::CheckEligibilityRequest {
    pb::CheckEligibilityRequest {
        explain: req.get("explain").and_then(Value::as_bool).unwrap_or(false),
        ruleset_version: opt(req, "ruleset_version"),
        ruleset_digest: opt(req, "ruleset_digest"),
        treatment: string(req, "treatment"),
        date: string(req, "date"),
        facts: facts(req),
        questionnaire_response_json: req.get("questionnaire_response").map(Value::to_string),
        history: history(req),
        zones: strings(req, "zones"),
        device: opt(req, "device"),
        role: opt(req, "role"),
        indication: opt(req, "indication"),
    }
}

pub fn contraindication_pb(req: &Value) -> pb::CheckContraindicationsRequest {
    pb::CheckContraindicationsRequest {
        explain: req.get("explain").and_then(Value::as_bool).unwrap_or(false),
        ruleset_version: opt(req, "ruleset_version"),
        ruleset_digest: opt(req, "ruleset_digest"),
        treatments: strings(req, "treatments"),
        facts: facts(req),
        questionnaire_response_json: req.get("questionnaire_response").map(Value::to_string),
        date: opt(req, "date"),
        history: history(req),
    }
}

pub fn depth_pb(req: &Value) -> pb::GetDepthLimitsRequest {
    pb::GetDepthLimitsRequest {
        explain: req.get("explain").and_then(Value::as_bool).unwrap_or(false),
        ruleset_version: opt(req, "ruleset_version"),
        ruleset_digest: opt(req, "ruleset_digest"),
        treatment: string(req, "treatment"),
        device: string(req, "device"),
        role: string(req, "role"),
        zone: opt(req, "zone"),
        indication: opt(req, "indication"),
        facts: facts(req),
        date: opt(req, "date"),
        history: history(req),
        questionnaire_response_json: req.get("questionnaire_response").map(Value::to_string),
    }
}

/// The watch form of a depth-limits request (no etag to resume from).
pub fn watch_depth_pb(req: &Value) -> pb::WatchDepthLimitsRequest {
    depth_pb(req).into()
}

/// A calendar (`POST /v1/eligibility:calendar` body) as its gRPC request.
pub fn calendar_pb(req: &Value) -> pb::CheckEligibilityCalendarRequest {
    pb::CheckEligibilityCalendarRequest {
        explain: req.get("explain").and_then(Value::as_bool).unwrap_or(false),
        ruleset_version: opt(req, "ruleset_version"),
        ruleset_digest: opt(req, "ruleset_digest"),
        facts: facts(req),
        questionnaire_response_json: req.get("questionnaire_response").map(Value::to_string),
        history: history(req),
        slots: req
            .get("slots")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|s| pb::CalendarSlot {
                        treatment: string(s, "treatment"),
                        date: string(s, "date"),
                        zones: strings(s, "zones"),
                        device: opt(s, "device"),
                        role: opt(s, "role"),
                        indication: opt(s, "indication"),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

pub fn plan_pb(req: &Value) -> pb::BuildPlanRequest {
    pb::BuildPlanRequest {
        ruleset_version: opt(req, "ruleset_version"),
        ruleset_digest: opt(req, "ruleset_digest"),
        indication: string(req, "indication"),
        zones: strings(req, "zones"),
        facts: facts(req),
        history: history(req),
        start_date: string(req, "start_date"),
        role: string(req, "role"),
        device: opt(req, "device"),
        treatment: opt(req, "treatment"),
        questionnaire_response_json: req.get("questionnaire_response").map(Value::to_string),
    }
}
