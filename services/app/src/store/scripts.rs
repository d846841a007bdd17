//! Lua scripts: the steps that must be atomic run inside Redis, where nothing interleaves.
//!
//! `redis::Script` sends `EVALSHA` and falls back to `EVAL` on `NOSCRIPT` (after a Redis restart
//! the script cache is empty). All keys a script touches share the `{rulesets}` hash tag, so each
//! script is single-slot and also runs on Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

/// Publishes one version immutably.
///
/// KEYS: doc, digests, versions, retired, loosenings, publishers. ARGV: payload, digest, version,
/// publish time (Unix ms), declared loosening (JSON or ''), publisher's API key id (or '').
/// Returns `{1, digest}` when stored now, `{0, stored digest}` when the version already existed
/// (the caller compares digests: equal is an idempotent re-publish, different is a conflict), and
/// `{-1, stored digest}` when the version was retired (its name stays reserved).
pub(crate) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
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
/// KEYS: active, then n × (doc, history, activated) of each item, then optionally the
/// idempotency key. ARGV: channel, message, n, then n × (id, version, mode, expected,
/// history length, history entry) with mode `any` | `absent` | `eq` and history length `-1` for
/// no check, then m, then m × (id, version): the whole active map the caller validated against,
/// then (with an idempotency key) its time to live in ms and the record to keep under it.
///
/// Returns `{'replay', record}` when the idempotency key is already used (nothing else happens),
/// `{'conflict', id, current}` when an item's expectation fails (current is '' when none is
/// active), `{'missing', id, version}` when an item's payload is not stored (retired meanwhile),
/// `{'changed'}` when some other pointer or the item's history moved since validation (so the
/// validated catalog, or the rollback target, is not the one that would result), else applies
/// every item (pointer, history entry, ever-active set), keeps the idempotency record, publishes
/// the message on the channel and returns `{'ok'}`.
pub(crate) static ACTIVATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = tonumber(ARGV[3])
local idem = KEYS[2 + 3 * n]
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
  if redis.call('EXISTS', KEYS[k + 2]) == 0 then
    return {'missing', ARGV[i], ARGV[i + 1]}
  end
  local len = tonumber(ARGV[i + 4])
  if len >= 0 and redis.call('LLEN', KEYS[k + 3]) ~= len then
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
local ttl, record = ARGV[i], ARGV[i + 1]
i = 4
for j = 1, n do
  local k = 3 * (j - 1)
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('RPUSH', KEYS[k + 3], ARGV[i + 5])
  redis.call('SADD', KEYS[k + 4], ARGV[i + 1])
  if cur then
    redis.call('SADD', KEYS[k + 4], cur)
  end
  i = i + 6
end
if idem then
  redis.call('SET', idem, record, 'PX', ttl)
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {'ok'}
",
    )
});

/// Sets every active pointer at once, only when none exists (seeding a fresh Redis), recording a
/// `seed` entry in each rule set's history. Two replicas starting together both run it; exactly
/// one sets the pointers.
///
/// KEYS: active, then pairs of (history, activated) of each rule set. ARGV: channel, message,
/// then triples of (id, version, history entry). Returns 1 when seeded.
pub(crate) static SEED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local k = 2
for i = 3, #ARGV, 3 do
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
pub(crate) static RETIRE: LazyLock<Script> = LazyLock::new(|| {
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
