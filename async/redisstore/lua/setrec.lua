-- Replace a finished task's record if it is still at version ARGV[4]
-- (compare-and-set): replay or a delivery update. KEYS[1] meta. ARGV:
-- 3 id, 4 expected version, 5 record, 6 op ('replay' | 'delivery'),
-- 7 pending deliveries left (1/0), 8 retention ms, 9 delivery claim ms.
-- Returns {'missing'} | {'stale'} | {'conflict', status} | {'ok', now, seq, earliest}.
local id = ARGV[3]
local tk = tag .. ':k:' .. id
local v = redis.call('HMGET', tk, 'v', 's', 'f')
if not v[1] then return {'missing'} end
if v[1] ~= ARGV[4] then return {'stale'} end
if ARGV[6] == 'replay' and (v[2] ~= 'failed' or redis.call('ZSCORE', tag .. ':dlv', id)) then
  return {'conflict', v[2]}
end
local now = now_ms()
redis.call('HSET', tk, 'r', ARGV[5], 'u', now)
redis.call('HINCRBY', tk, 'v', 1)
if ARGV[6] == 'replay' then
  redis.call('HSET', tk, 's', 'queued', 'y', now, 'x', 0)
  redis.call('ZREM', tag .. ':fin', id)
  redis.call('HINCRBY', tag .. ':meta', 'unf', 1)
  enqueue_id(id, v[3], now)
  local h = hint()
  return {'ok', string.format('%d', now), h[1], h[2]}
end
if ARGV[7] == '1' then
  redis.call('ZADD', tag .. ':dlv', now + tonumber(ARGV[9]), id)
else
  redis.call('ZREM', tag .. ':dlv', id)
  redis.call('ZADD', tag .. ':fin', now + tonumber(ARGV[8]), id)
end
return {'ok', string.format('%d', now), 0, '-2'}
