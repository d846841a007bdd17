//! Heap allocations per eligibility decision, counted by a counting global allocator
//! (`stats_alloc`): the bench's bodies (`benches/from_json.rs`) from request bytes to answer
//! bytes. One test in this binary, so nothing else allocates while it counts.
//!
//! `cargo test -p protocol-engine --test allocations -- --nocapture` prints the counts
//! (docs/performance.md, "From request bytes to answer bytes").

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

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

/// Allocations (and reallocations) and bytes allocated by one call of `f`, after a first call
/// that warms what is built once per rule set.
fn count<R>(mut f: impl FnMut() -> R) -> (usize, usize) {
    drop(f());
    let region = Region::new(GLOBAL);
    let out = f();
    let stats = region.change();
    drop(out);
    (
        stats.allocations + stats.reallocations,
        stats.bytes_allocated,
    )
}

/// The general path: the typed request, the engine, the typed answer. Not inlined, so that
/// `valgrind --tool=callgrind --toggle-collect='*typed_path*'` counts its instructions alone.
#[inline(never)]
fn typed_path(rs: &RuleSet, body: &[u8]) -> Vec<u8> {
    let req: EligibilityRequest = serde_json::from_slice(body).expect("valid");
    let answer = rs.eligibility(&req).expect("valid");
    serde_json::to_vec(&answer).expect("serializes")
}

/// The fast path: the body read into the rule set's slots, the answer written from its
/// pre-serialised texts, with a decision id as the server adds one.
#[inline(never)]
fn fast_path(rs: &RuleSet, body: &[u8]) -> Vec<u8> {
    let read = rs.read_eligibility(body).expect("read");
    let mut out = Vec::new();
    read.decide().write_json(
        &[("decision_id", "019ad1c2-0000-7000-8000-000000000000")],
        &mut out,
    );
    out
}

/// Repetitions of each path after the counted call, for an instruction count per decision
/// under callgrind (`PROTOCOL_ALLOC_REPEAT`, default none; `PROTOCOL_ALLOC_BODY=healthy` or
/// `four_rules_fire` for one body only): a path's count divided by `repeat + 2` calls.
fn repeat() -> usize {
    std::env::var("PROTOCOL_ALLOC_REPEAT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn allocations_per_eligibility_decision() {
    let rs = ruleset();
    let only = std::env::var("PROTOCOL_ALLOC_BODY").ok();
    for (name, body) in bodies() {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let typed = count(|| typed_path(&rs, &body));
        println!(
            "{name}: typed path: {} allocations, {} bytes",
            typed.0, typed.1
        );
        let fast = count(|| fast_path(&rs, &body));
        println!(
            "{name}: fast path: {} allocations, {} bytes",
            fast.0, fast.1
        );
        assert!(
            fast.0 < 10,
            "{name}: {} allocations per decision on the fast path (aim: fewer than 10)",
            fast.0
        );
        for _ in 0..repeat() {
            std::hint::black_box(typed_path(&rs, std::hint::black_box(&body)));
            std::hint::black_box(fast_path(&rs, std::hint::black_box(&body)));
        }
    }
}
