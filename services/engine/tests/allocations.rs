//! Heap allocations per eligibility decision, counted by a counting global allocator
//! (`stats_alloc`): the bench's bodies (`benches/from_json.rs`) from request bytes to answer
//! bytes. One test in this binary, so nothing else allocates while it counts.
//!
//! `cargo test -p protocol-engine --test allocations -- --nocapture` prints the counts (README,
//! performance section).

use std::alloc::System;

use protocol_engine::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn ruleset() -> RuleSet {
    let text = include_str!("../../../rulesets/base.yaml");
    compile(&parse_document(text, Format::Yaml).expect("parses"), None).expect("compiles")
}

fn bodies() -> [(&'static str, Vec<u8>); 2] {
    let healthy = include_str!("../../../scripts/load-eligibility.json");
    let mut four: serde_json::Value = serde_json::from_str(healthy).expect("load body parses");
    for fact in [
        "pregnant",
        "bleeding_disorder",
        "metal_allergy",
        "skin_cancer_in_area",
    ] {
        four["facts"][fact] = serde_json::Value::Bool(true);
    }
    four["facts"]["hsv_history"] = serde_json::Value::Bool(false);
    [
        ("healthy", healthy.as_bytes().to_vec()),
        (
            "four_rules_fire",
            serde_json::to_vec(&four).expect("serializes"),
        ),
    ]
}

/// Allocations and bytes allocated by one call of `f` (after a first, warming call).
fn count<R>(mut f: impl FnMut() -> R) -> (usize, usize) {
    drop(f());
    let region = Region::new(GLOBAL);
    let out = f();
    let stats = region.change();
    drop(out);
    (stats.allocations + stats.reallocations, stats.bytes_allocated)
}

#[test]
fn allocations_per_eligibility_decision() {
    let rs = ruleset();
    for (name, body) in bodies() {
        let typed = count(|| {
            let req: EligibilityRequest = serde_json::from_slice(&body).expect("valid");
            let answer = rs.eligibility(&req).expect("valid");
            serde_json::to_vec(&answer).expect("serializes")
        });
        println!(
            "{name}: typed (serde_json::from_slice + eligibility + to_vec): {} allocations, {} bytes",
            typed.0, typed.1
        );
    }
}
