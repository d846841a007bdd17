//! The memory backend: the store's state in one process, behind one lock (each operation is
//! atomic because it holds the lock throughout, as a Lua script holds Redis). For tests and
//! tools that need the store's rules without a Redis; run through the same conformance suite as
//! Redis, so it answers as Redis does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::{
    ActiveState, Backend, MovePointers, MoveReply, Notices, Publish, PublishReply, Retire,
    RetireReply, Seed, SeedWhen, StoredDoc, VersionsRecord,
};
use crate::store::StoreError;
use crate::store::lineage::Lineage;
use crate::store::types::Expected;

/// The store's state in memory; activation notices on a broadcast channel.
pub(crate) struct MemoryBackend {
    state: Mutex<State>,
    notices: broadcast::Sender<()>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            notices: broadcast::channel(64).0,
        }
    }
}

/// What Redis holds under the keys of `Keys`, one map per key kind.
#[derive(Default)]
struct State {
    /// (id, version) → payload.
    docs: HashMap<(String, String), String>,
    /// id → version → digest.
    digests: HashMap<String, BTreeMap<String, String>>,
    /// id → version → publish time (ms).
    versions: HashMap<String, BTreeMap<String, i64>>,
    retired: HashMap<String, BTreeMap<String, String>>,
    loosenings: HashMap<String, BTreeMap<String, String>>,
    publishers: HashMap<String, BTreeMap<String, String>>,
    history: HashMap<String, Vec<String>>,
    activated: HashMap<String, BTreeSet<String>>,
    /// (id, key hash) → record, until it expires.
    idempotency: HashMap<(String, String), (String, Instant)>,
    active: BTreeMap<String, String>,
    lineage: Option<Lineage>,
}

impl MemoryBackend {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves no half-applied step: every step checks before
        // it writes. So a poisoned lock's state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn announce(&self) {
        // No subscriber is no error: nobody is listening yet.
        let _ = self.notices.send(());
    }
}

fn field<'m>(
    map: &'m HashMap<String, BTreeMap<String, String>>,
    id: &str,
    version: &str,
) -> Option<&'m String> {
    map.get(id).and_then(|m| m.get(version))
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn publish(&self, op: Publish<'_>) -> Result<PublishReply, StoreError> {
        let mut s = self.state();
        let stored = || {
            field(&s.digests, op.id, op.version)
                .cloned()
                .unwrap_or_default()
        };
        if field(&s.retired, op.id, op.version).is_some() {
            return Ok(PublishReply::Retired(stored()));
        }
        let key = (op.id.to_owned(), op.version.to_owned());
        if s.docs.contains_key(&key) {
            return Ok(PublishReply::Exists(stored()));
        }
        s.docs.insert(key, op.payload.to_owned());
        let (id, version) = (op.id.to_owned(), op.version.to_owned());
        s.digests
            .entry(id.clone())
            .or_default()
            .insert(version.clone(), op.digest.to_owned());
        s.versions
            .entry(id.clone())
            .or_default()
            .entry(version.clone())
            .or_insert(op.at_ms);
        if let Some(loosening) = op.loosening {
            s.loosenings
                .entry(id.clone())
                .or_default()
                .insert(version.clone(), loosening);
        }
        if let Some(publisher) = op.publisher.filter(|p| !p.is_empty()) {
            s.publishers
                .entry(id)
                .or_default()
                .insert(version, publisher.to_owned());
        }
        Ok(PublishReply::Stored)
    }

    async fn versions(&self, id: &str) -> Result<VersionsRecord, StoreError> {
        let s = self.state();
        let mut versions: Vec<(String, i64)> = s
            .versions
            .get(id)
            .map(|m| m.iter().map(|(v, at)| (v.clone(), *at)).collect())
            .unwrap_or_default();
        // A sorted set's order: by score, then by member.
        versions.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let map =
            |m: &HashMap<String, BTreeMap<String, String>>| m.get(id).cloned().unwrap_or_default();
        Ok(VersionsRecord {
            versions,
            digests: map(&s.digests),
            active: s.active.get(id).cloned(),
            ever: s.activated.get(id).cloned().unwrap_or_default(),
            retired: map(&s.retired),
            loosenings: map(&s.loosenings),
        })
    }

    async fn ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.state().versions.keys().cloned().collect())
    }

    async fn active(&self) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(self.state().active.clone())
    }

    async fn active_state(&self) -> Result<ActiveState, StoreError> {
        let s = self.state();
        Ok(ActiveState {
            pointers: s.active.clone(),
            lineage: s.lineage.clone(),
        })
    }

    async fn has_active(&self) -> Result<bool, StoreError> {
        Ok(!self.state().active.is_empty())
    }

    async fn docs(&self, wanted: &[(String, String)]) -> Result<Vec<StoredDoc>, StoreError> {
        let s = self.state();
        Ok(wanted
            .iter()
            .map(|(id, version)| {
                (
                    s.docs.get(&(id.clone(), version.clone())).cloned(),
                    field(&s.digests, id, version).cloned(),
                )
            })
            .collect())
    }

    async fn publishers(
        &self,
        wanted: &[(String, String)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let s = self.state();
        Ok(wanted
            .iter()
            .map(|(id, version)| field(&s.publishers, id, version).cloned())
            .collect())
    }

    async fn move_pointers(&self, op: MovePointers<'_>) -> Result<MoveReply, StoreError> {
        let mut s = self.state();
        let now = Instant::now();
        let idempotency = op.idempotency.as_ref().zip(op.items.first()).map(
            |((key_hash, ttl, record), first)| {
                (
                    (first.id.to_owned(), (*key_hash).to_owned()),
                    Duration::from_millis(*ttl),
                    record.clone(),
                )
            },
        );
        if let Some((key, ..)) = &idempotency
            && let Some((prior, until)) = s.idempotency.get(key)
            && *until > now
        {
            return Ok(MoveReply::Replay(prior.clone()));
        }
        for item in &op.items {
            let current = s.active.get(item.id);
            let holds = match item.expected {
                Expected::Any => true,
                Expected::Absent => current.is_none(),
                Expected::Version(v) => current == Some(v),
            };
            if !holds {
                return Ok(MoveReply::Conflict {
                    id: item.id.to_owned(),
                    current: current.cloned(),
                });
            }
            if !s
                .docs
                .contains_key(&(item.id.to_owned(), item.version.to_owned()))
            {
                return Ok(MoveReply::Missing {
                    id: item.id.to_owned(),
                    version: item.version.to_owned(),
                });
            }
            let len = s.history.get(item.id).map_or(0, Vec::len);
            if item.history_len.is_some_and(|expected| expected != len) {
                return Ok(MoveReply::Changed);
            }
        }
        if &s.active != op.validated {
            return Ok(MoveReply::Changed);
        }
        for item in &op.items {
            let previous = s.active.insert(item.id.to_owned(), item.version.to_owned());
            s.history
                .entry(item.id.to_owned())
                .or_default()
                .push(item.entry.clone());
            let ever = s.activated.entry(item.id.to_owned()).or_default();
            ever.insert(item.version.to_owned());
            ever.extend(previous);
        }
        if let Some((key, ttl, record)) = idempotency {
            s.idempotency.insert(key, (record, now + ttl));
        }
        let lineage = s.lineage.get_or_insert_with(|| Lineage {
            epoch: op.epoch.clone(),
            seq: 0,
        });
        lineage.seq += 1;
        drop(s);
        self.announce();
        Ok(MoveReply::Moved)
    }

    async fn seed(&self, op: Seed<'_>) -> Result<bool, StoreError> {
        let mut s = self.state();
        let may = match &op.when {
            SeedWhen::Empty => s.active.is_empty() && s.lineage.is_none(),
            SeedWhen::Holds(read) => s.lineage == *read,
        };
        if !may {
            return Ok(false);
        }
        s.active.clear();
        s.lineage = Some(op.lineage);
        for (id, version, entry) in op.items {
            s.active.insert(id.to_owned(), version.to_owned());
            s.history.entry(id.to_owned()).or_default().push(entry);
            s.activated
                .entry(id.to_owned())
                .or_default()
                .insert(version.to_owned());
        }
        drop(s);
        self.announce();
        Ok(true)
    }

    async fn history(&self, id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.state().history.get(id).cloned().unwrap_or_default())
    }

    async fn idempotency(&self, id: &str, key_hash: &str) -> Result<Option<String>, StoreError> {
        let s = self.state();
        Ok(s.idempotency
            .get(&(id.to_owned(), key_hash.to_owned()))
            .filter(|(_, until)| *until > Instant::now())
            .map(|(record, _)| record.clone()))
    }

    async fn retire(&self, op: Retire<'_>) -> Result<RetireReply, StoreError> {
        let mut s = self.state();
        if s.active.get(op.id).map(String::as_str) == Some(op.version) {
            return Ok(RetireReply::Active);
        }
        if s.activated
            .get(op.id)
            .is_some_and(|e| e.contains(op.version))
        {
            return Ok(RetireReply::WasActive);
        }
        if let Some(prior) = field(&s.retired, op.id, op.version) {
            return Ok(RetireReply::Retired(prior.clone()));
        }
        if !s
            .versions
            .get(op.id)
            .is_some_and(|v| v.contains_key(op.version))
        {
            return Ok(RetireReply::Missing);
        }
        s.docs.remove(&(op.id.to_owned(), op.version.to_owned()));
        s.retired
            .entry(op.id.to_owned())
            .or_default()
            .insert(op.version.to_owned(), op.record.clone());
        Ok(RetireReply::Retired(op.record))
    }

    async fn digest(&self, id: &str, version: &str) -> Result<Option<String>, StoreError> {
        Ok(field(&self.state().digests, id, version).cloned())
    }

    async fn is_retired(&self, id: &str, version: &str) -> Result<bool, StoreError> {
        Ok(field(&self.state().retired, id, version).is_some())
    }

    async fn subscribe(&self) -> Result<Box<dyn Notices>, StoreError> {
        Ok(Box::new(MemoryNotices(self.notices.subscribe())))
    }
}

/// A subscription to the memory backend's notices.
struct MemoryNotices(broadcast::Receiver<()>);

#[async_trait::async_trait]
impl Notices for MemoryNotices {
    async fn next(&mut self) -> bool {
        // A subscriber that lagged missed notices, which a reconcile covers all the same.
        !matches!(
            self.0.recv().await,
            Err(broadcast::error::RecvError::Closed)
        )
    }

    fn drain(&mut self) {
        while !matches!(
            self.0.try_recv(),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
        ) {}
    }

    async fn alive(&mut self) -> bool {
        true
    }
}
