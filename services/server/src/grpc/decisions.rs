//! The `DecisionLogService` service: the decision log of REST `/v1/decisions` over gRPC, through
//! the same door ([`crate::app::App::decision`]: scope `audit`, the caller's clinic only).

use prost_types::value::Kind;
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::pb;
use super::pb::decision_log_service_server::DecisionLogService;
use super::status::status;
use crate::app::{AnswerChange, App, ChangeKind, ReplayAgainst, ReplaySide};
use crate::auth::Scope;

/// The service implementation; cheap to clone.
#[derive(Clone)]
pub struct DecisionsService {
    app: App,
}

impl DecisionsService {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl DecisionLogService for DecisionsService {
    async fn get_decision(
        &self,
        request: Request<pb::GetDecisionRequest>,
    ) -> Result<Response<pb::GetDecisionResponse>, Status> {
        let credential = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        let caller = self
            .app
            .authenticate(credential, Scope::Audit)
            .map_err(status)?;
        let d = self
            .app
            .decision(&caller, &request.get_ref().decision_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetDecisionResponse {
            decision_id: d.decision_id,
            decided_at: d.decided_at,
            clinic: d.clinic.unwrap_or_default(),
            key_id: d.key_id.unwrap_or_default(),
            operation: d.operation,
            ruleset: Some(pb::RuleSetRef {
                id: d.ruleset_id,
                version: d.ruleset_version,
                digest: d.ruleset_digest,
                base: None,
            }),
            treatment: d.treatment,
            decision: d.decision,
            request: Some(pb_struct(d.request)),
            answer: Some(pb_struct(d.answer)),
            masked_facts: d.masked_facts.into_iter().collect(),
        }))
    }

    async fn replay_decision(
        &self,
        request: Request<pb::ReplayDecisionRequest>,
    ) -> Result<Response<pb::ReplayDecisionResponse>, Status> {
        let credential = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        let caller = self
            .app
            .authenticate(credential, Scope::Audit)
            .map_err(status)?;
        let req = request.get_ref();
        let against = ReplayAgainst {
            ruleset_version: req.ruleset_version.clone(),
            ruleset_digest: req.ruleset_digest.clone(),
        };
        let r = self
            .app
            .replay_decision(&caller, &req.decision_id, &against)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ReplayDecisionResponse {
            decision_id: r.decision_id,
            operation: r.operation,
            treatment: r.treatment,
            original: Some(side(r.original)),
            replayed: Some(side(r.replayed)),
            masked_facts: r.masked_facts.into_iter().collect(),
            changed: r.changed,
            changes: r.changes.into_iter().map(change).collect(),
        }))
    }
}

fn side(s: ReplaySide) -> pb::ReplaySide {
    pb::ReplaySide {
        ruleset: Some(super::convert::ruleset(&s.ruleset)),
        decision: s.decision,
        answer: Some(pb_struct(s.answer)),
    }
}

fn change(c: AnswerChange) -> pb::AnswerChange {
    let kind = match c.change {
        ChangeKind::Added => pb::AnswerChangeKind::Added,
        ChangeKind::Removed => pb::AnswerChangeKind::Removed,
        ChangeKind::Changed => pb::AnswerChangeKind::Changed,
    };
    pb::AnswerChange {
        path: c.path,
        change: kind as i32,
        before: c.before.map(pb_value),
        after: c.after.map(pb_value),
    }
}

/// A JSON object as a `google.protobuf.Struct` (anything else: an empty one).
fn pb_struct(v: Value) -> prost_types::Struct {
    let Value::Object(map) = v else {
        return prost_types::Struct::default();
    };
    prost_types::Struct {
        fields: map.into_iter().map(|(k, v)| (k, pb_value(v))).collect(),
    }
}

fn pb_value(v: Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(pb_value).collect(),
        }),
        obj @ Value::Object(_) => Kind::StructValue(pb_struct(obj)),
    };
    prost_types::Value { kind: Some(kind) }
}
