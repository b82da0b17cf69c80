-- Count a failure; open (or re-open) the breaker at the threshold or when a trial failed.
-- KEYS[1]: the deployment's health hash. ARGV: now (ms), threshold, how long it stays open (ms).
-- Returns the hash as {cool, open, trial, failures}.
local now, threshold, open_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local opened = tonumber(redis.call('HGET', KEYS[1], 'open') or '0')
if failures >= threshold or (opened > 0 and opened <= now) then
  opened = now + open_ms
  redis.call('HSET', KEYS[1], 'open', opened)
end
redis.call('HSET', KEYS[1], 'trial', 0)
redis.call('PEXPIRE', KEYS[1], 86400000)
return {tonumber(redis.call('HGET', KEYS[1], 'cool') or '0'), opened, 0, failures}
