//! The documented commands run as written: the authoring walk-through of docs/authoring.md (a
//! script, against a real server on a real Redis with the keys docs/redis.md exports) and every
//! `$` command of
//! docs/authoring.md (its output compared with the page's, `…` standing for the rest of a line).
//!
//! Two things are adapted, and only these: `cargo build --release -p protocolctl` is replaced by
//! the test's own build of protocolctl (on `PATH`), and the docs' server address
//! `http://127.0.0.1:8080` by the test server's (tests run side by side on free ports).

use std::process::Command;

use protocol_tests::redis_server::RedisServer;

use super::shell::matches;
use protocol_tests::{ServerBuilder, protocolctl_binary, workspace_root};

/// The docs' address of the server their examples talk to.
const DOCS_URL: &str = "http://127.0.0.1:8080";

/// The text of a workspace file.
fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).expect("doc file")
}

/// The body of the first fenced block of `lang` after `heading`.
fn block_after(doc: &str, heading: &str, lang: &str) -> String {
    let section = &doc[doc.find(heading).unwrap_or_else(|| panic!("no {heading}"))..];
    let fence = format!("```{lang}\n");
    let start = section.find(&fence).expect("a block") + fence.len();
    let len = section[start..].find("\n```").expect("closed");
    section[start..start + len].to_owned()
}

/// Runs `script` with bash from the workspace root, protocolctl first on `PATH`; exit status,
/// stdout and stderr.
fn bash(script: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let bin = protocolctl_binary().expect("protocolctl builds");
    let dir = bin.parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(workspace_root())
        .env("PATH", path)
        .env_remove("PROTOCOL_URL")
        .env_remove("PROTOCOL_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `script` with the two adaptations of the module doc.
fn adapted(script: &str, url: &str) -> String {
    script
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("cargo build") {
                "true  # protocolctl: the test's build, on PATH".to_owned()
            } else {
                l.replace(DOCS_URL, url)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The API keys of the docs' server (docs/redis.md, "All of it in one script"), as exported there.
fn docs_keys(redis_md: &str) -> String {
    let block = block_after(redis_md, "## All of it in one script", "sh");
    let line = block
        .lines()
        .find_map(|l| l.strip_prefix("export PROTOCOL_API_KEYS='"))
        .expect("docs/redis.md exports PROTOCOL_API_KEYS");
    line.strip_suffix('\'').expect("quoted").to_owned()
}

#[test]
fn the_authoring_walk_through_runs_as_written() {
    let _serial = crate::with_redis::common::serial_blocking();
    let page = read("docs/authoring.md");
    let redis = RedisServer::start().expect("redis");
    let server = ServerBuilder::new()
        .env("PROTOCOL_API_KEYS", &docs_keys(&read("docs/redis.md")))
        .with_redis(&redis)
        .spawn()
        .expect("server");
    let script = adapted(
        &block_after(
            &page,
            "## The walk-through: from an edit to a rollback",
            "sh",
        ),
        &server.url(""),
    );
    let (code, stdout, stderr) = bash(&script, &[]);
    assert_eq!(
        code, 0,
        "{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // What each step is documented to do.
    for said in [
        ", 0 failed",
        "activated clinic-aurora 2026.12.1 (was 2026.12.0)",
        "would roll back clinic-aurora to 2026.12.0 (was 2026.12.1)",
        "rolled back clinic-aurora to 2026.12.0 (was 2026.12.1)",
    ] {
        assert!(stdout.contains(said), "{said}\n{stdout}");
    }
}

/// One `$` command of a page and the output the page shows for it.
struct Transcript {
    command: String,
    shown: Vec<String>,
}

/// Every `$` command of `doc`'s untyped fenced blocks, with the lines after it up to the next.
fn transcripts(doc: &str) -> Vec<Transcript> {
    let mut out: Vec<Transcript> = Vec::new();
    // Inside a fence: `Some(true)` an untyped one (a transcript), `Some(false)` a typed one.
    let mut fence: Option<bool> = None;
    for line in doc.lines() {
        if line.starts_with("```") {
            fence = match fence {
                None => Some(line == "```"),
                Some(_) => None,
            };
            continue;
        }
        if fence != Some(true) {
            continue;
        }
        match line.strip_prefix("$ ") {
            Some(command) => out.push(Transcript {
                command: command.to_owned(),
                shown: Vec::new(),
            }),
            None => {
                if let Some(t) = out.last_mut() {
                    t.shown.push(line.to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn every_command_of_the_authoring_page_prints_what_the_page_shows() {
    let page = read("docs/authoring.md");
    let build = block_after(&page, "# Authoring rule sets", "sh");
    assert!(
        build.starts_with("cargo build --release -p protocolctl"),
        "{build}"
    );
    let all = transcripts(&page);
    assert!(all.len() >= 3, "the page's commands: {}", all.len());
    for t in &all {
        let (_, stdout, stderr) = bash(&t.command, &[]);
        let actual: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            actual.len(),
            t.shown.len(),
            "$ {}\n--- shown\n{}\n--- printed\n{stdout}{stderr}",
            t.command,
            t.shown.join("\n")
        );
        for (shown, actual) in t.shown.iter().zip(&actual) {
            assert!(
                matches(shown, actual),
                "$ {}\n--- shown\n{shown}\n--- printed\n{actual}",
                t.command
            );
        }
    }
}
