//! A real PostgreSQL server as a child process on a free port, for the decision-log tests: a
//! cluster made by `initdb` in a temporary folder (trust authentication; no fsync, which loses
//! nothing when only the process is killed, while a commit is still durable once acknowledged:
//! `synchronous_commit` stays on, so a SIGKILL loses no acknowledged row), the Unix
//! socket in that folder too, SIGKILLed on drop and restartable on the same port and data.
//! Queries go through `psql`, so the tests read exactly what an auditor would.
//!
//! The binaries are Debian's (`/usr/lib/postgresql/<major>/bin`, package `postgresql`; scripts/test
//! installs it), else the ones on `PATH`. PostgreSQL refuses to run as root: as root, the cluster
//! belongs to the `postgres` user and the server runs as that user (`setpriv`, which execs, so
//! the child's pid is the postmaster's and a kill reaches it).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A PostgreSQL server on its own port; SIGKILLed on drop.
pub struct PostgresServer {
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `Some((uid, gid))` of `postgres` when this process is root.
    run_as: Option<(u32, u32)>,
}

impl PostgresServer {
    /// A fresh cluster on a free port, started and accepting queries.
    pub fn start() -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let dir = tempfile::tempdir()?;
        let run_as = if is_root()? {
            Some((id("-u")?, id("-g")?))
        } else {
            None
        };
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = Self {
            port,
            bin,
            dir,
            child: None,
            run_as,
        };
        let out = server
            .command("initdb")
            .arg("-D")
            .arg(server.data())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .context("running initdb (apt-get install postgresql)")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        server.restart()?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command of the cluster's binaries, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        match self.run_as {
            Some((uid, gid)) => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// For `PROTOCOL_DECISION_LOG_URL`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts (again) on the same port and data, and waits until it answers a query.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let child = self
                .command("postgres")
                .arg("-D")
                .arg(self.data())
                .args(["-p", &self.port.to_string(), "-k"])
                .arg(self.dir.path())
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(self.dir.path().join("postgres.log"))?)
                .spawn()
                .context("starting postgres (apt-get install postgresql)")?;
            self.child = Some(child);
            while Instant::now() < deadline {
                if self.psql("SELECT 1").is_ok_and(|o| o.trim() == "1") {
                    return Ok(());
                }
                // The previous postmaster's backends may still hold the shared memory: try again.
                if let Some(c) = self.child.as_mut()
                    && c.try_wait()?.is_some()
                {
                    self.child = None;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if Instant::now() >= deadline {
                bail!(
                    "postgres on port {} did not start: {}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's log so far, for a failing test to show.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// SIGKILL the postmaster: no shutdown, connections cut. Its backends notice and exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (`-STOP`) or resumes (`-CONT`) the postmaster and every backend: a PostgreSQL that
    /// still holds its connections and answers nothing (a stalled disk, a hung host).
    pub fn signal_all(&self, signal: &str) {
        if let Some(child) = &self.child {
            let pid = child.id().to_string();
            let _ = Command::new("pkill").args([signal, "-P", &pid]).status();
            let _ = Command::new("kill").args([signal, &pid]).status();
        }
    }

    /// Whether something accepts connections on the port.
    pub fn listening(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// Runs one statement with `psql` (unaligned, tuples only) and returns its output.
    pub fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(),
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Debian's newest server binaries, else `PATH`'s.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v postgres"])
        .output()?;
    let path = String::from_utf8(out.stdout)?;
    match Path::new(path.trim()).parent() {
        Some(dir) if out.status.success() => Ok(dir.to_path_buf()),
        _ => bail!("no PostgreSQL server binaries (apt-get install postgresql)"),
    }
}

fn is_root() -> anyhow::Result<bool> {
    let out = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8(out.stdout)?.trim() == "0")
}

/// `id <flag> postgres`.
fn id(flag: &str) -> anyhow::Result<u32> {
    let out = Command::new("id").args([flag, "postgres"]).output()?;
    if !out.status.success() {
        bail!("no `postgres` user to run PostgreSQL as (apt-get install postgresql creates it)");
    }
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}
