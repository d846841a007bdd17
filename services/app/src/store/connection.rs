//! How the store reaches Redis: one URL (`redis://`, or `rediss://` for TLS), or the master that
//! Redis Sentinel names; with an ACL user, a private CA and a client certificate when the service
//! asks for them. [`Connector`] opens every connection the store uses — the command connection
//! ([`Conn`]) and the pub/sub subscription — so each gets the same TLS, credentials and master.
//!
//! [`Conn`] is also the one door every write goes through. The store's only writes are its Lua
//! scripts (publish, activate, roll back, retire, seed); with [`ReplicaAck`] set, each script is
//! pipelined with `WAIT replicas timeout` on the same connection, and a write that too few
//! replicas acknowledged in time fails as unavailable (503 / `UNAVAILABLE`: read the state and retry). Redis replication
//! is asynchronous: without this, a failover can promote a replica that never received an
//! activation the admin was told had succeeded.
//!
//! With Sentinel, the command connection is a multiplexed connection to the master the sentinels
//! name (checked with `ROLE` by the redis crate before it is used). A connection error, a timeout,
//! or a `READONLY`/`MASTERDOWN`/`LOADING` answer drops it, and the next command asks the sentinels
//! again: after a failover the store follows the new master without a restart.
//!
//! Redis Cluster is not supported (the keys share one hash tag, but nothing here follows slots).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSub,
};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind,
    IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind,
    TlsCertificates, TlsMode, Value,
};

use super::types::StoreOptions;
use crate::config::Settings;

/// A Redis setting that cannot work, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct RedisSettingError {
    pub setting: &'static str,
    pub message: String,
}

fn setting_error(setting: &'static str, message: impl Into<String>) -> RedisSettingError {
    RedisSettingError {
        setting,
        message: message.into(),
    }
}

/// Replicas that must acknowledge each write (`WAIT`), and for how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAck {
    pub replicas: u32,
    pub timeout: Duration,
}

/// Where and how to reach Redis. Its `Debug` prints no credential.
#[derive(Clone)]
pub struct RedisConfig {
    target: Target,
    /// The CA and client certificate, when set (`rediss://` only); else the system's CAs.
    tls: Option<TlsCertificates>,
    username: Option<String>,
    password: Option<String>,
    /// `None`: writes are acknowledged by the primary alone.
    ack: Option<ReplicaAck>,
}

#[derive(Clone)]
enum Target {
    Url(ConnectionInfo),
    Sentinel {
        sentinels: Vec<ConnectionInfo>,
        master: String,
        tls: bool,
    },
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::Url(info) => format!("{}", info.addr()),
            Target::Sentinel {
                sentinels, master, ..
            } => format!(
                "master '{master}' of sentinels {}",
                sentinels
                    .iter()
                    .map(|s| s.addr().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        f.debug_struct("RedisConfig")
            .field("target", &target)
            .field("tls_files", &self.tls.is_some())
            .field("username", &self.username.is_some())
            .field("password", &self.password.is_some())
            .field("ack", &self.ack)
            .finish()
    }
}

impl RedisConfig {
    /// One Redis by URL, credentials and TLS as the URL says, no replica acknowledgement.
    pub fn url(url: &str) -> RedisResult<Self> {
        Ok(Self {
            target: Target::Url(url.into_connection_info()?),
            tls: None,
            username: None,
            password: None,
            ack: None,
        })
    }

    /// The Redis settings, or `None` when Redis is not configured (neither a URL nor sentinels).
    /// Reads the password, CA, certificate and key files; checks what it can without I/O to
    /// Redis, naming the setting at fault.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, RedisSettingError> {
        let sentinels: Vec<&str> = settings
            .redis_sentinels
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let target = match (settings.redis_url.as_deref(), sentinels.is_empty()) {
            (None, true) => {
                if settings.redis_master_name.is_some() {
                    return Err(setting_error(
                        "PROTOCOL_REDIS_MASTER_NAME",
                        "set PROTOCOL_REDIS_SENTINELS too (the sentinels that know this master)",
                    ));
                }
                return Ok(None);
            }
            (Some(_), false) => {
                return Err(setting_error(
                    "PROTOCOL_REDIS_SENTINELS",
                    "set either PROTOCOL_REDIS_URL or PROTOCOL_REDIS_SENTINELS, not both",
                ));
            }
            (Some(url), true) => {
                let info = url.into_connection_info().map_err(|e| {
                    setting_error(
                        "PROTOCOL_REDIS_URL",
                        format!("not a redis:// or rediss:// URL ({e})"),
                    )
                })?;
                Target::Url(info)
            }
            (None, false) => sentinel_target(&sentinels, settings.redis_master_name.as_deref())?,
        };
        let tls = tls_files(settings)?;
        let is_tls = match &target {
            Target::Url(info) => matches!(info.addr(), ConnectionAddr::TcpTls { .. }),
            Target::Sentinel { tls, .. } => *tls,
        };
        if tls.is_some() && !is_tls {
            let setting = if settings.redis_ca_file.is_some() {
                "PROTOCOL_REDIS_CA_FILE"
            } else {
                "PROTOCOL_REDIS_CERT_FILE"
            };
            return Err(setting_error(
                setting,
                "TLS files need TLS: use a rediss:// URL (or rediss:// sentinels)",
            ));
        }
        let password = match (&settings.redis_password, &settings.redis_password_file) {
            (Some(_), Some(_)) => {
                return Err(setting_error(
                    "PROTOCOL_REDIS_PASSWORD_FILE",
                    "set either PROTOCOL_REDIS_PASSWORD or PROTOCOL_REDIS_PASSWORD_FILE, not both",
                ));
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(path)) => {
                let text = read(path, "PROTOCOL_REDIS_PASSWORD_FILE")?;
                let text = String::from_utf8(text).map_err(|_| {
                    setting_error("PROTOCOL_REDIS_PASSWORD_FILE", "the file is not UTF-8 text")
                })?;
                let password = text
                    .strip_suffix('\n')
                    .map(|p| p.strip_suffix('\r').unwrap_or(p))
                    .unwrap_or(&text);
                if password.is_empty() {
                    return Err(setting_error(
                        "PROTOCOL_REDIS_PASSWORD_FILE",
                        format!("{} is empty", path.display()),
                    ));
                }
                Some(password.to_owned())
            }
            (None, None) => None,
        };
        let replicas = settings
            .redis_min_replicas_ack
            .unwrap_or(u32::from(matches!(target, Target::Sentinel { .. })));
        let ack = (replicas > 0).then(|| ReplicaAck {
            replicas,
            timeout: Duration::from_millis(settings.redis_replica_ack_timeout_ms.max(1)),
        });
        let config = Self {
            target,
            tls,
            username: settings.redis_username.clone(),
            password,
            ack,
        };
        // Parses the certificates and key now, so a bad file stops the server at start.
        config
            .connector(&StoreOptions::default())
            .map_err(|e| setting_error(tls_setting(settings), e.to_string()))?;
        Ok(Some(config))
    }

    /// The replica acknowledgement every write waits for, if any.
    pub fn replica_ack(&self) -> Option<ReplicaAck> {
        self.ack
    }

    /// A connector for these settings. No I/O.
    pub(crate) fn connector(&self, options: &StoreOptions) -> RedisResult<Connector> {
        // A write waits up to the ack timeout for WAIT's answer on top of its own.
        let response_timeout =
            options.response_timeout + self.ack.map_or(Duration::ZERO, |a| a.timeout);
        let link = match &self.target {
            Target::Url(info) => {
                let info = self.with_credentials(info.clone());
                let client = match &self.tls {
                    Some(certs) => Client::build_with_tls(info, certs.clone())?,
                    None => Client::open(info)?,
                };
                Source::Direct(Arc::new(client))
            }
            Target::Sentinel {
                sentinels,
                master,
                tls,
            } => Source::Sentinel(Arc::new(SentinelLink::new(
                self.sentinel_client(sentinels, master, *tls)?,
                options,
                response_timeout,
            ))),
        };
        Ok(Connector {
            source: link,
            ack: self.ack,
            connect_timeout: options.connect_timeout,
            response_timeout,
        })
    }

    fn with_credentials(&self, info: ConnectionInfo) -> ConnectionInfo {
        let mut redis = info.redis_settings().clone();
        if let Some(username) = &self.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        info.set_redis_settings(redis)
    }

    fn sentinel_client(
        &self,
        sentinels: &[ConnectionInfo],
        master: &str,
        tls: bool,
    ) -> RedisResult<SentinelClient> {
        let addrs = sentinels.iter().map(|s| s.addr().clone());
        let mut builder = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?;
        // The sentinels' own credentials, when their URLs carry them (all the same: checked).
        if let Some(first) = sentinels.first().map(ConnectionInfo::redis_settings) {
            if let Some(username) = first.username() {
                builder = builder.set_client_to_sentinel_username(username);
            }
            if let Some(password) = first.password() {
                builder = builder.set_client_to_sentinel_password(password);
            }
        }
        if let Some(username) = &self.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(certs) = &self.tls {
                builder = builder
                    .set_client_to_redis_certificates(certs.clone())
                    .set_client_to_sentinel_certificates(certs.clone());
            }
        }
        builder.build()
    }
}

/// `host:port` entries (or `redis://`/`rediss://` URLs) and the master name.
fn sentinel_target(entries: &[&str], master: Option<&str>) -> Result<Target, RedisSettingError> {
    const SETTING: &str = "PROTOCOL_REDIS_SENTINELS";
    let Some(master) = master.map(str::trim).filter(|m| !m.is_empty()) else {
        return Err(setting_error(
            "PROTOCOL_REDIS_MASTER_NAME",
            "required with PROTOCOL_REDIS_SENTINELS: the master name the sentinels monitor",
        ));
    };
    let mut sentinels = Vec::with_capacity(entries.len());
    for entry in entries {
        let url = if entry.contains("://") {
            (*entry).to_owned()
        } else {
            format!("redis://{entry}")
        };
        let info = url.as_str().into_connection_info().map_err(|_| {
            setting_error(
                SETTING,
                format!("'{entry}' is not host:port, redis://host:port or rediss://host:port"),
            )
        })?;
        sentinels.push(info);
    }
    let tls = |i: &ConnectionInfo| matches!(i.addr(), ConnectionAddr::TcpTls { .. });
    let all_tls = sentinels.iter().all(tls);
    if !all_tls && sentinels.iter().any(tls) {
        return Err(setting_error(
            SETTING,
            "mixes rediss:// and plain sentinels: use TLS for all or none",
        ));
    }
    let credentials = |i: &ConnectionInfo| {
        let r = i.redis_settings();
        (
            r.username().map(str::to_owned),
            r.password().map(str::to_owned),
        )
    };
    if sentinels
        .iter()
        .any(|s| credentials(s) != credentials(&sentinels[0]))
    {
        return Err(setting_error(
            SETTING,
            "the sentinels carry different credentials: give every one the same (or none)",
        ));
    }
    Ok(Target::Sentinel {
        sentinels,
        master: master.to_owned(),
        tls: all_tls,
    })
}

/// The CA and client certificate files, read.
fn tls_files(settings: &Settings) -> Result<Option<TlsCertificates>, RedisSettingError> {
    let root_cert = settings
        .redis_ca_file
        .as_deref()
        .map(|p| read(p, "PROTOCOL_REDIS_CA_FILE"))
        .transpose()?;
    let client_tls = match (&settings.redis_cert_file, &settings.redis_key_file) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read(cert, "PROTOCOL_REDIS_CERT_FILE")?,
            client_key: read(key, "PROTOCOL_REDIS_KEY_FILE")?,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(setting_error(
                "PROTOCOL_REDIS_KEY_FILE",
                "required with PROTOCOL_REDIS_CERT_FILE (the client certificate's private key)",
            ));
        }
        (None, Some(_)) => {
            return Err(setting_error(
                "PROTOCOL_REDIS_CERT_FILE",
                "required with PROTOCOL_REDIS_KEY_FILE (the client certificate)",
            ));
        }
    };
    Ok(
        (root_cert.is_some() || client_tls.is_some()).then_some(TlsCertificates {
            client_tls,
            root_cert,
        }),
    )
}

/// Which TLS setting a certificate error most likely concerns.
fn tls_setting(settings: &Settings) -> &'static str {
    if settings.redis_cert_file.is_some() {
        "PROTOCOL_REDIS_CERT_FILE"
    } else if settings.redis_ca_file.is_some() {
        "PROTOCOL_REDIS_CA_FILE"
    } else if settings.redis_sentinels.is_empty() {
        "PROTOCOL_REDIS_URL"
    } else {
        "PROTOCOL_REDIS_SENTINELS"
    }
}

fn read(path: &Path, setting: &'static str) -> Result<Vec<u8>, RedisSettingError> {
    std::fs::read(path).map_err(|e| setting_error(setting, format!("{}: {e}", path.display())))
}

/// Opens the store's connections. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Connector {
    source: Source,
    ack: Option<ReplicaAck>,
    connect_timeout: Duration,
    response_timeout: Duration,
}

#[derive(Clone)]
enum Source {
    Direct(Arc<Client>),
    Sentinel(Arc<SentinelLink>),
}

impl Connector {
    /// The command connection: lazy (no I/O here), reconnecting by itself.
    pub(crate) fn command_connection(&self) -> RedisResult<Conn> {
        let link = match &self.source {
            Source::Direct(client) => {
                // One retry per command: the sync task and the admin caller decide when to try again.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.response_timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                Link::Direct(ConnectionManager::new_lazy_with_config(
                    Client::clone(client),
                    config,
                )?)
            }
            Source::Sentinel(link) => Link::Sentinel(link.clone()),
        };
        Ok(Conn {
            link,
            ack: self.ack,
        })
    }

    /// A new pub/sub connection (to the current master, with Sentinel). Unbounded in time: the
    /// caller bounds it.
    pub(crate) async fn pubsub(&self) -> RedisResult<PubSub> {
        match &self.source {
            Source::Direct(client) => client.get_async_pubsub().await,
            Source::Sentinel(link) => link.master().await?.get_async_pubsub().await,
        }
    }
}

/// The store's command connection: a [`ConnectionLike`] that waits for replica acknowledgements
/// of every write (see the module docs). Cheap to clone; clones share the connection.
#[derive(Clone)]
pub(crate) struct Conn {
    link: Link,
    ack: Option<ReplicaAck>,
}

#[derive(Clone)]
enum Link {
    Direct(ConnectionManager),
    Sentinel(Arc<SentinelLink>),
}

impl Link {
    async fn command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Link::Direct(manager) => manager.req_packed_command(cmd).await,
            Link::Sentinel(link) => {
                let (id, mut conn) = link.connection().await?;
                let result = conn.req_packed_command(cmd).await;
                if result.as_ref().map_or_else(master_lost, value_master_lost) {
                    link.forget(id);
                }
                result
            }
        }
    }

    async fn commands(
        &mut self,
        pipe: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Link::Direct(manager) => manager.req_packed_commands(pipe, offset, count).await,
            Link::Sentinel(link) => {
                let (id, mut conn) = link.connection().await?;
                let result = conn.req_packed_commands(pipe, offset, count).await;
                let lost = match &result {
                    Ok(values) => values.iter().any(value_master_lost),
                    Err(e) => master_lost(e),
                };
                if lost {
                    link.forget(id);
                }
                result
            }
        }
    }

    fn db(&self) -> i64 {
        match self {
            Link::Direct(manager) => manager.get_db(),
            Link::Sentinel(_) => 0,
        }
    }
}

impl Conn {
    /// Runs a write, then `WAIT` on the same connection in the same round trip, and checks that
    /// enough replicas acknowledged it.
    async fn acknowledged(&mut self, cmd: &Cmd, ack: ReplicaAck) -> RedisResult<Value> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone())
            .cmd("WAIT")
            .arg(ack.replicas)
            .arg(u64::try_from(ack.timeout.as_millis()).unwrap_or(u64::MAX));
        let mut replies = self.link.commands(&pipe, 0, 2).await?.into_iter();
        let (Some(reply), Some(waited)) = (replies.next(), replies.next()) else {
            return Err(RedisError::from((
                ErrorKind::UnexpectedReturnType,
                "a write and WAIT answered fewer than two replies",
            )));
        };
        match (reply, waited) {
            // The write itself failed (e.g. NOSCRIPT, which the caller handles): nothing to wait for.
            (reply @ Value::ServerError(_), _) => Ok(reply),
            (_, Value::ServerError(e)) => Err(e.into()),
            (reply, Value::Int(n)) if n >= i64::from(ack.replicas) => Ok(reply),
            (_, Value::Int(n)) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the write was acknowledged by {n} of the {} replica(s) required within {} ms \
                     (PROTOCOL_REDIS_MIN_REPLICAS_ACK); it may be lost if the primary fails: \
                     read the current state and retry",
                    ack.replicas,
                    ack.timeout.as_millis()
                ),
            ))),
            (_, other) => Err(RedisError::from((
                ErrorKind::UnexpectedReturnType,
                "WAIT answered something other than a count",
                format!("{other:?}"),
            ))),
        }
    }
}

/// The store's writes are its Lua scripts, and only they: a new write must be a script (or be
/// added here), else it would skip the replica acknowledgement. Debug builds check that every
/// other command is a known read ([`is_read`]), so a test catches one that is not.
fn is_write(cmd: &Cmd) -> bool {
    name_is(cmd, &["EVALSHA", "EVAL"])
}

/// Commands that change nothing a failover could lose (`SCRIPT LOAD` only caches a script).
fn is_read(cmd: &Cmd) -> bool {
    name_is(
        cmd,
        &[
            "GET",
            "MGET",
            "HGET",
            "HMGET",
            "HGETALL",
            "HKEYS",
            "HVALS",
            "HLEN",
            "HEXISTS",
            "ZRANGE",
            "ZREVRANGE",
            "ZRANGEBYSCORE",
            "ZSCORE",
            "ZCARD",
            "LRANGE",
            "LLEN",
            "LINDEX",
            "SMEMBERS",
            "SISMEMBER",
            "SCARD",
            "XRANGE",
            "XREVRANGE",
            "XLEN",
            "EXISTS",
            "TYPE",
            "TTL",
            "PTTL",
            "STRLEN",
            "SCAN",
            "HSCAN",
            "ZSCAN",
            "SSCAN",
            "PING",
            "SCRIPT",
            "INFO",
            "ROLE",
            "WAIT",
        ],
    )
}

fn name_is(cmd: &Cmd, names: &[&str]) -> bool {
    matches!(
        cmd.args_iter().next(),
        Some(redis::Arg::Simple(name))
            if names.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
    )
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        debug_assert!(
            is_write(cmd) || is_read(cmd),
            "a write outside a Lua script skips the replica acknowledgement: make it a script, \
             or list it in store::connection::is_write"
        );
        Box::pin(async move {
            match self.ack {
                Some(ack) if is_write(cmd) => self.acknowledged(cmd, ack).await,
                _ => self.link.command(cmd).await,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        // The store pipelines reads only; a write in a pipeline would skip the WAIT.
        debug_assert!(
            pipe.cmd_iter().all(is_read),
            "the store pipelines reads only: a write in a pipeline skips the replica acknowledgement"
        );
        Box::pin(async move { self.link.commands(pipe, offset, count).await })
    }

    fn get_db(&self) -> i64 {
        self.link.db()
    }
}

/// An error after which the connection may not lead to the master any more.
fn master_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
            )
        )
}

fn value_master_lost(value: &Value) -> bool {
    matches!(value, Value::ServerError(e) if matches!(
        e.kind(),
        Some(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown | ServerErrorKind::BusyLoading)
    ))
}

/// The master that the sentinels name, and one multiplexed connection to it, replaced when lost.
struct SentinelLink {
    /// Held while asking the sentinels and connecting: one resolution at a time.
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    next_id: AtomicU64,
    /// The master last connected to, to log a change once.
    master: Mutex<String>,
    connection: AsyncConnectionConfig,
    /// Asking the sentinels, connecting and checking the master's role, together.
    resolve_timeout: Duration,
}

impl SentinelLink {
    fn new(sentinel: SentinelClient, options: &StoreOptions, response_timeout: Duration) -> Self {
        Self {
            sentinel: tokio::sync::Mutex::new(sentinel),
            current: Mutex::new(None),
            next_id: AtomicU64::new(0),
            master: Mutex::new(String::new()),
            connection: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(options.connect_timeout))
                .set_response_timeout(Some(response_timeout)),
            resolve_timeout: options.connect_timeout * 2 + options.response_timeout,
        }
    }

    /// A client for the master the sentinels name now (its role checked).
    async fn master(&self) -> RedisResult<Client> {
        let mut sentinel = self.sentinel.lock().await;
        let client = tokio::time::timeout(self.resolve_timeout, sentinel.async_get_client())
            .await
            .map_err(|_| timed_out("asking the sentinels for the master"))??;
        let addr = client.get_connection_info().addr().to_string();
        let mut last = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        if *last != addr {
            tracing::info!(master = %addr, "following the redis master named by the sentinels");
            *last = addr;
        }
        Ok(client)
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let client = self.master().await?;
        // Someone else may have connected while this task waited for the sentinels.
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let conn = tokio::time::timeout(
            self.resolve_timeout,
            client.get_multiplexed_async_connection_with_config(&self.connection),
        )
        .await
        .map_err(|_| timed_out("connecting to the master"))??;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some((id, conn.clone()));
        Ok((id, conn))
    }

    /// Drops connection `id` (not a newer one): the next command asks the sentinels again.
    fn forget(&self, id: u64) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|(c, _)| *c == id) {
            *current = None;
        }
    }
}

fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("redis timed out {what}"),
    ))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(args: &[&str]) -> Result<Option<RedisConfig>, RedisSettingError> {
        let mut all = vec!["protocol-server"];
        all.extend_from_slice(args);
        RedisConfig::from_settings(&Settings::parse_from(all))
    }

    fn refused(args: &[&str]) -> RedisSettingError {
        config(args).expect_err("refused")
    }

    #[test]
    fn nothing_configured_is_no_redis() {
        assert!(config(&[]).expect("valid").is_none());
    }

    #[test]
    fn replica_acknowledgements_default_to_one_with_sentinels_only() {
        let url = config(&["--redis-url", "redis://127.0.0.1:6379/"])
            .expect("valid")
            .expect("configured");
        assert_eq!(url.replica_ack(), None);
        let sentinels = ["--redis-sentinels", "127.0.0.1:26379,127.0.0.1:26380"];
        let with = config(&[sentinels[0], sentinels[1], "--redis-master-name", "m"])
            .expect("valid")
            .expect("configured");
        assert_eq!(
            with.replica_ack(),
            Some(ReplicaAck {
                replicas: 1,
                timeout: Duration::from_millis(1000)
            })
        );
        let off = config(&[
            sentinels[0],
            sentinels[1],
            "--redis-master-name",
            "m",
            "--redis-min-replicas-ack",
            "0",
        ])
        .expect("valid")
        .expect("configured");
        assert_eq!(off.replica_ack(), None);
    }

    #[test]
    fn settings_that_cannot_work_are_named() {
        let e = refused(&[
            "--redis-url",
            "redis://h:1/",
            "--redis-sentinels",
            "h:26379",
            "--redis-master-name",
            "m",
        ]);
        assert_eq!(e.setting, "PROTOCOL_REDIS_SENTINELS", "{e}");
        let e = refused(&[
            "--redis-sentinels",
            "redis://h:26379,rediss://h:26380",
            "--redis-master-name",
            "m",
        ]);
        assert!(e.message.contains("TLS for all or none"), "{e}");
        let e = refused(&[
            "--redis-sentinels",
            "redis://:a@h:26379,redis://:b@h:26380",
            "--redis-master-name",
            "m",
        ]);
        assert!(e.message.contains("credentials"), "{e}");
        assert!(
            !e.to_string().contains(":a@"),
            "no password in the message: {e}"
        );
        let e = refused(&["--redis-master-name", "m"]);
        assert_eq!(e.setting, "PROTOCOL_REDIS_MASTER_NAME", "{e}");
        let e = refused(&["--redis-url", "nonsense://"]);
        assert_eq!(e.setting, "PROTOCOL_REDIS_URL", "{e}");
        let e = refused(&[
            "--redis-url",
            "redis://h:1/",
            "--redis-password",
            "p",
            "--redis-password-file",
            "/nonexistent",
        ]);
        assert_eq!(e.setting, "PROTOCOL_REDIS_PASSWORD_FILE", "{e}");
    }

    #[test]
    fn the_password_file_loses_its_trailing_newline_and_debug_shows_no_secret() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\r\n").expect("written");
        let path = path.to_str().expect("utf-8");
        let c = config(&[
            "--redis-url",
            "rediss://user:url-secret@h:6380/0",
            "--redis-password-file",
            path,
        ])
        .expect("valid")
        .expect("configured");
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("url-secret"),
            "{shown}"
        );
    }
}
