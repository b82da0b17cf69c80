-- KEYS: one per check. ARGV: rid, delta, then the kind of each check.
local rid, delta = ARGV[1], tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local kind = ARGV[2 + i]
  if kind == 'conc' then
    redis.call('ZREM', key, rid)
  elseif kind == 'tpm' then
    if redis.call('ZSCORE', key, rid) then
      redis.call('HINCRBY', key .. ':n', rid, delta)
      redis.call('INCRBY', key .. ':sum', delta)
    end
  elseif kind == 'quota' and delta ~= 0 then
    if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, delta) end
  end
end
return 1
