//! The `RuleSetAdmin` service: the rule-set admin API of REST `/v1/rulesets` over gRPC, scope
//! `admin`, on the same [`RuleSetStore`] calls. Status mapping in [`status::store`]; without
//! Redis every method is FAILED_PRECONDITION.

use std::sync::Arc;

use protocol_engine::Format;
use tonic::{Code, Request, Response, Status};

use super::pb::rule_set_admin_server::RuleSetAdmin;
use super::{pb, status};
use crate::auth::{Caller, Scope};
use crate::context::Context;
use crate::store::{Activated, Expected, RuleSetStore, StoreError, VersionInfo};

/// The service implementation; cheap to clone.
#[derive(Clone)]
pub struct AdminService {
    ctx: Context,
}

impl AdminService {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Authenticates (scope `admin`) and hands out the store.
    fn authorize<T>(&self, request: &Request<T>) -> Result<(Arc<Caller>, &RuleSetStore), Status> {
        let credential = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        let caller = self
            .ctx
            .keys
            .authorize(credential, Scope::Admin)
            .map_err(status::auth)?;
        let store = self.ctx.store.as_deref().ok_or_else(status::no_store)?;
        Ok((caller, store))
    }
}

fn versions(id: String, versions: Vec<VersionInfo>) -> pb::RuleSetVersions {
    let active = versions.iter().find(|v| v.active);
    pb::RuleSetVersions {
        active_version: active.map(|v| v.version.clone()),
        active_digest: active.map(|v| v.digest.clone()),
        versions: versions
            .iter()
            .map(|v| pb::RuleSetVersionInfo {
                version: v.version.clone(),
                digest: v.digest.clone(),
                published_at: jiff::Timestamp::from_millisecond(v.published_at_ms)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                active: v.active,
            })
            .collect(),
        id,
    }
}

fn activated(a: Activated) -> pb::ActivatedRuleSet {
    tracing::info!(
        id = %a.id,
        version = %a.version,
        digest = %a.digest,
        previous = a.previous.as_deref().unwrap_or(""),
        "rule set activated"
    );
    pb::ActivatedRuleSet {
        id: a.id,
        version: a.version,
        digest: a.digest,
        previous: a.previous,
    }
}

#[tonic::async_trait]
impl RuleSetAdmin for AdminService {
    async fn publish_rule_set(
        &self,
        request: Request<pb::PublishRuleSetRequest>,
    ) -> Result<Response<pb::PublishRuleSetResponse>, Status> {
        let (_caller, store) = self.authorize(&request)?;
        let req = request.into_inner();
        let format = match pb::DocumentFormat::try_from(req.format) {
            Ok(pb::DocumentFormat::Json) => Format::Json,
            _ => Format::Yaml,
        };
        let published = store
            .publish_text(&req.document, format)
            .await
            .map_err(|e| status::store(e, Code::AlreadyExists))?;
        tracing::info!(
            id = %published.id,
            version = %published.version,
            digest = %published.digest,
            created = published.created,
            "rule set published"
        );
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
        let (_caller, store) = self.authorize(&request)?;
        let fail = |e| status::store(e, Code::Aborted);
        let mut rulesets = Vec::new();
        for id in store.list_ids().await.map_err(fail)? {
            match store.list_versions(&id).await {
                Ok(v) => rulesets.push(versions(id, v)),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(fail(e)),
            }
        }
        Ok(Response::new(pb::ListRuleSetsResponse { rulesets }))
    }

    async fn list_rule_set_versions(
        &self,
        request: Request<pb::ListRuleSetVersionsRequest>,
    ) -> Result<Response<pb::RuleSetVersions>, Status> {
        let (_caller, store) = self.authorize(&request)?;
        let id = request.into_inner().id;
        let list = store
            .list_versions(&id)
            .await
            .map_err(|e| status::store(e, Code::Aborted))?;
        Ok(Response::new(versions(id, list)))
    }

    async fn get_rule_set_version(
        &self,
        request: Request<pb::GetRuleSetVersionRequest>,
    ) -> Result<Response<pb::RuleSetDocument>, Status> {
        let (_caller, store) = self.authorize(&request)?;
        let req = request.into_inner();
        let fail = |e| status::store(e, Code::Aborted);
        let fetched = store.fetch(&req.id, &req.version).await.map_err(fail)?;
        let active = store.active_versions().await.map_err(fail)?;
        Ok(Response::new(pb::RuleSetDocument {
            active: active.get(&fetched.id) == Some(&fetched.version),
            id: fetched.id,
            version: fetched.version,
            digest: fetched.digest,
            document_json: fetched.json,
        }))
    }

    async fn activate_rule_set(
        &self,
        request: Request<pb::ActivateRuleSetRequest>,
    ) -> Result<Response<pb::ActivatedRuleSet>, Status> {
        let (_caller, store) = self.authorize(&request)?;
        let req = request.into_inner();
        let expected = match (req.expected_current, req.expect_none_active) {
            (Some(v), _) => Expected::Version(v),
            (None, true) => Expected::Absent,
            (None, false) => Expected::Any,
        };
        let a = store
            .activate(&req.id, &req.version, expected)
            .await
            .map_err(|e| status::store(e, Code::Aborted))?;
        Ok(Response::new(activated(a)))
    }

    async fn rollback_rule_set(
        &self,
        request: Request<pb::RollbackRuleSetRequest>,
    ) -> Result<Response<pb::ActivatedRuleSet>, Status> {
        let (_caller, store) = self.authorize(&request)?;
        let req = request.into_inner();
        let a = store
            .rollback(
                &req.id,
                req.to_version.as_deref(),
                req.expected_current.as_deref(),
            )
            .await
            .map_err(|e| status::store(e, Code::Aborted))?;
        Ok(Response::new(activated(a)))
    }
}
