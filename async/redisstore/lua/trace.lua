-- Count first attempts of functions in traces, for one tenant. KEYS[1]
-- the tenant's meta key (routing). ARGV: 1 the tenant's hash tag, 2 the
-- trace window in ms (a count lives that long from its first attempt),
-- 3.. "<trace id>:<fn>" per attempt. Returns each count, this one
-- included.
local out = {}
for i = 3, #ARGV do
  local key = ARGV[1] .. ':tr:' .. ARGV[i]
  local n = redis.call('INCR', key)
  if n == 1 or redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[2])
  end
  table.insert(out, n)
end
return out
