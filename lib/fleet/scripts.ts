/**
 * The Lua scripts the Redis fleet store runs. Each is one atomic step on the
 * server, so N processes see the same sequence of state as one process would.
 *
 * Redis runs Lua 5.1, whose numbers are doubles like JavaScript's: the token
 * bucket arithmetic below is the same IEEE arithmetic as lib/gate/velocity.ts, so
 * the two give identical answers for the same clock (a differential test
 * holds them to that). Every product stays below 2^53 because VelocityGuard
 * refuses limits where `capacity * windowMs` could exceed it.
 */

/**
 * Gate steps: for each request, velocity buckets, then the request nonce,
 * then a single-use permit's jti, in the pipeline's order, stopping at the
 * first that refuses (a velocity deny spends no nonce; a replayed nonce still
 * costs its token, exactly as the in-process gate does). Steps run in array
 * order, so a batch sees the state each earlier request left.
 *
 * ARGV[1] is a JSON array of steps (one argument: encoding thousands of
 * separate arguments costs the client more than the script costs Redis):
 *   [now, windowMs,
 *    agentKey, rate, capacity, fillMs,      -- agentKey "" when no agent limit
 *    sessionKey, rate, capacity, fillMs,    -- sessionKey "" when none
 *    nonceKey, expiresAtMs, jtiKey, expiresAtMs]   -- "" when absent
 * Keys are not declared in KEYS: fleet mode runs on one Redis (not Cluster).
 * Returns three integers per step: {0,0,0} pass, {1, scope (1 agent |
 * 2 session), retryAfterMs}, {2,0,0} nonce replayed, {3,0,0} jti replayed.
 */
export const GATE_STEPS_LUA = `
local MILLI = 1000
local now, window
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
  -- Numbers go to Redis as %.17g text: exact for these integers (< 2^53).
  redis.call('HSET', b.key, 't', b.t, 'c', b.c, 'a', b.a)
  -- Idle for fillMs means "as new": the key may go then (plus slack for clock skew).
  redis.call('PEXPIRE', b.key, b.fill + 60000)
end
local function retry(b)
  local r = math.ceil(((MILLI - b.t) * window - b.c) / b.rate)
  if r < 1 then return 1 end
  return r
end
local function step(st)
  now = st[1]; window = st[2]
  local a, s
  if st[3] ~= '' then a = load(st[3], st[4], st[5], st[6]) end
  if st[7] ~= '' then s = load(st[7], st[8], st[9], st[10]) end
  local aShort = a ~= nil and a.t < MILLI
  local sShort = s ~= nil and s.t < MILLI
  if aShort or sShort then
    save(a); save(s)
    local r = 0
    if aShort then r = retry(a) end
    if sShort then r = math.max(r, retry(s)) end
    if aShort then return 1, 1, r end
    return 1, 2, r
  end
  if a then a.t = a.t - MILLI end
  if s then s.t = s.t - MILLI end
  save(a); save(s)
  if st[11] ~= '' and not redis.call('SET', st[11], '1', 'NX', 'PXAT', st[12]) then return 2, 0, 0 end
  if st[13] ~= '' and not redis.call('SET', st[13], '1', 'NX', 'PXAT', st[14]) then return 3, 0, 0 end
  return 0, 0, 0
end
local out = {}
for _, st in ipairs(cjson.decode(ARGV[1])) do
  local code, scope, r = step(st)
  out[#out + 1] = code
  out[#out + 1] = scope
  out[#out + 1] = r
end
return out
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

/**
 * Opens an approval request: one compare-and-set on the pointer from a CAR
 * hash to the request that stands for it. Only if the pointer still holds
 * the id the caller read (ARGV[1]; '' for none) and no record has this id
 * yet: writes the record, points the CAR key at it, indexes it (by
 * requested_at, for listing oldest first, and by the instant its keys expire,
 * for trimming), drops from both indexes up to 256 ids whose keys have
 * expired, and announces the change. Records are stored as given (sealed by
 * the process when there is a signing key; checked by the processes, not
 * here).
 * KEYS: CAR pointer, record, index, expiry index. ARGV: expected pointer
 * ('' none), id, stored record, TTL in ms, requested_at, expiry score (now +
 * TTL in the caller's clock), now (trim cutoff), channel, message.
 * Returns 1 when written, 0 when the pointer moved or the id is taken.
 */
export const APPROVAL_CREATE_LUA = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[7], 'LIMIT', 0, 256)
if #gone > 0 then
  redis.call('ZREM', KEYS[3], unpack(gone))
  redis.call('ZREM', KEYS[4], unpack(gone))
end
redis.call('PUBLISH', ARGV[8], ARGV[9])
return 1
`;

/**
 * Replaces an approval record, only if the stored value is byte-identical
 * to the one the caller read (compare-and-set), and announces the change.
 * The CAR pointer's expiry follows the record's while it points at it.
 * KEYS: record, CAR pointer, index, expiry index. ARGV: expected stored
 * value, new stored value, TTL in ms, id, requested_at, expiry score,
 * channel, message. Returns 1 when replaced, 0 when the record changed (or
 * is gone).
 */
export const APPROVAL_REPLACE_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[4])
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1
`;
