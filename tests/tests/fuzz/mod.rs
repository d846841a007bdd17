//! Fuzzing on stable Rust: each target reads inputs mutated from its corpus
//! (`tests/fuzz/corpus/<target>/`, seeds in the repository) by a seeded generator, and holds what
//! must hold for any input: nothing panics, the fast eligibility read and the general path answer
//! alike, the real server answers every body and message with a client error at worst (never a
//! 500, `INTERNAL` or `UNKNOWN`) and stays up.
//!
//! | target | reads | holds |
//! |---|---|---|
//! | `eligibility_json` | `RuleSet::read_eligibility` (the fast read) and `serde_json` + `RuleSet::eligibility` (the general path), in process | no panic; the fast read answers only what the general path answers, with the same bytes |
//! | `ruleset_yaml` | `parse_document` (YAML) and `compile`, in process | no panic; a refusal names a place |
//! | `grpc_check_eligibility` | the eligibility corpus encoded as `CheckEligibilityRequest`, mutated as bytes: the real server over gRPC (its strict codec and conversions) | never `INTERNAL`/`UNKNOWN`, the server stays up |
//! | `cds_hook` | `POST /cds-services/treatment-eligibility` on the real server (the strict JSON check, the hook's shapes, the FHIR readers) | never a 5xx, the server stays up |
//!
//! The suite runs `FUZZ_CASES` inputs per target (default 300: seconds); a longer run, with
//! another seed: `FUZZ_CASES=200000 FUZZ_SEED=7 cargo test --test suite -- fuzz --nocapture`. A
//! failing input is printed (escaped) with the seed and case that made it, so it can be added to
//! the corpus.

mod mutate;
mod targets;

use std::path::{Path, PathBuf};

/// Inputs per target.
fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// The generator's seed.
fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(26)
}

/// The seeds of `target`: every file of its corpus folder, and `extra` files of the repository.
fn corpus(target: &str, extra: &[&str]) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    files.extend(extra.iter().map(|f| root.join("..").join(f)));
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect();
    assert!(!seeds.is_empty(), "{target}: an empty corpus");
    seeds
}

/// Runs `check` on each seed and on `cases()` mutations of them; panics naming the first input
/// that fails (or panics), with the seed and case that made it.
fn run(target: &str, seeds: &[Vec<u8>], mut check: impl FnMut(&[u8]) -> Result<(), String>) {
    let (cases, seed) = (cases(), seed());
    let mut mutator = mutate::Mutator::new(seed, seeds);
    for case in 0..seeds.len() + cases {
        let input = if case < seeds.len() {
            seeds[case].clone()
        } else {
            mutator.next_input()
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        let fault = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(fault)) => fault,
            Err(panic) => format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            ),
        };
        panic!(
            "fuzz target {target}, FUZZ_SEED={seed}, case {case}: {fault}\ninput ({} bytes): {}",
            input.len(),
            escaped(&input)
        );
    }
    eprintln!(
        "fuzz target {target}: {} inputs ({} seeds), FUZZ_SEED={seed}",
        seeds.len() + cases,
        seeds.len()
    );
}

/// The input as text with everything but printable ASCII escaped, clipped to 4 KB.
fn escaped(input: &[u8]) -> String {
    let text: String = input
        .iter()
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    match text.char_indices().nth(4096) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}
