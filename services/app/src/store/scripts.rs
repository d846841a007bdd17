//! Lua scripts: the steps that must be atomic run inside Redis, where nothing interleaves.
//!
//! `redis::Script` sends `EVALSHA` and falls back to `EVAL` on `NOSCRIPT` (after a Redis restart
//! the script cache is empty). All keys a script touches share the `{rulesets}` hash tag, so each
//! script is single-slot and also runs on Redis Cluster.
//!
//! Each script is called only through the `run` of its typed operation ([`Publish`],
//! [`MovePointers`], [`Seed`], [`Retire`], from `backend`): named keys and arguments in, a typed
//! reply out. The order of `KEYS` and
//! `ARGV`, and the shape of each reply, are written once, next to the Lua that reads them.

use std::sync::LazyLock;

use redis::{RedisError, Script, ScriptInvocation};

use super::backend::{
    MovePointers, MoveReply, Publish, PublishReply, Retire, RetireReply, Seed, SeedWhen,
};
use super::connection::Conn;
use super::keys::Keys;
use super::types::Expected;

/// Publishes one version immutably.
///
/// KEYS: doc, digests, versions, retired, loosenings, publishers. ARGV: payload, digest, version,
/// publish time (Unix ms), declared loosening (JSON or ''), publisher's API key id (or '').
/// Returns `{1, digest}` when stored now, `{0, stored digest}` when the version already existed
/// (the caller compares digests: equal is an idempotent re-publish, different is a conflict), and
/// `{-1, stored digest}` when the version was retired (its name stays reserved).
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1 then
  return {-1, redis.call('HGET', KEYS[2], ARGV[3]) or ''}
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('HGET', KEYS[2], ARGV[3]) or ''}
end
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[3], ARGV[5])
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[3], ARGV[6])
end
return {1, ARGV[2]}
",
    )
});

/// Moves one or more active pointers in one step, compare-and-set, and records each move in the
/// rule set's activation history.
///
/// KEYS: active, lineage, then n × (doc, history, activated) of each item, then optionally the
/// idempotency key. ARGV: channel, message, n, then n × (id, version, mode, expected,
/// history length, history entry) with mode `any` | `absent` | `eq` and history length `-1` for
/// no check, then m, then m × (id, version): the whole active map the caller validated against,
/// then the idempotency record's time to live in ms and the record (`0` and `''` without a
/// key), then the epoch to record if the lineage has none. A move adds one to the lineage's
/// `seq` (`store::lineage`).
///
/// Returns `{'replay', record}` when the idempotency key is already used (nothing else happens),
/// `{'conflict', id, current}` when an item's expectation fails (current is '' when none is
/// active), `{'missing', id, version}` when an item's payload is not stored (retired meanwhile),
/// `{'changed'}` when some other pointer or the item's history moved since validation (so the
/// validated catalog, or the rollback target, is not the one that would result), else applies
/// every item (pointer, history entry, ever-active set), keeps the idempotency record, publishes
/// the message on the channel and returns `{'ok'}`.
static ACTIVATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = tonumber(ARGV[3])
local idem = KEYS[3 + 3 * n]
if idem then
  local prior = redis.call('GET', idem)
  if prior then
    return {'replay', prior}
  end
end
local i = 4
for j = 1, n do
  local k = 3 * (j - 1)
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local mode = ARGV[i + 2]
  if (mode == 'eq' and cur ~= ARGV[i + 3]) or (mode == 'absent' and cur) then
    return {'conflict', ARGV[i], cur or ''}
  end
  if redis.call('EXISTS', KEYS[k + 3]) == 0 then
    return {'missing', ARGV[i], ARGV[i + 1]}
  end
  local len = tonumber(ARGV[i + 4])
  if len >= 0 and redis.call('LLEN', KEYS[k + 4]) ~= len then
    return {'changed'}
  end
  i = i + 6
end
local m = tonumber(ARGV[i])
i = i + 1
if redis.call('HLEN', KEYS[1]) ~= m then
  return {'changed'}
end
for _ = 1, m do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then
    return {'changed'}
  end
  i = i + 2
end
local ttl, record, epoch = ARGV[i], ARGV[i + 1], ARGV[i + 2]
i = 4
for j = 1, n do
  local k = 3 * (j - 1)
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('RPUSH', KEYS[k + 4], ARGV[i + 5])
  redis.call('SADD', KEYS[k + 5], ARGV[i + 1])
  if cur then
    redis.call('SADD', KEYS[k + 5], cur)
  end
  i = i + 6
end
if idem then
  redis.call('SET', idem, record, 'PX', ttl)
end
redis.call('HSETNX', KEYS[2], 'epoch', epoch)
redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {'ok'}
",
    )
});

/// Sets every active pointer at once, with the lineage of the state they make, recording a
/// `seed` (or `restore`) entry in each rule set's history.
///
/// - mode `empty` (a first seed): only when no pointer and no lineage exist. Two replicas
///   starting together both run it; exactly one sets the pointers.
/// - mode `holds` (a replica putting back what it verified, `store::sync`): only when the
///   lineage is still the one the replica read (`''` epoch: none recorded); every pointer is
///   replaced.
///
/// KEYS: active, lineage, then pairs of (history, activated) of each rule set. ARGV: channel,
/// message, mode, the lineage read (epoch, seq), the lineage to record (epoch, seq), then
/// triples of (id, version, history entry). Returns 1 when written.
static SEED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local epoch = redis.call('HGET', KEYS[2], 'epoch') or ''
local seq = redis.call('HGET', KEYS[2], 'seq') or ''
if ARGV[3] == 'empty' then
  if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
    return 0
  end
elseif epoch ~= ARGV[4] or (epoch ~= '' and seq ~= ARGV[5]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'epoch', ARGV[6], 'seq', ARGV[7])
local k = 3
for i = 8, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('RPUSH', KEYS[k], ARGV[i + 2])
  redis.call('SADD', KEYS[k + 1], ARGV[i + 1])
  k = k + 2
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
",
    )
});

/// Retires a version that was never active: deletes its payload, keeps its digest and its place
/// in the versions list, and records it as retired (so the name stays reserved).
///
/// KEYS: active, doc, activated, retired, versions. ARGV: id, version, record (JSON).
/// Returns `{'active'}` when it is the active version, `{'was_active'}` when it ever was,
/// `{'missing'}` when it was never published, `{'ok', record}` when retired now and
/// `{'ok', prior record}` when it already was (idempotent).
static RETIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return {'active'}
end
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then
  return {'was_active'}
end
local prior = redis.call('HGET', KEYS[4], ARGV[2])
if prior then
  return {'ok', prior}
end
if not redis.call('ZSCORE', KEYS[5], ARGV[2]) then
  return {'missing'}
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
return {'ok', ARGV[3]}
",
    )
});

/// A reply a script cannot give: the script and its wrapper disagree.
fn unexpected(script: &str, reply: &[String]) -> RedisError {
    RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected script reply",
        format!("{script}: {reply:?}"),
    ))
}

impl Publish<'_> {
    pub(crate) async fn run(
        &self,
        keys: &Keys,
        conn: &mut Conn,
    ) -> Result<PublishReply, RedisError> {
        let (created, stored): (i64, String) = PUBLISH
            .key(keys.doc(self.id, self.version))
            .key(keys.digests(self.id))
            .key(keys.versions(self.id))
            .key(keys.retired(self.id))
            .key(keys.loosenings(self.id))
            .key(keys.publishers(self.id))
            .arg(self.payload)
            .arg(self.digest)
            .arg(self.version)
            .arg(self.at_ms)
            .arg(self.loosening.as_deref().unwrap_or_default())
            .arg(self.publisher.unwrap_or_default())
            .invoke_async(conn)
            .await?;
        Ok(match created {
            1 => PublishReply::Stored,
            0 => PublishReply::Exists(stored),
            _ => PublishReply::Retired(stored),
        })
    }
}

impl MovePointers<'_> {
    pub(crate) async fn run(&self, keys: &Keys, conn: &mut Conn) -> Result<MoveReply, RedisError> {
        let mut invocation: ScriptInvocation<'_> = ACTIVATE.key(keys.active());
        invocation.key(keys.lineage());
        for item in &self.items {
            invocation
                .key(keys.doc(item.id, item.version))
                .key(keys.history(item.id))
                .key(keys.activated(item.id));
        }
        if let (Some((key_hash, _, _)), Some(first)) = (&self.idempotency, self.items.first()) {
            invocation.key(keys.idempotency(first.id, key_hash));
        }
        invocation
            .arg(keys.channel())
            .arg(&self.message)
            .arg(self.items.len());
        for item in &self.items {
            let (mode, expected) = match item.expected {
                Expected::Any => ("any", ""),
                Expected::Absent => ("absent", ""),
                Expected::Version(v) => ("eq", v.as_str()),
            };
            invocation
                .arg(item.id)
                .arg(item.version)
                .arg(mode)
                .arg(expected)
                .arg(item.history_len.map_or(-1, |n| n as i64))
                .arg(&item.entry);
        }
        invocation.arg(self.validated.len());
        for (id, version) in self.validated {
            invocation.arg(id).arg(version);
        }
        let (ttl, record) = match &self.idempotency {
            Some((_, ttl, record)) => (*ttl, record.as_str()),
            None => (0, ""),
        };
        invocation.arg(ttl).arg(record).arg(&self.epoch);
        let reply: Vec<String> = invocation.invoke_async(conn).await?;
        let at = |i: usize| reply.get(i).cloned();
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => MoveReply::Moved,
            Some("replay") => MoveReply::Replay(at(1).unwrap_or_default()),
            Some("conflict") => MoveReply::Conflict {
                id: at(1).unwrap_or_default(),
                current: at(2).filter(|c| !c.is_empty()),
            },
            Some("missing") => MoveReply::Missing {
                id: at(1).unwrap_or_default(),
                version: at(2).unwrap_or_default(),
            },
            Some("changed") => MoveReply::Changed,
            _ => return Err(unexpected("activate", &reply)),
        })
    }
}

impl Seed<'_> {
    /// Whether this call wrote (false: its condition did not hold).
    pub(crate) async fn run(&self, keys: &Keys, conn: &mut Conn) -> Result<bool, RedisError> {
        let mut invocation: ScriptInvocation<'_> = SEED.key(keys.active());
        invocation.key(keys.lineage());
        let (mode, read) = match &self.when {
            SeedWhen::Empty => ("empty", None),
            SeedWhen::Holds(read) => ("holds", read.as_ref()),
        };
        invocation
            .arg(keys.channel())
            .arg(&self.message)
            .arg(mode)
            .arg(read.map_or("", |l| l.epoch.as_str()))
            .arg(read.map_or(0, |l| l.seq))
            .arg(&self.lineage.epoch)
            .arg(self.lineage.seq);
        for (id, version, entry) in &self.items {
            invocation.key(keys.history(id)).key(keys.activated(id));
            invocation.arg(*id).arg(*version).arg(entry);
        }
        let seeded: i64 = invocation.invoke_async(conn).await?;
        Ok(seeded == 1)
    }
}

impl Retire<'_> {
    pub(crate) async fn run(
        &self,
        keys: &Keys,
        conn: &mut Conn,
    ) -> Result<RetireReply, RedisError> {
        let reply: Vec<String> = RETIRE
            .key(keys.active())
            .key(keys.doc(self.id, self.version))
            .key(keys.activated(self.id))
            .key(keys.retired(self.id))
            .key(keys.versions(self.id))
            .arg(self.id)
            .arg(self.version)
            .arg(&self.record)
            .invoke_async(conn)
            .await?;
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => RetireReply::Retired(reply.get(1).cloned().unwrap_or_default()),
            Some("active") => RetireReply::Active,
            Some("was_active") => RetireReply::WasActive,
            Some("missing") => RetireReply::Missing,
            _ => return Err(unexpected("retire", &reply)),
        })
    }
}
