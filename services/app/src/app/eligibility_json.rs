//! Eligibility straight from the request body (issue 16): the door's steps for
//! `POST /v1/eligibility` with the body read into the slots of the rule set that answers the
//! caller, the answer written from that rule set's pre-serialised texts.
//!
//! A mode of the one door function ([`App::through`], as [`App::ask`] for an unpinned question):
//! the scope, the caller's rule set, the fail-closed stale policy, the `engine.decide` span, the decision
//! metric and the decision id. What this path does not take on it leaves to the general one by
//! answering `None`: a body the engine's read does not take (any fault, `explain`, a pinned
//! version, a field it does not know, such as a questionnaire response converted at the door),
//! a caller without the scope or without a rule set (so the refusal is the general path's), and
//! every request while the decision log is on (the log keeps the typed request it masks).

use protocol_engine::{EligibilityRequest, ReadEligibility, RuleSet, Verdict};

use super::{App, AppError, Question};
use crate::auth::Caller;

impl App {
    /// The JSON answer (with its `decision_id`) to an eligibility body, or `None` when the
    /// general path ([`App::ask`] on the parsed [`EligibilityRequest`]) must answer it.
    pub fn eligibility_json(
        &self,
        caller: &Caller,
        body: &[u8],
    ) -> Option<Result<Vec<u8>, AppError>> {
        self.eligibility_read(
            caller,
            |rs| rs.read_eligibility(body),
            |verdict, decision_id| {
                let mut out = Vec::new();
                verdict.write_json(&[("decision_id", decision_id)], &mut out);
                out
            },
        )
    }

    /// The door for an eligibility question read straight into the caller's rule set by `read`
    /// (REST: the body's bytes; gRPC: the decoded message), the verdict given to `answer` with
    /// its decision id; `None` when the general path must answer.
    pub fn eligibility_read<R>(
        &self,
        caller: &Caller,
        read: impl for<'rs> FnOnce(&'rs RuleSet) -> Option<ReadEligibility<'rs>>,
        answer: impl FnOnce(Verdict<'_>, &str) -> R,
    ) -> Option<Result<R, AppError>> {
        // Without the scope the general path refuses, as it would (before reading the body).
        if !caller.has(EligibilityRequest::SCOPE) {
            return None;
        }
        self.through(caller, EligibilityRequest::OPERATION, None, |gate| {
            if gate.logs_decisions() {
                return Ok(None);
            }
            // Without a rule set, the general path's refusal.
            let Ok(rs) = gate.ruleset() else {
                return Ok(None);
            };
            let Some(read) = read(rs) else {
                return Ok(None);
            };
            // After the read, as on the general path, where a body that does not parse is
            // refused (by its adapter) before the stale policy is consulted.
            gate.fresh()?;
            let recorder = gate.recorder(rs);
            let verdict = recorder.in_scope(|| read.decide());
            let (treatment, decision) = (verdict.treatment(), verdict.decision());
            recorder.treatment(treatment);
            recorder.outcome(decision);
            let mut id = [0; uuid::fmt::Hyphenated::LENGTH];
            let id = crate::context::write_decision_id(&mut id);
            // The log is off on this path: only the metric is counted.
            recorder.decided(treatment, decision, Some(id), &(), &());
            recorder.identified(id, treatment, decision);
            Ok(Some(answer(verdict, id)))
        })
        .transpose()
    }
}
