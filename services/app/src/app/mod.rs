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

    fn answer<Q: Question, R>(
        &self,
        caller: &Caller,
        question: &Q,
        served: Option<&replay::Served>,
        then: impl FnOnce(Q::Answer, &RuleSet) -> R,
    ) -> Result<R, AppError> {
        if !caller.has(Q::SCOPE) {
            return Err(AuthError::Forbidden(Q::SCOPE).into());
        }
        if Q::FRESH {
            self.ctx.check_fresh()?;
        }
        let catalog;
        let rs = match served {
            None => {
                catalog = self.ctx.catalog();
                Context::ruleset(&catalog, caller)?
            }
            Some(replay::Served::Now(catalog)) => Context::ruleset(catalog, caller)?,
            Some(replay::Served::Version(rs)) => rs.as_ref(),
        };
        if !Q::DECISION {
            return Ok(then(question.ask(rs)?, rs));
        }
        let recorder = Recorder::open(
            Q::OPERATION.name(),
            rs,
            caller,
            self.ctx.decision_log.as_ref(),
        );
        let answer = recorder.in_scope(|| question.ask(rs))?;
        question.record(&answer, &recorder);
        Ok(then(answer, rs))
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
            Some(c) if !self.ctx.keys.is_open() => {
                Some(self.ctx.keys.identify(Some(c)).ok_or(AuthError::Unknown)?)
            }
            _ => None,
        };
        let catalog = self.ctx.catalog();
        let rs = catalog.for_tenant(caller.as_ref().and_then(|c| c.tenant.as_deref()))?;
        Ok(read(rs))
    }
}
