//! The one door: every operation over every protocol goes through [`App`].
//!
//! For a question (an eligibility check, a batch, a contraindication check, depth limits, a
//! plan, a catalogue read) the door, in this order and nowhere else:
//!
//! 1. authenticates the credential into a caller holding the operation's scope;
//! 2. refuses decisions about a client under the fail-closed stale policy;
//! 3. picks the rule set of the caller's clinic (its overlay, else the base), or the version of
//!    it the question pins ([`replay`]: fetched from Redis once per version, then cached);
//! 4. opens the `engine.decide` span and counts the decision metric;
//! 5. asks the engine, and gives every eligibility answer its `decision_id`, logged with the
//!    rule-set id and version (never facts), and queues every decision for the decision log
//!    when it is on ([`crate::decision_log`]: fact values masked, never waiting on PostgreSQL);
//! 6. turns every failure into one [`AppError`], which each protocol maps once.
//!
//! Watch streams open here too ([`watch`]: the change subscription, heartbeats and the watch
//! budgets of every kind of watch), and so do rule-set notices ([`notices`]: which rule set
//! answers for the caller's clinic, through the same tenant rule as every question).
//!
//! Rule-set administration ([`admin`]) lives here too, with the tenant rule: an `admin` key
//! manages only the rule set whose id is its clinic; the base, other clinics and new ids need
//! the `platform` scope. The adapters (`http`, `grpc`) only parse and render, so a new endpoint
//! cannot forget a step, and the doors to come (a CLI, FHIR, CDS Hooks) reuse it.

pub mod admin;
mod answer_diff;
mod calendar;
mod decisions;
mod eligibility_json;
mod error;
pub mod fhir;
#[cfg(test)]
mod masking_tests;
pub mod notices;
pub mod operations;
mod questions;
pub mod readiness;
pub mod replay;
mod replay_decision;
mod traffic;
pub mod watch;
pub mod watch_budget;

use std::sync::Arc;

use protocol_engine::{RequestError, RuleSet, RuleSetRef};

pub use answer_diff::{AnswerChange, ChangeKind};
pub use calendar::{Calendar, CalendarSlot, SlotResult};
pub use error::{AppError, ErrorKind, GrpcCode, MAX_VIOLATIONS, violations_summary};
pub use questions::{
    Batch, CatalogueQuestion, DECISION_TARGET, Decided, FactsQuestion, Question, Recorder,
    TreatmentQuestion, TreatmentsQuestion, catalogue_etag, check_count, depth_etag,
    record_eligibility,
};
pub use replay_decision::{ReplayAgainst, ReplaySide, ReplayedDecision};
pub use traffic::TrafficPreview;

use crate::auth::{AuthError, Caller, Scope};
use crate::catalog::Catalog;
use crate::context::Context;

/// The door; cheap to clone: one reference count. Every REST request clones the handler state,
/// and cloning (then dropping) the context's dozen shared handles cost 4 % of the server's CPU
/// under `scripts/load` (`perf record`), the counters bouncing between the cores.
#[derive(Clone)]
pub struct App(Arc<Door>);

/// What the door holds (reached through [`App`]'s `Deref`).
pub struct Door {
    ctx: Context,
    /// The rule-set notice of each clinic for the current generation, made once and shared by
    /// every stream that sends it.
    notices: Arc<watch::Board<notices::Shared>>,
    /// The pinned rule-set versions compiled so far (bounded).
    pinned: Arc<replay::Pinned>,
}

impl std::ops::Deref for App {
    type Target = Door;

    fn deref(&self) -> &Door {
        &self.0
    }
}

impl App {
    pub fn new(ctx: Context) -> Self {
        Self(Arc::new(Door {
            ctx,
            notices: Arc::default(),
            pinned: Arc::default(),
        }))
    }

    /// The shared state behind the door (health, streams' change notifications).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Authenticates a credential (the `Authorization` header value or `authorization`
    /// metadata) into a caller holding `scope`.
    pub fn authenticate(
        &self,
        credential: Option<&[u8]>,
        scope: Scope,
    ) -> Result<Arc<Caller>, AppError> {
        Ok(self.ctx.keys.authorize(credential, scope)?)
    }

    /// Asks a question for an authenticated caller: the scope (checked again here, so an
    /// adapter that authenticated for the wrong scope is still refused), freshness, the caller's
    /// rule set (or the version of it the question pins), the decision span and metric, the
    /// engine.
    ///
    /// Authentication is a separate step ([`Self::authenticate`]) so that an adapter can refuse
    /// an unauthenticated caller before it reads (and complains about) the request body; a
    /// question can only be asked with the [`Caller`] it returns.
    pub async fn ask<Q: Question>(
        &self,
        caller: &Caller,
        question: &Q,
    ) -> Result<Q::Answer, AppError> {
        let served = self.pinned(caller, question).await?;
        self.answer(caller, question, served.as_ref(), |answer, _| answer)
    }

    /// [`Self::ask`] for a question that cannot wait on Redis (a watch stream's recomputation,
    /// which follows the active version): a pinned question is refused.
    pub fn ask_active<Q: Question>(
        &self,
        caller: &Caller,
        question: &Q,
    ) -> Result<Q::Answer, AppError> {
        if let Some(pin) = question.pin()? {
            return Err(RequestError::field(
                if pin.version.is_some() {
                    "ruleset_version"
                } else {
                    "ruleset_digest"
                },
                "this operation follows the active rule-set version and cannot pin one",
            )
            .into());
        }
        self.answer(caller, question, None, |answer, _| answer)
    }

    /// [`Self::ask`], also naming the rule set that answered (for a validator such as an
    /// `ETag`, which must change exactly when that rule set does).
    pub async fn ask_with_ruleset<Q: Question>(
        &self,
        caller: &Caller,
        question: &Q,
    ) -> Result<(Q::Answer, RuleSetRef), AppError> {
        let served = self.pinned(caller, question).await?;
        self.answer(caller, question, served.as_ref(), |answer, rs| {
            (answer, rs.meta().clone())
        })
    }

    /// The version a question pins, resolved (after the scope check, so a key without the
    /// scope cannot probe which versions exist); `None` for an unpinned question, which never
    /// touches Redis.
    async fn pinned<Q: Question>(
        &self,
        caller: &Caller,
        question: &Q,
    ) -> Result<Option<replay::Served>, AppError> {
        let Some(pin) = question.pin()? else {
            return Ok(None);
        };
        if !caller.has(Q::SCOPE) {
            return Err(AuthError::Forbidden(Q::SCOPE).into());
        }
        replay::resolve(&self.ctx, &self.pinned, caller, pin)
            .await
            .map(Some)
    }

    /// The general mode of the door: a question its adapter has already read. The steps, in
    /// the door's order: the scope, the stale policy, the rule set, the span and metric, the
    /// engine, the record.
    fn answer<Q: Question, R>(
        &self,
        caller: &Caller,
        question: &Q,
        served: Option<&replay::Served>,
        then: impl FnOnce(Q::Answer, &RuleSet) -> R,
    ) -> Result<R, AppError> {
        self.through(caller, Q::OPERATION, served, |gate| {
            if Q::FRESH {
                gate.fresh()?;
            }
            let rs = gate.ruleset()?;
            if !Q::DECISION {
                return Ok(then(question.ask(rs)?, rs));
            }
            let recorder = gate.recorder(rs);
            let answer = recorder.in_scope(|| question.ask(rs))?;
            question.record(&answer, &recorder);
            Ok(then(answer, rs))
        })
    }

    /// The one door function every mode of asking goes through: the scope of `operation`
    /// (checked here, so an adapter that authenticated for the wrong scope is still refused),
    /// then `steps` with the [`Gate`] that holds every other step of the door. A mode orders
    /// the gate's steps (the general mode checks freshness before it picks the rule set; the
    /// fast eligibility read after the body is read, as the general path's adapter does) but
    /// cannot skip the scope nor reach the engine by another way.
    fn through<R>(
        &self,
        caller: &Caller,
        operation: operations::Operation,
        served: Option<&replay::Served>,
        steps: impl FnOnce(&Gate<'_>) -> Result<R, AppError>,
    ) -> Result<R, AppError> {
        let scope = operation.scope();
        if !caller.has(scope) {
            return Err(AuthError::Forbidden(scope).into());
        }
        let gate = Gate {
            ctx: &self.ctx,
            caller,
            operation,
            rulesets: match served {
                None => Rulesets::Now(self.ctx.catalog()),
                Some(served) => Rulesets::Pinned(served),
            },
        };
        steps(&gate)
    }

    /// Reads the rule set that answers whoever sends `credential`: a key's clinic rule set (any
    /// scope: what a rule set declares is no secret to a key holder), the base without a key or
    /// in open mode. An unknown key is refused, as everywhere. For an adapter's documents typed
    /// by the caller's rule set (REST's OpenAPI contract).
    pub fn with_ruleset_of<T>(
        &self,
        credential: Option<&[u8]>,
        read: impl FnOnce(&RuleSet) -> T,
    ) -> Result<T, AppError> {
        let caller = match credential {
            Some(c) if !self.ctx.keys.is_open() => self.ctx.keys.caller_of(Some(c))?,
            _ => None,
        };
        let catalog = self.ctx.catalog();
        let rs = catalog.for_tenant(caller.as_ref().and_then(|c| c.tenant.as_deref()))?;
        Ok(read(rs))
    }
}

/// The steps of the door a question goes through once its scope is checked
/// ([`App::through`]).
pub struct Gate<'a> {
    ctx: &'a Context,
    caller: &'a Caller,
    operation: operations::Operation,
    rulesets: Rulesets<'a>,
}

/// Where the gate finds the rule set that answers.
enum Rulesets<'a> {
    /// The catalog served now (an unpinned question).
    Now(arc_swap::Guard<Arc<Catalog>>),
    /// The version a question pins, resolved before the gate.
    Pinned(&'a replay::Served),
}

impl Gate<'_> {
    /// Refuses decisions about a client under the fail-closed stale policy.
    pub fn fresh(&self) -> Result<(), AppError> {
        Ok(self.ctx.check_fresh()?)
    }

    /// The rule set of the caller's clinic (its overlay, else the base), or the pinned version.
    pub fn ruleset(&self) -> Result<&RuleSet, AppError> {
        Ok(match &self.rulesets {
            Rulesets::Now(catalog) => Context::ruleset(catalog, self.caller)?,
            Rulesets::Pinned(replay::Served::Now(catalog)) => {
                Context::ruleset(catalog, self.caller)?
            }
            Rulesets::Pinned(replay::Served::Version(rs)) => rs.as_ref(),
        })
    }

    /// The `engine.decide` span, the decision metric and the decision log, for a decision
    /// made on `rs`.
    pub fn recorder<'r>(&'r self, rs: &'r RuleSet) -> Recorder<'r> {
        Recorder::open(
            self.operation.name(),
            rs,
            self.caller,
            self.ctx.decision_log.as_ref(),
        )
    }

    /// Whether decisions are logged (a mode that cannot give the log its typed request
    /// declines while it is on).
    pub fn logs_decisions(&self) -> bool {
        self.ctx.decision_log.is_some()
    }
}
