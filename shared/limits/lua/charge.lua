-- Usage that was never reserved (a batch, metered when it ends), added to quota counters.
-- KEYS: quota counters. ARGV: amount, then each counter's period horizon in ms.
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, amount)
  redis.call('PEXPIRE', key, tonumber(ARGV[1 + i]) + 86400000)
end
return 1
