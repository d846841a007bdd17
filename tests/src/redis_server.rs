//! A real `redis-server` child process on a free port, for the Redis black-box tests and the
//! propagation measurement: no persistence (`--save "" --appendonly no`), killed (SIGKILL) on
//! drop, restartable on the same port. Commands go through `redis-cli`, so the tests need no
//! Redis client of their own and every command they issue is visible in `INFO commandstats` as
//! exactly what it is.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The key prefix the server uses by default (see `services/server/src/store/keys.rs`).
pub const PREFIX: &str = "protocol:{rulesets}";
/// The activation channel.
pub const CHANNEL: &str = "protocol:rulesets:activated";

/// A `redis-server` on its own port; SIGKILLed on drop.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// Its own working directory: a `dump.rdb` that anything else left in a shared folder (a
    /// replica's full sync writes one) would otherwise be loaded at start.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers PING.
    pub fn start() -> anyhow::Result<Self> {
        let mut server = Self::not_started()?;
        server.restart()?;
        Ok(server)
    }

    /// A free port with no Redis on it yet ([`Self::restart`] starts it): for "Redis down at
    /// start".
    pub fn not_started() -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Ok(Self {
            port,
            child: None,
            dir: tempfile::tempdir()?,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`, for `PROTOCOL_REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts (again) on the same port, empty (no persistence), and waits for PING.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &self.dir.path().display().to_string()])
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

    fn pings(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
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
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
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
