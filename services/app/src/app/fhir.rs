//! The FHIR doors onto the same decisions: the rule set's Questionnaire, and the rule that a
//! request sends its answers once (`facts` or `questionnaire_response`).
//!
//! The Questionnaire is a catalogue read like `GET /v1/facts`: the `eligibility` scope, the
//! caller's clinic rule set, not a decision (so served while stale), its span and metric under
//! `get_questionnaire`. `?clinic=` names the clinic whose rule set is wanted and changes nothing
//! the tenant rule allows: a clinic key names its own clinic (or none); another clinic needs the
//! `platform` scope (an operator's key, or an open server).

use protocol_engine::fhir::Questionnaire;
use protocol_engine::{Facts, FieldViolation, RequestError, RuleSet, RuleSetRef};
use serde_json::Value;

use super::operations::Operation;
use super::{App, AppError, Question};
use crate::auth::{AuthError, Caller, Scope};

/// The Questionnaire of the rule set named by the path: the rule set that answers the caller's
/// clinic, by its own id.
pub struct QuestionnaireQuestion {
    /// The rule-set id of the path; `None` (a search): whichever answers the caller's clinic.
    pub id: Option<String>,
}

impl Question for QuestionnaireQuestion {
    const OPERATION: Operation = Operation::GetQuestionnaire;
    type Answer = Questionnaire;

    fn ask(&self, rs: &RuleSet) -> Result<Self::Answer, AppError> {
        let meta = rs.meta();
        let base = meta.base.as_ref().map(|b| b.id.as_str());
        // A read answers the resource with the id asked, or refuses it: the base's questions are
        // not the ones a clinic with an overlay is checked against, so its form is not served
        // under the base's id (nor the base's form under the clinic's).
        let Some(id) = &self.id else {
            return Ok(rs.questionnaire());
        };
        if &meta.id == id {
            Ok(rs.questionnaire())
        } else if base == Some(id.as_str()) {
            Err(AppError::NotFound(format!(
                "this clinic's questions are those of rule set '{}' (its overlay of '{}'): read Questionnaire/{}",
                meta.id, id, meta.id
            )))
        } else {
            Err(AppError::NotFound(format!(
                "no Questionnaire '{}' for this caller: its questions come from rule set '{}'",
                id.chars().take(64).collect::<String>(),
                meta.id
            )))
        }
    }
}

impl App {
    /// The Questionnaire of rule set `id` for `caller` (`None`: of the rule set that answers
    /// it, for a search), for `clinic` when named (see the module doc for who may name which),
    /// with the rule set it was made from (for the `ETag`).
    pub async fn questionnaire(
        &self,
        caller: &Caller,
        id: Option<String>,
        clinic: Option<String>,
    ) -> Result<(Questionnaire, RuleSetRef), AppError> {
        let question = QuestionnaireQuestion { id };
        match clinic {
            None => self.ask_with_ruleset(caller, &question).await,
            Some(clinic) if caller.tenant.as_deref() == Some(clinic.as_str()) => {
                self.ask_with_ruleset(caller, &question).await
            }
            Some(clinic) if caller.has(Scope::Platform) => {
                let mut for_clinic = caller.clone();
                for_clinic.tenant = Some(clinic);
                self.ask_with_ruleset(&for_clinic, &question).await
            }
            Some(_) => Err(AuthError::Forbidden(Scope::Platform).into()),
        }
    }
}

/// Refuses a request that sends its answers twice, as `facts` and as a
/// `questionnaire_response` (`prefix` names the check in a batch): which would be meant?
pub fn answers_once(
    prefix: &str,
    facts: &Facts,
    questionnaire_response: Option<&Value>,
) -> Result<(), AppError> {
    if facts.is_empty() || questionnaire_response.is_none() {
        return Ok(());
    }
    let message = "send the answers once: either `facts` or `questionnaire_response`, not both";
    Err(AppError::AnswersTwice(RequestError {
        violations: ["facts", "questionnaire_response"]
            .into_iter()
            .map(|field| FieldViolation {
                field: if prefix.is_empty() {
                    field.to_owned()
                } else {
                    crate::context::prefixed(prefix, field)
                },
                message: message.to_owned(),
            })
            .collect(),
    }))
}
