-- Claim the one trial request of a half-open breaker, unless another instance holds it.
-- KEYS[1]: the deployment's health hash. ARGV: now (ms), how long the claim holds (ms).
if tonumber(redis.call('HGET', KEYS[1], 'trial') or '0') > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'trial', tonumber(ARGV[1]) + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
