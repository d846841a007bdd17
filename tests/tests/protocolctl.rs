//! Issue 14 §1, black-box: the real `protocolctl` binary, offline commands (`validate`, `test`,
//! `eval`, `diff`) on the bundled rule sets and on edited copies in temporary folders. The
//! admin-API commands are tested against a real server and Redis in `redis/protocolctl.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::path::Path;

use protocol_tests::fixtures::healthy_facts;
use protocol_tests::{protocolctl, workspace_root};
use serde_json::{Value, json};

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace_root().join(rel)).expect("bundled file")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn validate_accepts_the_bundled_rule_sets() {
    let out = protocolctl(&["validate", "rulesets"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("2 file(s), 0 problem(s)"), "{out:?}");
}

#[test]
fn validate_names_file_line_path_and_a_suggestion_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = read("rulesets/base.yaml");
    let line = base
        .lines()
        .position(|l| {
            l.contains("applies_to: [microneedling, microneedling_prp, rf_microneedling]")
        })
        .expect("an applies_to line")
        + 1;
    let broken = base.replacen(
        "applies_to: [microneedling, microneedling_prp, rf_microneedling]",
        "applies_to: [microneedlin, microneedling_prp, rf_microneedling]",
        1,
    );
    let file = write(dir.path(), "base.yaml", &broken);

    let out = protocolctl(&["validate", &file], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let problem = out
        .stdout
        .lines()
        .find(|l| l.contains("microneedlin'"))
        .unwrap_or_else(|| panic!("the typo is named: {out:?}"));
    assert!(problem.starts_with(&format!("{file}:")), "{problem}");
    assert!(problem.contains("applies_to"), "{problem}");
    assert!(
        problem.contains("did you mean 'microneedling'"),
        "{problem}"
    );

    let out = protocolctl(&["validate", "--format", "json", &file], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let report: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(report["valid"], false);
    let p = report["problems"]
        .as_array()
        .and_then(|a| {
            a.iter().find(|p| {
                p["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("microneedlin'")
            })
        })
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        p["path"].as_str().unwrap_or("").contains("applies_to"),
        "{p}"
    );
    let got = p["line"].as_u64().expect("a line") as usize;
    assert!(got.abs_diff(line) <= 12, "line {got} near {line}: {p}");
}

#[test]
fn validate_checks_an_overlay_on_the_base_beside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "base.yaml", &read("rulesets/base.yaml"));
    let loose = read("rulesets/clinics/clinic-aurora.yaml").replace(
        "- {id: nurse, max_depth_mm: 1.0,",
        "- {id: nurse, max_depth_mm: 9.0,",
    );
    let file = write(dir.path(), "clinics/clinic-aurora.yaml", &loose);
    let out = protocolctl(&["validate", &file], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("tighten.roles[0]"), "{out:?}");
}

#[test]
fn test_runs_scenarios_tap_style_and_fails_on_a_wrong_expectation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = dir.path().join("scenarios");
    write(
        &cases,
        "clients.yaml",
        &read("services/engine/tests/cases/clients.yaml"),
    );
    write(
        &cases,
        "healthy.yaml",
        &read(
            "services/engine/tests/cases/eligibility/healthy_adult_is_eligible_for_microneedling.yaml",
        ),
    );
    write(
        &cases,
        "aurora/nurse.yaml",
        &read("services/engine/tests/cases/overlay/aurora_nurse_capped_at_1_0.yaml"),
    );
    let cases_arg = cases.display().to_string();
    let out = protocolctl(&["test", &cases_arg, "--rulesets", "rulesets"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("TAP version 13\n1..2\n"), "{out:?}");
    assert!(out.stdout.contains("ok 1 - aurora/nurse"), "{out:?}");
    assert!(out.stdout.contains("ok 2 - healthy"), "{out:?}");
    assert!(out.stdout.contains("# 2 passed, 0 failed"), "{out:?}");

    write(
        &cases,
        "wrong.yaml",
        &read("services/engine/tests/cases/eligibility/healthy_adult_is_eligible_for_microneedling.yaml")
            .replace("\"decision\": \"eligible\"", "\"decision\": \"deferred\"")
            .replace("\"fired\": []", "\"fired\": [\"pregnancy\"]"),
    );
    let out = protocolctl(&["test", &cases_arg, "--rulesets", "rulesets"], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("not ok 3 - wrong"), "{out:?}");
    assert!(
        out.stdout.contains("  # scenario 'A fully answered healthy adult may book microneedling': decision: expected \"deferred\", got \"eligible\""),
        "{out:?}"
    );
    // Every mismatch of a failing scenario, not only the first.
    assert!(
        out.stdout
            .contains("; fired: expected {\"pregnancy\"}, got {}"),
        "{out:?}"
    );
}

#[test]
fn eval_answers_one_request_offline_for_a_clinic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let req = write(
        dir.path(),
        "depth.json",
        r#"{"treatment": "microneedling", "device": "dermapen_4", "role": "nurse", "zone": "cheeks"}"#,
    );
    let out = protocolctl(
        &[
            "eval",
            &req,
            "--rulesets",
            "rulesets",
            "--clinic",
            "clinic-aurora",
            "--check",
            "depth-limits",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let answer: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(answer["zones"][0]["max_depth_mm"], 1.0, "{answer}");
    assert_eq!(answer["ruleset"]["id"], "clinic-aurora");

    let bad = write(
        dir.path(),
        "bad.json",
        r#"{"treatment": "microneedlin", "device": "dermapen_4", "role": "nurse"}"#,
    );
    let out = protocolctl(
        &[
            "eval",
            &bad,
            "--rulesets",
            "rulesets",
            "--check",
            "depth-limits",
        ],
        &[],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("treatment:"), "{out:?}");
}

/// `eval --explain` returns the engine's explanation beside the answer, as the server does with
/// `explain: true`: the rule that fired with the value it read, an unanswered fact as unknown.
#[test]
fn eval_explains_a_decision_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut facts = healthy_facts();
    facts["pregnant"] = json!(true);
    let req = write(
        dir.path(),
        "eligibility.json",
        &json!({"treatment": "microneedling", "date": "2026-12-01", "facts": facts, "history": []})
            .to_string(),
    );
    let out = protocolctl(&["eval", &req, "--rulesets", "rulesets", "--explain"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let answer: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(answer["decision"], "contraindicated", "{answer}");
    let pregnancy = answer["explanation"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["rule"] == "pregnancy"))
        .unwrap_or_else(|| panic!("pregnancy explained: {answer}"));
    assert_eq!(pregnancy["result"], "true");
    assert_eq!(
        pregnancy["condition"]["used"],
        json!([{"input": "pregnant", "value": "true"}])
    );
    // Without the flag, no explanation; depth limits explain each cap; plans have none.
    let out = protocolctl(&["eval", &req, "--rulesets", "rulesets"], &[]);
    let plain: Value = serde_json::from_str(&out.stdout).expect("json");
    assert!(plain.get("explanation").is_none(), "{plain}");
    let depth = write(
        dir.path(),
        "depth.json",
        r#"{"treatment": "microneedling", "device": "dermapen_4", "role": "nurse", "zone": "cheeks"}"#,
    );
    let out = protocolctl(
        &[
            "eval",
            &depth,
            "--rulesets",
            "rulesets",
            "--check",
            "depth-limits",
            "--explain",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let limits: Value = serde_json::from_str(&out.stdout).expect("json");
    assert!(limits["zones"][0]["bounds"].is_array(), "{limits}");
    let out = protocolctl(
        &[
            "eval",
            &depth,
            "--rulesets",
            "rulesets",
            "--check",
            "plan",
            "--explain",
        ],
        &[],
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("plans have no explanation"), "{out:?}");
}

#[test]
fn diff_marks_loosenings_and_fails_on_them_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aurora = read("rulesets/clinics/clinic-aurora.yaml");
    // The bundled version, whatever it is now, and a later one.
    let version = aurora
        .lines()
        .find_map(|l| l.strip_prefix("version: "))
        .expect("a version line")
        .trim_matches('"')
        .to_owned();
    let looser = aurora
        .replace(&format!("version: \"{version}\""), "version: \"9999.1.1\"")
        .replace("zones: {cheeks: 1.2,", "zones: {cheeks: 1.4,");
    let new = write(dir.path(), "clinic-aurora.yaml", &looser);
    let old = "rulesets/clinics/clinic-aurora.yaml";

    let out = protocolctl(&["diff", old, &new, "--base", "rulesets/base.yaml"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(&format!(
            "clinic-aurora {version} -> clinic-aurora 9999.1.1:"
        )),
        "{out:?}"
    );
    // One line per edited entry: the cheeks of both treatments Aurora tightens, the cells counted.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("looser  depth microneedling")
                && l.contains("cheeks")
                && l.contains("1.2 -> 1.4")
                && l.contains(" cells (old tighten.treatments[")),
        "{out:?}"
    );
    // Every cell on its own line with --verbose.
    let verbose = protocolctl(
        &[
            "diff",
            old,
            &new,
            "--base",
            "rulesets/base.yaml",
            "--verbose",
        ],
        &[],
    );
    assert!(
        verbose.stdout.lines().count() > out.stdout.lines().count(),
        "{verbose:?}"
    );
    assert!(
        verbose
            .stdout
            .lines()
            .any(|l| l.starts_with("looser  depth microneedling × dermapen_4 × ")),
        "{verbose:?}"
    );

    let out = protocolctl(
        &[
            "diff",
            old,
            &new,
            "--base",
            "rulesets/base.yaml",
            "--fail-on-loosen",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 1, "{out:?}");
    let d: Value = serde_json::from_str(&out.stdout).expect("json");
    let c = &d["changes"][0];
    assert_eq!(c["direction"], "looser", "{d}");
    assert_eq!(c["new_at"]["path"], "tighten.treatments[0]", "{c}");
    assert!(c["new_at"]["line"].as_u64().is_some(), "{c}");

    // Tighter is not a failure.
    let tighter = aurora.replace("zones: {cheeks: 1.2,", "zones: {cheeks: 1.1,");
    let new = write(dir.path(), "tighter.yaml", &tighter);
    let out = protocolctl(
        &[
            "diff",
            old,
            &new,
            "--base",
            "rulesets/base.yaml",
            "--fail-on-loosen",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("0 looser"), "{out:?}");
}

/// Issue 23: a diff people can read. Three edited numbers print a line each (at most 6 lines with
/// the heading), each at the edited entry; a role-only change points at the role's line, not at
/// the treatments whose cells it reaches.
#[test]
fn diff_prints_a_line_per_edited_entry_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aurora = read("rulesets/clinics/clinic-aurora.yaml");
    let old = "rulesets/clinics/clinic-aurora.yaml";
    let line_of = |needle: &str| {
        aurora
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("in the overlay")
    };

    let three = aurora.replace(
        "zones: {cheeks: 1.2, neck: 1.0, abdomen: 2.0}",
        "zones: {cheeks: 1.0, neck: 0.9, abdomen: 1.8}",
    );
    assert_ne!(three, aurora, "the three numbers are edited");
    let new = write(dir.path(), "three.yaml", &three);
    let out = protocolctl(&["diff", old, &new, "--base", "rulesets/base.yaml"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.len() <= 6, "{}", out.stdout);
    let entry = format!(
        "new tighten.treatments[0] line {}",
        line_of("- id: microneedling")
    );
    assert!(
        lines.iter().skip(1).all(|l| l.contains(&entry)),
        "{}",
        out.stdout
    );

    let role = aurora.replace(
        "- {id: nurse, max_depth_mm: 1.0,",
        "- {id: nurse, max_depth_mm: 0.9,",
    );
    assert_ne!(role, aurora, "the nurse cap is edited");
    let new = write(dir.path(), "role.yaml", &role);
    let out = protocolctl(&["diff", old, &new, "--base", "rulesets/base.yaml"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[1].contains(&format!(
            "new tighten.roles[0] line {}",
            line_of("- {id: nurse,")
        )),
        "{}",
        out.stdout
    );
}

/// Issue 23: an overlay whose base is missing is refused naming what fixes it (the flag, the
/// file beside it, or pulling the server's).
#[test]
fn a_missing_base_names_the_flag_that_fixes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let overlay = write(
        dir.path(),
        "clinic-aurora.yaml",
        &read("rulesets/clinics/clinic-aurora.yaml"),
    );
    let out = protocolctl(&["validate", &overlay], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("--base FILE") && out.stdout.contains("protocolctl pull base"),
        "{out:?}"
    );
    let folder = dir.path().display().to_string();
    let out = protocolctl(
        &["test", "services/engine/tests/cases", "--rulesets", &folder],
        &[],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("--base FILE") && out.stderr.contains("--server-base base"),
        "{out:?}"
    );
}
