//! The `TreatmentProtocol` service: each method authenticates (scope as in REST), converts the
//! request to the engine's type, asks the engine, converts the answer. Same rule set, same
//! decisions as REST.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::pb::treatment_protocol_server::TreatmentProtocol;
use super::{convert, pb, status, watch};
use crate::auth::{Caller, Scope};
use crate::context::{Context, MAX_BATCH, check_batch, new_decision_id, prefixed};
use protocol_engine::{FieldViolation, RequestError};

/// The service implementation; cheap to clone.
#[derive(Clone)]
pub struct ProtocolService {
    ctx: Context,
}

impl ProtocolService {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    fn authorize<T>(&self, request: &Request<T>, scope: Scope) -> Result<Arc<Caller>, Status> {
        let credential = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        self.ctx
            .keys
            .authorize(credential, scope)
            .map_err(status::auth)
    }

    /// Runs `f` on the caller's rule set.
    fn with_ruleset<R>(
        &self,
        caller: &Caller,
        f: impl FnOnce(&protocol_engine::RuleSet) -> Result<R, RequestError>,
    ) -> Result<R, Status> {
        let catalog = self.ctx.catalog();
        let rs = Context::ruleset(&catalog, caller).map_err(status::no_ruleset)?;
        f(rs).map_err(status::invalid)
    }
}

#[tonic::async_trait]
impl TreatmentProtocol for ProtocolService {
    async fn check_eligibility(
        &self,
        request: Request<pb::EligibilityRequest>,
    ) -> Result<Response<pb::Eligibility>, Status> {
        let caller = self.authorize(&request, Scope::Eligibility)?;
        self.ctx.check_fresh().map_err(status::stale)?;
        let req = convert::eligibility_request(request.into_inner()).map_err(status::invalid)?;
        let answer = self.with_ruleset(&caller, |rs| crate::observe::eligibility(rs, &req))?;
        Ok(Response::new(convert::eligibility(
            &answer,
            new_decision_id(),
        )))
    }

    async fn check_eligibility_batch(
        &self,
        request: Request<pb::EligibilityBatchRequest>,
    ) -> Result<Response<pb::EligibilityBatchResponse>, Status> {
        let caller = self.authorize(&request, Scope::Eligibility)?;
        self.ctx.check_fresh().map_err(status::stale)?;
        let checks = request.into_inner().checks;
        if checks.len() > MAX_BATCH {
            return Err(status::invalid(RequestError::field(
                "checks",
                format!("at most {MAX_BATCH} checks per batch, got {}", checks.len()),
            )));
        }
        let mut reqs = Vec::with_capacity(checks.len());
        let mut violations = Vec::new();
        for (i, check) in checks.into_iter().enumerate() {
            match convert::eligibility_request(check) {
                Ok(r) => reqs.push(r),
                Err(e) => violations.extend(e.violations.into_iter().map(|v| FieldViolation {
                    field: prefixed(&format!("checks[{i}]"), &v.field),
                    message: v.message,
                })),
            }
        }
        if !violations.is_empty() {
            return Err(status::invalid(RequestError { violations }));
        }
        let answers = self.with_ruleset(&caller, |rs| check_batch(rs, &reqs))?;
        Ok(Response::new(pb::EligibilityBatchResponse {
            results: answers
                .iter()
                .map(|e| convert::eligibility(e, new_decision_id()))
                .collect(),
        }))
    }

    async fn check_contraindications(
        &self,
        request: Request<pb::ContraindicationRequest>,
    ) -> Result<Response<pb::ContraindicationReport>, Status> {
        let caller = self.authorize(&request, Scope::Eligibility)?;
        self.ctx.check_fresh().map_err(status::stale)?;
        let req =
            convert::contraindication_request(request.into_inner()).map_err(status::invalid)?;
        let report =
            self.with_ruleset(&caller, |rs| crate::observe::contraindications(rs, &req))?;
        Ok(Response::new(convert::contraindication_report(&report)))
    }

    async fn get_depth_limits(
        &self,
        request: Request<pb::DepthLimitsRequest>,
    ) -> Result<Response<pb::DepthLimits>, Status> {
        let caller = self.authorize(&request, Scope::Devices)?;
        let req = convert::depth_limits_request(request.into_inner()).map_err(status::invalid)?;
        let limits = watch::current(&self.ctx, &caller, &req)?;
        Ok(Response::new(limits))
    }

    type WatchDepthLimitsStream = watch::WatchStream;

    async fn watch_depth_limits(
        &self,
        request: Request<pb::DepthLimitsRequest>,
    ) -> Result<Response<Self::WatchDepthLimitsStream>, Status> {
        let caller = self.authorize(&request, Scope::Devices)?;
        let mut inner = request.into_inner();
        let resume = inner.resume_etag.take();
        let req = convert::depth_limits_request(inner).map_err(status::invalid)?;
        let stream = watch::depth_limits(self.ctx.clone(), caller, req, resume)?;
        Ok(Response::new(stream))
    }

    async fn build_plan(
        &self,
        request: Request<pb::PlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let caller = self.authorize(&request, Scope::Plans)?;
        self.ctx.check_fresh().map_err(status::stale)?;
        let req = convert::plan_request(request.into_inner()).map_err(status::invalid)?;
        let plan = self.with_ruleset(&caller, |rs| crate::observe::plan(rs, &req))?;
        Ok(Response::new(convert::plan(&plan)))
    }

    async fn list_treatments(
        &self,
        request: Request<pb::ListTreatmentsRequest>,
    ) -> Result<Response<pb::TreatmentList>, Status> {
        let caller = self.authorize(&request, Scope::Eligibility)?;
        let list = self.with_ruleset(&caller, |rs| Ok(rs.treatments()))?;
        Ok(Response::new(convert::treatment_list(&list)))
    }

    async fn get_treatment(
        &self,
        request: Request<pb::GetTreatmentRequest>,
    ) -> Result<Response<pb::TreatmentInfo>, Status> {
        let caller = self.authorize(&request, Scope::Eligibility)?;
        let code = request.into_inner().code;
        let info = self.with_ruleset(&caller, |rs| Ok(rs.treatment(&code)))?;
        match info {
            Some(t) => Ok(Response::new(convert::treatment(&t))),
            None => Err(Status::not_found(format!(
                "no treatment '{}'",
                code.chars().take(64).collect::<String>()
            ))),
        }
    }

    async fn list_facts(
        &self,
        request: Request<pb::ListFactsRequest>,
    ) -> Result<Response<pb::FactList>, Status> {
        let caller = self.authorize(&request, Scope::Eligibility)?;
        let list = self.with_ruleset(&caller, |rs| Ok(rs.facts()))?;
        Ok(Response::new(convert::fact_list(&list)))
    }
}
