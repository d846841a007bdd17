//! The set of compiled rule sets a replica serves: the base and every clinic overlay, and the
//! rule sets it refused.
//!
//! - [`Catalog::for_tenant`] is the one place that says which rule set answers a caller, or why
//!   none may: a clinic whose rule set was refused is answered fail-closed, never from the base
//!   or a bundled copy it never activated.
//! - [`assemble`]: how a replica builds its catalog from what Redis holds active, one rule set at
//!   a time.

mod assemble;
mod per_ruleset;

pub use assemble::ActiveEntry;
pub(crate) use assemble::build as compile_on_base;
pub use per_ruleset::PerRuleSet;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use protocol_engine::{
    Format, LoadError, RuleSet, RuleSetDoc, RuleSetRef, compile_bundle, parse_document,
};

/// The bundled rule sets, compiled into the binary: the embedded default that needs nothing else.
const BUNDLED: &[(&str, &str)] = &[
    ("base.yaml", include_str!("../../../../rulesets/base.yaml")),
    (
        "clinics/clinic-aurora.yaml",
        include_str!("../../../../rulesets/clinics/clinic-aurora.yaml"),
    ),
];

/// Where the current rule sets came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Bundled,
    Directory,
    Redis,
    /// Nothing loaded: Redis is configured and this replica has not verified any rule set from
    /// it yet (Redis down or empty at start). Every decision is refused.
    None,
}

/// A rule set Redis holds active that this replica did not accept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Refusal {
    /// The rule set.
    pub id: String,
    /// The active version that was refused.
    pub version: String,
    /// Why: a digest mismatch, a payload that is not a rule set, a failed validation, or its
    /// base refused.
    pub reason: String,
    /// The version served instead: one this replica verified earlier from Redis, if it had one.
    /// Absent: the clinic is answered fail-closed (503 / `UNAVAILABLE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<String>,
}

/// Why no rule set may answer a caller: decisions are refused (503 / `UNAVAILABLE`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// Redis holds this version active and this replica refused it, with no earlier verified
    /// version to serve instead.
    #[error(
        "rule set '{id}' version '{version}' is active but this replica refused it ({reason}); \
         decisions for it are refused until a good version is activated"
    )]
    Refused {
        /// The rule set refused.
        id: String,
        /// Its active version.
        version: String,
        /// Why.
        reason: String,
    },
    /// Nothing verified yet (Redis configured but down or empty since start).
    #[error(
        "no rule set is loaded: this replica has not yet read its rule sets from redis \
         (see /readyz)"
    )]
    NotLoaded,
}

/// Every rule set this replica serves, by id, with their source documents (for publishing and
/// seeding Redis). Immutable once built; replaced whole on update.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub rulesets: BTreeMap<String, RuleSet>,
    pub documents: BTreeMap<String, RuleSetDoc>,
    /// The id of the base rule set that keys without a clinic overlay see.
    pub base_id: String,
    pub origin: Origin,
    /// Rule sets Redis holds active that were refused, by id (empty but for [`Origin::Redis`]).
    pub refused: BTreeMap<String, Refusal>,
    /// The lineage of the Redis state this catalog was read from (`store::lineage`): a replica
    /// never adopts a state that ranks below it. `None` but for [`Origin::Redis`] (and for a
    /// Redis that records none).
    pub lineage: Option<crate::store::Lineage>,
}

impl Catalog {
    /// Compiles documents into a catalog. Exactly one base (no `extends`) is required.
    pub fn from_documents(docs: Vec<RuleSetDoc>, origin: Origin) -> Result<Self, LoadError> {
        let compiled = compile_bundle(&docs)?;
        let bases: Vec<&RuleSetDoc> = docs.iter().filter(|d| d.extends.is_none()).collect();
        let base_id = match bases.as_slice() {
            [one] => one.id.clone(),
            _ => {
                return Err(LoadError::single(protocol_engine::Problem::new(
                    "",
                    None,
                    format!(
                        "exactly one base rule set (without `extends`) is required, found {}",
                        bases.len()
                    ),
                )));
            }
        };
        Ok(Self {
            rulesets: compiled
                .into_iter()
                .map(|rs| (rs.meta().id.clone(), rs))
                .collect(),
            documents: docs.into_iter().map(|d| (d.id.clone(), d)).collect(),
            base_id,
            origin,
            refused: BTreeMap::new(),
            lineage: None,
        })
    }

    /// The catalog of a replica that has verified nothing yet: every decision is refused.
    pub fn none() -> Self {
        Self {
            rulesets: BTreeMap::new(),
            documents: BTreeMap::new(),
            base_id: String::new(),
            origin: Origin::None,
            refused: BTreeMap::new(),
            lineage: None,
        }
    }

    /// The rule sets compiled into the binary.
    pub fn bundled() -> anyhow::Result<Self> {
        let docs = BUNDLED
            .iter()
            .map(|(name, text)| {
                parse_document(text, Format::Yaml)
                    .with_context(|| format!("bundled rule set {name}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Self::from_documents(docs, Origin::Bundled).context("bundled rule sets")
    }

    /// `base.yaml`-style files from a folder: `*.yaml`/`*.json` in it and in `clinics/`.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Self> {
        let mut docs = Vec::new();
        for folder in [dir.to_path_buf(), dir.join("clinics")] {
            if !folder.is_dir() {
                continue;
            }
            let mut entries: Vec<_> = std::fs::read_dir(&folder)
                .with_context(|| format!("reading {}", folder.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            entries.sort();
            for path in entries {
                let format = match path.extension().and_then(|e| e.to_str()) {
                    Some("yaml" | "yml") => Format::Yaml,
                    Some("json") => Format::Json,
                    _ => continue,
                };
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                docs.push(
                    parse_document(&text, format)
                        .with_context(|| format!("rule set {}", path.display()))?,
                );
            }
        }
        Self::from_documents(docs, Origin::Directory)
            .with_context(|| format!("rule sets in {}", dir.display()))
    }

    /// The rule set a clinic sees: its overlay when one is served, else the base. A clinic whose
    /// overlay was refused, or any clinic when the base was, gets [`Unavailable`]: never the base
    /// in place of a refused overlay.
    pub fn for_tenant(&self, tenant: Option<&str>) -> Result<&RuleSet, Unavailable> {
        if let Some(tenant) = tenant {
            if let Some(rs) = self.rulesets.get(tenant) {
                return Ok(rs);
            }
            if let Some(refusal) = self.refused.get(tenant) {
                return Err(refusal.into());
            }
        }
        match (
            self.rulesets.get(&self.base_id),
            self.refused.get(&self.base_id),
        ) {
            (Some(rs), _) => Ok(rs),
            (None, Some(refusal)) => Err(refusal.into()),
            (None, None) => Err(Unavailable::NotLoaded),
        }
    }

    /// The id of the base rule set every overlay extends.
    pub fn base_id(&self) -> &str {
        &self.base_id
    }

    /// The refused rule sets, for `/readyz`.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.refused.values().cloned().collect()
    }

    /// Id, version and digest of every rule set served.
    pub fn refs(&self) -> Vec<RuleSetRef> {
        self.rulesets.values().map(|rs| rs.meta().clone()).collect()
    }
}

impl From<&Refusal> for Unavailable {
    fn from(r: &Refusal) -> Self {
        Self::Refused {
            id: r.id.clone(),
            version: r.version.clone(),
            reason: r.reason.clone(),
        }
    }
}
