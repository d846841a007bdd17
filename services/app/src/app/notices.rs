//! Rule-set notices: "the rule set that answers for my clinic is now version V", for booking
//! systems that hold future appointments and re-check them when it changes (gRPC
//! `WatchRuleSets`, REST `GET /v1/rulesets:watch` as Server-Sent Events).
//!
//! A notice is the door's answer to "which rule set answers for this caller?": the same
//! [`Context::ruleset`] every question goes through, so a clinic key hears about its overlay (or
//! the base when it has none) and never about another clinic's rule set. It changes when the
//! compiled answer changes: a new version of the overlay, or a new base under it (the overlay is
//! recompiled on it), which is why its `revision` names the base's digest too. When the replica
//! has no rule set to answer the clinic with (it refused the one that should), the notice says
//! so (`unavailable`, naming the refused rule set) instead of the stream failing: the client
//! learns that answers for its clinic are refused here until a good version is activated.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use futures::Stream;
use protocol_engine::{RuleSet, RuleSetRef};
use serde::Serialize;

use super::watch::{Subscription, Wake};
use super::{App, AppError};
use crate::auth::{AuthError, Caller, Scope};
use crate::catalog::Unavailable;
use crate::context::Context;

/// The scope a watch of rule-set notices needs: booking systems hold `eligibility`.
pub const NOTICE_SCOPE: Scope = Scope::Eligibility;

/// Whether a rule set answers for the caller's clinic on this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeStatus {
    /// `ruleset` answers for the clinic.
    Serving,
    /// This replica refused the rule set that should answer for the clinic (named in `refused`)
    /// and refuses the clinic's questions (503 / UNAVAILABLE) until a good version is active.
    Unavailable,
}

/// The rule set a replica refused to serve a clinic with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RefusedRuleSet {
    /// Its id (empty when the replica has no rule set at all).
    pub id: String,
    /// Its version (empty when unknown).
    pub version: String,
    /// Why, in words.
    pub detail: String,
}

/// What [`Context::ruleset`] refuses with, as a notice says it.
impl From<Unavailable> for RefusedRuleSet {
    fn from(u: Unavailable) -> Self {
        let detail = u.to_string();
        match u {
            Unavailable::Refused { id, version, .. } => Self {
                id,
                version,
                detail,
            },
            Unavailable::NotLoaded => Self {
                id: String::new(),
                version: String::new(),
                detail,
            },
        }
    }
}

/// The rule set that answers for the caller's clinic now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RuleSetNotice {
    pub status: NoticeStatus,
    /// `serving`: the rule set that answers (id, version, digest; for an overlay, its base).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ruleset: Option<RuleSetRef>,
    /// `unavailable`: the rule set this replica refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<RefusedRuleSet>,
    /// Names this state, to resume from: the rule set's `digest`, and for an overlay `/` and its
    /// base's `digest` (characters a URL query takes as they are) (so it can be made from the `ruleset` of any answer); `unavailable:` with
    /// the refused id and version when unavailable. The SSE event id.
    pub revision: String,
}

impl RuleSetNotice {
    /// The notice for what [`Context::ruleset`] answered.
    pub fn of<E: Into<RefusedRuleSet>>(answer: Result<&RuleSet, E>) -> Self {
        match answer {
            Ok(rs) => {
                let meta = rs.meta();
                Self {
                    status: NoticeStatus::Serving,
                    revision: revision(meta),
                    ruleset: Some(meta.clone()),
                    refused: None,
                }
            }
            Err(e) => {
                let refused: RefusedRuleSet = e.into();
                Self {
                    status: NoticeStatus::Unavailable,
                    revision: format!("unavailable:{}@{}", refused.id, refused.version),
                    ruleset: None,
                    refused: Some(refused),
                }
            }
        }
    }
}

/// See [`RuleSetNotice::revision`].
pub fn revision(meta: &RuleSetRef) -> String {
    match &meta.base {
        Some(base) => format!("{}/{}", meta.digest, base.digest),
        None => meta.digest.clone(),
    }
}

/// A notice as every stream of a clinic shares it: made once per clinic and rule-set
/// generation, with its JSON form rendered at most once (for Server-Sent Events).
#[derive(Debug)]
pub struct Shared {
    pub notice: RuleSetNotice,
    json: OnceLock<String>,
}

impl Shared {
    fn new(notice: RuleSetNotice) -> Self {
        Self {
            notice,
            json: OnceLock::new(),
        }
    }

    /// The notice as one line of JSON.
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(&self.notice).unwrap_or_else(|_| "{}".into()))
    }
}

impl From<RuleSetNotice> for Shared {
    fn from(notice: RuleSetNotice) -> Self {
        Self::new(notice)
    }
}

/// One message of a notice stream.
#[derive(Debug, Clone)]
pub enum NoticeEvent {
    /// The rule set in force: on subscribe (unless the client resumed at it) and whenever it
    /// changes.
    Notice(Arc<Shared>),
    /// Nothing changed: on an idle stream every heartbeat interval, and first on a stream that
    /// resumed at the state in force. Carries that state.
    Heartbeat(Arc<Shared>),
}

/// A stream of notices; ends on server shutdown.
pub type NoticeStream = Pin<Box<dyn Stream<Item = NoticeEvent> + Send + 'static>>;

struct Watching {
    app: App,
    caller: Arc<Caller>,
    sub: Subscription,
    last: Arc<Shared>,
    pending: Option<NoticeEvent>,
}

impl Watching {
    async fn next(&mut self) -> Option<NoticeEvent> {
        if let Some(first) = self.pending.take() {
            return Some(first);
        }
        loop {
            match self.sub.wake().await {
                Wake::End => return None,
                Wake::Heartbeat => return Some(NoticeEvent::Heartbeat(self.last.clone())),
                Wake::Changed => {
                    let now = self.app.shared_notice(self.sub.generation(), &self.caller);
                    if !Arc::ptr_eq(&now, &self.last)
                        && now.notice.revision != self.last.notice.revision
                    {
                        self.last = now;
                        self.sub.sent();
                        return Some(NoticeEvent::Notice(self.last.clone()));
                    }
                }
            }
        }
    }
}

impl App {
    /// The notice for `caller` now, from the catalog served now (scope checked by the caller).
    fn current_notice(&self, caller: &Caller) -> RuleSetNotice {
        let catalog = self.ctx.catalog();
        RuleSetNotice::of(Context::ruleset(&catalog, caller))
    }

    /// The notice of `caller`'s clinic at `generation`, shared with every stream of the clinic.
    fn shared_notice(&self, generation: u64, caller: &Caller) -> Arc<Shared> {
        let key = caller.tenant.as_deref().unwrap_or_default();
        let made = self.notices.get(generation, key, || {
            Ok::<_, std::convert::Infallible>(Shared::new(self.current_notice(caller)))
        });
        match made {
            Ok(shared) => shared,
            Err(never) => match never {},
        }
    }

    /// The rule set that answers for `caller`'s clinic now.
    pub fn ruleset_notice(&self, caller: &Caller) -> Result<RuleSetNotice, AppError> {
        if !caller.has(NOTICE_SCOPE) {
            return Err(AuthError::Forbidden(NOTICE_SCOPE).into());
        }
        Ok(self.current_notice(caller))
    }

    /// Opens a stream of notices for `caller` (scope `eligibility`, within the watch budgets).
    /// `since`: the `revision` the client already has; when it names the state in force the
    /// stream opens with a heartbeat instead of repeating it.
    pub fn watch_rulesets(
        &self,
        caller: Arc<Caller>,
        since: Option<&str>,
    ) -> Result<NoticeStream, AppError> {
        if !caller.has(NOTICE_SCOPE) {
            return Err(AuthError::Forbidden(NOTICE_SCOPE).into());
        }
        let sub = self.subscribe(&caller)?;
        let first = self.shared_notice(sub.generation(), &caller);
        let pending = if since == Some(first.notice.revision.as_str()) {
            NoticeEvent::Heartbeat(first.clone())
        } else {
            NoticeEvent::Notice(first.clone())
        };
        let state = Watching {
            app: self.clone(),
            caller,
            sub,
            last: first,
            pending: Some(pending),
        };
        Ok(Box::pin(futures::stream::unfold(
            state,
            |mut w| async move { w.next().await.map(|item| (item, w)) },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn caller(tenant: Option<&str>) -> Caller {
        let mut c = Caller::open();
        c.tenant = tenant.map(str::to_owned);
        c
    }

    #[test]
    fn a_clinic_hears_of_its_overlay_with_its_base_and_others_of_the_base() {
        let catalog = Catalog::bundled().expect("bundled rule sets");
        let aurora = RuleSetNotice::of(Context::ruleset(&catalog, &caller(Some("clinic-aurora"))));
        let meta = aurora.ruleset.as_ref().expect("serving");
        assert_eq!(aurora.status, NoticeStatus::Serving);
        assert_eq!(meta.id, "clinic-aurora");
        let base = meta.base.as_ref().expect("an overlay names its base");
        assert_eq!(aurora.revision, format!("{}/{}", meta.digest, base.digest));

        let borealis =
            RuleSetNotice::of(Context::ruleset(&catalog, &caller(Some("clinic-borealis"))));
        let meta = borealis.ruleset.as_ref().expect("serving");
        assert_eq!((meta.id.as_str(), meta.base.is_none()), ("base", true));
        assert_eq!(borealis.revision, meta.digest);
    }

    #[test]
    fn no_rule_set_for_a_clinic_is_an_unavailable_notice_not_an_error() {
        let n = RuleSetNotice::of(Err::<&RuleSet, _>(Unavailable::Refused {
            id: "clinic-aurora".into(),
            version: "2026.12.1".into(),
            reason: "digest mismatch".into(),
        }));
        assert_eq!(n.status, NoticeStatus::Unavailable);
        assert!(n.ruleset.is_none());
        assert_eq!(n.revision, "unavailable:clinic-aurora@2026.12.1");
        let json = serde_json::to_value(&n).expect("json");
        assert_eq!(json["status"], "unavailable");
        assert_eq!(json["refused"]["id"], "clinic-aurora");
        assert_eq!(json["refused"]["version"], "2026.12.1");
        assert!(
            json["refused"]["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("digest mismatch")
        );
        assert!(json.get("ruleset").is_none());
        let none = RuleSetNotice::of(Err::<&RuleSet, _>(Unavailable::NotLoaded));
        assert_eq!(none.status, NoticeStatus::Unavailable);
    }
}
