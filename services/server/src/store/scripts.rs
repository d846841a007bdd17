//! Lua scripts: the steps that must be atomic run inside Redis, where nothing interleaves.
//!
//! `redis::Script` sends `EVALSHA` and falls back to `EVAL` on `NOSCRIPT` (after a Redis restart
//! the script cache is empty). All keys a script touches share the `{rulesets}` hash tag, so each
//! script is single-slot and also runs on Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

/// Publishes one version immutably.
///
/// KEYS: doc, digests, versions. ARGV: payload, digest, version, publish time (Unix ms).
/// Returns `{1, digest}` when stored now, `{0, stored digest}` when the version already existed
/// (the caller compares digests: equal is an idempotent re-publish, different is a conflict).
pub(crate) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('HGET', KEYS[2], ARGV[3]) or ''}
end
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[3])
return {1, ARGV[2]}
",
    )
});

/// Moves one or more active pointers in one step, compare-and-set.
///
/// KEYS: active. ARGV: channel, message, n, then n × (id, version, mode, expected) with mode
/// `any` | `absent` | `eq`, then m, then m × (id, version): the whole active map the caller
/// validated against.
///
/// Returns `{'conflict', id, current}` when an item's expectation fails (current is '' when
/// none is active), `{'changed'}` when some other pointer moved since validation (so the validated
/// catalog is not the one that would result), else applies every item, publishes the message on
/// the channel and returns `{'ok'}`.
pub(crate) static ACTIVATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local mode = ARGV[i + 2]
  if (mode == 'eq' and cur ~= ARGV[i + 3]) or (mode == 'absent' and cur) then
    return {'conflict', ARGV[i], cur or ''}
  end
  i = i + 4
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
i = 4
for _ = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 4
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {'ok'}
",
    )
});

/// Sets every active pointer at once, only when none exists (seeding a fresh Redis). Two replicas
/// starting together both run it; exactly one sets the pointers.
///
/// KEYS: active. ARGV: channel, message, then pairs of (id, version). Returns 1 when seeded.
pub(crate) static SEED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
",
    )
});
