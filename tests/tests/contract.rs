//! The REST contract as integrators consume it, with their own tools, against the real binary
//! (with a real redis-server and an admin key): the served `/openapi.json` generates TypeScript
//! types (openapi-typescript) under which a fully answered eligibility request type-checks with
//! `tsc --strict` and wrongly typed facts do not; Redocly (`recommended`) and Spectral
//! (`spectral:oas`) report 0 errors and 0 warnings; schemathesis finds no failure of
//! `not_a_server_error`, `status_code_conformance`, `content_type_conformance` and
//! `response_schema_conformance`.
//!
//! The tools are those `scripts/check-contract --install-only` installs (pinned), found through
//! `CONTRACT_TOOLS` (scripts/test sets it), else in the cache folder the script fills. Without
//! them (plain `cargo test` on a fresh machine) the test says so and stops; under scripts/test
//! they are always there.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use protocol_tests::redis_server::RedisServer;
use protocol_tests::{KEY_AURORA, ServerBuilder, workspace_root};
use serde_json::{Value, json};

/// The tools folder: `CONTRACT_TOOLS` (must hold them), else the newest complete
/// `~/.cache/treatment-protocol/contract-*`.
fn tools() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CONTRACT_TOOLS") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join(".pins").is_file(),
            "CONTRACT_TOOLS={} holds no tools: run scripts/check-contract --install-only",
            dir.display()
        );
        return Some(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    std::fs::read_dir(cache.join("treatment-protocol"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("contract-"))
        .map(|e| e.path())
        .filter(|p| p.join(".pins").is_file())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

/// Runs a tool to completion, killing it past `limit`. Its output goes to files, read back at the
/// end (a pipe nobody drains while waiting would block a chatty tool forever).
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let (stdout, stderr) = (out_dir.path().join("out"), out_dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .env("NO_COLOR", "1")
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} took longer than {limit:?}: {}",
                std::fs::read_to_string(&stdout).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&stdout).unwrap_or_default(),
        stderr: std::fs::read(&stderr).unwrap_or_default(),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn bin(tools: &Path, name: &str) -> PathBuf {
    tools.join("node_modules/.bin").join(name)
}

/// `tsc --strict` on `source` next to the generated `api.d.ts`.
fn type_check(tools: &Path, dir: &Path, name: &str, source: &str) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, source).expect("write ts");
    run(
        Command::new(bin(tools, "tsc"))
            .args([
                "--strict",
                "--noEmit",
                "--target",
                "es2022",
                "--module",
                "esnext",
                "--moduleResolution",
                "bundler",
            ])
            .arg(&file),
        Duration::from_secs(120),
    )
}

/// A TypeScript file declaring `body` as an `EligibilityRequest`.
fn eligibility_ts(body: &Value) -> String {
    format!(
        "import type {{ components }} from \"./api\";\n\
         type EligibilityRequest = components[\"schemas\"][\"EligibilityRequest\"];\n\
         export const request: EligibilityRequest = {};\n",
        serde_json::to_string_pretty(body).expect("json")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrators_tools_accept_the_served_contract() {
    let Some(tools) = tools() else {
        eprintln!(
            "NOTE: no contract tools (CONTRACT_TOOLS, ~/.cache/treatment-protocol/contract-*): \
             not run; scripts/test installs them (scripts/check-contract --install-only)"
        );
        return;
    };
    let redis = RedisServer::start().expect("redis-server starts");
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .spawn()
        .expect("server starts");
    let url = server.url("/openapi.json");
    let http = reqwest::Client::new();
    let res = http
        .get(&url)
        .bearer_auth(KEY_AURORA)
        .send()
        .await
        .expect("openapi.json");
    assert_eq!(res.status().as_u16(), 200);
    let text_doc = res.text().await.expect("body");
    let doc: Value = serde_json::from_str(&text_doc).expect("JSON");
    assert_eq!(doc["info"]["x-ruleset"]["id"], "clinic-aurora");

    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, &text_doc).expect("write spec");

    // openapi-typescript, then tsc --strict: the fully answered request of scripts/load compiles.
    let t = Instant::now();
    let out = run(
        Command::new(bin(&tools, "openapi-typescript"))
            .arg(&spec)
            .arg("-o")
            .arg(dir.path().join("api.d.ts")),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "openapi-typescript: {}", text(&out));
    let full: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("scripts/load-eligibility.json"))
            .expect("scripts/load-eligibility.json"),
    )
    .expect("JSON");
    let out = type_check(&tools, dir.path(), "good.ts", &eligibility_ts(&full));
    assert!(
        out.status.success(),
        "a fully answered request must type-check: {}",
        text(&out)
    );
    // ... and a test that cannot fail is no test: a wrongly typed answer, a value outside an enum
    // and a misspelt fact each fail, naming the fault.
    for (name, fact, value, expected) in [
        ("bool.ts", "pregnant", Value::from("no"), "TS2322"),
        ("enum.ts", "rosacea", Value::from("sometimes"), "TS2322"),
        ("unknown.ts", "pregnent", Value::from(false), "TS2353"),
    ] {
        let mut bad = full.clone();
        bad["facts"][fact] = value;
        let out = type_check(&tools, dir.path(), name, &eligibility_ts(&bad));
        let said = text(&out);
        assert!(
            !out.status.success() && said.contains(expected),
            "{fact}: a wrongly typed fact must fail tsc --strict with {expected}: {said}"
        );
    }
    // The ids a request names are typed from the rule set too: a misspelt treatment, an unknown
    // role or zone fails tsc --strict (issue 25, item 5).
    for (name, field, value) in [
        ("treatment.ts", "/treatment", json!("microneedlng")),
        ("role.ts", "/role", json!("doctor")),
        ("zones.ts", "/zones", json!(["cheek"])),
        (
            "procedure.ts",
            "/history",
            json!([{"procedure": "microneedlng", "date": "2026-01-05"}]),
        ),
    ] {
        let mut bad = full.clone();
        if let Some(slot) = bad.pointer_mut(field) {
            *slot = value;
        } else {
            bad[field.trim_start_matches('/')] = value;
        }
        let out = type_check(&tools, dir.path(), name, &eligibility_ts(&bad));
        let said = text(&out);
        assert!(
            // TS2820 is TS2322 with a "did you mean" (a near miss such as `microneedlng`).
            !out.status.success() && (said.contains("TS2322") || said.contains("TS2820")),
            "{field}: an id the rule set does not declare must fail tsc --strict: {said}"
        );
    }
    eprintln!("openapi-typescript + tsc: {:?}", t.elapsed());

    // Redocly (recommended) and Spectral (spectral:oas): 0 errors, 0 warnings.
    let t = Instant::now();
    let out = run(
        Command::new(bin(&tools, "redocly"))
            .arg("lint")
            .arg(&spec)
            .arg("--config")
            .arg(workspace_root().join(".redocly.yaml"))
            .arg("--format=json"),
        Duration::from_secs(120),
    );
    let said = text(&out);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("redocly's JSON report: {e}: {said}"));
    assert_eq!(
        (&report["totals"]["errors"], &report["totals"]["warnings"]),
        (&Value::from(0), &Value::from(0)),
        "redocly: {said}"
    );
    let out = run(
        Command::new(bin(&tools, "spectral"))
            .arg("lint")
            .arg(&spec)
            .arg("--ruleset")
            .arg(workspace_root().join(".spectral.yaml"))
            .args(["--format", "json", "--fail-severity", "hint", "--quiet"]),
        Duration::from_secs(120),
    );
    let said = text(&out);
    let findings: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success() && findings.as_array().is_some_and(Vec::is_empty),
        "spectral: {said}"
    );
    eprintln!("redocly + spectral: {:?}", t.elapsed());

    // schemathesis against the same server, with the admin key: bounded examples, fixed seed.
    // The Server-Sent Events stream (`GET /v1/rulesets:watch`) is left out: it never ends, so it
    // has no response to check here (its own black-box tests read its events).
    let t = Instant::now();
    let out = run(
        Command::new(tools.join("venv/bin/st"))
            .arg("run")
            .arg(&url)
            .args(["--header", &format!("Authorization: Bearer {KEY_AURORA}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--workers",
                "2",
                "--request-timeout",
                "20",
                "--no-shrink",
                "--exclude-path",
                "/v1/rulesets:watch",
            ])
            .current_dir(dir.path()),
        Duration::from_secs(300),
    );
    assert!(out.status.success(), "schemathesis: {}", text(&out));
    eprintln!("schemathesis: {:?}", t.elapsed());
}
