//! Harness for the black-box tests: runs the real `protocol-server` binary as a child process on
//! free ports and hands out its addresses and clients.
//!
//! The binary is built (or found up to date) with `cargo build -p protocol-server` once per test
//! run, because `CARGO_BIN_EXE_*` exists only inside the binary's own package;
//! `PROTOCOL_SERVER_BIN` overrides the path. The server binds port 0 and logs the addresses it got
//! (JSON logs), which the harness reads back, so tests never race for a port.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use protocol_server::auth::hash_key;
use protocol_server::grpc::pb::treatment_protocol_service_client::TreatmentProtocolServiceClient;
use tonic::transport::Channel;

pub use protocol_server::grpc::pb;

pub mod fhir;
pub mod fixtures;
pub mod json_pb;
pub mod postgres_server;
pub mod raw;
pub mod redis_server;
pub mod sse;
pub mod test_app;

pub use test_app::{Answer, Asker, TestApp};

/// A key of the Aurora clinic with every scope: sees the `clinic-aurora` overlay.
pub const KEY_AURORA: &str = "tp-test-aurora-0c6f1e";
/// A key of a clinic without an overlay (Borealis) with every scope: sees the base rule set.
pub const KEY_BASE: &str = "tp-test-borealis-5d2a90";
/// An Aurora key with the `eligibility` scope only.
pub const KEY_ELIGIBILITY_ONLY: &str = "tp-test-aurora-elig-77b3c4";

/// An Aurora device's key: the `devices` scope only.
pub const KEY_DEVICE_ONLY: &str = "tp-test-aurora-device-4e71d0";

/// A Borealis key with the `admin` scope only: Borealis has no overlay, so it administers
/// nothing until the platform creates one.
pub const KEY_BOREALIS_ADMIN: &str = "tp-test-borealis-admin-31e9aa";
/// The platform operator's key: `admin` and `platform` (the base, every clinic, new ids).
pub const KEY_PLATFORM: &str = "tp-test-platform-9b04d2";

/// The keys file for the test keys above (hashes only).
pub fn keys_yaml() -> String {
    format!(
        "keys:\n\
         - {{id: aurora-all, tenant: clinic-aurora, scopes: [eligibility, devices, plans, admin], sha256: \"{}\"}}\n\
         - {{id: borealis-all, tenant: clinic-borealis, scopes: [eligibility, devices, plans], sha256: \"{}\"}}\n\
         - {{id: aurora-booking, tenant: clinic-aurora, scopes: [eligibility], sha256: \"{}\"}}\n\
         - {{id: borealis-admin, tenant: clinic-borealis, scopes: [admin], sha256: \"{}\"}}\n\
         - {{id: platform-ops, tenant: platform, scopes: [admin, platform], sha256: \"{}\"}}\n\
         - {{id: aurora-device, tenant: clinic-aurora, scopes: [devices], sha256: \"{}\"}}\n",
        hash_key(KEY_AURORA),
        hash_key(KEY_BASE),
        hash_key(KEY_ELIGIBILITY_ONLY),
        hash_key(KEY_BOREALIS_ADMIN),
        hash_key(KEY_PLATFORM),
        hash_key(KEY_DEVICE_ONLY)
    )
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The `protocol-server` executable, built on first use.
pub fn server_binary() -> anyhow::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        build("protocol-server", "PROTOCOL_SERVER_BIN").map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

/// The `protocolctl` executable (the authors' tool), built on first use; `PROTOCOLCTL_BIN`
/// overrides the path.
pub fn protocolctl_binary() -> anyhow::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build("protocolctl", "PROTOCOLCTL_BIN").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Builds (or finds up to date) the binary `name` of the package of the same name.
fn build(name: &str, override_var: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(override_var) {
        return Ok(PathBuf::from(path));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        name,
        "--bin",
        name,
        "--message-format=json-render-diagnostics",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running cargo build -p {name}"))?;
    if !out.status.success() {
        bail!("cargo build -p {name} failed: {}", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo build reported no {name} executable"))
}

/// What a `protocolctl` run printed and how it exited.
#[derive(Debug)]
pub struct CtlOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `protocolctl` with `args` from the workspace root, with `env` set (and no
/// `PROTOCOL_URL` / `PROTOCOL_API_KEY` from the caller's environment).
pub fn protocolctl(args: &[&str], env: &[(&str, &str)]) -> CtlOutput {
    let bin = protocolctl_binary().expect("protocolctl builds");
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(workspace_root())
        .env_remove("PROTOCOL_URL")
        .env_remove("PROTOCOL_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("protocolctl runs");
    CtlOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    env: Vec<(String, String)>,
    keys: bool,
    rulesets: Option<Vec<(String, String)>>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// Open mode (no keys), bundled rule sets, loopback on free ports.
    pub fn new() -> Self {
        Self {
            env: vec![
                ("PROTOCOL_HTTP_ADDR".into(), "127.0.0.1:0".into()),
                ("PROTOCOL_GRPC_ADDR".into(), "127.0.0.1:0".into()),
                ("PROTOCOL_LOG_FORMAT".into(), "json".into()),
                ("RUST_LOG".into(), "info".into()),
            ],
            keys: false,
            rulesets: None,
        }
    }

    /// Configures the test keys ([`keys_yaml`]) through a keys file.
    pub fn with_keys(mut self) -> Self {
        self.keys = true;
        self
    }

    /// Serves these rule-set files (`(relative path, YAML)`, e.g. `("base.yaml", ...)`) instead of
    /// the bundled ones.
    pub fn with_rulesets(mut self, files: Vec<(String, String)>) -> Self {
        self.rulesets = Some(files);
        self
    }

    /// Distributes rule sets through this Redis (`PROTOCOL_REDIS_URL`), reconciling every second
    /// so that fault tests see outages and recoveries quickly. Seeds a Redis found empty at start
    /// from the bundled rule sets (`PROTOCOL_SEED_EMPTY_REDIS`: each test's Redis is a first
    /// deployment); a test of the alarm sets it back to `false`. Without the seed's grace
    /// (`PROTOCOL_SEED_GRACE_SECS=0`): no replica that remembers a state can exist for a Redis
    /// the test just started; the tests of the grace (`with_redis::lineage`) set it.
    pub fn with_redis(self, redis: &redis_server::RedisServer) -> Self {
        self.env("PROTOCOL_REDIS_URL", &redis.url())
            .env("PROTOCOL_RECONCILE_INTERVAL_SECS", "1")
            .env("PROTOCOL_SEED_EMPTY_REDIS", "true")
            .env("PROTOCOL_SEED_GRACE_SECS", "0")
    }

    /// Sets an environment variable of the server.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    fn command(&self, dir: &Path) -> anyhow::Result<Command> {
        let mut cmd = Command::new(server_binary()?);
        cmd.env_clear();
        for key in ["PATH", "HOME", "LANG"] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if self.keys {
            let path = dir.join("keys.yaml");
            std::fs::write(&path, keys_yaml())?;
            cmd.env("PROTOCOL_API_KEYS_FILE", &path);
        }
        if let Some(files) = &self.rulesets {
            let root = dir.join("rulesets");
            for (name, text) in files {
                let path = root.join(name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, text)?;
            }
            cmd.env("PROTOCOL_RULESETS_DIR", &root);
        }
        Ok(cmd)
    }

    /// Starts the server and waits until it answers `/healthz`.
    pub fn spawn(self) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let mut child = self
            .command(dir.path())?
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting protocol-server")?;
        let output = Arc::new(Mutex::new(Vec::<String>::new()));
        let (addr_tx, addr_rx) = mpsc::channel::<(SocketAddr, SocketAddr)>();
        if let Some(stdout) = child.stdout.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(addrs) = listen_addresses(&line) {
                        let _ = addr_tx.send(addrs);
                    }
                    if let Ok(mut o) = output.lock() {
                        o.push(line);
                    }
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(mut o) = output.lock() {
                        o.push(line);
                    }
                }
            });
        }
        let mut server = Server {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            output,
            _dir: dir,
        };
        let (http, grpc) = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addrs) => addrs,
            Err(_) => bail!(
                "protocol-server did not report its addresses; output:\n{}",
                server.output().join("\n")
            ),
        };
        server.http = http;
        server.grpc = grpc;
        server.wait_healthy(Duration::from_secs(10))?;
        Ok(server)
    }

    /// Runs the server expecting it to exit by itself (e.g. refusing to start); returns its exit
    /// status and output.
    pub fn run_to_exit(self, timeout: Duration) -> anyhow::Result<(ExitStatus, String)> {
        let dir = tempfile::tempdir()?;
        let mut child = self
            .command(dir.path())?
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                let mut text = String::new();
                if let Some(mut o) = child.stdout.take() {
                    o.read_to_string(&mut text)?;
                }
                if let Some(mut e) = child.stderr.take() {
                    e.read_to_string(&mut text)?;
                }
                return Ok((status, text));
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                bail!("protocol-server did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `rest` and `grpc` fields of the start-up log line.
fn listen_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let rest = v.get("rest")?.as_str()?.parse().ok()?;
    let grpc = v.get("grpc")?.as_str()?.parse().ok()?;
    Some((rest, grpc))
}

/// A running `protocol-server`; killed when dropped.
pub struct Server {
    child: Child,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Open mode, bundled rule sets.
    pub fn start() -> anyhow::Result<Self> {
        ServerBuilder::new().spawn()
    }

    /// With the test keys, bundled rule sets.
    pub fn start_with_keys() -> anyhow::Result<Self> {
        ServerBuilder::new().with_keys().spawn()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(self.grpc_url())?.connect().await?)
    }

    pub async fn grpc(&self) -> anyhow::Result<TreatmentProtocolServiceClient<Channel>> {
        Ok(TreatmentProtocolServiceClient::new(self.channel().await?))
    }

    /// Everything the server printed so far (stdout and stderr lines).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        Ok(())
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() > timeout {
                bail!("protocol-server still running after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if healthz(self.http).unwrap_or(false) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "protocol-server exited ({status}); output:\n{}",
                    self.output().join("\n")
                );
            }
            if start.elapsed() > timeout {
                bail!("protocol-server not healthy after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `GET /healthz` over a plain socket answers 200.
fn healthz(addr: SocketAddr) -> std::io::Result<bool> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    // Read to the server's close, so that when the server is reported healthy this probe no
    // longer holds one of its connections (a test of the connection cap counts them).
    let _ = std::io::copy(&mut s, &mut std::io::sink());
    Ok(head.ends_with(b"200"))
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
