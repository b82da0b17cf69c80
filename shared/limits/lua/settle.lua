-- KEYS: one per check. ARGV: rid, delta (tokens), delta (cost units), then each check's kind.
-- Answers each budget counter's value after the settlement, in order (for budget alerts).
local rid, delta, cost = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local spent = {}
for i, key in ipairs(KEYS) do
  local kind = ARGV[3 + i]
  if kind == 'conc' then
    redis.call('ZREM', key, rid)
  elseif kind == 'tpm' then
    if redis.call('ZSCORE', key, rid) then
      redis.call('HINCRBY', key .. ':n', rid, delta)
      redis.call('INCRBY', key .. ':sum', delta)
    end
  elseif kind == 'quota' and delta ~= 0 then
    if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, delta) end
  elseif kind == 'budget' then
    if cost ~= 0 and redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, cost) end
    table.insert(spent, tonumber(redis.call('GET', key) or '0'))
  end
end
return spent
