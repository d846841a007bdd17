//! Things derived from a compiled rule set once per rule-set version, not per request (the
//! OpenAPI document of its facts, the CDS Hooks code index): keyed by the rule set's digest and,
//! for an overlay, its base's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use protocol_engine::RuleSet;

/// What `build` made of each rule set seen so far. Bounded: past [`PerRuleSet::MAX`] entries
/// (rule sets replaced many times over) it starts afresh.
#[derive(Debug)]
pub struct PerRuleSet<T> {
    by_digest: Mutex<HashMap<String, Arc<T>>>,
}

impl<T> Default for PerRuleSet<T> {
    fn default() -> Self {
        Self {
            by_digest: Mutex::default(),
        }
    }
}

impl<T> PerRuleSet<T> {
    /// Most entries kept (one per clinic rule set and version served).
    pub const MAX: usize = 64;

    /// The value for `rs`, built by `build` on first use.
    pub fn get(&self, rs: &RuleSet, build: impl FnOnce(&RuleSet) -> T) -> Arc<T> {
        let meta = rs.meta();
        let key = match &meta.base {
            Some(base) => format!("{}+{}", meta.digest, base.digest),
            None => meta.digest.clone(),
        };
        let mut map = self
            .by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(value) = map.get(&key) {
            return value.clone();
        }
        if map.len() >= Self::MAX {
            map.clear();
        }
        let value = Arc::new(build(rs));
        map.insert(key, value.clone());
        value
    }
}
