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

mod config;
mod sentinel;

pub use config::{RedisConfig, RedisSettingError, ReplicaAck};
use sentinel::SentinelLink;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{
    Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};

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
            // The brackets of an atomic pipeline of reads (the pipeline check sees each command).
            "MULTI",
            "EXEC",
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

/// A Redis wait that ran out of time, as the error every part of the store reports it with.
pub(crate) fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("redis timed out {what}"),
    ))
}
