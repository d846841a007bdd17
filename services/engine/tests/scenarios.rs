//! Named clinical scenarios: one test per file under `tests/cases/`.
//!
//! Each case names a client (a preset from `cases/clients.yaml` plus overrides), a request and
//! what a clinician expects: the decision, the earliest date, the rules that fired, the facts
//! still to ask, the depth per zone and what bounds it. The runner is the engine's own
//! [`protocol_engine::scenario`], the one `protocolctl test` uses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use protocol_engine::*;
use serde_json::{Map, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load_rulesets() -> BTreeMap<String, RuleSet> {
    let mut docs = Vec::new();
    let base = root().join("rulesets/base.yaml");
    let text = std::fs::read_to_string(&base).expect("rulesets/base.yaml");
    docs.push(parse_document(&text, Format::Yaml).expect("base.yaml parses"));
    let clinics = root().join("rulesets/clinics");
    let mut paths: Vec<_> = std::fs::read_dir(&clinics)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(&p).expect("clinic overlay");
        docs.push(
            parse_document(&text, Format::Yaml).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        );
    }
    compile_bundle(&docs)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|rs| (rs.meta().id.clone(), rs))
        .collect()
}

fn case_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            case_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml")
            && p.file_name().is_some_and(|n| n != "clients.yaml")
        {
            out.push(p);
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let rulesets = std::sync::Arc::new(load_rulesets());
    let clients: std::sync::Arc<BTreeMap<String, Map<String, Value>>> = std::sync::Arc::new(
        std::fs::read_to_string(cases_dir.join("clients.yaml"))
            .map(|t| scenario::parse_clients(&t).expect("clients.yaml"))
            .unwrap_or_default(),
    );
    let mut files = Vec::new();
    case_files(&cases_dir, &mut files);
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&cases_dir)
                .unwrap_or(&path)
                .with_extension("")
                .display()
                .to_string();
            let (rulesets, clients) = (rulesets.clone(), clients.clone());
            Trial::test(name, move || {
                let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                scenario::run(&text, &rulesets, &clients).map_err(Failed::from)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
