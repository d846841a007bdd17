//! [`RuleSetStore`]: published versions and active pointers in Redis.
//!
//! Used by the admin API (publish, list, fetch, activate, roll back) and by the sync task (load the
//! active catalog). Never by the request path: decisions are answered from the in-memory catalog.
//!
//! Every write that must be atomic is one Lua script (see `scripts`); every read of several keys is
//! one pipeline. Every document is validated before it is stored, and every activation validates
//! the whole catalog it would produce, so Redis never holds an active set that does not compile —
//! and a replica re-validates anyway when it loads, in case something else wrote to Redis.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use protocol_engine::{Format, LoadError, Problem, RuleSetDoc, diff, parse_document};

use super::StoreError;
use super::backend::memory::MemoryBackend;
use super::backend::redis::RedisBackend;
use super::backend::{
    ActiveState, Backend, Notices, Publish, PublishReply, Retire, RetireReply, Seed, SeedWhen,
    StoredDoc, VersionsRecord,
};
use super::connection::RedisConfig;
use super::guard::Effect;
use super::keys::Keys;
use super::lineage::Lineage;
use super::payload::{self, check_name};
use super::types::{
    Activated, Activation, Expected, Fetched, Guard, HistoryEntry, Preview, Published, Retired,
    Rollback, StoreOptions, VersionInfo,
};
use crate::catalog::{ActiveEntry, Catalog, Origin};

mod activate;
mod rollback;

/// The active rule sets Redis holds ([`RuleSetStore::active_documents`]) and the lineage of that
/// state.
#[derive(Debug, Clone)]
pub struct ActiveDocuments {
    /// `None`: Redis records no lineage (empty, or written before lineages existed).
    pub lineage: Option<Lineage>,
    /// id → the active version and its verified document (or why it failed).
    pub entries: BTreeMap<String, ActiveEntry>,
}

/// Published rule-set versions and the active pointers, in Redis. Cheap to clone (the command
/// connection is shared and reconnects by itself; see `connection`).
#[derive(Clone)]
pub struct RuleSetStore {
    backend: Arc<dyn Backend>,
    keys: Keys,
    options: StoreOptions,
}

impl std::fmt::Debug for RuleSetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print the client.
        f.debug_struct("RuleSetStore")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl RuleSetStore {
    /// A store for a Redis URL, with default timeouts. Performs no I/O: an unreachable Redis
    /// surfaces as [`StoreError::Unavailable`] on first use, never here.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, StoreOptions::default())
    }

    pub fn open_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        Self::open_config(&RedisConfig::url(url)?, options)
    }

    /// A store for Redis as the settings describe it (TLS files, ACL user, Sentinel, replica
    /// acknowledgements). Performs no I/O, like [`Self::open`].
    pub fn open_config(config: &RedisConfig, options: StoreOptions) -> Result<Self, StoreError> {
        let connector = config.connector(&options)?;
        let conn = connector.command_connection()?;
        let keys = Keys::with_prefix(&options.prefix);
        Ok(Self {
            backend: Arc::new(RedisBackend {
                connector,
                conn,
                keys: keys.clone(),
                connect_timeout: options.connect_timeout,
                response_timeout: options.response_timeout,
            }),
            keys,
            options,
        })
    }

    /// A store whose state lives in this process (no Redis): the same rules, the same answers
    /// (one conformance suite runs both), for tests and tools. Clones share the state.
    pub fn in_memory(options: StoreOptions) -> Self {
        Self {
            backend: Arc::new(MemoryBackend::default()),
            keys: Keys::with_prefix(&options.prefix),
            options,
        }
    }

    /// Another handle on the same state with other options (a key that may or may not approve
    /// its own loosenings); the key prefix stays the state's.
    pub fn with_options(&self, options: StoreOptions) -> Self {
        Self {
            backend: Arc::clone(&self.backend),
            keys: self.keys.clone(),
            options: StoreOptions {
                prefix: self.options.prefix.clone(),
                ..options
            },
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Round trip to Redis.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    /// Parses a YAML or JSON body and publishes it (see [`Self::publish`]).
    pub async fn publish_text(&self, text: &str, format: Format) -> Result<Published, StoreError> {
        let doc = parse_document(text, format).map_err(StoreError::Invalid)?;
        self.publish(doc).await
    }

    /// Validates a document and stores it immutably.
    ///
    /// An overlay is compiled against the base active in Redis, so a loosening change is refused
    /// here, naming the field and both values. A base is compiled on its own: whether the active
    /// overlays still fit it is checked when it is activated (possibly together with new overlays,
    /// see [`Self::activate_many`]).
    ///
    /// Re-publishing the same content is idempotent (`created: false`); the same version with
    /// other content is a [`StoreError::Conflict`].
    pub async fn publish(&self, doc: RuleSetDoc) -> Result<Published, StoreError> {
        self.publish_by(doc, None).await
    }

    /// [`Self::publish`], recording `by` (the caller's API key id) as the version's publisher:
    /// the key that may not approve serving the loosenings it brings (four eyes).
    pub async fn publish_by(
        &self,
        doc: RuleSetDoc,
        by: Option<&str>,
    ) -> Result<Published, StoreError> {
        check_name("id", &doc.id)?;
        check_name("version", &doc.version)?;
        payload::check_size(&payload::encode(&doc))?;
        self.validate_for_publish(&doc).await?;
        self.store_version(&doc, by).await
    }

    /// The API key id that first published each (id, version), `None` when none was recorded.
    async fn publishers(
        &self,
        wanted: &[(String, String)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.backend.publishers(wanted).await
    }

    async fn validate_for_publish(&self, doc: &RuleSetDoc) -> Result<(), StoreError> {
        let mut docs = Vec::with_capacity(2);
        if let Some(base_id) = &doc.extends {
            let active = self.active_versions().await?;
            let Some(base_version) = active.get(base_id) else {
                return Err(invalid(
                    "extends",
                    format!("base rule set '{base_id}' is not active in the store"),
                ));
            };
            docs.push(self.fetch(base_id, base_version).await?.document);
        }
        docs.push(doc.clone());
        Catalog::from_documents(docs.clone(), Origin::Redis).map_err(StoreError::Invalid)?;
        let base = doc.extends.as_ref().and(docs.first());
        self.refuse_undeclared_loosening(doc, base).await
    }

    /// The loosening guard: a version more permissive than the active version of the same rule
    /// set (by [`protocol_engine::diff`], against the same active base) is refused, naming each
    /// loosening with its path and line, unless the document declares `loosening: {reason,
    /// approved_by}`. Every publish (REST and gRPC) comes through here.
    async fn refuse_undeclared_loosening(
        &self,
        doc: &RuleSetDoc,
        base: Option<&RuleSetDoc>,
    ) -> Result<(), StoreError> {
        if doc.loosening.is_some() {
            return Ok(());
        }
        let Some(active) = self.active_versions().await?.get(&doc.id).cloned() else {
            return Ok(());
        };
        let old = match self.fetch(&doc.id, &active).await {
            Ok(fetched) => fetched.document,
            // A corrupt active payload is served by no replica (each refuses it), so there is
            // nothing to loosen; publishing a good version is how an operator recovers.
            Err(StoreError::Corrupt { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let diff =
            diff::diff(diff::Side { doc: &old, base }, diff::Side { doc, base }).map_err(|e| {
                invalid(
                    "",
                    format!(
                        "the active version '{active}' of '{}' cannot be compared with this one \
                     ({e}); declare `loosening: {{reason, approved_by}}` to publish anyway",
                        doc.id
                    ),
                )
            })?;
        // One problem per edited entry (a role cap reaching many grid cells is one), at its line.
        let problems: Vec<Problem> = diff
            .groups()
            .into_iter()
            .filter(|g| g.first.direction == diff::Direction::Looser)
            .map(|g| {
                let c = g.first;
                let at = c.new_at.as_ref().or(c.old_at.as_ref());
                Problem::new(
                    at.map_or_else(String::new, |l| l.path.clone()),
                    at.and_then(|l| l.line),
                    format!(
                        "loosens the active version '{active}': {}; declare `loosening: {{reason, \
                         approved_by}}` in the document to publish it",
                        g.describe()
                    ),
                )
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Invalid(LoadError { problems }))
        }
    }

    /// Writes one version with `SET NX` (no validation: callers validate), recording `by` as its
    /// publisher when it is stored now (a re-publish by another key changes nothing).
    async fn store_version(
        &self,
        doc: &RuleSetDoc,
        by: Option<&str>,
    ) -> Result<Published, StoreError> {
        let encoded = payload::encode(doc);
        let reply = self
            .backend
            .publish(Publish {
                id: &doc.id,
                version: &doc.version,
                payload: &encoded.json,
                digest: &encoded.digest,
                at_ms: now_ms(),
                loosening: doc
                    .loosening
                    .as_ref()
                    .and_then(|l| serde_json::to_string(l).ok()),
                publisher: by,
            })
            .await?;
        let created = match reply {
            PublishReply::Stored => true,
            PublishReply::Exists(stored) if stored == encoded.digest => false,
            PublishReply::Retired(_) => {
                return Err(StoreError::conflict(
                    &doc.id,
                    &doc.version,
                    None,
                    format!(
                        "version '{}' was retired and its name stays reserved; publish under a new version",
                        doc.version
                    ),
                ));
            }
            PublishReply::Exists(stored) => {
                return Err(StoreError::conflict(
                    &doc.id,
                    &doc.version,
                    None,
                    format!(
                        "version '{}' is already published with other content (digest {stored}, this one {}); publish it under a new version",
                        doc.version, encoded.digest
                    ),
                ));
            }
        };
        Ok(Published {
            id: doc.id.clone(),
            version: doc.version.clone(),
            digest: encoded.digest,
            created,
        })
    }

    /// Every published version of a rule set, oldest first.
    pub async fn list_versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError> {
        check_name("id", id)?;
        let VersionsRecord {
            versions,
            digests,
            active,
            ever,
            retired,
            loosenings,
        } = self.backend.versions(id).await?;
        if versions.is_empty() {
            return Err(StoreError::NotFound {
                id: id.to_owned(),
                version: None,
            });
        }
        Ok(versions
            .into_iter()
            .map(|(version, published_at_ms)| VersionInfo {
                digest: digests.get(&version).cloned().unwrap_or_default(),
                active: active.as_deref() == Some(version.as_str()),
                ever_active: ever.contains(&version) || active.as_deref() == Some(version.as_str()),
                retired_at_ms: retired
                    .get(&version)
                    .and_then(|r| serde_json::from_str::<RetiredRecord>(r).ok())
                    .map(|r| r.at_ms),
                loosening: loosenings
                    .get(&version)
                    .and_then(|l| serde_json::from_str(l).ok()),
                published_at_ms,
                version,
            })
            .collect())
    }

    /// Every rule-set id with at least one published version, sorted (also ids never activated,
    /// e.g. a new clinic overlay). `SCAN`s the versions keys: for the admin API, never the
    /// request path.
    pub async fn list_ids(&self) -> Result<Vec<String>, StoreError> {
        let ids: std::collections::BTreeSet<String> =
            self.backend.ids().await?.into_iter().collect();
        Ok(ids.into_iter().collect())
    }

    /// One stored version, verified against its digest.
    pub async fn fetch(&self, id: &str, version: &str) -> Result<Fetched, StoreError> {
        check_name("id", id)?;
        check_name("version", version)?;
        let mut docs = self
            .get_docs(&[(id.to_owned(), version.to_owned())])
            .await?;
        let (json, digest) = docs.pop().unwrap_or_default();
        let (Some(json), Some(digest)) = (json, digest) else {
            if self.is_retired(id, version).await? {
                return Err(StoreError::Retired {
                    id: id.to_owned(),
                    version: version.to_owned(),
                });
            }
            return Err(StoreError::NotFound {
                id: id.to_owned(),
                version: Some(version.to_owned()),
            });
        };
        let document = payload::decode(id, version, Some(json.clone()), Some(digest.clone()))?;
        Ok(Fetched {
            id: id.to_owned(),
            version: version.to_owned(),
            digest,
            document,
            json,
        })
    }

    /// id → active version, as Redis holds it now.
    pub async fn active_versions(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.backend.active().await
    }

    /// The activation history of `id`, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        check_name("id", id)?;
        let entries = self.backend.history(id).await?;
        entries
            .iter()
            .map(|e| {
                serde_json::from_str(e).map_err(|err| StoreError::Corrupt {
                    id: id.to_owned(),
                    version: String::new(),
                    reason: format!("activation history entry unreadable: {err}"),
                })
            })
            .collect()
    }

    /// Retires a version that was never active: its payload is deleted, its name stays reserved
    /// (it cannot be published or activated again) and `versions` lists it as retired. A version
    /// that is or ever was active is kept ([`StoreError::WasActive`]), so that every decision
    /// made with it can be replayed. Retiring a retired version answers the first retirement.
    pub async fn retire(
        &self,
        id: &str,
        version: &str,
        by: Option<&str>,
    ) -> Result<Retired, StoreError> {
        check_name("id", id)?;
        check_name("version", version)?;
        let record = RetiredRecord {
            at_ms: now_ms(),
            by: by.map(str::to_owned),
        };
        let reply = self
            .backend
            .retire(Retire {
                id,
                version,
                record: serde_json::to_string(&record).unwrap_or_default(),
            })
            .await?;
        let was_active = |active_now| StoreError::WasActive {
            id: id.to_owned(),
            version: version.to_owned(),
            active_now,
        };
        match reply {
            RetireReply::Retired(kept) => {
                let record: RetiredRecord = serde_json::from_str(&kept).unwrap_or(record);
                let digest = self.backend.digest(id, version).await?;
                Ok(Retired {
                    id: id.to_owned(),
                    version: version.to_owned(),
                    digest: digest.unwrap_or_default(),
                    at_ms: record.at_ms,
                    by: record.by,
                })
            }
            RetireReply::Active => Err(was_active(true)),
            RetireReply::WasActive => Err(was_active(false)),
            RetireReply::Missing => Err(StoreError::NotFound {
                id: id.to_owned(),
                version: Some(version.to_owned()),
            }),
        }
    }

    /// Whether `version` of `id` was retired.
    pub async fn is_retired(&self, id: &str, version: &str) -> Result<bool, StoreError> {
        self.backend.is_retired(id, version).await
    }

    /// The active rule sets as Redis holds them, each payload verified against its digest on its
    /// own: a payload that fails is reported in its entry (naming id and version), never fails
    /// the others. Empty when Redis holds no active pointer. With the lineage of that state
    /// (`store::lineage`), read in the same step as the pointers. Compiling is the catalog's
    /// business ([`Catalog::assemble`]).
    pub async fn active_documents(&self) -> Result<ActiveDocuments, StoreError> {
        let state = self.backend.active_state().await?;
        let wanted: Vec<(String, String)> = state.pointers.into_iter().collect();
        let stored = self.get_docs(&wanted).await?;
        let entries = wanted
            .into_iter()
            .zip(stored)
            .map(|((id, version), (json, digest))| {
                let document = payload::decode(&id, &version, json, digest).map_err(|e| match e {
                    StoreError::Corrupt { reason, .. } => reason,
                    other => other.to_string(),
                });
                (id, ActiveEntry { version, document })
            })
            .collect();
        Ok(ActiveDocuments {
            lineage: state.lineage,
            entries,
        })
    }

    /// id → active version and the lineage of that state, read together.
    pub async fn active_state(&self) -> Result<ActiveState, StoreError> {
        self.backend.active_state().await
    }

    /// The active rule sets: every payload verified against its digest, the whole set compiled.
    /// A payload that fails either is refused with an error naming its id and version.
    pub async fn load_active(&self) -> Result<Catalog, StoreError> {
        let active = self.active_versions().await?;
        if active.is_empty() {
            return Err(StoreError::NoActive);
        }
        self.load_catalog(&active, &[]).await
    }

    /// Publishes and activates every document of `catalog` when Redis has no active pointer and
    /// no lineage at all: a first deployment, whose state begins a new epoch
    /// ([`Lineage::first`]). Returns whether this call seeded. Two replicas seeding at once store
    /// the same immutable payloads; the pointers are set by exactly one of them.
    pub async fn seed_if_empty(&self, catalog: &Catalog) -> Result<bool, StoreError> {
        if self.backend.has_active().await? {
            return Ok(false);
        }
        self.write_state(catalog, SeedWhen::Empty, Lineage::first(), "seed")
            .await
    }

    /// Puts back the state a replica verified (`catalog`, at lineage `ours`) over what Redis
    /// holds, only while Redis's lineage is still `read` (what the replica saw below its own:
    /// an emptied Redis, or one that went back). The payloads are published again (the same
    /// immutable versions); each rule set's history records a `restore`. Whether it wrote.
    pub async fn restore(
        &self,
        catalog: &Catalog,
        read: Option<Lineage>,
        ours: Lineage,
    ) -> Result<bool, StoreError> {
        self.write_state(catalog, SeedWhen::Holds(read), ours, "restore")
            .await
    }

    async fn write_state(
        &self,
        catalog: &Catalog,
        when: SeedWhen,
        lineage: Lineage,
        action: &str,
    ) -> Result<bool, StoreError> {
        let mut published = Vec::new();
        for doc in catalog.documents.values() {
            check_name("id", &doc.id)?;
            check_name("version", &doc.version)?;
            // The catalog is already compiled: no need to validate again.
            published.push(self.store_version(doc, None).await?);
        }
        let at_ms = now_ms();
        let seed = Seed {
            items: published
                .iter()
                .map(|p| {
                    let entry = HistoryEntry {
                        version: p.version.clone(),
                        digest: p.digest.clone(),
                        at_ms,
                        by: None,
                        previous: None,
                        action: action.into(),
                        effect: None,
                        approval: None,
                    };
                    (
                        p.id.as_str(),
                        p.version.as_str(),
                        serde_json::to_string(&entry).unwrap_or_default(),
                    )
                })
                .collect(),
            when,
            lineage,
            message: serde_json::json!({ "activated": &published }).to_string(),
        };
        self.backend.seed(seed).await
    }

    /// A subscription to the activation notices (Redis: a dedicated pub/sub connection, bounded
    /// by the connect and response timeouts).
    pub(crate) async fn subscribe(&self) -> Result<Box<dyn Notices>, StoreError> {
        self.backend.subscribe().await
    }

    /// Payload and digest of each (id, version), in one round trip.
    async fn get_docs(&self, wanted: &[(String, String)]) -> Result<Vec<StoredDoc>, StoreError> {
        self.backend.docs(wanted).await
    }

    /// Loads, verifies and compiles the documents of `versions` (id → version). A version named in
    /// `requested` that is not stored at all is [`StoreError::NotFound`]; any other missing or
    /// damaged payload is [`StoreError::Corrupt`].
    pub(crate) async fn load_catalog(
        &self,
        versions: &BTreeMap<String, String>,
        requested: &[Activation],
    ) -> Result<Catalog, StoreError> {
        let wanted: Vec<(String, String)> = versions
            .iter()
            .map(|(id, v)| (id.clone(), v.clone()))
            .collect();
        let stored = self.get_docs(&wanted).await?;
        let mut docs = Vec::with_capacity(wanted.len());
        for ((id, version), (json, digest)) in wanted.iter().zip(stored) {
            let is_requested = requested
                .iter()
                .any(|r| &r.id == id && &r.version == version);
            if is_requested && json.is_none() && self.is_retired(id, version).await? {
                return Err(StoreError::Retired {
                    id: id.clone(),
                    version: version.clone(),
                });
            }
            if is_requested && json.is_none() && digest.is_none() {
                return Err(StoreError::NotFound {
                    id: id.clone(),
                    version: Some(version.clone()),
                });
            }
            docs.push(payload::decode(id, version, json, digest)?);
        }
        Catalog::from_documents(docs, Origin::Redis).map_err(StoreError::Invalid)
    }
}

/// What the retired hash holds per version.
#[derive(serde::Serialize, serde::Deserialize)]
struct RetiredRecord {
    at_ms: i64,
    by: Option<String>,
}

/// What an idempotency key holds: the request it was first used for and the answer given.
#[derive(serde::Serialize, serde::Deserialize)]
struct IdempotencyRecord {
    request: Rollback,
    result: Activated,
    /// What the move changed, answered again to a retry (absent in records written before).
    #[serde(default)]
    effect: Effect,
}

/// How long a rollback's idempotency key is remembered.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How one move of pointers is recorded: the history entry's action and author, an optional
/// check that the history did not grow since it was read (a rollback computed its target from
/// it), and an optional idempotency key with its record.
struct Move<'a> {
    action: &'static str,
    by: Option<&'a str>,
    history_len: Option<usize>,
    idempotency: Option<(String, &'a Rollback)>,
    guard: &'a Guard,
}

/// How a move ended: applied, previewed (a dry run), or answered from an earlier request with the
/// same idempotency key.
enum Moved {
    Done(Vec<Activated>, Effect),
    Preview(Vec<Activated>, Effect, Preview),
    Replayed(IdempotencyRecord),
}

fn check_expected(item: &Activation, current: Option<&String>) -> Result<(), StoreError> {
    let ok = match &item.expected {
        Expected::Any => true,
        Expected::Absent => current.is_none(),
        Expected::Version(v) => current == Some(v),
    };
    if ok {
        Ok(())
    } else {
        Err(expected_conflict(item, current.cloned()))
    }
}

fn expected_conflict(item: &Activation, current: Option<String>) -> StoreError {
    let expected = match &item.expected {
        Expected::Any => "any version".to_owned(),
        Expected::Absent => "no active version".to_owned(),
        Expected::Version(v) => format!("version '{v}'"),
    };
    let actual = current.as_deref().map_or_else(
        || "none is active".to_owned(),
        |c| {
            if c == item.version {
                format!(
                    "'{c}' is active already (a retry of this activation after it was applied, \
                     or another's: its history says which)"
                )
            } else {
                format!("'{c}' is active")
            }
        },
    );
    StoreError::conflict(
        &item.id,
        &item.version,
        current,
        format!("expected {expected} to be active, but {actual}"),
    )
}

fn invalid(path: &str, message: String) -> StoreError {
    StoreError::Invalid(LoadError::single(Problem::new(path, None, message)))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
