//! Rolling a rule set back along its activation history (never publish order; see `history`).
//!
//! A rollback must be safe to retry, so it needs a compare-and-set or an idempotency key. With a
//! key, two requests racing with the same key are one rollback: whichever loses — at its reads or
//! in the script — answers what the winner recorded (the one place that rule lives is
//! [`RuleSetStore::rollback_guarded`]).

use super::{IdempotencyRecord, Move, Moved, RuleSetStore, invalid};
use crate::store::StoreError;
use crate::store::history::{NoTarget, rollback_target};
use crate::store::payload::{self, check_name};
use crate::store::types::{Activated, Activation, Expected, Guard, MoveOutcome, Rollback};

impl RuleSetStore {
    /// Rolls `id` back to the version that was active before the current one, read from the
    /// activation history (not publish order; see `history`), or to `to_version` when it is
    /// earlier on that line. Recorded in the history as a `rollback` by `by`.
    ///
    /// A rollback must be safe to retry: it needs `expected_current` (compare-and-set, as for
    /// [`activate`](Self::activate)) or an `idempotency_key`, else it is
    /// [`StoreError::PreconditionRequired`]. With a key, the first answer is kept in Redis for
    /// 24 hours, in the same script that moves the pointer: a retry with the same key gets that
    /// answer and moves nothing, and the same key for another request is
    /// [`StoreError::IdempotencyKeyReused`].
    pub async fn rollback(
        &self,
        id: &str,
        request: &Rollback,
        by: Option<&str>,
    ) -> Result<Activated, StoreError> {
        self.rollback_guarded(id, request, by, &Guard::default())
            .await
            .map(|m| m.activated)
    }

    /// [`Self::rollback`] through the guard with an approval, or as a dry run: answers what the
    /// rollback changes for every rule set served ([`crate::store::Effect`]).
    ///
    /// A request with an idempotency key that meets a conflict — the pointer or the history moved
    /// between its reads, or under its script — first asks whether a request with the same key
    /// made that move: if so it answers that request's answer, as a retry would.
    pub async fn rollback_guarded(
        &self,
        id: &str,
        request: &Rollback,
        by: Option<&str>,
        guard: &Guard,
    ) -> Result<MoveOutcome, StoreError> {
        let key_hash = checked_key(id, request)?;
        if let Some(key_hash) = &key_hash
            && let Some(record) = self.idempotency_record(id, key_hash).await?
        {
            return replayed(id, request, record);
        }
        match (
            self.roll_back(id, request, by, guard, key_hash.clone())
                .await,
            key_hash,
        ) {
            (Err(e @ StoreError::Conflict { .. }), Some(key_hash)) => {
                match self.idempotency_record(id, &key_hash).await? {
                    Some(record) => replayed(id, request, record),
                    None => Err(e),
                }
            }
            (outcome, _) => outcome,
        }
    }

    /// Reads the line of activations, picks the target and moves the pointer (or previews it).
    async fn roll_back(
        &self,
        id: &str,
        request: &Rollback,
        by: Option<&str>,
        guard: &Guard,
        key_hash: Option<String>,
    ) -> Result<MoveOutcome, StoreError> {
        let current = self.rollback_current(id, request).await?;
        let history = self.history(id).await?;
        let target = rollback_target(&history, &current, request.to_version.as_deref())
            .map_err(|why| no_target(id, &current, request, why))?
            .to_owned();
        let how = Move {
            action: "rollback",
            by,
            history_len: Some(history.len()),
            // A dry run remembers nothing under the idempotency key.
            idempotency: key_hash.filter(|_| !guard.dry_run).map(|k| (k, request)),
            guard,
        };
        let items = [Activation {
            id: id.to_owned(),
            version: target,
            expected: Expected::Version(request.expected_current.clone().unwrap_or(current)),
        }];
        let first = |mut list: Vec<Activated>| {
            list.pop().ok_or_else(|| StoreError::NotFound {
                id: id.to_owned(),
                version: None,
            })
        };
        match self.move_pointers(&items, how).await? {
            Moved::Done(list, effect) => Ok(MoveOutcome {
                activated: first(list)?,
                effect,
                dry_run: false,
                preview: None,
            }),
            Moved::Preview(list, effect, preview) => Ok(MoveOutcome {
                activated: first(list)?,
                effect,
                dry_run: true,
                preview: Some(preview),
            }),
            Moved::Replayed(record) => replayed(id, request, record),
        }
    }

    /// The version active now, checking that a named `to_version` was published.
    async fn rollback_current(&self, id: &str, request: &Rollback) -> Result<String, StoreError> {
        let versions = self.list_versions(id).await?;
        if let Some(to_version) = &request.to_version
            && !versions.iter().any(|v| &v.version == to_version)
        {
            return Err(StoreError::NotFound {
                id: id.to_owned(),
                version: Some(to_version.clone()),
            });
        }
        versions
            .into_iter()
            .find(|v| v.active)
            .map(|v| v.version)
            .ok_or_else(|| {
                StoreError::conflict(
                    id,
                    request.to_version.as_deref().unwrap_or_default(),
                    None,
                    "no version is active, so there is nothing to roll back; activate instead"
                        .into(),
                )
            })
    }

    /// The record kept under an idempotency key, if a request with it has moved the pointer.
    async fn idempotency_record(
        &self,
        id: &str,
        key_hash: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let prior = self.backend.idempotency(id, key_hash).await?;
        Ok(prior.and_then(|r| serde_json::from_str(&r).ok()))
    }
}

/// Checks the request's names and that it is safe to retry; answers the hash of its idempotency
/// key, if it has one.
fn checked_key(id: &str, request: &Rollback) -> Result<Option<String>, StoreError> {
    check_name("id", id)?;
    if let Some(v) = &request.to_version {
        check_name("to_version", v)?;
    }
    if let Some(v) = &request.expected_current {
        check_name("expected_current", v)?;
    }
    match (&request.expected_current, &request.idempotency_key) {
        (None, None) => Err(StoreError::PreconditionRequired {
            field: "expected_current",
        }),
        (_, Some(key)) => Ok(Some(payload::sha256_digest(key.as_bytes()))),
        (Some(_), None) => Ok(None),
    }
}

/// Why there is nothing to roll back to, as the error an author acts on.
fn no_target(id: &str, current: &str, request: &Rollback, why: NoTarget) -> StoreError {
    let conflict =
        |message: String| StoreError::conflict(id, current, Some(current.to_owned()), message);
    match why {
        NoTarget::First => conflict(format!(
            "'{current}' is the first version activated: there is nothing before it to roll back to"
        )),
        NoTarget::NoHistory => conflict(format!(
            "the activation history does not record how '{current}' became active, so the version before it is unknown; activate the version you want instead"
        )),
        NoTarget::NotEarlier => {
            let named = request.to_version.as_deref().unwrap_or_default();
            invalid(
                "to_version",
                format!(
                    "'{named}' was not active before '{current}' (never activated, rolled back from, or active now); roll back only to an earlier active version, or activate it"
                ),
            )
        }
    }
}

/// The answer kept under an idempotency key, for the same request; another request reusing the
/// key is refused.
fn replayed(
    id: &str,
    request: &Rollback,
    record: IdempotencyRecord,
) -> Result<MoveOutcome, StoreError> {
    if record.request.to_version == request.to_version
        && record.request.expected_current == request.expected_current
        && record.result.id == id
    {
        Ok(MoveOutcome {
            activated: record.result,
            effect: record.effect,
            dry_run: false,
            preview: None,
        })
    } else {
        Err(StoreError::IdempotencyKeyReused { id: id.to_owned() })
    }
}
