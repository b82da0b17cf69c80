-- Usage that was never reserved (a batch, metered when it ends), added to quota and budget
-- counters. KEYS: the counters. ARGV: tokens, cost units, then per counter: kind, horizon (ms).
-- Answers each budget counter's value after the charge, in order (for budget alerts).
local tokens, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local spent = {}
for i, key in ipairs(KEYS) do
  local amount = tokens
  if ARGV[1 + 2 * i] == 'budget' then amount = cost end
  local now = redis.call('INCRBY', key, amount)
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]) + 86400000)
  if ARGV[1 + 2 * i] == 'budget' then table.insert(spent, now) end
end
return spent
