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
//!   and `buf` on `PATH`; what it writes stays in that folder (but `/tmp/…` paths the docs name).
//!   Whatever a chain starts in the background is stopped when it ends (its process group: TERM,
//!   then KILL).
//!
//! And one addition: `curl` is a shell function that also writes each answer's status to standard
//! error (`@@http <code>`, unless the block's own `-w` replaces it), so a block whose call fails
//! fails the test even where the page shows no output ([`super::blocks`], `; errors shown`).

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

/// A free port for each of the docs' ports: distinct, none of the docs' own (a port handed out
/// must not be rewritten again), all bound at once while they are chosen, and below Linux's
/// ephemeral range (32768 and up): a port the kernel hands to a server another test binds to
/// port 0 meanwhile is never one of them (one was, and replica B of docs/redis.md could not
/// bind it).
pub fn free_ports() -> BTreeMap<u16, u16> {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 6_000) as u16;
    let _ = NEXT.compare_exchange(
        0,
        start,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    );
    let mut held = Vec::new();
    let mut out = BTreeMap::new();
    for from in DOCS_PORTS {
        loop {
            let port = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let port = 20_000 + port.wrapping_sub(20_000) % 12_000;
            if DOCS_PORTS.contains(&port) {
                continue;
            }
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                held.push(l);
                out.insert(from, port);
                break;
            }
        }
    }
    out
}

/// `text` with the docs' ports replaced (only after `:` or `port `, so a digest's digits stay),
/// all in one pass: a port written in is never rewritten again.
pub fn with_ports(text: &str, ports: &BTreeMap<u16, u16>) -> String {
    let placeholder = |i: usize| format!("\u{1}{i}\u{1}");
    let mut out = text.to_owned();
    for (i, from) in ports.keys().enumerate() {
        for prefix in [":", "--port ", "-p "] {
            out = replace_token(
                &out,
                &format!("{prefix}{from}"),
                &format!("{prefix}{}", placeholder(i)),
            );
        }
    }
    for (i, to) in ports.values().enumerate() {
        out = out.replace(&placeholder(i), &to.to_string());
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

/// What every chain runs first: `curl` also reports each answer's status on standard error.
const PRELUDE: &str = "set -eo pipefail\n\
    curl() { command curl -w '%{stderr}@@http %{http_code}\\n' \"$@\"; }\n";

/// The blocks of a chain as one script, adapted; each block announces itself on standard error
/// (`@@block <i>`), so a failed call is put down to its block.
pub fn script(chain: &[&Block], ports: &BTreeMap<u16, u16>) -> String {
    let server = server_binary().expect("protocol-server builds");
    let ctl = protocolctl_binary().expect("protocolctl builds");
    let mut out = String::from(PRELUDE);
    for (i, block) in chain.iter().enumerate() {
        out.push_str(&format!("# ---- {}\necho '@@block {i}' >&2\n", block.at()));
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
    // Whatever the chain left running in the background (servers, Redis): TERM, a few seconds
    // to drain, then KILL.
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    signal("-TERM");
    let until = Instant::now() + Duration::from_secs(5);
    while signal("-0") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal("-KILL");
    let _ = child.wait();
    Ran {
        code,
        stdout: joined(out),
        stderr: joined(err),
        script: script.to_owned(),
    }
}

/// A reader's text, waiting for it a few seconds at most (a process that left the group could
/// hold the pipe open).
fn joined(reader: std::thread::JoinHandle<String>) -> String {
    let until = Instant::now() + Duration::from_secs(5);
    while !reader.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    if reader.is_finished() {
        reader.join().unwrap_or_default()
    } else {
        "(output still held open by a process that left the chain's group)".to_owned()
    }
}

/// The first HTTP answer a chain's `curl`s got that its block does not allow: `5xx` always,
/// `4xx` unless the block says `; errors shown`. `(block index, status)`.
pub fn failed_call(chain: &[&Block], stderr: &str) -> Option<(usize, u16)> {
    let mut block = 0;
    for line in stderr.lines() {
        if let Some(i) = line.strip_prefix("@@block ") {
            block = i.trim().parse().unwrap_or(block);
        }
        let Some(code) = line
            .strip_prefix("@@http ")
            .and_then(|c| c.trim().parse::<u16>().ok())
        else {
            continue;
        };
        let shown = chain.get(block).is_some_and(|b| b.errors_shown);
        if code >= 500 || (code >= 400 && !shown) {
            return Some((block, code));
        }
    }
    None
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
    // 8080 -> 8081 and 8081 -> 30000: one pass, so 8080 ends on 8081, not on 30000.
    let chained = BTreeMap::from([(8080, 8081), (8081, 30000)]);
    assert_eq!(with_ports("a:8080 b:8081", &chained), "a:8081 b:30000");
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
