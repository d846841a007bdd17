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
use std::time::Duration;

use protocol_engine::{Format, LoadError, Problem, RuleSetDoc, parse_document};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};

use super::StoreError;
use super::keys::Keys;
use super::payload::{self, check_name};
use super::scripts;
use super::types::{
    Activated, Activation, Expected, Fetched, Published, StoreOptions, VersionInfo,
};
use crate::catalog::{ActiveEntry, Catalog, Origin};

/// Published rule-set versions and the active pointers, in Redis. Cheap to clone (the connection
/// manager is shared and reconnects by itself).
#[derive(Clone)]
pub struct RuleSetStore {
    client: redis::Client,
    conn: ConnectionManager,
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
        let client = redis::Client::open(url)?;
        // One retry per command: the sync task and the admin caller decide when to try again.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            client,
            conn,
            keys: Keys::with_prefix(&options.prefix),
            options,
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Round trip to Redis.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
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
        check_name("id", &doc.id)?;
        check_name("version", &doc.version)?;
        self.validate_for_publish(&doc).await?;
        self.store_version(&doc).await
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
        Catalog::from_documents(docs, Origin::Redis).map_err(StoreError::Invalid)?;
        Ok(())
    }

    /// Writes one version with `SET NX` (no validation: callers validate).
    async fn store_version(&self, doc: &RuleSetDoc) -> Result<Published, StoreError> {
        let encoded = payload::encode(doc);
        let mut conn = self.conn.clone();
        let (created, stored): (i64, String) = scripts::PUBLISH
            .key(self.keys.doc(&doc.id, &doc.version))
            .key(self.keys.digests(&doc.id))
            .key(self.keys.versions(&doc.id))
            .arg(&encoded.json)
            .arg(&encoded.digest)
            .arg(&doc.version)
            .arg(now_ms())
            .invoke_async(&mut conn)
            .await?;
        if created == 0 && stored != encoded.digest {
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
        Ok(Published {
            id: doc.id.clone(),
            version: doc.version.clone(),
            digest: encoded.digest,
            created: created == 1,
        })
    }

    /// Every published version of a rule set, oldest first.
    pub async fn list_versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError> {
        check_name("id", id)?;
        let mut conn = self.conn.clone();
        let (versions, digests, active): VersionsReply = redis::pipe()
            .cmd("ZRANGE")
            .arg(self.keys.versions(id))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .cmd("HGETALL")
            .arg(self.keys.digests(id))
            .cmd("HGET")
            .arg(self.keys.active())
            .arg(id)
            .query_async(&mut conn)
            .await?;
        if versions.is_empty() {
            return Err(StoreError::NotFound {
                id: id.to_owned(),
                version: None,
            });
        }
        Ok(versions
            .into_iter()
            .map(|(version, score)| VersionInfo {
                digest: digests.get(&version).cloned().unwrap_or_default(),
                active: active.as_deref() == Some(version.as_str()),
                // Scores are whole milliseconds, well inside f64's exact range.
                published_at_ms: score as i64,
                version,
            })
            .collect())
    }

    /// Every rule-set id with at least one published version, sorted (also ids never activated,
    /// e.g. a new clinic overlay). `SCAN`s the versions keys: for the admin API, never the
    /// request path.
    pub async fn list_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let pattern = self.keys.versions_pattern();
        let mut ids = std::collections::BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await?;
            ids.extend(
                keys.iter()
                    .filter_map(|k| self.keys.id_of_versions_key(k))
                    .map(str::to_owned),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
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
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HGETALL")
            .arg(self.keys.active())
            .query_async(&mut conn)
            .await?)
    }

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
        let mut done = self
            .activate_many(&[Activation {
                id: id.to_owned(),
                version: version.to_owned(),
                expected: expected_current.into(),
            }])
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
        if items.is_empty() {
            return Ok(Vec::new());
        }
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
        let active = self.active_versions().await?;
        // Checked here for a prompt answer; the script checks again atomically.
        for item in items {
            check_expected(item, active.get(&item.id))?;
        }
        let mut target = active.clone();
        for item in items {
            target.insert(item.id.clone(), item.version.clone());
        }
        let catalog = self.load_catalog(&target, items).await?;
        let activated: Vec<Activated> = items
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
            .collect();

        let message = serde_json::json!({ "activated": &activated }).to_string();
        let mut invocation = scripts::ACTIVATE.key(self.keys.active());
        invocation
            .arg(self.keys.channel())
            .arg(message)
            .arg(items.len());
        for item in items {
            let (mode, expected) = match &item.expected {
                Expected::Any => ("any", ""),
                Expected::Absent => ("absent", ""),
                Expected::Version(v) => ("eq", v.as_str()),
            };
            invocation
                .arg(&item.id)
                .arg(&item.version)
                .arg(mode)
                .arg(expected);
        }
        invocation.arg(active.len());
        for (id, version) in &active {
            invocation.arg(id).arg(version);
        }
        let mut conn = self.conn.clone();
        let reply: Vec<String> = invocation.invoke_async(&mut conn).await?;
        match reply.first().map(String::as_str) {
            Some("ok") => Ok(activated),
            Some("conflict") => {
                let id = reply.get(1).cloned().unwrap_or_default();
                let current = reply.get(2).filter(|c| !c.is_empty()).cloned();
                let item = items.iter().find(|i| i.id == id);
                match item {
                    Some(item) => Err(expected_conflict(item, current)),
                    None => Err(StoreError::conflict(
                        &id,
                        "",
                        current,
                        "activation lost a race".into(),
                    )),
                }
            }
            _ => {
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

    /// Rolls `id` back: activates `to_version`, or by default the version published just before
    /// the active one. Only an earlier version qualifies (rolling forward is an activation);
    /// `expected_current` (default: the version active now) makes it a compare-and-set like
    /// [`activate`](Self::activate).
    pub async fn rollback(
        &self,
        id: &str,
        to_version: Option<&str>,
        expected_current: Option<&str>,
    ) -> Result<Activated, StoreError> {
        let versions = self.list_versions(id).await?;
        let named = to_version.map(|to_version| versions.iter().find(|v| v.version == to_version));
        if let (Some(to_version), Some(None)) = (to_version, named) {
            return Err(StoreError::NotFound {
                id: id.to_owned(),
                version: Some(to_version.to_owned()),
            });
        }
        let Some(at) = versions.iter().position(|v| v.active) else {
            return Err(StoreError::conflict(
                id,
                to_version.unwrap_or_default(),
                None,
                "no version is active, so there is nothing to roll back; activate instead".into(),
            ));
        };
        let current = &versions[at];
        let target = match named.flatten() {
            Some(target) => {
                if target.published_at_ms >= current.published_at_ms {
                    return Err(invalid(
                        "to_version",
                        format!(
                            "'{}' was not published before the active version '{}'; roll back only to an earlier version",
                            target.version, current.version
                        ),
                    ));
                }
                target
            }
            None => match at.checked_sub(1).and_then(|i| versions.get(i)) {
                Some(previous) => previous,
                None => {
                    return Err(StoreError::conflict(
                        id,
                        &current.version,
                        Some(current.version.clone()),
                        format!(
                            "'{}' is the earliest published version: there is nothing earlier to roll back to",
                            current.version
                        ),
                    ));
                }
            },
        };
        let expected = expected_current.unwrap_or(&current.version);
        self.activate(id, &target.version, Some(expected)).await
    }

    /// The active rule sets as Redis holds them, each payload verified against its digest on its
    /// own: a payload that fails is reported in its entry (naming id and version), never fails
    /// the others. Empty when Redis holds no active pointer. Compiling is the catalog's business
    /// ([`Catalog::assemble`]).
    pub async fn active_documents(&self) -> Result<BTreeMap<String, ActiveEntry>, StoreError> {
        let active = self.active_versions().await?;
        if active.is_empty() {
            // Redis refuses an empty pipeline.
            return Ok(BTreeMap::new());
        }
        let wanted: Vec<(String, String)> = active.into_iter().collect();
        let stored = self.get_docs(&wanted).await?;
        Ok(wanted
            .into_iter()
            .zip(stored)
            .map(|((id, version), (json, digest))| {
                let document = payload::decode(&id, &version, json, digest).map_err(|e| match e {
                    StoreError::Corrupt { reason, .. } => reason,
                    other => other.to_string(),
                });
                (id, ActiveEntry { version, document })
            })
            .collect())
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

    /// Publishes and activates every document of `catalog` when Redis has no active pointer at
    /// all. Returns whether this call seeded. Two replicas seeding at once store the same immutable
    /// payloads; the pointers are set by exactly one of them.
    pub async fn seed_if_empty(&self, catalog: &Catalog) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let exists: bool = redis::cmd("EXISTS")
            .arg(self.keys.active())
            .query_async(&mut conn)
            .await?;
        if exists {
            return Ok(false);
        }
        let mut published = Vec::new();
        for doc in catalog.documents.values() {
            check_name("id", &doc.id)?;
            check_name("version", &doc.version)?;
            // The catalog is already compiled: no need to validate again.
            published.push(self.store_version(doc).await?);
        }
        let message = serde_json::json!({ "activated": &published }).to_string();
        let mut invocation = scripts::SEED.key(self.keys.active());
        invocation.arg(self.keys.channel()).arg(message);
        for p in &published {
            invocation.arg(&p.id).arg(&p.version);
        }
        let seeded: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(seeded == 1)
    }

    /// A dedicated pub/sub connection subscribed to the activation channel. Bounded by the
    /// connect and response timeouts (the client's own pub/sub connect has none).
    pub(crate) async fn subscribe(&self) -> Result<(PubSubSink, PubSubStream), StoreError> {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(self.keys.channel()).await?;
            Ok::<_, redis::RedisError>(pubsub.split())
        };
        let limit = self.options.connect_timeout + self.options.response_timeout;
        match tokio::time::timeout(limit, connect).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(timed_out("subscribing")),
        }
    }

    /// Response timeout, for callers bounding their own waits (pub/sub pings).
    pub(crate) fn response_timeout(&self) -> Duration {
        self.options.response_timeout
    }

    /// Payload and digest of each (id, version), in one round trip.
    async fn get_docs(
        &self,
        wanted: &[(String, String)],
    ) -> Result<Vec<(Option<String>, Option<String>)>, StoreError> {
        let mut pipe = redis::pipe();
        for (id, version) in wanted {
            pipe.cmd("GET").arg(self.keys.doc(id, version));
            pipe.cmd("HGET").arg(self.keys.digests(id)).arg(version);
        }
        let mut conn = self.conn.clone();
        let flat: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        let mut flat = flat.into_iter();
        let mut out = Vec::with_capacity(wanted.len());
        while let (Some(json), Some(digest)) = (flat.next(), flat.next()) {
            out.push((json, digest));
        }
        Ok(out)
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

/// ZRANGE WITHSCORES (version, publish ms), HGETALL digests, HGET active.
type VersionsReply = (Vec<(String, f64)>, BTreeMap<String, String>, Option<String>);

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
        |c| format!("'{c}' is active"),
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

fn timed_out(what: &str) -> StoreError {
    StoreError::Unavailable(redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("redis timed out {what}"),
    )))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
