//! The Redis backend: what every deployment runs. Each write that must be atomic is one Lua
//! script (`store::scripts`), each read of several keys one pipeline; every key is named by
//! [`Keys`] (one hash tag, so the scripts also run on Redis Cluster).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use redis::aio::{PubSubSink, PubSubStream};

use super::{
    ActiveState, Backend, MovePointers, MoveReply, Notices, Publish, PublishReply, Retire,
    RetireReply, Seed, StoredDoc, VersionsRecord,
};
use crate::store::StoreError;
use crate::store::connection::{Conn, Connector, timed_out};
use crate::store::keys::Keys;
use crate::store::lineage::Lineage;

/// The store's state in Redis. The command connection is shared and reconnects by itself (see
/// `connection`); pub/sub gets a dedicated connection per subscription.
pub(crate) struct RedisBackend {
    pub(crate) connector: Connector,
    pub(crate) conn: Conn,
    pub(crate) keys: Keys,
    /// Bounds a subscription's connect and its pings.
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
}

impl RedisBackend {
    fn conn(&self) -> Conn {
        self.conn.clone()
    }
}

#[async_trait::async_trait]
impl Backend for RedisBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn publish(&self, op: Publish<'_>) -> Result<PublishReply, StoreError> {
        Ok(op.run(&self.keys, &mut self.conn()).await?)
    }

    async fn versions(&self, id: &str) -> Result<VersionsRecord, StoreError> {
        let (versions, digests, active, ever, retired, loosenings): VersionsReply = redis::pipe()
            .cmd("ZRANGE")
            .arg(self.keys.versions(id))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .cmd("HGETALL")
            .arg(self.keys.digests(id))
            .cmd("HGET")
            .arg(self.keys.active())
            .arg(id)
            .cmd("SMEMBERS")
            .arg(self.keys.activated(id))
            .cmd("HGETALL")
            .arg(self.keys.retired(id))
            .cmd("HGETALL")
            .arg(self.keys.loosenings(id))
            .query_async(&mut self.conn())
            .await?;
        Ok(VersionsRecord {
            // Scores are whole milliseconds, well inside f64's exact range.
            versions: versions
                .into_iter()
                .map(|(v, score)| (v, score as i64))
                .collect(),
            digests,
            active,
            ever,
            retired,
            loosenings,
        })
    }

    async fn ids(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let pattern = self.keys.versions_pattern();
        let mut ids = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await?;
            ids.extend(
                keys.iter()
                    .filter_map(|k| self.keys.id_of_versions_key(k))
                    .map(str::to_owned),
            );
            if next == 0 {
                return Ok(ids);
            }
            cursor = next;
        }
    }

    async fn active(&self) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(redis::cmd("HGETALL")
            .arg(self.keys.active())
            .query_async(&mut self.conn())
            .await?)
    }

    /// One `MULTI`: the pointers and the lineage of the same state.
    async fn active_state(&self) -> Result<ActiveState, StoreError> {
        let (pointers, (epoch, seq)): (BTreeMap<String, String>, (Option<String>, Option<u64>)) =
            redis::pipe()
                .atomic()
                .cmd("HGETALL")
                .arg(self.keys.active())
                .cmd("HMGET")
                .arg(self.keys.lineage())
                .arg("epoch")
                .arg("seq")
                .query_async(&mut self.conn())
                .await?;
        let lineage = match (epoch, seq) {
            (Some(epoch), Some(seq)) => Some(Lineage { epoch, seq }),
            _ => None,
        };
        Ok(ActiveState { pointers, lineage })
    }

    async fn has_active(&self) -> Result<bool, StoreError> {
        Ok(redis::cmd("EXISTS")
            .arg(self.keys.active())
            .query_async(&mut self.conn())
            .await?)
    }

    async fn docs(&self, wanted: &[(String, String)]) -> Result<Vec<StoredDoc>, StoreError> {
        if wanted.is_empty() {
            // Redis refuses an empty pipeline.
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (id, version) in wanted {
            pipe.cmd("GET").arg(self.keys.doc(id, version));
            pipe.cmd("HGET").arg(self.keys.digests(id)).arg(version);
        }
        let flat: Vec<Option<String>> = pipe.query_async(&mut self.conn()).await?;
        let mut flat = flat.into_iter();
        let mut out = Vec::with_capacity(wanted.len());
        while let (Some(json), Some(digest)) = (flat.next(), flat.next()) {
            out.push((json, digest));
        }
        Ok(out)
    }

    async fn publishers(
        &self,
        wanted: &[(String, String)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (id, version) in wanted {
            pipe.cmd("HGET").arg(self.keys.publishers(id)).arg(version);
        }
        Ok(pipe.query_async(&mut self.conn()).await?)
    }

    async fn move_pointers(&self, op: MovePointers<'_>) -> Result<MoveReply, StoreError> {
        Ok(op.run(&self.keys, &mut self.conn()).await?)
    }

    async fn seed(&self, op: Seed<'_>) -> Result<bool, StoreError> {
        Ok(op.run(&self.keys, &mut self.conn()).await?)
    }

    async fn history(&self, id: &str) -> Result<Vec<String>, StoreError> {
        Ok(redis::cmd("LRANGE")
            .arg(self.keys.history(id))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await?)
    }

    async fn idempotency(&self, id: &str, key_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(redis::cmd("GET")
            .arg(self.keys.idempotency(id, key_hash))
            .query_async(&mut self.conn())
            .await?)
    }

    async fn retire(&self, op: Retire<'_>) -> Result<RetireReply, StoreError> {
        Ok(op.run(&self.keys, &mut self.conn()).await?)
    }

    async fn digest(&self, id: &str, version: &str) -> Result<Option<String>, StoreError> {
        Ok(redis::cmd("HGET")
            .arg(self.keys.digests(id))
            .arg(version)
            .query_async(&mut self.conn())
            .await?)
    }

    async fn is_retired(&self, id: &str, version: &str) -> Result<bool, StoreError> {
        Ok(redis::cmd("HEXISTS")
            .arg(self.keys.retired(id))
            .arg(version)
            .query_async(&mut self.conn())
            .await?)
    }

    /// A dedicated pub/sub connection subscribed to the activation channel. Bounded by the
    /// connect and response timeouts (the client's own pub/sub connect has none).
    async fn subscribe(&self) -> Result<Box<dyn Notices>, StoreError> {
        let connect = async {
            let mut pubsub = self.connector.pubsub().await?;
            pubsub.subscribe(self.keys.channel()).await?;
            Ok::<_, redis::RedisError>(pubsub.split())
        };
        let limit = self.connect_timeout + self.response_timeout;
        match tokio::time::timeout(limit, connect).await {
            Ok(result) => {
                let (sink, stream) = result?;
                Ok(Box::new(RedisNotices {
                    sink,
                    stream,
                    response_timeout: self.response_timeout,
                }))
            }
            Err(_) => Err(StoreError::Unavailable(timed_out("subscribing"))),
        }
    }
}

/// ZRANGE WITHSCORES (version, publish ms), HGETALL digests, HGET active, SMEMBERS activated,
/// HGETALL retired, HGETALL loosenings.
type VersionsReply = (
    Vec<(String, f64)>,
    BTreeMap<String, String>,
    Option<String>,
    BTreeSet<String>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
);

/// A pub/sub subscription to the activation channel.
struct RedisNotices {
    sink: PubSubSink,
    stream: PubSubStream,
    response_timeout: Duration,
}

#[async_trait::async_trait]
impl Notices for RedisNotices {
    async fn next(&mut self) -> bool {
        self.stream.next().await.is_some()
    }

    fn drain(&mut self) {
        while let Some(Some(_)) = self.stream.next().now_or_never() {}
    }

    async fn alive(&mut self) -> bool {
        let ping = tokio::time::timeout(self.response_timeout, self.sink.ping::<redis::Value>());
        matches!(ping.await, Ok(Ok(_)))
    }
}
