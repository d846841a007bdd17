//! `protocolctl test DIR`: a clinic's own scenarios, run against a rule-set folder with the
//! engine's scenario runner (the one the engine's tests use), reported TAP-style.

use std::path::{Path, PathBuf};

use anyhow::Context;
use protocol_engine::scenario::{self, CLIENTS_FILE, Clients};

use crate::files::rulesets;

/// The case files under a folder (recursively), sorted; `clients.yaml` is the presets.
fn case_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            case_files(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && p.file_name().is_some_and(|n| n != CLIENTS_FILE)
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Runs every case; prints TAP to `out` and returns how many failed.
pub fn run(
    cases: &Path,
    rulesets_dir: &Path,
    base: Option<&Path>,
    clients: Option<&Path>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<usize> {
    let rulesets = rulesets(rulesets_dir, base)?;
    let clients_path = clients
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cases.join(CLIENTS_FILE));
    let clients: Clients = if clients_path.is_file() {
        let text = std::fs::read_to_string(&clients_path)
            .with_context(|| format!("reading {}", clients_path.display()))?;
        scenario::parse_clients(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", clients_path.display()))?
    } else {
        Clients::new()
    };
    let mut files = Vec::new();
    case_files(cases, &mut files)?;
    writeln!(out, "TAP version 13")?;
    writeln!(out, "1..{}", files.len())?;
    let mut failed = 0;
    for (i, path) in files.iter().enumerate() {
        let name = path
            .strip_prefix(cases)
            .unwrap_or(path)
            .with_extension("")
            .display()
            .to_string();
        let result = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| scenario::run(&text, &rulesets, &clients));
        match result {
            Ok(()) => writeln!(out, "ok {} - {name}", i + 1)?,
            Err(e) => {
                failed += 1;
                writeln!(out, "not ok {} - {name}", i + 1)?;
                for line in e.lines() {
                    writeln!(out, "  # {line}")?;
                }
            }
        }
    }
    writeln!(
        out,
        "# {} passed, {failed} failed",
        files.len().saturating_sub(failed)
    )?;
    Ok(failed)
}
