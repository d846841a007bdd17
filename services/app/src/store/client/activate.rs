//! Moving active pointers: activations (one rule set or several at once) and the one step every
//! move goes through, [`RuleSetStore::move_pointers`] — where the guard is checked, at the point
//! of effect, for activations and rollbacks alike.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{
    IDEMPOTENCY_TTL, IdempotencyRecord, Move, Moved, RuleSetStore, check_expected,
    expected_conflict, invalid, now_ms,
};
use crate::catalog::Catalog;
use crate::store::StoreError;
use crate::store::backend::{MovePointers, MoveReply, PointerMove};
use crate::store::guard::Effect;
use crate::store::lineage::Lineage;
use crate::store::payload::check_name;
use crate::store::types::{
    Activated, Activation, Expected, Guard, HistoryEntry, MoveOutcome, Preview,
};

impl RuleSetStore {
    /// Makes `version` the active version of `id`, compare-and-set on `expected_current` (an
    /// [`Expected`], or an `Option<&str>` where `None` is no check). Of two concurrent activations
    /// expecting the same version exactly one succeeds; the other gets a [`StoreError::Conflict`]
    /// naming the version now active.
    pub async fn activate(
        &self,
        id: &str,
        version: &str,
        expected_current: impl Into<Expected>,
    ) -> Result<Activated, StoreError> {
        self.activate_by(id, version, expected_current, None).await
    }

    /// [`Self::activate`], recording `by` (the caller's API key id) in the history.
    pub async fn activate_by(
        &self,
        id: &str,
        version: &str,
        expected_current: impl Into<Expected>,
        by: Option<&str>,
    ) -> Result<Activated, StoreError> {
        let mut done = self
            .activate_many_by(
                &[Activation {
                    id: id.to_owned(),
                    version: version.to_owned(),
                    expected: expected_current.into(),
                }],
                by,
            )
            .await?;
        done.pop().ok_or_else(|| StoreError::NotFound {
            id: id.to_owned(),
            version: Some(version.to_owned()),
        })
    }

    /// Moves several active pointers in one atomic step, e.g. a new base together with the
    /// overlays that need it. The whole resulting catalog is loaded, verified and compiled first
    /// (an overlay whose base is not active, or a base that breaks an active overlay, is
    /// [`StoreError::Invalid`]); the script then re-checks every expectation and that no other
    /// pointer moved meanwhile, sets the pointers and announces them on the channel.
    pub async fn activate_many(&self, items: &[Activation]) -> Result<Vec<Activated>, StoreError> {
        self.activate_many_by(items, None).await
    }

    /// [`Self::activate_many`], recording `by` (the caller's API key id) in each history.
    pub async fn activate_many_by(
        &self,
        items: &[Activation],
        by: Option<&str>,
    ) -> Result<Vec<Activated>, StoreError> {
        let guard = Guard::default();
        let how = Move {
            action: "activate",
            by,
            history_len: None,
            idempotency: None,
            guard: &guard,
        };
        match self.move_pointers(items, how).await? {
            Moved::Done(done, _) | Moved::Preview(done, ..) => Ok(done),
            // Without an idempotency key there is nothing to replay.
            Moved::Replayed(record) => Ok(vec![record.result]),
        }
    }

    /// [`Self::activate_by`] through the guard with an approval, or as a dry run: answers what
    /// the activation changes for every rule set served ([`Effect`]).
    pub async fn activate_guarded(
        &self,
        item: Activation,
        by: Option<&str>,
        guard: &Guard,
    ) -> Result<MoveOutcome, StoreError> {
        let how = Move {
            action: "activate",
            by,
            history_len: None,
            idempotency: None,
            guard,
        };
        let id = item.id.clone();
        let (mut done, effect, preview) = match self.move_pointers(&[item], how).await? {
            Moved::Done(done, effect) => (done, effect, None),
            Moved::Preview(done, effect, preview) => (done, effect, Some(preview)),
            Moved::Replayed(record) => (vec![record.result], record.effect, None),
        };
        let activated = done
            .pop()
            .ok_or(StoreError::NotFound { id, version: None })?;
        Ok(MoveOutcome {
            activated,
            effect,
            dry_run: preview.is_some(),
            preview,
        })
    }

    /// What moving from the `active` pointers to `after` changes for every rule set served,
    /// and the catalog served before. An active catalog that no longer loads (a corrupt
    /// payload) is served by no replica, so nothing served can loosen: the move that repairs it
    /// is not held up.
    async fn effect_of(
        &self,
        active: &BTreeMap<String, String>,
        after: &Catalog,
    ) -> Result<(Effect, Option<Catalog>), StoreError> {
        if active.is_empty() {
            return Ok((Effect::default(), None));
        }
        match self.load_catalog(active, &[]).await {
            Ok(before) => Ok((Effect::of(&before, after)?, Some(before))),
            Err(StoreError::Corrupt { .. } | StoreError::Invalid(_)) => {
                Ok((Effect::default(), None))
            }
            Err(e) => Err(e),
        }
    }

    /// For each rule set the move changes, who published what brings the change: its own new
    /// version, or the new base's when only the base moved under it.
    async fn published_by(
        &self,
        effect: &Effect,
        target: &BTreeMap<String, String>,
        after: &Catalog,
    ) -> Result<BTreeMap<String, Option<String>>, StoreError> {
        let wanted: Vec<(String, String)> = effect
            .rulesets
            .iter()
            .map(|r| {
                let own_moved = r.from.as_deref() != Some(r.to.as_str());
                let base = after
                    .documents
                    .get(&r.ruleset)
                    .and_then(|d| d.extends.clone())
                    .filter(|_| !own_moved);
                match base.and_then(|b| target.get(&b).map(|v| (b, v.clone()))) {
                    Some(pair) => pair,
                    None => (r.ruleset.clone(), r.to.clone()),
                }
            })
            .collect();
        let publishers = self.publishers(&wanted).await?;
        Ok(effect
            .rulesets
            .iter()
            .map(|r| r.ruleset.clone())
            .zip(publishers)
            .collect())
    }

    /// Validates and applies a move of pointers (see [`Self::activate_many`]), recording each in
    /// its rule set's history in the same atomic step: the names, the expectations (checked here
    /// for a prompt answer; the backend checks again atomically), the whole resulting catalog,
    /// what it changes for every rule set served, and the guard.
    pub(super) async fn move_pointers(
        &self,
        items: &[Activation],
        how: Move<'_>,
    ) -> Result<Moved, StoreError> {
        if items.is_empty() {
            return Ok(Moved::Done(Vec::new(), Effect::default()));
        }
        check_items(items)?;
        let active = self.active_versions().await?;
        for item in items {
            check_expected(item, active.get(&item.id))?;
        }
        let mut target = active.clone();
        for item in items {
            target.insert(item.id.clone(), item.version.clone());
        }
        let catalog = self.load_catalog(&target, items).await?;
        let (effect, before) = self.effect_of(&active, &catalog).await?;
        let activated = activated(items, &active, &catalog);
        if how.guard.dry_run {
            let preview = Preview {
                before: before.map(Arc::new),
                after: Arc::new(catalog),
            };
            return Ok(Moved::Preview(activated, effect, preview));
        }
        let published_by = self.published_by(&effect, &target, &catalog).await?;
        effect.check(
            how.guard.approval.as_ref(),
            how.by,
            &published_by,
            self.options.single_person_approval,
        )?;
        let step = step(items, &activated, &effect, &how, &active);
        let reply = match self.backend.move_pointers(step).await {
            Ok(reply) => reply,
            // The script was sent: whether Redis ran it is unknown.
            Err(StoreError::Unavailable(e)) => {
                let first = &items[0];
                return Err(StoreError::OutcomeUnknown {
                    id: first.id.clone(),
                    version: first.version.clone(),
                    action: how.action,
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        };
        self.answer(reply, items, &active, activated, effect).await
    }

    /// What the backend's reply to a move means for the caller.
    async fn answer(
        &self,
        reply: MoveReply,
        items: &[Activation],
        active: &BTreeMap<String, String>,
        activated: Vec<Activated>,
        effect: Effect,
    ) -> Result<Moved, StoreError> {
        match reply {
            MoveReply::Moved => Ok(Moved::Done(activated, effect)),
            MoveReply::Replay(record) => serde_json::from_str::<IdempotencyRecord>(&record)
                .map(Moved::Replayed)
                .map_err(|_| {
                    StoreError::Unavailable(crate::store::connection::timed_out(
                        "reading an idempotency record",
                    ))
                }),
            MoveReply::Missing { id, version } => {
                if self.is_retired(&id, &version).await? {
                    Err(StoreError::Retired { id, version })
                } else {
                    Err(StoreError::NotFound {
                        id,
                        version: Some(version),
                    })
                }
            }
            MoveReply::Conflict { id, current } => match items.iter().find(|i| i.id == id) {
                Some(item) => Err(expected_conflict(item, current)),
                None => Err(StoreError::conflict(
                    &id,
                    "",
                    current,
                    "activation lost a race".into(),
                )),
            },
            MoveReply::Changed => {
                let first = items.first();
                Err(StoreError::conflict(
                    first.map_or("", |i| i.id.as_str()),
                    first.map_or("", |i| i.version.as_str()),
                    first.and_then(|i| active.get(&i.id).cloned()),
                    "the active rule sets changed while this activation was being validated; retry"
                        .into(),
                ))
            }
        }
    }
}

/// Every item names a valid id and version, and no rule set is listed twice.
fn check_items(items: &[Activation]) -> Result<(), StoreError> {
    for (n, item) in items.iter().enumerate() {
        check_name("id", &item.id)?;
        check_name("version", &item.version)?;
        if items[..n].iter().any(|other| other.id == item.id) {
            return Err(invalid(
                "id",
                format!("rule set '{}' is listed twice", item.id),
            ));
        }
    }
    Ok(())
}

/// What each item's move answers: the version made active, its digest in the resulting catalog
/// and the version it replaces.
fn activated(
    items: &[Activation],
    active: &BTreeMap<String, String>,
    catalog: &Catalog,
) -> Vec<Activated> {
    items
        .iter()
        .map(|item| Activated {
            id: item.id.clone(),
            version: item.version.clone(),
            digest: catalog
                .rulesets
                .get(&item.id)
                .map(|rs| rs.meta().digest.clone())
                .unwrap_or_default(),
            previous: active.get(&item.id).cloned(),
        })
        .collect()
}

/// The backend's atomic step for a validated move: each pointer with its expectation and
/// history entry (what changed, who moved it, the approval of its loosenings), the active map
/// it was validated against, and the idempotency record a rollback keeps.
fn step<'a>(
    items: &'a [Activation],
    activated: &[Activated],
    effect: &Effect,
    how: &'a Move<'a>,
    active: &'a BTreeMap<String, String>,
) -> MovePointers<'a> {
    let summary = (!effect.rulesets.is_empty()).then(|| effect.summary());
    let approval = effect.loosenings_digest().and(how.guard.approval.clone());
    let at_ms = now_ms();
    let idempotency = how.idempotency.as_ref().map(|(key_hash, request)| {
        let record = IdempotencyRecord {
            request: (*request).clone(),
            result: activated.first().cloned().unwrap_or_else(|| Activated {
                id: String::new(),
                version: String::new(),
                digest: String::new(),
                previous: None,
            }),
            effect: effect.clone(),
        };
        (
            key_hash.as_str(),
            IDEMPOTENCY_TTL.as_millis() as u64,
            serde_json::to_string(&record).unwrap_or_default(),
        )
    });
    MovePointers {
        items: items
            .iter()
            .zip(activated)
            .map(|(item, done)| PointerMove {
                id: &item.id,
                version: &item.version,
                expected: &item.expected,
                history_len: how.history_len,
                entry: serde_json::to_string(&HistoryEntry {
                    version: done.version.clone(),
                    digest: done.digest.clone(),
                    at_ms,
                    by: how.by.map(str::to_owned),
                    previous: done.previous.clone(),
                    action: how.action.to_owned(),
                    effect: summary.clone(),
                    approval: approval.clone(),
                })
                .unwrap_or_default(),
            })
            .collect(),
        validated: active,
        idempotency,
        message: serde_json::json!({ "activated": activated }).to_string(),
        epoch: Lineage::first().epoch,
    }
}
