//! Reading rule-set documents from files and folders, the way the server reads
//! `PROTOCOL_RULESETS_DIR`: `*.yaml`/`*.yml`/`*.json` in a folder and in its `clinics/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use protocol_engine::{Format, LoadError, RuleSet, RuleSetDoc, compile, parse_document};

/// A document and the file it came from.
pub struct Loaded {
    pub path: PathBuf,
    pub doc: RuleSetDoc,
}

/// The format a file name says.
pub fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Some(Format::Yaml),
        Some("json") => Some(Format::Json),
        _ => None,
    }
}

/// Parses one file (YAML or JSON by its extension).
pub fn parse_file(path: &Path) -> anyhow::Result<Result<RuleSetDoc, LoadError>> {
    let Some(format) = format_of(path) else {
        bail!(
            "{}: not a rule-set file (expected .yaml, .yml or .json)",
            path.display()
        );
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_document(&text, format))
}

/// The rule-set files of a folder and of its `clinics/`, sorted.
pub fn files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for folder in [dir.to_path_buf(), dir.join("clinics")] {
        if !folder.is_dir() {
            continue;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("reading {}", folder.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && format_of(p).is_some())
            .collect();
        entries.sort();
        out.extend(entries);
    }
    Ok(out)
}

/// The base an overlay file extends when none is named: `base.yaml` (or `.json`) beside it or
/// in the folder above (`rulesets/clinics/x.yaml` → `rulesets/base.yaml`).
pub fn base_beside(path: &Path) -> Option<PathBuf> {
    let dir = path.parent()?;
    [dir, dir.parent().unwrap_or(dir)]
        .iter()
        .flat_map(|d| ["base.yaml", "base.yml", "base.json"].map(|n| d.join(n)))
        .find(|p| p.is_file() && p != path)
}

/// Loads one document with the base it needs (for an overlay): `base` when given, else the
/// base beside it.
pub fn load_with_base(
    path: &Path,
    base: Option<&Path>,
) -> anyhow::Result<(RuleSetDoc, Option<RuleSetDoc>)> {
    let doc = parse_file(path)?.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let base = match (&doc.extends, base) {
        (None, _) => None,
        (Some(_), Some(b)) => Some(b.to_path_buf()),
        (Some(id), None) => Some(base_beside(path).with_context(|| {
            format!(
                "{} extends '{id}': name its base with --base FILE (the server's active one: `protocolctl pull {id} --out FILE`)",
                path.display()
            )
        })?),
    };
    let base = match base {
        Some(b) => Some(parse_file(&b)?.map_err(|e| anyhow::anyhow!("{}: {e}", b.display()))?),
        None => None,
    };
    Ok((doc, base))
}

/// Every rule set of `path`, compiled (each overlay on the base it extends), by id. `path` is a
/// rule-set folder (base and `clinics/`) or one overlay file; `base`, when given, is the base
/// they extend (it replaces a base of the same id in the folder). An overlay file given alone
/// without `base` is compiled on the `base.yaml` beside it.
pub fn rulesets(path: &Path, base: Option<&Path>) -> anyhow::Result<BTreeMap<String, RuleSet>> {
    let mut paths = if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        files_in(path)?
    };
    let mut docs = Vec::new();
    for p in &paths {
        let doc = parse_file(p)?.map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        docs.push(Loaded {
            path: p.clone(),
            doc,
        });
    }
    if docs.is_empty() {
        bail!(
            "{}: no rule-set files (*.yaml, *.json): point --rulesets at the folder holding base.yaml and clinics/, or at an overlay file with --base FILE or --server-base ID",
            path.display()
        );
    }
    let base = match base {
        Some(b) => Some(b.to_path_buf()),
        None if path.is_file() && docs.iter().all(|l| l.doc.extends.is_some()) => base_beside(path),
        None => None,
    };
    if let Some(b) = base {
        let doc = parse_file(&b)?.map_err(|e| anyhow::anyhow!("{}: {e}", b.display()))?;
        if doc.extends.is_some() {
            bail!(
                "{}: --base must be a base rule set (it has `extends`)",
                b.display()
            );
        }
        docs.retain(|l| l.doc.id != doc.id);
        paths.push(b.clone());
        docs.push(Loaded { path: b, doc });
    }
    let bases: BTreeMap<&str, &RuleSetDoc> = docs
        .iter()
        .filter(|l| l.doc.extends.is_none())
        .map(|l| (l.doc.id.as_str(), &l.doc))
        .collect();
    let mut out = BTreeMap::new();
    for l in &docs {
        let base = l
            .doc
            .extends
            .as_deref()
            .and_then(|id| bases.get(id).copied());
        if let (Some(id), None) = (&l.doc.extends, base) {
            bail!(
                "{} extends '{id}', which is not in {}: name it with --base FILE, or read the server's active one with --server-base {id}",
                l.path.display(),
                path.display(),
            );
        }
        let rs = compile(&l.doc, base).map_err(|e| {
            anyhow::anyhow!("{}: {e} (run `protocolctl validate`)", l.path.display())
        })?;
        out.insert(l.doc.id.clone(), rs);
    }
    Ok(out)
}
