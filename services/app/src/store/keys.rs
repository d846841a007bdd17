//! Redis key and channel names.
//!
//! Every key carries the same hash tag, `{rulesets}`, so that Redis Cluster places them all in one
//! slot: the activation script reads the active pointers and writes them in one atomic step, and a
//! script may only touch keys of a single slot. The price is that one deployment's rule sets live on
//! one shard, which is nothing for a few documents of some tens of kilobytes.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `protocol:{rulesets}:doc:<id>:<version>` | string | canonical JSON of one published version; written once (`SET NX`), never changed |
//! | `protocol:{rulesets}:digests:<id>` | hash | version → `sha256:<hex>` of that payload, checked on every load |
//! | `protocol:{rulesets}:versions:<id>` | sorted set | published versions, scored by publish time (Unix ms) |
//! | `protocol:{rulesets}:active` | hash | id → active version: the one pointer activation changes |
//! | `protocol:{rulesets}:lineage` | hash | `epoch`, `seq`: the place of the active state in the deployment's line (`store::lineage`); every script that moves a pointer moves it |
//! | `protocol:{rulesets}:history:<id>` | list | one JSON entry per activation, oldest first (`version`, `digest`, `at_ms`, `by`, `previous`, `action`); appended by the script that moves the pointer |
//! | `protocol:{rulesets}:activated:<id>` | set | every version that is or ever was active: never retired |
//! | `protocol:{rulesets}:retired:<id>` | hash | version → JSON (`at_ms`, `by`) of a retired version: its payload is deleted, its name stays reserved |
//! | `protocol:{rulesets}:idempotency:<id>:<sha256 of the key>` | string | the first answer to a rollback sent with that `Idempotency-Key`, for 24 hours |
//! | channel `protocol:rulesets:activated` | pub/sub | `{"id","version","digest"}` after each activation |
//!
//! Ids and versions are restricted to `[A-Za-z0-9._-]` (see `payload::check_name`), so the `:`
//! separators are unambiguous.

/// The hash tag shared by every key of one deployment.
pub const HASH_TAG: &str = "{rulesets}";

/// Key names under one prefix. The default prefix is `protocol`; tests and side-by-side
/// deployments on one Redis may choose another.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::with_prefix("protocol")
    }
}

impl Keys {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The immutable payload of one published version.
    pub fn doc(&self, id: &str, version: &str) -> String {
        format!("{}:{HASH_TAG}:doc:{id}:{version}", self.prefix)
    }

    /// version → digest for one rule set.
    pub fn digests(&self, id: &str) -> String {
        format!("{}:{HASH_TAG}:digests:{id}", self.prefix)
    }

    /// Published versions of one rule set, in publish order.
    pub fn versions(&self, id: &str) -> String {
        format!("{}:{HASH_TAG}:versions:{id}", self.prefix)
    }

    /// `SCAN MATCH` pattern of every [`Self::versions`] key.
    pub fn versions_pattern(&self) -> String {
        format!("{}:{HASH_TAG}:versions:*", self.prefix)
    }

    /// The rule-set id of a [`Self::versions`] key.
    pub fn id_of_versions_key<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(&self.prefix)?
            .strip_prefix(':')?
            .strip_prefix(HASH_TAG)?
            .strip_prefix(":versions:")
    }

    /// The activation history of one rule set (a list of JSON entries, oldest first).
    pub fn history(&self, id: &str) -> String {
        format!("{}:{HASH_TAG}:history:{id}", self.prefix)
    }

    /// Every version of one rule set that is or ever was active.
    pub fn activated(&self, id: &str) -> String {
        format!("{}:{HASH_TAG}:activated:{id}", self.prefix)
    }

    /// version → retirement record, for one rule set.
    pub fn retired(&self, id: &str) -> String {
        format!("{}:{HASH_TAG}:retired:{id}", self.prefix)
    }

    /// version → declared loosening (`{reason, approved_by}` as JSON), for one rule set: what
    /// a version that loosens its predecessor said, listed with the versions.
    pub fn loosenings(&self, id: &str) -> String {
        format!("{}:{HASH_TAG}:loosenings:{id}", self.prefix)
    }

    /// version → the API key id that first published it: the "other key" an approval of a
    /// loosening it brings must come from (four eyes).
    pub fn publishers(&self, id: &str) -> String {
        format!("{}:{HASH_TAG}:publishers:{id}", self.prefix)
    }

    /// The remembered answer to a request carrying an idempotency key (`key_hash`: its SHA-256,
    /// so any key the client sends makes a bounded, `:`-free name).
    pub fn idempotency(&self, id: &str, key_hash: &str) -> String {
        format!("{}:{HASH_TAG}:idempotency:{id}:{key_hash}", self.prefix)
    }

    /// id → active version.
    pub fn active(&self) -> String {
        format!("{}:{HASH_TAG}:active", self.prefix)
    }

    /// `epoch` and `seq` of the active state (`store::lineage`).
    pub fn lineage(&self) -> String {
        format!("{}:{HASH_TAG}:lineage", self.prefix)
    }

    /// The pub/sub channel announcing activations. Channels are not keys (no slot), so no tag.
    pub fn channel(&self) -> String {
        format!("{}:rulesets:activated", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_the_hash_tag() {
        let k = Keys::default();
        for key in [
            k.doc("clinic-aurora", "2026.11.1"),
            k.digests("base"),
            k.versions("base"),
            k.history("base"),
            k.activated("base"),
            k.retired("base"),
            k.loosenings("base"),
            k.idempotency("base", "ab"),
            k.active(),
            k.lineage(),
        ] {
            assert!(key.contains("{rulesets}"), "{key}");
        }
        assert_eq!(
            k.doc("clinic-aurora", "2026.11.1"),
            "protocol:{rulesets}:doc:clinic-aurora:2026.11.1"
        );
        assert_eq!(k.channel(), "protocol:rulesets:activated");
        assert_eq!(
            k.id_of_versions_key(&k.versions("clinic-aurora")),
            Some("clinic-aurora")
        );
        assert_eq!(k.id_of_versions_key(&k.active()), None);
    }
}
