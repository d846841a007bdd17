//! A real `redis-server` child process on a free port, for the Redis black-box tests and the
//! propagation measurement: no persistence (`--save "" --appendonly no`), killed (SIGKILL) on
//! drop, restartable on the same port. Commands go through `redis-cli`, so the tests need no
//! Redis client of their own and every command they issue is visible in `INFO commandstats` as
//! exactly what it is.
//!
//! [`RedisOptions`] starts the shapes of a managed Redis: TLS only (with or without client
//! certificates), ACL users, a replica of another server; [`RedisServer::sentinel`] starts a
//! Sentinel watching a primary.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The key prefix the server uses by default (see `services/app/src/store/keys.rs`).
pub const PREFIX: &str = "protocol:{rulesets}";
/// The activation channel.
pub const CHANNEL: &str = "protocol:rulesets:activated";

/// TLS files of a TLS-only server (PEM).
#[derive(Debug, Clone)]
pub struct RedisTls {
    /// The server's certificate and key.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The CA that signed it, and that client certificates must chain to.
    pub ca_file: PathBuf,
    /// `--tls-auth-clients yes`: a client without a certificate from the CA is refused.
    pub require_client_cert: bool,
    /// The certificate and key `redis-cli` presents (when clients must present one).
    pub cli_cert: Option<(PathBuf, PathBuf)>,
}

/// How to start a server beyond the defaults (see [`RedisServer::start_with`]).
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// TLS only: `--port 0 --tls-port <port>` with these files.
    pub tls: Option<RedisTls>,
    /// ACL users, one `--user` directive each (`"protocol on >secret ~protocol:* +get"`).
    pub users: Vec<String>,
    /// The user and password `redis-cli` (and the start-up check) log in with.
    pub cli_auth: Option<(String, String)>,
    /// `--replicaof 127.0.0.1 <port>`.
    pub replica_of: Option<u16>,
}

/// A `redis-server` on its own port; SIGKILLed on drop.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    options: RedisOptions,
    /// Its own folder: a replica writes the RDB it receives there, and a server loads any
    /// `dump.rdb` it finds at start, so a shared folder would leak data between servers.
    dir: tempfile::TempDir,
    /// A Sentinel (its config file, which it rewrites, is in `dir`).
    sentinel: bool,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers PING.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(RedisOptions::default())
    }

    /// Starts one with these options on a free port and waits until it answers PING.
    pub fn start_with(options: RedisOptions) -> anyhow::Result<Self> {
        let mut server = Self::not_started()?;
        server.options = options;
        server.restart()?;
        Ok(server)
    }

    /// A Sentinel (`redis-server <conf> --sentinel`) on a free port, monitoring the primary on
    /// `primary_port` as `master_name` with `quorum`, quick to act: down after 1 s, failover
    /// timeout 2 s.
    pub fn sentinel(primary_port: u16, master_name: &str, quorum: u32) -> anyhow::Result<Self> {
        let mut server = Self::not_started()?;
        let dir = server.dir.path();
        std::fs::write(
            dir.join("sentinel.conf"),
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel.log\n\
                 sentinel monitor {master_name} 127.0.0.1 {primary_port} {quorum}\n\
                 sentinel down-after-milliseconds {master_name} 1000\n\
                 sentinel failover-timeout {master_name} 2000\n\
                 sentinel parallel-syncs {master_name} 1\n",
                port = server.port,
                dir = dir.display(),
            ),
        )?;
        server.sentinel = true;
        server.restart()?;
        Ok(server)
    }

    /// A Sentinel's log so far (empty for a server), for a failing test to show.
    pub fn sentinel_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }

    /// A free port with no Redis on it yet ([`Self::restart`] starts it): for "Redis down at
    /// start".
    pub fn not_started() -> anyhow::Result<Self> {
        let port = reserved_port()?;
        Ok(Self {
            port,
            child: None,
            options: RedisOptions::default(),
            dir: tempfile::tempdir()?,
            sentinel: false,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/` (`rediss://` for a TLS server), for `PROTOCOL_REDIS_URL`.
    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Starts (again) on the same port, empty (no persistence), and waits for PING.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let mut cmd = Command::new("redis-server");
        if self.sentinel {
            cmd.arg(self.dir.path().join("sentinel.conf"))
                .arg("--sentinel");
        } else {
            self.server_args(&mut cmd);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (apt-get install redis-server)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.pings() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("redis-server on port {} did not answer PING", self.port)
    }

    /// Starts (again) on the same port as a replica of the server on `primary_port`, as an
    /// orchestrator restarts a failed primary once Sentinel has promoted another.
    pub fn restart_as_replica_of(&mut self, primary_port: u16) -> anyhow::Result<()> {
        self.options.replica_of = Some(primary_port);
        self.restart()
    }

    fn server_args(&self, cmd: &mut Command) {
        let port = self.port.to_string();
        match &self.options.tls {
            Some(tls) => {
                cmd.args(["--port", "0", "--tls-port", &port])
                    .arg("--tls-cert-file")
                    .arg(&tls.cert_file)
                    .arg("--tls-key-file")
                    .arg(&tls.key_file)
                    .arg("--tls-ca-cert-file")
                    .arg(&tls.ca_file)
                    .args([
                        "--tls-auth-clients",
                        if tls.require_client_cert { "yes" } else { "no" },
                    ]);
            }
            None => {
                cmd.args(["--port", &port]);
            }
        }
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            // A replica gets its first copy at once, not after the default 5 s wait for others.
            .args(["--repl-diskless-sync-delay", "0"]);
        for user in &self.options.users {
            // One argument per rule: redis-server reads a quoted line as one token.
            cmd.arg("--user").args(user.split_whitespace());
        }
        if let Some(primary) = self.options.replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
    }

    fn pings(&self) -> bool {
        if self.options.tls.is_some() || self.options.cli_auth.is_some() {
            return self.cli(&["PING"]).is_ok_and(|out| out.trim() == "PONG");
        }
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// SIGSTOP: alive but silent (a stalled replica); [`Self::resume`] undoes it.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// SIGCONT.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let Some(child) = &self.child else {
            bail!("redis-server on port {} is not running", self.port)
        };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} {} failed", child.id());
        }
        Ok(())
    }

    /// SIGKILL: no shutdown, no goodbye to connected clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs one command with `redis-cli` and returns its raw output.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(tls) = &self.options.tls {
            cmd.arg("--tls").arg("--cacert").arg(&tls.ca_file);
            if let Some((cert, key)) = &tls.cli_cert {
                cmd.arg("--cert").arg(cert).arg("--key").arg(key);
            }
        }
        if let Some((user, password)) = &self.options.cli_auth {
            cmd.args(["--user", user, "--pass", password, "--no-auth-warning"]);
        }
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running redis-cli")?;
        if !out.status.success() {
            bail!(
                "redis-cli {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `INFO commandstats` as command → calls.
    pub fn command_calls(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let text = self.cli(&["INFO", "commandstats"])?;
        Ok(parse_commandstats(&text))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `cmdstat_get:calls=3,usec=...` lines → `{"get": 3}`.
pub fn parse_commandstats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// A free port below the kernel's range for `bind(0)` (32768–60999 by default): a Redis that a
/// test kills and restarts on the same port must not find it taken meanwhile by a server binding
/// port 0 (which the kernel may give a port just freed). Tried in turn from a process-wide
/// counter, so the suite's Redis servers never pick the same one.
fn reserved_port() -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let port = FIRST + (offset + n) % SPAN;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port in {FIRST}..{}", FIRST + SPAN)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_commandstats() {
        let stats = super::parse_commandstats(
            "# Commandstats\r\ncmdstat_hgetall:calls=12,usec=40,usec_per_call=3.33,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=2,usec=9\r\n",
        );
        assert_eq!(stats.get("hgetall"), Some(&12));
        assert_eq!(stats.get("info"), Some(&2));
    }
}
