//! Reading the decision log through the door: the `audit` scope, and the tenant rule (a key
//! reads its own clinic's decisions only; another clinic's id is not found, so ids of other
//! clinics cannot be probed).

use super::{App, AppError};
use crate::auth::{AuthError, Caller, Scope};
use crate::decision_log::{LoggedDecision, ReadError};

impl App {
    /// One logged decision of the caller's clinic, by id.
    pub async fn decision(
        &self,
        caller: &Caller,
        decision_id: &str,
    ) -> Result<LoggedDecision, AppError> {
        if !caller.has(Scope::Audit) {
            return Err(AuthError::Forbidden(Scope::Audit).into());
        }
        let id = uuid::Uuid::parse_str(decision_id).map_err(|_| AppError::Contradiction {
            field: "decision_id".into(),
            message: "not a decision id (a UUID, as in an answer's `decision_id`)".into(),
        })?;
        let log = self.ctx.decision_log.as_ref().ok_or(ReadError::Off)?;
        log.find(id, caller.tenant.as_deref())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no decision '{id}' in this clinic's log")))
    }
}
