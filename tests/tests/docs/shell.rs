//! Running a chain of documented blocks with bash, as a reader pastes them, and checking what
//! they print against what the page shows.
//!
//! Only these adaptations are made, each because the test cannot do what a reader does:
//!
//! - **Ports.** The docs' ports (REST 8080/8081, gRPC 50051/50052, Redis 6379) are replaced by
//!   free ones, so tests run side by side with anything else on the machine.
//! - **Builds.** `cargo run [-q] [--release] -p protocol-server|protocolctl [--]` becomes the
//!   test's own build of that binary, `target/release/…` and `$CARGO_TARGET_DIR/release/…` its
//!   path, and a `cargo build` line does nothing (the test built them).
//! - **Where.** A block runs in a temporary folder holding links to the repository's files (so
//!   `scripts/…`, `rulesets/…` and `docs/…` read as from the repository root), with `protocolctl`
//!   and `buf` on `PATH`; what it writes stays in that folder. Whatever a chain starts in the
//!   background is stopped when it ends (its process group).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocol_tests::{protocolctl_binary, server_binary, workspace_root};

use super::blocks::Block;

/// The docs' ports, each replaced by a free one.
pub const DOCS_PORTS: [u16; 5] = [8080, 8081, 50051, 50052, 6379];

/// How long one chain may take (a first `pip install` of grpcio-tools included).
const CHAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// What a chain printed.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub script: String,
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `text` with the docs' ports replaced (only after `:` or `port `, so a digest's digits stay).
pub fn with_ports(text: &str, ports: &BTreeMap<u16, u16>) -> String {
    let mut out = text.to_owned();
    for (from, to) in ports {
        for prefix in [":", "--port ", "-p "] {
            out = replace_token(&out, &format!("{prefix}{from}"), &format!("{prefix}{to}"));
        }
    }
    out
}

/// Replaces `from` where it is not followed by a letter or digit (a digest's `sha256:8080ab…`
/// stays).
fn replace_token(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let after = &rest[at + from.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A line with the builds adapted (module doc).
fn with_builds(line: &str, server: &Path, ctl: &Path) -> String {
    if line.trim_start().starts_with("cargo build") {
        return "true  # the test built the binaries".to_owned();
    }
    let mut line = line.to_owned();
    for (name, bin) in [("protocol-server", server), ("protocolctl", ctl)] {
        let bin = bin.display().to_string();
        for flags in ["", "-q ", "--release ", "--release -q ", "-q --release "] {
            for tail in [" -- ", " "] {
                line = line.replace(
                    &format!("cargo run {flags}-p {name}{tail}"),
                    &format!("{bin} "),
                );
            }
            let bare = format!("cargo run {flags}-p {name}");
            if line.trim_end().ends_with(&bare) || line.contains(&format!("{bare} ")) {
                line = line.replace(&bare, &bin);
            }
        }
        line = line
            .replace(&format!("$CARGO_TARGET_DIR/release/{name}"), &bin)
            .replace(&format!("target/release/{name}"), &bin);
    }
    line
}

/// The blocks of a chain as one script, adapted.
pub fn script(chain: &[&Block], ports: &BTreeMap<u16, u16>) -> String {
    let server = server_binary().expect("protocol-server builds");
    let ctl = protocolctl_binary().expect("protocolctl builds");
    let mut out = String::from("set -eo pipefail\n");
    for block in chain {
        out.push_str(&format!("# ---- {}\n", block.at()));
        for line in with_ports(&block.body, ports).lines() {
            out.push_str(&with_builds(line, &server, &ctl));
            out.push('\n');
        }
    }
    out
}

/// A folder of links to the repository's top-level entries (but `target`, `.git`).
fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = workspace_root();
    for entry in std::fs::read_dir(&root).expect("root").flatten() {
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), dir.path().join(&name)).expect("link");
    }
    dir
}

/// `buf`'s folder (scripts/check-proto installs it once, cached).
fn buf_dir() -> Option<PathBuf> {
    let out = Command::new(workspace_root().join("scripts/check-proto"))
        .arg("--install-only")
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout);
    Path::new(path.trim()).parent().map(Path::to_path_buf)
}

/// Runs `script` with bash in a sandbox; stops its process group when it ends or times out.
pub fn run(script: &str) -> Ran {
    let dir = sandbox();
    let ctl = protocolctl_binary().expect("protocolctl builds");
    let mut path: Vec<PathBuf> = vec![ctl.parent().expect("bin dir").to_path_buf()];
    path.extend(buf_dir());
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let mut child = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir.path())
        .env("PATH", std::env::join_paths(path).expect("PATH"))
        .env_remove("PROTOCOL_URL")
        .env_remove("PROTOCOL_API_KEY")
        .env_remove("PROTOCOL_API_KEYS")
        .env_remove("PROTOCOL_REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let pgid = child.id();
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if started.elapsed() > CHAIN_TIMEOUT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever the chain left running in the background (servers, Redis).
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    Ran {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        script: script.to_owned(),
    }
}

/// Whether `actual` is what the page shows as `shown`, `…` matching any text.
pub fn matches(shown: &str, actual: &str) -> bool {
    let mut parts = shown.split('…');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The first shown line (of the chain's blocks, in order) the output does not have, in order.
pub fn missing(chain: &[&Block], stdout: &str) -> Option<String> {
    let mut lines = stdout.lines();
    for block in chain {
        for paragraph in block.shown() {
            for shown in &paragraph {
                if !lines.any(|actual| matches(shown, actual)) {
                    return Some(format!("{}: `{shown}`", block.at()));
                }
            }
        }
    }
    None
}

#[test]
fn ports_are_replaced_as_tokens_and_builds_by_the_tests_binaries() {
    let ports = BTreeMap::from([(8080, 18080), (6379, 16379)]);
    assert_eq!(
        with_ports(
            "curl localhost:8080/x 127.0.0.1:80801 redis-server --port 6379 sha:6379ab",
            &ports
        ),
        "curl localhost:18080/x 127.0.0.1:80801 redis-server --port 16379 sha:6379ab"
    );
    let (s, c) = (Path::new("/b/protocol-server"), Path::new("/b/protocolctl"));
    assert_eq!(
        with_builds("A=1 cargo run --release -p protocol-server &", s, c),
        "A=1 /b/protocol-server &"
    );
    assert_eq!(
        with_builds("cargo run -q -p protocolctl -- validate x", s, c),
        "/b/protocolctl validate x"
    );
    assert_eq!(
        with_builds("BIN=target/release/protocol-server", s, c),
        "BIN=/b/protocol-server"
    );
    assert!(with_builds("  cargo build --release -p protocolctl", s, c).starts_with("true"));
}

#[test]
fn the_matcher_takes_an_ellipsis_for_any_text_and_nothing_else() {
    assert!(matches("a {…} b", "a {x: 1} b"));
    assert!(matches("exact", "exact"));
    assert!(!matches("exact", "exactly"));
    assert!(!matches("a {…} b", "a {x: 1} c"));
    assert!(matches("…", "anything"));
}
