/**
 * The Lua scripts the Redis fleet store runs. Each is one atomic step on the
 * server, so N processes see the same sequence of state as one process would.
 *
 * Redis runs Lua 5.1, whose numbers are doubles like JavaScript's: the token
 * bucket arithmetic below is the same IEEE arithmetic as lib/velocity.ts, so
 * the two give identical answers for the same clock (a differential test
 * holds them to that). Every product stays below 2^53 because VelocityGuard
 * refuses limits where `capacity * windowMs` could exceed it.
 */

/**
 * One gate step: velocity buckets, then the request nonce, then a single-use
 * permit's jti, in the pipeline's order, stopping at the first that refuses
 * (a velocity deny spends no nonce; a replayed nonce still costs its token,
 * exactly as the in-process gate does).
 *
 * ARGV: now, windowMs, then for each part a flag ("1"/"0") and its numbers:
 *   agent:   flag, rate, capacity, fillMs
 *   session: flag, rate, capacity, fillMs
 *   nonce:   flag, expiresAtMs        jti: flag, expiresAtMs
 * KEYS: the keys of the parts whose flag is "1", in that order.
 * Returns {0} pass, {1, scope (1 agent | 2 session), retryAfterMs}, {2} nonce
 * replayed, {3} jti replayed.
 */
export const GATE_STEP_LUA = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local MILLI = 1000
local keyAt = 1
local function nextKey()
  local k = KEYS[keyAt]
  keyAt = keyAt + 1
  return k
end
local function load(key, rate, cap, fill)
  local h = redis.call('HMGET', key, 't', 'c', 'a')
  local b = {key = key, rate = rate, cap = cap, fill = fill}
  if not h[1] then
    b.t = cap; b.c = 0; b.a = now
    return b
  end
  b.t = tonumber(h[1]); b.c = tonumber(h[2]); b.a = tonumber(h[3])
  local elapsed = now - b.a
  if elapsed <= 0 then return b end
  b.a = now
  if b.t >= cap then return b end
  if elapsed >= fill then
    b.t = cap; b.c = 0
    return b
  end
  local num = elapsed * rate + b.c
  local added = math.floor(num / window)
  b.c = num - added * window
  b.t = b.t + added
  if b.t >= cap then b.t = cap; b.c = 0 end
  return b
end
local function save(b)
  if not b then return end
  redis.call('HSET', b.key, 't', string.format('%.17g', b.t), 'c', string.format('%.17g', b.c), 'a', string.format('%.17g', b.a))
  -- Idle for fillMs means "as new": the key may go then (plus slack for clock skew).
  redis.call('PEXPIRE', b.key, b.fill + 60000)
end
local function retry(b)
  local r = math.ceil(((MILLI - b.t) * window - b.c) / b.rate)
  if r < 1 then return 1 end
  return r
end
local a, s
if ARGV[3] == '1' then a = load(nextKey(), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])) end
if ARGV[7] == '1' then s = load(nextKey(), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])) end
local aShort = a ~= nil and a.t < MILLI
local sShort = s ~= nil and s.t < MILLI
if aShort or sShort then
  save(a); save(s)
  local r = 0
  if aShort then r = retry(a) end
  if sShort then r = math.max(r, retry(s)) end
  if aShort then return {1, 1, r} end
  return {1, 2, r}
end
if a then a.t = a.t - MILLI end
if s then s.t = s.t - MILLI end
save(a); save(s)
if ARGV[11] == '1' then
  if not redis.call('SET', nextKey(), '1', 'NX', 'PXAT', ARGV[12]) then return {2} end
end
if ARGV[13] == '1' then
  if not redis.call('SET', nextKey(), '1', 'NX', 'PXAT', ARGV[14]) then return {3} end
end
return {0}
`;

/**
 * Writes one quarantine record and announces it, unless the stored record is
 * already terminated (final everywhere: a late recover elsewhere cannot undo
 * it). A `recovered` record is deleted from the hash (it isolates nothing),
 * which keeps the hash as small as the set of isolated agents.
 * Values are sealed records, {"r": record JSON, "m": MAC} (the MAC is checked
 * by the processes, not here). KEYS[1] the hash. ARGV: agent id, sealed
 * record, channel, message. Returns the stored terminated value when it
 * refused, else nil.
 */
export const QUARANTINE_SET_LUA = `
local function status(sealed)
  local ok, outer = pcall(cjson.decode, sealed)
  if not ok or type(outer) ~= 'table' or type(outer.r) ~= 'string' then return nil end
  local ok2, rec = pcall(cjson.decode, outer.r)
  if not ok2 or type(rec) ~= 'table' then return nil end
  return rec.status
end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and status(cur) == 'terminated' then return cur end
if status(ARGV[2]) == 'recovered' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return false
`;

/**
 * Publishes a policy document if its version is newer than the fleet's.
 * KEYS[1] the policy hash. ARGV: version, document JSON, channel, message,
 * MAC (empty without a signing key).
 * Returns 0 when published, else the fleet's (newer or equal) version.
 */
export const POLICY_PUBLISH_LUA = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[1]) <= cur then return cur end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'doc', ARGV[2], 'mac', ARGV[5])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 0
`;
