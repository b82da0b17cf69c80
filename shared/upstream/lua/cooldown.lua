-- Hold the deployment back until ARGV[1] (ms), never shortening a longer cooldown.
-- KEYS[1]: the deployment's health hash.
if tonumber(redis.call('HGET', KEYS[1], 'cool') or '0') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'cool', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
