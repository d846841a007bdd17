//! The `RuleSetAdminService` service: the rule-set admin API of REST `/v1/rulesets` over gRPC, through
//! the same door ([`crate::app::admin`]: scope `admin` for the key's own clinic, `platform` for
//! the rest). Errors map as every error does ([`super::status`]); without Redis every method is
//! FAILED_PRECONDITION.

use std::sync::Arc;

use protocol_engine::Format;
use tonic::{Code, Request, Response, Status};

use super::pb;
use super::pb::rule_set_admin_service_server::RuleSetAdminService;
use super::status::{IntoStatus, status};
use crate::app::admin::{ExpectedCurrent, Moved};
use crate::app::{App, AppError, TrafficPreview};
use crate::auth::{Caller, Scope};
use crate::store::{Approval, Guard, MoveOutcome, Rollback, StoreError, VersionInfo};

/// The service implementation; cheap to clone.
#[derive(Clone)]
pub struct AdminService {
    app: App,
}

impl AdminService {
    pub fn new(app: App) -> Self {
        Self { app }
    }

    /// The caller of a request, authenticated at the door for `admin`.
    fn caller<T>(&self, request: &Request<T>) -> Result<Arc<Caller>, Status> {
        let credential = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        self.app
            .authenticate(credential, Scope::Admin)
            .map_err(status)
    }
}

fn versions(id: String, versions: Vec<VersionInfo>) -> pb::RuleSetVersions {
    let active = versions.iter().find(|v| v.active);
    #[expect(
        deprecated,
        reason = "the flat fields stay set for clients that read them (issue 25: one shape, `active`)"
    )]
    pb::RuleSetVersions {
        active_version: active.map(|v| v.version.clone()),
        active_digest: active.map(|v| v.digest.clone()),
        active: active.map(|v| pb::ActiveVersion {
            version: v.version.clone(),
            digest: v.digest.clone(),
        }),
        versions: versions
            .iter()
            .map(|v| pb::RuleSetVersionInfo {
                version: v.version.clone(),
                digest: v.digest.clone(),
                published_at: rfc3339(v.published_at_ms),
                active: v.active,
                ever_active: v.ever_active,
                retired_at: v.retired_at_ms.map(rfc3339),
                loosening: v.loosening.as_ref().map(|l| pb::Loosening {
                    reason: l.reason.clone(),
                    approved_by: l.approved_by.clone(),
                }),
            })
            .collect(),
        id,
    }
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The `idempotency-key` metadata of a rollback: at most one, 1 to 255 visible ASCII characters.
fn idempotency_key<T>(request: &Request<T>) -> Result<Option<String>, Status> {
    let values = request.metadata().get_all("idempotency-key");
    crate::app::admin::idempotency_key(values.iter().map(|v| v.as_bytes()), "idempotency-key")
        .map_err(status)
}

fn activated(
    Moved {
        outcome: m,
        traffic,
    }: Moved,
) -> pb::ActivateRuleSetResponse {
    let (impact, loosenings) = impact(&m);
    let a = m.activated;
    pb::ActivateRuleSetResponse {
        id: a.id,
        version: a.version,
        digest: a.digest,
        previous: a.previous,
        dry_run: m.dry_run,
        impact,
        loosenings,
        traffic: traffic.map(traffic_pb),
    }
}

fn rolled_back(
    Moved {
        outcome: m,
        traffic,
    }: Moved,
) -> pb::RollbackRuleSetResponse {
    let (impact, loosenings) = impact(&m);
    let a = m.activated;
    pb::RollbackRuleSetResponse {
        id: a.id,
        version: a.version,
        digest: a.digest,
        previous: a.previous,
        dry_run: m.dry_run,
        impact,
        loosenings,
        traffic: traffic.map(traffic_pb),
    }
}

/// A dry run's impact on logged traffic (as REST answers it).
fn traffic_pb(t: TrafficPreview) -> pb::TrafficPreview {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    pb::TrafficPreview {
        sample_per_clinic: t.sample_per_clinic,
        error: t.error,
        clinics: t
            .clinics
            .into_iter()
            .map(|c| pb::ClinicTraffic {
                ruleset: c.ruleset,
                clinic: c.clinic,
                decisions: n(c.decisions),
                changed: n(c.changed),
                outcomes: c
                    .outcomes
                    .into_iter()
                    .map(|o| pb::OutcomeShift {
                        from_outcome: o.from,
                        to_outcome: o.to,
                        count: n(o.count),
                    })
                    .collect(),
                deeper: n(c.deeper),
                shallower: n(c.shallower),
                not_replayable: n(c.not_replayable),
            })
            .collect(),
    }
}

/// What a move changes per rule set, and the digest of its loosenings (as REST answers them).
fn impact(m: &MoveOutcome) -> (Vec<pb::RuleSetImpact>, Option<String>) {
    let impact = m
        .effect
        .rulesets
        .iter()
        .map(|r| {
            use protocol_engine::diff::Direction;
            let count = |d| u32::try_from(r.count(d)).unwrap_or(u32::MAX);
            pb::RuleSetImpact {
                ruleset: r.ruleset.clone(),
                from_version: r.from.clone(),
                to_version: r.to.clone(),
                looser: count(Direction::Looser),
                tighter: count(Direction::Tighter),
                neutral: count(Direction::Neutral),
                changes: r
                    .changes
                    .iter()
                    .map(|c| pb::ImpactChange {
                        area: c.area.as_str().to_owned(),
                        subject: c.subject.clone(),
                        aspect: c.aspect.clone(),
                        direction: c.direction.as_str().to_owned(),
                        old_value: c.old.clone(),
                        new_value: c.new.clone(),
                        path: c.path.clone(),
                        line: c.line,
                    })
                    .collect(),
            }
        })
        .collect();
    (impact, m.effect.loosenings_digest())
}

/// The guard of a gRPC move: its approval, if any, and whether it is a dry run.
fn guard(approval: Option<pb::LooseningApproval>, dry_run: bool) -> Guard {
    Guard {
        approval: approval.map(|a| Approval {
            reason: a.reason,
            approver: a.approver,
            loosenings: a.loosenings,
        }),
        dry_run,
    }
}

/// A publish conflict is ALREADY_EXISTS (the version exists with other content); every other
/// failure maps as everywhere.
fn publish_status(e: AppError) -> Status {
    let conflict = matches!(e, AppError::Store(StoreError::Conflict { .. }));
    let status = status(e);
    if conflict {
        Status::with_details(
            Code::AlreadyExists,
            status.message(),
            status.details().to_vec().into(),
        )
    } else {
        status
    }
}

#[tonic::async_trait]
impl RuleSetAdminService for AdminService {
    async fn publish_rule_set(
        &self,
        request: Request<pb::PublishRuleSetRequest>,
    ) -> Result<Response<pb::PublishRuleSetResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let format = match pb::DocumentFormat::try_from(req.format) {
            Ok(pb::DocumentFormat::Json) => Format::Json,
            _ => Format::Yaml,
        };
        let published = self
            .app
            .publish(&caller, &req.document, format)
            .await
            .map_err(publish_status)?;
        Ok(Response::new(pb::PublishRuleSetResponse {
            id: published.id,
            version: published.version,
            digest: published.digest,
            created: published.created,
        }))
    }

    async fn list_rule_sets(
        &self,
        request: Request<pb::ListRuleSetsRequest>,
    ) -> Result<Response<pb::ListRuleSetsResponse>, Status> {
        let caller = self.caller(&request)?;
        let rulesets = self
            .app
            .list(&caller)
            .await
            .map_err(status)?
            .into_iter()
            .map(|(id, v)| versions(id, v))
            .collect();
        Ok(Response::new(pb::ListRuleSetsResponse { rulesets }))
    }

    async fn list_rule_set_versions(
        &self,
        request: Request<pb::ListRuleSetVersionsRequest>,
    ) -> Result<Response<pb::ListRuleSetVersionsResponse>, Status> {
        let caller = self.caller(&request)?;
        let id = request.into_inner().id;
        let list = self.app.versions(&caller, &id).await.map_err(status)?;
        let v = versions(id, list);
        #[expect(
            deprecated,
            reason = "the flat fields stay set for clients that read them"
        )]
        let answer = pb::ListRuleSetVersionsResponse {
            id: v.id,
            active_version: v.active_version,
            active_digest: v.active_digest,
            versions: v.versions,
            active: v.active,
        };
        Ok(Response::new(answer))
    }

    async fn get_rule_set_version(
        &self,
        request: Request<pb::GetRuleSetVersionRequest>,
    ) -> Result<Response<pb::GetRuleSetVersionResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let stored = self
            .app
            .version(&caller, &req.id, &req.version)
            .await
            .map_err(status)?;
        let f = stored.fetched;
        Ok(Response::new(pb::GetRuleSetVersionResponse {
            active: stored.active,
            id: f.id,
            version: f.version,
            digest: f.digest,
            document_json: f.json,
        }))
    }

    async fn activate_rule_set(
        &self,
        request: Request<pb::ActivateRuleSetRequest>,
    ) -> Result<Response<pb::ActivateRuleSetResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let expected = match (req.expected_current, req.expect_none_active) {
            (Some(_), true) => {
                return Err(AppError::Contradiction {
                    field: "expect_none_active".into(),
                    message: "set either `expected_current` or `expect_none_active`, not both: \
                              they contradict each other"
                        .into(),
                }
                .into_status());
            }
            (Some(v), false) => ExpectedCurrent::Version(v),
            (None, true) => ExpectedCurrent::None,
            (None, false) => ExpectedCurrent::Unchecked,
        };
        let guard = guard(req.approval, req.dry_run);
        let m = self
            .app
            .activate(&caller, &req.id, &req.version, expected, &guard)
            .await
            .map_err(status)?;
        Ok(Response::new(activated(m)))
    }

    async fn rollback_rule_set(
        &self,
        request: Request<pb::RollbackRuleSetRequest>,
    ) -> Result<Response<pb::RollbackRuleSetResponse>, Status> {
        let caller = self.caller(&request)?;
        let idempotency_key = idempotency_key(&request)?;
        let req = request.into_inner();
        let rollback = Rollback {
            to_version: req.to_version,
            expected_current: req.expected_current,
            idempotency_key,
        };
        let guard = guard(req.approval, req.dry_run);
        let m = self
            .app
            .rollback(&caller, &req.id, &rollback, &guard)
            .await
            .map_err(status)?;
        Ok(Response::new(rolled_back(m)))
    }

    async fn get_rule_set_history(
        &self,
        request: Request<pb::GetRuleSetHistoryRequest>,
    ) -> Result<Response<pb::GetRuleSetHistoryResponse>, Status> {
        let caller = self.caller(&request)?;
        let id = request.into_inner().id;
        let history = self.app.history(&caller, &id).await.map_err(status)?;
        Ok(Response::new(pb::GetRuleSetHistoryResponse {
            history: history
                .into_iter()
                .map(|e| pb::RuleSetActivation {
                    at: rfc3339(e.at_ms),
                    version: e.version,
                    digest: e.digest,
                    by: e.by,
                    previous: e.previous,
                    action: e.action,
                    effect: e.effect,
                    approval: e.approval.map(|a| pb::LooseningApproval {
                        reason: a.reason,
                        approver: a.approver,
                        loosenings: a.loosenings,
                    }),
                })
                .collect(),
            id,
        }))
    }

    async fn retire_rule_set_version(
        &self,
        request: Request<pb::RetireRuleSetVersionRequest>,
    ) -> Result<Response<pb::RetireRuleSetVersionResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let r = self
            .app
            .retire(&caller, &req.id, &req.version)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RetireRuleSetVersionResponse {
            retired_at: rfc3339(r.at_ms),
            id: r.id,
            version: r.version,
            digest: r.digest,
            by: r.by,
        }))
    }
}
