-- Cancel a queued task. KEYS[1] meta. ARGV: 3 id, 4 retention ms.
-- Returns {'missing'} | {'conflict', fields...} | {'ok', fields..., seq, earliest}.
local id = ARGV[3]
local tk = tag .. ':k:' .. id
local v = redis.call('HMGET', tk, 's', 'f')
if not v[1] then return {'missing'} end
local now = now_ms()
local out = {}
if v[1] ~= 'queued' then
  out = {'conflict'}
else
  redis.call('ZREM', tag .. ':q:' .. v[2], id)
  refresh_head(v[2])
  redis.call('HSET', tk, 's', 'cancelled', 'u', now, 'x', now)
  redis.call('HINCRBY', tag .. ':meta', 'unf', -1)
  redis.call('ZADD', tag .. ':fin', now + tonumber(ARGV[4]), id)
  out = {'ok'}
end
for _, f in ipairs(fields(tk)) do table.insert(out, f) end
if out[1] == 'ok' then
  local h = hint()
  table.insert(out, h[1])
  table.insert(out, h[2])
end
return out
