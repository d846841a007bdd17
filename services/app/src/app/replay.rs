//! Replay: a decision asked of a pinned, immutable version of the caller's rule set.
//!
//! A request may carry `ruleset_version` and/or `ruleset_digest` (an earlier answer's
//! `ruleset`). The door resolves the pin here, in one place, before it asks the engine:
//!
//! - **Tenant rule by construction.** The rule set pinned is always the one the caller's clinic
//!   is served now (its overlay, else the base): a pin names a *version*, never an id, so no key
//!   can reach another clinic's rule set; another clinic's version is simply unknown (404).
//! - **The version served now** is answered from the served catalog (no Redis, works without it).
//! - **Any other version** needs the `audit` (or `admin`) scope: its answer is a replay no
//!   booking may rely on.
//! - **Any other version** is fetched once from the Redis store ([`RuleSetStore::fetch`]
//!   verifies its digest), compiled, and kept in a bounded cache ([`Pinned`], least recently
//!   used first out); a cached version retired since is not answered (one `HEXISTS` per cached
//!   answer). An overlay is compiled on the base version *active now* (its `base` in the
//!   answer names which): the overlay's own rules, caps and policy are exactly the pinned
//!   version's. The cache key includes the base digest, so a base activation recompiles.
//! - Unpinned requests never come here: the request path stays Redis-free.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use protocol_engine::{RequestError, RuleSet, RuleSetDoc};

use super::AppError;
use crate::auth::{AuthError, Caller, Scope};
use crate::catalog::{Catalog, compile_on_base};
use crate::context::Context;
use crate::store::StoreError;

/// How many compiled pinned versions a replica keeps (each a few hundred KiB at most).
pub const PINNED_CAPACITY: usize = 32;

/// A request's pin: the version and/or digest of the caller's rule set to answer from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pin<'a> {
    pub version: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> Pin<'a> {
    /// The pin of a request's two optional fields; `None` when neither is set.
    pub fn of(version: &'a Option<String>, digest: &'a Option<String>) -> Option<Self> {
        let pin = Self {
            version: version.as_deref(),
            digest: digest.as_deref(),
        };
        (pin != Self::default()).then_some(pin)
    }

    /// Whether the rule set `rs` is the version pinned.
    fn names(&self, rs: &RuleSet) -> bool {
        let meta = rs.meta();
        self.version.is_none_or(|v| v == meta.version)
            && self.digest.is_none_or(|d| d == meta.digest)
    }

    /// The pin in words, for messages.
    fn describe(&self) -> String {
        match (self.version, self.digest) {
            (Some(v), Some(d)) => format!("version '{}' with digest '{}'", clip(v), clip(d)),
            (Some(v), None) => format!("version '{}'", clip(v)),
            (None, Some(d)) => format!("the version with digest '{}'", clip(d)),
            (None, None) => "no version".to_owned(),
        }
    }

    /// The request field a failure is about.
    fn field(&self) -> &'static str {
        if self.version.is_some() {
            "ruleset_version"
        } else {
            "ruleset_digest"
        }
    }
}

/// A caller-supplied string, shortened for a message.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The pins of many checks (a batch): all the same, or a 400 naming the first that differs.
pub fn common_pin<'a>(
    pins: impl IntoIterator<Item = Option<Pin<'a>>>,
    prefix: &str,
) -> Result<Option<Pin<'a>>, AppError> {
    let mut pins = pins.into_iter().enumerate();
    let Some((_, first)) = pins.next() else {
        return Ok(None);
    };
    for (i, pin) in pins {
        if pin != first {
            let field = pin.or(first).map_or("ruleset_version", |p| p.field());
            return Err(RequestError::field(
                format!("{prefix}[{i}].{field}"),
                "every check of a batch must pin the same rule-set version (or none)",
            )
            .into());
        }
    }
    Ok(first)
}

/// What a pinned question is answered from.
pub enum Served {
    /// The version served now: the catalog it is in (the pin was checked against it).
    Now(Arc<Catalog>),
    /// An earlier (or later) version, compiled on demand.
    Version(Arc<RuleSet>),
}

/// A compiled pinned version and what identifies it.
struct Entry {
    id: String,
    version: String,
    digest: String,
    base_digest: Option<String>,
    rs: Arc<RuleSet>,
}

/// The bounded cache of compiled pinned versions, most recently used at the front.
#[derive(Default)]
pub struct Pinned {
    entries: Mutex<VecDeque<Entry>>,
}

impl Pinned {
    /// The cached version `pin` names, with its version name.
    fn get(
        &self,
        id: &str,
        pin: Pin<'_>,
        base_digest: Option<&str>,
    ) -> Option<(String, Arc<RuleSet>)> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries.iter().position(|e| {
            e.id == id
                && e.base_digest.as_deref() == base_digest
                && pin.version.is_none_or(|v| v == e.version)
                && pin.digest.is_none_or(|d| d == e.digest)
        })?;
        let entry = entries.remove(at)?;
        let found = (entry.version.clone(), entry.rs.clone());
        entries.push_front(entry);
        Some(found)
    }

    /// Drops every entry of `id`'s `version`.
    fn forget(&self, id: &str, version: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| !(e.id == id && e.version == version));
    }

    fn put(&self, entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| {
            !(e.id == entry.id && e.version == entry.version && e.base_digest == entry.base_digest)
        });
        entries.push_front(entry);
        entries.truncate(PINNED_CAPACITY);
    }
}

/// Resolves `pin` for `caller`: the catalog served now when it names the version served now,
/// else that version from the cache or the store. See the module documentation.
pub async fn resolve(
    ctx: &Context,
    cache: &Pinned,
    caller: &Caller,
    pin: Pin<'_>,
) -> Result<Served, AppError> {
    // The catalog is held (an `Arc`, nothing copied) until a version read from the store is
    // compiled on its base.
    let catalog = ctx.catalog_full();
    let rs = Context::ruleset(&catalog, caller)?;
    if pin.names(rs) {
        return Ok(Served::Now(catalog));
    }
    // Any other version answers as it would have then (or, a draft, as it would if activated):
    // a replay, for auditors and the clinic's rule authors. No booking may rely on it (a red
    // team got a bookable, logged decision from a pinned draft with a booking key), so it takes
    // the `audit` scope, or `admin`.
    if !caller.has(Scope::Audit) && !caller.has(Scope::Admin) {
        return Err(AuthError::Forbidden(Scope::Audit).into());
    }
    let meta = rs.meta();
    let (id, now, overlay) = (meta.id.clone(), meta.version.clone(), meta.base.is_some());
    let base_digest = catalog
        .rulesets
        .get(catalog.base_id())
        .filter(|_| overlay)
        .map(|b| b.meta().digest.clone());
    let unknown = || {
        AppError::NotFound(format!(
            "rule set '{id}' has no {} to replay (the version served now is '{now}'); \
             field `{}`",
            pin.describe(),
            pin.field()
        ))
    };
    if let Some((version, rs)) = cache.get(&id, pin, base_digest.as_deref()) {
        // A version retired since it was cached is gone here too (retirement withdraws a
        // version never active). Redis down: the cached version is served, its content being
        // immutable.
        let retired = match ctx.store.as_ref() {
            Some(store) => store.is_retired(&id, &version).await.unwrap_or(false),
            None => false,
        };
        if retired {
            cache.forget(&id, &version);
            return Err(unknown());
        }
        return Ok(Served::Version(rs));
    }
    let Some(store) = ctx.store.as_ref() else {
        return Err(AppError::NotFound(format!(
            "rule set '{id}' has no {} here: without a Redis store only the version served now \
             ('{now}') can be pinned; field `{}`",
            pin.describe(),
            pin.field()
        )));
    };
    let version = match pin.version {
        Some(v) => v.to_owned(),
        None => {
            let digest = pin.digest.unwrap_or_default();
            let versions = store
                .list_versions(&id)
                .await
                .map_err(not_found(&unknown))?;
            versions
                .into_iter()
                .find(|v| v.digest == digest)
                .map(|v| v.version)
                .ok_or_else(unknown)?
        }
    };
    let fetched = store
        .fetch(&id, &version)
        .await
        .map_err(not_found(&unknown))?;
    if pin.digest.is_some_and(|d| d != fetched.digest) {
        return Err(unknown());
    }
    let base = overlay
        .then(|| catalog.documents.get(catalog.base_id()))
        .flatten();
    let rs = Arc::new(build(&fetched.document, base)?);
    cache.put(Entry {
        id,
        version,
        digest: fetched.digest,
        base_digest,
        rs: rs.clone(),
    });
    Ok(Served::Version(rs))
}

/// A store error as the caller sees it: an unknown (or retired, or malformed) version is not
/// found; Redis down is a 503 as everywhere.
fn not_found(unknown: &impl Fn() -> AppError) -> impl Fn(StoreError) -> AppError + '_ {
    move |e| match e {
        StoreError::NotFound { .. } | StoreError::Retired { .. } | StoreError::Invalid(_) => {
            unknown()
        }
        other => AppError::Store(other),
    }
}

/// Compiles a pinned document: a base alone, an overlay on the base active now (the catalog's
/// own compile step, so a replay checks exactly what serving does).
fn build(doc: &RuleSetDoc, base: Option<&RuleSetDoc>) -> Result<RuleSet, AppError> {
    let base = base.filter(|b| doc.extends.as_deref() == Some(b.id.as_str()));
    compile_on_base(doc, base).map_err(|reason| {
        AppError::NotFound(format!(
            "rule set '{}' version '{}' cannot be replayed on the base served now: {reason}",
            doc.id, doc.version
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str, rs: &Arc<RuleSet>) -> Entry {
        Entry {
            id: "clinic-aurora".into(),
            version: version.into(),
            digest: format!("sha256:{version}"),
            base_digest: Some("sha256:base".into()),
            rs: rs.clone(),
        }
    }

    #[test]
    fn the_cache_keeps_the_most_recently_used_versions_up_to_its_capacity() {
        let catalog = Catalog::bundled().expect("bundled");
        let rs = Arc::new(catalog.rulesets["clinic-aurora"].clone());
        let cache = Pinned::default();
        for i in 0..PINNED_CAPACITY + 8 {
            cache.put(entry(&format!("v{i}"), &rs));
        }
        let len = cache.entries.lock().map(|e| e.len()).unwrap_or_default();
        assert_eq!(len, PINNED_CAPACITY);
        let pin = |v: &'static str| Pin {
            version: Some(v),
            digest: None,
        };
        let base = Some("sha256:base");
        assert!(
            cache.get("clinic-aurora", pin("v0"), base).is_none(),
            "evicted"
        );
        assert!(cache.get("clinic-aurora", pin("v39"), base).is_some());
        // Another base, another clinic or a digest that does not match: not this entry.
        assert!(
            cache
                .get("clinic-aurora", pin("v39"), Some("sha256:other"))
                .is_none()
        );
        assert!(cache.get("clinic-borealis", pin("v39"), base).is_none());
        let wrong = Pin {
            version: Some("v39"),
            digest: Some("sha256:v38"),
        };
        assert!(cache.get("clinic-aurora", wrong, base).is_none());
        // A hit moves the entry to the front: v8 (the oldest kept) survives the next insert.
        assert!(cache.get("clinic-aurora", pin("v8"), base).is_some());
        cache.put(entry("v40", &rs));
        assert!(cache.get("clinic-aurora", pin("v8"), base).is_some());
        assert!(cache.get("clinic-aurora", pin("v9"), base).is_none());
    }
}
