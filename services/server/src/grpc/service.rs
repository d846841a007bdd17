//! The `TreatmentProtocolService` service: each method authenticates through the door, converts the
//! request to the engine's type, asks the door, converts the answer. Same door, same rule set,
//! same decisions as REST.

use std::sync::Arc;

use protocol_engine::{FieldViolation, RequestError};
use tonic::{Request, Response, Status};

use super::pb::treatment_protocol_service_server::TreatmentProtocolService;
use super::status::{IntoStatus, status};
use super::{convert, notices, pb, watch};
use crate::app::{
    App, AppError, Batch, Calendar, CatalogueQuestion, FactsQuestion, TreatmentQuestion,
    TreatmentsQuestion,
};
use crate::auth::{Caller, Scope};
use crate::context::prefixed;

/// The service implementation; cheap to clone.
#[derive(Clone)]
pub struct ProtocolService {
    app: App,
    /// Depth limits shared by the `WatchDepthLimits` streams of one clinic and request.
    depth_board: Arc<watch::DepthBoard>,
}

impl ProtocolService {
    pub fn new(app: App) -> Self {
        Self {
            app,
            depth_board: Arc::default(),
        }
    }

    /// The caller of a request: its `authorization` metadata, authenticated at the door.
    fn caller<T>(&self, request: &Request<T>, scope: Scope) -> Result<Arc<Caller>, Status> {
        let credential = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        self.app.authenticate(credential, scope).map_err(status)
    }
}

#[tonic::async_trait]
impl TreatmentProtocolService for ProtocolService {
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let caller = self.caller(&request, Scope::Eligibility)?;
        // Straight into the caller's rule set's slots; what that read does not take (a fault to
        // name, `explain`, a pinned version) goes the general way.
        let fast = self.app.eligibility_read(
            &caller,
            |rs| convert::read_eligibility(rs, request.get_ref()),
            |verdict, id| convert::eligibility(&verdict.into_eligibility(), id.to_owned()),
        );
        if let Some(answer) = fast {
            return Ok(Response::new(answer.map_err(status)?));
        }
        let req = convert::eligibility_request(request.into_inner())
            .map_err(AppError::from)
            .map_err(status)?;
        let d = self.app.ask(&caller, &req).await.map_err(status)?;
        Ok(Response::new(convert::decided(&d)))
    }

    async fn check_eligibility_batch(
        &self,
        request: Request<pb::CheckEligibilityBatchRequest>,
    ) -> Result<Response<pb::CheckEligibilityBatchResponse>, Status> {
        let caller = self.caller(&request, Scope::Eligibility)?;
        let checks = request.into_inner().checks;
        Batch::check_size(checks.len()).map_err(status)?;
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
            return Err(AppError::from(RequestError { violations }).into_status());
        }
        let answers = self.app.ask(&caller, &Batch(reqs)).await.map_err(status)?;
        Ok(Response::new(pb::CheckEligibilityBatchResponse {
            results: answers.into_iter().map(|d| convert::decided(&d)).collect(),
        }))
    }

    async fn check_eligibility_calendar(
        &self,
        request: Request<pb::CheckEligibilityCalendarRequest>,
    ) -> Result<Response<pb::CheckEligibilityCalendarResponse>, Status> {
        let caller = self.caller(&request, Scope::Eligibility)?;
        let request = request.into_inner();
        Calendar::check_size(request.slots.len()).map_err(status)?;
        let calendar = convert::calendar_request(request)
            .map_err(AppError::from)
            .map_err(status)?;
        let results = self.app.ask(&caller, &calendar).await.map_err(status)?;
        Ok(Response::new(convert::calendar_results(results)))
    }

    async fn check_contraindications(
        &self,
        request: Request<pb::CheckContraindicationsRequest>,
    ) -> Result<Response<pb::CheckContraindicationsResponse>, Status> {
        let caller = self.caller(&request, Scope::Eligibility)?;
        let req = convert::contraindication_request(request.into_inner())
            .map_err(AppError::from)
            .map_err(status)?;
        let report = self.app.ask(&caller, &req).await.map_err(status)?;
        Ok(Response::new(convert::contraindication_report(&report)))
    }

    async fn get_depth_limits(
        &self,
        request: Request<pb::GetDepthLimitsRequest>,
    ) -> Result<Response<pb::GetDepthLimitsResponse>, Status> {
        let caller = self.caller(&request, Scope::Devices)?;
        let req = convert::depth_limits_request(request.into_inner())
            .map_err(AppError::from)
            .map_err(status)?;
        let answer = self.app.ask(&caller, &req).await.map_err(status)?;
        Ok(Response::new(convert::depth_answer(&answer, &req)))
    }

    type WatchDepthLimitsStream = watch::WatchStream;

    async fn watch_depth_limits(
        &self,
        request: Request<pb::WatchDepthLimitsRequest>,
    ) -> Result<Response<Self::WatchDepthLimitsStream>, Status> {
        let caller = self.caller(&request, Scope::Devices)?;
        let (inner, resume) = convert::watch_depth_limits_request(request.into_inner());
        let req = convert::depth_limits_request(inner)
            .map_err(AppError::from)
            .map_err(status)?;
        let stream = watch::depth_limits(
            self.app.clone(),
            caller,
            req,
            resume,
            self.depth_board.clone(),
        )?;
        Ok(Response::new(stream))
    }

    type WatchRuleSetsStream = notices::NoticeStream;

    async fn watch_rule_sets(
        &self,
        request: Request<pb::WatchRuleSetsRequest>,
    ) -> Result<Response<Self::WatchRuleSetsStream>, Status> {
        let caller = self.caller(&request, crate::app::notices::NOTICE_SCOPE)?;
        let since = request.into_inner().since_revision;
        let events = self
            .app
            .watch_rulesets(caller, since.as_deref())
            .map_err(status)?;
        Ok(Response::new(notices::stream(events)))
    }

    async fn build_plan(
        &self,
        request: Request<pb::BuildPlanRequest>,
    ) -> Result<Response<pb::BuildPlanResponse>, Status> {
        let caller = self.caller(&request, Scope::Plans)?;
        let req = convert::plan_request(request.into_inner())
            .map_err(AppError::from)
            .map_err(status)?;
        let plan = self.app.ask(&caller, &req).await.map_err(status)?;
        Ok(Response::new(convert::plan(&plan)))
    }

    async fn list_treatments(
        &self,
        request: Request<pb::ListTreatmentsRequest>,
    ) -> Result<Response<pb::ListTreatmentsResponse>, Status> {
        let caller = self.caller(&request, Scope::Catalogue)?;
        let list = self
            .app
            .ask(&caller, &TreatmentsQuestion)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::treatment_list(&list)))
    }

    async fn get_treatment(
        &self,
        request: Request<pb::GetTreatmentRequest>,
    ) -> Result<Response<pb::GetTreatmentResponse>, Status> {
        let caller = self.caller(&request, Scope::Catalogue)?;
        let code = request.into_inner().code;
        let (info, meta) = self
            .app
            .ask_with_ruleset(&caller, &TreatmentQuestion(code))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetTreatmentResponse {
            treatment: Some(convert::treatment(&info)),
            ruleset: Some(convert::ruleset(&meta)),
        }))
    }

    async fn get_catalogue(
        &self,
        request: Request<pb::GetCatalogueRequest>,
    ) -> Result<Response<pb::GetCatalogueResponse>, Status> {
        let caller = self.caller(&request, Scope::Catalogue)?;
        let catalogue = self
            .app
            .ask(&caller, &CatalogueQuestion)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::catalogue(&catalogue)))
    }

    async fn list_facts(
        &self,
        request: Request<pb::ListFactsRequest>,
    ) -> Result<Response<pb::ListFactsResponse>, Status> {
        let caller = self.caller(&request, Scope::Catalogue)?;
        let list = self
            .app
            .ask(&caller, &FactsQuestion)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::fact_list(&list)))
    }
}
