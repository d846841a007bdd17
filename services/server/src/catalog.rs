//! The set of compiled rule sets a replica serves: the base and every clinic overlay.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use protocol_engine::{
    Format, LoadError, RuleSet, RuleSetDoc, RuleSetRef, compile_bundle, parse_document,
};

/// The bundled rule sets, compiled into the binary: the embedded default that needs nothing else.
const BUNDLED: &[(&str, &str)] = &[
    ("base.yaml", include_str!("../../../rulesets/base.yaml")),
    (
        "clinics/clinic-aurora.yaml",
        include_str!("../../../rulesets/clinics/clinic-aurora.yaml"),
    ),
];

/// Where the current rule sets came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Bundled,
    Directory,
    Redis,
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
        })
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

    /// The rule set a clinic sees: its overlay when one exists, else the base.
    pub fn for_tenant(&self, tenant: Option<&str>) -> Option<&RuleSet> {
        tenant
            .and_then(|t| self.rulesets.get(t))
            .or_else(|| self.rulesets.get(&self.base_id))
    }

    /// The id of the base rule set every overlay extends.
    pub fn base_id(&self) -> &str {
        &self.base_id
    }

    /// Id, version and digest of every rule set served.
    pub fn refs(&self) -> Vec<RuleSetRef> {
        self.rulesets.values().map(|rs| rs.meta().clone()).collect()
    }
}
