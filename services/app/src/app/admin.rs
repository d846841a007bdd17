//! Rule-set administration through the door, for REST and gRPC alike: publish, list, read,
//! activate, roll back and retire versions, and read the activation history.
//!
//! The tenant rule lives here once ([`Caller::may_manage`]): an `admin` key manages only the
//! rule set whose id is its clinic; the base, other clinics' overlays and new ids need the
//! `platform` scope. A key that may not manage a rule set cannot learn whether it exists either:
//! the refusal comes before any store read. Listing shows only what the caller may manage.

use protocol_engine::{Format, parse_document};

use super::{App, AppError};
use crate::auth::{AuthError, Caller, Scope};
use crate::store::{
    Activation, Expected, Fetched, Guard, HistoryEntry, MoveOutcome, Published, Retired, Rollback,
    RuleSetStore, StoreError, VersionInfo,
};

/// A stored version, and whether it is the active one.
pub struct StoredVersion {
    pub fetched: Fetched,
    pub active: bool,
}

/// How an activation checks the version active now (compare-and-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedCurrent {
    /// No check (last writer wins): allowed, not recommended.
    Unchecked,
    /// No version may be active yet.
    None,
    /// This version must be active.
    Version(String),
}

impl From<ExpectedCurrent> for Expected {
    fn from(e: ExpectedCurrent) -> Self {
        match e {
            ExpectedCurrent::Unchecked => Expected::Any,
            ExpectedCurrent::None => Expected::Absent,
            ExpectedCurrent::Version(v) => Expected::Version(v),
        }
    }
}

impl App {
    /// The store, for a caller holding `admin` (or `platform`); `NoStore` without Redis.
    fn admin(&self, caller: &Caller) -> Result<&RuleSetStore, AppError> {
        if !(caller.has(Scope::Admin) || caller.has(Scope::Platform)) {
            return Err(AuthError::Forbidden(Scope::Admin).into());
        }
        self.ctx.store.as_deref().ok_or(AppError::NoStore)
    }

    /// Refuses a rule set the caller may not manage, naming it.
    fn may_manage(caller: &Caller, id: &str) -> Result<(), AppError> {
        if caller.may_manage(id) {
            Ok(())
        } else {
            Err(AppError::NotYourRuleSet {
                id: id.chars().take(64).collect(),
                tenant: caller.tenant.clone().unwrap_or_default(),
            })
        }
    }

    /// Whether `caller` may read `id` only as the base its overlay extends: a clinic's admin key
    /// sees the base's active version (to author and diff against what the server serves), never
    /// another version of it, and changes nothing.
    fn reads_base(&self, caller: &Caller, id: &str) -> bool {
        !caller.may_manage(id) && id == self.ctx.catalog().base_id()
    }

    /// Publishes a version (validated in full: an overlay against the active base, tighten-only).
    /// The document's `id` decides whose rule set it is.
    pub async fn publish(
        &self,
        caller: &Caller,
        text: &str,
        format: Format,
    ) -> Result<Published, AppError> {
        let store = self.admin(caller)?;
        let doc = parse_document(text, format).map_err(AppError::invalid_ruleset)?;
        Self::may_manage(caller, &doc.id)?;
        let extends_base = doc.extends.as_deref() == Some(self.ctx.catalog().base_id());
        if !caller.has(Scope::Platform) && !extends_base {
            // A clinic's rule set is an overlay of the base (so tighten-only is checked); a
            // document without `extends`, or extending anything else, is the platform's.
            return Err(AppError::NotYourRuleSet {
                id: doc.id.chars().take(64).collect(),
                tenant: caller.tenant.clone().unwrap_or_default(),
            });
        }
        if !caller.has(Scope::Platform) {
            // Creating a rule set (a clinic's first overlay) is onboarding, not administration:
            // an `admin` key extends only a rule set that exists.
            match store.list_versions(&doc.id).await {
                Ok(_) => {}
                Err(StoreError::NotFound { .. }) => {
                    return Err(AppError::NewRuleSet {
                        id: doc.id.chars().take(64).collect(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let published = store.publish_by(doc, caller.key_id.as_deref()).await?;
        tracing::info!(
            id = %published.id,
            version = %published.version,
            digest = %published.digest,
            created = published.created,
            key = caller.key_id.as_deref().unwrap_or(""),
            "rule set published"
        );
        Ok(published)
    }

    /// Every rule set the caller may manage, with its versions.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<(String, Vec<VersionInfo>)>, AppError> {
        let store = self.admin(caller)?;
        let mut out = Vec::new();
        for id in store.list_ids().await? {
            if !caller.may_manage(&id) {
                continue;
            }
            match store.list_versions(&id).await {
                Ok(v) => out.push((id, v)),
                // Removed between the scan and the read.
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// The versions of one rule set.
    pub async fn versions(&self, caller: &Caller, id: &str) -> Result<Vec<VersionInfo>, AppError> {
        let store = self.admin(caller)?;
        if self.reads_base(caller, id) {
            // The base a clinic extends: its active version only.
            let mut all = store.list_versions(id).await?;
            all.retain(|v| v.active);
            return Ok(all);
        }
        Self::may_manage(caller, id)?;
        Ok(store.list_versions(id).await?)
    }

    /// One stored version with its document, verified against its digest.
    pub async fn version(
        &self,
        caller: &Caller,
        id: &str,
        version: &str,
    ) -> Result<StoredVersion, AppError> {
        let store = self.admin(caller)?;
        let base_reader = self.reads_base(caller, id);
        if !base_reader {
            Self::may_manage(caller, id)?;
        }
        let active_now = store.active_versions().await?.get(id).cloned();
        if base_reader && active_now.as_deref() != Some(version) {
            // Only the active version of the base is a clinic's to read.
            return Err(AppError::NotYourRuleSet {
                id: id.chars().take(64).collect(),
                tenant: caller.tenant.clone().unwrap_or_default(),
            });
        }
        let fetched = store.fetch(id, version).await?;
        let active = active_now.as_deref() == Some(fetched.version.as_str());
        Ok(StoredVersion { fetched, active })
    }

    /// Activates a published version (compare-and-set), through the guard: a move that loosens
    /// what any clinic is served needs `guard.approval`; a dry run answers the effect and moves
    /// nothing.
    pub async fn activate(
        &self,
        caller: &Caller,
        id: &str,
        version: &str,
        expected: ExpectedCurrent,
        guard: &Guard,
    ) -> Result<Moved, AppError> {
        let store = self.admin(caller)?;
        Self::may_manage(caller, id)?;
        let item = Activation {
            id: id.to_owned(),
            version: version.to_owned(),
            expected: Expected::from(expected),
        };
        let m = store
            .activate_guarded(item, caller.key_id.as_deref(), guard)
            .await?;
        self.moved(caller, m).await
    }

    /// Rolls back to the version active before the current one (or `to_version`, earlier on
    /// the line of activations). Needs `expected_current` or an idempotency key: a rollback
    /// without either could roll back twice when retried (428 / FAILED_PRECONDITION).
    pub async fn rollback(
        &self,
        caller: &Caller,
        id: &str,
        request: &Rollback,
        guard: &Guard,
    ) -> Result<Moved, AppError> {
        let store = self.admin(caller)?;
        Self::may_manage(caller, id)?;
        let m = store
            .rollback_guarded(id, request, caller.key_id.as_deref(), guard)
            .await?;
        self.moved(caller, m).await
    }

    /// A move done (logged) or previewed (with its impact on logged traffic).
    async fn moved(&self, caller: &Caller, outcome: MoveOutcome) -> Result<Moved, AppError> {
        if !outcome.dry_run {
            log_activated(&outcome, caller);
        }
        let traffic = self.traffic(caller, &outcome).await?;
        Ok(Moved { outcome, traffic })
    }

    /// The activation history of one rule set, oldest first.
    pub async fn history(&self, caller: &Caller, id: &str) -> Result<Vec<HistoryEntry>, AppError> {
        let store = self.admin(caller)?;
        Self::may_manage(caller, id)?;
        // An id never published is a 404, not an empty history.
        store.list_versions(id).await?;
        Ok(store.history(id).await?)
    }

    /// Retires a version that was never active (its payload is deleted, its name reserved).
    pub async fn retire(
        &self,
        caller: &Caller,
        id: &str,
        version: &str,
    ) -> Result<Retired, AppError> {
        let store = self.admin(caller)?;
        Self::may_manage(caller, id)?;
        let r = store.retire(id, version, caller.key_id.as_deref()).await?;
        tracing::info!(
            id = %r.id,
            version = %r.version,
            digest = %r.digest,
            key = caller.key_id.as_deref().unwrap_or(""),
            "rule set version retired"
        );
        Ok(r)
    }
}

/// An activation or rollback, or its preview: what moves, what it changes for each rule set
/// served, and on a dry run with the decision log on, its impact on logged traffic.
#[derive(Debug, Clone)]
pub struct Moved {
    pub outcome: MoveOutcome,
    pub traffic: Option<super::traffic::TrafficPreview>,
}

fn log_activated(m: &MoveOutcome, caller: &Caller) {
    let a = &m.activated;
    tracing::info!(
        id = %a.id,
        version = %a.version,
        digest = %a.digest,
        previous = a.previous.as_deref().unwrap_or(""),
        key = caller.key_id.as_deref().unwrap_or(""),
        effect = %m.effect.summary(),
        loosenings = m.effect.loosenings_digest().unwrap_or_default(),
        "rule set activated"
    );
}

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The idempotency key of a rollback as received (REST header `Idempotency-Key`, gRPC metadata
/// `idempotency-key`, named `field` in the error): none, or exactly one value of 1 to
/// [`MAX_IDEMPOTENCY_KEY`] visible ASCII characters. One rule for every protocol.
pub fn idempotency_key<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    field: &str,
) -> Result<Option<String>, AppError> {
    let bad = |message: String| AppError::Contradiction {
        field: field.to_owned(),
        message,
    };
    let mut values = values.into_iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(bad("send it once".into()));
    }
    if value.is_empty()
        || value.len() > MAX_IDEMPOTENCY_KEY
        || !value.iter().all(u8::is_ascii_graphic)
    {
        return Err(bad(format!(
            "must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )));
    }
    Ok(Some(String::from_utf8_lossy(value).into_owned()))
}

#[cfg(test)]
mod idempotency_key_tests {
    use proptest::prelude::*;

    use super::{AppError, MAX_IDEMPOTENCY_KEY, idempotency_key};

    proptest! {
        /// One value is taken exactly when it is 1 to 255 visible ASCII characters; anything
        /// else is refused naming the field, never cut, cleaned or guessed.
        #[test]
        fn one_value_is_taken_as_sent_or_refused(value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let valid = !value.is_empty()
                && value.len() <= MAX_IDEMPOTENCY_KEY
                && value.iter().all(u8::is_ascii_graphic);
            match idempotency_key([value.as_slice()], "Idempotency-Key") {
                Ok(Some(key)) => prop_assert!(valid && key.as_bytes() == value.as_slice()),
                Ok(None) => prop_assert!(false, "a value sent is never ignored"),
                Err(AppError::Contradiction { field, .. }) => {
                    prop_assert!(!valid);
                    prop_assert_eq!(field, "Idempotency-Key");
                }
                Err(e) => prop_assert!(false, "{e:?}"),
            }
        }
    }

    #[test]
    fn none_is_none_and_two_are_refused() {
        assert!(matches!(idempotency_key([], "k"), Ok(None)));
        let (a, b): (&[u8], &[u8]) = (b"retry-1", b"retry-2");
        assert!(matches!(
            idempotency_key([a, b], "k"),
            Err(AppError::Contradiction { .. })
        ));
    }
}
