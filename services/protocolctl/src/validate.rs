//! `protocolctl validate PATH…`: the server's own checks, offline.
//!
//! Each path is a rule-set file or a folder of them (with `clinics/`). Every document is parsed
//! and compiled exactly as the server would (an overlay on the base it extends, found among the
//! paths given, with `--base`, or beside it), and every problem is listed with its file, path,
//! line and message (the engine's "did you mean ...?" included).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use protocol_engine::{LoadError, RuleSetDoc, compile};
use serde::Serialize;

use crate::files::{base_beside, files_in, parse_file};

/// One problem, located.
#[derive(Debug, Serialize)]
pub struct Found {
    pub file: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub message: String,
}

/// What `validate` found.
#[derive(Debug, Serialize)]
pub struct Report {
    pub valid: bool,
    /// The files read, each with its rule-set id and version when it parsed.
    pub files: Vec<FileReport>,
    pub problems: Vec<Found>,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

pub fn run(paths: &[PathBuf], base: Option<&Path>) -> anyhow::Result<Report> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(files_in(p)?);
        } else {
            files.push(p.clone());
        }
    }
    let mut problems = Vec::new();
    let mut reports = Vec::new();
    let mut docs: Vec<(PathBuf, RuleSetDoc)> = Vec::new();
    for f in &files {
        match parse_file(f)? {
            Ok(doc) => {
                reports.push(FileReport {
                    file: f.display().to_string(),
                    id: Some(doc.id.clone()),
                    version: Some(doc.version.clone()),
                });
                docs.push((f.clone(), doc));
            }
            Err(e) => {
                reports.push(FileReport {
                    file: f.display().to_string(),
                    id: None,
                    version: None,
                });
                push(&mut problems, f, e);
            }
        }
    }
    let mut bases: BTreeMap<String, RuleSetDoc> = docs
        .iter()
        .filter(|(_, d)| d.extends.is_none())
        .map(|(_, d)| (d.id.clone(), d.clone()))
        .collect();
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    for (f, doc) in &docs {
        if let Some(first) = seen.insert(&doc.id, f) {
            problems.push(Found {
                file: f.display().to_string(),
                path: "id".into(),
                line: None,
                message: format!(
                    "duplicate rule set id '{}' (also in {})",
                    doc.id,
                    first.display()
                ),
            });
            continue;
        }
        let base = match &doc.extends {
            None => None,
            Some(id) => {
                if !bases.contains_key(id) {
                    let extra = base
                        .map(Path::to_path_buf)
                        .or_else(|| base_beside(f))
                        .and_then(|b| parse_file(&b).ok()?.ok());
                    if let Some(b) = extra.filter(|b| &b.id == id) {
                        bases.insert(id.clone(), b);
                    }
                }
                bases.get(id)
            }
        };
        if let (Some(id), None) = (&doc.extends, base) {
            // The engine says the base is not loaded; here is the flag that loads it.
            problems.push(Found {
                file: f.display().to_string(),
                path: "extends".into(),
                line: None,
                message: format!(
                    "overlay extends '{id}', which is not loaded: name it with --base FILE, put base.yaml beside the overlay, or pull the server's (`protocolctl pull {id} --out FILE`)"
                ),
            });
            continue;
        }
        if let Err(e) = compile(doc, base) {
            push(&mut problems, f, e);
        }
    }
    Ok(Report {
        valid: problems.is_empty(),
        files: reports,
        problems,
    })
}

fn push(out: &mut Vec<Found>, file: &Path, e: LoadError) {
    out.extend(e.problems.into_iter().map(|p| Found {
        file: file.display().to_string(),
        path: p.path,
        line: p.line,
        message: p.message,
    }));
}

/// `file:line: path: message`, as compilers print, then a summary line.
pub fn human(r: &Report) -> String {
    let mut out = String::new();
    for p in &r.problems {
        let line = p.line.map(|l| format!("{l}:")).unwrap_or_default();
        let path = if p.path.is_empty() {
            String::new()
        } else {
            format!(" {}:", p.path)
        };
        out.push_str(&format!("{}:{line}{path} {}\n", p.file, p.message));
    }
    for f in &r.files {
        if let (Some(id), Some(v)) = (&f.id, &f.version) {
            let bad = r.problems.iter().any(|p| p.file == f.file);
            out.push_str(&format!(
                "{} {} ({id} {v})\n",
                if bad { "invalid" } else { "ok     " },
                f.file
            ));
        }
    }
    out.push_str(&format!(
        "{} file(s), {} problem(s)\n",
        r.files.len(),
        r.problems.len()
    ));
    out
}
