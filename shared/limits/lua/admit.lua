-- KEYS: one per check. ARGV: now, rid, estimate (tokens), window, n, estimated cost (cost
-- units), then per check: kind, limit, horizon.
-- Phase 1 expires old entries and checks every limit; phase 2 takes from all of them, so a
-- refused request changes nothing.
-- `now` 0 means Redis's own clock, so that instances with skewed clocks agree.
-- A refusal answers {0, check index, wait ms (-1: never), what that check had used}.
local now, rid, est = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local window, n, cost = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function arg(i, j) return ARGV[6 + (i - 1) * 3 + j] end
local function total(key) return tonumber(redis.call('GET', key .. ':sum') or '0') end
-- Drop a log's entries older than `before`, in batches (unpack has a stack limit).
local function expire(key, before)
  while true do
    local old = redis.call('ZRANGEBYSCORE', key, '-inf', before, 'LIMIT', 0, 500)
    if #old == 0 then return end
    local freed = 0
    for _, v in ipairs(redis.call('HMGET', key .. ':n', unpack(old))) do
      freed = freed + (tonumber(v) or 0)
    end
    redis.call('HDEL', key .. ':n', unpack(old))
    redis.call('ZREM', key, unpack(old))
    redis.call('DECRBY', key .. ':sum', freed)
  end
end
for i = 1, n do
  local key, kind, limit, horizon = KEYS[i], arg(i, 1), tonumber(arg(i, 2)), tonumber(arg(i, 3))
  if kind == 'quota' or kind == 'budget' then
    local used, asked = tonumber(redis.call('GET', key) or '0'), est
    if kind == 'budget' then asked = cost end
    if used + asked > limit then return {0, i, horizon, used} end
  elseif kind == 'conc' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    local held = redis.call('ZCARD', key)
    if held + 1 > limit then return {0, i, 1000, held} end
  else
    expire(key, now - window)
    local amount = est
    if kind == 'rpm' then amount = 1 end
    local used = total(key)
    if used + amount > limit then
      if amount > limit then return {0, i, -1, used} end
      local need, freed = used + amount - limit, 0
      local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
      for j = 1, #entries, 2 do
        freed = freed + tonumber(redis.call('HGET', key .. ':n', entries[j]) or '0')
        if freed >= need then return {0, i, tonumber(entries[j + 1]) + window - now, used} end
      end
      return {0, i, window, used}
    end
  end
end
local out = {1, 0, 0}
for i = 1, n do
  local key, kind, limit, horizon = KEYS[i], arg(i, 1), tonumber(arg(i, 2)), tonumber(arg(i, 3))
  if kind == 'quota' or kind == 'budget' then
    local asked = est
    if kind == 'budget' then asked = cost end
    local used = redis.call('INCRBY', key, asked)
    redis.call('PEXPIRE', key, horizon + 86400000)
    table.insert(out, limit - used); table.insert(out, horizon)
  elseif kind == 'conc' then
    redis.call('ZADD', key, now + horizon, rid)
    redis.call('PEXPIRE', key, horizon)
    table.insert(out, limit - redis.call('ZCARD', key)); table.insert(out, 0)
  else
    local amount = est
    if kind == 'rpm' then amount = 1 end
    redis.call('ZADD', key, now, rid)
    redis.call('HSET', key .. ':n', rid, amount)
    local used = redis.call('INCRBY', key .. ':sum', amount)
    for _, k in ipairs({key, key .. ':n', key .. ':sum'}) do
      redis.call('PEXPIRE', k, 2 * window)
    end
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    table.insert(out, limit - used); table.insert(out, tonumber(oldest[2]) + window - now)
  end
end
return out
