-- One upkeep pass over a tenant: requeue expired leases, sweep up to 500
-- finished tasks past retention, and count each lane. KEYS[1] meta.
-- ARGV: 3.. functions to count besides those with queued tasks.
-- Returns {seq, earliest, swept, reaped, fn, queued, running, ...}.
local now = now_ms()
local reaped = reap(now)
local swept = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', tag .. ':fin', '-inf', now, 'LIMIT', 0, 500)) do
  local tk = tag .. ':k:' .. id
  local v = redis.call('HMGET', tk, 's', 'n')
  redis.call('ZREM', tag .. ':fin', id)
  if v[1] == 'succeeded' or v[1] == 'failed' or v[1] == 'cancelled' then
    redis.call('ZREM', tag .. ':all', string.format('%015d', tonumber(v[2])) .. ':' .. id)
    redis.call('DEL', tk)
    swept = swept + 1
  end
end
local h = hint()
local out = {h[1], h[2], swept, reaped}
local seen = {}
local lanes = redis.call('SMEMBERS', tag .. ':lanes')
for i = 3, #ARGV do table.insert(lanes, ARGV[i]) end
for _, fn in ipairs(lanes) do
  if not seen[fn] then
    seen[fn] = true
    table.insert(out, fn)
    table.insert(out, redis.call('ZCARD', tag .. ':q:' .. fn))
    table.insert(out, redis.call('ZCARD', tag .. ':run:' .. fn))
  end
end
return out
